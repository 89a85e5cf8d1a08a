package sqlstore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tidings/tidings/internal/importer"
	"github.com/tidings/tidings/internal/sqlstore"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
)

// TestPlanningInSteps: a campaign's recipients are planned a step at a time, so starting
// it examines one step's subscribers; claiming plans on as needed, batches open only when
// full (or planning is over), every recipient is claimed exactly once, and the campaign
// ends as sent only after the last step.
func TestPlanningInSteps(t *testing.T) {
	sqlstore.SetPlanStepSize(t, 300)
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			s := testdb.Open(t, engine)
			ctx := context.Background()
			acc := tidings.Account{PostalAddress: "1 Example Street, Exampletown", Name: "Shop", ContactEmail: "dpo@shop.example"}
			s.CreateAccount(ctx, &acc)
			l := tidings.NewList("News")
			s.CreateList(ctx, acc.ID, &l)
			const people = 1234
			var csv strings.Builder
			csv.WriteString("email\n")
			for i := range people {
				fmt.Fprintf(&csv, "p%d@plan.example\n", i)
			}
			if _, err := importer.Run(ctx, s, nil, strings.NewReader(csv.String()), importer.Options{AccountID: acc.ID, ListID: l.ID,
				Mode: importer.Confirmed, Declaration: tidings.ImportDeclaration{Source: "test", LawfulBasis: tidings.BasisConsent}}); err != nil {
				t.Fatal(err)
			}
			c := tidings.Campaign{Name: "c", Subject: "s", FromAddress: "a@plan.example", HTML: "x", Lists: []int64{l.ID}}
			if err := s.CreateCampaign(ctx, acc.ID, &c); err != nil {
				t.Fatal(err)
			}
			if err := s.SetCampaignStatus(ctx, acc.ID, c.ID, tidings.CampaignSending, ""); err != nil {
				t.Fatal(err)
			}
			p, err := s.CampaignProgress(ctx, acc.ID, c.ID)
			if err != nil || !p.Planning || p.Total != 300 || p.ETA != "" {
				t.Fatalf("after starting: %+v, %v; want planning with 300 planned and no ETA", p, err)
			}
			seen := map[int64]bool{}
			var sizes []int
			for {
				now := time.Now()
				b, err := s.ClaimBatch(ctx, c.ID, "n1", now, now.Add(time.Minute))
				if err != nil {
					break
				}
				sizes = append(sizes, len(b.Recipients))
				var res []tidings.DeliveryResult
				for _, r := range b.Recipients {
					if seen[r.Subscriber.ID] {
						t.Fatalf("subscriber %d claimed twice", r.Subscriber.ID)
					}
					seen[r.Subscriber.ID] = true
					res = append(res, tidings.DeliveryResult{SubscriberID: r.Subscriber.ID, Status: tidings.DeliverySent, Attempts: 1})
				}
				if err := s.RecordDeliveries(ctx, c.ID, b.No, "n1", res, true); err != nil {
					t.Fatal(err)
				}
			}
			if len(seen) != people || fmt.Sprint(sizes) != fmt.Sprint([]int{500, 500, 234}) {
				t.Fatalf("claimed %d recipients in batches %v; want %d in [500 500 234]", len(seen), sizes, people)
			}
			got, err := s.GetCampaign(ctx, acc.ID, c.ID)
			if err != nil || got.Status != tidings.CampaignSent {
				t.Fatalf("campaign after the last batch: %s, %v; want sent", got.Status, err)
			}
			if p, _ := s.CampaignProgress(ctx, acc.ID, c.ID); p.Planning || p.Total != people || p.Sent != people {
				t.Fatalf("final progress: %+v", p)
			}
		})
	}
}
