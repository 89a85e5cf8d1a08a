package bounce_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/smtp"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tidings/tidings/internal/bounce"
	"github.com/tidings/tidings/internal/consent"
	"github.com/tidings/tidings/internal/send"
	"github.com/tidings/tidings/internal/sqlstore"
	"github.com/tidings/tidings/internal/storetest"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
)

// fixture reads a report from testdata with TOKEN replaced.
func fixture(t *testing.T, name, token string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.ReplaceAll(b, []byte("TOKEN"), []byte(token))
}

const someToken = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

func TestParse(t *testing.T) {
	for _, c := range []struct {
		file   string
		kind   tidings.FeedbackKind
		status string
		detail string // a part of it
	}{
		{"dsn-hard.eml", tidings.FeedbackHard, "5.1.1", "User unknown"},
		{"dsn-full.eml", tidings.FeedbackSoft, "5.2.2", "over quota"},
		{"dsn-delayed.eml", "", "", ""},
		{"arf-abuse.eml", tidings.FeedbackComplaint, "", "abuse"},
		{"arf-redacted.eml", tidings.FeedbackComplaint, "", "abuse"}, // no return path: the List-Unsubscribe address names the recipient
		{"qmail.eml", tidings.FeedbackHard, "5.1.1", "no mailbox here"},
		{"autoreply.eml", "", "", ""},
	} {
		t.Run(c.file, func(t *testing.T) {
			rep, err := bounce.Parse(bytes.NewReader(fixture(t, c.file, someToken)))
			if err != nil {
				t.Fatal(err)
			}
			if rep.Kind != c.kind || rep.Status != c.status || !strings.Contains(rep.Detail, c.detail) {
				t.Fatalf("got %+v, want kind %q status %q detail containing %q", rep, c.kind, c.status, c.detail)
			}
			// The quoted original's return path names the recipient where one is quoted.
			if quoted := c.file != "dsn-delayed.eml" && c.file != "dsn-full.eml" && c.file != "autoreply.eml"; quoted && rep.Token != someToken {
				t.Fatalf("token %q, want the quoted return path's", rep.Token)
			}
		})
	}
}

func TestParseRefusesWhatIsNotMail(t *testing.T) {
	for _, in := range []string{"", "\x00\x01\x02 binary", "no header here\n\nbody"} {
		if _, err := bounce.Parse(strings.NewReader(in)); !errors.Is(err, bounce.ErrNotMail) {
			t.Errorf("Parse(%q) = %v, want ErrNotMail", in, err)
		}
	}
}

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		status, diag string
		want         tidings.FeedbackKind
	}{
		{"5.1.1", "", tidings.FeedbackHard},
		{"5.1.10", "null MX", tidings.FeedbackHard},
		{"5.2.1", "", tidings.FeedbackHard},
		{"5.2.2", "", tidings.FeedbackSoft},
		{"5.7.1", "550 5.7.1 Message rejected as spam", tidings.FeedbackSoft},
		{"5.7.1", "550 5.7.1 <x@y>: Recipient address rejected: User unknown", tidings.FeedbackHard},
		{"5.0.0", "550 no such user here", tidings.FeedbackHard},
		{"4.2.2", "452 4.2.2 mailbox full", tidings.FeedbackSoft},
		{"4.1.1", "450 4.1.1 user unknown (try again)", tidings.FeedbackSoft}, // 4.x.x is never final
		{"5.4.4", "", tidings.FeedbackHard},
		{"5.7.1", "550 temporarily blocked for policy reasons", tidings.FeedbackSoft},
		{"", "", tidings.FeedbackSoft},
	} {
		if got := bounce.Classify(c.status, c.diag); got != c.want {
			t.Errorf("Classify(%q, %q) = %q, want %q", c.status, c.diag, got, c.want)
		}
	}
}

func TestTokenFromAddress(t *testing.T) {
	for in, want := range map[string]string{
		"bounces+" + someToken + "@news.shop.example":     someToken,
		"<bounces+" + someToken + "@news.shop.example>":   someToken,
		"bounces+short@news.shop.example":                 "",
		"someone@news.shop.example":                       "",
		"bounces+" + someToken + "+x@news.shop.example":   "",
		"bounces+" + someToken:                            "",
		"other+" + someToken + "@news.shop.example":       "",
		"bounces+" + someToken + "<script>@shop.example":  "",
		"unsubscribe+" + someToken + "@news.shop.example": "",
	} {
		if got := bounce.TokenFromAddress(in); got != want {
			t.Errorf("TokenFromAddress(%q) = %q, want %q", in, got, want)
		}
	}
}

// sent is a campaign sent to two subscribers, with a processor on its store.
type sent struct {
	s        tidings.Store
	p        *bounce.Processor
	account  int64
	campaign int64
	subs     []tidings.Subscriber
}

func sendCampaign(t *testing.T, engine sqlstore.Engine) sent {
	ctx := context.Background()
	s := testdb.Open(t, engine)
	acc := tidings.Account{PostalAddress: "1 Example Street, Exampletown", Name: "Shop", ContactEmail: "dpo@shop.example"}
	if err := s.CreateAccount(ctx, &acc); err != nil {
		t.Fatal(err)
	}
	l := tidings.NewList("News")
	if err := s.CreateList(ctx, acc.ID, &l); err != nil {
		t.Fatal(err)
	}
	var subs []tidings.Subscriber
	for _, e := range []string{"gone@receiver.example", "angry@hotmail.example"} {
		sub := tidings.Subscriber{Email: tidings.MustParseAddress(e)}
		if err := s.CreateSubscriber(ctx, acc.ID, &sub, []int64{l.ID}, tidings.SubConfirmed, nil); err != nil {
			t.Fatal(err)
		}
		subs = append(subs, sub)
	}
	c := tidings.Campaign{Name: "Nov", Subject: "News", FromAddress: "news@shop.example", HTML: "<p>x</p>", Lists: []int64{l.ID}}
	if err := s.CreateCampaign(ctx, acc.ID, &c); err != nil {
		t.Fatal(err)
	}
	if err := s.SetCampaignStatus(ctx, acc.ID, c.ID, tidings.CampaignSending, ""); err != nil {
		t.Fatal(err)
	}
	storetest.SendAll(t, s, c.ID)
	kr := testdb.Keyring(t)
	p := &bounce.Processor{Store: s, Keys: kr, Consent: &consent.Service{Store: s, Keys: kr}}
	return sent{s: s, p: p, account: acc.ID, campaign: c.ID, subs: subs}
}

// serve starts an inbound server on the processor and returns its address.
func (x sent) serve(t *testing.T) string {
	srv := bounce.NewServer(x.p, "bounces.test")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func (x sent) token(i int) string {
	return send.RecipientToken(x.p.Keys, x.account, x.campaign, x.subs[i].ID)
}

// TestServer: reports arrive over SMTP at the VERP return path and are applied to their
// delivery; addresses that are not valid return paths are refused at RCPT.
func TestServer(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			x := sendCampaign(t, engine)
			addr := x.serve(t)

			deliver := func(rcpt string, msg []byte) error {
				return smtp.SendMail(addr, nil, "", []string{rcpt}, msg)
			}
			if err := deliver("postmaster@shop.example", []byte("Subject: hi\r\n\r\nhello\r\n")); err == nil || !strings.Contains(err.Error(), "550") {
				t.Fatalf("mail to a non-bounce address: %v, want 550", err)
			}
			forged := "bounces+" + someToken + "@news.shop.example"
			if err := deliver(forged, fixture(t, "dsn-hard.eml", someToken)); err == nil || !strings.Contains(err.Error(), "550") {
				t.Fatalf("mail to a forged return path: %v, want 550", err)
			}
			if err := deliver("bounces+"+x.token(0)+"@news.shop.example", []byte("no header here\r\n\r\nbody\r\n")); err == nil || !strings.Contains(err.Error(), "554") {
				t.Fatalf("a message that is not mail: %v, want 554", err)
			}
			hard := fixture(t, "dsn-hard.eml", x.token(0))
			for range 2 { // a repeated report changes nothing
				if err := deliver("bounces+"+x.token(0)+"@news.shop.example", hard); err != nil {
					t.Fatal(err)
				}
			}
			// A feedback loop reports to its own address: the quoted original names the
			// recipient.
			out, err := x.p.Handle(context.Background(), "", bytes.NewReader(fixture(t, "arf-abuse.eml", x.token(1))))
			if err != nil || out.Result != bounce.Recorded || !out.Suppressed || out.Kind != tidings.FeedbackComplaint {
				t.Fatalf("complaint: %+v, %v", out, err)
			}

			ctx := context.Background()
			st, err := x.s.CampaignStats(ctx, x.account, x.campaign)
			if err != nil {
				t.Fatal(err)
			}
			if st.Bounced != 1 || st.Complaints != 1 {
				t.Fatalf("campaign stats: %d bounced, %d complaints; want 1 and 1", st.Bounced, st.Complaints)
			}
			if held, reason, _ := x.s.Suppressed(ctx, x.account, x.subs[0].Email); !held || reason != tidings.SuppressBounce {
				t.Fatalf("the hard-bounced address: suppressed %v (%q)", held, reason)
			}
			if held, reason, _ := x.s.Suppressed(ctx, x.account, x.subs[1].Email); !held || reason != tidings.SuppressComplaint {
				t.Fatalf("the complaining address: suppressed %v (%q)", held, reason)
			}
		})
	}
}

// TestUnsubscribeByMail: a message to the List-Unsubscribe mailto address withdraws the
// recipient's consent, with a ledger entry and a suppression, and counts as the
// campaign's unsubscribe; nobody else is touched.
func TestUnsubscribeByMail(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			x := sendCampaign(t, engine)
			addr := x.serve(t)
			to := "unsubscribe+" + x.token(0) + "@news.shop.example"
			if err := smtp.SendMail(addr, nil, "gone@receiver.example", []string{to}, []byte("Subject: unsubscribe\r\n\r\n\r\n")); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			for i, want := range []tidings.SubscriptionStatus{tidings.SubUnsubscribed, tidings.SubConfirmed} {
				subs, err := x.s.Subscriptions(ctx, x.account, x.subs[i].ID)
				if err != nil || len(subs) != 1 || subs[0].Status != want {
					t.Fatalf("subscriber %d after the mail: %+v, %v; want %s", i, subs, err, want)
				}
			}
			if held, reason, _ := x.s.Suppressed(ctx, x.account, x.subs[0].Email); !held || reason != tidings.SuppressUnsubscribed {
				t.Fatalf("suppressed %v (%q), want unsubscribed", held, reason)
			}
			if st, _ := x.s.CampaignStats(ctx, x.account, x.campaign); st.Unsubscribes != 1 {
				t.Fatalf("campaign unsubscribes = %d, want 1", st.Unsubscribes)
			}
			// The address messages carry now: "unsub+" keeps the local part within 64
			// octets ("unsubscribe+", above, is what earlier messages carry).
			if err := smtp.SendMail(addr, nil, "angry@hotmail.example", []string{"unsub+" + x.token(1) + "@news.shop.example"}, []byte("Subject: stop\r\n\r\n\r\n")); err != nil {
				t.Fatal(err)
			}
			if subs, _ := x.s.Subscriptions(ctx, x.account, x.subs[1].ID); len(subs) != 1 || subs[0].Status != tidings.SubUnsubscribed {
				t.Fatalf("after mail to unsub+: %+v", subs)
			}
			if err := smtp.SendMail(addr, nil, "x@y.example", []string{"unsubscribe+" + someToken + "@news.shop.example"}, []byte("\r\n")); err == nil || !strings.Contains(err.Error(), "550") {
				t.Fatalf("a forged unsubscribe address: %v, want 550", err)
			}
		})
	}
}

// TestUnsubscribeCountsOnce: an unsubscribe counts for the campaign only when it
// withdrew a subscription: a repeated request (mail systems retry, people press twice)
// and the inert link of a test send (subscriber 0) count nothing.
func TestUnsubscribeCountsOnce(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			x := sendCampaign(t, engine)
			ctx := context.Background()
			for range 3 {
				if err := x.p.Unsubscribe(ctx, x.token(0)); err != nil {
					t.Fatal(err)
				}
			}
			testSend := send.RecipientToken(x.p.Keys, x.account, x.campaign, 0)
			if err := x.p.Unsubscribe(ctx, testSend); err != nil {
				t.Fatal(err)
			}
			if st, _ := x.s.CampaignStats(ctx, x.account, x.campaign); st.Unsubscribes != 1 {
				t.Fatalf("campaign unsubscribes = %d, want 1", st.Unsubscribes)
			}
		})
	}
}

// TestHandleIgnores: reports that are not bounces, or cannot be matched, change nothing.
func TestHandleIgnores(t *testing.T) {
	x := sendCampaign(t, sqlstore.SQLite)
	ctx := context.Background()
	for _, c := range []struct {
		name, rcpt string
		msg        []byte
		reason     string
	}{
		{"delay notice", "bounces+" + x.token(0) + "@news.shop.example", fixture(t, "dsn-delayed.eml", x.token(0)), "not a bounce"},
		{"auto-reply", "bounces+" + x.token(0) + "@news.shop.example", fixture(t, "autoreply.eml", x.token(0)), "not a bounce"},
		{"no token", "", fixture(t, "dsn-full.eml", x.token(0)), "no recipient token"},
		{"forged token", "", fixture(t, "dsn-hard.eml", someToken), "not valid"},
	} {
		out, err := x.p.Handle(ctx, c.rcpt, bytes.NewReader(c.msg))
		if err != nil || out.Result != bounce.Ignored || !strings.Contains(out.Reason, c.reason) {
			t.Errorf("%s: %+v, %v; want ignored because %q", c.name, out, err, c.reason)
		}
	}
	if _, err := x.p.Handle(ctx, "", bytes.NewReader(bytes.Repeat([]byte("x"), bounce.MaxMessageBytes+1))); !bounce.IsTooLarge(err) {
		t.Errorf("oversized report: %v", err)
	}
	st, _ := x.s.CampaignStats(ctx, x.account, x.campaign)
	if st.Bounced != 0 || st.SoftBounced != 0 || st.Complaints != 0 {
		t.Fatalf("ignored reports were counted: %+v", st)
	}
}

// TestDirtyDiagnostic: a remote server's diagnostic with NUL, control characters and
// bytes that are not UTF-8 is stored as clean text (PostgreSQL refuses the rest), and
// the report is applied, not lost.
func TestDirtyDiagnostic(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			x := sendCampaign(t, engine)
			msg := bytes.Replace(fixture(t, "dsn-hard.eml", x.token(0)), []byte("User unknown in virtual mailbox table"),
				[]byte("User unknown \x00\x01 caf\xe9 \xff\xfe"+strings.Repeat("é", 200)), 1)
			rep, err := bounce.Parse(bytes.NewReader(msg))
			if err != nil {
				t.Fatal(err)
			}
			if !utf8.ValidString(rep.Detail) || strings.ContainsAny(rep.Detail, "\x00\x01") || len(rep.Detail) > 300 {
				t.Fatalf("detail is not clean text: %q", rep.Detail)
			}
			out, err := x.p.Handle(context.Background(), "", bytes.NewReader(msg))
			if err != nil || out.Result != bounce.Recorded {
				t.Fatalf("dirty report: %+v, %v; want recorded", out, err)
			}
		})
	}
}
