//go:build cgo && openssl

package mail

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
)

func opensslTestKey(t testing.TB) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// OpenSSL's PKCS#1 v1.5 signatures are deterministic, so they must equal crypto/rsa's
// byte for byte, and verify with it, from many goroutines at once (contexts are shared).
func TestOpenSSLRSAMatchesGo(t *testing.T) {
	k := opensslTestKey(t)
	s, ok := newRSASigner(k).(*opensslRSA)
	if !ok {
		t.Fatal("the openssl build does not sign RSA with OpenSSL")
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				digest := sha256.Sum256(fmt.Appendf(nil, "message %d/%d", g, i))
				sig, err := s.Sign(rand.Reader, digest[:], crypto.SHA256)
				if err != nil {
					t.Error(err)
					return
				}
				if err := rsa.VerifyPKCS1v15(&k.PublicKey, crypto.SHA256, digest[:], sig); err != nil {
					t.Errorf("OpenSSL signature does not verify: %v", err)
					return
				}
				want, _ := rsa.SignPKCS1v15(nil, k, crypto.SHA256, digest[:])
				if !bytes.Equal(sig, want) {
					t.Error("OpenSSL and crypto/rsa signatures differ")
					return
				}
			}
		})
	}
	wg.Wait()
	if n := len(s.c.idle); n == 0 || n > maxIdleContexts {
		t.Errorf("%d idle contexts after use", n)
	}

	// What OpenSSL is not asked to do is done by the Go key, so the signer stays complete.
	digest := sha256.Sum256([]byte("pss"))
	sig, err := s.Sign(rand.Reader, digest[:], &rsa.PSSOptions{Hash: crypto.SHA256})
	if err != nil || rsa.VerifyPSS(&k.PublicKey, crypto.SHA256, digest[:], sig, nil) != nil {
		t.Fatalf("PSS fallback: %v", err)
	}
	if _, err := s.Sign(rand.Reader, digest[:20], crypto.SHA256); err == nil {
		t.Fatal("a short digest was signed")
	}
}

// A message signed through the OpenSSL key verifies with go-msgauth, next to Ed25519.
func TestOpenSSLDKIMVerifies(t *testing.T) {
	rsaKey := DKIMKey{Domain: "books.example", Selector: "r", Signer: opensslTestKey(t)}
	ed, err := GenerateKey("ed25519")
	if err != nil {
		t.Fatal(err)
	}
	edKey := DKIMKey{Domain: "books.example", Selector: "e", Signer: ed}
	s, err := NewSigner(rsaKey, edKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.opts[0].Signer.(*opensslRSA); !ok {
		t.Fatalf("RSA key signs with %T", s.opts[0].Signer)
	}
	m := &Message{
		From: mail.Address{Name: "Books", Address: "news@books.example"}, To: mail.Address{Address: "zoe@example.com"},
		Subject: "Hello", Date: time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC),
		Headers: []Header{{Key: "List-Unsubscribe", Value: "<https://t.example/u/x>"}},
		Text:    strings.Repeat("Plain text. ", 100), HTML: "<p>" + strings.Repeat("Some <b>HTML</b>. ", 100) + "</p>",
	}
	signed, err := s.Sign(m.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	records := map[string]string{}
	for _, k := range []DKIMKey{rsaKey, edKey} {
		name, value, _ := DNSRecord(k.Selector, k.Domain, k.Signer.Public())
		records[name] = value
	}
	verifs, err := dkim.VerifyWithOptions(bytes.NewReader(signed), &dkim.VerifyOptions{LookupTXT: func(d string) ([]string, error) {
		if v, ok := records[d]; ok {
			return []string{v}, nil
		}
		return nil, fmt.Errorf("no record %s", d)
	}})
	if err != nil || len(verifs) != 2 {
		t.Fatalf("%d verifications, %v", len(verifs), err)
	}
	for _, v := range verifs {
		if v.Err != nil {
			t.Fatalf("signature does not verify: %v", v.Err)
		}
	}
}

// BenchmarkOpenSSLRSA and BenchmarkGoRSA compare one RSA-2048 signature, all cores.
func BenchmarkOpenSSLRSA(b *testing.B) { benchRSA(b, newRSASigner(opensslTestKey(b))) }
func BenchmarkGoRSA(b *testing.B)      { benchRSA(b, opensslTestKey(b)) }

func benchRSA(b *testing.B, s crypto.Signer) {
	digest := sha256.Sum256([]byte("x"))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
