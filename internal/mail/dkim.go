package mail

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-msgauth/dkim"
)

// DKIMKey is one signing key of a sending domain.
type DKIMKey struct {
	Domain, Selector string
	Signer           crypto.Signer // *rsa.PrivateKey or ed25519.PrivateKey
}

// Signer signs messages with one or more keys (typically rsa-sha256 and
// ed25519-sha256 at once: Ed25519 for receivers that know it, RSA for the rest). It is
// safe for concurrent use.
type Signer struct{ opts []dkim.SignOptions }

// signedHeaders are the header fields the signature covers when present. From is listed
// twice (oversigned) so that no second From can be added without breaking it; the
// List-* fields are covered so that unsubscribe links cannot be swapped.
var signedHeaders = []string{"From", "From", "To", "Subject", "Date", "Message-ID", "Reply-To", "MIME-Version",
	"Content-Type", "Content-Transfer-Encoding", "List-Unsubscribe", "List-Unsubscribe-Post", "List-Id", "Feedback-ID"}

// NewSigner returns a signer for keys; at least one is required.
func NewSigner(keys ...DKIMKey) (*Signer, error) {
	if len(keys) == 0 {
		return nil, errors.New("dkim: no keys")
	}
	s := &Signer{}
	for _, k := range keys {
		if k.Domain == "" || k.Selector == "" || k.Signer == nil {
			return nil, errors.New("dkim: a key needs a domain, a selector and a private key")
		}
		switch pub := k.Signer.Public().(type) {
		case *rsa.PublicKey:
			if pub.N.BitLen() < 1024 { // RFC 8301: verifiers reject shorter keys
				return nil, fmt.Errorf("dkim: %d-bit RSA key is too short", pub.N.BitLen())
			}
		case ed25519.PublicKey:
		default:
			return nil, fmt.Errorf("dkim: unsupported key type %T", pub)
		}
		signer := k.Signer
		if r, ok := signer.(*rsa.PrivateKey); ok {
			signer = newRSASigner(r)
		}
		s.opts = append(s.opts, dkim.SignOptions{
			Domain: k.Domain, Selector: k.Selector, Signer: signer, Hash: crypto.SHA256,
			HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed,
		})
	}
	return s, nil
}

// Sign returns msg (CRLF line endings) with a DKIM-Signature header per key prepended.
// Each signature covers the original message only, as RFC 6376 intends for several
// signers.
func (s *Signer) Sign(msg []byte) ([]byte, error) {
	present := presentHeaders(msg)
	sigs := make([]string, 0, 2)
	n := len(msg)
	for i := range s.opts {
		opt := s.opts[i]
		opt.HeaderKeys = present
		ds, err := dkim.NewSigner(&opt)
		if err != nil {
			return nil, err
		}
		// One Write: the signer hashes through a pipe to its own goroutine, so fewer,
		// larger writes mean fewer hand-offs.
		if _, err := ds.Write(msg); err != nil {
			ds.Close()
			return nil, err
		}
		if err := ds.Close(); err != nil {
			return nil, err
		}
		sig := ds.Signature()
		sigs = append(sigs, sig)
		n += len(sig)
	}
	out := make([]byte, 0, n)
	for _, sig := range sigs {
		out = append(out, sig...)
	}
	return append(out, msg...), nil
}

// presentHeaders returns the signable header keys that the message actually has (plus
// the oversigned From), so the h= tag lists only fields that exist.
func presentHeaders(msg []byte) []string {
	var have uint32 // bit i: signedHeaders[i] is present
	for len(msg) > 0 {
		line := msg
		if i := bytes.IndexByte(msg, '\n'); i >= 0 {
			line, msg = msg[:i], msg[i+1:]
		} else {
			msg = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			break // end of the header
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue // folded continuation
		}
		key, _, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		key = bytes.TrimRight(key, " \t")
		for i, h := range signedHeaders {
			if len(key) == len(h) && strings.EqualFold(string(key), h) {
				have |= 1 << i
			}
		}
	}
	keys := make([]string, 0, len(signedHeaders))
	for i, h := range signedHeaders {
		if have&(1<<i) != 0 {
			keys = append(keys, h)
		}
	}
	return keys
}

// GenerateKey creates a DKIM key: "rsa" (2048 bits) or "ed25519".
func GenerateKey(algorithm string) (crypto.Signer, error) {
	switch algorithm {
	case "rsa":
		return rsa.GenerateKey(rand.Reader, 2048)
	case "ed25519":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return nil, fmt.Errorf("dkim: unknown algorithm %q (want rsa or ed25519)", algorithm)
}

// Algorithm names the key's algorithm as DKIM's k= tag does.
func Algorithm(k crypto.PublicKey) string {
	switch k.(type) {
	case *rsa.PublicKey:
		return "rsa"
	case ed25519.PublicKey:
		return "ed25519"
	}
	return "unknown"
}

// MarshalPrivateKey encodes a key as PKCS#8 PEM.
func MarshalPrivateKey(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParsePrivateKey decodes a PKCS#8 (or PKCS#1 RSA) PEM key.
func ParsePrivateKey(b []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("dkim: no PEM block in key")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("dkim: parse key: %w", err)
	}
	s, ok := k.(crypto.Signer)
	if !ok || (Algorithm(s.Public()) == "unknown") {
		return nil, errors.New("dkim: key is neither RSA nor Ed25519")
	}
	return s, nil
}

// DNSRecord returns the name and value of the TXT record that publishes pub.
func DNSRecord(selector, domain string, pub crypto.PublicKey) (name, value string, err error) {
	var p []byte
	switch k := pub.(type) {
	case *rsa.PublicKey:
		p, err = x509.MarshalPKIXPublicKey(k)
	case ed25519.PublicKey:
		p = []byte(k) // RFC 8463: the raw 32-byte key
	default:
		err = errors.New("dkim: unsupported public key")
	}
	if err != nil {
		return "", "", err
	}
	return selector + "._domainkey." + domain, "v=DKIM1; k=" + Algorithm(pub) + "; p=" + base64.StdEncoding.EncodeToString(p), nil
}

// ZoneValue splits a TXT value into quoted strings of at most 255 characters, as zone
// files require for long RSA keys.
func ZoneValue(value string) string {
	var parts []string
	for len(value) > 255 {
		parts = append(parts, `"`+value[:255]+`"`)
		value = value[255:]
	}
	parts = append(parts, `"`+value+`"`)
	return strings.Join(parts, " ")
}
