package tidings

import (
	"net/url"
	"strings"
	"time"
)

// Account is an account holder: a GDPR controller that owns lists, subscribers and
// campaigns. Every piece of account data carries its AccountID.
type Account struct {
	ID               int64  `json:"id"`
	Name             string `json:"name"`               // the controller's legal name, shown in every mail footer
	PostalAddress    string `json:"postal_address"`     // shown in every mail footer
	ContactEmail     string `json:"contact_email"`      // where subscribers and the operator reach the controller
	PrivacyPolicyURL string `json:"privacy_policy_url"` // linked from forms, mails and the portal
	TrackingEnabled  bool   `json:"tracking_enabled"`   // off by default: no tracking without the controller's choice
	// AnonymousCounts lets tracking count, without any link to the person, the opens and
	// clicks of subscribers who did not consent to tracking. Off by default.
	AnonymousCounts bool `json:"anonymous_counts"`
	// EditableAttributes are the subscriber attributes people may correct in the portal
	// (their name is always editable).
	EditableAttributes []string `json:"editable_attributes"`
	// InactiveDays deletes subscribers with no activity (no open or click, no confirmation,
	// no change) for that many days; 0 (the default) never does.
	InactiveDays int `json:"inactive_days"`
	// EventDays and UnconfirmedDays shorten, for this account, how long tracking events
	// (instance rule: EventRetention) and unconfirmed sign-ups (7 days) are kept. 0 keeps
	// the instance rule; an account may only shorten it.
	EventDays       int `json:"event_days"`
	UnconfirmedDays int `json:"unconfirmed_days"`
	// RequireTOTP makes two-factor sign-in compulsory for the account's staff.
	RequireTOTP bool `json:"require_totp"`
	// PublicPageURL is a page on the controller's own website that links to its Tidings
	// pages, so people can check that a Tidings page really is theirs (phishing defence).
	// PublicPageVerifiedAt is when Tidings last found the link there.
	PublicPageURL        string     `json:"public_page_url"`
	PublicPageVerifiedAt *time.Time `json:"public_page_verified_at,omitempty"`
	CreatedAt            time.Time  `json:"created_at"`
	UpdatedAt            time.Time  `json:"updated_at"`
}

// Normalize trims the free-text fields and normalises the contact address.
func (a *Account) Normalize() {
	a.Name = strings.TrimSpace(a.Name)
	a.PostalAddress = strings.TrimSpace(a.PostalAddress)
	a.PrivacyPolicyURL = strings.TrimSpace(a.PrivacyPolicyURL)
	a.PublicPageURL = strings.TrimSpace(a.PublicPageURL)
	if addr, err := ParseAddress(a.ContactEmail); err == nil {
		a.ContactEmail = addr.String()
	}
}

// Validate reports the first field that breaks the rules.
func (a *Account) Validate() error {
	if err := requireText("name", a.Name, 200); err != nil {
		return err
	}
	if strings.TrimSpace(a.ContactEmail) == "" {
		return Invalid("contact_email", "required", "is required")
	}
	if _, err := ParseAddress(a.ContactEmail); err != nil {
		v, _ := AsValidation(err)
		return Invalid("contact_email", v.Code, "%s", v.Message)
	}
	if a.InactiveDays < 0 || a.InactiveDays > 36500 {
		return Invalid("inactive_days", "out_of_range", "must be 0 (never) or a number of days up to 36500")
	}
	if a.EventDays < 0 || a.EventDays > MaxEventDays {
		return Invalid("event_days", "out_of_range", "must be 0 (the instance rule) or 1 to %d days", MaxEventDays)
	}
	if a.UnconfirmedDays < 0 || a.UnconfirmedDays > MaxUnconfirmedDays {
		return Invalid("unconfirmed_days", "out_of_range", "must be 0 (the instance rule) or 1 to %d days", MaxUnconfirmedDays)
	}
	for _, k := range a.EditableAttributes {
		if !validAttrKey(k) {
			return Invalid("editable_attributes", "bad_key", "%q is not an attribute name", k)
		}
	}
	if err := validateURL("public_page_url", a.PublicPageURL); err != nil {
		return err
	}
	if err := validateURL("privacy_policy_url", a.PrivacyPolicyURL); err != nil {
		return err
	}
	// Every mail's footer names the controller with their postal address (and the
	// consent receipt's "address" field needs it): an account cannot do without one.
	return requireText("postal_address", a.PostalAddress, 500)
}

// The instance's retention rules, in days; accounts may shorten them, not lengthen them.
const (
	MaxEventDays       = 183
	MaxUnconfirmedDays = 7
)

// Role is what a user may do inside one account.
type Role string

const (
	RoleOwner  Role = "owner"  // everything, including users, tokens and deleting the account
	RoleAdmin  Role = "admin"  // everything except managing owners
	RoleEditor Role = "editor" // lists, subscribers, campaigns
	RoleViewer Role = "viewer" // read-only; no bulk access to personal data
)

// Valid reports whether r is one of the known roles.
func (r Role) Valid() bool {
	switch r {
	case RoleOwner, RoleAdmin, RoleEditor, RoleViewer:
		return true
	}
	return false
}

// User is a person who logs in to the admin UI: account staff or an operator.
type User struct {
	ID           int64     `json:"id"`
	Email        string    `json:"email"`
	Name         string    `json:"name"`
	PasswordHash string    `json:"-"`
	Operator     bool      `json:"operator"` // platform admin of the whole instance
	CreatedAt    time.Time `json:"created_at"`
}

// Membership gives a user a role in an account.
type Membership struct {
	UserID    int64 `json:"user_id"`
	AccountID int64 `json:"account_id"`
	Role      Role  `json:"role"`
}

// APIToken authorises API calls. AccountID 0 means an operator token (platform-wide,
// may manage accounts); otherwise the token acts within that account only. The secret
// itself is never stored, only its SHA-256.
type APIToken struct {
	ID         int64      `json:"id"`
	AccountID  int64      `json:"account_id,omitempty"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"` // the first characters, so people can recognise a token
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

// Operator reports whether the token is platform-wide.
func (t APIToken) Operator() bool { return t.AccountID == 0 }

func requireText(field, s string, max int) error {
	if strings.TrimSpace(s) == "" {
		return Invalid(field, "required", "is required")
	}
	return optionalText(field, s, max)
}

func optionalText(field, s string, max int) error {
	if len(s) > max {
		return Invalid(field, "too_long", "must be at most %d bytes", max)
	}
	for _, r := range s {
		if r < 0x20 && r != '\n' && r != '\t' || r == 0x7f || r == '\uFFFD' {
			return Invalid(field, "bad_characters", "contains control characters or invalid UTF-8")
		}
	}
	return nil
}

func validateURL(field, s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return Invalid(field, "invalid_url", "must be an absolute http(s) URL, like https://example.com/privacy")
	}
	return optionalText(field, s, 2000)
}
