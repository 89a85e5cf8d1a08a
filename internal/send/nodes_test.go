package send_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tidings/tidings/internal/mail/mailtest"
	"github.com/tidings/tidings/internal/sqlstore"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
)

// TestTwoNodesShareACampaign runs two engines, each with its own connection pool (as
// two `tidings serve` nodes would), on one database and one campaign: every recipient
// gets exactly one message, and both nodes do part of the work.
func TestTwoNodesShareACampaign(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		if engine != sqlstore.Postgres {
			continue
		}
		t.Run(string(engine), func(t *testing.T) {
			url := testdb.URL(t, engine)
			open := func() *sqlstore.Store {
				s, err := sqlstore.Open(context.Background(), url, testdb.Keyring(t), nil)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			}
			nodeA, nodeB := open(), open()
			ctx := context.Background()
			f := newFixture(t, nodeA)
			const n = 2000
			for i := range n {
				f.subscribe(t, fmt.Sprintf("two%04d@example.com", i), f.l1.ID)
			}
			if err := nodeA.SetCampaignStatus(ctx, f.acc.ID, f.campaign.ID, tidings.CampaignSending, ""); err != nil {
				t.Fatal(err)
			}
			sink := mailtest.New(t)
			sink.Delay = time.Millisecond // each batch takes a while, so neither node can take them all
			engA, engB := engineFor(t, nodeA, sink), engineFor(t, nodeB, sink)
			engA.Node, engB.Node = "node-a", "node-b"
			engA.Workers, engB.Workers = 1, 1
			var wg sync.WaitGroup
			for _, e := range []interface {
				Send(context.Context, int64, int64) error
			}{engA, engB} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := e.Send(ctx, f.acc.ID, f.campaign.ID); err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			got := map[string]int{}
			for _, m := range sink.Messages() {
				got[m.To[0]]++
			}
			for i := range n {
				if addr := fmt.Sprintf("two%04d@example.com", i); got[addr] != 1 {
					t.Fatalf("%s received %d messages", addr, got[addr])
				}
			}
			var byNode = map[string]int{}
			rows, err := nodeA.DB().Query(`SELECT lease_owner, COUNT(*) FROM campaign_batches WHERE campaign_id = $1 GROUP BY lease_owner`, f.campaign.ID)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var owner string
				var c int
				rows.Scan(&owner, &c)
				byNode[owner] = c
			}
			rows.Close()
			if byNode["node-a"] == 0 || byNode["node-b"] == 0 {
				t.Fatalf("one node did all the work: %v", byNode)
			}
			t.Logf("batches per node: %v", byNode)
		})
	}
}

// TestDeadNodesBatchIsTakenOver: a node claims a batch and dies; once its lease expires,
// another node sends that batch.
func TestDeadNodesBatchIsTakenOver(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			store := testdb.Open(t, engine)
			ctx := context.Background()
			f := newFixture(t, store)
			for i := range 700 { // two batches
				f.subscribe(t, fmt.Sprintf("lease%03d@example.com", i), f.l1.ID)
			}
			store.SetCampaignStatus(ctx, f.acc.ID, f.campaign.ID, tidings.CampaignSending, "")
			now := time.Now()
			dead, err := store.ClaimBatch(ctx, f.campaign.ID, "dead-node", now, now.Add(time.Minute))
			if err != nil || len(dead.Recipients) == 0 {
				t.Fatalf("claim: %v", err)
			}
			sink := mailtest.New(t)
			eng := engineFor(t, store, sink)
			eng.Node = "survivor"
			if err := eng.Send(ctx, f.acc.ID, f.campaign.ID); err != nil {
				t.Fatal(err)
			}
			if c, _ := store.GetCampaign(ctx, f.acc.ID, f.campaign.ID); c.Status != tidings.CampaignSending {
				t.Fatalf("the campaign finished while a batch was still leased: %s", c.Status)
			}
			eng.Now = func() time.Time { return time.Now().Add(2 * time.Minute) } // the dead node's lease has run out
			if err := eng.Send(ctx, f.acc.ID, f.campaign.ID); err != nil {
				t.Fatal(err)
			}
			c, _ := store.GetCampaign(ctx, f.acc.ID, f.campaign.ID)
			if c.Status != tidings.CampaignSent || sink.Count() != 700 {
				t.Fatalf("after the lease expired: %s, %d sent", c.Status, sink.Count())
			}
		})
	}
}
