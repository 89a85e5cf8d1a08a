package admin_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/tidings/tidings/internal/tidings"
)

func TestSignInOutAndSessionCookie(t *testing.T) {
	e := newEnv(t)
	u := e.user(e.a.ID, tidings.RoleOwner, false)
	anon := e.browser()
	if p := anon.get("/admin/a/1/lists"); p.status != http.StatusSeeOther || !strings.HasPrefix(p.location, "/admin/login?next=") {
		t.Fatalf("anonymous: %d %q", p.status, p.location)
	}
	anon.post("/admin/login", url.Values{"email": {u.Email}, "password": {"wrong password entirely"}}).
		want(t, http.StatusUnauthorized, "address or password is wrong")
	anon.post("/admin/login", url.Values{"email": {"nobody@example.org"}, "password": {password}}).
		want(t, http.StatusUnauthorized, "address or password is wrong")

	b := e.browser()
	res := b.post("/admin/login", url.Values{"email": {u.Email}, "password": {password}, "next": {"https://evil.example/"}})
	if res.status != http.StatusSeeOther || res.location != "/admin/" {
		t.Fatalf("login: %d %q (an outside next must not be followed)", res.status, res.location)
	}
	c := res.header.Get("Set-Cookie")
	for _, attr := range []string{"HttpOnly", "SameSite=Lax", "Path=/admin"} {
		if !strings.Contains(c, attr) {
			t.Errorf("session cookie %q lacks %s", c, attr)
		}
	}
	if strings.Contains(c, "Max-Age") || strings.Contains(c, "Expires") {
		t.Errorf("session cookie %q must end with the browser", c)
	}
	// One account: straight to it.
	if p := b.get("/admin/"); p.location != "/admin/a/"+itoa(e.a.ID)+"/" {
		t.Fatalf("home redirects to %q", p.location)
	}
	b.get("/admin/a/"+itoa(e.a.ID)+"/").want(t, http.StatusOK, e.a.Name)
	b.post("/admin/logout", nil)
	if p := b.get("/admin/a/" + itoa(e.a.ID) + "/"); p.status != http.StatusSeeOther {
		t.Fatalf("after logout: %d", p.status)
	}
	log, _ := e.store.LoginAttempts(ctx, u.ID, tidings.Page{})
	if len(log) != 2 || log[0].Result != tidings.LoginOK || log[1].Result != tidings.LoginBadPassword || log[0].IP != "127.0.0.1" {
		t.Fatalf("login log: %+v", log)
	}
}

var secretRE = regexp.MustCompile(`id="totp-secret">([A-Z2-7]+)<`)
var enrollRE = regexp.MustCompile(`name="enrollment" value="([^"]+)"`)
var pendingRE = regexp.MustCompile(`name="pending" value="([^"]+)"`)
var codeRE = regexp.MustCompile(`<code>([a-z2-9]{5}-[a-z2-9]{5})</code>`)

func TestTwoFactorEnrolmentAndLogin(t *testing.T) {
	e := newEnv(t)
	u := e.user(e.a.ID, tidings.RoleOwner, false)
	b := e.login(u)
	p := b.get("/admin/me/2fa").want(t, http.StatusOK, "Scan this code")
	secret, enrollment := secretRE.FindStringSubmatch(p.body)[1], enrollRE.FindStringSubmatch(p.body)[1]
	if img := b.get("/admin/me/2fa.png?e=" + url.QueryEscape(enrollment)); img.status != 200 || img.header.Get("Content-Type") != "image/png" {
		t.Fatalf("QR code: %d %s", img.status, img.header.Get("Content-Type"))
	}
	b.post("/admin/me/2fa", url.Values{"enrollment": {enrollment}, "code": {"000000"}}).want(t, http.StatusUnprocessableEntity, "code is wrong")
	code, _ := totp.GenerateCode(secret, time.Now())
	p = b.post("/admin/me/2fa", url.Values{"enrollment": {enrollment}, "code": {code}}).want(t, http.StatusOK, "recovery codes")
	recovery := codeRE.FindAllStringSubmatch(p.body, -1)
	if len(recovery) != 10 {
		t.Fatalf("%d recovery codes shown, want 10", len(recovery))
	}

	// A password alone no longer signs in.
	c := e.browser()
	p = c.post("/admin/login", url.Values{"email": {u.Email}, "password": {password}}).want(t, http.StatusOK, "authenticator app")
	pending := pendingRE.FindStringSubmatch(p.body)[1]
	if p := c.get("/admin/"); p.status != http.StatusSeeOther || !strings.HasPrefix(p.location, "/admin/login") {
		t.Fatalf("signed in before the second factor: %d %q", p.status, p.location)
	}
	c.post("/admin/login/code", url.Values{"pending": {pending}, "code": {"123456"}}).want(t, http.StatusUnauthorized, "wrong or expired")
	code, _ = totp.GenerateCode(secret, time.Now())
	if p := c.post("/admin/login/code", url.Values{"pending": {pending}, "code": {code}}); p.status != http.StatusSeeOther {
		t.Fatalf("right code: %d\n%s", p.status, p.body)
	}
	c.get("/admin/me").want(t, http.StatusOK, "On. 10 recovery codes left")

	// A recovery code works once.
	d := e.browser()
	p = d.post("/admin/login", url.Values{"email": {u.Email}, "password": {password}})
	pending = pendingRE.FindStringSubmatch(p.body)[1]
	if p := d.post("/admin/login/code", url.Values{"pending": {pending}, "code": {recovery[0][1]}}); p.status != http.StatusSeeOther {
		t.Fatalf("recovery code: %d\n%s", p.status, p.body)
	}
	d.post("/admin/login/code", url.Values{"pending": {pending}, "code": {recovery[0][1]}}).want(t, http.StatusUnauthorized)
}

func TestAccountRequiresTwoFactor(t *testing.T) {
	e := newEnv(t)
	e.a.RequireTOTP = true
	if err := e.store.UpdateAccount(ctx, &e.a); err != nil {
		t.Fatal(err)
	}
	b := e.login(e.user(e.a.ID, tidings.RoleEditor, false))
	if p := b.get("/admin/a/" + itoa(e.a.ID) + "/lists"); p.status != http.StatusSeeOther || p.location != "/admin/me/2fa?required=1" {
		t.Fatalf("without two-factor: %d %q", p.status, p.location)
	}
	b.get("/admin/me/2fa?required=1").want(t, http.StatusOK, "requires two-factor")
}

func TestTermsMustBeAccepted(t *testing.T) {
	e := newEnv(t)
	u := e.user(e.a.ID, tidings.RoleViewer, false)
	b := e.login(u)
	v, _ := e.store.PublishTerms(ctx, "Processing happens only on documented instructions.")
	if p := b.get("/admin/a/" + itoa(e.a.ID) + "/"); p.location != "/admin/terms" {
		t.Fatalf("new terms not enforced: %d %q", p.status, p.location)
	}
	b.get("/admin/terms").want(t, http.StatusOK, "documented instructions")
	// Accepting an old version (the page was open while a new one came) shows the new one.
	b.post("/admin/terms", url.Values{"version": {"999"}, "accept": {"yes"}}).want(t, http.StatusOK, "documented instructions")
	if p := b.post("/admin/terms", url.Values{"version": {itoa(int64(v.Version))}, "accept": {"yes"}}); p.status != http.StatusSeeOther {
		t.Fatalf("accept: %d", p.status)
	}
	b.get("/admin/a/"+itoa(e.a.ID)+"/").want(t, http.StatusOK)
	acc, _ := e.store.TermsAcceptances(ctx, tidings.Page{})
	if len(acc) != 1 || acc[0].UserID != u.ID || acc[0].IP != "127.0.0.1" || acc[0].Version != v.Version {
		t.Fatalf("acceptance log: %+v", acc)
	}
}

func TestPasswordChangeAndReset(t *testing.T) {
	e := newEnv(t)
	u := e.user(e.a.ID, tidings.RoleViewer, false)
	b, other := e.login(u), e.login(u)
	b.post("/admin/me/password", url.Values{"current_password": {password}, "new_password": {"password1234"}}).
		want(t, http.StatusUnprocessableEntity, "too easy to guess")
	p := b.post("/admin/me/password", url.Values{"current_password": {password}, "new_password": {"saffron lighthouse quietly nine"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("change: %d\n%s", p.status, p.body)
	}
	b.get(p.location).want(t, http.StatusOK, "password was changed")
	if p := other.get("/admin/me"); p.status != http.StatusSeeOther {
		t.Fatalf("the other session survived the password change: %d", p.status)
	}

	// Reset by mail: same answer for unknown addresses; the link works once.
	anon := e.browser()
	anon.post("/admin/reset", url.Values{"email": {"nobody@example.org"}}).want(t, http.StatusOK, "If that address belongs")
	before, _ := e.outbox.List(100)
	anon.post("/admin/reset", url.Values{"email": {u.Email}}).want(t, http.StatusOK, "If that address belongs")
	after, _ := e.outbox.List(100)
	if len(after) != len(before)+1 {
		t.Fatalf("reset mails: %d then %d, want exactly one for the known address", len(before), len(after))
	}
	raw := e.mailTo(u.Email, "Reset your Tidings password")
	token := regexp.MustCompile(`token=(tr_[A-Za-z0-9_-]+)`).FindStringSubmatch(raw)
	if token == nil {
		t.Fatalf("no reset link in:\n%s", raw)
	}
	anon.get("/admin/reset?token="+token[1]).want(t, http.StatusOK, "New password")
	if p := anon.post("/admin/reset/password", url.Values{"token": {token[1]}, "password": {"tangerine orbit harbour eleven"}}); p.status != http.StatusSeeOther {
		t.Fatalf("reset: %d\n%s", p.status, p.body)
	}
	anon.post("/admin/reset/password", url.Values{"token": {token[1]}, "password": {"another orbit harbour twelve"}}).want(t, http.StatusBadRequest, "not valid")
	anon.post("/admin/login", url.Values{"email": {u.Email}, "password": {"tangerine orbit harbour eleven"}}).want(t, http.StatusSeeOther)
}

func TestListsPages(t *testing.T) {
	e := newEnv(t)
	editor := e.login(e.user(e.a.ID, tidings.RoleEditor, false))
	a := "/admin/a/" + itoa(e.a.ID)
	editor.post(a+"/lists", url.Values{"name": {""}, "lawful_basis": {"consent"}}).want(t, http.StatusUnprocessableEntity, "name: is required")
	p := editor.post(a+"/lists", url.Values{"name": {"<script>alert(1)</script> news"}, "lawful_basis": {"consent"}, "double_opt_in": {"on"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("create list: %d\n%s", p.status, p.body)
	}
	list := editor.get(p.location).want(t, http.StatusOK, "&lt;script&gt;alert(1)&lt;/script&gt; news", "Sign-up form", "double")
	if strings.Contains(list.body, "<script>") {
		t.Fatal("a list name was rendered as HTML")
	}
	editor.get(a+"/lists").want(t, http.StatusOK, "&lt;script&gt;")
	id := strings.TrimPrefix(strings.Split(p.location, "?")[0], a+"/lists/")
	editor.get(a+"/lists/"+id+"/chart.svg").want(t, http.StatusOK, "<svg")
	// Editors may not delete; the audit log has the creation.
	editor.post(a+"/lists/"+id+"/delete", nil).want(t, http.StatusForbidden)
	log, _ := e.store.AuditLog(ctx, e.a.ID, 0, 10)
	if len(log) != 1 || log[0].Action != "list.create" {
		t.Fatalf("audit log: %+v", log)
	}
	// Another account's staff see nothing of it.
	other := e.login(e.user(e.b.ID, tidings.RoleOwner, false))
	other.get(a+"/lists/"+id).want(t, http.StatusNotFound)
	other.get("/admin/a/"+itoa(e.b.ID)+"/lists/"+id).want(t, http.StatusNotFound)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
