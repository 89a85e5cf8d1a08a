package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/tidings/tidings/internal/storetest"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
)

// TestInactivityOutlivesEventRetention: with an inactivity rule longer than the event
// retention (a year against six months), a reader who opened a campaign seven months
// ago is active within the year, though that open was rolled into the anonymous daily
// aggregates since; the inactivity sweep must not delete them. Someone who never
// reacted is deleted.
func TestInactivityOutlivesEventRetention(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			s := testdb.Open(t, engine)
			ctx := context.Background()
			a := tidings.Account{PostalAddress: "1 Example Street, Exampletown", Name: "Club", ContactEmail: "dpo@club.example", TrackingEnabled: true, InactiveDays: 365}
			if err := s.CreateAccount(ctx, &a); err != nil {
				t.Fatal(err)
			}
			l := tidings.NewList("news")
			if err := s.CreateList(ctx, a.ID, &l); err != nil {
				t.Fatal(err)
			}
			reader := tidings.Subscriber{Email: tidings.MustParseAddress("reader@club.example"), TrackingConsent: true}
			sleeper := tidings.Subscriber{Email: tidings.MustParseAddress("sleeper@club.example"), TrackingConsent: true}
			for _, sub := range []*tidings.Subscriber{&reader, &sleeper} {
				if err := s.CreateSubscriber(ctx, a.ID, sub, []int64{l.ID}, tidings.SubConfirmed, &tidings.TrackingGrant{Source: tidings.SourceAdmin, Evidence: tidings.Evidence{Note: "recorded by the test"}}); err != nil {
					t.Fatal(err)
				}
			}
			camp := tidings.Campaign{Name: "c", Subject: "s", FromAddress: "a@club.example", HTML: "x", Lists: []int64{l.ID}}
			if err := s.CreateCampaign(ctx, a.ID, &camp); err != nil {
				t.Fatal(err)
			}
			if err := s.SetCampaignStatus(ctx, a.ID, camp.ID, tidings.CampaignSending, ""); err != nil {
				t.Fatal(err)
			}
			storetest.SendAll(t, s, camp.ID)
			now := time.Now()
			sevenMonths := now.AddDate(0, -7, 0)
			if err := s.RecordEvents(ctx, []tidings.Event{{AccountID: a.ID, CampaignID: camp.ID, SubscriberID: reader.ID,
				Kind: tidings.EventOpen, Time: sevenMonths}}); err != nil {
				t.Fatal(err)
			}
			// Everyone subscribed two years ago; the campaign went out seven months ago.
			old := now.AddDate(-2, 0, 0).UnixMicro()
			for _, q := range []string{`UPDATE subscribers SET created_at = $1, updated_at = $1`, `UPDATE subscriptions SET created_at = $1, confirmed_at = $1`} {
				if _, err := s.DB().ExecContext(ctx, q, old); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.DB().ExecContext(ctx, `UPDATE deliveries SET sent_at = $1`, sevenMonths.UnixMicro()); err != nil {
				t.Fatal(err)
			}
			// Retention rolls the open up, as the sweeper does after six months.
			if n, err := s.RollUpEvents(ctx, 0, now.Add(-tidings.EventRetention), false); err != nil || n != 1 {
				t.Fatalf("roll-up: %d, %v", n, err)
			}
			cutoff := now.AddDate(0, 0, -a.InactiveDays)
			if n, err := s.DeleteInactive(ctx, a.ID, cutoff, true); err != nil || n != 1 {
				t.Fatalf("dry run: %d inactive (%v), want 1 (the sleeper)", n, err)
			}
			if n, err := s.DeleteInactive(ctx, a.ID, cutoff, false); err != nil || n != 1 {
				t.Fatalf("deleted %d (%v), want 1", n, err)
			}
			if _, err := s.GetSubscriber(ctx, a.ID, reader.ID); err != nil {
				t.Fatalf("a reader active seven months ago was deleted by a one-year inactivity rule: %v", err)
			}
		})
	}
}
