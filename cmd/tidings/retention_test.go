package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tidings/tidings/internal/tidings"
)

// TestRetentionDryRunMatchesRun: an account with a shorter event rule than the
// instance's; the dry run reports the number the run then removes (it counted that
// account's old events twice, under its own rule and under the instance's).
func TestRetentionDryRunMatchesRun(t *testing.T) {
	c := newCLI(t)
	a := openTestApp(t, c)
	ctx := context.Background()
	acc := tidings.Account{PostalAddress: "1 Example Street, Exampletown", Name: "Shop", ContactEmail: "dpo@shop.example", EventDays: 30}
	if err := a.store.CreateAccount(ctx, &acc); err != nil {
		t.Fatal(err)
	}
	l := tidings.NewList("news")
	if err := a.store.CreateList(ctx, acc.ID, &l); err != nil {
		t.Fatal(err)
	}
	camp := tidings.Campaign{Name: "c", Subject: "s", FromAddress: "a@shop.example", HTML: "x", Lists: []int64{l.ID}}
	if err := a.store.CreateCampaign(ctx, acc.ID, &camp); err != nil {
		t.Fatal(err)
	}
	var events []tidings.Event
	for _, age := range []int{40, 200, 300} { // days: one under the account's rule only, two under both
		events = append(events, tidings.Event{AccountID: acc.ID, CampaignID: camp.ID, Kind: tidings.EventOpen, Time: time.Now().AddDate(0, 0, -age)})
	}
	if err := a.store.RecordEvents(ctx, events); err != nil {
		t.Fatal(err)
	}
	a.Close()
	code, out, errs := c.run("retention", "run", "--dry-run")
	if code != 0 || !strings.Contains(out, "tracking events older than 6 months, or their account's shorter rule: would delete 3\n") ||
		!strings.Contains(out, "unconfirmed sign-ups older than 7 days, or their account's shorter rule: would delete 0\n") {
		t.Fatalf("dry run: %d\n%s%s", code, out, errs)
	}
	code, out, errs = c.run("retention", "run")
	if code != 0 || !strings.Contains(out, "tracking events older than 6 months, or their account's shorter rule: rolled into daily aggregates and deleted 3\n") {
		t.Fatalf("run: %d\n%s%s", code, out, errs)
	}
}
