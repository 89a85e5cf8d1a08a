package tidings

import (
	"context"
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
