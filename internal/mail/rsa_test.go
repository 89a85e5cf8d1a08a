package mail

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"io"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
)

func rsaTestKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// useRSA chooses the backend for one test and restores the default afterwards; it
// returns the backend's name and why libcrypto is not used.
func useRSA(t *testing.T, lib string) (string, error) {
	t.Cleanup(func() { UseLibcrypto("") })
	UseLibcrypto(lib)
	return RSABackend()
}

// libcryptoOrSkip returns the default library's engine, or skips where it is not
// available (another platform, -tags nolibcrypto, no OpenSSL 3 installed).
func libcryptoOrSkip(t testing.TB) rsaEngine {
	e, err := loadLibcrypto(DefaultLibcrypto)
	if err != nil {
		t.Skipf("no libcrypto: %v", err)
	}
	return e
}

// A message signed by NewSigner with each backend verifies with go-msgauth, next to
// Ed25519; by default RSA keys sign with libcrypto where it loads.
func TestDKIMVerifiesWithEachRSABackend(t *testing.T) {
	k := rsaTestKey(t)
	for _, lib := range []string{"", "off"} {
		t.Run("lib="+lib, func(t *testing.T) {
			backend, err := useRSA(t, lib)
			rsaKey := DKIMKey{Domain: "books.example", Selector: "r", Signer: k}
			ed, _ := GenerateKey("ed25519")
			edKey := DKIMKey{Domain: "books.example", Selector: "e", Signer: ed}
			s, nerr := NewSigner(rsaKey, edKey)
			if nerr != nil {
				t.Fatal(nerr)
			}
			isLib := s.opts[0].Signer != crypto.Signer(k)
			switch {
			case lib == "off" && (err != nil || isLib || backend != "crypto/rsa"):
				t.Fatalf("off: %v, %T, %q", err, s.opts[0].Signer, backend)
			case lib == "" && err == nil && (!isLib || !strings.HasPrefix(backend, "libcrypto (OpenSSL 3")):
				t.Fatalf("libcrypto loaded, but the key signs with %T; backend %q", s.opts[0].Signer, backend)
			case lib == "" && err != nil:
				t.Logf("no libcrypto here (%v): crypto/rsa only", err)
			}
			verifySigned(t, s, rsaKey, edKey)
		})
	}
}

// A library that cannot be loaded leaves RSA signing to crypto/rsa, and says why.
func TestRSAFallbackWhenLibraryMissing(t *testing.T) {
	b, err := useRSA(t, "/nonexistent/libcrypto.so.3")
	if err == nil || b != "crypto/rsa" {
		t.Fatalf("a missing library: %q, %v", b, err)
	}
	if _, lerr := loadLibcrypto(DefaultLibcrypto); lerr == nil && !strings.Contains(err.Error(), "/nonexistent/libcrypto.so.3: /nonexistent/libcrypto.so.3: cannot open shared object file") {
		t.Fatalf("%v does not say why the library is missing", err)
	}
	k := rsaTestKey(t)
	if s := newRSASigner(k); s != crypto.Signer(k) {
		t.Fatalf("RSA key wrapped in %T without a library", s)
	}
	s, err := NewSigner(DKIMKey{Domain: "books.example", Selector: "r", Signer: k})
	if err != nil {
		t.Fatal(err)
	}
	verifySigned(t, s, DKIMKey{Domain: "books.example", Selector: "r", Signer: k})

	// A library that is not OpenSSL 3's libcrypto is refused too.
	if b, err := useRSA(t, "libc.so.6"); err == nil || b != "crypto/rsa" {
		t.Fatalf("libc accepted as libcrypto: %q, %v", b, err)
	}
}

// wrongEngine signs, but not as crypto/rsa does.
type wrongEngine struct{}

func (wrongEngine) version() string { return "wrong 1.0" }
func (wrongEngine) newSigner(k *rsa.PrivateKey) (crypto.Signer, error) {
	return wrongSigner{k}, nil
}

type wrongSigner struct{ *rsa.PrivateKey }

func (w wrongSigner) Sign(r io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	sig, err := w.PrivateKey.Sign(r, d, o)
	if err == nil {
		sig[len(sig)-1] ^= 1
	}
	return sig, err
}

// An engine whose signatures differ from crypto/rsa's fails the self-test, and a key it
// signs wrongly stays with crypto/rsa, which the backend's name then reports.
func TestRSASelfTestRefusesWrongSignatures(t *testing.T) {
	if err := selfTest(wrongEngine{}); err == nil || !strings.Contains(err.Error(), "differs") {
		t.Fatalf("self-test of a wrong engine: %v", err)
	}
	useRSA(t, "off")
	rsaBackend.mu.Lock()
	rsaBackend.engine = wrongEngine{}
	rsaBackend.mu.Unlock()
	before := rsaBackend.keyFallbacks.Load()
	k := rsaTestKey(t)
	if s := newRSASigner(k); s != crypto.Signer(k) {
		t.Fatalf("a wrongly signing engine's %T was used", s)
	}
	if b, _ := RSABackend(); rsaBackend.keyFallbacks.Load() != before+1 || !strings.Contains(b, "on crypto/rsa: libcrypto self-test: signature differs") {
		t.Fatalf("fallback not reported: %q", b)
	}
}

func verifySigned(t *testing.T, s *Signer, keys ...DKIMKey) {
	t.Helper()
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
	for _, k := range keys {
		name, value, _ := DNSRecord(k.Selector, k.Domain, k.Signer.Public())
		records[name] = value
	}
	verifs, err := dkim.VerifyWithOptions(bytes.NewReader(signed), &dkim.VerifyOptions{LookupTXT: func(d string) ([]string, error) {
		if v, ok := records[d]; ok {
			return []string{v}, nil
		}
		return nil, fmt.Errorf("no record %s", d)
	}})
	if err != nil || len(verifs) != len(keys) {
		t.Fatalf("%d verifications, %v", len(verifs), err)
	}
	for _, v := range verifs {
		if v.Err != nil {
			t.Fatalf("signature does not verify: %v", v.Err)
		}
	}
}

// BenchmarkGoRSA is one crypto/rsa RSA-2048 signature, all cores (compare
// BenchmarkLibcryptoRSA).
func BenchmarkGoRSA(b *testing.B) { benchRSA(b, rsaTestKey(b)) }

func benchRSA(b *testing.B, s crypto.Signer) {
	digest := sha256.Sum256([]byte("x"))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
