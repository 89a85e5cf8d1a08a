package tidings

import (
	"context"
	"crypto/sha256"
	"time"
)

// PersonRecord is everything one account holds about a person: the answer to an access
// or portability request, account by account.
type PersonRecord struct {
	Account       Account          `json:"account"`
	Subscriber    Subscriber       `json:"subscriber"`
	Subscriptions []Subscription   `json:"subscriptions"`
	Consent       []ConsentRecord  `json:"consent"`
	Deliveries    []DeliveryRecord `json:"deliveries"`
	Events        []EventRecord    `json:"events"` // opens and clicks recorded personally
	// Pending are double opt-in requests not yet confirmed, with what they would
	// change: held (sealed) until the link is used, declined or expires.
	Pending []PendingRecord `json:"pending"`
}

// PendingRecord is one double opt-in request awaiting its link: the lists it asks for
// and what it would change of the subscriber once confirmed.
type PendingRecord struct {
	Lists     []int64         `json:"lists"`
	CreatedAt time.Time       `json:"created_at"`
	ExpiresAt time.Time       `json:"expires_at"`
	Changes   *PendingChanges `json:"changes,omitempty"` // nil: a request from before changes were kept
}

// PendingChanges is what a pending request would set on confirmation.
type PendingChanges struct {
	Name            string     `json:"name"`
	Attributes      Attributes `json:"attributes"`
	TrackingConsent bool       `json:"tracking_consent"`
}

// EventRecord is one open or click recorded with the person's subscriber ID (tracking
// they consented to); anonymous events hold nothing about them and are not listed.
type EventRecord struct {
	CampaignID int64     `json:"campaign_id"`
	Kind       EventKind `json:"kind"`
	URL        string    `json:"url,omitempty"`
	Automated  bool      `json:"automated"`
	Time       time.Time `json:"time"`
}

// ConsentRecord is a ledger entry with its evidence opened.
type ConsentRecord struct {
	Seq      int64      `json:"seq"`
	Time     time.Time  `json:"time"`
	Kind     LedgerKind `json:"kind"`
	ListID   int64      `json:"list_id"`
	Source   Source     `json:"source"`
	Evidence Evidence   `json:"evidence"`
}

// DeliveryRecord is one campaign message sent (or attempted) to the person.
type DeliveryRecord struct {
	CampaignID   int64          `json:"campaign_id"`
	CampaignName string         `json:"campaign_name"`
	Status       DeliveryStatus `json:"status"`
	SentAt       *time.Time     `json:"sent_at,omitempty"`
}

// Erasure reports what ErasePerson did.
type Erasure struct {
	Accounts     []int64 `json:"accounts"`      // accounts whose data about the person was deleted
	KeyDestroyed bool    `json:"key_destroyed"` // the person's data key is gone: no copy can be decrypted with this instance
}

// PersonStore answers data-subject requests across every account.
type PersonStore interface {
	// PersonData returns every account's records about the address (none: empty).
	PersonData(ctx context.Context, email Address) ([]PersonRecord, error)
	// ErasePerson deletes the person's data in one account, or in all (accountID 0),
	// leaving a suppression hash in each, and the ledger's chain with the evidence
	// removed. When no account holds the person any more, their data key is destroyed.
	ErasePerson(ctx context.Context, email Address, accountID int64) (Erasure, error)
	// SweepOrphanKeys deletes data keys that belong to no person (left by a crash in the
	// middle of an erasure, or by a sign-up that failed after its key was made) and
	// returns how many.
	SweepOrphanKeys(ctx context.Context) (int64, error)
	// AddressByDigest finds the account's subscriber whose normalised address has the
	// given SHA-256 (OpenDSR's sha256 identities) and returns the address; ErrNotFound
	// when the account holds nobody with it.
	AddressByDigest(ctx context.Context, accountID int64, digest [sha256.Size]byte) (Address, error)
}

// PortalStore keeps the subscriber portal's sign-in links and sessions.
type PortalStore interface {
	// CreatePortalToken stores a sign-in link (session false) or a session (true).
	CreatePortalToken(ctx context.Context, hash []byte, email Address, session bool, expires time.Time) error
	// UsePortalToken returns the address of a live token; a sign-in link is consumed
	// (single use). ErrNotFound for unknown, used or expired tokens.
	UsePortalToken(ctx context.Context, hash []byte, session bool) (Address, error)
	DeletePortalToken(ctx context.Context, hash []byte) error
}

// DSARKind is the right a data-subject request exercises.
type DSARKind string

const (
	DSARAccess        DSARKind = "access"
	DSARPortability   DSARKind = "portability"
	DSARRectification DSARKind = "rectification"
	DSARErasure       DSARKind = "erasure"
	DSARRestriction   DSARKind = "restriction"
	DSARObjection     DSARKind = "objection"
	DSARTracking      DSARKind = "tracking_consent"
	DSARUnsubscribe   DSARKind = "unsubscribe"
)

// DSAR is one entry of an account's data-subject request log.
type DSAR struct {
	ID          int64      `json:"id"`
	AccountID   int64      `json:"account_id"`
	Kind        DSARKind   `json:"kind"`
	Source      Source     `json:"source"`
	ReceivedAt  time.Time  `json:"received_at"`
	DueAt       time.Time  `json:"due_at"` // one month after receipt (Art. 12(3))
	CompletedAt *time.Time `json:"completed_at,omitempty"`
}

// DSARStore keeps the request log.
type DSARStore interface {
	// LogDSAR records a request about email in the account; completed marks it done at once
	// (self-service requests are fulfilled as they are made).
	LogDSAR(ctx context.Context, accountID int64, email Address, kind DSARKind, source Source, completed bool) error
	// LogDSARDigest is LogDSAR for a person known only by the SHA-256 of their
	// normalised address (OpenDSR's sha256 identities), whom the account does not hold.
	LogDSARDigest(ctx context.Context, accountID int64, digest [sha256.Size]byte, kind DSARKind, source Source, completed bool) error
	ListDSARs(ctx context.Context, accountID int64, p Page) ([]DSAR, error)
	// SetTrackingConsent changes a subscriber's tracking consent and records it in the
	// ledger. ev.Note says who made the change (a staff user or API token by ID, never
	// the person's address); the entry's note is "tracking consent given" or "tracking
	// consent withdrawn", then it. The person's own change (portal, form, mail link)
	// may leave it empty: it then says "by the person". Staff and API changes that do
	// not say who made them are refused.
	SetTrackingConsent(ctx context.Context, accountID, subscriberID int64, on bool, source Source, ev Evidence) error
}

// OpenDSRRequest is a data-subject request a controller routed to Tidings through the
// OpenDSR API.
type OpenDSRRequest struct {
	ID          string     `json:"subject_request_id"`
	AccountID   int64      `json:"-"`
	Kind        string     `json:"subject_request_type"` // erasure, access, portability
	Status      string     `json:"request_status"`       // pending, in_progress, completed, cancelled
	Email       Address    `json:"-"`                    // kept only for access/portability results
	Callbacks   []string   `json:"-"`
	ReceivedAt  time.Time  `json:"received_time"`
	ExpectedAt  time.Time  `json:"expected_completion_time"`
	CompletedAt *time.Time `json:"completed_time,omitempty"`
}

// OpenDSRStore keeps OpenDSR requests.
type OpenDSRStore interface {
	CreateOpenDSR(ctx context.Context, r *OpenDSRRequest) error // ErrConflict for a reused ID
	GetOpenDSR(ctx context.Context, accountID int64, id string) (OpenDSRRequest, error)
	// SetOpenDSRStatus moves the request on; keepEmail false drops the sealed address.
	SetOpenDSRStatus(ctx context.Context, accountID int64, id, status string, keepEmail bool) error
}

// InactiveStore deletes subscribers who have shown no sign of life for a long time.
type InactiveStore interface {
	// AccountsDeletingInactive lists accounts that enabled the rule.
	AccountsDeletingInactive(ctx context.Context) ([]Account, error)
	// DeleteInactive deletes the account's subscribers with no open, click, confirmation
	// or change since cutoff (their evidence too; no suppression: they may come back).
	DeleteInactive(ctx context.Context, accountID int64, cutoff time.Time, dryRun bool) (int, error)
}
