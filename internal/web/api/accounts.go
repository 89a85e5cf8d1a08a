package api

import (
	"net/http"

	"github.com/tidings/tidings/internal/tidings"
)

type accountInput struct {
	Name               *string   `json:"name"`
	PostalAddress      *string   `json:"postal_address"`
	ContactEmail       *string   `json:"contact_email"`
	PrivacyPolicyURL   *string   `json:"privacy_policy_url"`
	TrackingEnabled    *bool     `json:"tracking_enabled"`
	AnonymousCounts    *bool     `json:"anonymous_counts"`
	EditableAttributes *[]string `json:"editable_attributes"`
	InactiveDays       *int      `json:"inactive_days"`
	EventDays          *int      `json:"event_days"`
	UnconfirmedDays    *int      `json:"unconfirmed_days"`
	RequireTOTP        *bool     `json:"require_totp"`
	PublicPageURL      *string   `json:"public_page_url"`
}

// apply copies the fields present in the input onto acc.
func (in accountInput) apply(acc *tidings.Account) {
	set(&acc.Name, in.Name)
	set(&acc.PostalAddress, in.PostalAddress)
	set(&acc.ContactEmail, in.ContactEmail)
	set(&acc.PrivacyPolicyURL, in.PrivacyPolicyURL)
	set(&acc.TrackingEnabled, in.TrackingEnabled)
	set(&acc.AnonymousCounts, in.AnonymousCounts)
	set(&acc.EditableAttributes, in.EditableAttributes)
	set(&acc.InactiveDays, in.InactiveDays)
	set(&acc.EventDays, in.EventDays)
	set(&acc.UnconfirmedDays, in.UnconfirmedDays)
	set(&acc.RequireTOTP, in.RequireTOTP)
	set(&acc.PublicPageURL, in.PublicPageURL)
}

func set[T any](dst *T, src *T) {
	if src != nil {
		*dst = *src
	}
}

func (a *api) ownAccount(w http.ResponseWriter, r *http.Request, c caller) error {
	acc, err := a.Store.GetAccount(r.Context(), c.AccountID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, acc)
}

func (a *api) listAccounts(w http.ResponseWriter, r *http.Request, _ caller) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	rows, err := a.Store.ListAccounts(r.Context(), p)
	if err != nil {
		return err
	}
	return respondPage(w, rows, p, func(x tidings.Account) int64 { return x.ID })
}

func (a *api) createAccount(w http.ResponseWriter, r *http.Request, _ caller) error {
	var in accountInput
	if err := a.decode(w, r, &in); err != nil {
		return err
	}
	var acc tidings.Account
	in.apply(&acc)
	if err := a.Store.CreateAccount(r.Context(), &acc); err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, acc)
}

func (a *api) getAccount(w http.ResponseWriter, r *http.Request, _ caller) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	acc, err := a.Store.GetAccount(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, acc)
}

func (a *api) patchAccount(w http.ResponseWriter, r *http.Request, _ caller) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var in accountInput
	if err := a.decode(w, r, &in); err != nil {
		return err
	}
	acc, err := a.Store.GetAccount(r.Context(), id)
	if err != nil {
		return err
	}
	in.apply(&acc)
	if err := a.Store.UpdateAccount(r.Context(), &acc); err != nil {
		return err
	}
	a.forgetIdentity(acc.ID)
	return writeJSON(w, http.StatusOK, acc)
}

func (a *api) deleteAccount(w http.ResponseWriter, r *http.Request, _ caller) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := a.Store.DeleteAccount(r.Context(), id); err != nil {
		return err
	}
	return noContent(w)
}

// patchOwnAccount lets an account change its own controller details and tracking
// settings (tracking stays off until the account turns it on).
func (a *api) patchOwnAccount(w http.ResponseWriter, r *http.Request, c caller) error {
	var in accountInput
	if err := a.decode(w, r, &in); err != nil {
		return err
	}
	acc, err := a.Store.GetAccount(r.Context(), c.AccountID)
	if err != nil {
		return err
	}
	in.apply(&acc)
	if err := a.Store.UpdateAccount(r.Context(), &acc); err != nil {
		return err
	}
	a.forgetIdentity(acc.ID)
	return writeJSON(w, http.StatusOK, acc)
}

// forgetIdentity drops this node's cached sender identity of the account (its footer
// carries the controller details), so the next mail shows the change; other nodes'
// caches expire within a minute.
func (a *api) forgetIdentity(accountID int64) {
	if a.Consent != nil && a.Consent.Postman != nil {
		a.Consent.Postman.Forget(accountID)
	}
}
