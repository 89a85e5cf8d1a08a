// Package keys holds the instance's cryptography: per-person data keys wrapped by an
// instance key (so erasing a person is destroying one small row: crypto-shredding),
// keyed hashes for lookups, signed tokens for links in mail, random secret tokens,
// and password hashing.
//
// Every instance secret is derived from one master secret with HKDF-SHA256 under a
// distinct label, so that no key is ever used for two purposes.
package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/big"
	"sync"
	"time"
)

var (
	// ErrDecrypt: a ciphertext or wrapped key was altered, or belongs to another key.
	ErrDecrypt = errors.New("keys: cannot decrypt")
	// ErrBadToken: a signed token was forged, altered, or made for another purpose.
	ErrBadToken = errors.New("keys: invalid token")
)

// Keyring holds the keys derived from the master secret. It is safe for concurrent use.
type Keyring struct {
	wrap        cipher.AEAD // wraps per-person data keys
	instance    cipher.AEAD // seals instance secrets kept in the database (DKIM private keys)
	receipts    ed25519.PrivateKey
	lookup      *macPool
	suppression *macPool
	sign        *macPool
}

// NewKeyring derives the keyring from master, which must hold at least 32 bytes.
func NewKeyring(master []byte) (*Keyring, error) {
	if len(master) < 32 {
		return nil, fmt.Errorf("keys: the master secret must be at least 32 bytes, got %d", len(master))
	}
	derive := func(label string) []byte {
		k, err := hkdf.Key(sha256.New, master, nil, "tidings/v1/"+label, 32)
		if err != nil {
			panic(err) // only for lengths HKDF cannot produce; 32 is always fine
		}
		return k
	}
	wrap, err := newAEAD(derive("wrap"))
	if err != nil {
		return nil, err
	}
	instance, err := newAEAD(derive("instance-data"))
	if err != nil {
		return nil, err
	}
	return &Keyring{wrap: wrap, instance: instance, receipts: ed25519.NewKeyFromSeed(derive("receipt-signing")),
		lookup: newMACPool(derive("lookup")), suppression: newMACPool(derive("suppression")),
		sign: newMACPool(derive("sign"))}, nil
}

// Format keeps key material out of logs and error messages, whatever the verb.
func (k *Keyring) Format(f fmt.State, _ rune) { io.WriteString(f, "keys.Keyring{redacted}") }

// GenerateMaster returns 32 random bytes for a new master secret.
func GenerateMaster() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
}

// Lookup returns the keyed hash by which a person is found: HMAC-SHA256 over the SHA-256
// of s (callers pass a normalised address). Hashing first lets a person be found from
// the SHA-256 of their address alone (LookupDigest: OpenDSR's sha256 identities), while
// Tidings still keeps no unkeyed hash.
func (k *Keyring) Lookup(s string) []byte {
	d := sha256.Sum256([]byte(s))
	return k.LookupDigest(d)
}

// LookupDigest is Lookup for an address known only by its SHA-256.
func (k *Keyring) LookupDigest(d [sha256.Size]byte) []byte { return k.lookup.sum(nil, "", d[:]) }

// SuppressionHash is a keyed hash under its own key, for suppression entries: it cannot
// be joined to person lookups, and it survives the person's erasure.
func (k *Keyring) SuppressionHash(s string) []byte { return k.suppression.sum(nil, s, nil) }

// macPool reuses HMAC states (and a scratch buffer) for one key: building an HMAC costs
// more than hashing a short address, and lookups sit on hot paths.
type macPool struct{ pool sync.Pool }

type macState struct {
	h   hash.Hash
	buf []byte
}

func newMACPool(key []byte) *macPool {
	return &macPool{sync.Pool{New: func() any { return &macState{h: hmac.New(sha256.New, key)} }}}
}

// sum appends to dst the HMAC of s||rest (a new slice if dst is nil).
func (p *macPool) sum(dst []byte, s string, rest []byte) []byte {
	m := p.pool.Get().(*macState)
	// Copying s into a reused buffer avoids the allocation of []byte(s) passed to an interface.
	m.buf = append(append(m.buf[:0], s...), rest...)
	m.h.Reset()
	m.h.Write(m.buf)
	if dst == nil {
		dst = make([]byte, 0, sha256.Size)
	}
	dst = m.h.Sum(dst)
	if cap(m.buf) <= 4096 { // don't pin the buffer of one huge input
		p.pool.Put(m)
	}
	return dst
}

const version1 = 1

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// seal encrypts with a random nonce: version byte || nonce || ciphertext+tag.
func seal(a cipher.AEAD, plaintext, aad []byte) []byte {
	out := make([]byte, 1+a.NonceSize(), 1+a.NonceSize()+len(plaintext)+a.Overhead())
	out[0] = version1
	rand.Read(out[1:])
	return a.Seal(out, out[1:1+a.NonceSize()], plaintext, aad)
}

func open(a cipher.AEAD, c, aad []byte) ([]byte, error) {
	n := a.NonceSize()
	if len(c) < 1+n+a.Overhead() || c[0] != version1 {
		return nil, ErrDecrypt
	}
	p, err := a.Open(nil, c[1:1+n], c[1+n:], aad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return p, nil
}

// DataKey seals and opens one person's personal fields with AES-256-GCM. It is safe for
// concurrent use, so callers may cache it.
type DataKey struct{ aead cipher.AEAD }

// Format keeps key material out of logs and error messages, whatever the verb.
func (d *DataKey) Format(f fmt.State, _ rune) { io.WriteString(f, "keys.DataKey{redacted}") }

var wrapAAD = []byte("tidings/v1 data key")

// NewDataKey creates a random per-person key and returns it with its wrapped form, the
// only form that is ever stored.
func (k *Keyring) NewDataKey() (*DataKey, []byte, error) {
	raw := make([]byte, 32)
	rand.Read(raw)
	defer clear(raw) // the only plaintext copy outside the AES key schedule
	aead, err := newAEAD(raw)
	if err != nil {
		return nil, nil, err
	}
	return &DataKey{aead}, seal(k.wrap, raw, wrapAAD), nil
}

// UnwrapDataKey recovers a data key from its wrapped form.
func (k *Keyring) UnwrapDataKey(wrapped []byte) (*DataKey, error) {
	raw, err := open(k.wrap, wrapped, wrapAAD)
	if err != nil {
		return nil, err
	}
	defer clear(raw)
	aead, err := newAEAD(raw)
	if err != nil {
		return nil, err
	}
	return &DataKey{aead}, nil
}

// Seal encrypts plaintext; aad binds the ciphertext to its place (row and field) so that
// it cannot be moved elsewhere and still open.
func (d *DataKey) Seal(plaintext, aad []byte) []byte { return seal(d.aead, plaintext, aad) }

// Open decrypts what Seal produced with the same aad.
func (d *DataKey) Open(ciphertext, aad []byte) ([]byte, error) { return open(d.aead, ciphertext, aad) }

// SealString seals s; the empty string is stored as no ciphertext at all (nil).
func (d *DataKey) SealString(s, aad string) []byte {
	if s == "" {
		return nil
	}
	return d.Seal([]byte(s), []byte(aad))
}

// OpenString opens what SealString produced; nil (or empty, as some drivers return an
// empty column) opens to "".
func (d *DataKey) OpenString(c []byte, aad string) (string, error) {
	if len(c) == 0 {
		return "", nil
	}
	p, err := d.Open(c, []byte(aad))
	return string(p), err
}

// SealInstance encrypts an instance secret (not personal data) for storage.
func (k *Keyring) SealInstance(plaintext, aad []byte) []byte { return seal(k.instance, plaintext, aad) }

// OpenInstance decrypts what SealInstance produced.
func (k *Keyring) OpenInstance(c, aad []byte) ([]byte, error) { return open(k.instance, c, aad) }

// ReceiptKey is the instance's Ed25519 key for signing consent receipts; its public half
// is published so that anyone can check a receipt.
func (k *Keyring) ReceiptKey() ed25519.PrivateKey { return k.receipts }

// ProcessorCertificate is a self-signed X.509 certificate (PEM) of the receipt key, for
// peers that want one, like OpenDSR controllers checking the signature of a status
// callback. It is made from the key alone (fixed serial, dates and subject; Ed25519
// signatures are deterministic), so every node serves the same bytes.
func (k *Keyring) ProcessorCertificate() ([]byte, error) {
	pub := k.receipts.Public().(ed25519.PublicKey)
	id := sha256.Sum256(pub)
	tmpl := &x509.Certificate{
		SerialNumber:          new(big.Int).SetBytes(id[:16]),
		Subject:               pkix.Name{CommonName: "Tidings data processor", Organization: []string{"Tidings"}},
		NotBefore:             time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(2046, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		SubjectKeyId:          id[:20],
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, k.receipts)
	if err != nil {
		return nil, fmt.Errorf("keys: processor certificate: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}
