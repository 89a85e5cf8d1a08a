package send_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-smtp"

	"github.com/tidings/tidings/internal/mail"
	"github.com/tidings/tidings/internal/mail/mailtest"
	"github.com/tidings/tidings/internal/send"
	"github.com/tidings/tidings/internal/sqlstore"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
)

var update = flag.Bool("update", false, "rewrite golden files")

// fixture is an account with a signed sending domain, two lists and a campaign.
type fixture struct {
	store    tidings.Store
	acc      tidings.Account
	l1, l2   tidings.List
	dns      map[string]string
	campaign tidings.Campaign
}

const body = `<html><body><h1>Hello {{.Subscriber.Name | default "friend"}}</h1>
<p>News for {{.Subscriber.Attributes.city}}: <a href="https://shop.example/a">one</a>, <a href="https://shop.example/b">two</a>,
<a href="https://shop.example/c?x=1&y=2">three</a>.</p>
</body></html>`

func newFixture(t testing.TB, store tidings.Store) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{store: store, dns: map[string]string{}}
	f.acc = tidings.Account{Name: "Shop & Co", ContactEmail: "dpo@shop.example", PostalAddress: "1 Market Sq, York"}
	if err := store.CreateAccount(ctx, &f.acc); err != nil {
		t.Fatal(err)
	}
	f.l1, f.l2 = tidings.NewList("Weekly"), tidings.NewList("Offers")
	store.CreateList(ctx, f.acc.ID, &f.l1)
	store.CreateList(ctx, f.acc.ID, &f.l2)
	f.dns = testdb.DKIMKeys(t, store, f.acc.ID, "news.shop.example")
	f.campaign = tidings.Campaign{Name: "November", Subject: "News for {{.Subscriber.Name}}", FromName: "Shop & Co",
		FromAddress: "news@news.shop.example", HTML: body, Lists: []int64{f.l1.ID, f.l2.ID}}
	if err := store.CreateCampaign(ctx, f.acc.ID, &f.campaign); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) subscribe(t testing.TB, email string, lists ...int64) tidings.Subscriber {
	t.Helper()
	s := tidings.Subscriber{Email: tidings.MustParseAddress(email), Name: "P " + email[:3], Attributes: tidings.Attributes{"city": "York"}}
	if err := f.store.CreateSubscriber(context.Background(), f.acc.ID, &s, lists, tidings.SubConfirmed, nil); err != nil {
		t.Fatal(err)
	}
	return s
}

func engineFor(t testing.TB, store tidings.Store, sink *mailtest.Sink) *send.Engine {
	pool, err := mail.NewSMTPPool(mail.SMTPConfig{Host: "127.0.0.1", Port: sink.Port(), TLS: "none", PoolSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	return &send.Engine{Store: store, Keys: testdb.Keyring(t), Sender: pool, BaseURL: "https://tidings.example", Workers: 4,
		Backoff: time.Millisecond, FlushEvery: 5 * time.Millisecond}
}

func (f *fixture) verify(t *testing.T, raw []byte) {
	t.Helper()
	verifs, err := dkim.VerifyWithOptions(bytes.NewReader(raw), &dkim.VerifyOptions{LookupTXT: func(d string) ([]string, error) {
		return []string{f.dns[d]}, nil
	}})
	if err != nil || len(verifs) != 2 {
		t.Fatalf("dkim: %d signatures, %v", len(verifs), err)
	}
	for _, v := range verifs {
		if v.Err != nil {
			t.Fatalf("signature %s: %v", v.Domain, v.Err)
		}
		for _, h := range []string{"list-unsubscribe", "list-unsubscribe-post", "list-id"} {
			if !strings.Contains(strings.ToLower(strings.Join(v.HeaderKeys, ",")), h) {
				t.Fatalf("signature does not cover %s", h)
			}
		}
	}
}

func TestCampaignReachesEveryRecipientOnce(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			store := testdb.Open(t, engine)
			ctx := context.Background()
			f := newFixture(t, store)
			want := map[string]bool{}
			for i := range 1200 {
				addr := fmt.Sprintf("r%04d@example.com", i)
				lists := []int64{f.l1.ID}
				if i%3 == 0 {
					lists = append(lists, f.l2.ID) // on both lists: still one message
				}
				f.subscribe(t, addr, lists...)
				want[addr] = true
			}
			// Not recipients: restricted, objecting, unconfirmed, suppressed, on no target list.
			r := f.subscribe(t, "restricted@example.com", f.l1.ID)
			r.Status = tidings.StatusRestricted
			store.UpdateSubscriber(ctx, f.acc.ID, &r)
			o := f.subscribe(t, "objected@example.com", f.l1.ID)
			o.Status = tidings.StatusObjected
			store.UpdateSubscriber(ctx, f.acc.ID, &o)
			u := tidings.Subscriber{Email: tidings.MustParseAddress("unconfirmed@example.com")}
			store.CreateSubscriber(ctx, f.acc.ID, &u, []int64{f.l1.ID}, tidings.SubUnconfirmed, nil)
			f.subscribe(t, "suppressed@example.com", f.l1.ID)
			store.AddSuppression(ctx, tidings.InstanceWide, tidings.MustParseAddress("suppressed@example.com"), tidings.SuppressComplaint)
			other := tidings.NewList("Other")
			store.CreateList(ctx, f.acc.ID, &other)
			f.subscribe(t, "otherlist@example.com", other.ID)

			sink := mailtest.New(t)
			eng := engineFor(t, store, sink)
			if err := store.SetCampaignStatus(ctx, f.acc.ID, f.campaign.ID, tidings.CampaignSending, ""); err != nil {
				t.Fatal(err)
			}
			if err := eng.Send(ctx, f.acc.ID, f.campaign.ID); err != nil {
				t.Fatal(err)
			}
			got := map[string]int{}
			for _, m := range sink.Messages() {
				for _, to := range m.To {
					got[to]++
				}
				if !strings.HasPrefix(m.From, "bounces+") || !strings.HasSuffix(m.From, "@news.shop.example") {
					t.Fatalf("return path %q is not a VERP address", m.From)
				}
			}
			for addr := range want {
				if got[addr] != 1 {
					t.Fatalf("%s received %d messages", addr, got[addr])
				}
			}
			if len(got) != len(want) {
				t.Fatalf("%d recipients, want %d (extra: excluded people were mailed)", len(got), len(want))
			}
			f.verify(t, sink.Messages()[0].Data)
			p, _ := store.CampaignProgress(ctx, f.acc.ID, f.campaign.ID)
			c, _ := store.GetCampaign(ctx, f.acc.ID, f.campaign.ID)
			if p.Total != 1200 || p.Sent != 1200 || p.Remaining != 0 || c.Status != tidings.CampaignSent || c.FinishedAt == nil {
				t.Fatalf("progress %+v, status %s", p, c.Status)
			}
		})
	}
}

// TestGoldenMessage compares a rendered message with testdata/campaign.eml, with the
// parts that change per send (dates, IDs, tokens, boundaries, signatures) masked.
func TestGoldenMessage(t *testing.T) {
	store := testdb.Open(t, sqlstore.SQLite)
	ctx := context.Background()
	f := newFixture(t, store)
	f.subscribe(t, "golden@example.com", f.l1.ID)
	sink := mailtest.New(t)
	eng := engineFor(t, store, sink)
	store.SetCampaignStatus(ctx, f.acc.ID, f.campaign.ID, tidings.CampaignSending, "")
	if err := eng.Send(ctx, f.acc.ID, f.campaign.ID); err != nil {
		t.Fatal(err)
	}
	raw := sink.Messages()[0].Data
	f.verify(t, raw)
	masked := raw
	for _, m := range []struct{ re, with string }{
		{`(?s)DKIM-Signature:.*?\r\n(From:)`, "DKIM-Signature: <masked>\r\n$1"},
		{`(?s)DKIM-Signature:.*?\r\n(DKIM-Signature:)`, "DKIM-Signature: <masked>\r\n$1"},
		{`Date: .*`, "Date: <date>\r"},
		{`[a-z0-9]{24}@news\.shop\.example`, "<id>@news.shop.example"},
		{`/u/[A-Za-z0-9_-]+`, "/u/<token>"},
		{`unsub\+[A-Za-z0-9_-]+@`, "unsub+<token>@"},
		{`=_[a-z0-9]+`, "=_<boundary>"},
		{`/u/<token>=\r\n[A-Za-z0-9_=-]+`, "/u/<token>"},
	} {
		masked = regexp.MustCompile(m.re).ReplaceAll(masked, []byte(m.with))
	}
	path := filepath.Join("testdata", "campaign.eml")
	if *update {
		os.MkdirAll("testdata", 0o755)
		os.WriteFile(path, masked, 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(masked, want) {
		t.Fatalf("message differs from %s:\n%s", path, masked)
	}
}

func TestTemplateSandbox(t *testing.T) {
	base := tidings.Campaign{Name: "x", Subject: "s", FromAddress: "a@b.example", Lists: []int64{1}}
	for _, c := range []struct{ html, want string }{
		{`{{env "HOME"}}`, `function "env" not defined`},
		{"<p>ok</p>\n{{readFile \"/etc/passwd\"}}", `line 2: function "readFile" not defined`},
		{`{{exec "ls"}}`, `function "exec" not defined`},
		{`{{.Subscriber.Password}}`, `Password`},
		{`{{.Os.Getenv}}`, `Os`},
		{`{{if}}`, "missing value for if"},
		{`{{range 100000000}}xxxxxxxxxxxxxxxxxxxx{{end}}`, "range goes over a data field only"},
	} {
		camp := base
		camp.HTML = c.html
		_, err := send.Compile(camp)
		v, ok := tidings.AsValidation(err)
		if !ok || v.Field != "html" || v.Code != "template" || !strings.Contains(v.Message, c.want) {
			t.Errorf("%q: %v, want a template error mentioning %q", c.html, err, c.want)
		}
	}
	ok := base
	ok.HTML = `<p>{{.Subscriber.Name | upper}} {{.Subscriber.Attributes.plan | default "free"}} {{truncate 3 "abcdef"}}</p>`
	tmpl, err := send.Compile(ok)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := tmpl.Render(send.Data{Subscriber: send.SubscriberData{Name: "<b>ann</b>", Attributes: map[string]any{}}})
	if !strings.Contains(r.HTML, "&lt;B&gt;ANN&lt;/B&gt; free abc…") || !strings.Contains(r.Text, "<B>ANN</B> free abc…") {
		t.Fatalf("render: %q / %q", r.HTML, r.Text)
	}
}

func TestTemporaryFailuresRetryAndErrorsPause(t *testing.T) {
	store := testdb.Open(t, sqlstore.SQLite)
	ctx := context.Background()
	f := newFixture(t, store)
	for i := range 30 {
		f.subscribe(t, fmt.Sprintf("p%02d@example.com", i), f.l1.ID)
	}
	sink := mailtest.New(t)
	var mu sync.Mutex
	seen := map[string]int{}
	sink.Reject = func(rcpt string) error {
		mu.Lock()
		defer mu.Unlock()
		seen[rcpt]++
		if rcpt == "p01@example.com" && seen[rcpt] == 1 {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
		}
		if rcpt == "p02@example.com" {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}
		return nil
	}
	eng := engineFor(t, store, sink)
	store.SetCampaignStatus(ctx, f.acc.ID, f.campaign.ID, tidings.CampaignSending, "")
	if err := eng.Send(ctx, f.acc.ID, f.campaign.ID); err != nil {
		t.Fatal(err)
	}
	p, _ := store.CampaignProgress(ctx, f.acc.ID, f.campaign.ID)
	if p.Sent != 29 || p.Failed != 1 || len(sink.Find("p01@example.com")) != 1 {
		t.Fatalf("progress %+v; p01 got %d", p, len(sink.Find("p01@example.com")))
	}

	// A relay refusing everything pauses the campaign with a visible reason.
	c2 := f.campaign
	c2.ID, c2.Name = 0, "second"
	store.CreateCampaign(ctx, f.acc.ID, &c2)
	sink.Reject = func(string) error {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "sender blocked"}
	}
	eng2 := engineFor(t, store, sink)
	eng2.ErrorMinimum, eng2.Workers = 10, 1
	store.SetCampaignStatus(ctx, f.acc.ID, c2.ID, tidings.CampaignSending, "")
	if err := eng2.Send(ctx, f.acc.ID, c2.ID); err != nil {
		t.Fatal(err)
	}
	got, _ := store.GetCampaign(ctx, f.acc.ID, c2.ID)
	p, _ = store.CampaignProgress(ctx, f.acc.ID, c2.ID)
	if got.Status != tidings.CampaignPaused || !strings.Contains(got.PauseReason, "sender blocked") || p.Remaining == 0 {
		t.Fatalf("after a failing relay: %s %q %+v", got.Status, got.PauseReason, p)
	}
}

func TestHTMLToText(t *testing.T) {
	got := send.HTMLToText(`<html><head><style>p{}</style></head><body><h1>Hi {{.Subscriber.Name}}</h1><p>See <a href="https://x.example/a">this</a>.</p><ul><li>one</li><li>two</li></ul><script>evil()</script></body></html>`)
	want := "Hi {{.Subscriber.Name}}\n\nSee this (https://x.example/a).\n\n- one\n- two\n"
	if got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

// TestUnsubscribeLinkNotTracked: a campaign body that places {{.UnsubscribeURL}} itself
// keeps that link as it is when tracking is on. Wrapped in a click link, the person's
// unsubscribe token went into the click's URL, stored with the events and in the
// campaign's top links (kept after an erasure, shown to staff, usable by anyone to
// unsubscribe that person), and unsubscribing depended on the tracking redirect.
func TestUnsubscribeLinkNotTracked(t *testing.T) {
	store := testdb.Open(t, sqlstore.SQLite)
	ctx := context.Background()
	f := newFixture(t, store)
	f.acc.TrackingEnabled = true
	if err := store.UpdateAccount(ctx, &f.acc); err != nil {
		t.Fatal(err)
	}
	f.campaign.HTML = `<html><body><p><a href="https://shop.example/a">one</a></p><p><a href="{{.UnsubscribeURL}}">Leave</a></p></body></html>`
	if err := store.UpdateCampaign(ctx, f.acc.ID, &f.campaign); err != nil {
		t.Fatal(err)
	}
	s := tidings.Subscriber{Email: tidings.MustParseAddress("tracked@example.com"), TrackingConsent: true}
	if err := store.CreateSubscriber(ctx, f.acc.ID, &s, []int64{f.l1.ID}, tidings.SubConfirmed, &tidings.TrackingGrant{Source: tidings.SourceAdmin, Evidence: tidings.Evidence{Note: "recorded by the test"}}); err != nil {
		t.Fatal(err)
	}
	sink := mailtest.New(t)
	eng := engineFor(t, store, sink)
	store.SetCampaignStatus(ctx, f.acc.ID, f.campaign.ID, tidings.CampaignSending, "")
	if err := eng.Send(ctx, f.acc.ID, f.campaign.ID); err != nil {
		t.Fatal(err)
	}
	// Undo quoted-printable's soft line breaks and escaped "=".
	msg := strings.NewReplacer("=\r\n", "", "=3D", "=").Replace(string(sink.Messages()[0].Data))
	if !strings.Contains(msg, `href="https://tidings.example/c/`) {
		t.Fatalf("tracking is on, yet the shop link is not a click link:\n%s", msg)
	}
	if n := strings.Count(msg, `href="https://tidings.example/u/`); n != 2 {
		t.Fatalf("%d direct unsubscribe links in the HTML, want 2 (the body's and the footer's):\n%s", n, msg)
	}
}

// TestTemplateSandboxBoundsWork: a template that loops without writing (the output cap
// never trips) fails to save quickly, rather than holding a core at save time and for
// every recipient; so do ranges that multiply through nesting or template calls.
func TestTemplateSandboxBoundsWork(t *testing.T) {
	base := tidings.Campaign{Name: "x", Subject: "s", FromAddress: "a@b.example", Lists: []int64{1}}
	for _, html := range []string{
		`{{range 9000000000000000000}}{{end}}`,
		"<p>\n{{$n := 9000000000000000000}}{{range $n}}{{end}}",
		`{{with 9000000000000000000}}{{range .}}{{end}}{{end}}`,
		`{{range and 1 9000000000000000000}}{{end}}`,
		`{{define "x"}}{{range .}}{{end}}{{end}}{{template "x" 9000000000000000000}}`,
		`{{range .Subscriber.Attributes.l}}{{range $.Subscriber.Attributes.l}}{{range $.Subscriber.Attributes.l}}{{end}}{{end}}{{end}}`,
	} {
		camp := base
		camp.HTML = html
		done := make(chan error, 1)
		go func() { _, err := send.Compile(camp); done <- err }()
		select {
		case err := <-done:
			if v, ok := tidings.AsValidation(err); !ok || v.Field != "html" || v.Code != "template" || !strings.Contains(v.Message, "line ") {
				t.Errorf("%q: %v, want a template error with a line number", html, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%q: still compiling after 5 s", html)
		}
	}
	ok := base
	ok.HTML = `{{range $k, $v := .Subscriber.Attributes}}{{$k}}={{$v}} {{end}}{{range .Subscriber.Attributes.tags}}{{.}}{{end}}` +
		`{{range index .Subscriber.Attributes "tags"}}{{range $.Subscriber.Attributes.tags}}{{.}}{{end}}{{end}}`
	if _, err := send.Compile(ok); err != nil {
		t.Fatalf("ranges over subscriber data: %v", err)
	}
}

// TestAddressesFitSMTP: the VERP return path and the List-Unsubscribe mailto address
// have local parts of at most 64 octets (RFC 5321 §4.5.3.1.1), or strict mail systems
// refuse to send the unsubscribe request or the bounce.
func TestAddressesFitSMTP(t *testing.T) {
	store := testdb.Open(t, sqlstore.SQLite)
	ctx := context.Background()
	f := newFixture(t, store)
	f.subscribe(t, "limits@example.com", f.l1.ID)
	sink := mailtest.New(t)
	eng := engineFor(t, store, sink)
	store.SetCampaignStatus(ctx, f.acc.ID, f.campaign.ID, tidings.CampaignSending, "")
	if err := eng.Send(ctx, f.acc.ID, f.campaign.ID); err != nil {
		t.Fatal(err)
	}
	m := sink.Messages()[0]
	mailto := regexp.MustCompile(`<mailto:([^@>]+)@`).FindSubmatch(m.Data)
	if mailto == nil {
		t.Fatal("no List-Unsubscribe mailto address")
	}
	for what, addr := range map[string]string{"return path": m.From, "List-Unsubscribe mailto": string(mailto[1]) + "@x"} {
		if local, _, _ := strings.Cut(addr, "@"); len(local) > 64 {
			t.Errorf("%s %q: local part of %d octets, more than 64", what, addr, len(local))
		}
	}
}

// TestPauseStopsWithinBatch: pausing (or cancelling) a campaign stops its sending within
// about a second, not only when the workers next claim a batch: with a rate limit, the
// rest of a 500-recipient batch could take minutes.
func TestPauseStopsWithinBatch(t *testing.T) {
	store := testdb.Open(t, sqlstore.SQLite)
	ctx := context.Background()
	f := newFixture(t, store)
	for i := range 100 {
		f.subscribe(t, fmt.Sprintf("slow%03d@example.com", i), f.l1.ID)
	}
	sink := mailtest.New(t)
	eng := engineFor(t, store, sink)
	eng.Rate, eng.Workers = 20, 1 // the one batch takes five seconds
	if err := store.SetCampaignStatus(ctx, f.acc.ID, f.campaign.ID, tidings.CampaignSending, ""); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- eng.Send(ctx, f.acc.ID, f.campaign.ID) }()
	time.Sleep(500 * time.Millisecond)
	if err := store.SetCampaignStatus(ctx, f.acc.ID, f.campaign.ID, tidings.CampaignPaused, "by hand"); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if took := time.Since(paused); took > 2*time.Second {
		t.Fatalf("sending went on for %v after the pause (%d messages sent)", took, len(sink.Messages()))
	}
	if n := len(sink.Messages()); n >= 100 {
		t.Fatalf("%d messages sent after pausing; want the rest held back", n)
	}
	// Resuming sends the rest, each recipient once.
	if err := store.SetCampaignStatus(ctx, f.acc.ID, f.campaign.ID, tidings.CampaignSending, ""); err != nil {
		t.Fatal(err)
	}
	eng2 := engineFor(t, store, sink)
	eng2.Now = func() time.Time { return time.Now().Add(2 * time.Minute) } // the paused batch's lease has expired
	if err := eng2.Send(ctx, f.acc.ID, f.campaign.ID); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if n := len(sink.Find(fmt.Sprintf("slow%03d@example.com", i))); n != 1 {
			t.Fatalf("slow%03d received %d messages", i, n)
		}
	}
}

// TestLongBatchKeepsLease: a batch that takes longer than the lease (a rate limit or a
// per-domain throttle) stays its worker's: the lease is renewed while it sends, so no
// other worker or node claims it and mails its recipients a second time.
func TestLongBatchKeepsLease(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			store := testdb.Open(t, engine)
			ctx := context.Background()
			f := newFixture(t, store)
			for i := range 20 {
				f.subscribe(t, fmt.Sprintf("long%02d@example.com", i), f.l1.ID)
			}
			sink := mailtest.New(t)
			eng := engineFor(t, store, sink)
			eng.Rate, eng.Workers, eng.Lease = 10, 2, 300*time.Millisecond // the batch takes two seconds
			if err := store.SetCampaignStatus(ctx, f.acc.ID, f.campaign.ID, tidings.CampaignSending, ""); err != nil {
				t.Fatal(err)
			}
			if err := eng.Send(ctx, f.acc.ID, f.campaign.ID); err != nil {
				t.Fatal(err)
			}
			for i := range 20 {
				if n := len(sink.Find(fmt.Sprintf("long%02d@example.com", i))); n != 1 {
					t.Fatalf("long%02d received %d messages, want 1", i, n)
				}
			}
		})
	}
}

// TestBrokenCampaignDoesNotBlockOthers: a campaign that cannot be sent (its template no
// longer compiles, say after an upgrade tightened the sandbox) is paused with the reason,
// and the campaigns due after it are still sent.
func TestBrokenCampaignDoesNotBlockOthers(t *testing.T) {
	store := testdb.Open(t, sqlstore.SQLite)
	ctx := context.Background()
	f := newFixture(t, store)
	f.subscribe(t, "hol@example.com", f.l1.ID)
	broken := f.campaign
	broken.ID, broken.Name, broken.HTML = 0, "broken", `<p>{{range 3}}x{{end}}</p>`
	if err := store.CreateCampaign(ctx, f.acc.ID, &broken); err != nil { // the store does not compile templates
		t.Fatal(err)
	}
	good := f.campaign
	good.ID, good.Name = 0, "good"
	if err := store.CreateCampaign(ctx, f.acc.ID, &good); err != nil {
		t.Fatal(err)
	}
	for _, id := range []int64{broken.ID, good.ID} {
		if err := store.SetCampaignStatus(ctx, f.acc.ID, id, tidings.CampaignSending, ""); err != nil {
			t.Fatal(err)
		}
	}
	sink := mailtest.New(t)
	eng := engineFor(t, store, sink)
	eng.RunOnce(ctx)
	if got, _ := store.GetCampaign(ctx, f.acc.ID, good.ID); got.Status != tidings.CampaignSent {
		t.Fatalf("the campaign after the broken one is %s, want sent", got.Status)
	}
	got, _ := store.GetCampaign(ctx, f.acc.ID, broken.ID)
	if got.Status != tidings.CampaignPaused || !strings.Contains(got.PauseReason, "range") {
		t.Fatalf("the broken campaign is %s (%q), want paused with the reason", got.Status, got.PauseReason)
	}
}
