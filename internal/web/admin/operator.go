package admin

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tidings/tidings/internal/keys"
	"github.com/tidings/tidings/internal/mail"
	"github.com/tidings/tidings/internal/tidings"
)

// The operator's pages (the platform admin): accounts, platform settings, terms, the
// login log, everyone's audit log, users and the embedded outbox. The records of
// processing are in records.go, the breach register in breaches.go.
//
// Operators have no implicit access to account data: to see an account's lists or
// subscribers they give themselves a role, which is written to the account's audit log.

func operatorRoutes() []Route {
	return []Route{
		{"GET /admin/op/{$}", Operator, (*request).opHome},
		{"GET /admin/op/accounts", Operator, (*request).opAccounts},
		{"POST /admin/op/accounts", Operator, (*request).opCreateAccount},
		{"GET /admin/op/accounts/{id}", Operator, (*request).opAccount},
		{"POST /admin/op/accounts/{id}/members", Operator, (*request).opGrantSelf},
		{"POST /admin/op/accounts/{id}/delete", Operator, (*request).opDeleteAccount},
		{"GET /admin/op/settings", Operator, (*request).opSettings},
		{"POST /admin/op/settings", Operator, (*request).opSaveSettings},
		{"GET /admin/op/records", Operator, (*request).opRecords},
		{"GET /admin/op/records.md", Operator, (*request).opRecordsMarkdown},
		{"GET /admin/op/breaches", Operator, (*request).opBreaches},
		{"GET /admin/op/breaches/new", Operator, (*request).opNewBreach},
		{"POST /admin/op/breaches", Operator, (*request).opCreateBreach},
		{"GET /admin/op/breaches/{id}", Operator, (*request).opBreach},
		{"POST /admin/op/breaches/{id}", Operator, (*request).opUpdateBreach},
		{"POST /admin/op/breaches/{id}/notify", Operator, (*request).opNotifyBreach},
		{"GET /admin/op/terms", Operator, (*request).opTerms},
		{"POST /admin/op/terms", Operator, (*request).opPublishTerms},
		{"GET /admin/op/logins", Operator, (*request).opLogins},
		{"GET /admin/op/audit", Operator, (*request).opAudit},
		{"GET /admin/op/users", Operator, (*request).opUsers},
		{"GET /admin/op/outbox", Operator, (*request).opOutbox},
		{"GET /admin/op/outbox/{msg}", Operator, (*request).opOutboxMessage},
	}
}

const opPageSize = 50

func (rq *request) opHome() error {
	http.Redirect(rq.w, rq.r, "/admin/op/accounts", http.StatusSeeOther)
	return nil
}

// opView renders an operator page (the "operator" section of the top bar).
func (rq *request) opView(status int, page, title, errText string, data any) error {
	rq.renderView(status, page, view{Title: title, Nav: "operator", Error: errText, Data: data})
	return nil
}

// auditIn records an operator action in an account's audit log (0: the platform's).
func (rq *request) auditIn(accountID int64, action, target string) error {
	return rq.Store.Audit(rq.r.Context(), tidings.AuditEntry{AccountID: accountID, UserID: rq.User.ID, Action: action,
		Target: target, IP: rq.ip(), At: time.Now()})
}

// Accounts.

type accountForm struct {
	Name, ContactEmail, PostalAddress, OwnerEmail string
}

type opAccountsData struct {
	Accounts []tidings.Account
	Next     string // ?after= of the next page; "" on the last
	Form     accountForm
}

func (rq *request) opAccounts() error {
	return rq.renderAccounts(http.StatusOK, accountForm{}, "")
}

func (rq *request) renderAccounts(status int, f accountForm, errText string) error {
	p := rq.page(opPageSize)
	accs, err := rq.Store.ListAccounts(rq.r.Context(), p)
	if err != nil {
		return err
	}
	d := opAccountsData{Accounts: accs, Form: f}
	if len(accs) == p.Limit {
		d.Next = itoa(accs[len(accs)-1].ID)
	}
	return rq.opView(status, "op_accounts", "Accounts", errText, d)
}

// opCreateAccount creates an account and gives its first owner the role: an existing
// user keeps their password; a new one gets an unusable random one and a link to set
// their own. Everything is checked before anything is written.
func (rq *request) opCreateAccount() error {
	if err := rq.form(); err != nil {
		return err
	}
	ctx := rq.r.Context()
	f := accountForm{Name: rq.value("name"), ContactEmail: rq.value("contact_email"), PostalAddress: rq.value("postal_address"), OwnerEmail: rq.value("owner_email")}
	acc := tidings.Account{Name: f.Name, ContactEmail: f.ContactEmail, PostalAddress: f.PostalAddress}
	acc.Normalize()
	err := acc.Validate()
	var owner tidings.Address
	if err == nil {
		owner, err = tidings.ParseAddress(f.OwnerEmail)
		if err != nil {
			err = tidings.Invalid("owner_email", "invalid", "is not a valid email address")
		}
	}
	if msg := formError(err); msg != "" {
		return rq.renderAccounts(http.StatusUnprocessableEntity, f, msg)
	}
	u, err := rq.Store.UserByEmail(ctx, owner.String())
	isNew := errors.Is(err, tidings.ErrNotFound)
	if err != nil && !isNew {
		return err
	}
	var hash string
	if isNew {
		// Nobody knows this password: the owner sets their own through the link.
		if hash, err = keys.HashPassword(rand.Text() + rand.Text()); err != nil {
			return err
		}
	}
	if err := rq.Store.CreateAccount(ctx, &acc); err != nil {
		if msg := formError(err); msg != "" {
			return rq.renderAccounts(http.StatusUnprocessableEntity, f, msg)
		}
		return err
	}
	// Undo the account if its owner cannot be set: no account without an owner.
	undo := func(err error) error {
		if derr := rq.Store.DeleteAccount(ctx, acc.ID); derr != nil {
			rq.Log.Error("operator: account left without owner", "account_id", acc.ID, "err", derr)
		}
		return err
	}
	if isNew {
		u = tidings.User{Email: owner.String(), PasswordHash: hash}
		err = rq.Store.CreateMember(ctx, acc.ID, &u, tidings.RoleOwner)
	} else {
		err = rq.Store.SetMembership(ctx, acc.ID, u.ID, tidings.RoleOwner)
	}
	if err != nil {
		return undo(err)
	}
	if err := rq.auditIn(0, "operator.account.create", "account "+itoa(acc.ID)); err != nil {
		return err
	}
	if err := rq.auditIn(acc.ID, "operator.membership", fmt.Sprintf("user %d as owner", u.ID)); err != nil {
		return err
	}
	if u.ID != rq.User.ID {
		rq.welcomeOwner(u, acc, isNew)
	}
	return rq.redirect("/admin/op/accounts/"+itoa(acc.ID), "created")
}

// welcomeOwner tells the new owner; a new user gets a link to set their password. A
// mail that fails is logged (without the address): the operator can resend a reset.
func (rq *request) welcomeOwner(u tidings.User, acc tidings.Account, isNew bool) {
	ctx := rq.r.Context()
	text := fmt.Sprintf("You are now the owner of the account %q on Tidings.\n\nSign in at %s/admin/login\n", acc.Name, rq.BaseURL)
	if isNew {
		_, token, err := rq.Auth.RequestPasswordReset(ctx, u.Email)
		if err != nil || token == "" {
			rq.Log.Error("operator: no password link for the new owner", "user_id", u.ID, "err", err)
			return
		}
		text = fmt.Sprintf("An account %q was created for you on Tidings, with you as its owner.\n\n"+
			"Choose your password with this link (it works once, for 30 minutes):\n\n%s/admin/reset?token=%s\n\n"+
			"If it has expired, ask for a new one at %s/admin/reset\n", acc.Name, rq.BaseURL, token, rq.BaseURL)
	}
	if err := rq.mailUser(ctx, u, "Your Tidings account", text); err != nil {
		rq.Log.Error("operator: welcome mail not sent", "user_id", u.ID, "err", err)
	}
}

type opAccountData struct {
	Account tidings.Account
	Members []tidings.Member
	MyRole  tidings.Role
	Roles   []tidings.Role
	Confirm string
}

var allRoles = []tidings.Role{tidings.RoleViewer, tidings.RoleEditor, tidings.RoleAdmin, tidings.RoleOwner}

func (rq *request) opAccount() error { return rq.renderAccount(http.StatusOK, "", "") }

func (rq *request) renderAccount(status int, confirm, errText string) error {
	id, err := rq.id("id")
	if err != nil {
		return err
	}
	acc, err := rq.Store.GetAccount(rq.r.Context(), id)
	if err != nil {
		return err
	}
	members, err := rq.Store.Members(rq.r.Context(), id)
	if err != nil {
		return err
	}
	d := opAccountData{Account: acc, Members: members, Roles: allRoles, Confirm: confirm}
	for _, m := range members {
		if m.ID == rq.User.ID {
			d.MyRole = m.Role
		}
	}
	return rq.opView(status, "op_account", acc.Name, errText, d)
}

// opGrantSelf gives the operator a role in the account, in the account's audit log.
func (rq *request) opGrantSelf() error {
	if err := rq.form(); err != nil {
		return err
	}
	id, err := rq.id("id")
	if err != nil {
		return err
	}
	if _, err := rq.Store.GetAccount(rq.r.Context(), id); err != nil {
		return err
	}
	role := tidings.Role(rq.value("role"))
	if !role.Valid() {
		return rq.renderAccount(http.StatusUnprocessableEntity, "", "role: choose one of viewer, editor, admin, owner.")
	}
	if err := rq.Store.SetMembership(rq.r.Context(), id, rq.User.ID, role); err != nil {
		return err
	}
	if err := rq.auditIn(id, "operator.membership", fmt.Sprintf("user %d as %s", rq.User.ID, role)); err != nil {
		return err
	}
	return rq.redirect("/admin/op/accounts/"+itoa(id), "saved")
}

func (rq *request) opDeleteAccount() error {
	if err := rq.form(); err != nil {
		return err
	}
	id, err := rq.id("id")
	if err != nil {
		return err
	}
	acc, err := rq.Store.GetAccount(rq.r.Context(), id)
	if err != nil {
		return err
	}
	if confirm := rq.value("confirm"); confirm != acc.Name {
		return rq.renderAccount(http.StatusUnprocessableEntity, confirm, "To delete the account, type its name exactly as shown.")
	}
	if err := rq.Store.DeleteAccount(rq.r.Context(), id); err != nil {
		return err
	}
	if err := rq.auditIn(0, "operator.account.delete", "account "+itoa(id)); err != nil {
		return err
	}
	return rq.redirect("/admin/op/accounts", "deleted")
}

// Platform settings.

type opSettingsData struct {
	Platform      tidings.Platform
	SubProcessors string // one per line: name | purpose | location
}

func (rq *request) opSettings() error {
	p, err := tidings.LoadPlatform(rq.r.Context(), rq.Store)
	if err != nil {
		return err
	}
	return rq.opView(http.StatusOK, "op_settings", "Platform settings", "", opSettingsData{Platform: p, SubProcessors: formatSubProcessors(p.SubProcessors)})
}

func formatSubProcessors(sps []tidings.SubProcessor) string {
	var b strings.Builder
	for _, sp := range sps {
		fmt.Fprintf(&b, "%s | %s | %s\n", sp.Name, sp.Purpose, sp.Location)
	}
	return b.String()
}

// parseSubProcessors reads "name | purpose | location" lines; blank lines are skipped.
func parseSubProcessors(text string) ([]tidings.SubProcessor, error) {
	var out []tidings.SubProcessor
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		parts := strings.Split(line, "|")
		if len(parts) != 3 {
			return nil, tidings.Invalid("subprocessors", "bad_line", "line %d must read name | purpose | location", i+1)
		}
		out = append(out, tidings.SubProcessor{Name: strings.TrimSpace(parts[0]), Purpose: strings.TrimSpace(parts[1]), Location: strings.TrimSpace(parts[2])})
	}
	return out, nil
}

func (rq *request) opSaveSettings() error {
	if err := rq.form(); err != nil {
		return err
	}
	p := tidings.Platform{Name: rq.value("name"), ContactEmail: rq.value("contact_email"), PostalAddress: rq.value("postal_address"),
		Country: rq.value("country"), Region: rq.value("region"), Provider: rq.value("provider")}
	d := opSettingsData{Platform: p, SubProcessors: rq.r.PostForm.Get("subprocessors")}
	sps, err := parseSubProcessors(d.SubProcessors)
	if err == nil {
		p.SubProcessors = sps
		err = tidings.SavePlatform(rq.r.Context(), rq.Store, p)
	}
	if msg := formError(err); msg != "" {
		return rq.opView(http.StatusUnprocessableEntity, "op_settings", "Platform settings", msg, d)
	}
	if err != nil {
		return err
	}
	if err := rq.auditIn(0, "operator.settings", "platform"); err != nil {
		return err
	}
	return rq.redirect("/admin/op/settings", "saved")
}

// Terms.

type opTermsData struct {
	Latest      tidings.TermsVersion
	Acceptances []tidings.TermsAcceptance
	Text        string // the publish form
}

func (rq *request) opTerms() error { return rq.renderTerms(http.StatusOK, "", "") }

func (rq *request) renderTerms(status int, text, errText string) error {
	ctx := rq.r.Context()
	latest, err := rq.Store.LatestTerms(ctx)
	if err != nil && !errors.Is(err, tidings.ErrNotFound) {
		return err
	}
	acc, err := rq.Store.TermsAcceptances(ctx, tidings.Page{Limit: 200})
	if err != nil {
		return err
	}
	if text == "" {
		text = latest.Text
	}
	return rq.opView(status, "op_terms", "Terms of use", errText, opTermsData{Latest: latest, Acceptances: acc, Text: text})
}

func (rq *request) opPublishTerms() error {
	if err := rq.form(); err != nil {
		return err
	}
	text := rq.r.PostForm.Get("text")
	v, err := rq.Store.PublishTerms(rq.r.Context(), text)
	if msg := formError(err); msg != "" {
		return rq.renderTerms(http.StatusUnprocessableEntity, text, msg)
	}
	if err != nil {
		return err
	}
	if err := rq.auditIn(0, "operator.terms.publish", "terms "+strconv.Itoa(v.Version)); err != nil {
		return err
	}
	return rq.redirect("/admin/op/terms", "published")
}

// Logs and users.

type loginRow struct {
	tidings.LoginAttempt
	Email string
}

type opLoginsData struct {
	Logins []loginRow
	Next   string
}

func (rq *request) opLogins() error {
	p := rq.page(opPageSize) // newest first: After is the ID the page continues below
	log, err := rq.Store.LoginAttempts(rq.r.Context(), 0, p)
	if err != nil {
		return err
	}
	emails, err := rq.userEmails(len(log), func(i int) int64 { return log[i].UserID })
	if err != nil {
		return err
	}
	d := opLoginsData{}
	for _, a := range log {
		d.Logins = append(d.Logins, loginRow{LoginAttempt: a, Email: emails[a.UserID]})
	}
	if len(log) == p.Limit {
		d.Next = itoa(log[len(log)-1].ID)
	}
	return rq.opView(http.StatusOK, "op_logins", "Sign-ins", "", d)
}

// userEmails looks up the users of one page (at most a page's worth of reads).
func (rq *request) userEmails(n int, id func(int) int64) (map[int64]string, error) {
	out := map[int64]string{}
	for i := range n {
		uid := id(i)
		if _, ok := out[uid]; ok || uid == 0 {
			continue
		}
		u, err := rq.Store.GetUser(rq.r.Context(), uid)
		switch {
		case errors.Is(err, tidings.ErrNotFound):
			out[uid] = ""
		case err != nil:
			return nil, err
		default:
			out[uid] = u.Email
		}
	}
	return out, nil
}

type opAuditData struct {
	Entries []tidings.AuditEntry
	Next    string
}

func (rq *request) opAudit() error {
	before, _ := strconv.ParseInt(rq.r.URL.Query().Get("before"), 10, 64)
	entries, err := rq.Store.AuditLog(rq.r.Context(), 0, before, opPageSize)
	if err != nil {
		return err
	}
	d := opAuditData{Entries: entries}
	if len(entries) == opPageSize {
		d.Next = itoa(entries[len(entries)-1].ID)
	}
	return rq.opView(http.StatusOK, "op_audit", "Audit log (all accounts)", "", d)
}

type opUsersData struct {
	Users []tidings.User
	Next  string
}

func (rq *request) opUsers() error {
	p := rq.page(opPageSize)
	users, err := rq.Store.ListUsers(rq.r.Context(), p)
	if err != nil {
		return err
	}
	d := opUsersData{Users: users}
	if len(users) == p.Limit {
		d.Next = itoa(users[len(users)-1].ID)
	}
	return rq.opView(http.StatusOK, "op_users", "Users", "", d)
}

// Outbox: what Tidings would have sent, when no relay is configured.

const outboxShown = 200

type opOutboxData struct {
	Entries []mail.OutboxEntry
	Max     int
	ID      string
	Raw     string
}

func (rq *request) opOutbox() error {
	if rq.Outbox == nil {
		return tidings.ErrNotFound
	}
	entries, err := rq.Outbox.List(outboxShown)
	if err != nil {
		return err
	}
	return rq.opView(http.StatusOK, "op_outbox", "Outbox", "", opOutboxData{Entries: entries, Max: outboxShown})
}

func (rq *request) opOutboxMessage() error {
	if rq.Outbox == nil {
		return tidings.ErrNotFound
	}
	id := rq.r.PathValue("msg")
	raw, err := rq.Outbox.Read(id)
	if errors.Is(err, mail.ErrNoMessage) {
		return tidings.ErrNotFound
	}
	if err != nil {
		return err
	}
	return rq.opView(http.StatusOK, "op_outbox", "Outbox message", "", opOutboxData{ID: id, Raw: string(raw)})
}
