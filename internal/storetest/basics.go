package storetest

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/tidings/tidings/internal/tidings"
)

func testPing(t *testing.T, s tidings.Store) {
	noErr(t, "Ping", s.Ping(ctx))
}

func testSettings(t *testing.T, s tidings.Store) {
	_, err := s.GetSetting(ctx, "missing")
	wantErr(t, "GetSetting(missing)", err, tidings.ErrNotFound)
	noErr(t, "PutSetting", s.PutSetting(ctx, "k", "v1"))
	noErr(t, "PutSetting again", s.PutSetting(ctx, "k", "v2"))
	v, err := s.GetSetting(ctx, "k")
	noErr(t, "GetSetting", err)
	if v != "v2" {
		t.Fatalf("GetSetting = %q, want v2", v)
	}
}

func testAccounts(t *testing.T, s tidings.Store) {
	a := tidings.Account{Name: "  Club  ", PostalAddress: "1 Club Lane", ContactEmail: "Info@Club.Example", PrivacyPolicyURL: "https://club.example/privacy"}
	noErr(t, "CreateAccount", s.CreateAccount(ctx, &a))
	if a.ID == 0 || a.CreatedAt.IsZero() || a.TrackingEnabled {
		t.Fatalf("created account %+v: want an ID, a creation time and tracking off", a)
	}
	got, err := s.GetAccount(ctx, a.ID)
	noErr(t, "GetAccount", err)
	if got.Name != "Club" || got.ContactEmail != "info@club.example" || !got.CreatedAt.Equal(a.CreatedAt) {
		t.Fatalf("GetAccount = %+v, want normalised name and contact, same creation time", got)
	}
	got.TrackingEnabled = true
	got.PostalAddress = "2 Side St"
	noErr(t, "UpdateAccount", s.UpdateAccount(ctx, &got))
	again, _ := s.GetAccount(ctx, a.ID)
	if !again.TrackingEnabled || again.PostalAddress != "2 Side St" {
		t.Fatalf("after update: %+v", again)
	}
	b := mustAccount(t, s)
	page, err := s.ListAccounts(ctx, tidings.Page{After: a.ID, Limit: 1})
	noErr(t, "ListAccounts", err)
	if len(page) != 1 || page[0].ID != b.ID {
		t.Fatalf("ListAccounts after %d = %v, want just %d", a.ID, page, b.ID)
	}
	noErr(t, "DeleteAccount", s.DeleteAccount(ctx, b.ID))
	_, err = s.GetAccount(ctx, b.ID)
	wantErr(t, "GetAccount(deleted)", err, tidings.ErrNotFound)
	wantErr(t, "DeleteAccount(deleted)", s.DeleteAccount(ctx, b.ID), tidings.ErrNotFound)
	missing := tidings.Account{ID: b.ID, Name: "x", PostalAddress: "1 Main St", ContactEmail: "a@b.example"}
	wantErr(t, "UpdateAccount(missing)", s.UpdateAccount(ctx, &missing), tidings.ErrNotFound)
}

func testAccountValidation(t *testing.T, s tidings.Store) {
	before, _ := s.ListAccounts(ctx, tidings.Page{Limit: tidings.MaxPageSize})
	cases := []struct {
		a     tidings.Account
		field string
	}{
		{tidings.Account{ContactEmail: "a@b.example"}, "name"},
		{tidings.Account{Name: "x"}, "contact_email"},
		{tidings.Account{Name: "x", ContactEmail: "Bob <a@b.example>"}, "contact_email"},
		{tidings.Account{Name: "x", ContactEmail: "a@b.example", PrivacyPolicyURL: "javascript:alert(1)"}, "privacy_policy_url"},
		{tidings.Account{Name: "x\x00", ContactEmail: "a@b.example"}, "name"},
	}
	for _, c := range cases {
		wantValidation(t, "CreateAccount", s.CreateAccount(ctx, &c.a), c.field)
	}
	a := mustAccount(t, s)
	bad := a
	bad.Name = ""
	wantValidation(t, "UpdateAccount", s.UpdateAccount(ctx, &bad), "name")
	got, _ := s.GetAccount(ctx, a.ID)
	if got.Name != a.Name {
		t.Fatalf("a failed update changed the name to %q", got.Name)
	}
	after, _ := s.ListAccounts(ctx, tidings.Page{Limit: tidings.MaxPageSize})
	if len(after) != len(before)+1 {
		t.Fatalf("invalid accounts were stored: %d before, %d after one valid insert", len(before), len(after))
	}
}

func testFirstOperator(t *testing.T, s tidings.Store) {
	sum := sha256.Sum256([]byte("setup-secret"))
	noErr(t, "PutSetting", s.PutSetting(ctx, "setup_token_sha256", hex.EncodeToString(sum[:])))
	u := tidings.User{Email: "root@operator.example", Name: "Root", PasswordHash: "$argon2id$test"}
	wrong := sha256.Sum256([]byte("guess"))
	wantErr(t, "CreateFirstOperator(wrong token)", s.CreateFirstOperator(ctx, wrong[:], &u), tidings.ErrNotFound)
	noErr(t, "CreateFirstOperator", s.CreateFirstOperator(ctx, sum[:], &u))
	if !u.Operator || u.ID == 0 {
		t.Fatalf("first operator = %+v", u)
	}
	n, err := s.CountOperators(ctx)
	noErr(t, "CountOperators", err)
	if n != 1 {
		t.Fatalf("CountOperators = %d, want 1", n)
	}
	u2 := tidings.User{Email: "second@operator.example", PasswordHash: "$argon2id$test"}
	wantErr(t, "CreateFirstOperator(reused token)", s.CreateFirstOperator(ctx, sum[:], &u2), tidings.ErrNotFound)
	if _, err := s.UserByEmail(ctx, "second@operator.example"); err == nil {
		t.Fatal("a reused setup token created a user")
	}
}

func testUsers(t *testing.T, s tidings.Store) {
	u := tidings.User{Email: "Staff@Shop.Example", Name: "Staff", PasswordHash: "$argon2id$x"}
	noErr(t, "CreateUser", s.CreateUser(ctx, &u))
	dup := tidings.User{Email: "staff@shop.example", PasswordHash: "$argon2id$x"}
	wantErr(t, "CreateUser(duplicate)", s.CreateUser(ctx, &dup), tidings.ErrConflict)
	bad := tidings.User{Email: "not an address", PasswordHash: "x"}
	if _, ok := tidings.AsValidation(s.CreateUser(ctx, &bad)); !ok {
		t.Fatal("CreateUser accepted an invalid address")
	}
	got, err := s.UserByEmail(ctx, "STAFF@shop.example")
	noErr(t, "UserByEmail", err)
	if got.ID != u.ID || got.Operator {
		t.Fatalf("UserByEmail = %+v", got)
	}
	_, err = s.GetUser(ctx, u.ID+1000)
	wantErr(t, "GetUser(missing)", err, tidings.ErrNotFound)

	a, b := mustAccount(t, s), mustAccount(t, s)
	noErr(t, "SetMembership", s.SetMembership(ctx, a.ID, u.ID, tidings.RoleEditor))
	noErr(t, "SetMembership(change)", s.SetMembership(ctx, a.ID, u.ID, tidings.RoleViewer))
	noErr(t, "SetMembership(b)", s.SetMembership(ctx, b.ID, u.ID, tidings.RoleOwner))
	if err := s.SetMembership(ctx, a.ID, u.ID, "god"); err == nil {
		t.Fatal("SetMembership accepted an unknown role")
	}
	ms, err := s.Memberships(ctx, u.ID)
	noErr(t, "Memberships", err)
	if len(ms) != 2 || ms[0].AccountID != a.ID || ms[0].Role != tidings.RoleViewer || ms[1].Role != tidings.RoleOwner {
		t.Fatalf("Memberships = %+v", ms)
	}
}

func tokenHash(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

func testTokens(t *testing.T, s tidings.Store) {
	a := mustAccount(t, s)
	tok := tidings.APIToken{AccountID: a.ID, Name: "ci", Prefix: "tid_abcd"}
	noErr(t, "CreateToken", s.CreateToken(ctx, &tok, tokenHash("secret-a")))
	got, err := s.TokenByHash(ctx, tokenHash("secret-a"))
	noErr(t, "TokenByHash", err)
	if got.ID != tok.ID || got.AccountID != a.ID || got.Operator() || got.LastUsedAt == nil {
		t.Fatalf("TokenByHash = %+v", got)
	}
	_, err = s.TokenByHash(ctx, tokenHash("secret-b"))
	wantErr(t, "TokenByHash(unknown)", err, tidings.ErrNotFound)
	op := tidings.APIToken{Name: "operator"}
	noErr(t, "CreateToken(operator)", s.CreateToken(ctx, &op, tokenHash("secret-op")))
	got, err = s.TokenByHash(ctx, tokenHash("secret-op"))
	noErr(t, "TokenByHash(operator)", err)
	if !got.Operator() {
		t.Fatalf("operator token came back as %+v", got)
	}
	wantErr(t, "CreateToken(duplicate hash)", s.CreateToken(ctx, &tidings.APIToken{AccountID: a.ID}, tokenHash("secret-a")), tidings.ErrConflict)
	noErr(t, "DeleteToken", s.DeleteToken(ctx, a.ID, tok.ID))
	_, err = s.TokenByHash(ctx, tokenHash("secret-a"))
	wantErr(t, "TokenByHash(deleted)", err, tidings.ErrNotFound)
}

func testTokensIsolation(t *testing.T, s tidings.Store) {
	a, b := mustAccount(t, s), mustAccount(t, s)
	tok := tidings.APIToken{AccountID: a.ID, Name: "a's"}
	noErr(t, "CreateToken", s.CreateToken(ctx, &tok, tokenHash(unique("iso"))))
	list, err := s.ListTokens(ctx, b.ID)
	noErr(t, "ListTokens(b)", err)
	if len(list) != 0 {
		t.Fatalf("account B sees tokens %+v", list)
	}
	wantErr(t, "DeleteToken(b, a's token)", s.DeleteToken(ctx, b.ID, tok.ID), tidings.ErrNotFound)
	wantErr(t, "DeleteToken(operator scope, a's token)", s.DeleteToken(ctx, 0, tok.ID), tidings.ErrNotFound)
	list, _ = s.ListTokens(ctx, a.ID)
	if len(list) != 1 || list[0].ID != tok.ID {
		t.Fatalf("account A's tokens = %+v, want its one token intact", list)
	}
}
