package tidings

import "context"

// SubscriberHistoryStore reads one subscriber's consent history, for the admin UI's
// subscriber page (the person's ledger entries in one account, without loading the
// whole account's ledger or the person's data in other accounts).
type SubscriberHistoryStore interface {
	// SubscriberLedger returns the ledger entries of the subscriber's person in the
	// account, oldest first: seq > p.After, at most p.Limit (clamped). ErrNotFound when
	// the subscriber is not the account's.
	SubscriberLedger(ctx context.Context, accountID, subscriberID int64, p Page) ([]LedgerEntry, error)
}
