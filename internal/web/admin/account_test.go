package admin_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tidings/tidings/internal/postman"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
)

func (e *env) account(id int64) tidings.Account {
	e.t.Helper()
	a, err := e.store.GetAccount(ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

func settingsForm(a tidings.Account) url.Values {
	return url.Values{"name": {a.Name}, "postal_address": {a.PostalAddress}, "contact_email": {a.ContactEmail},
		"privacy_policy_url": {a.PrivacyPolicyURL}, "editable_attributes": {strings.Join(a.EditableAttributes, ",")},
		"inactive_days": {fmt.Sprint(a.InactiveDays)}, "public_page_url": {a.PublicPageURL}}
}

func TestSettingsAccessAndSave(t *testing.T) {
	e := newEnv(t)
	a := "/admin/a/" + itoa(e.a.ID)
	for _, role := range []tidings.Role{tidings.RoleViewer, tidings.RoleEditor} {
		b := e.login(e.user(e.a.ID, role, false))
		b.get(a+"/settings").want(t, http.StatusForbidden)
		b.post(a+"/settings", settingsForm(e.a)).want(t, http.StatusForbidden)
	}
	// Another account's admin: as if it did not exist.
	e.login(e.user(e.b.ID, tidings.RoleOwner, false)).get(a+"/settings").want(t, http.StatusNotFound)

	admin := e.login(e.user(e.a.ID, tidings.RoleAdmin, false))
	admin.get(a+"/settings").want(t, http.StatusOK, `value="Controller A"`, "dpo@example.org", e.srv.URL+"/verify/"+itoa(e.a.ID))

	// A bad address re-renders with what was typed (escaped), and changes nothing.
	f := settingsForm(e.a)
	f.Set("name", "<script>alert(1)</script> Ltd")
	f.Set("contact_email", "not an address")
	f.Set("editable_attributes", "city, company")
	p := admin.post(a+"/settings", f).want(t, http.StatusUnprocessableEntity, "contact email", "&lt;script&gt;alert(1)&lt;/script&gt; Ltd", `value="city, company"`)
	if strings.Contains(p.body, "<script>alert") {
		t.Fatal("the name is not escaped")
	}
	f.Set("contact_email", "dpo@example.org")
	f.Set("inactive_days", "soon")
	admin.post(a+"/settings", f).want(t, http.StatusUnprocessableEntity, "whole number", `value="soon"`)
	f.Set("inactive_days", "-3")
	admin.post(a+"/settings", f).want(t, http.StatusUnprocessableEntity, "inactive days")
	f.Set("inactive_days", "365")
	f.Set("event_days", "400") // accounts may only shorten the instance's 183 days
	admin.post(a+"/settings", f).want(t, http.StatusUnprocessableEntity, "event days")
	f.Set("event_days", "30")
	f.Set("unconfirmed_days", "2")
	f.Set("editable_attributes", "city, no good")
	admin.post(a+"/settings", f).want(t, http.StatusUnprocessableEntity, "editable attributes")
	if got := e.account(e.a.ID); got.Name != "Controller A" || got.InactiveDays != 0 {
		t.Fatalf("a rejected form changed the account: %+v", got)
	}
	if e.audited(e.a.ID, "settings.update", "") {
		t.Fatal("a rejected form was audited")
	}

	f.Set("editable_attributes", "city, company,")
	f.Set("tracking_enabled", "on")
	f.Set("require_totp", "on")
	f.Set("name", "Shop & Co")
	if p := admin.post(a+"/settings", f); p.status != http.StatusSeeOther || p.location != a+"/settings?done=saved" {
		t.Fatalf("save: %d %q\n%s", p.status, p.location, p.body)
	}
	got := e.account(e.a.ID)
	if got.Name != "Shop & Co" || !got.TrackingEnabled || got.AnonymousCounts || !got.RequireTOTP || got.InactiveDays != 365 ||
		got.EventDays != 30 || got.UnconfirmedDays != 2 || strings.Join(got.EditableAttributes, "|") != "city|company" {
		t.Fatalf("saved account: %+v", got)
	}
	if !e.audited(e.a.ID, "settings.update", "account "+itoa(e.a.ID)) {
		t.Fatal("settings.update not audited")
	}
	if e.account(e.b.ID).Name != "Controller B" {
		t.Fatal("another account changed")
	}
}

func TestConsentTextPublish(t *testing.T) {
	e := newEnv(t)
	a := "/admin/a/" + itoa(e.a.ID)
	owner := e.login(e.user(e.a.ID, tidings.RoleOwner, false))
	owner.get(a+"/settings").want(t, http.StatusOK, "No consent text published yet")
	owner.post(a+"/settings/consent", url.Values{"consent_text": {"   "}}).want(t, http.StatusUnprocessableEntity, "consent text: is required")
	if p := owner.post(a+"/settings/consent", url.Values{"consent_text": {"I agree to <b>news</b>."}}); p.status != http.StatusSeeOther {
		t.Fatalf("publish: %d\n%s", p.status, p.body)
	}
	owner.get(a+"/settings").want(t, http.StatusOK, "Current version: 1", "I agree to &lt;b&gt;news&lt;/b&gt;.")
	if tx, err := e.store.ConsentText(ctx, e.a.ID, 0); err != nil || tx.Version != 1 {
		t.Fatalf("consent text: %+v %v", tx, err)
	}
	if _, err := e.store.ConsentText(ctx, e.b.ID, 0); err == nil {
		t.Fatal("the text landed in another account")
	}
	if !e.audited(e.a.ID, "consent_text.publish", "consent text 1") {
		t.Fatal("not audited")
	}
	e.login(e.user(e.a.ID, tidings.RoleEditor, false)).post(a+"/settings/consent", url.Values{"consent_text": {"x"}}).want(t, http.StatusForbidden)
}

func TestPublicPageVerification(t *testing.T) {
	e := newEnv(t)
	a := "/admin/a/" + itoa(e.a.ID)
	verifyURL := e.srv.URL + "/verify/" + itoa(e.a.ID)
	pages := map[string]string{
		"/good":  `<html><body><p>Our newsletter: <a href="` + verifyURL + `/">check it is us</a></p></body></html>`,
		"/other": `<html><body><a href="` + e.srv.URL + "/verify/" + itoa(e.b.ID) + `">someone else</a> ` + verifyURL + `</body></html>`,
		"/big":   `<a href="` + verifyURL + `">x</a>` + strings.Repeat(" ", 1<<20),
	}
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/moved":
			http.Redirect(w, r, "/good", http.StatusFound)
		case "/away":
			http.Redirect(w, r, strings.Replace(e.srv.URL, "127.0.0.1", "localhost", 1)+"/good", http.StatusFound)
		default:
			if body, ok := pages[r.URL.Path]; ok {
				fmt.Fprint(w, body)
				return
			}
			http.NotFound(w, r)
		}
	}))
	defer site.Close()

	anon := e.browser()
	anon.get("/verify/999999").want(t, http.StatusNotFound)
	anon.get("/verify/abc").want(t, http.StatusNotFound)
	anon.get("/verify/"+itoa(e.a.ID)).want(t, http.StatusOK, "Controller A", "no verified page")

	owner := e.login(e.user(e.a.ID, tidings.RoleOwner, false))
	owner.post(a+"/settings/verify", nil).want(t, http.StatusUnprocessableEntity, "public page")
	setPage := func(u string) {
		t.Helper()
		acc := e.account(e.a.ID)
		acc.PublicPageURL = u
		if err := e.store.UpdateAccount(ctx, &acc); err != nil {
			t.Fatal(err)
		}
	}
	for path, why := range map[string]string{
		"/other":   "no link",
		"/missing": "status 404",
		"/big":     "larger than 1 MB",
		"/away":    "another host",
	} {
		setPage(site.URL + path)
		owner.post(a+"/settings/verify", nil).want(t, http.StatusUnprocessableEntity, "Not verified", why)
		if e.account(e.a.ID).PublicPageVerifiedAt != nil {
			t.Fatalf("%s: verified", path)
		}
	}
	// Plain HTTP only to loopback; this one is never dialled.
	setPage("http://example.com/news")
	owner.post(a+"/settings/verify", nil).want(t, http.StatusUnprocessableEntity, "HTTPS")
	anon.get("/verify/"+itoa(e.a.ID)).want(t, http.StatusOK, "no verified page")
	if strings.Contains(anon.get("/verify/"+itoa(e.a.ID)).body, "example.com/news") {
		t.Fatal("an unverified public page is shown")
	}

	// Another account's admin cannot trigger the check.
	e.login(e.user(e.b.ID, tidings.RoleAdmin, false)).post(a+"/settings/verify", nil).want(t, http.StatusNotFound)
	e.login(e.user(e.a.ID, tidings.RoleEditor, false)).post(a+"/settings/verify", nil).want(t, http.StatusForbidden)

	setPage(site.URL + "/moved") // a redirect on the same host is followed
	if p := owner.post(a+"/settings/verify", nil); p.status != http.StatusSeeOther || p.location != a+"/settings?done=verified" {
		t.Fatalf("verify: %d %q\n%s", p.status, p.location, p.body)
	}
	if e.account(e.a.ID).PublicPageVerifiedAt == nil {
		t.Fatal("not marked verified")
	}
	if !e.audited(e.a.ID, "settings.verify", "") {
		t.Fatal("not audited")
	}
	owner.get(a+"/settings").want(t, http.StatusOK, "verified ")
	anon.get("/verify/"+itoa(e.a.ID)).want(t, http.StatusOK, site.URL+"/moved")
	// Account B stays unverified.
	if strings.Contains(anon.get("/verify/"+itoa(e.b.ID)).body, site.URL) {
		t.Fatal("B's verification page shows A's page")
	}
	// Changing the address ends the verification.
	f := settingsForm(e.account(e.a.ID))
	f.Set("public_page_url", site.URL+"/other")
	owner.post(a+"/settings", f).want(t, http.StatusSeeOther)
	if strings.Contains(anon.get("/verify/"+itoa(e.a.ID)).body, site.URL) {
		t.Fatal("a changed, unverified page is still shown")
	}
}

func TestVerificationPageContents(t *testing.T) {
	e := newEnv(t)
	acc := e.account(e.a.ID)
	acc.Name = `<script>alert("x")</script>`
	if err := e.store.UpdateAccount(ctx, &acc); err != nil {
		t.Fatal(err)
	}
	l := tidings.NewList("Weekly <news>")
	if err := e.store.CreateList(ctx, e.a.ID, &l); err != nil {
		t.Fatal(err)
	}
	owner := e.login(e.user(e.a.ID, tidings.RoleOwner, false))
	owner.post("/admin/a/"+itoa(e.a.ID)+"/domains", url.Values{"domain": {"news.shop.example"}}).want(t, http.StatusSeeOther)
	p := e.browser().get("/verify/"+itoa(e.a.ID)).want(t, http.StatusOK, "&lt;script&gt;", "news.shop.example", "Weekly &lt;news&gt;", e.srv.URL+"/s/", e.srv.URL+"/portal")
	if strings.Contains(p.body, "<script>") {
		t.Fatal("the name is not escaped")
	}
	if strings.Contains(p.body, `class="tabs"`) {
		t.Fatal("the public page shows the admin navigation")
	}
	if b := e.browser().get("/verify/" + itoa(e.b.ID)); strings.Contains(b.body, "news.shop.example") || strings.Contains(b.body, "Weekly") {
		t.Fatal("another account's domains or lists are shown")
	}
}

var retireRE = regexp.MustCompile(`/domains/keys/(\d+)/retire`)

func TestSendingDomains(t *testing.T) {
	e := newEnv(t)
	a := "/admin/a/" + itoa(e.a.ID)
	viewer := e.login(e.user(e.a.ID, tidings.RoleViewer, false))
	viewer.get(a+"/domains").want(t, http.StatusOK, "No sending domains yet")
	viewer.post(a+"/domains", url.Values{"domain": {"news.shop.example"}}).want(t, http.StatusForbidden)
	e.login(e.user(e.b.ID, tidings.RoleOwner, false)).get(a+"/domains").want(t, http.StatusNotFound)

	admin := e.login(e.user(e.a.ID, tidings.RoleAdmin, false))
	admin.post(a+"/domains", url.Values{"domain": {"not a <domain>"}, "selector": {"s1"}}).want(t, http.StatusUnprocessableEntity, "domain:", `value="not a &lt;domain&gt;"`, `value="s1"`)
	admin.post(a+"/domains", url.Values{"domain": {"news.shop.example"}, "selector": {"bad selector"}}).want(t, http.StatusUnprocessableEntity, "selector")
	if ds, _ := e.store.SendingDomains(ctx, e.a.ID); len(ds) != 0 {
		t.Fatalf("a rejected form stored %+v", ds)
	}
	if p := admin.post(a+"/domains", url.Values{"domain": {"News.Shop.Example"}, "selector": {"s1"}}); p.status != http.StatusSeeOther {
		t.Fatalf("add domain: %d\n%s", p.status, p.body)
	}
	// The same selector again would clash: refused whole.
	admin.post(a+"/domains", url.Values{"domain": {"news.shop.example"}, "selector": {"s1"}}).want(t, http.StatusUnprocessableEntity, "used on this domain already")
	ds, _ := e.store.SendingDomains(ctx, e.a.ID)
	if len(ds) != 1 || len(ds[0].Keys) != 2 || ds[0].Keys[0].Selector != "s1-rsa" || ds[0].Keys[1].Selector != "s1-ed25519" {
		t.Fatalf("domains: %+v", ds)
	}
	p := viewer.get(a+"/domains").want(t, http.StatusOK, "s1-rsa._domainkey.news.shop.example. IN TXT", "v=DKIM1; k=rsa; p=MII",
		"s1-ed25519._domainkey.news.shop.example. IN TXT &#34;v=DKIM1; k=ed25519; p=", "v=spf1", "_dmarc.news.shop.example", "signing")
	if strings.Contains(p.body, "/retire") || strings.Contains(p.body, "PRIVATE KEY") {
		t.Fatal("a viewer sees the retire buttons, or a private key is shown")
	}
	if !e.audited(e.a.ID, "dkim.add", "dkim key "+itoa(ds[0].Keys[0].ID)) {
		t.Fatal("not audited")
	}
	p = admin.get(a + "/domains")
	ids := retireRE.FindAllStringSubmatch(p.body, -1)
	if len(ids) != 2 {
		t.Fatalf("retire buttons: %v", ids)
	}
	key := ids[0][1]
	viewer.post(a+"/domains/keys/"+key+"/retire", nil).want(t, http.StatusForbidden)
	// B's admin, through B's own URL: not found, and nothing changed.
	bAdmin := e.login(e.user(e.b.ID, tidings.RoleAdmin, false))
	bAdmin.post("/admin/a/"+itoa(e.b.ID)+"/domains/keys/"+key+"/retire", nil).want(t, http.StatusNotFound)
	if p := admin.post(a+"/domains/keys/"+key+"/retire", nil); p.status != http.StatusSeeOther {
		t.Fatalf("retire: %d\n%s", p.status, p.body)
	}
	admin.post(a+"/domains/keys/"+key+"/retire", nil).want(t, http.StatusNotFound)
	ds, _ = e.store.SendingDomains(ctx, e.a.ID)
	if ds[0].Keys[0].RetiredAt == nil || ds[0].Keys[1].RetiredAt != nil {
		t.Fatalf("retired: %+v", ds[0].Keys)
	}
	viewer.get(a+"/domains").want(t, http.StatusOK, "retired ")
	if !e.audited(e.a.ID, "dkim.retire", "dkim key "+key) {
		t.Fatal("retire not audited")
	}
}

// TestDomainDNSCheck: any member may check a domain's records, which shows, key by key,
// what the DNS holds beside what to publish, and whether the domain is ready to sign;
// another account's domain is not found.
func TestDomainDNSCheck(t *testing.T) {
	e := newEnv(t)
	a := "/admin/a/" + itoa(e.a.ID)
	admin := e.login(e.user(e.a.ID, tidings.RoleAdmin, false))
	admin.post(a+"/domains", url.Values{"domain": {"news.shop.example"}, "selector": {"s1"}}).want(t, http.StatusSeeOther)
	ds, err := e.store.SendingDomains(ctx, e.a.ID)
	if err != nil || len(ds) != 1 {
		t.Fatal(ds, err)
	}
	check := a + "/domains/" + itoa(ds[0].ID) + "/check"
	viewer := e.login(e.user(e.a.ID, tidings.RoleViewer, false))
	p := viewer.post(check, nil).want(t, http.StatusOK, "DNS checked", "not every signing key is published", "In the DNS")
	if strings.Count(p.body, "not found") != 4 { // two keys, SPF and DMARC
		t.Fatalf("an empty zone: %d records not found, want 4\n%s", strings.Count(p.body, "not found"), p.body)
	}
	viewer.get(a+"/domains").want(t, http.StatusOK, "Check DNS") // the plain page checks nothing
	if strings.Contains(viewer.get(a+"/domains").body, "DNS checked") {
		t.Fatal("the domains page shows a check nobody asked for")
	}

	// Publish the RSA key; put another key where the Ed25519 one belongs.
	rsaName, rsaValue, _, _ := postman.DKIMRecord(ds[0].Domain, ds[0].Keys[0])
	edName, _, _, _ := postman.DKIMRecord(ds[0].Domain, ds[0].Keys[1])
	other, _ := postman.NewDKIMKey("ed25519", "x")
	_, otherValue, _, _ := postman.DKIMRecord(ds[0].Domain, other)
	e.dns.SetTXT(rsaName, rsaValue)
	e.dns.SetTXT(edName, otherValue)
	e.dns.SetTXT("_dmarc.news.shop.example", "v=DMARC1; p=none")
	viewer.post(check, nil).want(t, http.StatusOK, `class="dns-published">published`, `class="dns-different">another key`, "the record holds another key",
		"found, <code>v=DMARC1; p=none</code>", "not every signing key is published")

	// Both published: ready.
	_, edValue, _, _ := postman.DKIMRecord(ds[0].Domain, ds[0].Keys[1])
	e.dns.SetTXT(edName, edValue)
	p = viewer.post(check, nil).want(t, http.StatusOK, "every signing key is published, so receivers can verify")
	if strings.Count(p.body, `class="dns-published">published`) != 2 {
		t.Fatalf("both keys published:\n%s", p.body)
	}

	// B's members, by B's URL or A's: not found.
	bOwner := e.login(e.user(e.b.ID, tidings.RoleOwner, false))
	bOwner.post("/admin/a/"+itoa(e.b.ID)+"/domains/"+itoa(ds[0].ID)+"/check", nil).want(t, http.StatusNotFound)
	bOwner.post(check, nil).want(t, http.StatusNotFound)
	viewer.post(a+"/domains/999999/check", nil).want(t, http.StatusNotFound)
}

var secretTokenRE = regexp.MustCompile(`id="secret" value="(tid_[^"]+)"`)
var deleteTokenRE = regexp.MustCompile(`/tokens/(\d+)/delete`)

func TestAPITokens(t *testing.T) {
	e := newEnv(t)
	a := "/admin/a/" + itoa(e.a.ID)
	e.login(e.user(e.a.ID, tidings.RoleEditor, false)).get(a+"/tokens").want(t, http.StatusForbidden)
	e.login(e.user(e.b.ID, tidings.RoleOwner, false)).get(a+"/tokens").want(t, http.StatusNotFound)

	admin := e.login(e.user(e.a.ID, tidings.RoleAdmin, false))
	admin.get(a+"/tokens").want(t, http.StatusOK, "No API tokens")
	admin.post(a+"/tokens", url.Values{"name": {""}}).want(t, http.StatusUnprocessableEntity, "name: is required")
	admin.post(a+"/tokens", url.Values{"name": {strings.Repeat("x", 201)}}).want(t, http.StatusUnprocessableEntity, "name: must be at most 200")
	p := admin.post(a+"/tokens", url.Values{"name": {"Web <site>"}}).want(t, http.StatusCreated, "only time", "Web &lt;site&gt;")
	secret := secretTokenRE.FindStringSubmatch(p.body)[1]
	if !strings.Contains(p.body, secret[:8]+"…") {
		t.Fatal("the prefix is not listed")
	}
	// The token works, for this account.
	req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/account", nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	if res := admin.do(req); res.status != http.StatusOK || !strings.Contains(res.body, `"id":`+itoa(e.a.ID)) {
		t.Fatalf("API with the new token: %d %s", res.status, res.body)
	}
	// Listed later without the secret, and with its last use.
	p = admin.get(a+"/tokens").want(t, http.StatusOK, "Web &lt;site&gt;", secret[:8])
	if strings.Contains(p.body, secret) {
		t.Fatal("the secret is shown again")
	}
	if strings.Count(p.body, "UTC") < 2 {
		t.Fatal("last use not shown")
	}
	id := deleteTokenRE.FindStringSubmatch(p.body)[1]
	if !e.audited(e.a.ID, "token.create", "token "+id) {
		t.Fatal("create not audited")
	}
	bAdmin := e.login(e.user(e.b.ID, tidings.RoleAdmin, false))
	bAdmin.post("/admin/a/"+itoa(e.b.ID)+"/tokens/"+id+"/delete", nil).want(t, http.StatusNotFound)
	if p := admin.post(a+"/tokens/"+id+"/delete", nil); p.status != http.StatusSeeOther {
		t.Fatalf("delete: %d", p.status)
	}
	if res := admin.do(req); res.status != http.StatusUnauthorized {
		t.Fatalf("deleted token still works: %d", res.status)
	}
	if !e.audited(e.a.ID, "token.delete", "token "+id) {
		t.Fatal("delete not audited")
	}
}

func TestAuditLogPage(t *testing.T) {
	e := newEnv(t)
	a := "/admin/a/" + itoa(e.a.ID)
	owner := e.user(e.a.ID, tidings.RoleOwner, false)
	for i := range 60 {
		for _, acc := range []int64{e.a.ID, e.b.ID} {
			if err := e.store.Audit(ctx, tidings.AuditEntry{AccountID: acc, UserID: owner.ID, Action: "test.action",
				Target: fmt.Sprintf("thing %d of %d", i, acc), IP: "192.0.2.1", At: time.Now()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	e.login(e.user(e.a.ID, tidings.RoleAdmin, false)).get(a+"/audit").want(t, http.StatusForbidden)
	e.login(e.user(e.b.ID, tidings.RoleOwner, false)).get(a+"/audit").want(t, http.StatusNotFound)
	b := e.login(owner)
	p := b.get(a+"/audit").want(t, http.StatusOK, "thing 59 of "+itoa(e.a.ID), owner.Email, "Older entries")
	if strings.Contains(p.body, "thing 9 of "+itoa(e.a.ID)+"<") || strings.Contains(p.body, "of "+itoa(e.b.ID)+"<") {
		t.Fatal("first page shows too much, or another account's entries")
	}
	next := regexp.MustCompile(`href="([^"]+audit\?before=\d+)"`).FindStringSubmatch(p.body)[1]
	p = b.get(next).want(t, http.StatusOK, "thing 9 of "+itoa(e.a.ID), "thing 0 of "+itoa(e.a.ID))
	if strings.Contains(p.body, "thing 59 of") || strings.Contains(p.body, "Older entries") {
		t.Fatal("second page repeats, or claims more")
	}
}

// A sending domain belongs to one account: B cannot add A's (in any spelling), is told
// to ask the operator without learning whose it is, and so cannot sign as A or see the
// mail sent from A's domain. Both engines.
func TestSendingDomainOfAnotherAccount(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			e := newEnvWith(t, testdb.Open(t, engine))
			a, b := "/admin/a/"+itoa(e.a.ID), "/admin/a/"+itoa(e.b.ID)
			e.login(e.user(e.a.ID, tidings.RoleOwner, false)).post(a+"/domains", url.Values{"domain": {"news.shop.example"}}).want(t, http.StatusSeeOther)
			ob := e.login(e.user(e.b.ID, tidings.RoleOwner, false))
			for _, d := range []string{"news.shop.example", "NEWS.Shop.Example"} {
				p := ob.post(b+"/domains", url.Values{"domain": {d}, "selector": {"b1"}}).
					want(t, http.StatusUnprocessableEntity, "already used by another account on this instance", `value="`+d+`"`)
				if strings.Contains(p.body, "Controller A") {
					t.Fatal("the error names the account that holds the domain")
				}
			}
			if ds, _ := e.store.SendingDomains(ctx, e.b.ID); len(ds) != 0 {
				t.Fatalf("B holds %+v", ds)
			}
			if ds, _ := e.store.SendingDomains(ctx, e.a.ID); len(ds) != 1 || len(ds[0].Keys) != 2 {
				t.Fatalf("A's domain changed: %+v", ds)
			}
			ob.get(b+"/domains").want(t, http.StatusOK, "No sending domains yet")
		})
	}
}

var removeDomainRE = regexp.MustCompile(`/domains/(\d+)/remove`)

// An account admin removes a sending domain: not while a campaign not yet sent sends
// from it (a draft too); then mail no longer goes out from it, its keys are listed as retired under
// "Removed domains" (their public keys, for verifying stored proofs), and the domain is
// free for another account, though not with a selector used on it. Both engines.
func TestRemoveSendingDomain(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			e := newEnvWith(t, testdb.Open(t, engine))
			a, b := "/admin/a/"+itoa(e.a.ID), "/admin/a/"+itoa(e.b.ID)
			admin := e.login(e.user(e.a.ID, tidings.RoleAdmin, false))
			admin.post(a+"/domains", url.Values{"domain": {"news.shop.example"}}).want(t, http.StatusSeeOther)
			m := removeDomainRE.FindStringSubmatch(admin.get(a + "/domains").body)
			if m == nil {
				t.Fatal("no remove button")
			}
			remove := a + "/domains/" + m[1] + "/remove"
			viewer := e.login(e.user(e.a.ID, tidings.RoleViewer, false))
			if p := viewer.get(a + "/domains"); strings.Contains(p.body, "/remove") {
				t.Fatal("a viewer sees the remove button")
			}
			viewer.post(remove, nil).want(t, http.StatusForbidden)
			bAdmin := e.login(e.user(e.b.ID, tidings.RoleAdmin, false))
			bAdmin.post(b+"/domains/"+m[1]+"/remove", nil).want(t, http.StatusNotFound)

			l := tidings.NewList("News")
			if err := e.store.CreateList(ctx, e.a.ID, &l); err != nil {
				t.Fatal(err)
			}
			at := time.Now().Add(time.Hour)
			c := tidings.Campaign{Name: "Weekly", Subject: "S", FromAddress: "news@news.shop.example", HTML: "<p>x</p>", Lists: []int64{l.ID}, ScheduledAt: &at}
			if err := e.store.CreateCampaign(ctx, e.a.ID, &c); err != nil {
				t.Fatal(err)
			}
			if err := e.store.SetCampaignStatus(ctx, e.a.ID, c.ID, tidings.CampaignScheduled, ""); err != nil {
				t.Fatal(err)
			}
			admin.post(remove, nil).want(t, http.StatusConflict, "not removed", "Weekly", "cancel it")
			if ds, _ := e.store.SendingDomains(ctx, e.a.ID); len(ds) != 1 {
				t.Fatalf("a refused removal removed: %+v", ds)
			}
			if err := e.store.SetCampaignStatus(ctx, e.a.ID, c.ID, tidings.CampaignDraft, ""); err != nil {
				t.Fatal(err)
			}
			admin.post(remove, nil).want(t, http.StatusConflict, "Weekly", "change its From address")
			c.FromAddress = "news@elsewhere.example"
			if err := e.store.UpdateCampaign(ctx, e.a.ID, &c); err != nil {
				t.Fatal(err)
			}
			admin.post(remove, nil).want(t, http.StatusSeeOther)
			if !e.audited(e.a.ID, "domain.remove", "sending domain "+m[1]) {
				t.Fatal("not audited")
			}
			if ds, _ := e.store.SendingDomains(ctx, e.a.ID); len(ds) != 0 {
				t.Fatalf("still sending from %+v", ds)
			}
			p := viewer.get(a+"/domains").want(t, http.StatusOK, "No sending domains yet", "Removed domains", "news.shop.example, removed",
				"-rsa._domainkey.news.shop.example. IN TXT", "-ed25519._domainkey.news.shop.example. IN TXT")
			if strings.Contains(p.body, "/retire") || strings.Contains(p.body, "/remove") {
				t.Fatal("a removed domain's keys can be retired or removed again")
			}
			admin.post(remove, nil).want(t, http.StatusNotFound)

			// B may take it now, with selectors never used on it: the default of the day
			// was A's.
			bAdmin.post(b+"/domains", url.Values{"domain": {"news.shop.example"}}).want(t, http.StatusUnprocessableEntity, "used on this domain already")
			bAdmin.post(b+"/domains", url.Values{"domain": {"news.shop.example"}, "selector": {"b1"}}).want(t, http.StatusSeeOther)
			if ds, _ := e.store.SendingDomains(ctx, e.b.ID); len(ds) != 1 || len(ds[0].Keys) != 2 || ds[0].Keys[0].Selector != "b1-rsa" {
				t.Fatalf("B's domains: %+v", ds)
			}
			bAdmin.get(b+"/domains").want(t, http.StatusOK, "b1-rsa")
			if p := bAdmin.get(b + "/domains"); strings.Contains(p.body, "Removed domains") {
				t.Fatal("B sees A's removed domain")
			}
		})
	}
}
