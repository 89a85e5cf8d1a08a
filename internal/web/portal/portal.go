// Package portal is the subscriber data access portal: a person signs in with a link
// sent to their address and sees, exports or erases what every account holder on this
// instance holds about them. It never reveals whether an address is known.
package portal

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	netmail "net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/tidings/tidings/internal/keys"
	"github.com/tidings/tidings/internal/mail"
	"github.com/tidings/tidings/internal/privacy"
	"github.com/tidings/tidings/internal/tidings"
	"github.com/tidings/tidings/internal/web/clientip"
	"github.com/tidings/tidings/internal/web/ratelimit"
)

//go:embed templates/*.html
var templates embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"when": func(t time.Time) string { return t.UTC().Format("2 Jan 2006, 15:04 UTC") },
	"attr": func(a tidings.Attributes, k string) string {
		if v, ok := a[k]; ok {
			return fmt.Sprint(v)
		}
		return ""
	},
}).ParseFS(templates, "templates/*.html"))

// Lifetimes of links and sessions.
const (
	LinkLifetime    = 15 * time.Minute
	SessionLifetime = 8 * time.Hour
	cookieName      = "tidings_portal"
)

// Deps is what the portal needs.
type Deps struct {
	Store    tidings.Store
	Sender   mail.Sender
	Outbox   *mail.Outbox // purged on erasure; nil with a relay
	BaseURL  string
	From     string // sender of sign-in mails, e.g. no-reply@news.example.com
	ClientIP clientip.Resolver
	Log      *slog.Logger
	// Limits on sign-in requests per client IP and per address; nil uses defaults.
	PerIP, PerAddress *ratelimit.Limiter
}

type portal struct{ Deps }

// Routes registers the portal.
func Routes(mux *http.ServeMux, d Deps) {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.PerIP == nil {
		d.PerIP = ratelimit.New(time.Minute, 10)
	}
	if d.PerAddress == nil {
		d.PerAddress = ratelimit.New(5*time.Minute, 3)
	}
	p := &portal{d}
	mux.HandleFunc("GET /portal", p.start)
	mux.HandleFunc("POST /portal", p.requestLink)
	mux.HandleFunc("GET /portal/signin/{token}", p.signinPage)
	mux.HandleFunc("POST /portal/signin/{token}", p.signin)
	mux.HandleFunc("GET /portal/me", p.me)
	mux.HandleFunc("GET /portal/export.json", p.exportJSON)
	mux.HandleFunc("GET /portal/export.csv", p.exportCSV)
	mux.HandleFunc("POST /portal/erase", p.erase)
	mux.HandleFunc("POST /portal/signout", p.signout)
	mux.HandleFunc("POST /portal/account/{id}/{action}", p.act)
	mux.HandleFunc("GET /portal/info/{id}", p.info)
}

// privacySignals is the browser's Do Not Track / Global Privacy Control state, shown to
// the person and honoured by tracking.
type privacySignals struct{ DNT, GPC bool }

func signals(r *http.Request) privacySignals {
	return privacySignals{DNT: r.Header.Get("DNT") == "1", GPC: r.Header.Get("Sec-GPC") == "1"}
}

type page struct {
	Title, Message string
	Error          string
	Action, Button string
	Signals        privacySignals
	Email          string
	Records        []tidings.PersonRecord
	Lists          map[int64]string
}

func (p *portal) render(w http.ResponseWriter, status int, name string, data page) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, name, data); err != nil {
		p.Log.Error("render portal page", "template", name, "err", err)
	}
}

func (p *portal) start(w http.ResponseWriter, r *http.Request) {
	p.render(w, http.StatusOK, "start.html", page{Title: "Your data", Signals: signals(r)})
}

// requestLink answers every well-formed request the same way, known address or not,
// and sends the link either way (an unknown address simply finds nothing after signing
// in), so neither the page nor its timing tells who is subscribed.
func (p *portal) requestLink(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	r.ParseForm()
	addr, err := tidings.ParseAddress(r.PostForm.Get("email"))
	if err != nil {
		v, _ := tidings.AsValidation(err)
		p.render(w, http.StatusUnprocessableEntity, "start.html", page{Title: "Your data", Error: "Email address: " + v.Message, Signals: signals(r)})
		return
	}
	done := page{Title: "Check your inbox", Message: "If you have an email address with us, a sign-in link is on its way to it. The link works once, for 15 minutes."}
	ip := clientip.Key(p.ClientIP.IP(r))
	if !p.PerIP.Allow(ip) || !p.PerAddress.Allow(string(keys.HashSecretToken(addr.String()))) {
		// Same answer: limits must not reveal anything either.
		p.render(w, http.StatusOK, "message.html", done)
		return
	}
	token, hash := keys.NewSecretToken("p_")
	if err := p.Store.CreatePortalToken(r.Context(), hash, addr, false, time.Now().Add(LinkLifetime)); err != nil {
		p.Log.Error("portal link", "err", err)
		p.render(w, http.StatusServiceUnavailable, "message.html", page{Title: "Please try again", Message: "We could not send a link just now."})
		return
	}
	if err := p.sendLink(r.Context(), addr, p.BaseURL+"/portal/signin/"+token); err != nil {
		p.Log.Error("portal link mail", "err", err)
	}
	p.render(w, http.StatusOK, "message.html", done)
}

func (p *portal) sendLink(ctx context.Context, to tidings.Address, link string) error {
	m := &mail.Message{
		From: netmail.Address{Name: "Subscriber data portal", Address: p.From}, To: netmail.Address{Address: to.String()},
		Subject: "Your sign-in link", Date: time.Now(), MessageID: mail.NewMessageID(domainOf(p.From)),
		Text: "Open this link to see, download or erase the data held about this address:\n\n" + link +
			"\n\nIt works once, for 15 minutes. If you did not ask for it, ignore this message.\n",
	}
	return p.Sender.Send(ctx, mail.Envelope{From: p.From, To: []string{to.String()}}, m.Bytes())
}

func domainOf(addr string) string {
	_, d, _ := strings.Cut(addr, "@")
	return d
}

func (p *portal) signinPage(w http.ResponseWriter, r *http.Request) {
	// GET only shows a button: mail scanners open links, and must not use them up.
	p.render(w, http.StatusOK, "message.html", page{Title: "Sign in", Message: "Press the button to open your data.",
		Action: "/portal/signin/" + r.PathValue("token"), Button: "Sign in"})
}

func (p *portal) signin(w http.ResponseWriter, r *http.Request) {
	addr, err := p.Store.UsePortalToken(r.Context(), keys.HashSecretToken(r.PathValue("token")), false)
	if errors.Is(err, tidings.ErrNotFound) {
		p.render(w, http.StatusNotFound, "message.html", page{Title: "Link not valid",
			Message: "This sign-in link is not valid: it was used already, it expired (links work for 15 minutes), or it was altered. Ask for a new one.",
			Action:  "", Button: ""})
		return
	}
	if err != nil {
		p.Log.Error("portal sign-in", "err", err)
		p.render(w, http.StatusInternalServerError, "message.html", page{Title: "Please try again", Message: "Something went wrong."})
		return
	}
	session, hash := keys.NewSecretToken("s_")
	if err := p.Store.CreatePortalToken(r.Context(), hash, addr, true, time.Now().Add(SessionLifetime)); err != nil {
		p.Log.Error("portal session", "err", err)
		p.render(w, http.StatusInternalServerError, "message.html", page{Title: "Please try again", Message: "Something went wrong."})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: session, Path: "/portal", HttpOnly: true,
		Secure: strings.HasPrefix(p.BaseURL, "https://"), SameSite: http.SameSiteLaxMode}) // no Expires: ends with the browser
	http.Redirect(w, r, "/portal/me", http.StatusSeeOther)
}

// session returns the signed-in address, or writes the sign-in page.
func (p *portal) session(w http.ResponseWriter, r *http.Request) (tidings.Address, bool) {
	c, err := r.Cookie(cookieName)
	if err == nil {
		addr, err := p.Store.UsePortalToken(r.Context(), keys.HashSecretToken(c.Value), true)
		if err == nil {
			return addr, true
		}
	}
	p.render(w, http.StatusUnauthorized, "start.html", page{Title: "Your data", Error: "Please sign in again.", Signals: signals(r)})
	return tidings.Address{}, false
}

func (p *portal) me(w http.ResponseWriter, r *http.Request) {
	addr, ok := p.session(w, r)
	if !ok {
		return
	}
	recs, err := p.Store.PersonData(r.Context(), addr)
	if err != nil {
		p.Log.Error("portal data", "err", err)
		p.render(w, http.StatusInternalServerError, "message.html", page{Title: "Please try again", Message: "Something went wrong."})
		return
	}
	lists := map[int64]string{}
	for _, rec := range recs {
		ids := []int64{}
		for _, s := range rec.Subscriptions {
			ids = append(ids, s.ListID)
		}
		for _, pr := range rec.Pending {
			ids = append(ids, pr.Lists...)
		}
		for _, id := range ids {
			if _, ok := lists[id]; ok {
				continue
			}
			if l, err := p.Store.GetList(r.Context(), rec.Account.ID, id); err == nil {
				lists[id] = l.Name
			}
		}
	}
	p.render(w, http.StatusOK, "me.html", page{Title: "Your data", Email: addr.String(), Records: recs, Lists: lists, Signals: signals(r)})
}

func (p *portal) exportJSON(w http.ResponseWriter, r *http.Request) {
	addr, ok := p.session(w, r)
	if !ok {
		return
	}
	recs, err := p.Store.PersonData(r.Context(), addr)
	if err != nil {
		http.Error(w, "export failed", http.StatusInternalServerError)
		return
	}
	p.logAll(r.Context(), addr, recs, tidings.DSARPortability)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="my-data.json"`)
	w.Header().Set("Cache-Control", "no-store")
	privacy.WriteJSON(w, addr, recs)
}

func (p *portal) exportCSV(w http.ResponseWriter, r *http.Request) {
	addr, ok := p.session(w, r)
	if !ok {
		return
	}
	recs, err := p.Store.PersonData(r.Context(), addr)
	if err != nil {
		http.Error(w, "export failed", http.StatusInternalServerError)
		return
	}
	p.logAll(r.Context(), addr, recs, tidings.DSARAccess)
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="my-data.csv"`)
	w.Header().Set("Cache-Control", "no-store")
	privacy.WriteCSV(w, recs)
}

// erase deletes the person's data in one account (field account) or everywhere.
func (p *portal) erase(w http.ResponseWriter, r *http.Request) {
	addr, ok := p.session(w, r)
	if !ok {
		return
	}
	r.ParseForm()
	var accountID int64
	if v := r.PostForm.Get("account"); v != "" && v != "all" {
		accountID = parseID(v)
		if accountID <= 0 {
			p.render(w, http.StatusBadRequest, "message.html", page{Title: "Not understood", Message: "Choose an account or everything."})
			return
		}
	}
	er, err := p.Store.ErasePerson(r.Context(), addr, accountID)
	if err != nil {
		p.Log.Error("portal erasure", "err", err)
		p.render(w, http.StatusInternalServerError, "message.html", page{Title: "Please try again", Message: "Something went wrong; nothing was erased."})
		return
	}
	for _, acc := range er.Accounts {
		p.Store.LogDSAR(r.Context(), acc, addr, tidings.DSARErasure, tidings.SourcePortal, true)
	}
	if er.KeyDestroyed {
		if p.Outbox != nil {
			p.Outbox.Purge(addr.String())
		}
		http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/portal", MaxAge: -1, HttpOnly: true})
		p.render(w, http.StatusOK, "message.html", page{Title: "Your data was erased",
			Message: "Everything held about your address was deleted and its encryption key destroyed. What remains: a keyed hash of your address, so that lists uploaded later cannot add you back, and the consent records' hashes, which contain no personal data."})
		return
	}
	http.Redirect(w, r, "/portal/me", http.StatusSeeOther)
}

func (p *portal) signout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(cookieName); err == nil {
		p.Store.DeletePortalToken(r.Context(), keys.HashSecretToken(c.Value))
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/portal", MaxAge: -1, HttpOnly: true})
	p.render(w, http.StatusOK, "message.html", page{Title: "Signed out", Message: "You are signed out."})
}

// logAll records a request in the log of every account that holds the person.
func (p *portal) logAll(ctx context.Context, addr tidings.Address, recs []tidings.PersonRecord, kind tidings.DSARKind) {
	for _, rec := range recs {
		if err := p.Store.LogDSAR(ctx, rec.Account.ID, addr, kind, tidings.SourcePortal, true); err != nil {
			p.Log.Error("dsar log", "account_id", rec.Account.ID, "err", err)
		}
	}
}

// act applies one right at one account: restriction (Art. 18), objection to direct
// marketing (Art. 21: no more campaigns, and a suppression), tracking consent on/off,
// unsubscribing from every list, or lifting a restriction.
func (p *portal) act(w http.ResponseWriter, r *http.Request) {
	addr, ok := p.session(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	accountID := parseID(r.PathValue("id"))
	recs, err := p.Store.PersonData(ctx, addr)
	if err != nil {
		p.render(w, http.StatusInternalServerError, "message.html", page{Title: "Please try again", Message: "Something went wrong."})
		return
	}
	var sub *tidings.Subscriber
	for i := range recs {
		if recs[i].Account.ID == accountID {
			sub = &recs[i].Subscriber
		}
	}
	if sub == nil { // not theirs, or nothing held: the same answer
		p.render(w, http.StatusNotFound, "message.html", page{Title: "Not found", Message: "Nothing is held about you there."})
		return
	}
	ev := tidings.Evidence{IP: p.ClientIP.IP(r).String(), UserAgent: r.UserAgent()}
	var kind tidings.DSARKind
	switch r.PathValue("action") {
	case "restrict", "unrestrict", "object":
		kind = map[string]tidings.DSARKind{"restrict": tidings.DSARRestriction, "unrestrict": tidings.DSARRestriction, "object": tidings.DSARObjection}[r.PathValue("action")]
		sub.Status = map[string]tidings.SubscriberStatus{"restrict": tidings.StatusRestricted, "unrestrict": tidings.StatusActive, "object": tidings.StatusObjected}[r.PathValue("action")]
		// An objection suppresses the address first: should the status change then fail,
		// the person is already not mailed, and trying again completes it.
		if kind == tidings.DSARObjection {
			err = p.Store.AddSuppression(ctx, accountID, addr, tidings.SuppressObjection)
		}
		if err == nil {
			err = p.Store.UpdateSubscriber(ctx, accountID, sub)
		}
	case "tracking-on", "tracking-off":
		kind = tidings.DSARTracking
		err = p.Store.SetTrackingConsent(ctx, accountID, sub.ID, r.PathValue("action") == "tracking-on", tidings.SourcePortal, ev)
	case "unsubscribe":
		kind = tidings.DSARUnsubscribe
		_, err = p.Store.Unsubscribe(ctx, accountID, sub.ID, nil, tidings.SourcePortal, ev)
	case "rectify":
		// The name, and only the attributes the account lets people correct.
		kind = tidings.DSARRectification
		r.ParseForm()
		sub.Name = r.PostForm.Get("name")
		acc, _ := p.Store.GetAccount(ctx, accountID)
		for _, k := range acc.EditableAttributes {
			if v := strings.TrimSpace(r.PostForm.Get("attr_" + k)); v != "" {
				sub.Attributes[k] = v
			} else {
				delete(sub.Attributes, k)
			}
		}
		err = p.Store.UpdateSubscriber(ctx, accountID, sub)
		if v, ok := tidings.AsValidation(err); ok {
			p.render(w, http.StatusUnprocessableEntity, "message.html", page{Title: "Not saved", Message: v.Error()})
			return
		}
	default:
		p.render(w, http.StatusNotFound, "message.html", page{Title: "Not found", Message: "Unknown action."})
		return
	}
	if err == nil {
		err = p.Store.LogDSAR(ctx, accountID, addr, kind, tidings.SourcePortal, true)
	}
	if err != nil {
		p.Log.Error("portal action", "account_id", accountID, "err", err)
		p.render(w, http.StatusInternalServerError, "message.html", page{Title: "Please try again", Message: "Something went wrong. Please try again; what was done already stays done."})
		return
	}
	http.Redirect(w, r, "/portal/me", http.StatusSeeOther)
}

type infoPage struct {
	Account  tidings.Account
	Lists    []tidings.List
	Platform tidings.Platform // the operator, its hosting and sub-processors
}

// info says, for one account holder, what is collected, why, on which basis, for how
// long, who processes it and where (Art. 13/14). It is public: it reveals nothing about
// any person.
func (p *portal) info(w http.ResponseWriter, r *http.Request) {
	id := parseID(r.PathValue("id"))
	acc, err := p.Store.GetAccount(r.Context(), id)
	if err != nil {
		p.render(w, http.StatusNotFound, "message.html", page{Title: "Not found", Message: "There is no such account holder."})
		return
	}
	lists, _ := p.Store.ListLists(r.Context(), id, tidings.Page{Limit: tidings.MaxPageSize})
	platform, err := tidings.LoadPlatform(r.Context(), p.Store)
	if err != nil {
		p.Log.Error("info: platform details unreadable", "err", err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pages.ExecuteTemplate(w, "info.html", infoPage{Account: acc, Lists: lists, Platform: platform}); err != nil {
		p.Log.Error("render info", "err", err)
	}
}

// parseID reads a positive decimal ID; anything else is 0, which matches nothing.
func parseID(s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}
