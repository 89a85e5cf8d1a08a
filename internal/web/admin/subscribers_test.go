package admin_test

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/tidings/tidings/internal/consent"
	"github.com/tidings/tidings/internal/sqlstore"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
)

func (e *env) list(accountID int64, name string, doubleOptIn bool) tidings.List {
	e.t.Helper()
	l := tidings.NewList(name)
	l.DoubleOptIn = doubleOptIn
	if err := e.store.CreateList(ctx, accountID, &l); err != nil {
		e.t.Fatal(err)
	}
	return l
}

func (e *env) subscriber(accountID int64, email, name string, lists ...int64) tidings.Subscriber {
	e.t.Helper()
	s := tidings.Subscriber{Email: tidings.MustParseAddress(email), Name: name}
	if err := e.store.CreateSubscriber(ctx, accountID, &s, lists, tidings.SubConfirmed, nil); err != nil {
		e.t.Fatal(err)
	}
	return s
}

func acct(a tidings.Account, suffix string) string { return "/admin/a/" + itoa(a.ID) + suffix }

func TestSubscribersAccess(t *testing.T) {
	e := newEnv(t)
	l := e.list(e.a.ID, "News", false)
	s := e.subscriber(e.a.ID, "ada@example.net", "Ada", l.ID)
	viewer := e.login(e.user(e.a.ID, tidings.RoleViewer, false))
	editor := e.login(e.user(e.a.ID, tidings.RoleEditor, false))
	admin := e.login(e.user(e.a.ID, tidings.RoleAdmin, false))
	other := e.login(e.user(e.b.ID, tidings.RoleOwner, false))
	sp := acct(e.a, "/subscribers/"+itoa(s.ID))

	// Viewers see no personal data in bulk, nor one person's.
	for _, path := range []string{acct(e.a, "/subscribers"), sp, acct(e.a, "/dsar"), acct(e.a, "/lists/"+itoa(l.ID)+"/import")} {
		p := viewer.get(path).want(t, http.StatusForbidden)
		if strings.Contains(p.body, "ada@example.net") {
			t.Fatalf("%s shows the address to a viewer", path)
		}
	}
	viewer.post(acct(e.a, "/dsar"), url.Values{"email": {"ada@example.net"}, "kind": {"access"}}).want(t, http.StatusForbidden)
	viewer.post(sp, url.Values{"name": {"X"}, "status": {"active"}}).want(t, http.StatusForbidden)
	// Another account's user: 404 for everything, whatever the ID.
	for _, path := range []string{acct(e.a, "/subscribers"), sp, acct(e.a, "/dsar")} {
		other.get(path).want(t, http.StatusNotFound)
	}
	other.get(acct(e.b, "/subscribers/"+itoa(s.ID))).want(t, http.StatusNotFound)
	other.post(acct(e.b, "/subscribers/"+itoa(s.ID)+"/delete"), nil).want(t, http.StatusNotFound)
	other.get(acct(e.b, "/subscribers")).want(t, http.StatusOK, "No subscribers")

	editor.get(acct(e.a, "/subscribers")).want(t, http.StatusOK, "ada@example.net", "Ada")
	editor.get(sp).want(t, http.StatusOK, "ada@example.net", "News", "confirmed", `id="suppressed">sent to the lists below<`)
	// A bounced address says why it is not mailed.
	if err := e.store.AddSuppression(ctx, e.a.ID, s.Email, tidings.SuppressBounce); err != nil {
		t.Fatal(err)
	}
	editor.get(sp).want(t, http.StatusOK, `id="suppressed">not sent: the address is suppressed (bounce)<`)
	if !e.audited(e.a.ID, "subscriber.view", "subscriber "+itoa(s.ID)) {
		t.Fatal("viewing a subscriber is not audited")
	}
	// Delete needs an account admin.
	editor.post(sp+"/delete", nil).want(t, http.StatusForbidden)
	admin.post(sp+"/delete", nil).want(t, http.StatusSeeOther)
	if _, err := e.store.GetSubscriber(ctx, e.a.ID, s.ID); err != tidings.ErrNotFound {
		t.Fatalf("after delete: %v", err)
	}
	if !e.audited(e.a.ID, "subscriber.delete", "subscriber "+itoa(s.ID)) {
		t.Fatal("delete not audited")
	}
	editor.get(sp).want(t, http.StatusNotFound)
}

func TestSubscribersSearchAndPages(t *testing.T) {
	e := newEnv(t)
	news, other := e.list(e.a.ID, "News", false), e.list(e.a.ID, "Other", false)
	for i := 0; i < 55; i++ {
		e.subscriber(e.a.ID, fmt.Sprintf("p%02d@example.net", i), "", news.ID)
	}
	lone := e.subscriber(e.a.ID, "lone@example.net", "Lone", other.ID)
	e.subscriber(e.b.ID, "lone@example.net", "Lone in B")
	r := tidings.Subscriber{Email: tidings.MustParseAddress("held@example.net"), Status: tidings.StatusRestricted}
	if err := e.store.CreateSubscriber(ctx, e.a.ID, &r, nil, tidings.SubConfirmed, nil); err != nil {
		t.Fatal(err)
	}
	b := e.login(e.user(e.a.ID, tidings.RoleEditor, false))

	first := b.get(acct(e.a, "/subscribers")).want(t, http.StatusOK, "p00@example.net", "Next page")
	if strings.Contains(first.body, "p50@example.net") {
		t.Fatal("the first page holds more than 50")
	}
	next := regexp.MustCompile(`href="([^"]+)" rel="next"`).FindStringSubmatch(first.body)
	if next == nil {
		t.Fatal("no next link")
	}
	second := b.get(strings.ReplaceAll(next[1], "&amp;", "&")).want(t, http.StatusOK, "p50@example.net", "lone@example.net")
	if strings.Contains(second.body, "p00@example.net") || strings.Contains(second.body, `rel="next"`) {
		t.Fatal("second page wrong")
	}
	p := b.get(acct(e.a, "/subscribers?email=LONE@example.net")).want(t, http.StatusOK, "lone@example.net")
	if strings.Contains(p.body, "p00@") || strings.Contains(p.body, "Lone in B") {
		t.Fatal("exact search shows others")
	}
	p = b.get(acct(e.a, "/subscribers?list="+itoa(other.ID))).want(t, http.StatusOK, "/subscribers/"+itoa(lone.ID))
	if strings.Contains(p.body, "p00@") {
		t.Fatal("list filter shows others")
	}
	p = b.get(acct(e.a, "/subscribers?status=restricted")).want(t, http.StatusOK, "held@example.net")
	if strings.Contains(p.body, "lone@") {
		t.Fatal("status filter shows others")
	}
	b.get(acct(e.a, "/subscribers?email=not-an-address")).want(t, http.StatusUnprocessableEntity, "Search:", `value="not-an-address"`)
	b.get(acct(e.a, "/subscribers?status=gone")).want(t, http.StatusUnprocessableEntity, "Status:")
	// Another account's list ID finds nothing here.
	bl := e.list(e.b.ID, "B list", false)
	b.get(acct(e.a, "/subscribers?list="+itoa(bl.ID))).want(t, http.StatusOK, "No subscribers match")
}

func subscriberID(t *testing.T, p page) int64 {
	t.Helper()
	m := regexp.MustCompile(`/subscribers/(\d+)`).FindStringSubmatch(p.location)
	if m == nil {
		t.Fatalf("no subscriber in %q (%d)\n%s", p.location, p.status, p.body)
	}
	var id int64
	fmt.Sscan(m[1], &id)
	return id
}

func TestAddSubscriber(t *testing.T) {
	e := newEnv(t)
	single, double := e.list(e.a.ID, "Single", false), e.list(e.a.ID, "Double", true)
	b := e.login(e.user(e.a.ID, tidings.RoleEditor, false))
	path := acct(e.a, "/subscribers")

	// Without a declaration the person is asked to confirm: the subscription waits for
	// the link, and the request is in the ledger.
	id := subscriberID(t, b.post(path, url.Values{"email": {"Plain@Example.net"}, "name": {"Plain"}, "lists": {itoa(single.ID)}}))
	subs, _ := e.store.Subscriptions(ctx, e.a.ID, id)
	if len(subs) != 1 || subs[0].Status != tidings.SubUnconfirmed || subs[0].AwaitingUntil == nil {
		t.Fatalf("undeclared add: %+v", subs)
	}
	if sent, err := e.outbox.List(10); err != nil || len(sent) != 1 || sent[0].To[0] != "plain@example.net" {
		t.Fatalf("no confirmation mail for an undeclared add: %+v %v", sent, err)
	}
	if hist, _ := e.store.SubscriberLedger(ctx, e.a.ID, id, tidings.Page{}); len(hist) != 1 || hist[0].Kind != tidings.LedgerRequested || hist[0].Source != tidings.SourceAdmin {
		t.Fatalf("ledger of an undeclared add: %+v", hist)
	}
	if !e.audited(e.a.ID, "subscriber.create", "subscriber "+itoa(id)) {
		t.Fatal("add not audited")
	}
	// With a declaration: confirmed on both lists (double opt-in too), recorded in the ledger.
	id = subscriberID(t, b.post(path, url.Values{"email": {"declared@example.net"}, "lists": {itoa(single.ID), itoa(double.ID)},
		"source": {"signed form at the shop"}, "lawful_basis": {"consent"}}))
	subs, _ = e.store.Subscriptions(ctx, e.a.ID, id)
	if len(subs) != 2 || subs[0].Status != tidings.SubConfirmed || subs[1].Status != tidings.SubConfirmed {
		t.Fatalf("declared add: %+v", subs)
	}
	hist, _ := e.store.SubscriberLedger(ctx, e.a.ID, id, tidings.Page{})
	if len(hist) != 2 || hist[0].Kind != tidings.LedgerImported || hist[0].Source != tidings.SourceAdmin {
		t.Fatalf("ledger: %+v", hist)
	}
	b.get(acct(e.a, "/subscribers/"+itoa(id))).want(t, http.StatusOK, "imported", "signed form at the shop", "lawful basis: consent")

	// Validation: the form comes back with what was typed, nothing stored.
	p := b.post(path, url.Values{"email": {"not an address"}, "name": {"Typed Name"}}).want(t, http.StatusUnprocessableEntity, "email", `value="Typed Name"`)
	_ = p
	b.post(path, url.Values{"email": {"half@example.net"}, "source": {"somewhere"}}).want(t, http.StatusUnprocessableEntity, "Declaration:", `value="somewhere"`)
	b.post(path, url.Values{"email": {"half@example.net"}, "lists": {"999999"}}).want(t, http.StatusUnprocessableEntity, "Lists:")
	bl := e.list(e.b.ID, "B", false)
	b.post(path, url.Values{"email": {"half@example.net"}, "lists": {itoa(bl.ID)}}).want(t, http.StatusUnprocessableEntity, "Lists:")
	if got, _ := e.store.ListSubscribers(ctx, e.a.ID, tidings.SubscriberFilter{Email: tidings.MustParseAddress("half@example.net")}); len(got) != 0 {
		t.Fatal("a refused add stored something")
	}
	b.post(path, url.Values{"email": {"declared@example.net"}}).want(t, http.StatusUnprocessableEntity, "already a subscriber")
	// Suppressed: refused with a clear message.
	if err := e.store.AddSuppression(ctx, e.a.ID, tidings.MustParseAddress("gone@example.net"), tidings.SuppressUnsubscribed); err != nil {
		t.Fatal(err)
	}
	b.post(path, url.Values{"email": {"gone@example.net"}, "lists": {itoa(single.ID)}, "source": {"x"}, "lawful_basis": {"consent"}}).
		want(t, http.StatusUnprocessableEntity, "suppressed in this account (unsubscribed)", "Only the person can subscribe again")
}

func TestSubscriberEditAndEscaping(t *testing.T) {
	e := newEnv(t)
	e.a.TrackingEnabled = true
	if err := e.store.UpdateAccount(ctx, &e.a); err != nil {
		t.Fatal(err)
	}
	l := e.list(e.a.ID, "News", false)
	s := e.subscriber(e.a.ID, "x@example.net", "<script>alert(1)</script>", l.ID)
	b := e.login(e.user(e.a.ID, tidings.RoleEditor, false))
	sp := acct(e.a, "/subscribers/"+itoa(s.ID))

	p := b.get(sp).want(t, http.StatusOK, "&lt;script&gt;alert(1)&lt;/script&gt;")
	if strings.Contains(p.body, "<script>") {
		t.Fatal("a name is rendered as markup")
	}
	b.get(acct(e.a, "/subscribers")).want(t, http.StatusOK, "&lt;script&gt;")

	// Bad attributes: refused, typed text kept, nothing written.
	b.post(sp, url.Values{"name": {"New"}, "attributes": {"{not json"}, "status": {"active"}}).
		want(t, http.StatusUnprocessableEntity, "attributes", "{not json")
	b.post(sp, url.Values{"name": {"New"}, "attributes": {`{"bad key": 1}`}, "status": {"active"}}).want(t, http.StatusUnprocessableEntity, "attribute names")
	b.post(sp, url.Values{"name": {"New"}, "status": {"vanished"}}).want(t, http.StatusUnprocessableEntity, "status")
	if got, _ := e.store.GetSubscriber(ctx, e.a.ID, s.ID); got.Name != s.Name {
		t.Fatal("a refused edit changed the name")
	}
	b.post(sp, url.Values{"name": {"Ada"}, "attributes": {`{"city": "Lyon"}`}, "status": {"restricted"}, "tracking": {"on"}}).
		want(t, http.StatusSeeOther)
	got, _ := e.store.GetSubscriber(ctx, e.a.ID, s.ID)
	if got.Name != "Ada" || got.Attributes["city"] != "Lyon" || got.Status != tidings.StatusRestricted || !got.TrackingConsent {
		t.Fatalf("after edit: %+v", got)
	}
	if !e.audited(e.a.ID, "subscriber.update", "subscriber "+itoa(s.ID)) {
		t.Fatal("edit not audited")
	}
	hist, _ := e.store.SubscriberLedger(ctx, e.a.ID, s.ID, tidings.Page{})
	if len(hist) != 1 || hist[0].Kind != tidings.LedgerTrackingChange {
		t.Fatalf("tracking change not in the ledger: %+v", hist)
	}
	b.get(sp).want(t, http.StatusOK, "Lyon", "tracking_change", "given")

	// Lists: unsubscribe is a withdrawal; re-subscribing by staff is then refused.
	b.post(sp+"/lists", url.Values{"list": {itoa(l.ID)}, "action": {"unsubscribe"}}).want(t, http.StatusSeeOther)
	subs, _ := e.store.Subscriptions(ctx, e.a.ID, s.ID)
	if subs[0].Status != tidings.SubUnsubscribed {
		t.Fatalf("after unsubscribe: %+v", subs)
	}
	if !e.audited(e.a.ID, "subscriber.unsubscribe", fmt.Sprintf("subscriber %d list %d", s.ID, l.ID)) {
		t.Fatal("unsubscribe not audited")
	}
	b.post(sp+"/lists", url.Values{"list": {itoa(l.ID)}, "action": {"subscribe"}, "source": {"phone"}, "lawful_basis": {"consent"}}).
		want(t, http.StatusUnprocessableEntity, "suppressed")
	// Subscribing to another list under a declaration confirms it.
	s2 := e.subscriber(e.a.ID, "y@example.net", "Y")
	l2 := e.list(e.a.ID, "Second", true)
	b.post(acct(e.a, "/subscribers/"+itoa(s2.ID)+"/lists"), url.Values{"list": {itoa(l2.ID)}, "action": {"subscribe"}, "source": {"phone call"}, "lawful_basis": {"consent"}}).
		want(t, http.StatusSeeOther)
	subs, _ = e.store.Subscriptions(ctx, e.a.ID, s2.ID)
	if len(subs) != 1 || subs[0].Status != tidings.SubConfirmed {
		t.Fatalf("declared subscribe: %+v", subs)
	}
	if got, _ := e.store.GetSubscriber(ctx, e.a.ID, s2.ID); got.Name != "Y" {
		t.Fatalf("subscribing changed the name: %q", got.Name)
	}
	bl := e.list(e.b.ID, "B", false)
	b.post(acct(e.a, "/subscribers/"+itoa(s2.ID)+"/lists"), url.Values{"list": {itoa(bl.ID)}, "action": {"subscribe"}}).
		want(t, http.StatusUnprocessableEntity, "List:")
	b.post(acct(e.a, "/subscribers/"+itoa(s2.ID)+"/lists"), url.Values{"list": {itoa(l2.ID)}, "action": {"subscribe"}}).
		want(t, http.StatusUnprocessableEntity, "already on that list")
}

func TestSubscriberHistoryShowsEvidence(t *testing.T) {
	e := newEnv(t)
	l := e.list(e.a.ID, "News", false)
	text, err := e.store.PublishConsentText(ctx, e.a.ID, "I agree.")
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.store.RequestSubscription(ctx, e.a.ID, tidings.SubscriptionRequest{Email: tidings.MustParseAddress("form@example.net"),
		Lists: []int64{l.ID}, Source: tidings.SourceForm, Text: &text, Kind: tidings.LedgerSingleOptIn,
		Evidence: tidings.Evidence{IP: "203.0.113.9", UserAgent: "Agent/<b>1</b>", Referrer: "https://shop.example/signup"}})
	if err != nil {
		t.Fatal(err)
	}
	b := e.login(e.user(e.a.ID, tidings.RoleOwner, false))
	p := b.get(acct(e.a, "/subscribers/"+itoa(res.Subscriber.ID))).want(t, http.StatusOK, "single_opt_in", "203.0.113.9",
		"Agent/&lt;b&gt;1&lt;/b&gt;", "https://shop.example/signup", fmt.Sprintf("version %d", text.Version), fmt.Sprintf("%x", text.SHA256))
	if strings.Contains(p.body, "<b>1</b>") {
		t.Fatal("a user agent is rendered as markup")
	}
}

// failTrackingEntries makes the database refuse to append a tracking-change entry to
// the ledger, until the returned function is called.
func failTrackingEntries(t *testing.T, store tidings.Store) (restore func()) {
	s := store.(*sqlstore.Store)
	return testdb.FailWrites(t, s.DB(), s.Engine(), "INSERT", "ledger", "NEW.kind = 'tracking_change'")
}

// A staff edit is one write: when its tracking consent change cannot be recorded (the
// ledger refuses the entry, or the account does not track), the name, attributes and
// status of the form are not written either, nor audited. An edit that succeeds
// writes both, and the ledger verifies.
func TestSubscriberEditIsOneWrite(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			e := newEnvWith(t, testdb.Open(t, engine))
			setTracking := func(on bool) {
				t.Helper()
				e.a.TrackingEnabled = on
				if err := e.store.UpdateAccount(ctx, &e.a); err != nil {
					t.Fatal(err)
				}
			}
			setTracking(true)
			s := e.subscriber(e.a.ID, "ada@example.net", "Ada")
			b := e.login(e.user(e.a.ID, tidings.RoleEditor, false))
			sp := acct(e.a, "/subscribers/"+itoa(s.ID))
			form := url.Values{"name": {"Ada L."}, "attributes": {`{"city": "Lyon"}`}, "status": {"restricted"}, "tracking": {"on"}}
			untouched := func(what string) {
				t.Helper()
				got, err := e.store.GetSubscriber(ctx, e.a.ID, s.ID)
				if err != nil || got.Name != "Ada" || got.Status != tidings.StatusActive || len(got.Attributes) != 0 || got.TrackingConsent {
					t.Fatalf("%s: the subscriber is %+v (%v); want nothing of the edit written", what, got, err)
				}
				if rep, err := consent.VerifyLedger(ctx, e.store, e.a.ID); err != nil || !rep.OK || rep.Entries != 0 {
					t.Fatalf("%s: ledger %+v, %v; want empty", what, rep, err)
				}
				if e.audited(e.a.ID, "subscriber.update", "subscriber "+itoa(s.ID)) {
					t.Fatalf("%s: an edit not written is audited", what)
				}
			}

			restore := failTrackingEntries(t, e.store)
			b.post(sp, form).want(t, http.StatusInternalServerError)
			untouched("ledger entry refused")
			restore()

			setTracking(false)
			b.post(sp, form).want(t, http.StatusUnprocessableEntity, "tracking consent: this account does not use open and click tracking", "Ada L.")
			untouched("account does not track")

			setTracking(true)
			b.post(sp, form).want(t, http.StatusSeeOther)
			got, _ := e.store.GetSubscriber(ctx, e.a.ID, s.ID)
			if got.Name != "Ada L." || got.Status != tidings.StatusRestricted || got.Attributes["city"] != "Lyon" || !got.TrackingConsent {
				t.Fatalf("after the edit: %+v", got)
			}
			hist, err := e.store.SubscriberLedger(ctx, e.a.ID, s.ID, tidings.Page{})
			if err != nil || len(hist) != 1 || hist[0].Kind != tidings.LedgerTrackingChange || hist[0].Source != tidings.SourceAdmin {
				t.Fatalf("ledger of the subscriber: %+v, %v; want one tracking change from the admin", hist, err)
			}
			if rep, err := consent.VerifyLedger(ctx, e.store, e.a.ID); err != nil || !rep.OK || rep.Entries != 1 {
				t.Fatalf("ledger %+v, %v; want 1 entry that verifies", rep, err)
			}
		})
	}
}

// Staff who add someone and record that the person consented to tracking do it through
// a grant: the consent is stored with its ledger entry, whose note names the staff user
// (by ID, never an address), in one write. Withdrawing it names them too. The form
// offers the consent only where the account tracks, and the store refuses it there.
func TestAddSubscriberTrackingThroughLedger(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			e := newEnvWith(t, testdb.Open(t, engine))
			staff := e.user(e.a.ID, tidings.RoleEditor, false)
			b := e.login(staff)
			path := acct(e.a, "/subscribers")
			add := url.Values{"email": {"ada@example.net"}, "name": {"Ada"}, "tracking": {"on"}}
			absent := func(what string) {
				t.Helper()
				if got, _ := e.store.ListSubscribers(ctx, e.a.ID, tidings.SubscriberFilter{Email: tidings.MustParseAddress("ada@example.net")}); len(got) != 0 {
					t.Fatalf("%s: %+v stored", what, got)
				}
				if rep, err := consent.VerifyLedger(ctx, e.store, e.a.ID); err != nil || !rep.OK || rep.Entries != 0 {
					t.Fatalf("%s: ledger %+v, %v; want empty", what, rep, err)
				}
			}
			if p := b.get(path).want(t, http.StatusOK); strings.Contains(p.body, `name="tracking"`) {
				t.Fatal("the add form offers tracking consent where the account does not track")
			}
			b.post(path, add).want(t, http.StatusUnprocessableEntity, "this account does not use open and click tracking", `value="Ada"`)
			absent("account does not track")

			e.a.TrackingEnabled = true
			if err := e.store.UpdateAccount(ctx, &e.a); err != nil {
				t.Fatal(err)
			}
			b.get(path).want(t, http.StatusOK, `name="tracking"`)
			restore := failTrackingEntries(t, e.store)
			b.post(path, add).want(t, http.StatusInternalServerError)
			restore()
			absent("ledger entry refused")

			id := subscriberID(t, b.post(path, add))
			got, err := e.store.GetSubscriber(ctx, e.a.ID, id)
			if err != nil || !got.TrackingConsent {
				t.Fatalf("added with tracking consent: %+v, %v", got, err)
			}
			note := func(i int) string {
				t.Helper()
				hist, err := e.store.SubscriberLedger(ctx, e.a.ID, id, tidings.Page{})
				if err != nil || len(hist) != i+1 || hist[i].Kind != tidings.LedgerTrackingChange || hist[i].Source != tidings.SourceAdmin {
					t.Fatalf("ledger: %+v, %v; want tracking change %d from the admin", hist, err, i+1)
				}
				ev, err := e.store.OpenEvidence(ctx, hist[i])
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(ev.Note, "example.net") || strings.Contains(ev.Note, staff.Email) {
					t.Fatalf("the note names an address: %q", ev.Note)
				}
				return ev.Note
			}
			by := fmt.Sprintf("recorded by staff user %d in the admin UI", staff.ID)
			if n := note(0); n != "tracking consent given; "+by {
				t.Fatalf("the grant's note: %q", n)
			}
			sp := acct(e.a, "/subscribers/"+itoa(id))
			b.get(sp).want(t, http.StatusOK, "tracking consent given; "+by)

			b.post(sp, url.Values{"name": {"Ada"}, "status": {"active"}}).want(t, http.StatusSeeOther)
			if n := note(1); n != "tracking consent withdrawn; "+by {
				t.Fatalf("the withdrawal's note: %q", n)
			}
			if rep, err := consent.VerifyLedger(ctx, e.store, e.a.ID); err != nil || !rep.OK || rep.Entries != 2 {
				t.Fatalf("ledger %+v, %v; want 2 entries that verify", rep, err)
			}

			// With lists and a declaration, the consent is in the add's own entry.
			l := e.list(e.a.ID, "News", false)
			id = subscriberID(t, b.post(path, url.Values{"email": {"bob@example.net"}, "lists": {itoa(l.ID)}, "tracking": {"on"},
				"source": {"signed form"}, "lawful_basis": {"consent"}}))
			hist, _ := e.store.SubscriberLedger(ctx, e.a.ID, id, tidings.Page{})
			if got, _ := e.store.GetSubscriber(ctx, e.a.ID, id); !got.TrackingConsent || len(hist) != 1 {
				t.Fatalf("declared add with tracking: %+v, ledger %+v", got, hist)
			}
			if ev, err := e.store.OpenEvidence(ctx, hist[0]); err != nil || !strings.Contains(ev.Note, "tracking consent given") ||
				!strings.Contains(ev.Note, fmt.Sprintf("staff user %d", staff.ID)) {
				t.Fatalf("declared add's evidence: %+v, %v", ev, err)
			}
		})
	}
}

// Staff who subscribe someone to another list under a declaration record a
// subscription, not a tracking choice: the entry mentions no tracking consent, and the
// person's consent stays as it was, given or not.
func TestSubscribeToListLeavesTracking(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			e := newEnvWith(t, testdb.Open(t, engine))
			e.a.TrackingEnabled = true
			if err := e.store.UpdateAccount(ctx, &e.a); err != nil {
				t.Fatal(err)
			}
			staff := e.user(e.a.ID, tidings.RoleEditor, false)
			b := e.login(staff)
			l1, l2 := e.list(e.a.ID, "News", false), e.list(e.a.ID, "Events", false)
			tracked := tidings.Subscriber{Email: tidings.MustParseAddress("ada@example.net"), TrackingConsent: true}
			grant := &tidings.TrackingGrant{Source: tidings.SourceAdmin, Evidence: tidings.Evidence{Note: "recorded by the test"}}
			if err := e.store.CreateSubscriber(ctx, e.a.ID, &tracked, []int64{l1.ID}, tidings.SubConfirmed, grant); err != nil {
				t.Fatal(err)
			}
			untracked := e.subscriber(e.a.ID, "bob@example.net", "Bob", l1.ID)
			for _, sub := range []tidings.Subscriber{tracked, untracked} {
				b.post(acct(e.a, "/subscribers/"+itoa(sub.ID)+"/lists"), url.Values{"list": {itoa(l2.ID)}, "action": {"subscribe"},
					"source": {"phone call"}, "lawful_basis": {"consent"}}).want(t, http.StatusSeeOther)
				got, err := e.store.GetSubscriber(ctx, e.a.ID, sub.ID)
				if err != nil || got.TrackingConsent != sub.TrackingConsent {
					t.Fatalf("tracking consent %v after a subscription, %v; want %v", got.TrackingConsent, err, sub.TrackingConsent)
				}
				hist, err := e.store.SubscriberLedger(ctx, e.a.ID, sub.ID, tidings.Page{})
				if err != nil || len(hist) == 0 {
					t.Fatalf("ledger %+v, %v", hist, err)
				}
				last := hist[len(hist)-1]
				if last.Kind != tidings.LedgerImported || last.ListID != l2.ID {
					t.Fatalf("last entry %+v; want the subscription", last)
				}
				ev, err := e.store.OpenEvidence(ctx, last)
				if err != nil || strings.Contains(ev.Note, "tracking") || !strings.Contains(ev.Note, fmt.Sprintf("staff user %d", staff.ID)) {
					t.Fatalf("the subscription's note %q, %v; want who, and no tracking consent", ev.Note, err)
				}
			}
			if rep, err := consent.VerifyLedger(ctx, e.store, e.a.ID); err != nil || !rep.OK {
				t.Fatalf("ledger %+v, %v", rep, err)
			}
		})
	}
}
