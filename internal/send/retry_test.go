package send_test

import (
	"context"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/tidings/tidings/internal/bounce"
	"github.com/tidings/tidings/internal/mail/mailtest"
	"github.com/tidings/tidings/internal/send"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
)

// TestRetryChecksTheRecipientAgain: a relay defers ann's message, and while the engine
// waits to retry, a hard bounce or a complaint about last week's campaign arrives, or
// ann unsubscribes. The retry must not mail her: her delivery fails as "recipient no
// longer eligible", as a claim records those it drops. bob, whom nothing happened to,
// still gets his message.
func TestRetryChecksTheRecipientAgain(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		for _, what := range []string{"hard bounce", "complaint", "unsubscribe"} {
			t.Run(string(engine)+"/"+what, func(t *testing.T) {
				store := testdb.Open(t, engine)
				ctx := context.Background()
				f := newFixture(t, store)
				ann := f.subscribe(t, "ann@example.com", f.l1.ID)
				f.subscribe(t, "bob@example.com", f.l1.ID)
				kr := testdb.Keyring(t)
				proc := &bounce.Processor{Store: store, Keys: kr}
				var earlier tidings.Campaign
				var mu sync.Mutex
				armed, tries := false, 0 // armed once last week's campaign has gone out
				sink := mailtest.New(t)
				sink.Reject = func(rcpt string) error {
					mu.Lock()
					defer mu.Unlock()
					if !armed || rcpt != "ann@example.com" {
						return nil
					}
					if tries++; tries > 1 {
						return nil
					}
					token := send.RecipientToken(kr, f.acc.ID, earlier.ID, ann.ID)
					var err error
					switch what {
					case "hard bounce":
						_, err = proc.Apply(ctx, "", bounce.Report{Kind: tidings.FeedbackHard, Status: "5.1.1", Token: token})
					case "complaint":
						_, err = proc.Apply(ctx, "", bounce.Report{Kind: tidings.FeedbackComplaint, Token: token})
					default:
						_, err = store.Unsubscribe(ctx, f.acc.ID, ann.ID, nil, tidings.SourceMail, tidings.Evidence{Note: "test"})
					}
					if err != nil {
						t.Error(err)
					}
					return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
				}
				eng := engineFor(t, store, sink)

				// Last week's campaign went out to both.
				earlier = f.campaign
				earlier.ID, earlier.Name = 0, "last week"
				if err := store.CreateCampaign(ctx, f.acc.ID, &earlier); err != nil {
					t.Fatal(err)
				}
				if err := store.SetCampaignStatus(ctx, f.acc.ID, earlier.ID, tidings.CampaignSending, ""); err != nil {
					t.Fatal(err)
				}
				if err := eng.Send(ctx, f.acc.ID, earlier.ID); err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				armed = true
				mu.Unlock()
				if err := store.SetCampaignStatus(ctx, f.acc.ID, f.campaign.ID, tidings.CampaignSending, ""); err != nil {
					t.Fatal(err)
				}
				if err := eng.Send(ctx, f.acc.ID, f.campaign.ID); err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				defer mu.Unlock()
				if tries != 1 || len(sink.Find("ann@example.com")) != 1 {
					t.Fatalf("ann was tried %d times and has %d messages; want 1 try and only last week's", tries, len(sink.Find("ann@example.com")))
				}
				if n := len(sink.Find("bob@example.com")); n != 2 {
					t.Fatalf("bob has %d messages, want 2", n)
				}
				var status, why string
				db := store.DB()
				if err := db.QueryRowContext(ctx, `SELECT status, error FROM deliveries WHERE campaign_id = $1 AND subscriber_id = $2`,
					f.campaign.ID, ann.ID).Scan(&status, &why); err != nil {
					t.Fatal(err)
				}
				if status != string(tidings.DeliveryFailed) || why != "recipient no longer eligible" {
					t.Fatalf("ann's delivery: %s %q; want failed, recipient no longer eligible", status, why)
				}
				p, _ := store.CampaignProgress(ctx, f.acc.ID, f.campaign.ID)
				if p.Sent != 1 || p.Failed != 1 || p.Remaining != 0 {
					t.Fatalf("progress %+v; want 1 sent, 1 failed, none remaining", p)
				}
			})
		}
	}
}
