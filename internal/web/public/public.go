// Package public serves the pages and endpoints people reach without an account:
// hosted subscribe forms (also the target of forms embedded on account holders' own
// sites, and a JSON endpoint), confirmation and "this wasn't me" links, and consent
// receipts.
package public

import (
	"cmp"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"html/template"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidings/tidings/internal/consent"
	"github.com/tidings/tidings/internal/keys"
	"github.com/tidings/tidings/internal/tidings"
	"github.com/tidings/tidings/internal/track"
	"github.com/tidings/tidings/internal/web/clientip"
	"github.com/tidings/tidings/internal/web/ratelimit"
)

//go:embed templates/*.html
var templates embed.FS

var pages = template.Must(template.ParseFS(templates, "templates/*.html"))

// Deps is what the public surface needs.
type Deps struct {
	Store    tidings.Store
	Consent  *consent.Service
	ClientIP clientip.Resolver
	Log      *slog.Logger
	// Events records opens and clicks; nil disables the tracking endpoints.
	Events *track.Writer
	// SubscribeLimit limits subscribe posts per client (clientip.Key); nil uses the
	// default (5 at once, then one every 20 seconds).
	SubscribeLimit *ratelimit.Limiter
	// AddressLimit limits sign-ups per address, whatever the client, so the form cannot
	// be used to flood someone with confirmation mails; nil uses the default (3 at once,
	// then one every 10 minutes).
	AddressLimit *ratelimit.Limiter
	// ViewLimit limits views of hosted subscribe pages per client (clientip.Key), each
	// a few look-ups; nil uses the default (60 at once, then one a second).
	ViewLimit *ratelimit.Limiter
	// LinkLimit limits uses of the links in mails per client (clientip.Key): confirm and
	// decline pages and posts, receipts, the unsubscribe page. A person follows a link
	// once or twice; each use is a look-up, a receipt's a signature, a confirmation a
	// mail. nil uses the default (60 at once, then one a second), as for views: people
	// behind one address (an office, a mobile carrier) share it.
	LinkLimit *ratelimit.Limiter
	// OneClickLimit limits one-click unsubscribes (RFC 8058 posts) per client; nil uses
	// the default, far looser than LinkLimit (see Routes).
	OneClickLimit *ratelimit.Limiter
}

type server struct {
	Deps
}

// The tracking routes: the click redirect and the open pixel.
const (
	clickPrefix = "/c/"
	openPrefix  = "/o/"
)

// IsTrackingPath reports the click redirect's and the open pixel's paths, the busiest
// routes, which the access log treats more lightly.
func IsTrackingPath(path string) bool {
	return strings.HasPrefix(path, clickPrefix) || strings.HasPrefix(path, openPrefix)
}

// SubscribePattern is the one route that accepts cross-origin posts (embedded forms).
const SubscribePattern = "POST /s/{list}"

// Routes registers the public routes.
func Routes(mux *http.ServeMux, d Deps) {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.SubscribeLimit == nil {
		d.SubscribeLimit = ratelimit.New(20*time.Second, 5)
	}
	if d.AddressLimit == nil {
		d.AddressLimit = ratelimit.New(10*time.Minute, 3)
	}
	if d.ViewLimit == nil {
		d.ViewLimit = ratelimit.New(time.Second, 60)
	}
	if d.LinkLimit == nil {
		d.LinkLimit = ratelimit.New(time.Second, 60)
	}
	if d.OneClickLimit == nil {
		// Mail providers post one-click unsubscribes for all their users from a few of
		// their own addresses: after a large campaign, thousands in minutes from one. A
		// refused one is mail the person asked to stop, and a provider may not retry, so
		// the limit is far above any provider's rate and only stops a client that replays
		// links in a loop (a valid token unsubscribes once; forged ones cost no look-up).
		d.OneClickLimit = ratelimit.New(20*time.Millisecond, 1000)
	}
	s := &server{d}
	mux.HandleFunc("GET /s/{list}", s.limit(d.ViewLimit, s.subscribeForm))
	mux.HandleFunc(SubscribePattern, s.subscribe)
	mux.HandleFunc("OPTIONS /s/{list}", preflight)
	mux.HandleFunc("GET /confirm/{token}", s.limit(d.LinkLimit, s.confirmPage))
	mux.HandleFunc("POST /confirm/{token}", s.limit(d.LinkLimit, s.confirm))
	mux.HandleFunc("GET /decline/{token}", s.limit(d.LinkLimit, s.declinePage))
	mux.HandleFunc("POST /decline/{token}", s.limit(d.LinkLimit, s.decline))
	mux.HandleFunc("GET /receipt/{token}", s.limit(d.LinkLimit, s.receipt))
	mux.HandleFunc("GET /u/{token}", s.limit(d.LinkLimit, s.unsubscribePage))
	mux.HandleFunc(UnsubscribePattern, s.limit(d.OneClickLimit, s.unsubscribe))
	mux.HandleFunc("GET /.well-known/gpc.json", s.gpc)
	if d.Events != nil {
		mux.HandleFunc("GET "+clickPrefix+"{token}", s.click)
		mux.HandleFunc("GET "+openPrefix+"{token}", s.open)
	}
	mux.HandleFunc("GET /.well-known/tidings-receipt-key", s.receiptKey)
}

// formPage is the subscribe page's data.
type formPage struct {
	Action        string
	Account       tidings.Account
	List          tidings.List
	Also          []offer // more lists of the account, as checkboxes
	Text          tidings.ConsentText
	OfferTracking bool
	Tracking      bool // the person ticked the tracking consent (shown again after an error)
	Email, Name   string
	Error         string
}

// offer is a further list on the hosted page, unticked unless the person ticked it
// (shown again after an error).
type offer struct {
	consent.AlsoList
	Ticked bool
}

type messagePage struct {
	Title, Message string
	Action, Button string // a confirmation step: POST to Action
	NoTracking     string // a second button, posting tracking=no (confirm without tracking)
}

// limit runs h unless the client (clientip.Key) has used up its bucket of l: then it
// answers 429 with a page that says when to come back.
func (s *server) limit(l *ratelimit.Limiter, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !l.Allow(clientip.Key(s.ClientIP.IP(r))) {
			w.Header().Set("Retry-After", "60")
			s.message(w, http.StatusTooManyRequests, "Too many requests", "Too many requests from your network; please try again in a minute.")
			return
		}
		h(w, r)
	}
}

// subscribeForm shows the hosted page; ?also=token,token (consent.AlsoQuery) offers more
// lists of the account.
func (s *server) subscribeForm(w http.ResponseWriter, r *http.Request) {
	p, status := s.loadForm(r)
	if status != http.StatusOK {
		s.message(w, status, "Form not found", "This subscribe form does not exist. Check the link you followed.")
		return
	}
	query := linkAlso(r)
	found, err := s.lookUp(r.Context(), p, query)
	if err != nil {
		s.Log.Error("subscribe form: more lists", "account_id", p.Account.ID, "err", err)
		s.message(w, http.StatusServiceUnavailable, "Something went wrong", "This form cannot be shown just now. Please try again later.")
		return
	}
	s.offer(&p, found, query, nil)
	s.render(w, http.StatusOK, "subscribe.html", p)
}

// linkAlso returns the form tokens the page's link names (?also=), no more than a
// sign-up may name (alsoLists).
func linkAlso(r *http.Request) []string {
	query := consent.SplitAlso(r.URL.Query()["also"])
	return query[:min(len(query), maxAlso)]
}

// lookUp fetches the lists of the form's account that tokens name, other than the
// form's own, in one query (GetLists): a request's only look-up of further lists, for
// both the page it shows and the sign-up it checks. At most a link's and a post's
// worth of tokens (2 × maxAlso), so a request costs the same however many it names.
func (s *server) lookUp(ctx context.Context, p formPage, tokens []string) (map[int64]tidings.List, error) {
	var ids []int64
	for _, t := range tokens {
		accountID, listID, ok := s.Consent.ParseListToken(t)
		if ok && accountID == p.Account.ID && listID != p.List.ID && !slices.Contains(ids, listID) {
			ids = append(ids, listID)
		}
	}
	found := map[int64]tidings.List{}
	if len(ids) == 0 {
		return found, nil
	}
	lists, err := s.Store.GetLists(ctx, p.Account.ID, ids)
	if err != nil {
		return nil, err
	}
	for _, l := range lists {
		found[l.ID] = l
	}
	return found, nil
}

// offer fills in the lists the page offers besides its own: those its link names
// (query), then any others the person ticked (a form embedded elsewhere offers its
// own), those ticked marked so; found holds the lists looked up (lookUp). The action
// keeps the link's choice, so that the page shown again after an error offers the same
// lists.
//
// A token of the link that names no list of the page's account (forged, another
// account's, or a list deleted since the link was shared) is left out, not refused:
// the people who follow a link cannot mend it, and the page's own list must stay open
// to them; leaving out a token of another account answers exactly as for a forged one,
// so the page says nothing about other accounts' lists. The admin page builds these
// links from the account's own lists only. A post that names such a list is refused
// (alsoLists), with nothing stored.
func (s *server) offer(p *formPage, found map[int64]tidings.List, query, ticked []string) {
	ticked = ticked[:min(len(ticked), maxAlso)]
	lists, _ := s.otherLists(*p, found, slices.Concat(query, ticked))
	offered := s.Consent.AlsoLists(lists)
	p.Also = make([]offer, len(offered))
	var shown []consent.AlsoList
	for i, a := range offered {
		p.Also[i] = offer{AlsoList: a, Ticked: slices.Contains(ticked, a.Token)}
		if slices.Contains(query, a.Token) {
			shown = append(shown, a)
		}
	}
	p.Action += consent.AlsoQuery(shown)
}

func (s *server) loadForm(r *http.Request) (formPage, int) {
	accountID, listID, ok := s.Consent.ParseListToken(r.PathValue("list"))
	if !ok {
		return formPage{}, http.StatusNotFound
	}
	ctx := r.Context()
	acc, err := s.Store.GetAccount(ctx, accountID)
	if err != nil {
		return formPage{}, http.StatusNotFound
	}
	list, err := s.Store.GetList(ctx, accountID, listID)
	if err != nil {
		return formPage{}, http.StatusNotFound
	}
	text, err := s.Consent.CurrentText(ctx, acc)
	if err != nil {
		s.Log.Error("consent text", "account_id", accountID, "err", err)
		return formPage{}, http.StatusInternalServerError
	}
	return formPage{Action: "/s/" + r.PathValue("list"), Account: acc, List: list, Text: text, OfferTracking: acc.TrackingEnabled}, http.StatusOK
}

// subscribeInput is the JSON body of a subscribe post; forms carry the same fields.
type subscribeInput struct {
	Email           string `json:"email"`
	Name            string `json:"name"`
	TrackingConsent bool   `json:"tracking_consent"`
	ConsentVersion  int    `json:"consent_version"`
	Website         string `json:"website"` // the honeypot: people leave it empty
	// Also names more lists of the same account to sign up for at once, by their form
	// tokens (the part of a form's URL after /s/): checkboxes on the account holder's
	// own form, or a script's list.
	Also []string `json:"also"`
}

// maxAlso is how many more lists one sign-up may name.
const maxAlso = 20

// preflight lets scripts on the account holder's own site post JSON sign-ups: any
// origin may, without credentials (the endpoint uses no cookies), as the plain form
// embedded there already can.
func preflight(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "POST")
	h.Set("Access-Control-Allow-Headers", "Content-Type")
	h.Set("Access-Control-Max-Age", "86400")
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) subscribe(w http.ResponseWriter, r *http.Request) {
	asJSON := isJSON(r)
	w.Header().Set("Access-Control-Allow-Origin", "*") // the answer is readable by such scripts (preflight)
	ip := s.ClientIP.IP(r)
	if !s.SubscribeLimit.Allow(clientip.Key(ip)) {
		w.Header().Set("Retry-After", "60")
		s.fail(w, asJSON, http.StatusTooManyRequests, "rate_limited", "", "Too many sign-ups from your network; please try again in a minute.", formPage{})
		return
	}
	p, status := s.loadForm(r)
	if status != http.StatusOK {
		s.fail(w, asJSON, status, "not_found", "", "This subscribe form does not exist.", p)
		return
	}
	in, err := readInput(w, r, asJSON)
	p.Email, p.Name, p.Tracking = in.Email, in.Name, in.TrackingConsent
	// One look-up for the lists the page offers (a form's post) and those ticked.
	var query []string
	if !asJSON {
		query = linkAlso(r)
	}
	found, lookErr := s.lookUp(r.Context(), p, slices.Concat(query, in.Also[:min(len(in.Also), maxAlso)]))
	if lookErr != nil && (!asJSON || err == nil) {
		s.Log.Error("subscribe: more lists", "account_id", p.Account.ID, "err", lookErr)
		s.fail(w, asJSON, http.StatusServiceUnavailable, "unavailable", "", "We could not complete your sign-up just now. Please try again later.", formPage{})
		return
	}
	if !asJSON {
		// The page is shown again on an error: with the lists it offered, as ticked.
		s.offer(&p, found, query, in.Also)
	}
	if err != nil {
		s.fail(w, asJSON, http.StatusBadRequest, "invalid_request", "", err.Error(), p)
		return
	}
	lists, doubleOptIn, err := s.alsoLists(p, found, in.Also)
	if v, ok := tidings.AsValidation(err); ok {
		s.fail(w, asJSON, http.StatusUnprocessableEntity, v.Code, v.Field, v.Message, p)
		return
	}
	if in.Website != "" {
		// A bot filled the hidden field: answer as if all went well, store nothing.
		s.succeed(w, asJSON, doubleOptIn)
		return
	}
	if addr, err := tidings.ParseAddress(in.Email); err == nil && !s.AddressLimit.Allow(string(keys.HashSecretToken(addr.String()))) {
		// The same answer as a sign-up, and no mail: the answer must not tell whether the
		// address was just used, and its owner gets no more than a few mails.
		s.succeed(w, asJSON, doubleOptIn)
		return
	}
	_, err = s.Consent.Subscribe(r.Context(), consent.SubscribeRequest{
		AccountID: p.Account.ID, Lists: lists, Email: in.Email, Name: in.Name,
		TrackingConsent: in.TrackingConsent, TextVersion: in.ConsentVersion, Source: sourceOf(asJSON),
		Evidence: tidings.Evidence{IP: ip.String(), UserAgent: clip(r.UserAgent(), 512), Referrer: clip(r.Referer(), 1000)},
	})
	if v, ok := tidings.AsValidation(err); ok {
		s.fail(w, asJSON, http.StatusUnprocessableEntity, v.Code, v.Field, v.Error(), p)
		return
	}
	if err != nil {
		s.Log.Error("subscribe failed", "account_id", p.Account.ID, "list_id", p.List.ID, "err", err)
		s.fail(w, asJSON, http.StatusServiceUnavailable, "unavailable", "", "We could not complete your sign-up just now. Please try again later.", p)
		return
	}
	// The answer is the same whether or not the address was already known.
	s.succeed(w, asJSON, doubleOptIn)
}

// alsoLists returns the form's list and the further lists named by their tokens, all of
// the form's account, and whether any of them asks for double opt-in; found holds the
// lists looked up (lookUp). A token that names no list of the account is a
// *tidings.ValidationError on "also".
func (s *server) alsoLists(p formPage, found map[int64]tidings.List, tokens []string) ([]int64, bool, error) {
	if len(tokens) > maxAlso {
		return nil, false, tidings.Invalid("also", "too_many", "a sign-up can name at most %d more lists", maxAlso)
	}
	more, bad := s.otherLists(p, found, tokens)
	if bad != nil {
		return nil, false, bad
	}
	lists, doubleOptIn := []int64{p.List.ID}, p.List.DoubleOptIn
	for _, l := range more {
		lists, doubleOptIn = append(lists, l.ID), doubleOptIn || l.DoubleOptIn
	}
	return lists, doubleOptIn, nil
}

// otherLists returns the lists of the form's account that tokens name, in their order,
// each once and never the form's own, from those looked up (found). It skips a token
// that names no such list and reports the first as bad, a validation error on "also".
func (s *server) otherLists(p formPage, found map[int64]tidings.List, tokens []string) (lists []tidings.List, bad *tidings.ValidationError) {
	seen := map[int64]bool{p.List.ID: true}
	for _, t := range tokens {
		accountID, listID, ok := s.Consent.ParseListToken(t)
		if !ok || accountID != p.Account.ID {
			bad = cmp.Or(bad, tidings.Invalid("also", "unknown_list", "one of the lists is not a list of this form's sender"))
			continue
		}
		if seen[listID] {
			continue
		}
		seen[listID] = true
		l, ok := found[listID]
		if !ok {
			bad = cmp.Or(bad, tidings.Invalid("also", "unknown_list", "one of the lists does not exist any more"))
			continue
		}
		lists = append(lists, l)
	}
	return lists, bad
}

func sourceOf(asJSON bool) tidings.Source {
	if asJSON {
		return tidings.SourceAPI
	}
	return tidings.SourceForm
}

func readInput(w http.ResponseWriter, r *http.Request, asJSON bool) (subscribeInput, error) {
	var in subscribeInput
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if asJSON {
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			return in, errors.New("the body must be a JSON object with email, name, tracking_consent, consent_version and, for more lists, also")
		}
		if _, err := dec.Token(); err != io.EOF {
			return in, errors.New("the body must hold exactly one JSON object")
		}
		return in, nil
	}
	if err := r.ParseForm(); err != nil {
		return in, errors.New("the form could not be read")
	}
	f := r.PostForm
	in.Email, in.Name, in.Website = f.Get("email"), f.Get("name"), f.Get("website")
	in.TrackingConsent = f.Get("tracking_consent") == "yes"
	in.ConsentVersion, _ = strconv.Atoi(f.Get("consent_version"))
	in.Also = f["also"]
	return in, nil
}

func (s *server) succeed(w http.ResponseWriter, asJSON, doubleOptIn bool) {
	// On a single opt-in list an address already known is asked to confirm instead
	// (consent.Subscribe); the answer does not tell which, or the form would say who
	// is on the list.
	status, title, msg := "subscribed", "You're subscribed", "Thank you! A message is on its way to you: a welcome, or, if this address was already with us, a link to confirm."
	if doubleOptIn {
		status, title, msg = "confirmation_sent", "Check your inbox", "Almost done: we sent you an email. Open the link in it to confirm your subscription."
	}
	if asJSON {
		writeJSON(w, http.StatusOK, map[string]string{"status": status, "message": msg})
		return
	}
	s.message(w, http.StatusOK, title, msg)
}

func (s *server) fail(w http.ResponseWriter, asJSON bool, status int, code, field, msg string, p formPage) {
	if asJSON {
		writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg, "field": field}})
		return
	}
	if p.Account.ID == 0 {
		s.message(w, status, "Sign-up failed", msg)
		return
	}
	p.Error = msg
	s.render(w, status, "subscribe.html", p)
}

// confirmPage shows the buttons that confirm a pending request. GET never confirms:
// mail scanners follow links, so it only reads the request (LookUpRequest), and the
// person presses a button. The stored request, not the link's query, decides whether
// the page speaks of tracking: a link whose query was lost or changed must neither hide
// that confirming gives the tracking consent the request asks for, nor mention tracking
// a request did not ask for. The mail's link to confirm without tracking
// (?tracking=no) only preselects that choice; the POST's tracking=no decides
// (consent.Service.Confirm). A request whose lists were all deleted since gets the
// POST's 410 instead of a button that confirms nothing; the GET leaves the request to
// the POST or to the retention sweep.
func (s *server) confirmPage(w http.ResponseWriter, r *http.Request) {
	req, ok := s.linkedRequest(w, r, s.badConfirmLink)
	if !ok {
		return
	}
	if len(req.Lists) == 0 {
		s.listsGone(w, "the request is deleted when its link expires.")
		return
	}
	p := messagePage{Title: "Confirm your subscription",
		Message: "Press the button to confirm that you want to receive these emails.",
		Action:  "/confirm/" + r.PathValue("token"), Button: "Yes, subscribe me"}
	switch {
	case !req.AsksTracking:
	case r.URL.Query().Get("tracking") == "no":
		p.Message = "Press the button to confirm that you want to receive these emails, without consent to tracking whether you open them and click their links."
		p.Action, p.Button = p.Action+"?tracking=no", "Yes, subscribe me without tracking"
	default:
		p.Message = "Press a button to confirm that you want to receive these emails. Your request also asks for your consent to tracking: whether you open the emails and click their links. You can subscribe without it."
		p.Button, p.NoTracking = "Yes, subscribe me, and I agree to tracking", "Subscribe me without tracking"
	}
	s.render(w, http.StatusOK, "message.html", p)
}

func (s *server) confirm(w http.ResponseWriter, r *http.Request) {
	ip := s.ClientIP.IP(r)
	_, err := s.Consent.Confirm(r.Context(), r.PathValue("token"),
		tidings.Evidence{IP: ip.String(), UserAgent: clip(r.UserAgent(), 512), Referrer: clip(r.Referer(), 1000)},
		r.FormValue("tracking") == "no")
	switch {
	case errors.Is(err, consent.ErrListsGone):
		s.listsGone(w, "the request is deleted.")
	case errors.Is(err, consent.ErrBadLink):
		s.badConfirmLink(w)
	case err != nil:
		s.Log.Error("confirm failed", "err", err)
		s.message(w, http.StatusInternalServerError, "Something went wrong", "We could not confirm your subscription just now. Please try again later.")
	default:
		s.message(w, http.StatusOK, "Subscription confirmed", "Thank you: your subscription is confirmed. A welcome email with your consent receipt is on its way.")
	}
}

// linkedRequest reads the request a confirm or decline link names, for its page, and
// changes nothing (LookUpRequest). Without one to show, it has answered: bad for a
// link that cannot be used, an error page for a failure.
func (s *server) linkedRequest(w http.ResponseWriter, r *http.Request, bad func(http.ResponseWriter)) (consent.PendingRequest, bool) {
	req, err := s.Consent.LookUpRequest(r.Context(), r.PathValue("token"))
	switch {
	case errors.Is(err, consent.ErrBadLink):
		bad(w)
		return req, false
	case err != nil:
		s.Log.Error("link page", "path", r.Pattern, "err", err)
		s.message(w, http.StatusInternalServerError, "Something went wrong", "This page cannot be shown just now. Please try again later.")
		return req, false
	}
	return req, true
}

// badConfirmLink is the page and the post's answer to a confirmation link that is
// forged, altered, used or expired.
func (s *server) badConfirmLink(w http.ResponseWriter) {
	s.message(w, http.StatusNotFound, "Link not valid", "This confirmation link is not valid. It may have been used already, it may have expired (links work for 7 days at most), or it was changed. Please sign up again.")
}

// listsGone is the page and the post's answer to a confirmation link whose lists were
// all deleted since (consent.ErrListsGone); fate says what becomes of the request.
func (s *server) listsGone(w http.ResponseWriter, fate string) {
	s.message(w, http.StatusGone, "Lists no longer exist", "The lists you asked to receive no longer exist, so there is nothing to confirm: you are not subscribed, nothing your request asked for was changed, and "+fate)
}

// declinePage shows the button that deletes a pending request. Like the confirm page it
// only reads the request (LookUpRequest): a link that cannot decline gets the POST's
// 404 instead of a button that can only fail. A request whose lists are all gone can
// still be declined: that deletes it, and the person with it, at once.
func (s *server) declinePage(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.linkedRequest(w, r, s.badDeclineLink); !ok {
		return
	}
	s.render(w, http.StatusOK, "message.html", messagePage{Title: "Not you?",
		Message: "If you did not ask to subscribe, press the button and the request is deleted. You will hear nothing more.",
		Action:  "/decline/" + r.PathValue("token"), Button: "Delete this request"})
}

// badDeclineLink is the page and the post's answer to a decline link that is forged,
// altered, used or expired. An expired request is refused as by the confirm link
// (sqlstore's DeclineSubscription says why); the sweep deletes it.
func (s *server) badDeclineLink(w http.ResponseWriter) {
	s.message(w, http.StatusNotFound, "Link not valid", "This link is not valid: the request was already confirmed or deleted, it expired (links work for 7 days at most), or the link was changed. An expired request is deleted on its own, and you will hear nothing more about it. If a subscription you did not want was confirmed, every email has a link to unsubscribe.")
}

func (s *server) decline(w http.ResponseWriter, r *http.Request) {
	err := s.Consent.Decline(r.Context(), r.PathValue("token"))
	switch {
	case errors.Is(err, consent.ErrBadLink):
		s.badDeclineLink(w)
	case err != nil:
		s.Log.Error("decline failed", "err", err)
		s.message(w, http.StatusInternalServerError, "Something went wrong", "Please try again later.")
	default:
		s.message(w, http.StatusOK, "Request deleted", "The request was deleted. We are sorry for the bother.")
	}
}

func (s *server) receipt(w http.ResponseWriter, r *http.Request) {
	rc, err := s.Consent.ReceiptFor(r.Context(), r.PathValue("token"))
	if errors.Is(err, consent.ErrBadLink) {
		s.message(w, http.StatusNotFound, "Receipt not found", "This receipt link is not valid, or the data it refers to was erased.")
		return
	}
	if err != nil {
		s.Log.Error("receipt failed", "err", err)
		s.message(w, http.StatusInternalServerError, "Something went wrong", "Please try again later.")
		return
	}
	w.Header().Set("Content-Disposition", `attachment; filename="consent-receipt.json"`)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, rc)
}

func (s *server) receiptKey(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
		"x": s.Consent.ReceiptPublicKey()})
}

func (s *server) message(w http.ResponseWriter, status int, title, msg string) {
	s.render(w, status, "message.html", messagePage{Title: title, Message: msg})
}

func (s *server) render(w http.ResponseWriter, status int, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, name, data); err != nil {
		s.Log.Error("render", "template", name, "err", err)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func isJSON(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == "application/json"
}

func clip(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.ToValidUTF8(s, "")
}
