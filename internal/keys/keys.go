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
	"errors"
	"fmt"
	"hash"
	"sync"
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
	lookupKey   []byte
	suppressKey []byte
	signKey     []byte
	lookups     sync.Pool // of hash.Hash (HMAC under lookupKey), to spare allocations on hot paths
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
	k := &Keyring{wrap: wrap, instance: instance, receipts: ed25519.NewKeyFromSeed(derive("receipt-signing")),
		lookupKey: derive("lookup"), suppressKey: derive("suppression"), signKey: derive("sign")}
	k.lookups.New = func() any { return hmac.New(sha256.New, k.lookupKey) }
	return k, nil
}

// GenerateMaster returns 32 random bytes for a new master secret.
func GenerateMaster() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
}

// Lookup returns the keyed hash (HMAC-SHA256) of s; callers pass a normalised address.
func (k *Keyring) Lookup(s string) []byte {
	h := k.lookups.Get().(hash.Hash)
	h.Reset()
	h.Write([]byte(s))
	sum := h.Sum(nil)
	k.lookups.Put(h)
	return sum
}

// SuppressionHash is a keyed hash under its own key, for suppression entries: it cannot
// be joined to person lookups, and it survives the person's erasure.
func (k *Keyring) SuppressionHash(s string) []byte {
	h := hmac.New(sha256.New, k.suppressKey)
	h.Write([]byte(s))
	return h.Sum(nil)
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

// DataKey seals and opens one person's personal fields with AES-256-GCM.
type DataKey struct{ aead cipher.AEAD }

var wrapAAD = []byte("tidings/v1 data key")

// NewDataKey creates a random per-person key and returns it with its wrapped form, the
// only form that is ever stored.
func (k *Keyring) NewDataKey() (*DataKey, []byte, error) {
	raw := make([]byte, 32)
	rand.Read(raw)
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

// OpenString opens what SealString produced; nil opens to "".
func (d *DataKey) OpenString(c []byte, aad string) (string, error) {
	if c == nil {
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
