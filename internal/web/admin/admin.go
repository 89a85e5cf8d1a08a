// Package admin is the web UI of account holders' staff and of the operator: server-
// rendered HTML that works without JavaScript under a CSP that allows no scripts at all.
//
// Every page is a row of one route table with the least it needs: a signed-in user, a
// role in the account named by the URL, or the operator. The role/tenant matrix test
// walks that table, so a page cannot be added without its rule.
package admin

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tidings/tidings/internal/auth"
	"github.com/tidings/tidings/internal/consent"
	"github.com/tidings/tidings/internal/keys"
	"github.com/tidings/tidings/internal/mail"
	"github.com/tidings/tidings/internal/postman"
	"github.com/tidings/tidings/internal/send"
	"github.com/tidings/tidings/internal/tidings"
	"github.com/tidings/tidings/internal/web/clientip"
	"github.com/tidings/tidings/internal/web/ratelimit"
)

// Deps is what the admin UI needs.
type Deps struct {
	Store    tidings.Store
	Keys     *keys.Keyring
	Auth     *auth.Service
	Log      *slog.Logger
	BaseURL  string
	ClientIP clientip.Resolver
	// Sender delivers password resets, invitations and breach notices; MailFrom is their sender.
	Sender   mail.Sender
	MailFrom string
	Outbox   *mail.Outbox     // the embedded mail sink (operators view it); nil with a relay
	Consent  *consent.Service // imports that ask for confirmation; nil: confirmed imports only
	Engine   *send.Engine     // previews and test sends; nil disables them
	// MaxUploadBytes bounds CSV uploads.
	MaxUploadBytes int64
	// PerIP limits login and reset attempts per client address; nil uses a default.
	PerIP *ratelimit.Limiter
	// DNS reads sending domains' records for the DNS check; nil uses the system's resolver.
	DNS postman.TXTResolver
}

// Access is the least a route needs.
type Access int

const (
	Public   Access = iota // no sign-in (login, reset, verification pages)
	SignedIn               // any signed-in user
	Viewer                 // a role in the account of the URL: viewer or above
	Editor
	AccountAdmin
	Owner
	Operator // the platform operator
)

// rank orders roles; a route needing Editor admits editors, admins and owners.
var rank = map[tidings.Role]Access{tidings.RoleViewer: Viewer, tidings.RoleEditor: Editor, tidings.RoleAdmin: AccountAdmin, tidings.RoleOwner: Owner}

// Route is one page or form action.
type Route struct {
	Pattern string // method and path, as http.ServeMux reads them
	Access  Access
	h       func(*request) error
}

// ui holds the dependencies and the parsed templates.
type ui struct {
	Deps
	pages map[string]*template.Template
}

// Routes registers the admin UI on mux.
func Routes(mux *http.ServeMux, d Deps) {
	u := newUI(d)
	for _, rt := range u.routes() {
		mux.Handle(rt.Pattern, u.handle(rt))
	}
}

// RouteTable lists the routes and their rules (for the matrix test and documentation).
func RouteTable() []Route { return (&ui{}).routes() }

//go:embed templates
var templateFS embed.FS

func newUI(d Deps) *ui {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.PerIP == nil {
		d.PerIP = ratelimit.New(6*time.Second, 20)
	}
	if d.DNS == nil {
		d.DNS = postman.NewResolver("")
	}
	if d.MaxUploadBytes == 0 {
		d.MaxUploadBytes = 64 << 20
	}
	u := &ui{Deps: d, pages: map[string]*template.Template{}}
	base := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials/*.html"))
	names, _ := fs.Glob(templateFS, "templates/*.html")
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		u.pages[name] = template.Must(template.Must(base.Clone()).ParseFS(templateFS, n))
	}
	return u
}

var funcs = template.FuncMap{
	"when": func(t any) string {
		switch t := t.(type) {
		case time.Time:
			if t.IsZero() {
				return "—"
			}
			return t.UTC().Format("2 Jan 2006 15:04 UTC")
		case *time.Time:
			if t == nil {
				return "—"
			}
			return t.UTC().Format("2 Jan 2006 15:04 UTC")
		}
		return ""
	},
	"day":   func(t time.Time) string { return t.UTC().Format("2006-01-02") },
	"join":  strings.Join,
	"pct":   func(n, of int64) string { return percent(n, of) },
	"add":   func(a, b int64) int64 { return a + b },
	"query": func(v ...string) template.URL { return template.URL(query(v...)) },
}

func percent(n, of int64) string {
	if of == 0 {
		return "—"
	}
	return strconv.FormatFloat(float64(n)*100/float64(of), 'f', 1, 64) + "%"
}

// query builds "?k=v&…" from pairs, leaving out empty values.
func query(kv ...string) string {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			q.Set(kv[i], kv[i+1])
		}
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// request is one request with who made it and, on account routes, the account.
type request struct {
	*ui
	w       http.ResponseWriter
	r       *http.Request
	User    tidings.User
	Account tidings.Account // zero outside account routes
	Role    tidings.Role
	Members []accountLink // the user's accounts, for the switcher
	session string
}

// accountLink is one of the user's accounts, read once per request for the switcher, the
// two-factor gate and the authorisation.
type accountLink struct {
	tidings.Account
	Role tidings.Role
}

// view is what every template gets: the frame, plus the page's own Data.
type view struct {
	Title    string
	User     tidings.User
	Account  tidings.Account
	Role     tidings.Role
	Accounts []accountLink
	Nav      string // the active section
	Notice   string
	Error    string
	Data     any
}

// Can reports whether the viewer holds at least the named role in the current account.
func (v view) Can(role string) bool {
	return rank[v.Role] >= rank[tidings.Role(role)]
}

// A is the account's URL prefix.
func (v view) A() string { return fmt.Sprintf("/admin/a/%d", v.Account.ID) }

const cookieName = "tidings_admin"

// handle wraps a route with sign-in, the terms and two-factor gates, and authorisation.
func (u *ui) handle(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		rq := &request{ui: u, w: w, r: r}
		if rt.Access != Public {
			if !rq.signIn() {
				return
			}
			if !rq.gates() {
				return
			}
			if !rq.authorize(rt.Access) {
				return
			}
		}
		if err := rt.h(rq); err != nil {
			rq.fail(err)
		}
	})
}

// signIn finds the session's user, or sends the browser to the login page.
func (rq *request) signIn() bool {
	c, err := rq.r.Cookie(cookieName)
	if err == nil {
		rq.User, err = rq.Auth.Session(rq.r.Context(), c.Value)
		rq.session = c.Value
	}
	if err != nil {
		next := ""
		if rq.r.Method == http.MethodGet {
			next = rq.r.URL.Path
		}
		http.Redirect(rq.w, rq.r, "/admin/login"+query("next", next), http.StatusSeeOther)
		return false
	}
	ms, err := rq.Store.Memberships(rq.r.Context(), rq.User.ID)
	if err != nil {
		rq.fail(err)
		return false
	}
	for _, m := range ms {
		a, err := rq.Store.GetAccount(rq.r.Context(), m.AccountID)
		if err == nil {
			rq.Members = append(rq.Members, accountLink{Account: a, Role: m.Role})
		}
	}
	return true
}

// gates sends users who owe something first to where they settle it: new terms to
// accept, or two-factor that one of their accounts requires.
func (rq *request) gates() bool {
	p := rq.r.URL.Path
	if p == "/admin/logout" {
		return true
	}
	if p != "/admin/terms" {
		pending, err := rq.Auth.TermsPending(rq.r.Context(), rq.User.ID)
		if err != nil {
			rq.fail(err)
			return false
		}
		if pending.Version != 0 {
			http.Redirect(rq.w, rq.r, "/admin/terms", http.StatusSeeOther)
			return false
		}
	}
	if strings.HasPrefix(p, "/admin/me") || p == "/admin/terms" {
		return true
	}
	if _, required := rq.totpRequiredBy(); !required {
		return true
	}
	sec, err := rq.Store.UserSecurity(rq.r.Context(), rq.User.ID)
	if err != nil {
		rq.fail(err)
		return false
	}
	if !sec.TOTPEnabled {
		http.Redirect(rq.w, rq.r, "/admin/me/2fa?required=1", http.StatusSeeOther)
		return false
	}
	return true
}

// totpRequiredBy names an account of the user that requires two-factor sign-in.
func (rq *request) totpRequiredBy() (tidings.Account, bool) {
	for _, m := range rq.Members {
		if m.RequireTOTP {
			return m.Account, true
		}
	}
	return tidings.Account{}, false
}

// authorize checks the route's rule. Someone without a role in the account of the URL
// gets 404, as if it did not exist: the UI never confirms another tenant's IDs.
func (rq *request) authorize(need Access) bool {
	switch {
	case need == SignedIn:
		return true
	case need == Operator:
		if rq.User.Operator {
			return true
		}
		rq.notFound()
		return false
	}
	id, err := strconv.ParseInt(rq.r.PathValue("account"), 10, 64)
	if err != nil {
		rq.notFound()
		return false
	}
	for _, m := range rq.Members {
		if m.ID == id {
			rq.Account, rq.Role = m.Account, m.Role
		}
	}
	if rq.Role == "" {
		rq.notFound()
		return false
	}
	if rank[rq.Role] < need {
		rq.render(http.StatusForbidden, "message", "Not allowed", message{Text: fmt.Sprintf("Your role (%s) does not allow this page.", rq.Role)})
		return false
	}
	return true
}

// message is the data of the plain message page.
type message struct {
	Text       string
	Link, Back string
}

func (rq *request) notFound() {
	rq.render(http.StatusNotFound, "message", "Not found", message{Text: "There is no such page, or it is not yours to see."})
}

// fail answers an error a handler returned.
func (rq *request) fail(err error) {
	switch {
	case errors.Is(err, tidings.ErrNotFound):
		rq.notFound()
	case errors.Is(err, tidings.ErrConflict):
		rq.render(http.StatusConflict, "message", "Already exists", message{Text: "Something with that name or address already exists."})
	default:
		if v, ok := tidings.AsValidation(err); ok {
			rq.render(http.StatusUnprocessableEntity, "message", "Please correct the form", message{Text: v.Field + ": " + v.Message})
			return
		}
		rq.Log.Error("admin page failed", "route", rq.r.Pattern, "err", err)
		rq.render(http.StatusInternalServerError, "message", "Something went wrong", message{Text: "The server log has the details."})
	}
}

// render writes a page inside the layout. It renders into a buffer first, so a template
// error becomes a clean 500 rather than half a page.
func (rq *request) render(status int, page, title string, data any) {
	rq.renderView(status, page, view{Title: title, Data: data})
}

func (rq *request) renderView(status int, page string, v view) {
	t, ok := rq.pages[page]
	if !ok {
		panic("admin: no template " + page)
	}
	v.User, v.Account, v.Role, v.Accounts = rq.User, rq.Account, rq.Role, rq.Members
	if v.Notice == "" {
		v.Notice = notices[rq.r.URL.Query().Get("done")]
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", v); err != nil {
		rq.Log.Error("render admin page", "template", page, "err", err)
		http.Error(rq.w, "internal error", http.StatusInternalServerError)
		return
	}
	rq.w.Header().Set("Content-Type", "text/html; charset=utf-8")
	rq.w.WriteHeader(status)
	rq.w.Write(buf.Bytes())
}

// notices are the confirmations shown after a form redirects (?done=key). A fixed table:
// nothing from the URL is ever echoed.
var notices = map[string]string{
	"saved":     "Saved.",
	"created":   "Created.",
	"deleted":   "Deleted.",
	"password":  "Your password was changed. Other sessions were signed out.",
	"2fa-on":    "Two-factor sign-in is on.",
	"2fa-off":   "Two-factor sign-in is off.",
	"sent":      "Sent.",
	"queued":    "The campaign is on its way.",
	"paused":    "Paused.",
	"notified":  "The account holders were notified.",
	"published": "Published. Every user must accept this version at their next sign-in.",
	"verified":  "Your public page links to Tidings: verified.",
	"imported":  "Import finished.",
	"invited":   "Invitation sent.",
	"resumed":   "Resumed.",
	"cancelled": "Cancelled.",
	"scheduled": "Scheduled.",
	"removed":   "Removed.",
	"test-sent": "Test mail sent.",
	"erased":    "Erased.",
	"accepted":  "Accepted.",
}

// redirect answers a form post by sending the browser on (post/redirect/get).
func (rq *request) redirect(path, done string) error {
	http.Redirect(rq.w, rq.r, path+query("done", done), http.StatusSeeOther)
	return nil
}

// form parses a posted form (bounded).
func (rq *request) form() error {
	rq.r.Body = http.MaxBytesReader(rq.w, rq.r.Body, 1<<20)
	if err := rq.r.ParseForm(); err != nil {
		return tidings.Invalid("form", "unreadable", "the form could not be read")
	}
	return nil
}

func (rq *request) value(name string) string { return strings.TrimSpace(rq.r.PostForm.Get(name)) }

// id reads a numeric path value; anything else is not found.
func (rq *request) id(name string) (int64, error) {
	n, err := strconv.ParseInt(rq.r.PathValue(name), 10, 64)
	if err != nil || n <= 0 {
		return 0, tidings.ErrNotFound
	}
	return n, nil
}

// a is the current account's URL prefix.
func (rq *request) a(suffix string) string {
	return fmt.Sprintf("/admin/a/%d%s", rq.Account.ID, suffix)
}

// audit records a staff action on personal data or settings. Failing to audit fails
// the request: an unaudited export must not happen.
func (rq *request) audit(action, target string) error {
	return rq.Store.Audit(rq.r.Context(), tidings.AuditEntry{AccountID: rq.Account.ID, UserID: rq.User.ID, Action: action,
		Target: target, IP: rq.ip(), At: time.Now()})
}

// page reads keyset pagination from the query.
func (rq *request) page(size int) tidings.Page {
	after, _ := strconv.ParseInt(rq.r.URL.Query().Get("after"), 10, 64)
	return tidings.Page{After: after, Limit: size}
}

func (rq *request) ip() string { return rq.ClientIP.IP(rq.r).String() }

// limitKey is what per-client limits count by (clientip.Key).
func (rq *request) limitKey() string { return clientip.Key(rq.ClientIP.IP(rq.r)) }

func (rq *request) client() auth.Client {
	ua := rq.r.UserAgent()
	if len(ua) > 500 {
		ua = ua[:500]
	}
	return auth.Client{IP: rq.ip(), UserAgent: ua}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
