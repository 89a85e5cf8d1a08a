package admin

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidings/tidings/internal/keys"
	"github.com/tidings/tidings/internal/postman"
	"github.com/tidings/tidings/internal/tidings"
)

// The account's own settings and people: controller details and privacy settings, the
// consent text, the public-page check, sending domains, API tokens, staff, audit log.

func accountRoutes() []Route {
	return []Route{
		{"GET /admin/a/{account}/settings", AccountAdmin, (*request).settings},
		{"POST /admin/a/{account}/settings", AccountAdmin, (*request).saveSettings},
		{"POST /admin/a/{account}/settings/consent", AccountAdmin, (*request).publishConsent},
		{"POST /admin/a/{account}/settings/verify", AccountAdmin, (*request).verifyPublicPage},
		{"GET /verify/{account}", Public, (*request).verifyPage},
		{"GET /admin/a/{account}/domains", Viewer, (*request).domains},
		{"POST /admin/a/{account}/domains", AccountAdmin, (*request).addDomain},
		{"POST /admin/a/{account}/domains/keys/{id}/retire", AccountAdmin, (*request).retireKey},
		{"POST /admin/a/{account}/domains/{id}/remove", AccountAdmin, (*request).removeDomain},
		{"POST /admin/a/{account}/domains/{id}/check", Viewer, (*request).checkDomain},
		{"GET /admin/a/{account}/tokens", AccountAdmin, (*request).tokens},
		{"POST /admin/a/{account}/tokens", AccountAdmin, (*request).createToken},
		{"POST /admin/a/{account}/tokens/{id}/delete", AccountAdmin, (*request).deleteToken},
		{"GET /admin/a/{account}/users", AccountAdmin, (*request).users},
		{"POST /admin/a/{account}/users", AccountAdmin, (*request).inviteUser},
		{"POST /admin/a/{account}/users/{id}/role", AccountAdmin, (*request).changeRole},
		{"POST /admin/a/{account}/users/{id}/remove", AccountAdmin, (*request).removeUser},
		{"GET /admin/a/{account}/audit", Owner, (*request).auditLog},
	}
}

// Settings.

// settingsForm is the settings form as typed, so that a rejected form comes back as it
// was sent.
type settingsForm struct {
	Name, PostalAddress, ContactEmail, PrivacyPolicyURL string
	TrackingEnabled, AnonymousCounts, RequireTOTP       bool
	EditableAttributes, InactiveDays, PublicPageURL     string
	EventDays, UnconfirmedDays                          string
}

func formFromAccount(a tidings.Account) settingsForm {
	return settingsForm{Name: a.Name, PostalAddress: a.PostalAddress, ContactEmail: a.ContactEmail, PrivacyPolicyURL: a.PrivacyPolicyURL,
		TrackingEnabled: a.TrackingEnabled, AnonymousCounts: a.AnonymousCounts, RequireTOTP: a.RequireTOTP,
		EditableAttributes: strings.Join(a.EditableAttributes, ", "), InactiveDays: strconv.Itoa(a.InactiveDays), PublicPageURL: a.PublicPageURL,
		EventDays: strconv.Itoa(a.EventDays), UnconfirmedDays: strconv.Itoa(a.UnconfirmedDays)}
}

type settingsData struct {
	Form        settingsForm
	Consent     tidings.ConsentText // version 0: none published yet (the default text is used)
	ConsentForm string
	// The public page check.
	PublicPageURL string
	VerifiedAt    *time.Time
	VerifyURL     string // the page of this instance the public page must link to
}

func (rq *request) settings() error {
	return rq.renderSettings(http.StatusOK, formFromAccount(rq.Account), "", "")
}

func (rq *request) renderSettings(status int, f settingsForm, consentForm, errText string) error {
	d := settingsData{Form: f, ConsentForm: consentForm, PublicPageURL: rq.Account.PublicPageURL,
		VerifiedAt: rq.Account.PublicPageVerifiedAt, VerifyURL: rq.verifyURL(rq.Account.ID)}
	t, err := rq.Store.ConsentText(rq.r.Context(), rq.Account.ID, 0)
	switch {
	case errors.Is(err, tidings.ErrConsentTextAltered):
		// The page stays usable, so that a text can be published again; the altered one
		// is not shown.
		if errText == "" {
			errText = "The current consent text was altered in the database: its wording no longer matches its recorded SHA-256. Forms refuse it until a text is published again."
		}
	case err != nil && !errors.Is(err, tidings.ErrNotFound):
		return err
	}
	d.Consent = t
	if d.ConsentForm == "" {
		d.ConsentForm = t.Body
	}
	rq.renderView(status, "settings", view{Title: "Settings", Nav: "settings", Error: errText, Data: d})
	return nil
}

func (rq *request) saveSettings() error {
	if err := rq.form(); err != nil {
		return err
	}
	f := settingsForm{Name: rq.value("name"), PostalAddress: rq.value("postal_address"), ContactEmail: rq.value("contact_email"),
		PrivacyPolicyURL: rq.value("privacy_policy_url"), TrackingEnabled: rq.value("tracking_enabled") == "on",
		AnonymousCounts: rq.value("anonymous_counts") == "on", RequireTOTP: rq.value("require_totp") == "on",
		EditableAttributes: rq.value("editable_attributes"), InactiveDays: rq.value("inactive_days"), PublicPageURL: rq.value("public_page_url"),
		EventDays: rq.value("event_days"), UnconfirmedDays: rq.value("unconfirmed_days")}
	acc := rq.Account
	acc.Name, acc.PostalAddress, acc.ContactEmail, acc.PrivacyPolicyURL = f.Name, f.PostalAddress, f.ContactEmail, f.PrivacyPolicyURL
	acc.TrackingEnabled, acc.AnonymousCounts, acc.RequireTOTP, acc.PublicPageURL = f.TrackingEnabled, f.AnonymousCounts, f.RequireTOTP, f.PublicPageURL
	acc.EditableAttributes = splitList(f.EditableAttributes)
	for _, d := range []struct {
		typed, what string
		dst         *int
	}{
		{f.InactiveDays, "inactive days", &acc.InactiveDays},
		{f.EventDays, "tracking events kept", &acc.EventDays},
		{f.UnconfirmedDays, "unconfirmed sign-ups kept", &acc.UnconfirmedDays},
	} {
		days := strings.TrimSpace(d.typed)
		if days == "" {
			days = "0"
		}
		n, err := strconv.Atoi(days)
		if err != nil {
			return rq.renderSettings(http.StatusUnprocessableEntity, f, "", d.what+": must be a whole number of days.")
		}
		*d.dst = n
	}
	err := rq.Store.UpdateAccount(rq.r.Context(), &acc)
	if msg := formError(err); msg != "" {
		return rq.renderSettings(http.StatusUnprocessableEntity, f, "", msg)
	}
	if err != nil {
		return err
	}
	rq.forgetIdentity()
	if err := rq.audit("settings.update", "account "+itoa(acc.ID)); err != nil {
		return err
	}
	return rq.redirect(rq.a("/settings"), "saved")
}

// splitList reads "a, b,c" as [a b c], leaving out empty items.
func splitList(s string) []string {
	out := []string{}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (rq *request) publishConsent() error {
	if err := rq.form(); err != nil {
		return err
	}
	body := rq.r.PostForm.Get("consent_text")
	t, err := rq.Store.PublishConsentText(rq.r.Context(), rq.Account.ID, body)
	if msg := formError(err); msg != "" {
		return rq.renderSettings(http.StatusUnprocessableEntity, formFromAccount(rq.Account), body, msg)
	}
	if err != nil {
		return err
	}
	if err := rq.audit("consent_text.publish", "consent text "+strconv.Itoa(t.Version)); err != nil {
		return err
	}
	return rq.redirect(rq.a("/settings"), "saved")
}

// forgetIdentity drops the postman's cached sender identity of the account (footer,
// DKIM keys) after a change, so the next mail uses the new one.
func (rq *request) forgetIdentity() {
	if rq.Consent != nil && rq.Consent.Postman != nil {
		rq.Consent.Postman.Forget(rq.Account.ID)
	}
}

// Sending domains.

type dkimRow struct {
	tidings.DKIMKey
	Name, Value, Zone string
	DNS               *postman.KeyCheck // after a DNS check of its domain
}

type domainRow struct {
	ID        int64
	Domain    string
	Keys      []dkimRow
	SPF       string
	DMARC     string
	RemovedAt *time.Time
	Check     *postman.DomainCheck // after a DNS check
	Ready     bool                 // the check found every signing key published
}

type domainsData struct {
	Domains          []domainRow
	Removed          []domainRow          // removed or moved away; their keys are kept, retired
	Domain, Selector string               // the add form
	Check            *postman.DomainCheck // the DNS check asked for, shown with its domain
}

func (rq *request) domains() error { return rq.renderDomains(http.StatusOK, domainsData{}, "") }

func (rq *request) renderDomains(status int, d domainsData, errText string) error {
	ctx := rq.r.Context()
	ds, err := rq.Store.SendingDomains(ctx, rq.Account.ID)
	if err != nil {
		return err
	}
	removed, err := rq.Store.RemovedSendingDomains(ctx, rq.Account.ID)
	if err != nil {
		return err
	}
	rows := func(ds []tidings.SendingDomain) ([]domainRow, error) {
		var out []domainRow
		for _, sd := range ds {
			row := domainRow{ID: sd.ID, Domain: sd.Domain, RemovedAt: sd.RemovedAt,
				SPF:   sd.Domain + ". IN TXT \"v=spf1 include:<your relay's SPF domain> ~all\"",
				DMARC: "_dmarc." + sd.Domain + ". IN TXT \"v=DMARC1; p=none; rua=mailto:" + rq.Account.ContactEmail + "\""}
			if d.Check != nil && d.Check.Domain == sd.Domain && sd.RemovedAt == nil {
				row.Check, row.Ready = d.Check, d.Check.Ready(sd.Keys)
			}
			for _, k := range sd.Keys {
				k.PrivateKey = nil
				name, value, zone, err := postman.DKIMRecord(sd.Domain, k)
				if err != nil {
					return nil, err
				}
				kr := dkimRow{DKIMKey: k, Name: name, Value: value, Zone: zone}
				if row.Check != nil {
					for i, c := range row.Check.Keys {
						if c.KeyID == k.ID {
							kr.DNS = &row.Check.Keys[i]
						}
					}
				}
				row.Keys = append(row.Keys, kr)
			}
			out = append(out, row)
		}
		return out, nil
	}
	if d.Domains, err = rows(ds); err != nil {
		return err
	}
	if d.Removed, err = rows(removed); err != nil {
		return err
	}
	rq.renderView(status, "domains", view{Title: "Sending domains", Nav: "domains", Error: errText, Data: d})
	return nil
}

func (rq *request) addDomain() error {
	if err := rq.form(); err != nil {
		return err
	}
	d := domainsData{Domain: rq.value("domain"), Selector: strings.ToLower(rq.value("selector"))}
	domain, err := tidings.ParseDomain(d.Domain)
	if err != nil {
		return rq.renderDomains(http.StatusUnprocessableEntity, d, "domain: must be a domain name like news.example.com.")
	}
	// The one selector rule, the CLI's too: the prefix (or the day's default) must make
	// DNS labels, and the store refuses a selector ever used on the domain.
	prefix, _, err := tidings.DKIMSelectors(d.Selector, postman.DKIMAlgorithms, time.Now())
	if msg := formError(err); msg != "" {
		return rq.renderDomains(http.StatusUnprocessableEntity, d, msg)
	}
	if err != nil {
		return err
	}
	var keys []*tidings.DKIMKey
	for _, alg := range postman.DKIMAlgorithms {
		k, err := postman.NewDKIMKey(alg, prefix)
		if err != nil {
			return err
		}
		keys = append(keys, &k)
	}
	// All keys or none: a selector used on the domain refuses both.
	err = rq.Store.AddDKIMKeys(rq.r.Context(), rq.Account.ID, domain, keys...)
	if v, ok := tidings.AsValidation(err); ok && v.Code == "selector_taken" {
		return rq.renderDomains(http.StatusUnprocessableEntity, d, "selector: "+prefix+" is used on this domain already ("+v.Message+"); choose another.")
	}
	if msg := formError(err); msg != "" {
		return rq.renderDomains(http.StatusUnprocessableEntity, d, msg)
	}
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := rq.audit("dkim.add", "dkim key "+itoa(k.ID)); err != nil {
			return err
		}
	}
	rq.forgetIdentity()
	return rq.redirect(rq.a("/domains"), "created")
}

// checkDomain looks up a sending domain's records (DKIM keys, SPF, DMARC) and shows what
// the DNS holds beside what to publish. It reads the DNS and changes nothing.
func (rq *request) checkDomain() error {
	id, err := rq.id("id")
	if err != nil {
		return err
	}
	ds, err := rq.Store.SendingDomains(rq.r.Context(), rq.Account.ID)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(ds, func(d tidings.SendingDomain) bool { return d.ID == id })
	if i < 0 {
		return tidings.ErrNotFound
	}
	c := postman.CheckDomain(rq.r.Context(), rq.DNS, ds[i])
	return rq.renderDomains(http.StatusOK, domainsData{Check: &c}, "")
}

// removeDomain stops the account from sending from a domain. Its keys are retired and
// kept (listed under "Removed domains"), so that stored proofs stay verifiable.
func (rq *request) removeDomain() error {
	id, err := rq.id("id")
	if err != nil {
		return err
	}
	err = rq.Store.RemoveSendingDomain(rq.r.Context(), rq.Account.ID, id)
	if v, ok := tidings.AsValidation(err); ok {
		return rq.renderDomains(http.StatusConflict, domainsData{}, "The domain was not removed: "+v.Message+".")
	}
	if err != nil {
		return err
	}
	rq.forgetIdentity()
	if err := rq.audit("domain.remove", "sending domain "+itoa(id)); err != nil {
		return err
	}
	return rq.redirect(rq.a("/domains"), "deleted")
}

func (rq *request) retireKey() error {
	id, err := rq.id("id")
	if err != nil {
		return err
	}
	if err := rq.Store.RetireDKIMKey(rq.r.Context(), rq.Account.ID, id); err != nil {
		return err
	}
	rq.forgetIdentity()
	if err := rq.audit("dkim.retire", "dkim key "+itoa(id)); err != nil {
		return err
	}
	return rq.redirect(rq.a("/domains"), "saved")
}

// API tokens.

type tokensData struct {
	Tokens []tidings.APIToken
	Name   string
	Secret string // shown once, right after creation
}

func (rq *request) tokens() error { return rq.renderTokens(http.StatusOK, tokensData{}, "") }

func (rq *request) renderTokens(status int, d tokensData, errText string) error {
	var err error
	if d.Tokens, err = rq.Store.ListTokens(rq.r.Context(), rq.Account.ID); err != nil {
		return err
	}
	rq.renderView(status, "tokens", view{Title: "API tokens", Nav: "tokens", Error: errText, Data: d})
	return nil
}

func (rq *request) createToken() error {
	if err := rq.form(); err != nil {
		return err
	}
	name := rq.value("name")
	if name == "" {
		return rq.renderTokens(http.StatusUnprocessableEntity, tokensData{}, "name: is required (say what uses the token).")
	}
	secret, hash := keys.NewSecretToken("tid_")
	tok := tidings.APIToken{AccountID: rq.Account.ID, Name: name, Prefix: secret[:8]}
	err := rq.Store.CreateToken(rq.r.Context(), &tok, hash)
	if msg := formError(err); msg != "" {
		return rq.renderTokens(http.StatusUnprocessableEntity, tokensData{Name: name}, msg)
	}
	if err != nil {
		return err
	}
	if err := rq.audit("token.create", "token "+itoa(tok.ID)); err != nil {
		return err
	}
	// The secret is in this answer only (no redirect: it must not land in a URL).
	return rq.renderTokens(http.StatusCreated, tokensData{Secret: secret}, "")
}

func (rq *request) deleteToken() error {
	id, err := rq.id("id")
	if err != nil {
		return err
	}
	if err := rq.Store.DeleteToken(rq.r.Context(), rq.Account.ID, id); err != nil {
		return err
	}
	if err := rq.audit("token.delete", "token "+itoa(id)); err != nil {
		return err
	}
	return rq.redirect(rq.a("/tokens"), "deleted")
}

// Audit log: newest first, keyset by ID.

const auditPageSize = 50

type auditData struct {
	Entries []tidings.AuditEntry
	Before  int64 // the "older" link's cursor; 0: no more
}

func (rq *request) auditLog() error {
	before, _ := strconv.ParseInt(rq.r.URL.Query().Get("before"), 10, 64)
	if before < 0 {
		before = 0
	}
	entries, err := rq.Store.AuditLog(rq.r.Context(), rq.Account.ID, before, auditPageSize+1)
	if err != nil {
		return err
	}
	d := auditData{Entries: entries}
	if len(entries) > auditPageSize {
		d.Entries = entries[:auditPageSize]
		d.Before = d.Entries[auditPageSize-1].ID
	}
	rq.renderView(http.StatusOK, "audit", view{Title: "Audit log", Nav: "audit", Data: d})
	return nil
}
