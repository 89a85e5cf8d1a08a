package admin

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tidings/tidings/internal/consent"
	"github.com/tidings/tidings/internal/tidings"
)

// Subscribers, imports and data-subject requests: every page shows or exports personal
// data, so each needs an editor; viewers see counts on the list pages only.
func subscriberRoutes() []Route {
	rs := []Route{
		{"GET /admin/a/{account}/subscribers", Editor, (*request).subscribers},
		{"POST /admin/a/{account}/subscribers", Editor, (*request).createSubscriber},
		{"GET /admin/a/{account}/subscribers/{id}", Editor, (*request).subscriber},
		{"POST /admin/a/{account}/subscribers/{id}", Editor, (*request).updateSubscriber},
		{"POST /admin/a/{account}/subscribers/{id}/delete", AccountAdmin, (*request).deleteSubscriber},
		{"POST /admin/a/{account}/subscribers/{id}/lists", Editor, (*request).changeSubscription},
	}
	rs = append(rs, importRoutes()...)
	return append(rs, dsarRoutes()...)
}

const subscriberPageSize = 50

var subscriberStatuses = []tidings.SubscriberStatus{tidings.StatusActive, tidings.StatusRestricted, tidings.StatusObjected}

// subscriberFilter is the search form, echoed back as typed.
type subscriberFilter struct {
	Email, Status, List string
}

// declForm is the source declaration of a form (partial "subscriber_declaration").
type declForm struct {
	Source, LawfulBasis string
	Required            bool   // imports must declare; single adds may not
	Prefix              string // keeps input IDs unique when a page has two
}

// Bases are the lawful bases to choose from.
func (declForm) Bases() []tidings.LawfulBasis { return tidings.LawfulBases }

// subscriberForm is the add form, refilled after an error.
type subscriberForm struct {
	Email, Name string
	Lists       map[int64]bool
	Decl        declForm
	Tracking    bool // staff record that the person consented to tracking
}

type subscribersData struct {
	Filter   subscriberFilter
	Rows     []tidings.Subscriber
	Next     string // the next page's URL, "" on the last page
	Lists    []tidings.List
	Form     subscriberForm
	Statuses []tidings.SubscriberStatus
	Tracking bool // the account uses tracking: the add form offers tracking consent
}

// allLists reads the account's lists (a handful, never the subscribers).
func (rq *request) allLists() ([]tidings.List, error) {
	return rq.Store.ListLists(rq.r.Context(), rq.Account.ID, tidings.Page{Limit: tidings.MaxPageSize})
}

func (rq *request) subscribers() error {
	return rq.renderSubscribers(http.StatusOK, subscriberForm{Decl: declForm{}}, "")
}

// renderSubscribers shows one page of the filtered subscribers with the add form.
func (rq *request) renderSubscribers(status int, form subscriberForm, errText string) error {
	q := rq.r.URL.Query()
	d := subscribersData{Filter: subscriberFilter{Email: strings.TrimSpace(q.Get("email")), Status: q.Get("status"), List: q.Get("list")},
		Form: form, Statuses: subscriberStatuses, Tracking: rq.Account.TrackingEnabled}
	lists, err := rq.allLists()
	if err != nil {
		return err
	}
	d.Lists = lists
	f := tidings.SubscriberFilter{Page: rq.page(subscriberPageSize)}
	var bad string
	if d.Filter.Email != "" {
		if f.Email, err = tidings.ParseAddress(d.Filter.Email); err != nil {
			bad = "Search: " + formError(err)
		}
	}
	if d.Filter.Status != "" {
		if f.Status = tidings.SubscriberStatus(d.Filter.Status); !f.Status.Valid() {
			bad = "Status: choose active, restricted or objected."
		}
	}
	if d.Filter.List != "" {
		if f.ListID, err = strconv.ParseInt(d.Filter.List, 10, 64); err != nil || f.ListID <= 0 {
			bad = "List: choose one of the account's lists."
		}
	}
	if bad != "" {
		if status == http.StatusOK {
			status = http.StatusUnprocessableEntity
		}
		if errText == "" {
			errText = bad
		}
	} else {
		rows, err := rq.Store.ListSubscribers(rq.r.Context(), rq.Account.ID, f)
		if err != nil {
			return err
		}
		d.Rows = rows
		if len(rows) == f.Limit {
			d.Next = rq.a("/subscribers") + query("email", d.Filter.Email, "status", d.Filter.Status, "list", d.Filter.List,
				"after", itoa(rows[len(rows)-1].ID))
		}
	}
	rq.renderView(status, "subscribers", view{Title: "Subscribers", Nav: "subscribers", Error: errText, Data: d})
	return nil
}

// declaration reads the optional source declaration of a staff add. Both fields or
// neither: with it, subscriptions are confirmed under it (recorded in the ledger like an
// import); without it, they stay unconfirmed.
func (rq *request) declaration() (*tidings.ImportDeclaration, error) {
	d := tidings.ImportDeclaration{Source: rq.value("source"), LawfulBasis: tidings.LawfulBasis(rq.value("lawful_basis"))}
	if d.Source == "" && d.LawfulBasis == "" {
		return nil, nil
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return &d, nil
}

// evidence is what the ledger records about a staff action on someone's consent: which
// staff user, through the admin UI (not the staff member's address or browser).
func (rq *request) evidence(note string) tidings.Evidence {
	return tidings.Evidence{Time: time.Now(), Note: fmt.Sprintf("%s; by staff user %d in the admin UI", note, rq.User.ID)}
}

// trackingEvidence is the evidence of a tracking consent staff record as given or
// withdrawn: its note says who, after the change the store names.
func (rq *request) trackingEvidence() tidings.Evidence {
	return tidings.Evidence{Time: time.Now(), Note: fmt.Sprintf("recorded by staff user %d in the admin UI", rq.User.ID)}
}

func declarationNote(d tidings.ImportDeclaration) string {
	return fmt.Sprintf("added by staff; source: %s; lawful basis: %s", d.Source, d.LawfulBasis)
}

// errSuppressed is the sentence shown when staff try to add a suppressed address.
func errSuppressed(reason tidings.SuppressionReason) string {
	return fmt.Sprintf("This address is suppressed in this account (%s) and cannot be added by staff. Only the person can subscribe again themselves.", reason)
}

func (rq *request) createSubscriber() error {
	if err := rq.form(); err != nil {
		return err
	}
	ctx := rq.r.Context()
	form := subscriberForm{Email: rq.value("email"), Name: rq.value("name"), Lists: map[int64]bool{},
		Decl: declForm{Source: rq.value("source"), LawfulBasis: rq.value("lawful_basis")}, Tracking: rq.value("tracking") == "on"}
	again := func(msg string) error { return rq.renderSubscribers(http.StatusUnprocessableEntity, form, msg) }
	var lists []int64
	for _, v := range rq.r.PostForm["lists"] {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return again("Lists: choose lists of this account.")
		}
		if _, err := rq.Store.GetList(ctx, rq.Account.ID, id); errors.Is(err, tidings.ErrNotFound) {
			return again("Lists: choose lists of this account.")
		} else if err != nil {
			return err
		}
		if !form.Lists[id] {
			lists = append(lists, id)
		}
		form.Lists[id] = true
	}
	addr, err := tidings.ParseAddress(form.Email)
	if err != nil {
		return again(formError(err))
	}
	decl, err := rq.declaration()
	if msg := formError(err); msg != "" {
		return again("Declaration: " + msg)
	}
	sub := tidings.Subscriber{Email: addr, Name: form.Name, TrackingConsent: form.Tracking}
	sub.Normalize()
	if msg := formError(sub.Validate()); msg != "" {
		return again(msg)
	}
	if sub.TrackingConsent && !rq.Account.TrackingEnabled {
		return again(formError(tidings.TrackingOff()))
	}
	// The API's rules: suppressed addresses are never re-added by the controller.
	if held, reason, err := rq.Store.Suppressed(ctx, rq.Account.ID, addr); err != nil {
		return err
	} else if held {
		return again(errSuppressed(reason))
	}
	existing, err := rq.Store.ListSubscribers(ctx, rq.Account.ID, tidings.SubscriberFilter{Email: addr, Page: tidings.Page{Limit: 1}})
	if err != nil {
		return err
	}
	if len(existing) > 0 {
		return again("This address is already a subscriber of this account; search for it to change its lists.")
	}
	if len(lists) > 0 {
		var res tidings.SubscriptionResult
		var err error
		if decl != nil {
			// Confirmed under the declaration, with a ledger entry per list, in one transaction.
			res, err = rq.Store.RequestSubscription(ctx, rq.Account.ID, tidings.SubscriptionRequest{Email: addr, Name: sub.Name,
				TrackingConsent: sub.TrackingConsent, Lists: lists, Source: tidings.SourceAdmin, Evidence: rq.evidence(declarationNote(*decl)),
				Kind: tidings.LedgerImported, RespectSuppression: true})
		} else {
			// Without a declaration the person is asked, as a sign-up would be: the
			// subscriptions wait for the link, and lapse with the request.
			if rq.Consent == nil || rq.Consent.Postman == nil {
				return again("This server sends no mail, so it cannot ask the person to confirm: declare the source and lawful basis instead.")
			}
			res, err = rq.Consent.AskToConfirm(ctx, rq.Account.ID, consent.Ask{Email: addr, Name: sub.Name, TrackingConsent: sub.TrackingConsent,
				Lists: lists, Source: tidings.SourceAdmin,
				Note: fmt.Sprintf("added by staff user %d in the admin UI, asking for confirmation", rq.User.ID)})
		}
		if errors.Is(err, tidings.ErrSuppressed) {
			return again(errSuppressed(tidings.SuppressUnsubscribed))
		}
		if errors.Is(err, consent.ErrMailNotSent) {
			return again("The confirmation mail could not be sent just now, so nothing was kept. Try again later, or declare the source and lawful basis instead.")
		}
		if msg := formError(err); msg != "" {
			return again(msg)
		}
		if err != nil {
			return err
		}
		sub = res.Subscriber
	} else {
		// One transaction: a tracking consent goes through the ledger, naming the staff
		// user who recorded it, or nothing is stored.
		var grant *tidings.TrackingGrant
		if sub.TrackingConsent {
			grant = &tidings.TrackingGrant{Source: tidings.SourceAdmin, Evidence: rq.trackingEvidence()}
		}
		err := rq.Store.CreateSubscriber(ctx, rq.Account.ID, &sub, nil, tidings.SubUnconfirmed, grant)
		if errors.Is(err, tidings.ErrConflict) {
			return again("This address is already a subscriber of this account; search for it to change its lists.")
		}
		if msg := formError(err); msg != "" {
			return again(msg)
		}
		if err != nil {
			return err
		}
	}
	if err := rq.audit("subscriber.create", "subscriber "+itoa(sub.ID)); err != nil {
		return err
	}
	return rq.redirect(rq.a("/subscribers/"+itoa(sub.ID)), "created")
}

// subscriptionRow is a subscription with its list's name.
type subscriptionRow struct {
	tidings.Subscription
	ListName string
}

// historyRow is a ledger entry of the person in this account, evidence opened.
type historyRow struct {
	tidings.LedgerEntry
	ListName string
	Evidence tidings.Evidence
	Erased   bool // the evidence was removed by an erasure
	TextHash string
}

// editForm is the edit form, refilled after an error.
type editForm struct {
	Name, Attributes, Status string
	Tracking                 bool
}

type subscriberData struct {
	Sub           tidings.Subscriber
	Form          editForm
	Subscriptions []subscriptionRow
	Other         []tidings.List // lists the person is not on (for the subscribe form)
	History       []historyRow
	HistoryNext   string
	Proofs        []tidings.Proof
	Statuses      []tidings.SubscriberStatus
	Tracking      bool // the account uses tracking
	ListForm      declForm
	Suppressed    tidings.SuppressionReason // why the address is not mailed (unsubscribed, bounce, complaint, …); empty: it is
}

const historyPageSize = 100

func (rq *request) subscriber() error {
	return rq.renderSubscriber(http.StatusOK, nil, "")
}

// renderSubscriber shows the person with their subscriptions and consent history. Each
// showing is audited: it is a staff member looking at one person's data.
func (rq *request) renderSubscriber(status int, edited *editForm, errText string) error {
	ctx := rq.r.Context()
	sub, err := rq.pathSubscriber()
	if err != nil {
		return err
	}
	id := sub.ID
	subs, err := rq.Store.Subscriptions(ctx, rq.Account.ID, id)
	if err != nil {
		return err
	}
	lists, err := rq.allLists()
	if err != nil {
		return err
	}
	names := map[int64]string{}
	for _, l := range lists {
		names[l.ID] = l.Name
	}
	d := subscriberData{Sub: sub, Statuses: subscriberStatuses, Tracking: rq.Account.TrackingEnabled,
		ListForm: declForm{Prefix: "sub-", Source: rq.value("source"), LawfulBasis: rq.value("lawful_basis")}}
	on := map[int64]bool{}
	for _, s := range subs {
		d.Subscriptions = append(d.Subscriptions, subscriptionRow{Subscription: s, ListName: names[s.ListID]})
		on[s.ListID] = true
	}
	for _, l := range lists {
		if !on[l.ID] {
			d.Other = append(d.Other, l)
		}
	}
	hp := tidings.Page{Limit: historyPageSize}
	hp.After, _ = strconv.ParseInt(rq.r.URL.Query().Get("after"), 10, 64)
	entries, err := rq.Store.SubscriberLedger(ctx, rq.Account.ID, id, hp)
	if err != nil {
		return err
	}
	for _, e := range entries {
		h := historyRow{LedgerEntry: e, ListName: names[e.ListID], TextHash: hex.EncodeToString(e.TextSHA256)}
		h.Evidence, err = rq.Store.OpenEvidence(ctx, e)
		if errors.Is(err, tidings.ErrNotFound) {
			h.Erased = true
		} else if err != nil {
			return err
		}
		d.History = append(d.History, h)
	}
	if len(entries) == hp.Limit {
		d.HistoryNext = rq.a("/subscribers/"+itoa(id)) + query("after", itoa(entries[len(entries)-1].Seq)) + "#history"
	}
	if d.Proofs, err = rq.Store.Proofs(ctx, rq.Account.ID, id); err != nil {
		return err
	}
	if _, d.Suppressed, err = rq.Store.Suppressed(ctx, rq.Account.ID, sub.Email); err != nil {
		return err
	}
	if edited != nil {
		d.Form = *edited
	} else {
		attrs := ""
		if len(sub.Attributes) > 0 {
			b, _ := json.MarshalIndent(sub.Attributes, "", "  ")
			attrs = string(b)
		}
		d.Form = editForm{Name: sub.Name, Attributes: attrs, Status: string(sub.Status), Tracking: sub.TrackingConsent}
	}
	if err := rq.audit("subscriber.view", "subscriber "+itoa(id)); err != nil {
		return err
	}
	rq.renderView(status, "subscriber", view{Title: "Subscriber " + itoa(id), Nav: "subscribers", Error: errText, Data: d})
	return nil
}

// parseAttributes reads the attributes box: a JSON object, or nothing.
func parseAttributes(s string) (tidings.Attributes, error) {
	a := tidings.Attributes{}
	if strings.TrimSpace(s) == "" {
		return a, nil
	}
	if err := json.Unmarshal([]byte(s), &a); err != nil || a == nil {
		return nil, tidings.Invalid("attributes", "invalid", `must be a JSON object, like {"city": "Lyon"}`)
	}
	return a, nil
}

func (rq *request) updateSubscriber() error {
	if err := rq.form(); err != nil {
		return err
	}
	ctx := rq.r.Context()
	sub, err := rq.pathSubscriber()
	if err != nil {
		return err
	}
	id := sub.ID
	form := editForm{Name: rq.value("name"), Attributes: rq.r.PostForm.Get("attributes"), Status: rq.value("status"),
		Tracking: rq.value("tracking") == "on"}
	again := func(msg string) error { return rq.renderSubscriber(http.StatusUnprocessableEntity, &form, msg) }
	attrs, err := parseAttributes(form.Attributes)
	if err != nil {
		return again(formError(err))
	}
	sub.Name, sub.Attributes, sub.Status = form.Name, attrs, tidings.SubscriberStatus(form.Status)
	sub.TrackingConsent = form.Tracking
	// One transaction: a change of tracking consent is a consent event, written to the
	// ledger with the rest of the edit or not at all. The store checks everything (the
	// fields, and that the account tracks if consent is given) before it commits.
	if err := rq.Store.EditSubscriber(ctx, rq.Account.ID, &sub, tidings.SourceAdmin, rq.trackingEvidence()); err != nil {
		if msg := formError(err); msg != "" {
			return again(msg)
		}
		return err
	}
	if err := rq.audit("subscriber.update", "subscriber "+itoa(id)); err != nil {
		return err
	}
	return rq.redirect(rq.a("/subscribers/"+itoa(id)), "saved")
}

func (rq *request) deleteSubscriber() error {
	id, err := rq.id("id")
	if err != nil {
		return err
	}
	if err := rq.Store.DeleteSubscriber(rq.r.Context(), rq.Account.ID, id); err != nil {
		return err
	}
	if err := rq.audit("subscriber.delete", "subscriber "+itoa(id)); err != nil {
		return err
	}
	return rq.redirect(rq.a("/subscribers"), "deleted")
}

// changeSubscription subscribes the person to a list or unsubscribes them from one.
// Subscribing follows the add form's rules; unsubscribing records the withdrawal in the
// ledger and suppresses the address in the account, as when the person does it.
func (rq *request) changeSubscription() error {
	if err := rq.form(); err != nil {
		return err
	}
	ctx := rq.r.Context()
	sub, err := rq.pathSubscriber()
	if err != nil {
		return err
	}
	id := sub.ID
	listID, err := strconv.ParseInt(rq.value("list"), 10, 64)
	if err != nil {
		return rq.renderSubscriber(http.StatusUnprocessableEntity, nil, "List: choose a list.")
	}
	if _, err := rq.Store.GetList(ctx, rq.Account.ID, listID); errors.Is(err, tidings.ErrNotFound) {
		return rq.renderSubscriber(http.StatusUnprocessableEntity, nil, "List: choose a list of this account.")
	} else if err != nil {
		return err
	}
	target := fmt.Sprintf("subscriber %d list %d", id, listID)
	switch rq.value("action") {
	case "unsubscribe":
		if _, err := rq.Store.Unsubscribe(ctx, rq.Account.ID, id, []int64{listID}, tidings.SourceAdmin, rq.evidence("unsubscribed by staff")); err != nil {
			return err
		}
		if err := rq.audit("subscriber.unsubscribe", target); err != nil {
			return err
		}
		return rq.redirect(rq.a("/subscribers/"+itoa(id)), "saved")
	case "subscribe":
	default:
		return rq.renderSubscriber(http.StatusUnprocessableEntity, nil, "Action: subscribe or unsubscribe.")
	}
	decl, err := rq.declaration()
	if msg := formError(err); msg != "" {
		return rq.renderSubscriber(http.StatusUnprocessableEntity, nil, "Declaration: "+msg)
	}
	if held, reason, err := rq.Store.Suppressed(ctx, rq.Account.ID, sub.Email); err != nil {
		return err
	} else if held {
		return rq.renderSubscriber(http.StatusUnprocessableEntity, nil, errSuppressed(reason))
	}
	subs, err := rq.Store.Subscriptions(ctx, rq.Account.ID, id)
	if err != nil {
		return err
	}
	for _, s := range subs {
		if s.ListID != listID {
			continue
		}
		switch {
		case s.Status == tidings.SubUnsubscribed:
			return rq.renderSubscriber(http.StatusUnprocessableEntity, nil, "This person left that list; only they can subscribe again.")
		case s.Status == tidings.SubConfirmed, decl == nil:
			return rq.renderSubscriber(http.StatusUnprocessableEntity, nil, "This person is already on that list.")
		}
	}
	if decl != nil {
		// A subscription says nothing about tracking: the consent stays as it is (the
		// flag read above may be out of date by now), and the entry does not mention it.
		_, err = rq.Store.RequestSubscription(ctx, rq.Account.ID, tidings.SubscriptionRequest{Email: sub.Email, Lists: []int64{listID},
			Source: tidings.SourceAdmin, Evidence: rq.evidence(declarationNote(*decl)), Kind: tidings.LedgerImported, RespectSuppression: true})
		if errors.Is(err, tidings.ErrSuppressed) {
			return rq.renderSubscriber(http.StatusUnprocessableEntity, nil, errSuppressed(tidings.SuppressUnsubscribed))
		}
	} else {
		err = rq.Store.SetSubscription(ctx, rq.Account.ID, id, listID, tidings.SubUnconfirmed)
	}
	if err != nil {
		return err
	}
	if err := rq.audit("subscriber.subscribe", target); err != nil {
		return err
	}
	return rq.redirect(rq.a("/subscribers/"+itoa(id)), "saved")
}

// pathSubscriber loads the account's subscriber named by the URL.
func (rq *request) pathSubscriber() (tidings.Subscriber, error) {
	id, err := rq.id("id")
	if err != nil {
		return tidings.Subscriber{}, err
	}
	return rq.Store.GetSubscriber(rq.r.Context(), rq.Account.ID, id)
}
