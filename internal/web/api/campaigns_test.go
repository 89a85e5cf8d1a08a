package api_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tidings/tidings/internal/tidings"
)

// TestCampaignActions: resume means a paused campaign (it never starts a draft), and a
// campaign is scheduled only for a time still to come.
func TestCampaignActions(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		l := tidings.NewList("News")
		if err := e.store.CreateList(ctx, e.a.ID, &l); err != nil {
			t.Fatal(err)
		}
		past := time.Now().Add(-time.Hour)
		c := tidings.Campaign{Name: "Late", Subject: "s", FromAddress: "news@tidings.example", HTML: "<p>x</p>", Lists: []int64{l.ID}, ScheduledAt: &past}
		if err := e.store.CreateCampaign(ctx, e.a.ID, &c); err != nil {
			t.Fatal(err)
		}
		base := fmt.Sprintf("/api/v1/campaigns/%d/", c.ID)
		e.must(422, e.do("POST", base+"resume", e.tokA, nil))
		e.must(422, e.do("POST", base+"schedule", e.tokA, nil))
		if got, _ := e.store.GetCampaign(ctx, e.a.ID, c.ID); got.Status != tidings.CampaignDraft {
			t.Fatalf("after refused actions the campaign is %s, want draft", got.Status)
		}
		e.must(404, e.do("POST", base+"resume", e.tokB, nil)) // another account's campaign
	})
}
