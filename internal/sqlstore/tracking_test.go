package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
)

// TestRecordEventsLeavesOutDeletedCampaigns: a group holding events of a campaign
// deleted since its mail went out (and one naming another account's campaign) is
// written in the same call without them, and the error names exactly those.
func TestRecordEventsLeavesOutDeletedCampaigns(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			s := testdb.Open(t, engine)
			ctx := context.Background()
			var accounts [2]tidings.Account
			var camps [3]tidings.Campaign // live and gone of account 0, other of account 1
			for i := range accounts {
				accounts[i] = tidings.Account{PostalAddress: "1 Example Street, Exampletown", Name: "Shop", ContactEmail: "dpo@shop.example"}
				if err := s.CreateAccount(ctx, &accounts[i]); err != nil {
					t.Fatal(err)
				}
			}
			for i := range camps {
				a := accounts[i/2].ID
				l := tidings.NewList(fmt.Sprint("News ", i))
				if err := s.CreateList(ctx, a, &l); err != nil {
					t.Fatal(err)
				}
				camps[i] = tidings.Campaign{Name: "c", Subject: "s", FromAddress: "a@shop.example", HTML: "x", Lists: []int64{l.ID}}
				if err := s.CreateCampaign(ctx, a, &camps[i]); err != nil {
					t.Fatal(err)
				}
			}
			live, gone, other := camps[0].ID, camps[1].ID, camps[2].ID
			if err := s.DeleteCampaign(ctx, accounts[0].ID, gone); err != nil {
				t.Fatal(err)
			}
			a := accounts[0].ID
			ev := func(campaign int64, kind tidings.EventKind) tidings.Event {
				return tidings.Event{AccountID: a, CampaignID: campaign, Kind: kind, URL: "https://shop.example/", Time: time.Now()}
			}
			group := []tidings.Event{ev(live, tidings.EventOpen), ev(gone, tidings.EventOpen), ev(live, tidings.EventClick),
				ev(other, tidings.EventOpen), ev(gone, tidings.EventClick), ev(live, tidings.EventOpen)}
			err := s.RecordEvents(ctx, group)
			var dropped *tidings.DroppedEventsError
			if !errors.As(err, &dropped) || !slices.Equal(dropped.Indexes, []int{1, 3, 4}) || !errors.Is(err, tidings.ErrNotFound) {
				t.Fatalf("RecordEvents: %v; want the events 1, 3 and 4 reported dropped (ErrNotFound)", err)
			}
			st, err := s.CampaignStats(ctx, a, live)
			if err != nil || st.AnonOpens != 2 || st.AnonClicks != 1 {
				t.Fatalf("live campaign: %+v (%v); want 2 opens and 1 click", st, err)
			}
			if st, err := s.CampaignStats(ctx, accounts[1].ID, other); err != nil || st.AnonOpens != 0 {
				t.Fatalf("another account's campaign counted an event of account %d: %+v (%v)", a, st, err)
			}
			err = s.RecordEvents(ctx, []tidings.Event{ev(gone, tidings.EventOpen)})
			if !errors.As(err, &dropped) || !slices.Equal(dropped.Indexes, []int{0}) {
				t.Fatalf("a group of only a deleted campaign's event: %v", err)
			}
		})
	}
}
