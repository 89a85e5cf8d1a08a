package tidings

import "context"

// Store is everything the application needs from persistence. Implementations live in
// internal/sqlstore; internal/storetest holds the conformance suite every engine passes.
//
// Conventions for every method:
//   - methods that touch account data take the account ID and never see another
//     account's rows: a row of another account is ErrNotFound, exactly like a missing one;
//   - one method is one transaction: it either happens completely or not at all;
//   - errors: ErrNotFound, ErrConflict (uniqueness), *ValidationError, or wrapped internals;
//     never (zero value, nil) for a missing row.
type Store interface {
	AccountStore
	UserStore
	TokenStore
	ListStore
	SubscriberStore
	SettingStore

	// Ping checks that the database answers and the schema is current (for /readyz).
	Ping(ctx context.Context) error
	Close() error
}

// Page asks for one page of a keyset-paginated listing: rows with ID > After, at most Limit.
type Page struct {
	After int64
	Limit int
}

// Page limits.
const (
	DefaultPageSize = 50
	MaxPageSize     = 1000
)

// Clamp returns p with Limit inside 1..MaxPageSize (DefaultPageSize when unset).
func (p Page) Clamp() Page {
	if p.Limit <= 0 {
		p.Limit = DefaultPageSize
	}
	if p.Limit > MaxPageSize {
		p.Limit = MaxPageSize
	}
	if p.After < 0 {
		p.After = 0
	}
	return p
}

// AccountStore manages account holders. These methods are for operators: they are the
// only ones not scoped by an account ID.
type AccountStore interface {
	CreateAccount(ctx context.Context, a *Account) error // sets ID, CreatedAt, UpdatedAt
	GetAccount(ctx context.Context, id int64) (Account, error)
	ListAccounts(ctx context.Context, p Page) ([]Account, error)
	UpdateAccount(ctx context.Context, a *Account) error // by a.ID; sets UpdatedAt
	DeleteAccount(ctx context.Context, id int64) error   // and everything the account owns
}

// UserStore manages people who log in.
type UserStore interface {
	// CreateFirstOperator creates the first operator if, and only if, setupHash matches the
	// stored one-time setup token and no operator exists yet; it consumes the token.
	// A wrong or used token is ErrNotFound.
	CreateFirstOperator(ctx context.Context, setupHash []byte, u *User) error
	CreateUser(ctx context.Context, u *User) error // ErrConflict if the email is taken
	GetUser(ctx context.Context, id int64) (User, error)
	UserByEmail(ctx context.Context, email string) (User, error)
	CountOperators(ctx context.Context) (int, error)
	// SetMembership gives the user a role in the account (replacing any previous role).
	SetMembership(ctx context.Context, accountID, userID int64, role Role) error
	Memberships(ctx context.Context, userID int64) ([]Membership, error)
}

// TokenStore manages API tokens; only hashes are stored.
type TokenStore interface {
	CreateToken(ctx context.Context, t *APIToken, hash []byte) error
	// TokenByHash finds a live token by the SHA-256 of its secret and marks it used.
	TokenByHash(ctx context.Context, hash []byte) (APIToken, error)
	ListTokens(ctx context.Context, accountID int64) ([]APIToken, error)
	DeleteToken(ctx context.Context, accountID, id int64) error
}

// ListStore manages mailing lists.
type ListStore interface {
	CreateList(ctx context.Context, accountID int64, l *List) error // ErrConflict on a duplicate name
	GetList(ctx context.Context, accountID, id int64) (List, error)
	ListLists(ctx context.Context, accountID int64, p Page) ([]List, error)
	UpdateList(ctx context.Context, accountID int64, l *List) error
	DeleteList(ctx context.Context, accountID, id int64) error
}

// SubscriberFilter narrows ListSubscribers.
type SubscriberFilter struct {
	Email  Address          // exact match on the normalised address (found by keyed hash)
	ListID int64            // only subscribers with a subscription on this list
	Status SubscriberStatus // only this status
	Page
}

// SubscriberStore manages subscribers and their subscriptions.
type SubscriberStore interface {
	// CreateSubscriber adds a subscriber and subscribes them to the given lists of the
	// same account with the given status. ErrConflict if the address is already a
	// subscriber of the account; ErrNotFound if a list is not the account's.
	CreateSubscriber(ctx context.Context, accountID int64, s *Subscriber, lists []int64, status SubscriptionStatus) error
	GetSubscriber(ctx context.Context, accountID, id int64) (Subscriber, error)
	ListSubscribers(ctx context.Context, accountID int64, f SubscriberFilter) ([]Subscriber, error)
	// UpdateSubscriber replaces name, attributes, status and tracking consent (not the address).
	UpdateSubscriber(ctx context.Context, accountID int64, s *Subscriber) error
	DeleteSubscriber(ctx context.Context, accountID, id int64) error
	Subscriptions(ctx context.Context, accountID, subscriberID int64) ([]Subscription, error)
	// SetSubscription creates or changes one subscription of the subscriber.
	SetSubscription(ctx context.Context, accountID, subscriberID, listID int64, status SubscriptionStatus) error
}

// SettingStore keeps small instance-wide values (setup token hash, schema facts).
type SettingStore interface {
	GetSetting(ctx context.Context, key string) (string, error) // ErrNotFound when unset
	PutSetting(ctx context.Context, key, value string) error
}
