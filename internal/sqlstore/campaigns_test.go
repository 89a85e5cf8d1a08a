package sqlstore_test

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
)

// A deleted campaign leaves nothing behind: not its deliveries and counters, which go
// by cascade, nor its events (which name the readers who consented), their uniques,
// daily roll-ups, and link and day counters, which have no foreign key to it. Another
// campaign's rows stay.
func TestDeleteCampaignLeavesNothing(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			ctx := context.Background()
			s := testdb.Open(t, engine)
			a, c, subs := sentCampaign(t, s, "reader@club.example")
			other := tidings.Campaign{Name: "kept", Subject: "s", FromAddress: "a@club.example", HTML: "x", Lists: c.Lists}
			if err := s.CreateCampaign(ctx, a.ID, &other); err != nil {
				t.Fatal(err)
			}
			old := time.Now().AddDate(-1, 0, 0) // older than the retention: rolled up below
			var events []tidings.Event
			for _, id := range []int64{c.ID, other.ID} {
				for _, at := range []time.Time{old, time.Now()} {
					events = append(events,
						tidings.Event{AccountID: a.ID, CampaignID: id, SubscriberID: subs[0].ID, Kind: tidings.EventOpen, Time: at},
						tidings.Event{AccountID: a.ID, CampaignID: id, SubscriberID: subs[0].ID, Kind: tidings.EventClick, URL: "https://club.example/a", Time: at})
				}
			}
			if err := s.RecordEvents(ctx, events); err != nil {
				t.Fatal(err)
			}
			if _, err := s.RollUpEvents(ctx, a.ID, time.Now().AddDate(0, -6, 0), false); err != nil {
				t.Fatal(err)
			}
			tables := []string{"deliveries", "campaign_batches", "campaign_stats", "events", "event_uniques", "event_daily", "campaign_daily", "campaign_links"}
			rows := func(campaign int64) map[string]int {
				n := map[string]int{}
				for _, table := range tables {
					n[table] = count(t, s, `SELECT COUNT(*) FROM `+table+` WHERE campaign_id = $1`, campaign)
				}
				return n
			}
			before := rows(c.ID)
			for _, table := range tables {
				if before[table] == 0 {
					t.Fatalf("the set-up wrote no %s rows for the campaign: the test would prove nothing", table)
				}
			}
			kept := rows(other.ID)
			if err := s.DeleteCampaign(ctx, a.ID, c.ID); err != nil {
				t.Fatal(err)
			}
			for table, n := range rows(c.ID) {
				if n != 0 {
					t.Errorf("%d %s rows outlive their campaign", n, table)
				}
			}
			if after := rows(other.ID); !maps.Equal(after, kept) {
				t.Errorf("another campaign's rows changed: %v, were %v", after, kept)
			}
		})
	}
}
