package admin

import (
	"bufio"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/tidings/tidings/internal/auth"
	"github.com/tidings/tidings/internal/tidings"
)

// The processor's records of processing (Art. 30(2) GDPR), generated from the platform
// settings and each account's configuration. Accounts are read a page at a time: the
// HTML report pages through them, the Markdown download streams them all.

type controllerRecord struct {
	tidings.Account
	Activities     []string
	DataCategories []string
}

type recordsReport struct {
	Platform  tidings.Platform
	Generated time.Time
	Security  []string
	Retention []string
	Accounts  []controllerRecord
	Next      string // HTML paging
	First     bool   // the first page of the HTML report
}

const recordsPage = 200

// recordOf describes what Tidings does for one controller, from its settings.
func recordOf(a tidings.Account) controllerRecord {
	r := controllerRecord{Account: a}
	r.Activities = []string{
		"Mailing list management: lists, sign-up forms, double opt-in confirmations, subscriptions, unsubscribes, consent records and suppression",
		"Sending newsletters (campaigns) on the controller's instructions, with delivery records",
	}
	if a.TrackingEnabled {
		t := "Tracking of opens and clicks of subscribers who consented to it"
		if a.AnonymousCounts {
			t += "; anonymous counts (not linked to a person) for the others"
		}
		r.Activities = append(r.Activities, t)
	}
	r.Activities = append(r.Activities, "Handling data-subject requests: access and export, rectification, restriction, objection, erasure")
	if a.InactiveDays > 0 {
		r.Activities = append(r.Activities, fmt.Sprintf("Deleting subscribers inactive for %d days", a.InactiveDays))
	}
	attrs := "Custom attributes defined by the controller's forms and imports"
	if len(a.EditableAttributes) > 0 {
		attrs += " (including " + strings.Join(a.EditableAttributes, ", ") + ")"
	}
	r.DataCategories = []string{
		"Email address",
		"Name (when given)",
		attrs,
		"Consent evidence: time, IP address, user agent, referring page, the consent text shown; confirmation mails as sent",
		"Delivery records: which mails were sent to whom, and their status",
	}
	if a.TrackingEnabled {
		r.DataCategories = append(r.DataCategories, "Tracking events: opens and clicks with their time (with consent only)")
	}
	r.DataCategories = append(r.DataCategories, "Data-subject request log (the person as a keyed hash, not the address)")
	return r
}

// securityMeasures states what Tidings does (Art. 32 GDPR), nothing more.
func (rq *request) securityMeasures() []string {
	https := "The web interfaces are served at " + rq.BaseURL
	if strings.HasPrefix(rq.BaseURL, "https://") {
		https += " over HTTPS (TLS); session cookies are Secure, HttpOnly and SameSite=Lax."
	} else {
		https += " without HTTPS: TLS must be added by a reverse proxy."
	}
	return []string{
		"Encryption at rest per person: each subscriber's personal fields (address, name, attributes, consent evidence, proofs) are sealed with AES-256-GCM under a data key of their own, wrapped by an instance key; every ciphertext is bound to its account, person and column.",
		"Erasure destroys the person's data key (crypto-shredding), which makes the live copies unreadable. Backups taken before an erasure can still be decrypted with the instance secret.",
		"Addresses are found by keyed hashes (HMAC), not stored in clear; suppression lists keep only keyed hashes.",
		"Tenant isolation: every query of account data is filtered by the account; another account's data is answered as not found.",
		"Consent records form a hash-chained ledger per account, so changes to past entries are detectable.",
		https,
		"Mail to the SMTP relay uses STARTTLS by default (or TLS, as configured); outgoing mail is DKIM-signed.",
		"Staff passwords are hashed with argon2id and checked for strength; two-factor sign-in with TOTP and recovery codes (accounts can make it compulsory); " + rq.lockoutText(),
		"Audit log of staff actions on personal data and settings; a log of every sign-in attempt.",
		"API tokens and sign-in links are stored as hashes only; DKIM private keys and TOTP secrets are sealed under the instance key.",
		"Server logs carry no email addresses, IP addresses or tokens; the web interfaces run no scripts and load no third-party assets.",
	}
}

// lockoutText states the sign-in policy in force.
func (rq *request) lockoutText() string {
	pol := auth.DefaultPolicy
	if rq.Auth != nil {
		pol = rq.Auth.Policy
	}
	return fmt.Sprintf("sign-in is locked for %s after %d failures; sessions end after %s idle and %s at most.",
		duration(pol.LockFor), pol.LockAfter, duration(pol.IdleTimeout), duration(pol.MaxAge))
}

func duration(d time.Duration) string {
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		return fmt.Sprintf("%d hours", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%d minutes", d/time.Minute)
	}
	return d.String()
}

var retentionRules = []string{
	"Unconfirmed sign-ups are deleted after 7 days.",
	"Open and click events are kept for 6 months, then only as anonymous daily totals.",
	"Subscribers with no activity are deleted after the number of days the controller sets (off by default).",
	"After an unsubscribe or erasure, only a keyed hash of the address is kept, so that later uploads cannot add the person back.",
	"Subscriber data stays until the person unsubscribes and asks for erasure, the controller deletes it, or the account is deleted.",
}

func (rq *request) report() (recordsReport, error) {
	p, err := tidings.LoadPlatform(rq.r.Context(), rq.Store)
	if err != nil {
		return recordsReport{}, err
	}
	return recordsReport{Platform: p, Generated: time.Now(), Security: rq.securityMeasures(), Retention: retentionRules}, nil
}

func (rq *request) opRecords() error {
	rep, err := rq.report()
	if err != nil {
		return err
	}
	pg := rq.page(recordsPage)
	rep.First = pg.After == 0
	accs, err := rq.Store.ListAccounts(rq.r.Context(), pg)
	if err != nil {
		return err
	}
	for _, a := range accs {
		rep.Accounts = append(rep.Accounts, recordOf(a))
	}
	if len(accs) == pg.Limit {
		rep.Next = itoa(accs[len(accs)-1].ID)
	}
	return rq.opView(http.StatusOK, "op_records", "Records of processing", "", rep)
}

// opRecordsMarkdown streams the whole report as a Markdown file.
func (rq *request) opRecordsMarkdown() error {
	ctx := rq.r.Context()
	rep, err := rq.report()
	if err != nil {
		return err
	}
	// The first page is read before anything is written, so a failing store is a clean error.
	accs, err := rq.Store.ListAccounts(ctx, tidings.Page{Limit: tidings.MaxPageSize})
	if err != nil {
		return err
	}
	if err := rq.auditIn(0, "operator.records.export", "records of processing"); err != nil {
		return err
	}
	h := rq.w.Header()
	h.Set("Content-Type", "text/markdown; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="records-of-processing-`+rep.Generated.UTC().Format("2006-01-02")+`.md"`)
	w := bufio.NewWriter(rq.w)
	defer w.Flush()
	writeRecordsHead(w, rep)
	fmt.Fprintf(w, "## Controllers on whose behalf data is processed\n\n")
	n := 0
	for len(accs) > 0 {
		for _, a := range accs {
			n++
			writeController(w, recordOf(a))
		}
		if len(accs) < tidings.MaxPageSize {
			break
		}
		if accs, err = rq.Store.ListAccounts(ctx, tidings.Page{After: accs[len(accs)-1].ID, Limit: tidings.MaxPageSize}); err != nil {
			// Headers are gone already: say so in the file rather than end it silently.
			rq.Log.Error("operator: records export cut short", "err", err)
			fmt.Fprintf(w, "\n**The report is incomplete: reading the accounts failed.**\n")
			return nil
		}
	}
	if n == 0 {
		fmt.Fprintf(w, "No accounts yet.\n\n")
	}
	return nil
}

// md escapes text for Markdown: no markup, links or HTML from the data, one line.
func md(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune("\\`*_[]<>#|~&", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return md(s)
}

func writeRecordsHead(w *bufio.Writer, rep recordsReport) {
	p := rep.Platform
	fmt.Fprintf(w, "# Records of processing activities (Art. 30(2) GDPR)\n\nGenerated %s by Tidings.\n\n", rep.Generated.UTC().Format("2 Jan 2006 15:04 UTC"))
	fmt.Fprintf(w, "## Processor\n\n")
	if !p.Configured() {
		fmt.Fprintf(w, "**The platform details are not filled in yet (operator settings).**\n\n")
	}
	fmt.Fprintf(w, "- Name: %s\n- Contact: %s\n- Postal address: %s\n- Hosting: %s\n\n", orDash(p.Name), orDash(p.ContactEmail), orDash(p.PostalAddress), orDash(p.Hosting()))
	fmt.Fprintf(w, "## Sub-processors and transfers\n\n")
	if len(p.SubProcessors) == 0 {
		fmt.Fprintf(w, "None recorded.\n\n")
	} else {
		fmt.Fprintf(w, "| Sub-processor | Purpose | Location |\n| --- | --- | --- |\n")
		for _, sp := range p.SubProcessors {
			fmt.Fprintf(w, "| %s | %s | %s |\n", md(sp.Name), md(sp.Purpose), md(sp.Location))
		}
		fmt.Fprintf(w, "\n")
	}
	fmt.Fprintf(w, "## Technical and organisational security measures (Art. 32)\n\n")
	for _, s := range rep.Security {
		fmt.Fprintf(w, "- %s\n", md(s))
	}
	fmt.Fprintf(w, "\n## Retention\n\n")
	for _, s := range rep.Retention {
		fmt.Fprintf(w, "- %s\n", md(s))
	}
	fmt.Fprintf(w, "\n")
}

func writeController(w *bufio.Writer, c controllerRecord) {
	fmt.Fprintf(w, "### %s (account %d)\n\n", md(c.Name), c.ID)
	fmt.Fprintf(w, "- Contact: %s\n- Postal address: %s\n- Data subjects: subscribers of the controller's mailing lists\n", orDash(c.ContactEmail), orDash(c.PostalAddress))
	fmt.Fprintf(w, "- Categories of processing:\n")
	for _, a := range c.Activities {
		fmt.Fprintf(w, "  - %s\n", md(a))
	}
	fmt.Fprintf(w, "- Categories of personal data:\n")
	for _, d := range c.DataCategories {
		fmt.Fprintf(w, "  - %s\n", md(d))
	}
	fmt.Fprintf(w, "\n")
}
