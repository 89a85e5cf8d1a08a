package keys

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

const macLen = 16 // 128-bit tags: ample against forgery, short enough for links

// Sign returns a URL-safe token carrying payload, authenticated for one purpose
// ("confirm", "unsubscribe", …): a token made for one purpose never verifies for another.
func (k *Keyring) Sign(purpose string, payload []byte) string {
	out := append(append([]byte{}, payload...), k.mac(purpose, payload)...)
	return base64.RawURLEncoding.EncodeToString(out)
}

// Verify checks token for purpose and returns its payload.
func (k *Keyring) Verify(purpose, token string) ([]byte, error) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) < macLen {
		return nil, ErrBadToken
	}
	payload, tag := raw[:len(raw)-macLen], raw[len(raw)-macLen:]
	if !hmac.Equal(tag, k.mac(purpose, payload)) {
		return nil, ErrBadToken
	}
	return payload, nil
}

func (k *Keyring) mac(purpose string, payload []byte) []byte {
	h := hmac.New(sha256.New, k.signKey)
	h.Write([]byte(purpose))
	h.Write([]byte{0}) // separates purpose from payload
	h.Write(payload)
	return h.Sum(nil)[:macLen]
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
