package admin_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tidings/tidings/internal/tidings"
)

func breachForm(e *env) url.Values {
	return url.Values{
		"title":           {"Leaked <backup>"},
		"description":     {"A backup was readable from the internet."},
		"occurred_at":     {"2026-01-01T10:00"},
		"discovered_at":   {time.Now().UTC().Add(-2 * time.Hour).Format("2006-01-02T15:04")},
		"data_categories": {"email addresses\n\nnames\n"},
		"consequences":    {"Spam to the people concerned."},
		"measures":        {"The backup was removed; keys rotated."},
		"account":         {itoa(e.a.ID)},
		"account_ids":     {itoa(e.b.ID)},
	}
}

func TestBreachCreateValidation(t *testing.T) {
	e := newEnv(t)
	b := e.login(e.user(0, "", true))
	b.get("/admin/op/breaches/new").want(t, http.StatusOK, e.a.Name, e.b.Name, `name="discovered_at"`)
	for _, c := range []struct {
		field, value, want string
	}{
		{"title", "", "title: is required"},
		{"description", " ", "description: is required"},
		{"data_categories", "\n \n", "data categories: name at least one category"},
		{"discovered_at", "", "discovered at: is required"},
		{"discovered_at", "yesterday", "discovered at: must be a date and time"},
		{"discovered_at", "2099-01-01T00:00", "discovered at: cannot be in the future"},
		{"occurred_at", "2099-01-01T00:00", "occurred at: cannot be in the future"},
		{"account_ids", "12x", "account ids"},
		{"account_ids", "999999", "account 999999 does not exist"},
	} {
		f := breachForm(e)
		f.Set(c.field, c.value)
		if c.field == "account_ids" && c.value == "999999" {
			f.Del("account")
		}
		b.post("/admin/op/breaches", f).want(t, http.StatusUnprocessableEntity, c.want)
	}
	f := breachForm(e)
	f.Set("occurred_at", "2025-12-31T10:00")
	f.Set("discovered_at", "2025-06-01T10:00")
	p := b.post("/admin/op/breaches", f).want(t, http.StatusUnprocessableEntity, "occurred at: cannot be after the discovery")
	// What was typed is kept, escaped.
	if !strings.Contains(p.body, `value="Leaked &lt;backup&gt;"`) || !strings.Contains(p.body, "Spam to the people concerned.") {
		t.Fatalf("form not refilled:\n%s", p.body)
	}
	f = breachForm(e)
	f.Del("account")
	f.Del("account_ids")
	b.post("/admin/op/breaches", f).want(t, http.StatusUnprocessableEntity, "at least one affected account")
	if list, _ := e.store.ListBreaches(ctx); len(list) != 0 {
		t.Fatalf("%d breaches stored by invalid posts", len(list))
	}

	p = b.post("/admin/op/breaches", breachForm(e))
	if p.status != http.StatusSeeOther {
		t.Fatalf("create: %d\n%s", p.status, p.body)
	}
	list, _ := e.store.ListBreaches(ctx)
	if len(list) != 1 || len(list[0].DataCategories) != 2 {
		t.Fatalf("stored: %+v", list)
	}
	br, _ := e.store.GetBreach(ctx, list[0].ID)
	if len(br.Accounts) != 2 {
		t.Fatalf("accounts: %+v", br.Accounts)
	}
	b.get("/admin/op/breaches").want(t, http.StatusOK, "Leaked &lt;backup&gt;", "left)")
	b.get(p.location).want(t, http.StatusOK, "Leaked &lt;backup&gt;", e.a.Name, e.b.Name, "not yet", "Created.")
	b.get("/admin/op/breaches/999").want(t, http.StatusNotFound)
}

func TestBreachClockAndUpdate(t *testing.T) {
	e := newEnv(t)
	b := e.login(e.user(0, "", true))
	old := tidings.Breach{Title: "Old one", Description: "x", DataCategories: []string{"names"}, DiscoveredAt: time.Now().Add(-80 * time.Hour),
		Accounts: []tidings.BreachAccount{{AccountID: e.a.ID}}}
	if err := e.store.CreateBreach(ctx, &old); err != nil {
		t.Fatal(err)
	}
	b.get("/admin/op/breaches").want(t, http.StatusOK, "Old one", `<span class="overdue">overdue</span>`)
	path := "/admin/op/breaches/" + itoa(old.ID)
	b.get(path).want(t, http.StatusOK, "overdue: the authority has not been notified")

	f := breachForm(e)
	f.Set("title", "Old one")
	f.Set("discovered_at", old.DiscoveredAt.UTC().Format("2006-01-02T15:04"))
	f.Set("authority_notified_at", "soon")
	b.post(path, f).want(t, http.StatusUnprocessableEntity, "authority notified at: must be a date and time", `value="soon"`)
	f.Set("authority_notified_at", time.Now().UTC().Add(-time.Hour).Format("2006-01-02T15:04"))
	b.post(path, f).want(t, http.StatusSeeOther)
	got, _ := e.store.GetBreach(ctx, old.ID)
	if got.AuthorityNotifiedAt == nil || got.Measures != "The backup was removed; keys rotated." || len(got.Accounts) != 1 {
		t.Fatalf("updated: %+v", got)
	}
	if p := b.get("/admin/op/breaches"); strings.Contains(p.body, `class="overdue"`) {
		t.Fatal("still overdue after the authority was notified")
	}
	log, _ := e.store.AuditLog(ctx, 0, 0, 10)
	if len(log) == 0 || log[0].Action != "operator.breach.update" || log[0].Target != "breach "+itoa(old.ID) {
		t.Fatalf("audit: %+v", log)
	}
}

func TestBreachNotify(t *testing.T) {
	e := newEnv(t)
	// Distinct contact addresses, to count the mails per account.
	for i, acc := range []*tidings.Account{&e.a, &e.b} {
		acc.ContactEmail = []string{"dpo-a@example.org", "dpo-b@example.org"}[i]
		if err := e.store.UpdateAccount(ctx, acc); err != nil {
			t.Fatal(err)
		}
	}
	third := tidings.Account{PostalAddress: "1 Example Street, Exampletown", Name: "Unaffected", ContactEmail: "dpo-c@example.org"}
	e.store.CreateAccount(ctx, &third)
	if err := tidings.SavePlatform(ctx, e.store, tidings.Platform{Name: "Host Ltd", ContactEmail: "privacy@host.example", Country: "Germany"}); err != nil {
		t.Fatal(err)
	}
	b := e.login(e.user(0, "", true))
	p := b.post("/admin/op/breaches", breachForm(e))
	if p.status != http.StatusSeeOther {
		t.Fatalf("create: %d\n%s", p.status, p.body)
	}
	path := strings.SplitN(p.location, "?", 2)[0]
	subject := "Personal data breach notice: Leaked <backup>"
	count := func() map[string]int {
		n := map[string]int{}
		list, _ := e.outbox.List(0)
		for _, m := range list {
			if m.Subject == subject {
				for _, to := range m.To {
					n[to]++
				}
			}
		}
		return n
	}

	if p := b.post(path+"/notify", nil).want(t, http.StatusSeeOther); !strings.Contains(p.location, "done=notified") {
		t.Fatalf("notify redirects to %q", p.location)
	}
	if n := count(); n["dpo-a@example.org"] != 1 || n["dpo-b@example.org"] != 1 || len(n) != 2 {
		t.Fatalf("mails: %v", n)
	}
	text := e.mailTo("dpo-a@example.org", subject)
	for _, want := range []string{e.a.Name, "A backup was readable from the internet.", "- email addresses", "- names",
		"Spam to the people concerned.", "The backup was removed; keys rotated.", "When it was discovered:", "1 Jan 2026 10:00 UTC",
		"privacy@host.example", "72 hours"} {
		if !strings.Contains(text, want) {
			t.Errorf("notice lacks %q:\n%s", want, text)
		}
	}
	br, _ := e.store.GetBreach(ctx, mustID(t, path))
	for _, a := range br.Accounts {
		if a.NotifiedAt == nil {
			t.Fatalf("account %d not marked notified", a.AccountID)
		}
	}
	b.get(path).want(t, http.StatusOK, "Affected accounts")

	// Idempotent: nobody is told twice…
	b.post(path+"/notify", nil).want(t, http.StatusOK, "told already")
	if n := count(); n["dpo-a@example.org"] != 1 || n["dpo-b@example.org"] != 1 {
		t.Fatalf("mails after a second notify: %v", n)
	}
	// …unless asked.
	b.post(path+"/notify", url.Values{"again": {"on"}}).want(t, http.StatusSeeOther)
	if n := count(); n["dpo-a@example.org"] != 2 || n["dpo-b@example.org"] != 2 {
		t.Fatalf("mails after notify again: %v", n)
	}
	log, _ := e.store.AuditLog(ctx, 0, 0, 10)
	if len(log) == 0 || log[0].Action != "operator.breach.notify" {
		t.Fatalf("audit: %+v", log)
	}
}

func mustID(t *testing.T, path string) int64 {
	t.Helper()
	i := strings.LastIndex(path, "/")
	var n int64
	for _, c := range path[i+1:] {
		n = n*10 + int64(c-'0')
	}
	return n
}
