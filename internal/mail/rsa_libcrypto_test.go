//go:build cgo && linux && (amd64 || arm64) && !nolibcrypto

package mail

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// OpenSSL's PKCS#1 v1.5 signatures are deterministic, so they must equal crypto/rsa's
// byte for byte, and verify with it, from many goroutines at once (contexts are pooled).
func TestLibcryptoRSAMatchesGo(t *testing.T) {
	e := libcryptoOrSkip(t)
	k := rsaTestKey(t)
	signer, err := e.newSigner(k)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				digest := sha256.Sum256(fmt.Appendf(nil, "message %d/%d", g, i))
				sig, err := signer.Sign(rand.Reader, digest[:], crypto.SHA256)
				if err != nil {
					t.Error(err)
					return
				}
				if err := rsa.VerifyPKCS1v15(&k.PublicKey, crypto.SHA256, digest[:], sig); err != nil {
					t.Errorf("libcrypto signature does not verify: %v", err)
					return
				}
				want, _ := rsa.SignPKCS1v15(nil, k, crypto.SHA256, digest[:])
				if !bytes.Equal(sig, want) {
					t.Error("libcrypto and crypto/rsa signatures differ")
					return
				}
			}
		})
	}
	wg.Wait()
	checkIdleContexts(t, signer)

	// What OpenSSL is not asked to do is done by the Go key, so the signer stays complete.
	digest := sha256.Sum256([]byte("pss"))
	sig, err := signer.Sign(rand.Reader, digest[:], &rsa.PSSOptions{Hash: crypto.SHA256})
	if err != nil || rsa.VerifyPSS(&k.PublicKey, crypto.SHA256, digest[:], sig, nil) != nil {
		t.Fatalf("PSS: %v", err)
	}
	d384 := crypto.SHA384.New().Sum(nil)
	sig, err = signer.Sign(rand.Reader, d384, crypto.SHA384)
	if err != nil || rsa.VerifyPKCS1v15(&k.PublicKey, crypto.SHA384, d384, sig) != nil {
		t.Fatalf("SHA-384: %v", err)
	}
	if _, err := signer.Sign(rand.Reader, digest[:20], crypto.SHA256); err == nil {
		t.Fatal("a short digest was signed")
	}
	if !bytes.Equal(signer.Public().(*rsa.PublicKey).N.Bytes(), k.N.Bytes()) {
		t.Fatal("Public is not the key's")
	}
}

func checkIdleContexts(t *testing.T, s crypto.Signer) {
	c := s.(*opensslRSA).c
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := len(c.idle); n == 0 || n > maxIdleContexts {
		t.Errorf("%d idle contexts after use", n)
	}
}

// A key OpenSSL refuses comes back as an error with OpenSSL's reason, and the thread's
// error queue is empty afterwards.
func TestLibcryptoErrorQueue(t *testing.T) {
	l := libcryptoOrSkip(t).(*libcrypto)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	_, err := l.loadKey([]byte("not a DER key"))
	if err == nil || !strings.HasPrefix(err.Error(), "openssl: load RSA key: error:") {
		t.Fatalf("garbage key: %v", err)
	}
	if code := call(l.errPeekLast); code != 0 {
		t.Fatalf("error queue not cleared: %#x", code)
	}
}

// BenchmarkLibcryptoRSA is one RSA-2048 signature, all cores.
func BenchmarkLibcryptoRSA(b *testing.B) {
	s, err := libcryptoOrSkip(b).newSigner(rsaTestKey(b))
	if err != nil {
		b.Fatal(err)
	}
	benchRSA(b, s)
}
