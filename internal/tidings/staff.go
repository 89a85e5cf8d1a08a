package tidings

import (
	"context"
	"time"
)

// This file holds what the admin UI needs to keep the people who log in safe: their
// sessions, second factors, login history, the terms they accepted, the audit trail of
// what they did with personal data, and the operator's breach register.

// UserSecurity is the login state of a user, kept apart from User so that listings
// never carry secrets.
type UserSecurity struct {
	// TOTPSecret is sealed under the instance key (the store never sees it in clear).
	TOTPSecret        []byte
	TOTPEnabled       bool
	FailedLogins      int       // consecutive failures since the last success
	LockedUntil       time.Time // zero: not locked
	PasswordChangedAt time.Time
}

// StaffSession is a logged-in browser. Only the SHA-256 of its cookie is stored.
type StaffSession struct {
	UserID     int64
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time // absolute end, whatever the activity
}

// LoginResult says how a login attempt ended.
type LoginResult string

const (
	LoginOK           LoginResult = "ok"
	LoginBadPassword  LoginResult = "bad_password"
	LoginUnknownUser  LoginResult = "unknown_user"
	LoginBadTOTP      LoginResult = "bad_second_factor"
	LoginLocked       LoginResult = "locked"
	LoginThrottled    LoginResult = "throttled"
	LoginRecoveryCode LoginResult = "ok_recovery_code"
)

// LoginAttempt is one row of the login log. UserID is 0 for an address nobody has (the
// address itself is not kept).
type LoginAttempt struct {
	ID        int64       `json:"id"`
	UserID    int64       `json:"user_id,omitempty"`
	IP        string      `json:"ip"`
	UserAgent string      `json:"user_agent"`
	Result    LoginResult `json:"result"`
	At        time.Time   `json:"at"`
}

// Member is a user with their role in one account.
type Member struct {
	User
	Role        Role `json:"role"`
	TOTPEnabled bool `json:"totp_enabled"`
}

// TermsVersion is a published version of the operator's terms (the disclaimer every user
// must accept before going on).
type TermsVersion struct {
	Version     int       `json:"version"`
	Text        string    `json:"text"`
	PublishedAt time.Time `json:"published_at"`
}

// TermsAcceptance records that a user accepted a version.
type TermsAcceptance struct {
	UserID     int64     `json:"user_id"`
	Email      string    `json:"email"`
	Version    int       `json:"version"`
	AcceptedAt time.Time `json:"accepted_at"`
	IP         string    `json:"ip"`
}

// AuditEntry is one staff action that touched personal data or settings. AccountID 0 is
// a platform action. Target names the object (e.g. "subscriber 42"), never an address.
type AuditEntry struct {
	ID        int64     `json:"id"`
	AccountID int64     `json:"account_id,omitempty"`
	UserID    int64     `json:"user_id"`
	UserEmail string    `json:"user_email,omitempty"`
	Action    string    `json:"action"`
	Target    string    `json:"target"`
	IP        string    `json:"ip"`
	At        time.Time `json:"at"`
}

// Breach is an entry of the operator's breach register (Art. 33 GDPR: the processor
// tells the controllers without undue delay; they have 72 hours to tell the authority).
type Breach struct {
	ID             int64     `json:"id"`
	Title          string    `json:"title"`
	Description    string    `json:"description"`     // what happened
	DataCategories []string  `json:"data_categories"` // e.g. "email addresses", "names"
	Consequences   string    `json:"consequences"`    // likely consequences
	Measures       string    `json:"measures"`        // what was and will be done
	OccurredAt     time.Time `json:"occurred_at"`     // zero when unknown
	DiscoveredAt   time.Time `json:"discovered_at"`
	// AuthorityNotifiedAt is when the supervisory authority was told (by whoever must).
	AuthorityNotifiedAt *time.Time      `json:"authority_notified_at,omitempty"`
	ClosedAt            *time.Time      `json:"closed_at,omitempty"`
	Accounts            []BreachAccount `json:"accounts"`
	CreatedAt           time.Time       `json:"created_at"`
	UpdatedAt           time.Time       `json:"updated_at"`
}

// BreachAccount is an affected account and when its holder was told.
type BreachAccount struct {
	AccountID  int64      `json:"account_id"`
	Name       string     `json:"name"`
	NotifiedAt *time.Time `json:"notified_at,omitempty"`
}

// LoginLogRetention is how long the login log keeps attempts.
const LoginLogRetention = 180 * 24 * time.Hour

// BreachDeadline is the time the GDPR gives to notify the authority after discovery.
const BreachDeadline = 72 * time.Hour

// Deadline is when the 72 hours after discovery run out.
func (b Breach) Deadline() time.Time { return b.DiscoveredAt.Add(BreachDeadline) }

// Validate checks a breach before it is stored.
func (b *Breach) Validate() error {
	if err := requireText("title", b.Title, 200); err != nil {
		return err
	}
	if err := requireText("description", b.Description, 20000); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{{"consequences", b.Consequences}, {"measures", b.Measures}} {
		if err := optionalText(f.name, f.v, 20000); err != nil {
			return err
		}
	}
	if len(b.DataCategories) == 0 {
		return Invalid("data_categories", "required", "name at least one category of personal data")
	}
	for _, c := range b.DataCategories {
		if err := requireText("data_categories", c, 200); err != nil {
			return err
		}
	}
	if b.DiscoveredAt.IsZero() {
		return Invalid("discovered_at", "required", "is required")
	}
	if !b.OccurredAt.IsZero() && b.OccurredAt.After(b.DiscoveredAt) {
		return Invalid("occurred_at", "out_of_range", "cannot be after the discovery")
	}
	return nil
}

// StaffStore keeps the login side of users: security state, sessions, login log,
// password resets, recovery codes, memberships by account.
type StaffStore interface {
	UserSecurity(ctx context.Context, userID int64) (UserSecurity, error)
	// RecordLogin appends to the login log. For a failure of a known user it counts the
	// failure and, at lockAfter consecutive failures, locks the user until lockUntil; a
	// success clears the count.
	RecordLogin(ctx context.Context, a LoginAttempt, lockAfter int, lockUntil time.Time) error
	LoginAttempts(ctx context.Context, userID int64, p Page) ([]LoginAttempt, error) // newest first; userID 0: everyone's
	// PruneLoginAttempts deletes attempts older than before (staff IPs are personal
	// data too); it returns how many.
	PruneLoginAttempts(ctx context.Context, before time.Time) (int64, error)
	// SetPassword replaces the hash, clears any lock and ends every session of the user.
	SetPassword(ctx context.Context, userID int64, hash string) error
	UpdateUserName(ctx context.Context, userID int64, name string) error
	// SetTOTP stores the (sealed) secret and whether it is on, and replaces the recovery
	// codes by these hashes. A nil secret turns two-factor off and drops the codes.
	SetTOTP(ctx context.Context, userID int64, sealedSecret []byte, enabled bool, recoveryHashes [][]byte) error
	// UseTOTPStep records that the TOTP code of this time step signed the user in;
	// ErrNotFound if that step or a later one was used already (a replayed code).
	UseTOTPStep(ctx context.Context, userID, step int64) error
	// UseRecoveryCode consumes one code; ErrNotFound if it is unknown or used.
	UseRecoveryCode(ctx context.Context, userID int64, hash []byte) error
	RecoveryCodesLeft(ctx context.Context, userID int64) (int, error)

	CreateStaffSession(ctx context.Context, hash []byte, s StaffSession) error
	// StaffSession returns the live session with this hash and marks it seen at now; an
	// expired or idle one (last seen before idleSince) is deleted and ErrNotFound.
	StaffSession(ctx context.Context, hash []byte, now, idleSince time.Time) (StaffSession, error)
	DeleteStaffSession(ctx context.Context, hash []byte) error

	CreatePasswordReset(ctx context.Context, userID int64, hash []byte, expires time.Time) error
	// ConsumePasswordReset returns the user of a live, unused token and uses it up.
	ConsumePasswordReset(ctx context.Context, hash []byte, now time.Time) (int64, error)

	// Members lists the users of an account with their roles.
	Members(ctx context.Context, accountID int64) ([]Member, error)
	RemoveMembership(ctx context.Context, accountID, userID int64) error
	ListUsers(ctx context.Context, p Page) ([]User, error) // operators: every user
}

// TermsStore keeps the operator's terms versions and who accepted which.
type TermsStore interface {
	PublishTerms(ctx context.Context, text string) (TermsVersion, error)
	LatestTerms(ctx context.Context) (TermsVersion, error) // ErrNotFound when none published
	AcceptTerms(ctx context.Context, userID int64, version int, ip string) error
	AcceptedTerms(ctx context.Context, userID int64) (int, error) // the highest version accepted; 0 if none
	TermsAcceptances(ctx context.Context, p Page) ([]TermsAcceptance, error)
}

// AuditStore keeps the audit log.
type AuditStore interface {
	Audit(ctx context.Context, e AuditEntry) error
	// AuditLog lists entries newest first with ID < before (0: from the newest); account
	// 0 lists every account's (operators).
	AuditLog(ctx context.Context, accountID int64, before int64, limit int) ([]AuditEntry, error)
}

// BreachStore keeps the breach register.
type BreachStore interface {
	CreateBreach(ctx context.Context, b *Breach) error
	UpdateBreach(ctx context.Context, b *Breach) error // facts, measures, authority/closed times; not the accounts
	GetBreach(ctx context.Context, id int64) (Breach, error)
	ListBreaches(ctx context.Context) ([]Breach, error) // newest first
	MarkBreachNotified(ctx context.Context, breachID, accountID int64, at time.Time) error
}
