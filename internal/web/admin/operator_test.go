package admin_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/tidings/tidings/internal/tidings"
	"github.com/tidings/tidings/internal/web/admin"
)

// opPath fills the wildcards of an operator route with plausible values.
func opPath(pattern string) (method, path string) {
	method, path, _ = strings.Cut(pattern, " ")
	path = strings.NewReplacer("{id}", "1", "{msg}", "1.1_1.tidings", "{$}", "").Replace(path)
	return method, path
}

func TestOperatorRoutesHiddenFromOthers(t *testing.T) {
	e := newEnv(t)
	owner := e.login(e.user(e.a.ID, tidings.RoleOwner, false))
	n := 0
	for _, rt := range admin.RouteTable() {
		if !strings.HasPrefix(rt.Pattern, "GET /admin/op/") && !strings.HasPrefix(rt.Pattern, "POST /admin/op/") {
			continue
		}
		n++
		if rt.Access != admin.Operator {
			t.Errorf("%s: access %d, want Operator", rt.Pattern, rt.Access)
		}
		method, path := opPath(rt.Pattern)
		var p page
		if method == "GET" {
			p = owner.get(path)
		} else {
			p = owner.post(path, url.Values{"confirm": {e.a.Name}, "role": {"owner"}, "text": {"x"}})
		}
		if p.status != http.StatusNotFound {
			t.Errorf("%s as an account owner: %d, want 404", rt.Pattern, p.status)
		}
	}
	if n < 20 {
		t.Fatalf("only %d operator routes", n)
	}
	// Nothing happened.
	if _, err := e.store.GetAccount(ctx, e.a.ID); err != nil {
		t.Fatal("the account was deleted by a non-operator")
	}
	anon := e.browser()
	if p := anon.get("/admin/op/accounts"); p.status != http.StatusSeeOther {
		t.Fatalf("anonymous: %d", p.status)
	}
}

func TestOperatorAccounts(t *testing.T) {
	e := newEnv(t)
	op := e.user(0, "", true)
	b := e.login(op)
	b.get("/admin/op/accounts").want(t, http.StatusOK, e.a.Name, e.b.Name, `aria-label="Operator"`)
	evil := tidings.Account{PostalAddress: "1 Example Street, Exampletown", Name: `<img src=x onerror=alert(1)>`, ContactEmail: "evil@example.org"}
	if err := e.store.CreateAccount(ctx, &evil); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/admin/op/accounts", "/admin/op/accounts/" + itoa(evil.ID)} {
		if p := b.get(path).want(t, http.StatusOK, "&lt;img src=x onerror=alert(1)&gt;"); strings.Contains(p.body, "<img src=x") {
			t.Fatalf("%s: account name not escaped", path)
		}
	}
	if err := e.store.DeleteAccount(ctx, evil.ID); err != nil {
		t.Fatal(err)
	}

	// Validation keeps what was typed and writes nothing.
	b.post("/admin/op/accounts", url.Values{"name": {"<script>x</script>"}, "contact_email": {"dpo@new.example"}, "postal_address": {"2 High St"}, "owner_email": {"not an address"}}).
		want(t, http.StatusUnprocessableEntity, "owner email", "&lt;script&gt;x&lt;/script&gt;")
	b.post("/admin/op/accounts", url.Values{"name": {""}, "contact_email": {"dpo@new.example"}, "owner_email": {"boss@new.example"}}).
		want(t, http.StatusUnprocessableEntity, "name: is required")
	if accs, _ := e.store.ListAccounts(ctx, tidings.Page{}); len(accs) != 2 {
		t.Fatalf("%d accounts after failed creations", len(accs))
	}

	// A new owner: created with an unusable password and sent a link.
	p := b.post("/admin/op/accounts", url.Values{"name": {"New Co"}, "contact_email": {"dpo@new.example"}, "postal_address": {"2 High St"}, "owner_email": {"Boss@New.example"}})
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.location, "/admin/op/accounts/") {
		t.Fatalf("create: %d %q\n%s", p.status, p.location, p.body)
	}
	u, err := e.store.UserByEmail(ctx, "boss@new.example")
	if err != nil {
		t.Fatal(err)
	}
	ms, _ := e.store.Memberships(ctx, u.ID)
	if len(ms) != 1 || ms[0].Role != tidings.RoleOwner {
		t.Fatalf("memberships: %+v", ms)
	}
	text := e.mailTo("boss@new.example", "Your Tidings account")
	token := regexp.MustCompile(`/admin/reset\?token=(\S+)`).FindStringSubmatch(text)
	if token == nil {
		t.Fatalf("no link:\n%s", text)
	}
	e.browser().post("/admin/reset/password", url.Values{"token": {token[1]}, "password": {"copper lantern seventy orbit"}}).want(t, http.StatusSeeOther)
	accID := ms[0].AccountID
	b.get("/admin/op/accounts/"+itoa(accID)).want(t, http.StatusOK, "New Co", "boss@new.example", "2 High St")

	// The operator as owner: just the membership.
	p = b.post("/admin/op/accounts", url.Values{"name": {"Own Co"}, "contact_email": {"me@own.example"}, "postal_address": {"3 Own Road"}, "owner_email": {op.Email}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("create own: %d\n%s", p.status, p.body)
	}
	ms, _ = e.store.Memberships(ctx, op.ID)
	if len(ms) != 1 {
		t.Fatalf("operator memberships: %+v", ms)
	}

	// Give myself a role: audited in the account's log.
	b.post("/admin/op/accounts/"+itoa(e.a.ID)+"/members", url.Values{"role": {"boss"}}).want(t, http.StatusUnprocessableEntity, "role")
	b.post("/admin/op/accounts/"+itoa(e.a.ID)+"/members", url.Values{"role": {"viewer"}}).want(t, http.StatusSeeOther)
	log, _ := e.store.AuditLog(ctx, e.a.ID, 0, 10)
	if len(log) == 0 || log[0].Action != "operator.membership" || log[0].UserID != op.ID {
		t.Fatalf("audit: %+v", log)
	}
	b.get("/admin/a/"+itoa(e.a.ID)+"/lists").want(t, http.StatusOK)

	// Delete needs the name typed.
	b.post("/admin/op/accounts/"+itoa(e.b.ID)+"/delete", url.Values{"confirm": {"Controller"}}).want(t, http.StatusUnprocessableEntity, "type its name")
	b.post("/admin/op/accounts/"+itoa(e.b.ID)+"/delete", url.Values{"confirm": {e.b.Name}}).want(t, http.StatusSeeOther)
	if _, err := e.store.GetAccount(ctx, e.b.ID); err != tidings.ErrNotFound {
		t.Fatalf("after delete: %v", err)
	}
	b.get("/admin/op/accounts/"+itoa(e.b.ID)).want(t, http.StatusNotFound)
	log, _ = e.store.AuditLog(ctx, 0, 0, 50)
	var actions []string
	for _, l := range log {
		actions = append(actions, l.Action)
	}
	for _, want := range []string{"operator.account.create", "operator.account.delete"} {
		if !strings.Contains(strings.Join(actions, " "), want) {
			t.Errorf("audit lacks %s: %v", want, actions)
		}
	}
	b.get("/admin/op/audit").want(t, http.StatusOK, "operator.account.delete")
	b.get("/admin/op/users").want(t, http.StatusOK, "boss@new.example")
	b.get("/admin/op/logins").want(t, http.StatusOK, op.Email, "ok")
}

func TestOperatorSettingsShownOnInfoPage(t *testing.T) {
	e := newEnv(t)
	b := e.login(e.user(0, "", true))
	b.get("/admin/op/settings").want(t, http.StatusOK, "Sub-processors")
	bad := url.Values{"name": {"Host <b>Ltd</b>"}, "contact_email": {"privacy@host.example"}, "country": {"Germany"},
		"subprocessors": {"Mailgun | sending"}}
	b.post("/admin/op/settings", bad).want(t, http.StatusUnprocessableEntity, "line 1 must read", "Mailgun | sending", "Host &lt;b&gt;Ltd&lt;/b&gt;")
	if _, err := e.store.GetSetting(ctx, tidings.SettingPlatformDetails); err != tidings.ErrNotFound {
		t.Fatal("invalid settings were stored")
	}
	bad.Set("subprocessors", "")
	bad.Set("contact_email", "nope")
	b.post("/admin/op/settings", bad).want(t, http.StatusUnprocessableEntity, "contact email")
	good := url.Values{"name": {"Host Ltd"}, "contact_email": {"privacy@host.example"}, "country": {"Germany"}, "region": {"Frankfurt"},
		"provider": {"Example Cloud"}, "subprocessors": {"Relay Inc | email delivery | Ireland (EU)\n\nBackup AG | <i>backups</i> | Switzerland\n"}}
	b.post("/admin/op/settings", good).want(t, http.StatusSeeOther)
	b.get("/admin/op/settings").want(t, http.StatusOK, "Relay Inc | email delivery | Ireland (EU)", `value="Frankfurt"`)

	info := e.browser().get("/portal/info/"+itoa(e.a.ID)).want(t, http.StatusOK, "Host Ltd", "privacy@host.example",
		"Example Cloud, Frankfurt, Germany", "Relay Inc", "email delivery", "Ireland (EU)", "&lt;i&gt;backups&lt;/i&gt;")
	_ = info
	log, _ := e.store.AuditLog(ctx, 0, 0, 10)
	if len(log) == 0 || log[0].Action != "operator.settings" {
		t.Fatalf("audit: %+v", log)
	}
}

func TestRecordsOfProcessing(t *testing.T) {
	e := newEnv(t)
	acc := e.a
	acc.TrackingEnabled = true
	acc.EditableAttributes = []string{"city"}
	acc.Name = "Tracker *Co* <x>"
	if err := e.store.UpdateAccount(ctx, &acc); err != nil {
		t.Fatal(err)
	}
	if err := tidings.SavePlatform(ctx, e.store, tidings.Platform{Name: "Host Ltd", ContactEmail: "privacy@host.example", Country: "Germany",
		SubProcessors: []tidings.SubProcessor{{Name: "Relay Inc", Purpose: "email delivery", Location: "Ireland"}}}); err != nil {
		t.Fatal(err)
	}
	b := e.login(e.user(0, "", true))
	p := b.get("/admin/op/records").want(t, http.StatusOK, "Host Ltd", "privacy@host.example", "Relay Inc", "Ireland",
		"Tracker *Co* &lt;x&gt;", e.b.Name, "Tracking of opens and clicks", "including city", "AES-256-GCM", "argon2id", "7 days",
		"locked for 15 minutes after 5 failures", "12 hours at most")
	// Tracking is stated only for the account that turned it on.
	if strings.Count(p.body, "Tracking of opens and clicks") != 1 {
		t.Fatal("tracking listed for an account without it")
	}
	md := b.get("/admin/op/records.md").want(t, http.StatusOK, "# Records of processing", "Host Ltd", "Relay Inc", e.b.Name,
		`Tracker \*Co\* \<x\>`, "AES-256-GCM")
	if cd := md.header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment;") || !strings.Contains(cd, ".md") {
		t.Fatalf("Content-Disposition %q", cd)
	}
	if ct := md.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/markdown") {
		t.Fatalf("Content-Type %q", ct)
	}
}

func TestRecordsPageThroughAccounts(t *testing.T) {
	e := newEnv(t)
	for i := range 1100 {
		a := tidings.Account{PostalAddress: "1 Example Street, Exampletown", Name: "Bulk " + itoa(int64(i)), ContactEmail: "c@example.org"}
		if err := e.store.CreateAccount(ctx, &a); err != nil {
			t.Fatal(err)
		}
	}
	b := e.login(e.user(0, "", true))
	p := b.get("/admin/op/records").want(t, http.StatusOK, "Next accounts")
	if strings.Contains(p.body, "Bulk 1099 ") || !strings.Contains(p.body, "Bulk 0 ") {
		t.Fatal("the first page holds every account")
	}
	md := b.get("/admin/op/records.md").want(t, http.StatusOK, "Bulk 0 ", "Bulk 1099 ")
	_ = md
}

func TestOperatorTermsForceAcceptance(t *testing.T) {
	e := newEnv(t)
	op := e.user(0, "", true)
	staff := e.user(e.a.ID, tidings.RoleEditor, false)
	b := e.login(op)
	s := e.login(staff)
	b.post("/admin/op/terms", url.Values{"text": {"  "}}).want(t, http.StatusUnprocessableEntity, "text: is required")
	p := b.post("/admin/op/terms", url.Values{"text": {"Use <b>responsibly</b>."}})
	if p.status != http.StatusSeeOther || !strings.Contains(p.location, "done=published") {
		t.Fatalf("publish: %d %q", p.status, p.location)
	}
	// Everyone, the operator included, must accept before going on.
	if p := s.get("/admin/a/" + itoa(e.a.ID) + "/lists"); p.status != http.StatusSeeOther || p.location != "/admin/terms" {
		t.Fatalf("staff after publish: %d %q", p.status, p.location)
	}
	if p := b.get("/admin/op/terms"); p.location != "/admin/terms" {
		t.Fatalf("operator after publish: %d %q", p.status, p.location)
	}
	s.post("/admin/terms", url.Values{"version": {"1"}, "accept": {"yes"}}).want(t, http.StatusSeeOther)
	b.post("/admin/terms", url.Values{"version": {"1"}, "accept": {"yes"}}).want(t, http.StatusSeeOther)
	b.get("/admin/op/terms").want(t, http.StatusOK, "Version 1", "Use &lt;b&gt;responsibly&lt;/b&gt;.", staff.Email, "127.0.0.1")
	log, _ := e.store.AuditLog(ctx, 0, 0, 10)
	if len(log) == 0 || log[0].Action != "operator.terms.publish" {
		t.Fatalf("audit: %+v", log)
	}
}

func TestOperatorOutbox(t *testing.T) {
	e := newEnv(t)
	b := e.login(e.user(0, "", true))
	// A reset mail lands in the outbox.
	staff := e.user(e.a.ID, tidings.RoleViewer, false)
	e.browser().post("/admin/reset", url.Values{"email": {staff.Email}}).want(t, http.StatusOK)
	list := b.get("/admin/op/outbox").want(t, http.StatusOK, "Reset your Tidings password", staff.Email)
	m := regexp.MustCompile(`href="/admin/op/outbox/([^"]+)"`).FindStringSubmatch(list.body)
	if m == nil {
		t.Fatalf("no message link:\n%s", list.body)
	}
	b.get("/admin/op/outbox/"+m[1]).want(t, http.StatusOK, `<pre class="mail">`, "Subject: Reset your Tidings password")
	b.get("/admin/op/outbox/1.1_1.tidings").want(t, http.StatusNotFound)
}
