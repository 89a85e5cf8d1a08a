package send_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tidings/tidings/internal/bounce"
	"github.com/tidings/tidings/internal/mail/mailtest"
	"github.com/tidings/tidings/internal/send"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
)

// RecordDeliveries changes queued deliveries only, once each, and counts what changed:
// a repeated result (in one call or a later one) neither overwrites nor counts twice.
func TestRecordDeliveriesOncePerRecipient(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			store := testdb.Open(t, engine)
			ctx := context.Background()
			f := newFixture(t, store)
			a, b, c := f.subscribe(t, "ann@example.com", f.l1.ID), f.subscribe(t, "bob@example.com", f.l1.ID), f.subscribe(t, "cid@example.com", f.l1.ID)
			if err := store.SetCampaignStatus(ctx, f.acc.ID, f.campaign.ID, tidings.CampaignSending, ""); err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			batch, err := store.ClaimBatch(ctx, f.campaign.ID, "n1", now, now.Add(time.Minute))
			if err != nil || len(batch.Recipients) != 3 {
				t.Fatalf("claim: %d recipients, %v", len(batch.Recipients), err)
			}
			res := []tidings.DeliveryResult{
				{SubscriberID: a.ID, Status: tidings.DeliverySent, MessageID: "m1@x", Attempts: 1},
				{SubscriberID: b.ID, Status: tidings.DeliveryFailed, Error: "550 no", Attempts: 1},
				{SubscriberID: a.ID, Status: tidings.DeliveryFailed, Error: "later", Attempts: 2}, // the first one stands
			}
			if err := store.RecordDeliveries(ctx, f.campaign.ID, batch.No, "n1", res, false); err != nil {
				t.Fatal(err)
			}
			again := []tidings.DeliveryResult{
				{SubscriberID: b.ID, Status: tidings.DeliverySent, MessageID: "m2@x", Attempts: 2},
				{SubscriberID: c.ID, Status: tidings.DeliverySent, MessageID: "m3@x", Attempts: 1},
			}
			if err := store.RecordDeliveries(ctx, f.campaign.ID, batch.No, "n1", again, true); err != nil {
				t.Fatal(err)
			}
			p, err := store.CampaignProgress(ctx, f.acc.ID, f.campaign.ID)
			if err != nil || p.Sent != 2 || p.Failed != 1 || p.Remaining != 0 {
				t.Fatalf("progress %+v, %v; want 2 sent, 1 failed", p, err)
			}
			got, err := store.GetCampaign(ctx, f.acc.ID, f.campaign.ID)
			if err != nil || got.Status != tidings.CampaignSent {
				t.Fatalf("campaign %s, %v; want sent", got.Status, err)
			}
		})
	}
}

// A receiving system can bounce a message before the engine's group commit records its
// send. The campaign still ends with nothing remaining and every recipient counted once
// (the bounce among the sent), and the bounce counts.
func TestBounceBeforeSendIsRecorded(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			store := testdb.Open(t, engine)
			ctx := context.Background()
			f := newFixture(t, store)
			ids := map[string]int64{}
			for _, addr := range []string{"ann@example.com", "bob@example.com", "cid@example.com"} {
				ids[addr] = f.subscribe(t, addr, f.l1.ID).ID
			}
			kr := testdb.Keyring(t)
			proc := &bounce.Processor{Store: store, Keys: kr}
			sink := mailtest.New(t)
			var mu sync.Mutex
			var outcomes []bounce.Outcome
			// bob's relay answers with a bounce before it accepts: the report is applied
			// while the send is still unrecorded, whatever the flush timing.
			sink.Reject = func(rcpt string) error {
				if rcpt != "bob@example.com" {
					return nil
				}
				out, err := proc.Apply(ctx, "", bounce.Report{Kind: tidings.FeedbackHard, Status: "5.1.1",
					Token: send.RecipientToken(kr, f.acc.ID, f.campaign.ID, ids[rcpt])})
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				outcomes = append(outcomes, out)
				mu.Unlock()
				return nil
			}
			eng := engineFor(t, store, sink)
			eng.FlushEvery = time.Hour // recorded only when the batch ends
			if err := store.SetCampaignStatus(ctx, f.acc.ID, f.campaign.ID, tidings.CampaignSending, ""); err != nil {
				t.Fatal(err)
			}
			if err := eng.Send(ctx, f.acc.ID, f.campaign.ID); err != nil {
				t.Fatal(err)
			}
			if len(outcomes) != 1 || outcomes[0].Result != bounce.Recorded {
				t.Fatalf("bounce outcomes: %+v, want one recorded", outcomes)
			}
			st, err := store.CampaignStats(ctx, f.acc.ID, f.campaign.ID)
			if err != nil {
				t.Fatal(err)
			}
			p, _ := store.CampaignProgress(ctx, f.acc.ID, f.campaign.ID)
			if p.Sent != 3 || p.Failed != 0 || p.Remaining != 0 || st.Bounced != 1 {
				t.Fatalf("progress %+v, %d bounced; want 3 sent, none remaining, 1 bounced", p, st.Bounced)
			}
			if got, _ := store.GetCampaign(ctx, f.acc.ID, f.campaign.ID); got.Status != tidings.CampaignSent {
				t.Fatalf("campaign %s, want sent", got.Status)
			}
		})
	}
}
