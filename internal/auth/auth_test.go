package auth_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/tidings/tidings/internal/auth"
	"github.com/tidings/tidings/internal/keys"
	"github.com/tidings/tidings/internal/sqlstore"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
)

var ctx = context.Background()

const goodPassword = "correct horse battery staple lamp"

func init() { keys.Argon2Params.Memory, keys.Argon2Params.Time = 1024, 1 }

// clock is a settable time source.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func setup(t *testing.T) (*auth.Service, *clock, tidings.User) {
	t.Helper()
	store := testdb.Open(t, sqlstore.SQLite)
	svc := auth.New(store, testdb.Keyring(t))
	c := &clock{t: time.Now()}
	svc.Now = c.now
	hash, _ := keys.HashPassword(goodPassword)
	u := tidings.User{Email: "ada@example.org", Name: "Ada", PasswordHash: hash}
	if err := store.CreateUser(ctx, &u); err != nil {
		t.Fatal(err)
	}
	return svc, c, u
}

var client = auth.Client{IP: "192.0.2.1", UserAgent: "test"}

func TestCheckPassword(t *testing.T) {
	for _, tc := range []struct {
		pw, code string
	}{
		{"short", "too_short"},
		{"password1234", "too_weak"},
		{"qwertyuiopasdf", "too_weak"},
		{"ada.lovelace1815", "too_weak"}, // the person's own name and a date
		{strings.Repeat("a", 2000), "too_long"},
		{goodPassword, ""},
		{"Xq7#mP2!vL9@wR4z", ""},
	} {
		err := auth.CheckPassword(tc.pw, "ada.lovelace@example.org", "Ada Lovelace")
		v, _ := tidings.AsValidation(err)
		switch {
		case tc.code == "" && err != nil:
			t.Errorf("%q refused: %v", tc.pw, err)
		case tc.code != "" && (v == nil || v.Code != tc.code):
			t.Errorf("%q: got %v, want code %s", tc.pw, err, tc.code)
		}
	}
}

func TestLoginAndLockout(t *testing.T) {
	svc, c, u := setup(t)
	if _, err := svc.Login(ctx, "nobody@example.org", goodPassword, client); !errors.Is(err, auth.ErrBadCredentials) {
		t.Fatalf("unknown user: %v", err)
	}
	step, err := svc.Login(ctx, "ADA@example.org", goodPassword, client)
	if err != nil || step.Session == "" || step.Pending != "" {
		t.Fatalf("login: %+v %v", step, err)
	}
	got, err := svc.Session(ctx, step.Session)
	if err != nil || got.ID != u.ID {
		t.Fatalf("session: %+v %v", got, err)
	}
	// Five wrong passwords lock the user: even the right one fails until the lock ends.
	for range 5 {
		if _, err := svc.Login(ctx, u.Email, "wrong password here", client); !errors.Is(err, auth.ErrBadCredentials) {
			t.Fatalf("wrong password: %v", err)
		}
	}
	if _, err := svc.Login(ctx, u.Email, goodPassword, client); !errors.Is(err, auth.ErrBadCredentials) {
		t.Fatalf("locked user logged in: %v", err)
	}
	c.t = c.t.Add(16 * time.Minute)
	if _, err := svc.Login(ctx, u.Email, goodPassword, client); err != nil {
		t.Fatalf("after the lock: %v", err)
	}
	log, _ := svc.Store.LoginAttempts(ctx, u.ID, tidings.Page{})
	want := []tidings.LoginResult{tidings.LoginOK, tidings.LoginLocked}
	for i, r := range want {
		if log[i].Result != r || log[i].IP != client.IP || log[i].UserAgent != "test" {
			t.Fatalf("login log entry %d: %+v, want %s", i, log[i], r)
		}
	}
	// The session ends after 30 idle minutes.
	c.t = c.t.Add(31 * time.Minute)
	if _, err := svc.Session(ctx, step.Session); !errors.Is(err, auth.ErrNoSession) {
		t.Fatalf("idle session still valid: %v", err)
	}
}

func TestTOTP(t *testing.T) {
	svc, c, u := setup(t)
	e, err := svc.BeginTOTP(u)
	if err != nil || !strings.HasPrefix(e.URL, "otpauth://totp/") {
		t.Fatalf("BeginTOTP: %+v %v", e, err)
	}
	if _, err := svc.ConfirmTOTP(ctx, u, e.Sealed, "000000"); !errors.Is(err, auth.ErrBadCode) {
		t.Fatalf("wrong confirmation code: %v", err)
	}
	code, _ := totp.GenerateCode(e.Secret, c.t)
	recovery, err := svc.ConfirmTOTP(ctx, u, e.Sealed, code)
	if err != nil || len(recovery) != 10 {
		t.Fatalf("ConfirmTOTP: %v %v", recovery, err)
	}
	// Another user cannot use this enrollment.
	if _, err := svc.OpenEnrollment(tidings.User{ID: u.ID + 1, Email: "x@example.org"}, e.Sealed); err == nil {
		t.Fatal("an enrollment opened for another user")
	}

	step, err := svc.Login(ctx, u.Email, goodPassword, client)
	if err != nil || step.Session != "" || step.Pending == "" {
		t.Fatalf("a password alone must not give a session: %+v %v", step, err)
	}
	if _, err := svc.SecondFactor(ctx, step.Pending, "123456", client); !errors.Is(err, auth.ErrBadCode) {
		t.Fatalf("wrong code: %v", err)
	}
	if _, err := svc.SecondFactor(ctx, step.Pending+"x", code, client); !errors.Is(err, auth.ErrExpired) {
		t.Fatalf("forged pending token: %v", err)
	}
	code, _ = totp.GenerateCode(e.Secret, c.t)
	done, err := svc.SecondFactor(ctx, step.Pending, code, client)
	if err != nil || done.Session == "" {
		t.Fatalf("right code: %+v %v", done, err)
	}
	// The same code does not work twice, nor does an older one.
	again, _ := svc.Login(ctx, u.Email, goodPassword, client)
	if _, err := svc.SecondFactor(ctx, again.Pending, code, client); !errors.Is(err, auth.ErrBadCode) {
		t.Fatalf("replayed code: %v", err)
	}
	older, _ := totp.GenerateCode(e.Secret, c.t.Add(-30*time.Second))
	if _, err := svc.SecondFactor(ctx, again.Pending, older, client); !errors.Is(err, auth.ErrBadCode) {
		t.Fatalf("a code older than the last one used: %v", err)
	}
	c.t = c.t.Add(30 * time.Second)
	next, _ := totp.GenerateCode(e.Secret, c.t)
	if _, err := svc.SecondFactor(ctx, again.Pending, next, client); err != nil {
		t.Fatalf("the next code: %v", err)
	}
	// A recovery code works once.
	step, _ = svc.Login(ctx, u.Email, goodPassword, client)
	if _, err := svc.SecondFactor(ctx, step.Pending, strings.ToUpper(recovery[0]), client); err != nil {
		t.Fatalf("recovery code: %v", err)
	}
	if _, err := svc.SecondFactor(ctx, step.Pending, recovery[0], client); !errors.Is(err, auth.ErrBadCode) {
		t.Fatalf("reused recovery code: %v", err)
	}
	// The pending step expires.
	c.t = c.t.Add(6 * time.Minute)
	code, _ = totp.GenerateCode(e.Secret, c.t)
	if _, err := svc.SecondFactor(ctx, step.Pending, code, client); !errors.Is(err, auth.ErrExpired) {
		t.Fatalf("late second factor: %v", err)
	}
}

func TestPasswordChangeEndsSessions(t *testing.T) {
	svc, _, u := setup(t)
	step, _ := svc.Login(ctx, u.Email, goodPassword, client)
	if err := svc.ChangePassword(ctx, u, "not it", "another fine password today"); err == nil {
		t.Fatal("changed without the current password")
	}
	if err := svc.ChangePassword(ctx, u, goodPassword, "password123456"); err == nil {
		t.Fatal("accepted a weak password")
	}
	if err := svc.ChangePassword(ctx, u, goodPassword, "another fine password today"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Session(ctx, step.Session); !errors.Is(err, auth.ErrNoSession) {
		t.Fatalf("old session survived a password change: %v", err)
	}
}

func TestPasswordReset(t *testing.T) {
	svc, _, u := setup(t)
	if who, token, err := svc.RequestPasswordReset(ctx, "nobody@example.org"); err != nil || token != "" || who.ID != 0 {
		t.Fatalf("reset for an unknown address: %v %q", err, token)
	}
	_, token, err := svc.RequestPasswordReset(ctx, u.Email)
	if err != nil || token == "" {
		t.Fatal(err)
	}
	if err := svc.ResetPassword(ctx, token, "weak"); err == nil {
		t.Fatal("weak reset accepted")
	}
	if err := svc.ResetPassword(ctx, token, "a brand new passphrase ok"); err != nil {
		t.Fatalf("reset after a weak first try: %v", err)
	}
	if err := svc.ResetPassword(ctx, token, "a second new passphrase ok"); !errors.Is(err, auth.ErrExpired) {
		t.Fatalf("reused reset token: %v", err)
	}
	if _, err := svc.Login(ctx, u.Email, "a brand new passphrase ok", client); err != nil {
		t.Fatalf("login with the new password: %v", err)
	}
}

func TestTermsPending(t *testing.T) {
	svc, _, u := setup(t)
	if v, err := svc.TermsPending(ctx, u.ID); err != nil || v.Version != 0 {
		t.Fatalf("no terms published: %+v %v", v, err)
	}
	v1, _ := svc.Store.PublishTerms(ctx, "Be nice.")
	if v, _ := svc.TermsPending(ctx, u.ID); v.Version != v1.Version {
		t.Fatalf("pending %+v, want version %d", v, v1.Version)
	}
	svc.Store.AcceptTerms(ctx, u.ID, v1.Version, "192.0.2.1")
	if v, _ := svc.TermsPending(ctx, u.ID); v.Version != 0 {
		t.Fatalf("accepted terms still pending: %+v", v)
	}
	v2, _ := svc.Store.PublishTerms(ctx, "Be nicer.")
	if v, _ := svc.TermsPending(ctx, u.ID); v.Version != v2.Version {
		t.Fatalf("a new version must be accepted again: %+v", v)
	}
}
