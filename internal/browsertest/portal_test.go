package browsertest

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tidings/tidings/internal/tidings"
)

// portalFlow is the state the subscriber steps pass on.
type portalFlow struct {
	s       *server
	account tidings.Account
	list    tidings.List
	events  tidings.List // offered on the hosted page beside list
	email   string
	b       *tab // the subscriber's browser, kept across steps (its portal cookie)
}

// TestSubscriberPortal walks the subscriber side in a real browser: the hosted sign-up
// form, the confirmation link from the mail, the data portal (sign-in link by mail,
// the data, the downloads) and erasure.
func TestSubscriberPortal(t *testing.T) {
	browserContext(t) // skip (or fail under CI) before anything when there is no browser
	s := newServer(t)
	f := &portalFlow{s: s, account: s.account("Bücherei Müller"), email: "reader@example.net"}
	f.list = tidings.NewList("Neuerscheinungen")
	f.list.Purpose = "Monthly news about new books"
	if err := s.store.CreateList(bg, f.account.ID, &f.list); err != nil {
		t.Fatal(err)
	}
	f.events = tidings.NewList("Lesungen")
	f.events.Description = "Readings in the shop"
	if err := s.store.CreateList(bg, f.account.ID, &f.events); err != nil {
		t.Fatal(err)
	}
	// One tab for the whole walk, bound to the parent test so the steps share it.
	f.b = s.tab(t)
	runSteps(t, []step{
		{"subscribe and confirm", f.subscribe},
		{"portal sign-in", f.portalSignIn},
		{"download", f.download},
		{"erase", f.erase},
	})
}

// on binds the shared tab to the step's test, so failures and screenshots are the
// step's.
func (f *portalFlow) on(t *testing.T) *tab {
	b := &tab{t: t, s: f.s, ctx: f.b.ctx}
	t.Cleanup(func() {
		if t.Failed() {
			b.saveEvidence()
		}
	})
	return b
}

func (f *portalFlow) subscribe(t *testing.T) {
	s, b := f.s, f.on(t)
	// The hosted page's link offers one more list, unticked; ticking it by its label
	// signs up for both.
	b.open(s.consent.SubscribeURL(f.account.ID, f.list.ID, s.consent.AlsoLists([]tidings.List{f.events})...))
	b.wantText("Neuerscheinungen", "from Bücherei Müller", "Purpose of Neuerscheinungen: Monthly news about new books",
		"Also subscribe to Lesungen", "Readings in the shop")
	if b.count(`input[name="also"]:checked`) != 0 {
		t.Fatal("the hosted page ticks a further list for the person")
	}
	b.clickHere(`//label[normalize-space(.)="Also subscribe to Lesungen"]`)
	if b.count(`input[name="also"]:checked`) != 1 {
		t.Fatal("clicking the further list's label does not tick it")
	}
	if b.count(".hp input#website") != 1 || b.attr(".hp", "aria-hidden") != "true" {
		t.Fatal("the honeypot field is missing or not hidden from screen readers")
	}
	// A malformed address is refused and what was typed stays.
	b.fill("#email", "reader@")
	b.fill("#name", "Rea Reader")
	// type=email makes the browser refuse it before sending: nothing is posted.
	if run(b, "check the field's validity", chromedp.Evaluate[bool](`document.querySelector("#email").checkValidity()`)) {
		t.Fatal(`the browser accepts "reader@"`)
	}
	b.fill("#email", f.email)
	b.click(button("Subscribe"))
	b.wantText("Check your inbox")

	msg := s.mail(f.email, "Please confirm your subscription to Neuerscheinungen, Lesungen")
	b.open(s.link(msg, "/confirm/"))
	b.wantText("Press the button to confirm") // opening the link alone confirms nothing
	b.click(button("Yes, subscribe me"))
	b.wantText("Subscription confirmed")
	s.mail(f.email, "Welcome to")
}

func (f *portalFlow) portalSignIn(t *testing.T) {
	s, b := f.s, f.on(t)
	b.open("/portal")
	b.fill("#email", f.email)
	b.click(button("Send me a sign-in link"))
	b.wantText("If you have an email address with us, a sign-in link is on its way")

	msg := s.mail(f.email, "Your sign-in link")
	b.open(s.link(msg, "/portal/signin/"))
	b.click(button("Sign in"))
	b.wantPath("/portal/me")
	b.wantText("Signed in as "+f.email, "Bücherei Müller", "Rea Reader", "Neuerscheinungen", "Lesungen")
	// Consent evidence: the sign-up and the confirmation.
	if n := b.count("section.account h3 + ul li"); n < 2 {
		t.Fatalf("%d list and consent lines shown", n)
	}
}

func (f *portalFlow) download(t *testing.T) {
	b := f.on(t)
	data := b.download(link("Download everything (JSON)"))
	if !json.Valid(data) || !strings.Contains(string(data), f.email) || !strings.Contains(string(data), "Rea Reader") {
		t.Fatalf("JSON export:\n%s", data)
	}
	data = b.download(link("Download everything (CSV)"))
	if !strings.Contains(string(data), "Rea Reader") {
		t.Fatalf("CSV export:\n%s", data)
	}
	b.wantPath("/portal/me") // downloads leave the page as it is
}

func (f *portalFlow) erase(t *testing.T) {
	s, b := f.s, f.on(t)
	b.click(button("Erase my data everywhere"))
	b.wantText("Your data was erased")

	addr, _ := tidings.ParseAddress(f.email)
	recs, err := s.store.PersonData(bg, addr)
	if err != nil || len(recs) != 0 {
		t.Fatalf("after erasure the store holds %d records (%v)", len(recs), err)
	}
	list, _ := s.outbox.List(0)
	for _, m := range list {
		if containsFold(m.To, f.email) {
			t.Fatalf("the outbox still holds %q to the erased address", m.Subject)
		}
	}
	// The portal session ended with the data.
	if st := b.openStatus("/portal/me"); st != 401 {
		t.Fatalf("/portal/me after erasure: status %d", st)
	}
	b.wantText("Please sign in again")
}
