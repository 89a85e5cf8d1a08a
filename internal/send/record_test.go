package send_test

import (
	"context"
	"testing"
	"time"

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
