package tidings

import (
	"encoding/json"
	"strings"
	"time"
)

// SubscriberStatus is the processing state of a subscriber within one account.
type SubscriberStatus string

const (
	StatusActive     SubscriberStatus = "active"     // may receive the lists they are confirmed on
	StatusRestricted SubscriberStatus = "restricted" // Art. 18: data kept, no processing (no mail)
	StatusObjected   SubscriberStatus = "objected"   // Art. 21: no direct marketing
)

// Valid reports whether s is a known status.
func (s SubscriberStatus) Valid() bool {
	return s == StatusActive || s == StatusRestricted || s == StatusObjected
}

// Subscriber is a person as known to one account. Email, Name and Attributes are personal
// data: stores keep them encrypted under the person's data key.
type Subscriber struct {
	ID              int64            `json:"id"`
	AccountID       int64            `json:"account_id"`
	PersonID        int64            `json:"-"`
	Email           Address          `json:"email"`
	Name            string           `json:"name"`
	Attributes      Attributes       `json:"attributes"`
	Status          SubscriberStatus `json:"status"`
	TrackingConsent bool             `json:"tracking_consent"`
	CreatedAt       time.Time        `json:"created_at"`
	UpdatedAt       time.Time        `json:"updated_at"`
}

// Normalize trims the name and fills in defaults.
func (s *Subscriber) Normalize() {
	s.Name = strings.TrimSpace(s.Name)
	if s.Status == "" {
		s.Status = StatusActive
	}
	if s.Attributes == nil {
		s.Attributes = Attributes{}
	}
}

// Validate reports the first field that breaks the rules.
func (s *Subscriber) Validate() error {
	if s.Email.IsZero() {
		return Invalid("email", "required", "is required")
	}
	if err := optionalText("name", s.Name, 200); err != nil {
		return err
	}
	if !s.Status.Valid() {
		return Invalid("status", "invalid_choice", "must be one of active, restricted, objected")
	}
	return s.Attributes.Validate()
}

// TrackingOff refuses consent to tracking where the account does not track: there is
// nothing to consent to.
func TrackingOff() *ValidationError {
	return Invalid("tracking_consent", "tracking_off", "this account does not use open and click tracking; turn it on in the account settings first")
}

// Attributes are free-form subscriber properties (JSON object), used in templates and
// segment filters.
type Attributes map[string]any

// Limits on attributes keep rows small and templates predictable.
const (
	MaxAttributes      = 50
	MaxAttributesBytes = 8 << 10
)

// validAttrKey reports whether k is an attribute name: a letter or underscore, then up
// to 63 letters, digits and underscores (ASCII).
func validAttrKey(k string) bool {
	if len(k) == 0 || len(k) > 64 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// Validate checks key names and the encoded size.
func (a Attributes) Validate() error {
	if len(a) > MaxAttributes {
		return Invalid("attributes", "too_many", "may hold at most %d keys", MaxAttributes)
	}
	for k := range a {
		if !validAttrKey(k) {
			return Invalid("attributes."+k, "bad_key",
				"attribute names must start with a letter or underscore and use only letters, digits and underscores (at most 64)")
		}
	}
	if a.surelyFits() {
		return nil
	}
	b, err := json.Marshal(a)
	if err != nil {
		return Invalid("attributes", "invalid", "cannot be encoded as JSON")
	}
	if len(b) > MaxAttributesBytes {
		return Invalid("attributes", "too_long", "must encode to at most %d bytes of JSON", MaxAttributesBytes)
	}
	return nil
}

// surelyFits reports, without encoding, that a encodes within MaxAttributesBytes: every
// value is a string, and the object would fit even if each byte of every key and value
// took six (\u00XX, the longest escape per byte), plus quotes, colon and comma. An
// import checks a million rows; anything else is encoded and measured.
func (a Attributes) surelyFits() bool {
	n := len("{}")
	for k, v := range a {
		s, ok := v.(string)
		if !ok {
			return false
		}
		n += 6*(len(k)+len(s)) + len(`"":"",`)
	}
	return n <= MaxAttributesBytes
}

// SubscriptionStatus is the state of a subscriber on one list.
type SubscriptionStatus string

const (
	SubUnconfirmed  SubscriptionStatus = "unconfirmed"
	SubConfirmed    SubscriptionStatus = "confirmed"
	SubUnsubscribed SubscriptionStatus = "unsubscribed"
)

// Valid reports whether s is a known status.
func (s SubscriptionStatus) Valid() bool {
	return s == SubUnconfirmed || s == SubConfirmed || s == SubUnsubscribed
}

// Subscription is a subscriber on a list.
type Subscription struct {
	ListID         int64              `json:"list_id"`
	SubscriberID   int64              `json:"subscriber_id"`
	Status         SubscriptionStatus `json:"status"`
	CreatedAt      time.Time          `json:"created_at"`
	ConfirmedAt    *time.Time         `json:"confirmed_at,omitempty"`
	UnsubscribedAt *time.Time         `json:"unsubscribed_at,omitempty"`
	// AwaitingUntil is when the latest confirmation request for this list expires, while
	// one is waiting to be used (unconfirmed subscriptions only).
	AwaitingUntil *time.Time `json:"awaiting_confirmation_until,omitempty"`
}
