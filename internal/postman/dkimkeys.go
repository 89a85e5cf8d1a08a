package postman

import (
	"crypto/ed25519"
	"crypto/x509"
	"fmt"

	"github.com/tidings/tidings/internal/mail"
	"github.com/tidings/tidings/internal/tidings"
)

// DKIMAlgorithms are the key types a sending domain gets: Ed25519 for receivers that
// know it, RSA-2048 for the rest.
var DKIMAlgorithms = []string{"rsa", "ed25519"}

// NewDKIMKey generates a key ("rsa" or "ed25519") ready for Store.AddDKIMKey: the private
// key as PKCS#8 PEM, the public key as DKIM publishes it (PKIX DER for RSA, the raw 32
// bytes for Ed25519), and the selector prefix + "-" + algorithm.
func NewDKIMKey(algorithm, selectorPrefix string) (tidings.DKIMKey, error) {
	signer, err := mail.GenerateKey(algorithm)
	if err != nil {
		return tidings.DKIMKey{}, err
	}
	priv, err := mail.MarshalPrivateKey(signer)
	if err != nil {
		return tidings.DKIMKey{}, err
	}
	var pub []byte
	if k, ok := signer.Public().(ed25519.PublicKey); ok {
		pub = k
	} else if pub, err = x509.MarshalPKIXPublicKey(signer.Public()); err != nil {
		return tidings.DKIMKey{}, err
	}
	return tidings.DKIMKey{Selector: selectorPrefix + "-" + algorithm, Algorithm: algorithm, PrivateKey: priv, PublicKey: pub}, nil
}

// DKIMRecord is the DNS TXT record that publishes a stored key of domain: its name, its
// value, and the value split for a zone file.
func DKIMRecord(domain string, k tidings.DKIMKey) (name, value, zone string, err error) {
	var pub any
	switch k.Algorithm {
	case "ed25519":
		if len(k.PublicKey) != ed25519.PublicKeySize {
			return "", "", "", fmt.Errorf("dkim key %d: bad ed25519 public key", k.ID)
		}
		pub = ed25519.PublicKey(k.PublicKey)
	default:
		if pub, err = x509.ParsePKIXPublicKey(k.PublicKey); err != nil {
			return "", "", "", fmt.Errorf("dkim key %d: %w", k.ID, err)
		}
	}
	name, value, err = mail.DNSRecord(k.Selector, domain, pub)
	if err != nil {
		return "", "", "", err
	}
	return name, value, name + ". IN TXT " + mail.ZoneValue(value), nil
}
