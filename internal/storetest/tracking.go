package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/tidings/tidings/internal/tidings"
)

// testEventRetention records events of various ages, rolls the old ones into daily
// aggregates, and checks that the totals are the same before and after.
func testEventRetention(t *testing.T, s tidings.Store) {
	a := mustAccount(t, s)
	l := mustList(t, s, a.ID)
	camp := tidings.Campaign{Name: "c", Subject: "s", FromAddress: "a@x.example", HTML: "x", Lists: []int64{l.ID}}
	noErr(t, "CreateCampaign", s.CreateCampaign(ctx, a.ID, &camp))
	now := time.Now()
	var readers [5]int64 // 0 stays anonymous; the others consented to tracking
	for i := 1; i < len(readers); i++ {
		readers[i] = mustSubscriber(t, s, a.ID, fmt.Sprintf("r%d@retention.example", i), l.ID).ID
	}
	var events []tidings.Event
	for i := range 40 {
		age := time.Duration(i%4) * 100 * 24 * time.Hour // 0, 100, 200 and 300 days old
		kind := tidings.EventOpen
		if i%3 == 0 {
			kind = tidings.EventClick
		}
		events = append(events, tidings.Event{AccountID: a.ID, CampaignID: camp.ID, SubscriberID: readers[i%5], Kind: kind,
			URL: fmt.Sprintf("https://x.example/%d", i%2), Time: now.Add(-age)})
	}
	noErr(t, "RecordEvents", s.RecordEvents(ctx, events))
	before, err := s.EventTotals(ctx, a.ID, camp.ID)
	noErr(t, "EventTotals", err)
	statsBefore, _ := s.CampaignStats(ctx, a.ID, camp.ID)

	cutoff := now.Add(-tidings.EventRetention)
	n, err := s.RollUpEvents(ctx, 0, cutoff, true)
	noErr(t, "RollUpEvents(dry run)", err)
	if n != 20 { // the 200- and 300-day-old half
		t.Fatalf("dry run would remove %d, want 20", n)
	}
	// Scoped to one account (for shorter per-account rules): another account's sweep
	// touches none of these events.
	bystander := mustAccount(t, s)
	if n, err := s.RollUpEvents(ctx, bystander.ID, now, false); err != nil || n != 0 {
		t.Fatalf("another account's roll-up removed %d events (%v)", n, err)
	}
	if n, _ := s.RollUpEvents(ctx, a.ID, cutoff, true); n != 20 {
		t.Fatalf("scoped dry run would remove %d, want 20", n)
	}
	n, err = s.RollUpEvents(ctx, 0, cutoff, false)
	noErr(t, "RollUpEvents", err)
	if n != 20 {
		t.Fatalf("removed %d events, want 20", n)
	}
	after, _ := s.EventTotals(ctx, a.ID, camp.ID)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("totals changed by the roll-up:\nbefore %v\nafter  %v", before, after)
	}
	statsAfter, _ := s.CampaignStats(ctx, a.ID, camp.ID)
	if fmt.Sprint(statsBefore) != fmt.Sprint(statsAfter) {
		t.Fatalf("campaign stats changed:\nbefore %+v\nafter  %+v", statsBefore, statsAfter)
	}
	if n, _ := s.RollUpEvents(ctx, 0, cutoff, true); n != 0 {
		t.Fatalf("%d old events left", n)
	}
	other := mustAccount(t, s)
	if tot, _ := s.EventTotals(ctx, other.ID, camp.ID); len(tot) != 0 {
		t.Fatalf("another account sees the totals: %v", tot)
	}
}

func testDeleteInactive(t *testing.T, s tidings.Store) {
	a := mustAccount(t, s)
	a.InactiveDays = 365
	noErr(t, "UpdateAccount", s.UpdateAccount(ctx, &a))
	l := mustList(t, s, a.ID)
	sleeper := mustSubscriber(t, s, a.ID, "sleeper@inactive.example", l.ID)
	reader := mustSubscriber(t, s, a.ID, "reader@inactive.example", l.ID)
	other := mustAccount(t, s)
	elsewhere := mustSubscriber(t, s, other.ID, "sleeper@inactive.example")
	camp := tidings.Campaign{Name: "c", Subject: "s", FromAddress: "a@inactive.example", HTML: "x", Lists: []int64{l.ID}}
	noErr(t, "CreateCampaign", s.CreateCampaign(ctx, a.ID, &camp))
	cutoff := time.Now().Add(time.Hour) // everything so far counts as old
	noErr(t, "RecordEvents", s.RecordEvents(ctx, []tidings.Event{{AccountID: a.ID, CampaignID: camp.ID, SubscriberID: reader.ID,
		Kind: tidings.EventOpen, Time: cutoff.Add(time.Minute)}}))
	// The sleeper's own events are older than the cutoff, and go with them; an anonymous
	// event stays.
	noErr(t, "RecordEvents", s.RecordEvents(ctx, []tidings.Event{
		{AccountID: a.ID, CampaignID: camp.ID, SubscriberID: sleeper.ID, Kind: tidings.EventOpen, Time: cutoff.Add(-48 * time.Hour)},
		{AccountID: a.ID, CampaignID: camp.ID, SubscriberID: sleeper.ID, Kind: tidings.EventClick, URL: "https://inactive.example/", Time: cutoff.Add(-48 * time.Hour)},
		{AccountID: a.ID, CampaignID: camp.ID, Kind: tidings.EventOpen, Time: cutoff.Add(time.Minute)},
	}))

	accs, err := s.AccountsDeletingInactive(ctx)
	noErr(t, "AccountsDeletingInactive", err)
	found := false
	for _, x := range accs {
		found = found || x.ID == a.ID
		if x.ID == other.ID {
			t.Fatal("an account without the rule is listed")
		}
	}
	if !found {
		t.Fatal("the account with the rule is not listed")
	}
	n, err := s.DeleteInactive(ctx, a.ID, cutoff, true)
	noErr(t, "DeleteInactive(dry run)", err)
	if n != 1 {
		t.Fatalf("dry run: %d, want 1", n)
	}
	n, err = s.DeleteInactive(ctx, a.ID, cutoff, false)
	noErr(t, "DeleteInactive", err)
	if n != 1 {
		t.Fatalf("deleted %d, want 1", n)
	}
	_, err = s.GetSubscriber(ctx, a.ID, sleeper.ID)
	wantErr(t, "GetSubscriber(inactive)", err, tidings.ErrNotFound)
	if _, err := s.GetSubscriber(ctx, a.ID, reader.ID); err != nil {
		t.Fatalf("an active reader was deleted: %v", err)
	}
	if _, err := s.GetSubscriber(ctx, other.ID, elsewhere.ID); err != nil {
		t.Fatalf("the same person in another account was deleted: %v", err)
	}
	tot, err := s.EventTotals(ctx, a.ID, camp.ID)
	noErr(t, "EventTotals", err)
	if tot[tidings.EventOpen] != [2]int64{1, 1} || tot[tidings.EventClick][0] != 0 {
		t.Fatalf("events after deleting the inactive: %v; want the reader's open and the anonymous one", tot)
	}
	if held, _, _ := s.Suppressed(ctx, a.ID, sleeper.Email); held {
		t.Fatal("inactive deletion must not suppress: they may subscribe again")
	}
}

// testListCounters follows a list's counters through every kind of subscription change.
func testListCounters(t *testing.T, s tidings.Store) {
	a := mustAccount(t, s)
	l := mustList(t, s, a.ID)
	check := func(what string, confirmed, unconfirmed, unsubscribed int64) {
		t.Helper()
		st, err := s.ListStats(ctx, a.ID, l.ID)
		noErr(t, "ListStats", err)
		if st.Confirmed != confirmed || st.Unconfirmed != unconfirmed || st.Unsubscribed != unsubscribed {
			t.Fatalf("%s: counts %d/%d/%d, want %d/%d/%d", what, st.Confirmed, st.Unconfirmed, st.Unsubscribed, confirmed, unconfirmed, unsubscribed)
		}
	}
	one := mustSubscriber(t, s, a.ID, "c1@counters.example", l.ID)
	mustSubscriber(t, s, a.ID, "c2@counters.example", l.ID)
	_, err := s.RequestSubscription(ctx, a.ID, request("c3@counters.example", []int64{l.ID}, tidings.LedgerRequested, "tok-counters"))
	noErr(t, "RequestSubscription", err)
	check("after sign-ups", 2, 1, 0)
	_, err = s.ConfirmSubscription(ctx, tokenHash("tok-counters"), tidings.Evidence{}, false)
	noErr(t, "ConfirmSubscription", err)
	check("after a confirmation", 3, 0, 0)
	noErr(t, "Unsubscribe", errOf(s.Unsubscribe(ctx, a.ID, one.ID, []int64{l.ID}, tidings.SourceMail, tidings.Evidence{})))
	check("after an unsubscribe", 2, 0, 1)
	noErr(t, "DeleteSubscriber", s.DeleteSubscriber(ctx, a.ID, one.ID))
	check("after a deletion", 2, 0, 0)
	st, _ := s.ListStats(ctx, a.ID, l.ID)
	var subscribed, confirmed, unsubscribed int64
	for _, d := range st.Daily["subscribed"] {
		subscribed += d.Count
	}
	for _, d := range st.Daily["confirmed"] {
		confirmed += d.Count
	}
	for _, d := range st.Daily["unsubscribed"] {
		unsubscribed += d.Count
	}
	if subscribed != 3 || confirmed != 3 || unsubscribed != 1 {
		t.Fatalf("daily totals: %d subscribed, %d confirmed, %d unsubscribed", subscribed, confirmed, unsubscribed)
	}
	other := mustAccount(t, s)
	_, err = s.ListStats(ctx, other.ID, l.ID)
	wantErr(t, "ListStats(another account)", err, tidings.ErrNotFound)
}
