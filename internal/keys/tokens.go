package keys

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

const macLen = 16 // 128-bit tags: ample against forgery, short enough for links

// Strict decoding rejects non-zero padding bits, so each token has exactly one spelling.
var tokenEncoding = base64.RawURLEncoding.Strict()

// Sign returns a URL-safe token carrying payload, authenticated for one purpose
// ("confirm", "unsubscribe", …): a token made for one purpose never verifies for another.
func (k *Keyring) Sign(purpose string, payload []byte) string {
	out := make([]byte, len(payload), len(payload)+sha256.Size)
	copy(out, payload)
	return tokenEncoding.EncodeToString(k.mac(out, purpose, payload))
}

// Verify checks token for purpose in constant time and returns its payload.
func (k *Keyring) Verify(purpose, token string) ([]byte, error) {
	raw, err := tokenEncoding.DecodeString(token)
	if err != nil || len(raw) < macLen {
		return nil, ErrBadToken
	}
	payload, tag := raw[:len(raw)-macLen], raw[len(raw)-macLen:]
	var buf [sha256.Size]byte
	if !hmac.Equal(tag, k.mac(buf[:0], purpose, payload)) {
		return nil, ErrBadToken
	}
	return payload, nil
}

// mac appends the truncated tag of purpose || 0 || payload to dst.
func (k *Keyring) mac(dst []byte, purpose string, payload []byte) []byte {
	// The NUL separates purpose from payload; a NUL inside a purpose would make that
	// ambiguous. Purposes are constants in code, so this is a programming error.
	if strings.IndexByte(purpose, 0) >= 0 {
		panic("keys: token purpose contains NUL")
	}
	n := len(dst)
	return k.sign.sum(dst, purpose+"\x00", payload)[:n+macLen]
}

// NewSecretToken returns a random 256-bit token with a human-readable prefix
// (e.g. "tid_…") and the SHA-256 under which it is stored. A fast hash is right here:
// the token has full entropy, so there is nothing to brute-force.
func NewSecretToken(prefix string) (token string, hash []byte) {
	b := make([]byte, 32)
	rand.Read(b)
	token = prefix + base64.RawURLEncoding.EncodeToString(b)
	return token, HashSecretToken(token)
}

// HashSecretToken is the stored form of a secret token.
func HashSecretToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}
