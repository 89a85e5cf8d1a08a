package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/tidings/tidings/internal/consent"
	"github.com/tidings/tidings/internal/tidings"
)

type subscriberInput struct {
	Email           *tidings.Address          `json:"email"`
	Name            *string                   `json:"name"`
	Attributes      *tidings.Attributes       `json:"attributes"`
	Status          *tidings.SubscriberStatus `json:"status"`
	TrackingConsent *bool                     `json:"tracking_consent"`
	Lists           []int64                   `json:"lists"`        // create only
	Source          string                    `json:"source"`       // create only: where the address came from
	LawfulBasis     tidings.LawfulBasis       `json:"lawful_basis"` // create only: the basis of the processing
}

func (in subscriberInput) apply(s *tidings.Subscriber) {
	set(&s.Name, in.Name)
	set(&s.Attributes, in.Attributes)
	set(&s.Status, in.Status)
	set(&s.TrackingConsent, in.TrackingConsent)
}

func (a *api) listSubscribers(w http.ResponseWriter, r *http.Request, c caller) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	f := tidings.SubscriberFilter{Page: p}
	q := r.URL.Query()
	if v := q.Get("email"); v != "" {
		if f.Email, err = tidings.ParseAddress(v); err != nil {
			return err
		}
	}
	if v := q.Get("list"); v != "" {
		if f.ListID, err = strconv.ParseInt(v, 10, 64); err != nil || f.ListID <= 0 {
			return &tidings.ValidationError{Field: "list", Code: "invalid_id", Message: "must be a list ID"}
		}
	}
	if v := q.Get("status"); v != "" {
		if f.Status = tidings.SubscriberStatus(v); !f.Status.Valid() {
			return &tidings.ValidationError{Field: "status", Code: "invalid_choice", Message: "must be one of active, restricted, objected"}
		}
	}
	rows, err := a.Store.ListSubscribers(r.Context(), c.AccountID, f)
	if err != nil {
		return err
	}
	return respondPage(w, rows, p, func(x tidings.Subscriber) int64 { return x.ID })
}

// createSubscriber adds a subscriber, optionally on lists. When any target list uses
// double opt-in the person is asked to confirm by email, as a sign-up would be, and the
// subscriptions wait unconfirmed for the link (or expire with the request). Otherwise
// they are confirmed at once under the caller's declaration (source and lawful basis),
// recorded in the ledger like an import's, so that every address on a list can be
// accounted for.
func (a *api) createSubscriber(w http.ResponseWriter, r *http.Request, c caller) error {
	var in subscriberInput
	if err := a.decode(w, r, &in); err != nil {
		return err
	}
	if in.Email == nil {
		return &tidings.ValidationError{Field: "email", Code: "required", Message: "is required"}
	}
	sub := tidings.Subscriber{Email: *in.Email}
	in.apply(&sub)
	if err := a.checkTracking(r, c, in); err != nil {
		return err
	}
	status := tidings.SubConfirmed
	for i, id := range in.Lists {
		l, err := a.Store.GetList(r.Context(), c.AccountID, id)
		if errors.Is(err, tidings.ErrNotFound) {
			return &tidings.ValidationError{Field: fmt.Sprintf("lists[%d]", i), Code: "unknown_list", Message: fmt.Sprintf("list %d does not exist", id)}
		}
		if err != nil {
			return err
		}
		if l.DoubleOptIn {
			status = tidings.SubUnconfirmed
		}
	}
	confirmed := status == tidings.SubConfirmed && len(in.Lists) > 0
	decl := tidings.ImportDeclaration{Source: in.Source, LawfulBasis: in.LawfulBasis}
	if confirmed || in.Source != "" || in.LawfulBasis != "" {
		if err := decl.Validate(); err != nil {
			if v, ok := tidings.AsValidation(err); ok && confirmed && (in.Source == "" || in.LawfulBasis == "") {
				v.Message += "; confirmed subscriptions need a declaration of where the address came from (source) and the lawful basis (lawful_basis)"
			}
			return err
		}
	}
	// Suppressed addresses (unsubscribed, complained, erased) are never re-added by the
	// controller; only the person's own confirmed subscription lifts a suppression.
	if held, reason, err := a.Store.Suppressed(r.Context(), c.AccountID, sub.Email); err != nil {
		return err
	} else if held {
		return errSuppressed(reason)
	}
	if status == tidings.SubUnconfirmed {
		return a.askToConfirm(w, r, c, sub, in.Lists, decl)
	}
	if !confirmed {
		// One transaction: a tracking consent goes through the ledger with the token
		// that asserted it, or nothing is stored.
		var grant *tidings.TrackingGrant
		if sub.TrackingConsent {
			grant = &tidings.TrackingGrant{Source: tidings.SourceAPI, Evidence: trackingEvidence(c)}
		}
		err := a.Store.CreateSubscriber(r.Context(), c.AccountID, &sub, in.Lists, status, grant)
		if errors.Is(err, tidings.ErrConflict) {
			return errAlreadySubscriber()
		}
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusCreated, sub)
	}
	if err := a.newSubscriber(r, c, &sub); err != nil {
		return err
	}
	// Confirmed under the declaration, with a ledger entry per list, in one transaction
	// that checks the suppressions again and gives the subscriber the caller's status.
	res, err := a.Store.RequestSubscription(r.Context(), c.AccountID, tidings.SubscriptionRequest{Email: sub.Email, Name: sub.Name,
		Attributes: sub.Attributes, TrackingConsent: sub.TrackingConsent, Status: sub.Status, Lists: in.Lists, Source: tidings.SourceAPI,
		Kind: tidings.LedgerImported,
		Evidence: tidings.Evidence{Time: time.Now(), Note: fmt.Sprintf("added through the API with token %d; source: %s; lawful basis: %s",
			c.ID, decl.Source, decl.LawfulBasis)},
		RespectSuppression: true})
	if errors.Is(err, tidings.ErrSuppressed) {
		return errSuppressed(tidings.SuppressUnsubscribed)
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, res.Subscriber)
}

// newSubscriber checks an add through a sign-up request: a valid subscriber, not yet one
// of the account's (a request for a known address would wait for its link instead).
func (a *api) newSubscriber(r *http.Request, c caller, sub *tidings.Subscriber) error {
	sub.Normalize()
	if err := sub.Validate(); err != nil {
		return err
	}
	existing, err := a.Store.ListSubscribers(r.Context(), c.AccountID, tidings.SubscriberFilter{Email: sub.Email, Page: tidings.Page{Limit: 1}})
	if err != nil {
		return err
	}
	if len(existing) > 0 {
		return errAlreadySubscriber()
	}
	return nil
}

// askToConfirm adds a subscriber to double opt-in lists: the person is mailed a
// confirmation link. The request's evidence names the token and, when given, the
// caller's declaration.
func (a *api) askToConfirm(w http.ResponseWriter, r *http.Request, c caller, sub tidings.Subscriber, lists []int64, decl tidings.ImportDeclaration) error {
	if a.Consent == nil || a.Consent.Postman == nil {
		return fail(http.StatusServiceUnavailable, "unavailable", "this server sends no mail, so it cannot ask for confirmation on a double opt-in list")
	}
	if err := a.newSubscriber(r, c, &sub); err != nil {
		return err
	}
	note := fmt.Sprintf("added through the API with token %d, asking for confirmation", c.ID)
	if decl.Source != "" {
		note += fmt.Sprintf("; source: %s; lawful basis: %s", decl.Source, decl.LawfulBasis)
	}
	res, err := a.Consent.AskToConfirm(r.Context(), c.AccountID, consent.Ask{Email: sub.Email, Name: sub.Name, Attributes: sub.Attributes,
		TrackingConsent: sub.TrackingConsent, Status: sub.Status, Lists: lists, Source: tidings.SourceAPI, Note: note})
	if errors.Is(err, tidings.ErrSuppressed) {
		return errSuppressed(tidings.SuppressUnsubscribed)
	}
	if errors.Is(err, consent.ErrMailNotSent) {
		return fail(http.StatusServiceUnavailable, "mail_unavailable", "the confirmation mail could not be sent just now, so nothing was kept; try again later")
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, res.Subscriber)
}

func errSuppressed(reason tidings.SuppressionReason) error {
	e := fail(http.StatusConflict, "suppressed", "this address is suppressed (%s) and cannot be added; only the person can subscribe again themselves", reason)
	e.Field = "email"
	return e
}

func errAlreadySubscriber() error {
	return fail(http.StatusConflict, "conflict", "this address is already a subscriber; change it with PATCH /api/v1/subscribers/{id}")
}

func (a *api) getSubscriber(w http.ResponseWriter, r *http.Request, c caller) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	sub, err := a.Store.GetSubscriber(r.Context(), c.AccountID, id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, sub)
}

func (a *api) patchSubscriber(w http.ResponseWriter, r *http.Request, c caller) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var in subscriberInput
	if err := a.decode(w, r, &in); err != nil {
		return err
	}
	if in.Email != nil || in.Lists != nil {
		return &tidings.ValidationError{Field: "email", Code: "read_only",
			Message: "the address and list memberships cannot be changed with PATCH; add a new subscriber instead"}
	}
	sub, err := a.Store.GetSubscriber(r.Context(), c.AccountID, id)
	if err != nil {
		return err
	}
	if err := a.checkTracking(r, c, in); err != nil {
		return err
	}
	in.apply(&sub)
	// One transaction: a changed tracking consent goes through the ledger with the rest.
	if err := a.Store.EditSubscriber(r.Context(), c.AccountID, &sub, tidings.SourceAPI, trackingEvidence(c)); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, sub)
}

// checkTracking refuses a tracking consent the caller asserts where the account does
// not track: there is nothing to consent to.
func (a *api) checkTracking(r *http.Request, c caller, in subscriberInput) error {
	if in.TrackingConsent == nil || !*in.TrackingConsent {
		return nil
	}
	acc, err := a.Store.GetAccount(r.Context(), c.AccountID)
	if err != nil {
		return err
	}
	if !acc.TrackingEnabled {
		return tidings.TrackingOff()
	}
	return nil
}

// trackingEvidence is the evidence of a tracking consent the token records as given or
// withdrawn: its note says who (the token, by ID), after the change the store names.
func trackingEvidence(c caller) tidings.Evidence {
	return tidings.Evidence{Time: time.Now(), Note: fmt.Sprintf("recorded through the API with token %d", c.ID)}
}

func (a *api) deleteSubscriber(w http.ResponseWriter, r *http.Request, c caller) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := a.Store.DeleteSubscriber(r.Context(), c.AccountID, id); err != nil {
		return err
	}
	return noContent(w)
}

func (a *api) subscriptions(w http.ResponseWriter, r *http.Request, c caller) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	subs, err := a.Store.Subscriptions(r.Context(), c.AccountID, id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, pageOf[tidings.Subscription]{Data: subs})
}
