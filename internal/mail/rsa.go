package mail

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// RSA-2048 signing dominates the cost of a DKIM-signed message: crypto/rsa takes about
// four times as long as OpenSSL 3 on the same core. So RSA keys sign with the system's
// libcrypto when it can be loaded at run time (rsa_libcrypto.go, without cgo), and with
// crypto/rsa otherwise. Both give the same bytes: PKCS#1 v1.5 is deterministic, which
// is how the library is checked before it is trusted — at load, with a throw-away key,
// and again for every key it is given.

// DefaultLibcrypto is the library used unless UseLibcrypto says otherwise.
const DefaultLibcrypto = "libcrypto.so.3"

// rsaEngine makes RSA signers backed by a loaded library.
type rsaEngine interface {
	// newSigner returns a crypto.Signer for k whose PKCS#1 v1.5 SHA-256 signatures
	// come from the library (everything else from k).
	newSigner(k *rsa.PrivateKey) (crypto.Signer, error)
	// version names the library, e.g. "OpenSSL 3.0.19 27 Jan 2026".
	version() string
}

var rsaBackend struct {
	mu     sync.Mutex
	lib    string    // what UseLibcrypto asked for ("" until called: DefaultLibcrypto)
	loaded bool      // lib was tried
	engine rsaEngine // nil: crypto/rsa
	why    error     // why engine is nil, if the library was wanted

	keyFallbacks atomic.Int64 // keys the engine refused or signed wrongly
	lastKeyErr   atomic.Value // error
}

// UseLibcrypto chooses what signs RSA DKIM signatures for signers made from now on:
// OpenSSL's libcrypto loaded from lib (a file name the dynamic loader searches for, or
// a path; "" is DefaultLibcrypto), or Go's crypto/rsa when lib is "off". The library is
// loaded when first needed, or by RSABackend. If it cannot be loaded, or its self-test
// signature differs from crypto/rsa's, crypto/rsa signs: signing works either way.
// Without a call, DefaultLibcrypto is used.
func UseLibcrypto(lib string) {
	rsaBackend.mu.Lock()
	defer rsaBackend.mu.Unlock()
	rsaBackend.lib, rsaBackend.loaded, rsaBackend.engine, rsaBackend.why = lib, false, nil, nil
}

// RSABackend loads the chosen library if that has not happened yet and names what signs
// RSA DKIM signatures, for the start-up log: "libcrypto (OpenSSL …)" or "crypto/rsa".
// The error says why libcrypto was wanted and is not used.
func RSABackend() (string, error) {
	e, why := currentRSAEngine()
	s := "crypto/rsa"
	if e != nil {
		s = "libcrypto (" + e.version() + ")"
	}
	if n := rsaBackend.keyFallbacks.Load(); n > 0 {
		s += fmt.Sprintf("; %d key(s) on crypto/rsa: %v", n, rsaBackend.lastKeyErr.Load())
	}
	return s, why
}

func currentRSAEngine() (rsaEngine, error) {
	rsaBackend.mu.Lock()
	defer rsaBackend.mu.Unlock()
	if !rsaBackend.loaded {
		rsaBackend.loaded = true
		if lib := rsaBackend.lib; lib != "off" {
			if lib == "" {
				lib = DefaultLibcrypto
			}
			e, err := loadLibcrypto(lib)
			if err == nil {
				err = selfTest(e)
			}
			if err != nil {
				rsaBackend.why = err
			} else {
				rsaBackend.engine = e
			}
		}
	}
	return rsaBackend.engine, rsaBackend.why
}

// newRSASigner wraps each RSA key given to NewSigner: with the library's signer when
// there is one and it signs this key exactly as crypto/rsa does, else the key itself.
func newRSASigner(k *rsa.PrivateKey) crypto.Signer {
	e, _ := currentRSAEngine()
	if e == nil {
		return k
	}
	s, err := e.newSigner(k)
	if err == nil {
		err = sameSignature(s, k)
	}
	if err != nil {
		rsaBackend.keyFallbacks.Add(1)
		rsaBackend.lastKeyErr.Store(err)
		return k
	}
	return s
}

// selfTest signs with a throw-away key (1024 bits: a few milliseconds to make) through
// the engine and through crypto/rsa, and wants the same bytes.
func selfTest(e rsaEngine) error {
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		return err
	}
	s, err := e.newSigner(k)
	if err != nil {
		return fmt.Errorf("libcrypto self-test: %w", err)
	}
	return sameSignature(s, k)
}

// sameSignature checks that s signs a digest as k does, byte for byte.
func sameSignature(s crypto.Signer, k *rsa.PrivateKey) error {
	digest := sha256.Sum256([]byte("tidings rsa self-test"))
	got, err := s.Sign(nil, digest[:], crypto.SHA256)
	if err != nil {
		return fmt.Errorf("libcrypto self-test: %w", err)
	}
	want, err := rsa.SignPKCS1v15(nil, k, crypto.SHA256, digest[:])
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return errors.New("libcrypto self-test: signature differs from crypto/rsa's")
	}
	return nil
}
