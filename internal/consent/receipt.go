package consent

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/tidings/tidings/internal/tidings"
)

// Receipt is a consent receipt with the fields of the Kantara Initiative Consent
// Receipt Specification v1.1, plus the ledger link it was made from.
type Receipt struct {
	Version          string       `json:"version"`
	Jurisdiction     string       `json:"jurisdiction"`
	ConsentTimestamp int64        `json:"consentTimestamp"`
	CollectionMethod string       `json:"collectionMethod"`
	ConsentReceiptID string       `json:"consentReceiptID"`
	PublicKey        string       `json:"publicKey"`
	Language         string       `json:"language"`
	PIIPrincipalID   string       `json:"piiPrincipalId"`
	PIIControllers   []Controller `json:"piiControllers"`
	PolicyURL        string       `json:"policyUrl"`
	Services         []Service_   `json:"services"`
	Sensitive        bool         `json:"sensitive"`
	SPICat           []string     `json:"spiCat"`
	// Extensions: what exactly was agreed to, and where the ledger holds it.
	ConsentText struct {
		Version int    `json:"version"`
		SHA256  string `json:"sha256"`
		Body    string `json:"body"`
	} `json:"consentText"`
	Ledger struct {
		Seq  int64  `json:"seq"`
		Hash string `json:"hash"`
	} `json:"ledger"`
}

// Controller is a Kantara piiControllers entry.
type Controller struct {
	PIIController    string `json:"piiController"`
	Contact          string `json:"contact"`
	Address          string `json:"address"`
	Email            string `json:"email"`
	Phone            string `json:"phone"`
	PIIControllerURL string `json:"piiControllerUrl"`
}

// Service_ is a Kantara services entry (one per list). The underscore keeps the name
// free for the consent Service type.
type Service_ struct {
	Service  string    `json:"service"`
	Purposes []Purpose `json:"purposes"`
}

// Purpose is a Kantara purposes entry.
type Purpose struct {
	Purpose              string   `json:"purpose"`
	PurposeCategory      []string `json:"purposeCategory"`
	ConsentType          string   `json:"consentType"`
	PIICategory          []string `json:"piiCategory"`
	PrimaryPurpose       bool     `json:"primaryPurpose"`
	Termination          string   `json:"termination"`
	ThirdPartyDisclosure bool     `json:"thirdPartyDisclosure"`
}

// SignedReceipt is what the receipt link serves: the receipt and a compact JWS (EdDSA)
// over it, verifiable with the instance's published receipt key.
type SignedReceipt struct {
	Receipt Receipt `json:"receipt"`
	JWS     string  `json:"jws"`
}

func (s *Service) receiptURL(accountID, seq, subscriberID int64) string {
	var b [24]byte
	binary.BigEndian.PutUint64(b[0:], uint64(accountID))
	binary.BigEndian.PutUint64(b[8:], uint64(seq))
	binary.BigEndian.PutUint64(b[16:], uint64(subscriberID))
	return s.BaseURL + "/receipt/" + s.Keys.Sign("receipt", b[:])
}

// ReceiptFor builds and signs the receipt a receipt link points to. After the person's
// erasure it is gone (ErrBadLink), like everything else about them.
func (s *Service) ReceiptFor(ctx context.Context, token string) (SignedReceipt, error) {
	p, err := s.Keys.Verify("receipt", token)
	if err != nil || len(p) != 24 {
		return SignedReceipt{}, ErrBadLink
	}
	accountID := int64(binary.BigEndian.Uint64(p[0:]))
	seq := int64(binary.BigEndian.Uint64(p[8:]))
	subscriberID := int64(binary.BigEndian.Uint64(p[16:]))
	r, err := s.receipt(ctx, accountID, seq, subscriberID)
	if errors.Is(err, tidings.ErrNotFound) {
		return SignedReceipt{}, ErrBadLink
	}
	if err != nil {
		return SignedReceipt{}, err
	}
	jws, err := signJWS(s.Keys.ReceiptKey(), r)
	return SignedReceipt{Receipt: r, JWS: jws}, err
}

func (s *Service) receipt(ctx context.Context, accountID, seq, subscriberID int64) (Receipt, error) {
	var r Receipt
	entries, err := s.Store.LedgerEntries(ctx, accountID, seq-1, 1)
	if err != nil {
		return r, err
	}
	if len(entries) != 1 || entries[0].Seq != seq {
		return r, tidings.ErrNotFound
	}
	e := entries[0]
	sub, err := s.Store.GetSubscriber(ctx, accountID, subscriberID)
	if err != nil {
		return r, err
	}
	if sub.PersonID != e.PersonID {
		return r, tidings.ErrNotFound
	}
	acc, err := s.Store.GetAccount(ctx, accountID)
	if err != nil {
		return r, err
	}
	list, err := s.Store.GetList(ctx, accountID, e.ListID)
	if err != nil {
		return r, err
	}
	method := "web form with double opt-in confirmed by email"
	if e.Kind == tidings.LedgerSingleOptIn {
		method = "web form, single opt-in"
	}
	pii := []string{"email address", "name"}
	if sub.TrackingConsent {
		pii = append(pii, "email opens and link clicks")
	}
	r = Receipt{
		Version: "KI-CR-v1.1.0", Jurisdiction: "EU", ConsentTimestamp: e.Time.Unix(), CollectionMethod: method,
		ConsentReceiptID: fmt.Sprintf("tidings-%d-%d-%s", accountID, seq, hex.EncodeToString(e.Hash[:8])),
		PublicKey:        base64.RawURLEncoding.EncodeToString(s.Keys.ReceiptKey().Public().(ed25519.PublicKey)),
		Language:         "en", PIIPrincipalID: sub.Email.String(),
		PIIControllers: []Controller{{PIIController: acc.Name, Contact: acc.ContactEmail, Address: acc.PostalAddress,
			Email: acc.ContactEmail, PIIControllerURL: acc.PrivacyPolicyURL}},
		PolicyURL: acc.PrivacyPolicyURL,
		Services: []Service_{{Service: list.Name, Purposes: []Purpose{{
			Purpose: nonEmpty(list.Purpose, list.Description, "newsletter"), PurposeCategory: []string{"Marketing"},
			ConsentType: "EXPRESSED", PIICategory: pii, PrimaryPurpose: true,
			Termination: "until withdrawn: unsubscribe link in every email, or the subscriber portal", ThirdPartyDisclosure: false}}}},
		SPICat: []string{},
	}
	if e.TextVersion > 0 {
		// The store refuses a text whose body no longer matches its stored SHA-256; a text
		// rewritten with a matching hash still differs from the one the entry recorded.
		text, err := s.Store.ConsentText(ctx, accountID, e.TextVersion)
		if err != nil {
			return r, err
		}
		if !bytes.Equal(text.SHA256, e.TextSHA256) {
			return r, fmt.Errorf("consent: account %d, ledger entry %d, consent text version %d: %w", accountID, seq, e.TextVersion, tidings.ErrConsentTextAltered)
		}
		r.ConsentText.Version, r.ConsentText.SHA256, r.ConsentText.Body = text.Version, hex.EncodeToString(text.SHA256), text.Body
	}
	r.Ledger.Seq, r.Ledger.Hash = e.Seq, hex.EncodeToString(e.Hash)
	return r, nil
}

func nonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

var jwsHeader = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"EdDSA","typ":"JWT"}`))

func signJWS(key ed25519.PrivateKey, claims any) (string, error) {
	body, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	signingInput := jwsHeader + "." + base64.RawURLEncoding.EncodeToString(body)
	sig := ed25519.Sign(key, []byte(signingInput))
	return signingInput + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// VerifyJWS checks a receipt JWS against the instance's public key and returns its payload.
func VerifyJWS(pub ed25519.PublicKey, jws string) ([]byte, error) {
	var parts [3]string
	n := 0
	for i, start := 0, 0; i <= len(jws); i++ {
		if i == len(jws) || jws[i] == '.' {
			if n == 3 {
				return nil, errors.New("jws: too many parts")
			}
			parts[n] = jws[start:i]
			n++
			start = i + 1
		}
	}
	if n != 3 || parts[0] != jwsHeader {
		return nil, errors.New("jws: not an EdDSA compact JWS")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]), sig) {
		return nil, errors.New("jws: bad signature")
	}
	return base64.RawURLEncoding.DecodeString(parts[1])
}

// ReceiptPublicKey is the base64url Ed25519 public key receipts are signed with.
func (s *Service) ReceiptPublicKey() string {
	return base64.RawURLEncoding.EncodeToString(s.Keys.ReceiptKey().Public().(ed25519.PublicKey))
}
