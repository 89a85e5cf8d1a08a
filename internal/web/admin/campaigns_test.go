package admin_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tidings/tidings/internal/send"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
)

const campaignDomain = "news.a.example"

// campaignSetup gives account A a sending domain, a list with a confirmed and an
// unconfirmed subscriber, and returns the list.
func (e *env) campaignSetup() tidings.List {
	e.t.Helper()
	testdb.DKIMKeys(e.t, e.store, e.a.ID, campaignDomain)
	l := tidings.NewList("Weekly")
	if err := e.store.CreateList(ctx, e.a.ID, &l); err != nil {
		e.t.Fatal(err)
	}
	for _, s := range []struct {
		email, name string
		status      tidings.SubscriptionStatus
	}{{"ada@example.net", "Ada", tidings.SubConfirmed}, {"bob@example.net", "Bob", tidings.SubUnconfirmed}} {
		sub := tidings.Subscriber{Email: tidings.MustParseAddress(s.email), Name: s.name}
		if err := e.store.CreateSubscriber(ctx, e.a.ID, &sub, []int64{l.ID}, s.status, nil); err != nil {
			e.t.Fatal(err)
		}
	}
	return l
}

func campaignForm(l tidings.List, kv ...string) url.Values {
	f := url.Values{
		"name": {"Spring news"}, "subject": {"Hello {{.Subscriber.Name}}"}, "from_name": {"Shop"},
		"from_local": {"news"}, "from_domain": {campaignDomain}, "lists": {itoa(l.ID)},
		"html": {"<html><body><p>Hi {{.Subscriber.Name}},</p>\n<p><a href=\"https://shop.example/spring\">Spring</a></p></body></html>"},
	}
	for i := 0; i+1 < len(kv); i += 2 {
		f.Set(kv[i], kv[i+1])
	}
	return f
}

var campaignIDRE = regexp.MustCompile(`/campaigns/(\d+)$`)

// createCampaign posts the compose form and returns the new campaign's path.
func createCampaign(t *testing.T, b *browser, acc tidings.Account, form url.Values) string {
	t.Helper()
	p := b.post("/admin/a/"+itoa(acc.ID)+"/campaigns", form)
	if p.status != http.StatusSeeOther || !campaignIDRE.MatchString(strings.TrimSuffix(p.location, "?done=created")) {
		t.Fatalf("create campaign: %d %q\n%s", p.status, p.location, p.body)
	}
	return strings.TrimSuffix(p.location, "?done=created")
}

func TestCampaignComposeValidation(t *testing.T) {
	e := newEnv(t)
	l := e.campaignSetup()
	b := e.login(e.user(e.a.ID, tidings.RoleEditor, false))
	base := "/admin/a/" + itoa(e.a.ID) + "/campaigns"

	b.get(base+"/new").want(t, http.StatusOK, `name="from_domain"`, `<option value="`+campaignDomain+`" selected>`, "Weekly", `name="utm_source"`)

	// A template mistake on line 2 names the line, and the form keeps what was typed.
	bad := campaignForm(l, "name", "Typed name kept", "html", "<p>Hello</p>\n<p>{{.Subscriber.Name</p>")
	p := b.post(base, bad).want(t, http.StatusUnprocessableEntity, "line 2", `value="Typed name kept"`, "{{.Subscriber.Name&lt;/p&gt;", `role="alert"`)
	if !strings.Contains(p.body, `value="`+itoa(l.ID)+`" checked`) {
		t.Fatalf("the chosen list was not kept:\n%s", p.body)
	}
	b.post(base, campaignForm(l, "subject", "Hi {{nosuchfunc .}}")).want(t, http.StatusUnprocessableEntity, "subject", "nosuchfunc")
	b.post(base, campaignForm(l, "from_domain", "elsewhere.example")).want(t, http.StatusUnprocessableEntity, "sending domains: "+campaignDomain)
	b.post(base, campaignForm(l, "lists", "")).want(t, http.StatusUnprocessableEntity, "choose at least one list")
	b.post(base, campaignForm(l, "segment", "no equals sign")).want(t, http.StatusUnprocessableEntity, "attribute=value")
	b.post(base, campaignForm(l, "scheduled_at", "tomorrow")).want(t, http.StatusUnprocessableEntity, "YYYY-MM-DDTHH:MM")
	if cs, _ := e.store.ListCampaigns(ctx, e.a.ID, tidings.Page{}); len(cs) != 0 {
		t.Fatalf("invalid forms saved %d campaigns", len(cs))
	}

	// A good one, with a segment, UTM and a schedule time, round-trips through the form.
	path := createCampaign(t, b, e.a, campaignForm(l, "segment", "plan = gold", "utm_source", "newsletter", "scheduled_at", "2099-01-02T03:04"))
	b.get(path).want(t, http.StatusOK, "plan=gold", `value="newsletter"`, `value="2099-01-02T03:04"`, `value="news"`)
	// Editing with a mistake keeps the edit; a good edit saves.
	b.post(path, campaignForm(l, "name", "Edited", "html", "{{end}}")).want(t, http.StatusUnprocessableEntity, "line 1", `value="Edited"`)
	if p := b.post(path, campaignForm(l, "name", "Edited")); p.status != http.StatusSeeOther {
		t.Fatalf("save: %d\n%s", p.status, p.body)
	}
	b.get(base).want(t, http.StatusOK, "Edited", "draft")
	log, _ := e.store.AuditLog(ctx, e.a.ID, 0, 10)
	if len(log) != 2 || log[0].Action != "campaign.update" || log[1].Action != "campaign.create" || !strings.HasPrefix(log[0].Target, "campaign ") {
		t.Fatalf("audit: %+v", log)
	}
}

func TestCampaignPreviewTestSendAndResults(t *testing.T) {
	e := newEnv(t)
	l := e.campaignSetup()
	b := e.login(e.user(e.a.ID, tidings.RoleEditor, false))
	path := createCampaign(t, b, e.a, campaignForm(l))

	// Preview renders for the confirmed subscriber; HTML is shown as source.
	b.post(path+"/preview", nil).want(t, http.StatusOK, "Hello Ada", "&lt;p&gt;Hi Ada,&lt;/p&gt;", "Hi Ada,\n")

	// Test sends: too many, bad address, then one that lands.
	b.post(path+"/test", url.Values{"to": {"a@x.example, b@x.example, c@x.example, d@x.example, e@x.example, f@x.example"}}).
		want(t, http.StatusUnprocessableEntity, "1 to 5 addresses")
	b.post(path+"/test", url.Values{"to": {"not-an-address"}}).want(t, http.StatusUnprocessableEntity, "Test recipients", `value="not-an-address"`)
	if p := b.post(path+"/test", url.Values{"to": {"tester@example.org"}}); p.status != http.StatusSeeOther || !strings.HasSuffix(p.location, "done=test-sent") {
		t.Fatalf("test send: %d %q\n%s", p.status, p.location, p.body)
	}
	if body := e.mailTo("tester@example.org", "[Test] Hello Test Recipient"); !strings.Contains(body, "Hi Test Recipient") {
		t.Fatalf("test mail body:\n%s", body)
	}
	// An address that unsubscribed gets no test either, and neither does anyone sent
	// along with it.
	if err := e.store.AddSuppression(ctx, e.a.ID, tidings.MustParseAddress("gone@example.org"), tidings.SuppressUnsubscribed); err != nil {
		t.Fatal(err)
	}
	b.post(path+"/test", url.Values{"to": {"other@example.org, gone@example.org"}}).
		want(t, http.StatusUnprocessableEntity, "gone@example.org gets no mail from this account, tests included (unsubscribed)")
	for _, to := range []string{"other@example.org", "gone@example.org"} {
		if n := e.mailsTo(to); n != 0 {
			t.Fatalf("%d test mails to %s after a refused test send", n, to)
		}
	}

	// Pausing a draft is not a move its life allows.
	b.post(path+"/pause", nil).want(t, http.StatusUnprocessableEntity, "cannot become paused")
	b.post(path+"/resume", nil).want(t, http.StatusUnprocessableEntity, "Only a paused campaign can be resumed")
	b.post(path+"/schedule", nil).want(t, http.StatusUnprocessableEntity, "set a time")

	// Send now: the page shows progress and refreshes itself.
	if p := b.post(path+"/send", nil); p.status != http.StatusSeeOther {
		t.Fatalf("send: %d\n%s", p.status, p.body)
	}
	b.get(path).want(t, http.StatusOK, `<meta http-equiv="refresh" content="2">`, "Progress", `id="remaining">1<`)
	b.post(path, campaignForm(l, "name", "Too late")).want(t, http.StatusConflict, "can no longer be changed")
	b.post(path+"/pause", nil)
	p := b.get(path).want(t, http.StatusOK, "paused", "Resume")
	if strings.Contains(p.body, `http-equiv="refresh"`) {
		t.Fatal("a paused campaign's page refreshes itself")
	}
	b.post(path+"/resume", nil)

	// The engine sends it as the server's loop would.
	eng := &send.Engine{Store: e.store, Keys: testdb.Keyring(t), Sender: e.outbox, BaseURL: e.srv.URL, Workers: 1}
	if err := eng.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if body := e.mailTo("ada@example.net", "Hello Ada"); !strings.Contains(body, "Hi Ada") {
		t.Fatalf("campaign mail:\n%s", body)
	}
	id := campaignID(t, path)
	subs, _ := e.store.ListSubscribers(ctx, e.a.ID, tidings.SubscriberFilter{})
	now := time.Now()
	// Personal events are recorded only for a reader who consents to tracking, in an
	// account that tracks.
	e.a.TrackingEnabled = true
	if err := e.store.UpdateAccount(ctx, &e.a); err != nil {
		t.Fatal(err)
	}
	if err := e.store.SetTrackingConsent(ctx, e.a.ID, subs[0].ID, true, tidings.SourceAdmin, tidings.Evidence{Note: "recorded by the test"}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.RecordEvents(ctx, []tidings.Event{
		{AccountID: e.a.ID, CampaignID: id, SubscriberID: subs[0].ID, Kind: tidings.EventOpen, Time: now},
		{AccountID: e.a.ID, CampaignID: id, Kind: tidings.EventOpen, Time: now},
		{AccountID: e.a.ID, CampaignID: id, SubscriberID: subs[0].ID, Kind: tidings.EventClick, URL: "https://shop.example/spring?<x>", Time: now.Add(time.Minute)},
	}); err != nil {
		t.Fatal(err)
	}
	p = b.get(path).want(t, http.StatusOK, "sent", "Results", `id="delivered">1<`, `id="bounced">0 hard, 0 soft<`, `id="complaints">0<`, "Personal, unique people", "/chart.svg",
		`<th scope="row">Opens</th><td class="num">1</td><td class="num">1</td><td class="num">100.0%</td><td class="num">1</td>`,
		"Top links", "https://shop.example/spring?&lt;x&gt;")
	if strings.Contains(p.body, `http-equiv="refresh"`) || strings.Contains(p.body, `name="subject"`) {
		t.Fatalf("a sent campaign shows a form or refreshes:\n%s", p.body)
	}
	if img := b.get(path + "/chart.svg"); img.status != http.StatusOK || img.header.Get("Content-Type") != "image/svg+xml" {
		t.Fatalf("chart: %d %s", img.status, img.header.Get("Content-Type"))
	}
	b.get("/admin/a/"+itoa(e.a.ID)+"/campaigns").want(t, http.StatusOK, "sent")

	var actions []string
	log, _ := e.store.AuditLog(ctx, e.a.ID, 0, 20)
	for _, en := range log {
		actions = append([]string{en.Action}, actions...)
		if strings.Contains(en.Target, "@") {
			t.Fatalf("audit target names an address: %+v", en)
		}
	}
	if got := strings.Join(actions, " "); got != "campaign.create campaign.preview campaign.test campaign.send campaign.pause campaign.resume" {
		t.Fatalf("audit: %s", got)
	}
}

func TestCampaignSchedule(t *testing.T) {
	e := newEnv(t)
	l := e.campaignSetup()
	b := e.login(e.user(e.a.ID, tidings.RoleEditor, false))
	past := createCampaign(t, b, e.a, campaignForm(l, "scheduled_at", time.Now().UTC().Add(-time.Hour).Format("2006-01-02T15:04")))
	b.post(past+"/schedule", nil).want(t, http.StatusUnprocessableEntity, "time has passed")

	path := createCampaign(t, b, e.a, campaignForm(l, "scheduled_at", "2099-05-06T07:08"))
	if p := b.post(path+"/schedule", nil); p.status != http.StatusSeeOther {
		t.Fatalf("schedule: %d\n%s", p.status, p.body)
	}
	b.get(path).want(t, http.StatusOK, "scheduled for 6 May 2099 07:08 UTC", "Unschedule")
	// A scheduled campaign keeps its time.
	b.post(path, campaignForm(l, "scheduled_at", "")).want(t, http.StatusUnprocessableEntity, "unschedule it first")
	b.post(path+"/unschedule", nil)
	b.get(path).want(t, http.StatusOK, `id="status">draft`)

	// A campaign that matches no one is done at once, and says so.
	empty := createCampaign(t, b, e.a, campaignForm(l, "segment", "plan=gold"))
	b.post(empty+"/send", nil)
	b.get(empty).want(t, http.StatusOK, `id="status">sent`, "No subscriber matched")
}

func TestCampaignListPages(t *testing.T) {
	e := newEnv(t)
	l := e.campaignSetup()
	for i := range 51 {
		c := tidings.Campaign{Name: "Campaign " + itoa(int64(i+1)), Subject: "S", FromAddress: "news@" + campaignDomain, HTML: "<p>x</p>", Lists: []int64{l.ID}}
		if err := e.store.CreateCampaign(ctx, e.a.ID, &c); err != nil {
			t.Fatal(err)
		}
	}
	b := e.login(e.user(e.a.ID, tidings.RoleViewer, false))
	base := "/admin/a/" + itoa(e.a.ID) + "/campaigns"
	p := b.get(base).want(t, http.StatusOK, ">Campaign 50<", `href="`+base+`?after=50">Next page`)
	if strings.Contains(p.body, ">Campaign 51<") {
		t.Fatal("the first page holds more than 50 campaigns")
	}
	p = b.get(base+"?after=50").want(t, http.StatusOK, ">Campaign 51<")
	if strings.Contains(p.body, "Next page") || strings.Contains(p.body, ">Campaign 50<") {
		t.Fatalf("second page:\n%s", p.body)
	}
}

func TestCampaignRolesAndTenancy(t *testing.T) {
	e := newEnv(t)
	l := e.campaignSetup()
	editor := e.login(e.user(e.a.ID, tidings.RoleEditor, false))
	path := createCampaign(t, editor, e.a, campaignForm(l))
	base := "/admin/a/" + itoa(e.a.ID) + "/campaigns"

	viewer := e.login(e.user(e.a.ID, tidings.RoleViewer, false))
	viewer.get(base).want(t, http.StatusOK, "Spring news")
	p := viewer.get(path).want(t, http.StatusOK, "Content", "Hello {{.Subscriber.Name}}", "Weekly")
	if strings.Contains(p.body, `name="subject"`) || strings.Contains(p.body, "/send\"") {
		t.Fatalf("a viewer sees the edit form or send button:\n%s", p.body)
	}
	viewer.get(path+"/chart.svg").want(t, http.StatusOK)
	viewer.get(base+"/new").want(t, http.StatusForbidden)
	for _, action := range []string{"/send", "/test", "/preview", "/pause", "", "/delete"} {
		viewer.post(path+action, url.Values{"to": {"x@example.org"}}).want(t, http.StatusForbidden)
	}
	viewer.post(base, campaignForm(l)).want(t, http.StatusForbidden)
	editor.post(path+"/delete", nil).want(t, http.StatusForbidden)

	// Another account's staff, even its owner, see nothing of it.
	other := e.login(e.user(e.b.ID, tidings.RoleOwner, false))
	otherPath := strings.Replace(path, "/a/"+itoa(e.a.ID)+"/", "/a/"+itoa(e.b.ID)+"/", 1)
	other.get(path).want(t, http.StatusNotFound)
	other.get(otherPath).want(t, http.StatusNotFound)
	other.get(otherPath+"/chart.svg").want(t, http.StatusNotFound)
	for _, action := range []string{"/send", "/test", "/preview", "/cancel", "", "/delete"} {
		other.post(otherPath+action, url.Values{"to": {"x@example.org"}}).want(t, http.StatusNotFound)
	}
	// Nor can one account's campaign target another account's list.
	lb := tidings.NewList("B list")
	if err := e.store.CreateList(ctx, e.b.ID, &lb); err != nil {
		t.Fatal(err)
	}
	editor.post(base, campaignForm(lb)).want(t, http.StatusUnprocessableEntity, "does not exist")
	if c, _ := e.store.GetCampaign(ctx, e.a.ID, campaignID(t, path)); c.Status != tidings.CampaignDraft {
		t.Fatalf("status after foreign attempts: %s", c.Status)
	}

	// An admin deletes drafts, but not campaigns that went out.
	admin := e.login(e.user(e.a.ID, tidings.RoleAdmin, false))
	sent := createCampaign(t, editor, e.a, campaignForm(l))
	editor.post(sent+"/cancel", nil)
	admin.post(sent+"/delete", nil).want(t, http.StatusConflict, "Only drafts can be deleted")
	if p := admin.post(path+"/delete", nil); p.status != http.StatusSeeOther {
		t.Fatalf("delete: %d\n%s", p.status, p.body)
	}
	editor.get(path).want(t, http.StatusNotFound)
}

func TestCampaignEscapesUserData(t *testing.T) {
	e := newEnv(t)
	l := e.campaignSetup()
	b := e.login(e.user(e.a.ID, tidings.RoleAdmin, false))
	path := createCampaign(t, b, e.a, campaignForm(l, "name", "<script>alert(1)</script>", "subject", `<img src=x onerror=alert(2)>`,
		"html", `<p>{{"<b>"}}</p><script>alert(3)</script>`))
	for _, p := range []page{b.get(path), b.get("/admin/a/" + itoa(e.a.ID) + "/campaigns"), b.post(path+"/preview", nil)} {
		if p.status != http.StatusOK {
			t.Fatalf("status %d\n%s", p.status, p.body)
		}
		for _, raw := range []string{"<script>alert", "<img src=x", "<b>"} {
			if strings.Contains(p.body, raw) {
				t.Fatalf("page carries %q unescaped:\n%s", raw, p.body)
			}
		}
		if !strings.Contains(p.body, "&lt;script&gt;alert(") {
			t.Fatalf("escaped name missing:\n%s", p.body)
		}
	}
}

func campaignID(t *testing.T, path string) int64 {
	t.Helper()
	m := campaignIDRE.FindStringSubmatch(path)
	if m == nil {
		t.Fatalf("no ID in %q", path)
	}
	var n int64
	for _, c := range m[1] {
		n = n*10 + int64(c-'0')
	}
	return n
}

func TestCampaignAsTemplate(t *testing.T) {
	e := newEnv(t)
	l := e.campaignSetup()
	b := e.login(e.user(e.a.ID, tidings.RoleEditor, false))
	path := createCampaign(t, b, e.a, campaignForm(l, "segment", "city=Lyon", "scheduled_at", "2099-01-02T03:04"))
	b.get(path).want(t, http.StatusOK, "Use as a template")
	id := itoa(campaignID(t, path))
	p := b.get("/admin/a/"+itoa(e.a.ID)+"/campaigns/new?from="+id).want(t, http.StatusOK, `value="Copy of Spring news"`, "city=Lyon", "Spring&lt;/a&gt;")
	if strings.Contains(p.body, "2099-01-02T03:04") {
		t.Fatal("the copy kept the schedule")
	}
	// Another account's campaign is no template for this one.
	other := e.login(e.user(e.b.ID, tidings.RoleOwner, false))
	other.get("/admin/a/"+itoa(e.b.ID)+"/campaigns/new?from="+id).want(t, http.StatusNotFound)
}
