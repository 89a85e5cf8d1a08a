// Package auth signs staff and operators in: passwords (argon2id, strength-checked),
// TOTP second factors with recovery codes, lockout after repeated failures, sessions,
// password resets and the terms every user must accept. It knows nothing of HTTP; the
// admin UI calls it with what it read from the request.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ccojocar/zxcvbn-go"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/tidings/tidings/internal/keys"
	"github.com/tidings/tidings/internal/tidings"
)

// Policy holds the numbers of the login rules.
type Policy struct {
	LockAfter   int           // consecutive failures that lock a user…
	LockFor     time.Duration // …for this long
	IdleTimeout time.Duration // a session unused this long ends
	MaxAge      time.Duration // a session ends this long after sign-in, whatever the activity
	ResetTTL    time.Duration // password reset links live this long
	PendingTTL  time.Duration // between the password and the second factor
}

// DefaultPolicy is what Tidings uses unless told otherwise.
var DefaultPolicy = Policy{LockAfter: 5, LockFor: 15 * time.Minute, IdleTimeout: 30 * time.Minute,
	MaxAge: 12 * time.Hour, ResetTTL: 30 * time.Minute, PendingTTL: 5 * time.Minute}

// Errors the UI turns into messages. ErrBadCredentials deliberately covers unknown
// addresses, wrong passwords and locked users alike, so a login form never tells a
// stranger who has an account.
var (
	ErrBadCredentials = errors.New("auth: wrong address or password")
	ErrBadCode        = errors.New("auth: wrong or expired code")
	ErrExpired        = errors.New("auth: this step took too long; sign in again")
	ErrNoSession      = errors.New("auth: not signed in")
)

// Service signs people in.
type Service struct {
	Store  tidings.Store
	Keys   *keys.Keyring
	Policy Policy
	Now    func() time.Time
	Issuer string // shown by authenticator apps
}

// dummyHash is verified for unknown addresses, so that they take as long as known ones.
// It is made at the first unknown address, not at start-up (argon2id costs 64 MiB).
var dummyHash = sync.OnceValue(func() string {
	h, _ := keys.HashPassword("not a real password: timing equaliser")
	return h
})

// New returns a service with the default policy.
func New(store tidings.Store, kr *keys.Keyring) *Service {
	return &Service{Store: store, Keys: kr, Policy: DefaultPolicy, Now: time.Now, Issuer: "Tidings"}
}

// Client is where a request came from, for the login log.
type Client struct {
	IP, UserAgent string
}

// Step is the outcome of a correct password.
type Step struct {
	User tidings.User
	// Pending is set when a second factor is needed: a signed, short-lived token that
	// carries the user to the code form. Session is set otherwise.
	Pending string
	Session string
}

// Login checks an address and password.
func (s *Service) Login(ctx context.Context, email, password string, c Client) (Step, error) {
	now := s.Now()
	u, err := s.Store.UserByEmail(ctx, email)
	if errors.Is(err, tidings.ErrNotFound) {
		keys.VerifyPassword(dummyHash(), password)
		s.record(ctx, 0, tidings.LoginUnknownUser, c)
		return Step{}, ErrBadCredentials
	}
	if err != nil {
		return Step{}, err
	}
	sec, err := s.Store.UserSecurity(ctx, u.ID)
	if err != nil {
		return Step{}, err
	}
	if now.Before(sec.LockedUntil) {
		// Locked: not even a right password gets in, so guessing gains nothing.
		s.record(ctx, u.ID, tidings.LoginLocked, c)
		return Step{}, ErrBadCredentials
	}
	if ok, _ := keys.VerifyPassword(u.PasswordHash, password); !ok {
		s.record(ctx, u.ID, tidings.LoginBadPassword, c)
		return Step{}, ErrBadCredentials
	}
	if sec.TOTPEnabled {
		return Step{User: u, Pending: s.pendingToken(u, now)}, nil
	}
	s.record(ctx, u.ID, tidings.LoginOK, c)
	session, err := s.NewSession(ctx, u.ID)
	return Step{User: u, Session: session}, err
}

// pendingToken binds the second step to this user, a deadline and the current password
// hash (a password change in between voids it).
func (s *Service) pendingToken(u tidings.User, now time.Time) string {
	payload := binary.BigEndian.AppendUint64(nil, uint64(u.ID))
	payload = binary.BigEndian.AppendUint64(payload, uint64(now.Add(s.Policy.PendingTTL).Unix()))
	h := sha256.Sum256([]byte(u.PasswordHash))
	return s.Keys.Sign("login-second-factor", append(payload, h[:8]...))
}

// SecondFactor finishes a login with a TOTP code or a recovery code.
func (s *Service) SecondFactor(ctx context.Context, pending, code string, c Client) (Step, error) {
	payload, err := s.Keys.Verify("login-second-factor", pending)
	if err != nil || len(payload) != 24 {
		return Step{}, ErrExpired
	}
	userID := int64(binary.BigEndian.Uint64(payload))
	if s.Now().Unix() > int64(binary.BigEndian.Uint64(payload[8:])) {
		return Step{}, ErrExpired
	}
	u, err := s.Store.GetUser(ctx, userID)
	if err != nil {
		return Step{}, ErrExpired
	}
	if h := sha256.Sum256([]byte(u.PasswordHash)); string(h[:8]) != string(payload[16:]) {
		return Step{}, ErrExpired
	}
	sec, err := s.Store.UserSecurity(ctx, u.ID)
	if err != nil {
		return Step{}, err
	}
	if s.Now().Before(sec.LockedUntil) {
		s.record(ctx, u.ID, tidings.LoginLocked, c)
		return Step{}, ErrBadCode
	}
	result := tidings.LoginOK
	code = strings.TrimSpace(code)
	if len(code) == 6 {
		secret, err := s.openSecret(u.ID, sec.TOTPSecret)
		step, ok := int64(0), false
		if err == nil && sec.TOTPEnabled {
			step, ok = matchTOTP(code, secret, s.Now())
		}
		// Each code works once: a code seen over someone's shoulder, or replayed from
		// a captured request, is refused.
		if !ok || s.Store.UseTOTPStep(ctx, u.ID, step) != nil {
			s.record(ctx, u.ID, tidings.LoginBadTOTP, c)
			return Step{}, ErrBadCode
		}
	} else {
		if err := s.Store.UseRecoveryCode(ctx, u.ID, recoveryHash(code)); err != nil {
			s.record(ctx, u.ID, tidings.LoginBadTOTP, c)
			return Step{}, ErrBadCode
		}
		result = tidings.LoginRecoveryCode
	}
	s.record(ctx, u.ID, result, c)
	session, err := s.NewSession(ctx, u.ID)
	return Step{User: u, Session: session}, err
}

const totpPeriod = 30

// validTOTP accepts the code of the current 30-second step or of either neighbour (clock
// drift between the phone and the server).
func validTOTP(code, secret string, now time.Time) bool {
	_, ok := matchTOTP(code, secret, now)
	return ok
}

// matchTOTP returns the time step whose code this is.
func matchTOTP(code, secret string, now time.Time) (int64, bool) {
	for _, drift := range []int64{0, -1, 1} {
		at := now.Add(time.Duration(drift*totpPeriod) * time.Second)
		ok, _ := totp.ValidateCustom(code, secret, at, totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if ok {
			return at.Unix() / totpPeriod, true
		}
	}
	return 0, false
}

func (s *Service) record(ctx context.Context, userID int64, r tidings.LoginResult, c Client) {
	now := s.Now()
	s.Store.RecordLogin(ctx, tidings.LoginAttempt{UserID: userID, IP: c.IP, UserAgent: c.UserAgent, Result: r, At: now},
		s.Policy.LockAfter, now.Add(s.Policy.LockFor))
}

// NewSession starts a session and returns the cookie value.
func (s *Service) NewSession(ctx context.Context, userID int64) (string, error) {
	token, hash := keys.NewSecretToken("ts_")
	now := s.Now()
	err := s.Store.CreateStaffSession(ctx, hash, tidings.StaffSession{UserID: userID, CreatedAt: now, ExpiresAt: now.Add(s.Policy.MaxAge)})
	return token, err
}

// Session returns the signed-in user of a cookie value.
func (s *Service) Session(ctx context.Context, token string) (tidings.User, error) {
	if !strings.HasPrefix(token, "ts_") {
		return tidings.User{}, ErrNoSession
	}
	now := s.Now()
	ss, err := s.Store.StaffSession(ctx, keys.HashSecretToken(token), now, now.Add(-s.Policy.IdleTimeout))
	if err != nil {
		return tidings.User{}, ErrNoSession
	}
	return s.Store.GetUser(ctx, ss.UserID)
}

// Logout ends a session.
func (s *Service) Logout(ctx context.Context, token string) error {
	return s.Store.DeleteStaffSession(ctx, keys.HashSecretToken(token))
}

// CheckPassword enforces the password rules: at least 12 characters, at most
// keys.MaxPasswordBytes, and not guessable (zxcvbn score 3 of 4: its dictionaries hold the
// passwords most often found in breaches, names, words, keyboard walks and dates). The
// person's own address and name count as guessable.
func CheckPassword(pw string, personal ...string) error {
	if len([]rune(pw)) < 12 {
		return tidings.Invalid("password", "too_short", "must be at least 12 characters long")
	}
	if len(pw) > keys.MaxPasswordBytes {
		return tidings.Invalid("password", "too_long", "must be at most %d bytes", keys.MaxPasswordBytes)
	}
	var inputs []string
	for _, p := range personal {
		inputs = append(inputs, strings.FieldsFunc(strings.ToLower(p), func(r rune) bool { return r == '@' || r == '.' || r == ' ' })...)
	}
	// zxcvbn is slow on very long inputs and any 64-character password is strong.
	if len(pw) < 64 && zxcvbn.PasswordStrength(pw, inputs).Score < 3 {
		return tidings.Invalid("password", "too_weak", "is too easy to guess: it is a common password or built from words, names, dates or patterns; a few unrelated words make a strong one")
	}
	return nil
}

// ChangePassword replaces the password of a signed-in user who knows the current one; it
// ends every session, so the caller starts a new one.
func (s *Service) ChangePassword(ctx context.Context, u tidings.User, current, next string) error {
	if ok, _ := keys.VerifyPassword(u.PasswordHash, current); !ok {
		return tidings.Invalid("current_password", "wrong", "is not your current password")
	}
	return s.SetPassword(ctx, u, next)
}

// SetPassword checks and stores a new password, ending every session of the user.
func (s *Service) SetPassword(ctx context.Context, u tidings.User, pw string) error {
	if err := CheckPassword(pw, u.Email, u.Name); err != nil {
		return err
	}
	hash, err := keys.HashPassword(pw)
	if err != nil {
		return err
	}
	return s.Store.SetPassword(ctx, u.ID, hash)
}

// RequestPasswordReset returns a single-use reset token for the address, or "" when no
// such user exists; the caller answers the same either way.
func (s *Service) RequestPasswordReset(ctx context.Context, email string) (tidings.User, string, error) {
	u, err := s.Store.UserByEmail(ctx, email)
	if errors.Is(err, tidings.ErrNotFound) {
		return u, "", nil
	}
	if err != nil {
		return u, "", err
	}
	token, hash := keys.NewSecretToken("tr_")
	return u, token, s.Store.CreatePasswordReset(ctx, u.ID, hash, s.Now().Add(s.Policy.ResetTTL))
}

// ResetPassword uses a reset token to set a new password. The token is checked and used
// up only once the new password passes the rules, so a weak first try does not waste it.
func (s *Service) ResetPassword(ctx context.Context, token, pw string) error {
	if err := CheckPassword(pw); err != nil {
		return err
	}
	userID, err := s.Store.ConsumePasswordReset(ctx, keys.HashSecretToken(token), s.Now())
	if err != nil {
		return ErrExpired
	}
	u, err := s.Store.GetUser(ctx, userID)
	if err != nil {
		return err
	}
	return s.SetPassword(ctx, u, pw)
}

// Enrollment is a TOTP secret offered to a user but not yet confirmed.
type Enrollment struct {
	Secret string // base32, for typing into an app
	URL    string // otpauth:// URI, for the QR code
	Sealed string // the secret sealed for the form round trip
}

// BeginTOTP makes a new secret for u. Nothing is stored until ConfirmTOTP.
func (s *Service) BeginTOTP(u tidings.User) (Enrollment, error) {
	key, err := totp.Generate(totp.GenerateOpts{Issuer: s.Issuer, AccountName: u.Email})
	if err != nil {
		return Enrollment{}, err
	}
	sealed := s.Keys.SealInstance([]byte(key.Secret()), enrollAAD(u.ID))
	return Enrollment{Secret: key.Secret(), URL: key.URL(), Sealed: base32.StdEncoding.EncodeToString(sealed)}, nil
}

// OpenEnrollment recovers an enrollment from its sealed form (for the QR image).
func (s *Service) OpenEnrollment(u tidings.User, sealed string) (Enrollment, error) {
	raw, err := base32.StdEncoding.DecodeString(sealed)
	if err != nil {
		return Enrollment{}, ErrExpired
	}
	secret, err := s.Keys.OpenInstance(raw, enrollAAD(u.ID))
	if err != nil {
		return Enrollment{}, ErrExpired
	}
	key, err := otp.NewKeyFromURL(fmt.Sprintf("otpauth://totp/%s:%s?secret=%s&issuer=%s", s.Issuer, u.Email, secret, s.Issuer))
	if err != nil {
		return Enrollment{}, err
	}
	return Enrollment{Secret: string(secret), URL: key.URL(), Sealed: sealed}, nil
}

func enrollAAD(userID int64) []byte { return fmt.Appendf(nil, "totp-enroll/%d", userID) }
func totpAAD(userID int64) []byte   { return fmt.Appendf(nil, "totp/%d", userID) }

// ConfirmTOTP turns two-factor on once the person proves their app has the secret, and
// returns ten recovery codes to show once.
func (s *Service) ConfirmTOTP(ctx context.Context, u tidings.User, sealed, code string) ([]string, error) {
	e, err := s.OpenEnrollment(u, sealed)
	if err != nil {
		return nil, err
	}
	if !validTOTP(strings.TrimSpace(code), e.Secret, s.Now()) {
		return nil, ErrBadCode
	}
	codes := make([]string, 10)
	hashes := make([][]byte, 10)
	for i := range codes {
		codes[i] = newRecoveryCode()
		hashes[i] = recoveryHash(codes[i])
	}
	stored := s.Keys.SealInstance([]byte(e.Secret), totpAAD(u.ID))
	return codes, s.Store.SetTOTP(ctx, u.ID, stored, true, hashes)
}

// DisableTOTP turns two-factor off after checking the password.
func (s *Service) DisableTOTP(ctx context.Context, u tidings.User, password string) error {
	if ok, _ := keys.VerifyPassword(u.PasswordHash, password); !ok {
		return tidings.Invalid("password", "wrong", "is not your password")
	}
	return s.Store.SetTOTP(ctx, u.ID, nil, false, nil)
}

func (s *Service) openSecret(userID int64, sealed []byte) (string, error) {
	b, err := s.Keys.OpenInstance(sealed, totpAAD(userID))
	return string(b), err
}

// Recovery codes: 10 random characters from an alphabet without look-alikes, shown as
// xxxxx-xxxxx. They carry ~50 bits, and each works once, so a fast hash stores them.
const recoveryAlphabet = "abcdefghjkmnpqrstuvwxyz23456789"

func newRecoveryCode() string {
	out := make([]byte, 0, 11)
	var b [1]byte
	for len(out) < 11 {
		if len(out) == 5 {
			out = append(out, '-')
		}
		rand.Read(b[:])
		// Rejection sampling: 248 = 8×31, so every letter is equally likely.
		if int(b[0]) < 248 {
			out = append(out, recoveryAlphabet[int(b[0])%len(recoveryAlphabet)])
		}
	}
	return string(out)
}

func recoveryHash(code string) []byte {
	code = strings.ToLower(strings.ReplaceAll(strings.TrimSpace(code), "-", ""))
	h := sha256.Sum256([]byte("tidings-recovery/" + code))
	return h[:]
}

// TermsPending returns the terms version the user must accept before going on, or a
// zero version when they are up to date (or none are published).
func (s *Service) TermsPending(ctx context.Context, userID int64) (tidings.TermsVersion, error) {
	latest, err := s.Store.LatestTerms(ctx)
	if errors.Is(err, tidings.ErrNotFound) {
		return tidings.TermsVersion{}, nil
	}
	if err != nil {
		return tidings.TermsVersion{}, err
	}
	accepted, err := s.Store.AcceptedTerms(ctx, userID)
	if err != nil || accepted >= latest.Version {
		return tidings.TermsVersion{}, err
	}
	return latest, nil
}
