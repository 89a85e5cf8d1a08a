package track

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
)

// TestStaleEventDoesNotSinkItsGroup: an open for a campaign deleted since its mail went
// out cannot be stored, but the events committed in the same group still are, and each
// request hears its own outcome.
func TestStaleEventDoesNotSinkItsGroup(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			s := testdb.Open(t, engine)
			ctx := context.Background()
			acc := tidings.Account{PostalAddress: "1 Example Street, Exampletown", Name: "Shop", ContactEmail: "dpo@shop.example"}
			s.CreateAccount(ctx, &acc)
			l := tidings.NewList("News")
			s.CreateList(ctx, acc.ID, &l)
			var live, gone tidings.Campaign
			for _, c := range []*tidings.Campaign{&live, &gone} {
				*c = tidings.Campaign{Name: "c", Subject: "s", FromAddress: "a@shop.example", HTML: "x", Lists: []int64{l.ID}}
				if err := s.CreateCampaign(ctx, acc.ID, c); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.DeleteCampaign(ctx, acc.ID, gone.ID); err != nil {
				t.Fatal(err)
			}
			w := NewWriterInterval(ctx, s, 200*time.Millisecond) // long enough to gather everyone below into one group
			const n = 20
			errs := make([]error, n+1)
			var wg sync.WaitGroup
			for i := range n + 1 {
				c := live.ID
				if i == n {
					c = gone.ID
				}
				wg.Go(func() {
					errs[i] = w.Record(ctx, tidings.Event{AccountID: acc.ID, CampaignID: c, Kind: tidings.EventOpen, Time: time.Now()})
				})
			}
			wg.Wait()
			for i, err := range errs[:n] {
				if err != nil {
					t.Fatalf("open %d of the live campaign: %v", i, err)
				}
			}
			if errs[n] == nil {
				t.Fatal("the deleted campaign's open was reported stored")
			}
			st, err := s.CampaignStats(ctx, acc.ID, live.ID)
			if err != nil || st.AnonOpens != n {
				t.Fatalf("live campaign: %d anonymous opens (%v), want %d", st.AnonOpens, err, n)
			}
		})
	}
}
