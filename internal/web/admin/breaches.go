package admin

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tidings/tidings/internal/tidings"
)

// The breach register (Art. 33 GDPR). The processor tells the controllers without undue
// delay; each controller has 72 hours from becoming aware to tell its authority. The
// clock shown here runs from the discovery.

// breachRow is a breach with its clock as of now.
type breachRow struct {
	tidings.Breach
	Deadline time.Time
	Overdue  bool   // the authority was not notified and the 72 hours are over
	Left     string // time left, while the clock runs
	Pending  int    // affected accounts not told yet
}

func clock(b tidings.Breach, now time.Time) breachRow {
	r := breachRow{Breach: b, Deadline: b.Deadline()}
	if b.AuthorityNotifiedAt == nil {
		if now.After(r.Deadline) {
			r.Overdue = true
		} else {
			left := r.Deadline.Sub(now)
			r.Left = fmt.Sprintf("%dh %02dm", int(left.Hours()), int(left.Minutes())%60)
		}
	}
	for _, a := range b.Accounts {
		if a.NotifiedAt == nil {
			r.Pending++
		}
	}
	return r
}

func (rq *request) opBreaches() error {
	list, err := rq.Store.ListBreaches(rq.r.Context())
	if err != nil {
		return err
	}
	now := time.Now()
	rows := make([]breachRow, len(list))
	for i, b := range list {
		rows[i] = clock(b, now)
	}
	return rq.opView(http.StatusOK, "op_breaches", "Breach register", "", rows)
}

// breachForm is the form as typed, so that an error shows it back unchanged.
type breachForm struct {
	Title, Description, Categories, Consequences, Measures  string
	OccurredAt, DiscoveredAt, AuthorityNotifiedAt, ClosedAt string
	AccountIDs                                              string         // free-form IDs
	Checked                                                 map[int64]bool // ticked accounts
}

type breachFormData struct {
	Form     breachForm
	Accounts []tidings.Account // the checkboxes (first page of accounts)
	More     bool              // more accounts exist than the checkboxes show
}

const breachCheckboxes = 200

const timeInput = "2006-01-02T15:04"

func timeValue(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeInput)
}

// parseTime reads a datetime-local value (UTC); "" is the zero time.
func parseTime(field, s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{timeInput, "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			if t.After(time.Now().Add(time.Hour)) {
				return time.Time{}, tidings.Invalid(field, "out_of_range", "cannot be in the future")
			}
			return t, nil
		}
	}
	return time.Time{}, tidings.Invalid(field, "invalid", "must be a date and time like 2026-01-31T14:30 (UTC)")
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func (rq *request) readBreachForm() breachForm {
	f := breachForm{Title: rq.value("title"), Description: rq.value("description"), Categories: rq.value("data_categories"),
		Consequences: rq.value("consequences"), Measures: rq.value("measures"), OccurredAt: rq.value("occurred_at"),
		DiscoveredAt: rq.value("discovered_at"), AuthorityNotifiedAt: rq.value("authority_notified_at"), ClosedAt: rq.value("closed_at"),
		AccountIDs: rq.value("account_ids"), Checked: map[int64]bool{}}
	for _, v := range rq.r.PostForm["account"] {
		if id, err := strconv.ParseInt(v, 10, 64); err == nil && id > 0 {
			f.Checked[id] = true
		}
	}
	return f
}

// apply copies the facts of the form onto b.
func (f breachForm) apply(b *tidings.Breach) error {
	b.Title, b.Description, b.Consequences, b.Measures = f.Title, f.Description, f.Consequences, f.Measures
	b.DataCategories = lines(f.Categories)
	var err error
	if b.OccurredAt, err = parseTime("occurred_at", f.OccurredAt); err != nil {
		return err
	}
	if b.DiscoveredAt, err = parseTime("discovered_at", f.DiscoveredAt); err != nil {
		return err
	}
	return nil
}

// accounts reads the ticked boxes and the typed IDs, without duplicates.
func (f breachForm) accounts() ([]tidings.BreachAccount, error) {
	seen := map[int64]bool{}
	var out []tidings.BreachAccount
	add := func(id int64) {
		if !seen[id] {
			seen[id] = true
			out = append(out, tidings.BreachAccount{AccountID: id})
		}
	}
	for id := range f.Checked {
		add(id)
	}
	for _, s := range strings.FieldsFunc(f.AccountIDs, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' }) {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id <= 0 {
			return nil, tidings.Invalid("account_ids", "invalid", "%q is not an account ID", s)
		}
		add(id)
	}
	if len(out) == 0 {
		return nil, tidings.Invalid("accounts", "required", "tick or type at least one affected account")
	}
	return out, nil
}

func (rq *request) opNewBreach() error {
	return rq.renderBreachForm(http.StatusOK, breachForm{DiscoveredAt: time.Now().UTC().Format(timeInput), Checked: map[int64]bool{}}, "")
}

func (rq *request) renderBreachForm(status int, f breachForm, errText string) error {
	accs, err := rq.Store.ListAccounts(rq.r.Context(), tidings.Page{Limit: breachCheckboxes + 1})
	if err != nil {
		return err
	}
	d := breachFormData{Form: f, Accounts: accs}
	if len(accs) > breachCheckboxes {
		d.Accounts, d.More = accs[:breachCheckboxes], true
	}
	return rq.opView(status, "op_breach_new", "Record a breach", errText, d)
}

func (rq *request) opCreateBreach() error {
	if err := rq.form(); err != nil {
		return err
	}
	f := rq.readBreachForm()
	var b tidings.Breach
	err := f.apply(&b)
	if err == nil {
		b.Accounts, err = f.accounts()
	}
	if err == nil {
		err = rq.Store.CreateBreach(rq.r.Context(), &b)
	}
	if msg := formError(err); msg != "" {
		return rq.renderBreachForm(http.StatusUnprocessableEntity, f, msg)
	}
	if err != nil {
		return err
	}
	if err := rq.auditIn(0, "operator.breach.create", "breach "+itoa(b.ID)); err != nil {
		return err
	}
	return rq.redirect("/admin/op/breaches/"+itoa(b.ID), "created")
}

type breachData struct {
	breachRow
	Form breachForm
}

func formOf(b tidings.Breach) breachForm {
	var occurred *time.Time
	if !b.OccurredAt.IsZero() {
		occurred = &b.OccurredAt
	}
	return breachForm{Title: b.Title, Description: b.Description, Categories: strings.Join(b.DataCategories, "\n"),
		Consequences: b.Consequences, Measures: b.Measures, OccurredAt: timeValue(occurred), DiscoveredAt: timeValue(&b.DiscoveredAt),
		AuthorityNotifiedAt: timeValue(b.AuthorityNotifiedAt), ClosedAt: timeValue(b.ClosedAt)}
}

func (rq *request) opBreach() error {
	b, err := rq.breach()
	if err != nil {
		return err
	}
	return rq.renderBreach(http.StatusOK, b, nil, "")
}

func (rq *request) breach() (tidings.Breach, error) {
	id, err := rq.id("id")
	if err != nil {
		return tidings.Breach{}, err
	}
	return rq.Store.GetBreach(rq.r.Context(), id)
}

func (rq *request) renderBreach(status int, b tidings.Breach, f *breachForm, errText string) error {
	d := breachData{breachRow: clock(b, time.Now()), Form: formOf(b)}
	if f != nil {
		d.Form = *f
	}
	return rq.opView(status, "op_breach", b.Title, errText, d)
}

func (rq *request) opUpdateBreach() error {
	if err := rq.form(); err != nil {
		return err
	}
	b, err := rq.breach()
	if err != nil {
		return err
	}
	orig := b
	f := rq.readBreachForm()
	err = f.apply(&b)
	for _, t := range []struct {
		field, v string
		dst      **time.Time
	}{{"authority_notified_at", f.AuthorityNotifiedAt, &b.AuthorityNotifiedAt}, {"closed_at", f.ClosedAt, &b.ClosedAt}} {
		if err != nil {
			break
		}
		var v time.Time
		if v, err = parseTime(t.field, t.v); err == nil {
			*t.dst = nil
			if !v.IsZero() {
				*t.dst = &v
			}
		}
	}
	if err == nil && b.ClosedAt != nil && b.ClosedAt.Before(b.DiscoveredAt) {
		err = tidings.Invalid("closed_at", "out_of_range", "cannot be before the discovery")
	}
	if err == nil {
		err = rq.Store.UpdateBreach(rq.r.Context(), &b)
	}
	if msg := formError(err); msg != "" {
		return rq.renderBreach(http.StatusUnprocessableEntity, orig, &f, msg)
	}
	if err != nil {
		return err
	}
	if err := rq.auditIn(0, "operator.breach.update", "breach "+itoa(b.ID)); err != nil {
		return err
	}
	return rq.redirect("/admin/op/breaches/"+itoa(b.ID), "saved")
}

// opNotifyBreach mails each affected account's contact address the facts and records
// when. Accounts told already are skipped unless "again" is asked for.
func (rq *request) opNotifyBreach() error {
	if err := rq.form(); err != nil {
		return err
	}
	ctx := rq.r.Context()
	b, err := rq.breach()
	if err != nil {
		return err
	}
	again := rq.value("again") == "on"
	platform, err := tidings.LoadPlatform(ctx, rq.Store)
	if err != nil {
		return err
	}
	var sent, failed, gone int
	for _, ba := range b.Accounts {
		if ba.NotifiedAt != nil && !again {
			continue
		}
		acc, err := rq.Store.GetAccount(ctx, ba.AccountID)
		if err != nil {
			gone++ // deleted since: nobody to tell
			continue
		}
		text := breachNotice(b, acc, platform, rq.User)
		if err := rq.mailUser(ctx, tidings.User{Email: acc.ContactEmail}, "Personal data breach notice: "+b.Title, text); err != nil {
			rq.Log.Error("operator: breach notice not sent", "breach_id", b.ID, "account_id", acc.ID, "err", err)
			failed++
			continue
		}
		if err := rq.Store.MarkBreachNotified(ctx, b.ID, acc.ID, time.Now()); err != nil {
			return err
		}
		sent++
	}
	if sent > 0 {
		if err := rq.auditIn(0, "operator.breach.notify", fmt.Sprintf("breach %d (%d accounts)", b.ID, sent)); err != nil {
			return err
		}
	}
	if failed > 0 || gone > 0 || sent == 0 {
		var msg string
		switch {
		case failed > 0:
			msg = fmt.Sprintf("%d notice(s) sent; %d could not be sent (see the server log) and can be retried.", sent, failed)
		case gone > 0:
			msg = fmt.Sprintf("%d notice(s) sent; %d affected account(s) no longer exist.", sent, gone)
		default:
			msg = "Every affected account was told already. Tick “notify again” to send the notice once more."
		}
		if b, err = rq.breach(); err != nil {
			return err
		}
		status := http.StatusOK
		if failed > 0 {
			status = http.StatusBadGateway
		}
		return rq.renderBreach(status, b, nil, msg)
	}
	return rq.redirect("/admin/op/breaches/"+itoa(b.ID), "notified")
}

// breachNotice is the mail to an account holder (Art. 33(2) and (3) GDPR).
func breachNotice(b tidings.Breach, acc tidings.Account, p tidings.Platform, op tidings.User) string {
	var s strings.Builder
	name := p.Name
	if name == "" {
		name = "The operator of this Tidings service"
	}
	fmt.Fprintf(&s, "Dear %s,\n\n%s, which processes personal data on your behalf, informs you of a personal data breach that affects your account.\n\n", acc.Name, name)
	fmt.Fprintf(&s, "What happened:\n%s\n\n", b.Description)
	if !b.OccurredAt.IsZero() {
		fmt.Fprintf(&s, "When it occurred: %s\n", b.OccurredAt.UTC().Format("2 Jan 2006 15:04 UTC"))
	} else {
		s.WriteString("When it occurred: not known yet\n")
	}
	fmt.Fprintf(&s, "When it was discovered: %s\n\n", b.DiscoveredAt.UTC().Format("2 Jan 2006 15:04 UTC"))
	s.WriteString("Categories of personal data concerned:\n")
	for _, c := range b.DataCategories {
		fmt.Fprintf(&s, "- %s\n", c)
	}
	if b.Consequences != "" {
		fmt.Fprintf(&s, "\nLikely consequences:\n%s\n", b.Consequences)
	}
	if b.Measures != "" {
		fmt.Fprintf(&s, "\nMeasures taken or proposed:\n%s\n", b.Measures)
	}
	fmt.Fprintf(&s, "\nAs the controller, you may have to notify your supervisory authority within 72 hours of becoming aware of the breach "+
		"(Art. 33 GDPR), and the people concerned when the risk to them is high (Art. 34).\n\nContact for more information: ")
	switch {
	case p.ContactEmail != "":
		s.WriteString(p.ContactEmail)
		if p.PostalAddress != "" {
			s.WriteString(", " + p.PostalAddress)
		}
	default:
		s.WriteString(op.Email)
	}
	s.WriteString("\n")
	return s.String()
}
