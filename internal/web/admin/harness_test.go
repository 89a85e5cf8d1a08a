package admin_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/quotedprintable"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	netmail "net/mail"
	"net/url"
	"strings"
	"testing"

	"github.com/tidings/tidings/internal/consent"
	"github.com/tidings/tidings/internal/dnstest"
	"github.com/tidings/tidings/internal/keys"
	"github.com/tidings/tidings/internal/mail"
	"github.com/tidings/tidings/internal/postman"
	"github.com/tidings/tidings/internal/send"
	"github.com/tidings/tidings/internal/sqlstore"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
	"github.com/tidings/tidings/internal/web"
)

var ctx = context.Background()

// Password of every test user: strong enough for the rules.
const password = "violet anchor mellow thirteen"

func init() { keys.Argon2Params.Memory, keys.Argon2Params.Time = 1024, 1 }

// env is a running server (SQLite, mail into an outbox) with two accounts, A and B.
type env struct {
	t      testing.TB
	srv    *httptest.Server
	store  *sqlstore.Store
	outbox *mail.Outbox
	dns    *dnstest.Server // the DNS the domain check reads
	a, b   tidings.Account
}

func newEnv(t *testing.T) *env {
	t.Helper()
	store := testdb.Open(t, sqlstore.SQLite)
	return newEnvWith(t, store)
}

func newEnvWith(t testing.TB, store *sqlstore.Store) *env {
	t.Helper()
	kr := testdb.Keyring(t)
	ob, err := mail.NewOutbox(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, store: store, outbox: ob, dns: dnstest.Start(t)}
	e.srv = httptest.NewUnstartedServer(nil)
	base := "http://" + e.srv.Listener.Addr().String()
	cs := &consent.Service{Store: store, Keys: kr, Postman: postman.New(store, ob, "tidings.example"), BaseURL: base}
	eng := &send.Engine{Store: store, Keys: kr, Sender: ob, BaseURL: base, Workers: 2}
	e.srv.Config.Handler = web.NewHandler(web.Deps{Store: store, Keys: kr, BaseURL: base, Consent: cs, Outbox: ob, Sender: ob,
		MailFrom: "tidings@tidings.example", Engine: eng, MaxBodyBytes: 1 << 20, MaxUploadBytes: 1 << 20, DNS: postman.NewResolver(e.dns.Addr)})
	e.srv.Start()
	t.Cleanup(e.srv.Close)
	for i, acc := range []*tidings.Account{&e.a, &e.b} {
		*acc = tidings.Account{Name: fmt.Sprintf("Controller %c", 'A'+i), ContactEmail: "dpo@example.org", PostalAddress: "1 Main St"}
		if err := store.CreateAccount(ctx, acc); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

var userSeq int

// user creates a user with a role in the account (role "" for none).
func (e *env) user(accountID int64, role tidings.Role, operator bool) tidings.User {
	e.t.Helper()
	userSeq++
	hash, _ := keys.HashPassword(password)
	u := tidings.User{Email: fmt.Sprintf("staff%d@example.org", userSeq), Name: "Staff", PasswordHash: hash, Operator: operator}
	if err := e.store.CreateUser(ctx, &u); err != nil {
		e.t.Fatal(err)
	}
	if role != "" {
		if err := e.store.SetMembership(ctx, accountID, u.ID, role); err != nil {
			e.t.Fatal(err)
		}
	}
	return u
}

// browser is an HTTP client with its own cookies that does not follow redirects, so
// tests see them.
type browser struct {
	e *env
	c *http.Client
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// login signs a new browser in as u (without two-factor).
func (e *env) login(u tidings.User) *browser {
	e.t.Helper()
	b := e.browser()
	res := b.post("/admin/login", url.Values{"email": {u.Email}, "password": {password}})
	if res.status != http.StatusSeeOther {
		e.t.Fatalf("login as %s: %d\n%s", u.Email, res.status, res.body)
	}
	return b
}

type page struct {
	status   int
	location string
	header   http.Header
	body     string
}

func (b *browser) do(req *http.Request) page {
	b.e.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return page{status: res.StatusCode, location: res.Header.Get("Location"), header: res.Header, body: string(body)}
}

func (b *browser) get(path string) page {
	b.e.t.Helper()
	req, _ := http.NewRequest("GET", b.e.srv.URL+path, nil)
	return b.do(req)
}

// post sends a form as a same-origin browser would.
func (b *browser) post(path string, form url.Values) page {
	b.e.t.Helper()
	req, _ := http.NewRequest("POST", b.e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return b.do(req)
}

func (p page) want(t *testing.T, status int, contains ...string) page {
	t.Helper()
	if p.status != status {
		t.Fatalf("status %d, want %d (location %q)\n%s", p.status, status, p.location, p.body)
	}
	for _, c := range contains {
		if !strings.Contains(p.body, c) {
			t.Fatalf("page lacks %q:\n%s", c, p.body)
		}
	}
	return p
}

// mailTo returns the decoded text of the newest outbox mail to addr with this subject.
// mailsTo counts the outbox's messages to addr.
func (e *env) mailsTo(addr string) int {
	e.t.Helper()
	list, err := e.outbox.List(1000)
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, m := range list {
		raw, _ := e.outbox.Read(m.ID)
		if msg, err := netmail.ReadMessage(bytes.NewReader(raw)); err == nil && strings.Contains(msg.Header.Get("To"), addr) {
			n++
		}
	}
	return n
}

func (e *env) mailTo(addr, subject string) string {
	e.t.Helper()
	list, err := e.outbox.List(1000)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, m := range list {
		raw, _ := e.outbox.Read(m.ID)
		msg, err := netmail.ReadMessage(bytes.NewReader(raw))
		if err != nil || msg.Header.Get("Subject") != subject || !strings.Contains(msg.Header.Get("To"), addr) {
			continue
		}
		var body io.Reader = msg.Body
		if strings.EqualFold(msg.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
			body = quotedprintable.NewReader(body)
		}
		text, _ := io.ReadAll(body)
		return string(text)
	}
	e.t.Fatalf("no mail %q to %s in the outbox", subject, addr)
	return ""
}

// audited reports whether the account's audit log has the action on the target ("" for
// any target). No audit target may carry an address.
func (e *env) audited(accountID int64, action, target string) bool {
	e.t.Helper()
	entries, err := e.store.AuditLog(ctx, accountID, 0, 1000)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, a := range entries {
		if strings.Contains(a.Target, "@") {
			e.t.Fatalf("audit target carries an address: %q", a.Target)
		}
		if a.Action == action && (target == "" || a.Target == target) {
			return true
		}
	}
	return false
}
