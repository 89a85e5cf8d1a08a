//go:build cgo && linux && (amd64 || arm64) && !nolibcrypto

package mail

// An RSA signer backed by OpenSSL 3's libcrypto, loaded at run time with purego: no
// OpenSSL headers and no C code of ours. Only in cgo builds (the default where a C
// compiler is installed), which link the C library anyway: a CGO_ENABLED=0 build stays
// a static binary and signs with crypto/rsa, as does `-tags nolibcrypto`.

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// OpenSSL constants (openssl/evp.h, openssl/rsa.h, openssl/crypto.h).
const (
	evpPKEYRSA       = 6 // EVP_PKEY_RSA (NID_rsaEncryption)
	rsaPKCS1Padding  = 1 // RSA_PKCS1_PADDING
	opensslVersion   = 0 // OPENSSL_VERSION, for OpenSSL_version
	minOpenSSLNumber = 0x30000000
)

// libcrypto holds the addresses of the functions Tidings calls. The library is never
// unloaded: keys made from it may live as long as the process.
type libcrypto struct {
	ver string

	d2iPrivateKey, pkeyFree, pkeyGetSize                     uintptr
	ctxNew, ctxFree, signInit, setRSAPadding, setSignatureMD uintptr
	sha256, sign                                             uintptr
	errPeekLast, errClear, errString                         uintptr
}

func loadLibcrypto(name string) (rsaEngine, error) {
	// dlerror's message is per thread, and purego reads it in a call of its own after
	// dlopen or dlsym failed: without holding the thread, the message is often empty.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	h, err := purego.Dlopen(name, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", name, err)
	}
	l := &libcrypto{}
	for _, f := range []struct {
		p    *uintptr
		name string
	}{
		{&l.d2iPrivateKey, "d2i_PrivateKey"}, {&l.pkeyFree, "EVP_PKEY_free"}, {&l.pkeyGetSize, "EVP_PKEY_get_size"},
		{&l.ctxNew, "EVP_PKEY_CTX_new"}, {&l.ctxFree, "EVP_PKEY_CTX_free"}, {&l.signInit, "EVP_PKEY_sign_init"},
		{&l.setRSAPadding, "EVP_PKEY_CTX_set_rsa_padding"}, {&l.setSignatureMD, "EVP_PKEY_CTX_set_signature_md"},
		{&l.sha256, "EVP_sha256"}, {&l.sign, "EVP_PKEY_sign"},
		{&l.errPeekLast, "ERR_peek_last_error"}, {&l.errClear, "ERR_clear_error"}, {&l.errString, "ERR_error_string_n"},
	} {
		if *f.p, err = purego.Dlsym(h, f.name); err != nil {
			return nil, fmt.Errorf("%s is not OpenSSL 3's libcrypto: %w", name, err)
		}
	}
	var versionNum func() uint64
	var version func(int32) string
	for _, f := range []struct {
		fptr any
		name string
	}{{&versionNum, "OpenSSL_version_num"}, {&version, "OpenSSL_version"}} {
		sym, err := purego.Dlsym(h, f.name)
		if err != nil {
			return nil, fmt.Errorf("%s is not OpenSSL 3's libcrypto: %w", name, err)
		}
		purego.RegisterFunc(f.fptr, sym)
	}
	if n := versionNum(); n < minOpenSSLNumber {
		return nil, fmt.Errorf("%s is OpenSSL %#x, older than 3.0", name, n)
	}
	l.ver = version(opensslVersion)
	return l, nil
}

func (l *libcrypto) version() string { return l.ver }

// call calls a C function with integer and pointer arguments and returns its result.
// Pointers into Go memory must be converted in the argument list itself (SyscallN keeps
// what they point to alive for the call, and so does this function's directive).
//
//go:uintptrescapes
func call(fn uintptr, args ...uintptr) uintptr {
	r, _, _ := purego.SyscallN(fn, args...)
	return r
}

// ok reports whether a C int result means success (OpenSSL: > 0).
func ok(r uintptr) bool { return int32(r) > 0 }

// lastError returns OpenSSL's last error on this thread as text, and clears the
// thread's error queue. Callers hold the thread (runtime.LockOSThread) since the
// failing call: the queue is per thread, and a goroutine may move between calls.
func (l *libcrypto) lastError(what string) error {
	code := call(l.errPeekLast)
	call(l.errClear)
	if code == 0 {
		return fmt.Errorf("openssl: %s failed", what)
	}
	var buf [256]byte
	call(l.errString, code, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
	n := 0
	for n < len(buf) && buf[n] != 0 {
		n++
	}
	return fmt.Errorf("openssl: %s: %s", what, buf[:n])
}

// opensslRSA signs PKCS#1 v1.5 SHA-256 digests with OpenSSL and everything else
// (PSS, other hashes) with the Go key, so it is a complete crypto.Signer.
type opensslRSA struct {
	key *rsa.PrivateKey
	c   *opensslKey
}

// opensslKey owns the C objects: the key, and idle signing contexts. Setting a context
// up per signature measured 10-25% slower than reusing one (OpenSSL 3 looks up the
// algorithm's provider each time), so contexts are kept; each is used by one goroutine
// at a time. All are freed when the signer is garbage-collected.
type opensslKey struct {
	l    *libcrypto
	pkey uintptr // EVP_PKEY*
	size int

	mu   sync.Mutex
	idle []uintptr // EVP_PKEY_CTX*
}

// maxIdleContexts bounds the contexts kept per key; more concurrent signatures than
// that still work, their extra contexts are freed after use.
const maxIdleContexts = 64

func (l *libcrypto) newSigner(k *rsa.PrivateKey) (crypto.Signer, error) {
	der := x509.MarshalPKCS1PrivateKey(k)
	pkey, err := l.loadKey(der)
	clear(der) // the private key must not linger in freed memory
	if err != nil {
		return nil, err
	}
	c := &opensslKey{l: l, pkey: pkey, size: int(int32(call(l.pkeyGetSize, pkey)))}
	if c.size <= 0 || c.size > 2048 {
		call(l.pkeyFree, pkey)
		return nil, fmt.Errorf("openssl: RSA key of %d bytes", c.size)
	}
	s := &opensslRSA{key: k, c: c}
	runtime.AddCleanup(s, (*opensslKey).free, c)
	return s, nil
}

// loadKey parses a PKCS#1 DER private key into an EVP_PKEY*.
func (l *libcrypto) loadKey(der []byte) (uintptr, error) {
	if len(der) == 0 {
		return 0, errors.New("openssl: empty key")
	}
	// d2i_PrivateKey reads through a pointer to a pointer, which it advances. The inner
	// pointer is kept as an integer (no Go pointer in memory C reads); the pinner makes
	// it valid for the call.
	var pin runtime.Pinner
	pin.Pin(&der[0])
	defer pin.Unpin()
	p := uintptr(unsafe.Pointer(&der[0]))
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	pkey := call(l.d2iPrivateKey, evpPKEYRSA, 0, uintptr(unsafe.Pointer(&p)), uintptr(len(der)))
	if pkey == 0 {
		return 0, l.lastError("load RSA key")
	}
	return pkey, nil
}

func (c *opensslKey) free() {
	for _, ctx := range c.idle {
		call(c.l.ctxFree, ctx)
	}
	c.idle = nil
	call(c.l.pkeyFree, c.pkey)
}

func (s *opensslRSA) Public() crypto.PublicKey { return &s.key.PublicKey }

func (s *opensslRSA) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if _, pss := opts.(*rsa.PSSOptions); pss || opts == nil || opts.HashFunc() != crypto.SHA256 {
		return s.key.Sign(rand, digest, opts)
	}
	if len(digest) != sha256.Size {
		return nil, errors.New("openssl rsa: digest is not SHA-256 sized")
	}
	c, l := s.c, s.c.l
	sig := make([]byte, c.size)
	n := uintptr(len(sig))
	// The thread is held from the first call that may fail to the reading of its error.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ctx, err := c.get()
	if err != nil {
		return nil, err
	}
	if !ok(call(l.sign, ctx, uintptr(unsafe.Pointer(&sig[0])), uintptr(unsafe.Pointer(&n)),
		uintptr(unsafe.Pointer(&digest[0])), uintptr(len(digest)))) {
		err = l.lastError("sign")
		call(l.ctxFree, ctx) // not reused: its state after a failure is not ours to trust
	} else {
		c.put(ctx)
	}
	runtime.KeepAlive(s) // the key must outlive the C call
	if err != nil {
		return nil, err
	}
	return sig[:n], nil
}

// get returns an idle context or a new one ready to sign SHA-256 digests with PKCS#1
// v1.5 padding. The caller holds its thread.
func (c *opensslKey) get() (uintptr, error) {
	c.mu.Lock()
	if n := len(c.idle); n > 0 {
		ctx := c.idle[n-1]
		c.idle = c.idle[:n-1]
		c.mu.Unlock()
		return ctx, nil
	}
	c.mu.Unlock()
	l := c.l
	ctx := call(l.ctxNew, c.pkey, 0)
	if ctx == 0 {
		return 0, l.lastError("new signing context")
	}
	if !ok(call(l.signInit, ctx)) || !ok(call(l.setRSAPadding, ctx, rsaPKCS1Padding)) ||
		!ok(call(l.setSignatureMD, ctx, call(l.sha256))) {
		err := l.lastError("set up signing context")
		call(l.ctxFree, ctx)
		return 0, err
	}
	return ctx, nil
}

func (c *opensslKey) put(ctx uintptr) {
	c.mu.Lock()
	if len(c.idle) < maxIdleContexts {
		c.idle = append(c.idle, ctx)
		ctx = 0
	}
	c.mu.Unlock()
	if ctx != 0 {
		call(c.l.ctxFree, ctx)
	}
}
