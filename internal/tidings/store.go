package tidings

import (
	"context"
	"time"
)

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
	ConsentStore
	DomainStore
	ImportStore
	CampaignStore
	PersonStore
	TrackingStore
	EventRetentionStore
	PortalStore
	DSARStore
	OpenDSRStore
	Exclusive
	AnalyticsStore
	InactiveStore
	StaffStore
	TermsStore
	AuditStore
	BreachStore
	MembershipStore
	SubscriberHistoryStore
	FeedbackStore

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
	// MarkPublicPageVerified records that the account's public page (still at url) was
	// found linking to Tidings; ErrNotFound if the URL changed meanwhile.
	MarkPublicPageVerified(ctx context.Context, accountID int64, url string, at time.Time) error
}

// UserStore manages people who log in.
type UserStore interface {
	// CreateFirstOperator creates the first operator if, and only if, setupHash matches the
	// stored one-time setup token and no operator exists yet; it consumes the token.
	// A wrong or used token is ErrNotFound.
	CreateFirstOperator(ctx context.Context, setupHash []byte, u *User) error
	CreateUser(ctx context.Context, u *User) error // ErrConflict if the email is taken
	// CreateMember creates a user with a role in the account, both or neither.
	CreateMember(ctx context.Context, accountID int64, u *User, role Role) error
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
	// GetLists returns, in one look-up, the account's lists among ids, in ID order and
	// each once; an ID that is no list of the account is left out (not an error). More
	// than MaxPageSize IDs is a *ValidationError.
	GetLists(ctx context.Context, accountID int64, ids []int64) ([]List, error)
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
	// subscriber of the account; ErrNotFound if a list is not the account's. A tracking
	// consent in s comes with its grant, tracking (nil without consent): it is recorded
	// as SetTrackingConsent records it (the flag and a tracking-change ledger entry), in
	// the same transaction, so that every stored consent is in the ledger. Consent
	// without a grant, or a grant without consent, is a *ValidationError on
	// tracking_consent; consent where the account does not track is TrackingOff. On any
	// error nothing is written.
	CreateSubscriber(ctx context.Context, accountID int64, s *Subscriber, lists []int64, status SubscriptionStatus, tracking *TrackingGrant) error
	GetSubscriber(ctx context.Context, accountID, id int64) (Subscriber, error)
	ListSubscribers(ctx context.Context, accountID int64, f SubscriberFilter) ([]Subscriber, error)
	// UpdateSubscriber replaces name, attributes and status; not the address, nor the
	// tracking consent, which changes only with its ledger entry (SetTrackingConsent,
	// EditSubscriber). The subscriber comes back with the consent as stored.
	UpdateSubscriber(ctx context.Context, accountID int64, s *Subscriber) error
	// EditSubscriber is an edit by the account holder (admin UI, API): it replaces name,
	// attributes and status (not the address) and, when s.TrackingConsent differs from
	// the stored consent, changes that as SetTrackingConsent does (the flag and a
	// tracking-change ledger entry from source, with ev), all in one transaction: on any
	// error nothing is written. Consent given where the account does not track is
	// TrackingOff; ErrNotFound if the subscriber is not the account's.
	EditSubscriber(ctx context.Context, accountID int64, s *Subscriber, source Source, ev Evidence) error
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

// TrackingGrant is a new subscriber's tracking consent as its ledger entry records it:
// the source, and the evidence, whose Note says who recorded it (see SetTrackingConsent).
type TrackingGrant struct {
	Source   Source
	Evidence Evidence
}

// SubscriptionRequest is a sign-up as the consent service hands it to the store.
type SubscriptionRequest struct {
	Email           Address
	Name            string
	Attributes      Attributes
	TrackingConsent bool
	Lists           []int64
	Source          Source
	Text            *ConsentText // the text the person saw; nil for imports and admin adds
	Evidence        Evidence
	// Kind is LedgerRequested (double opt-in: subscriptions stay unconfirmed until the
	// token is used), LedgerSingleOptIn or LedgerImported (confirmed at once).
	Kind      LedgerKind
	TokenHash []byte    // double opt-in: SHA-256 of the confirmation token
	ExpiresAt time.Time // double opt-in: when the request lapses
	// ConfirmUnlessNew turns a LedgerSingleOptIn request into a double opt-in one
	// (TokenHash and ExpiresAt set) when the account already holds the address or has
	// suppressed it: a form on a single opt-in list must not change a known subscriber,
	// undo their unsubscribe, or lift a suppression for whoever typed the address.
	ConfirmUnlessNew bool
	// RespectSuppression refuses suppressed addresses with ErrSuppressed. Controllers'
	// adds (API, import) set it; the person's own request does not, because their
	// confirmed re-subscription is what lifts a suppression.
	RespectSuppression bool
	// Status is the status of the subscriber the request creates ("": active), as the
	// account holder's add sets it; a known subscriber keeps theirs.
	Status SubscriberStatus
}

// SubscriptionResult reports what RequestSubscription stored.
type SubscriptionResult struct {
	Subscriber Subscriber
	LedgerSeq  int64 // the ledger entry of this request
	Requested  bool  // a double opt-in request waits for its link (see ConfirmUnlessNew)
}

// Confirmation reports a confirmed double opt-in.
type Confirmation struct {
	AccountID  int64
	Subscriber Subscriber
	Lists      []int64
	LedgerSeq  int64
	Time       time.Time
	Text       ConsentText // the text the person saw when they asked (version 0: none)
}

// Proof is a stored piece of evidence, e.g. the confirmation mail exactly as sent.
type Proof struct {
	ID        int64     `json:"id"`
	LedgerSeq int64     `json:"ledger_seq"`
	Kind      string    `json:"kind"`
	Data      []byte    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
}

// ConsentStore keeps consent texts, requests, the ledger, proofs and suppressions.
type ConsentStore interface {
	PublishConsentText(ctx context.Context, accountID int64, body string) (ConsentText, error)
	// ConsentText returns one version, or the current one for version 0.
	ConsentText(ctx context.Context, accountID int64, version int) (ConsentText, error)

	// RequestSubscription records a sign-up in one transaction: the subscriber (created,
	// or updated with the new name and a tracking consent it gives; a request without
	// consent never withdraws one), the subscriptions, the pending confirmation when
	// double opt-in, and the ledger entry with sealed evidence.
	RequestSubscription(ctx context.Context, accountID int64, req SubscriptionRequest) (SubscriptionResult, error)
	// AttachProof seals data (e.g. the signed confirmation mail) under the person's key.
	AttachProof(ctx context.Context, accountID, subscriberID, ledgerSeq int64, kind string, data []byte) error
	Proofs(ctx context.Context, accountID, subscriberID int64) ([]Proof, error)
	// ConfirmSubscription uses a pending confirmation once: ErrNotFound when the token is
	// unknown, used or expired. It lifts the account's suppression of the address, and
	// applies the request's changes: a tracking consent the subscriber did not have is
	// given with a tracking-change entry "by the person"; none is ever withdrawn.
	// withoutTracking is the person's choice to confirm without the tracking consent the
	// request asked for: none is given. When every list of the request was deleted
	// meanwhile, it confirms nothing and changes nothing (Lists is empty): the request is
	// used up, and the subscriber goes if nothing else is left.
	ConfirmSubscription(ctx context.Context, tokenHash []byte, ev Evidence, withoutTracking bool) (Confirmation, error)
	// PendingRequest reads the pending confirmation a link would use, changing nothing
	// (a confirm page's GET, which link scanners follow): ErrNotFound when the token is
	// unknown, used or expired, exactly as ConfirmSubscription would answer. Lists holds
	// the lists a confirmation would confirm now: none when all were deleted since.
	PendingRequest(ctx context.Context, tokenHash []byte) (PendingRecord, error)
	// DeclineSubscription deletes the pending request ("this wasn't me"), the unconfirmed
	// subscriptions, and the subscriber if nothing else remains. ErrNotFound when the
	// token is unknown, used or expired, as for ConfirmSubscription: an expired request
	// is left to the retention sweep.
	DeclineSubscription(ctx context.Context, tokenHash []byte, ev Evidence) error
	// WithdrawRequest deletes a pending request whose confirmation mail could not be
	// sent, with what it created, as DeclineSubscription does; the ledger records it as
	// LedgerUnsent. Nobody could confirm it, and the person or the account holder can
	// ask again at once. ErrNotFound if the request is gone.
	WithdrawRequest(ctx context.Context, tokenHash []byte) error
	// Unsubscribe ends the subscriber's subscriptions to lists (every list when lists is
	// empty) in one transaction: a ledger entry per subscription withdrawn, the pending
	// requests for those lists dropped, and the address suppressed in the account once
	// nothing is left. It returns how many subscriptions this call withdrew: of concurrent
	// calls, only one withdraws each. ErrNotFound when the subscriber is not the account's.
	Unsubscribe(ctx context.Context, accountID, subscriberID int64, lists []int64, source Source, ev Evidence) (withdrawn int, err error)
	// ExpireUnconfirmed deletes pending requests created before cutoff or whose link has
	// expired (whatever rule the account set since), with their unconfirmed
	// subscriptions and subscribers left with nothing, and unconfirmed subscriptions
	// created before cutoff that no request asks for; it returns how many requests and
	// such subscriptions.
	// accountID 0 sweeps every account; otherwise only that one.
	ExpireUnconfirmed(ctx context.Context, accountID int64, cutoff time.Time, dryRun bool) (int, error)

	LedgerAccounts(ctx context.Context) ([]int64, error)
	LedgerEntries(ctx context.Context, accountID, afterSeq int64, limit int) ([]LedgerEntry, error)
	LedgerHead(ctx context.Context, accountID int64) (seq int64, hash []byte, err error)
	// OpenEvidence decrypts an entry's evidence (ErrNotFound after erasure).
	OpenEvidence(ctx context.Context, e LedgerEntry) (Evidence, error)

	AddSuppression(ctx context.Context, accountID int64, email Address, reason SuppressionReason) error
	// Suppressed reports whether the address is suppressed for the account or instance-wide.
	Suppressed(ctx context.Context, accountID int64, email Address) (bool, SuppressionReason, error)
	RemoveSuppression(ctx context.Context, accountID int64, email Address) error
}

// SendingDomain is a domain an account sends from, with its DKIM keys.
type SendingDomain struct {
	ID        int64     `json:"id"`
	AccountID int64     `json:"account_id"`
	Domain    string    `json:"domain"`
	Keys      []DKIMKey `json:"keys"`
	CreatedAt time.Time `json:"created_at"`
	// RemovedAt is set once the account removed the domain (or the operator moved it to
	// another account): its keys are all retired then, and kept.
	RemovedAt *time.Time `json:"removed_at,omitempty"`
}

// DKIMKey is one key of a sending domain. PrivateKey is PKCS#8 PEM (sealed at rest).
type DKIMKey struct {
	ID         int64      `json:"id"`
	Selector   string     `json:"selector"`
	Algorithm  string     `json:"algorithm"`
	PrivateKey []byte     `json:"-"`
	PublicKey  []byte     `json:"public_key"` // PKIX DER (RSA) or raw 32 bytes (Ed25519)
	CreatedAt  time.Time  `json:"created_at"`
	RetiredAt  *time.Time `json:"retired_at,omitempty"`
}

// DomainStore keeps sending domains and their DKIM keys.
type DomainStore interface {
	// AddDKIMKey adds a key to the account's domain, creating the domain if new.
	AddDKIMKey(ctx context.Context, accountID int64, domain string, k *DKIMKey) error
	// AddDKIMKeys adds several keys at once: all of them, or none. A selector used on the
	// domain before (see DKIMSelectors) is ErrConflict, with SelectorTaken; a domain another account sends
	// from is a *ValidationError (domain_taken). A domain the account removed is its own
	// again, with its old keys still retired.
	AddDKIMKeys(ctx context.Context, accountID int64, domain string, keys ...*DKIMKey) error
	// RetireDKIMKey stops a key from signing; it stays for verifying old signatures.
	RetireDKIMKey(ctx context.Context, accountID, keyID int64) error
	// SendingDomains lists the domains the account sends from, with their keys (removed
	// domains are left out).
	SendingDomains(ctx context.Context, accountID int64) ([]SendingDomain, error)
	// RemovedSendingDomains lists the domains the account removed or the operator moved
	// away, with their keys, all retired: kept so that mail signed with them, such as
	// stored proof messages, can still be verified.
	RemovedSendingDomains(ctx context.Context, accountID int64) ([]SendingDomain, error)
	// RemoveSendingDomain stops the account from sending from the domain: its keys are
	// retired (and kept), and the domain can be added again, by this account or another.
	// A domain that a campaign not yet sent or cancelled (a draft too) sends from is a
	// *ValidationError (domain_in_use).
	RemoveSendingDomain(ctx context.Context, accountID, domainID int64) error
	// MoveSendingDomain is the operator's: the domain, whichever account sends from it,
	// becomes toAccountID's with the new keys, all or nothing. The account it leaves
	// keeps its keys retired, as after RemoveSendingDomain, and is returned. A domain no
	// account sends from is a *ValidationError (unknown_domain); a missing target account
	// is ErrNotFound.
	MoveSendingDomain(ctx context.Context, domain string, toAccountID int64, keys ...*DKIMKey) (fromAccountID int64, err error)
}

// CampaignStore keeps campaigns and runs their delivery bookkeeping. The claim and
// record methods are the engine's: batches are leased, so that when a node dies its
// batches are taken over after the lease expires.
type CampaignStore interface {
	// CreateCampaign stores a draft. A From address on a domain the account removed is
	// a *ValidationError (domain_removed), checked in the write's transaction, so that
	// a removal at the same time either sees the campaign or refuses it; that the domain
	// is one of the account's at all is send.Check's.
	CreateCampaign(ctx context.Context, accountID int64, c *Campaign) error
	GetCampaign(ctx context.Context, accountID, id int64) (Campaign, error)
	ListCampaigns(ctx context.Context, accountID int64, p Page) ([]Campaign, error)
	// UpdateCampaign changes a draft or scheduled campaign's content and schedule; its
	// From address is checked as CreateCampaign's.
	UpdateCampaign(ctx context.Context, accountID int64, c *Campaign) error
	DeleteCampaign(ctx context.Context, accountID, id int64) error
	// SetCampaignStatus moves a campaign along its life; a move the life does not allow
	// is a *ValidationError. Moving to sending the first time plans the recipients.
	SetCampaignStatus(ctx context.Context, accountID, id int64, to CampaignStatus, reason string) error
	// DueCampaigns lists campaigns of every account that have work: sending, or
	// scheduled with a time that has come (those are started).
	DueCampaigns(ctx context.Context, now time.Time) ([]Campaign, error)
	// ClaimBatch leases the next open batch of a sending campaign to node until leaseUntil.
	// ErrNotFound when there is none to claim.
	ClaimBatch(ctx context.Context, campaignID int64, node string, now, leaseUntil time.Time) (Batch, error)
	// RenewLease extends node's lease of an open batch from held (the lease_until it
	// set) to until. ErrNotFound when the lease is no longer node's at held: the batch
	// is done, or another worker took it over after the lease ran out.
	RenewLease(ctx context.Context, campaignID int64, batchNo int, node string, held, until time.Time) error
	// RecordDeliveries stores results in one transaction (group commit); when done is
	// set, the batch is closed in the same transaction, and the campaign is marked sent
	// when it was the last.
	RecordDeliveries(ctx context.Context, campaignID int64, batchNo int, node string, results []DeliveryResult, done bool) error
	CampaignProgress(ctx context.Context, accountID, id int64) (Progress, error)
}

// Exclusive runs work that exactly one node may do at a time (the retention sweep).
type Exclusive interface {
	// RunExclusive runs fn unless another node holds the named lock; it reports whether
	// fn ran.
	RunExclusive(ctx context.Context, name string, fn func(context.Context) error) (bool, error)
}
