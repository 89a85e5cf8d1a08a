package storetest

import (
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/tidings/tidings/internal/tidings"
)

// testEventBatches records two mixed batches and checks every counter RecordEvents
// keeps: first-of-kind uniques (also within one batch and across campaigns), scanner
// flags (a click soon after delivery with no open, where an open in the same batch
// counts), anonymous and unsubscribe events, and the daily and per-link counts.
func testEventBatches(t *testing.T, s tidings.Store) {
	a := mustAccount(t, s)
	l := mustList(t, s, a.ID)
	ann := mustSubscriber(t, s, a.ID, "ann@batch.example", l.ID)
	ben := mustSubscriber(t, s, a.ID, "ben@batch.example", l.ID)
	cat := mustSubscriber(t, s, a.ID, "cat@batch.example", l.ID)
	camp := tidings.Campaign{Name: "c", Subject: "s", FromAddress: "a@batch.example", HTML: "x", Lists: []int64{l.ID}}
	noErr(t, "CreateCampaign", s.CreateCampaign(ctx, a.ID, &camp))
	other := tidings.Campaign{Name: "d", Subject: "s", FromAddress: "a@batch.example", HTML: "x", Lists: []int64{l.ID}}
	noErr(t, "CreateCampaign", s.CreateCampaign(ctx, a.ID, &other))
	noErr(t, "SetCampaignStatus", s.SetCampaignStatus(ctx, a.ID, camp.ID, tidings.CampaignSending, ""))

	SendAll(t, s, camp.ID)

	const url1, url2 = "https://batch.example/1", "https://batch.example/2"
	now := time.Now()
	ev := func(c, sub int64, kind tidings.EventKind, url string) tidings.Event {
		return tidings.Event{AccountID: a.ID, CampaignID: c, SubscriberID: sub, Kind: kind, URL: url, Time: now}
	}
	noErr(t, "RecordEvents", s.RecordEvents(ctx, []tidings.Event{
		ev(camp.ID, ann.ID, tidings.EventClick, url1), // right after delivery, never opened: scanner
		ev(camp.ID, ann.ID, tidings.EventClick, url1), // again: not unique, still a scanner
		ev(camp.ID, ben.ID, tidings.EventClick, url2), // opened in this same batch: a person
		ev(camp.ID, ben.ID, tidings.EventOpen, ""),
		ev(camp.ID, cat.ID, tidings.EventOpen, ""),
		ev(camp.ID, cat.ID, tidings.EventOpen, ""), // not unique
		ev(camp.ID, 0, tidings.EventClick, url1),
		ev(camp.ID, 0, tidings.EventOpen, ""),
		ev(camp.ID, cat.ID, tidings.EventUnsubscribe, ""), // never personal
		ev(other.ID, ann.ID, tidings.EventOpen, ""),       // unique in its own campaign
	}))
	noErr(t, "RecordEvents", s.RecordEvents(ctx, []tidings.Event{
		ev(camp.ID, ann.ID, tidings.EventOpen, ""),      // first open
		ev(camp.ID, ann.ID, tidings.EventClick, url2),   // opened now: a person
		ev(camp.ID, ben.ID, tidings.EventClick, url2),   // not unique
		ev(other.ID, ben.ID, tidings.EventClick, url2),  // no delivery: never a scanner
		ev(other.ID, ann.ID, tidings.EventOpen, ""),     // not unique
		ev(other.ID, 0, tidings.EventUnsubscribe, url1), // counted, not a click
	}))

	check := func(c int64, want tidings.CampaignStats) {
		t.Helper()
		st, err := s.CampaignStats(ctx, a.ID, c)
		noErr(t, "CampaignStats", err)
		st.Total, st.Delivered, st.Failed = 0, 0, 0
		if fmt.Sprint(st) != fmt.Sprint(want) {
			t.Fatalf("campaign %d stats\n got %+v\nwant %+v", c, st, want)
		}
	}
	check(camp.ID, tidings.CampaignStats{Opens: 4, UniqueOpens: 3, AnonOpens: 1, Clicks: 5, UniqueClicks: 2, AnonClicks: 1,
		Automated: 2, Unsubscribes: 1, TopLinks: []tidings.LinkCount{{URL: url1, Clicks: 3}, {URL: url2, Clicks: 3}}})
	check(other.ID, tidings.CampaignStats{Opens: 2, UniqueOpens: 1, Clicks: 1, UniqueClicks: 1, Unsubscribes: 1,
		TopLinks: []tidings.LinkCount{{URL: url2, Clicks: 1}}})

	day := now.UTC().Truncate(24 * time.Hour)
	daily, err := s.CampaignDaily(ctx, a.ID, camp.ID)
	noErr(t, "CampaignDaily", err)
	if want := (tidings.Series{"open": {{Day: day, Count: 5}}, "click": {{Day: day, Count: 6}}}); fmt.Sprint(daily) != fmt.Sprint(want) {
		t.Fatalf("daily\n got %v\nwant %v", daily, want)
	}
	tot, err := s.EventTotals(ctx, a.ID, camp.ID)
	noErr(t, "EventTotals", err)
	if want := (tidings.EventTotals{"open": {4, 1}, "click": {5, 1}, "unsubscribe": {0, 1}}); fmt.Sprint(tot) != fmt.Sprint(want) {
		t.Fatalf("event totals\n got %v\nwant %v", tot, want)
	}
}

// SendAll records every delivery of a sending campaign as sent now (for tests of what
// follows a send: events, bounces).
func SendAll(t testing.TB, s tidings.Store, campaignID int64) {
	t.Helper()
	for {
		now := time.Now()
		b, err := s.ClaimBatch(ctx, campaignID, "n1", now, now.Add(time.Minute))
		if err != nil {
			break
		}
		var res []tidings.DeliveryResult
		for _, r := range b.Recipients {
			res = append(res, tidings.DeliveryResult{SubscriberID: r.Subscriber.ID, Status: tidings.DeliverySent, Attempts: 1})
		}
		if err := s.RecordDeliveries(ctx, campaignID, b.No, "n1", res, true); err != nil {
			t.Fatalf("RecordDeliveries: %v", err)
		}
	}
}

// testEventLargeBatch records one group larger than any statement RecordEvents runs at
// once (SQLite cuts groups into chunks of up to 64 rows), with uniques, opens in the
// same group and scanner flags spread over the chunks.
func testEventLargeBatch(t *testing.T, s tidings.Store) {
	a := mustAccount(t, s)
	l := mustList(t, s, a.ID)
	const people = 70
	subs := make([]tidings.Subscriber, people)
	for i := range subs {
		subs[i] = mustSubscriber(t, s, a.ID, fmt.Sprintf("p%d@large.example", i), l.ID)
	}
	camp := tidings.Campaign{Name: "c", Subject: "s", FromAddress: "a@large.example", HTML: "x", Lists: []int64{l.ID}}
	noErr(t, "CreateCampaign", s.CreateCampaign(ctx, a.ID, &camp))
	noErr(t, "SetCampaignStatus", s.SetCampaignStatus(ctx, a.ID, camp.ID, tidings.CampaignSending, ""))
	SendAll(t, s, camp.ID)

	now := time.Now()
	var group []tidings.Event
	for i, sub := range subs {
		click := tidings.Event{AccountID: a.ID, CampaignID: camp.ID, SubscriberID: sub.ID, Kind: tidings.EventClick,
			URL: fmt.Sprintf("https://large.example/%d", i%3), Time: now}
		group = append(group, click) // right after delivery: a scanner, unless opened in this group
		if i%5 == 0 {
			group = append(group, click) // not unique
		}
		if i%2 == 0 {
			group = append(group, tidings.Event{AccountID: a.ID, CampaignID: camp.ID, SubscriberID: sub.ID, Kind: tidings.EventOpen, Time: now})
		}
	}
	noErr(t, "RecordEvents", s.RecordEvents(ctx, group))
	st, err := s.CampaignStats(ctx, a.ID, camp.ID)
	noErr(t, "CampaignStats", err)
	// 70 people click, 14 of them twice; the 35 with an even number open, so the 35
	// others' clicks (7 of them twice) look like scanners.
	st.Total, st.Delivered, st.Failed, st.TopLinks = 0, 0, 0, nil
	if want := (tidings.CampaignStats{Opens: 35, UniqueOpens: 35, Clicks: 84, UniqueClicks: 70, Automated: 42}); fmt.Sprint(st) != fmt.Sprint(want) {
		t.Fatalf("stats\n got %+v\nwant %+v", st, want)
	}
	tot, err := s.EventTotals(ctx, a.ID, camp.ID)
	noErr(t, "EventTotals", err)
	if want := (tidings.EventTotals{"open": {35, 0}, "click": {84, 0}}); fmt.Sprint(tot) != fmt.Sprint(want) {
		t.Fatalf("event totals\n got %v\nwant %v", tot, want)
	}
}

// testTrackingConsentAtRecordTime: a tracking link carries the subscriber chosen at send
// time, but consent is checked again when the event is recorded. After the person
// withdraws their tracking consent, restricts the processing or objects to it, or is
// erased, or the account stops tracking, their opens and clicks are counted
// anonymously and nothing links them to the person.
func testTrackingConsentAtRecordTime(t *testing.T, s tidings.Store) {
	a := mustAccount(t, s)
	l := mustList(t, s, a.ID)
	reader := tidings.Subscriber{Email: tidings.MustParseAddress("reader@consent-now.example"), TrackingConsent: true}
	noErr(t, "CreateSubscriber", s.CreateSubscriber(ctx, a.ID, &reader, []int64{l.ID}, tidings.SubConfirmed, testGrant))
	never := tidings.Subscriber{Email: tidings.MustParseAddress("never@consent-now.example")}
	noErr(t, "CreateSubscriber", s.CreateSubscriber(ctx, a.ID, &never, []int64{l.ID}, tidings.SubConfirmed, nil))
	camp := tidings.Campaign{Name: "c", Subject: "s", FromAddress: "a@consent-now.example", HTML: "x", Lists: []int64{l.ID}}
	noErr(t, "CreateCampaign", s.CreateCampaign(ctx, a.ID, &camp))
	open := func(sub int64) {
		t.Helper()
		noErr(t, "RecordEvents", s.RecordEvents(ctx, []tidings.Event{{AccountID: a.ID, CampaignID: camp.ID, SubscriberID: sub,
			Kind: tidings.EventOpen, Time: time.Now()}}))
	}
	personal := func(sub int64) int {
		t.Helper()
		var n int
		noErr(t, "count", s.(interface{ DB() *sql.DB }).DB().QueryRowContext(ctx,
			`SELECT COUNT(*) FROM events WHERE subscriber_id = $1`, sub).Scan(&n))
		return n
	}
	open(reader.ID)
	open(never.ID) // a link made personal by mistake, or a forged ID: no consent, no link
	if personal(reader.ID) != 1 || personal(never.ID) != 0 {
		t.Fatalf("personal events: reader %d (want 1), never consented %d (want 0)", personal(reader.ID), personal(never.ID))
	}
	noErr(t, "SetTrackingConsent", s.SetTrackingConsent(ctx, a.ID, reader.ID, false, tidings.SourcePortal, tidings.Evidence{}))
	open(reader.ID)
	if n := personal(reader.ID); n != 1 {
		t.Fatalf("after the consent was withdrawn, %d personal events; want the 1 from before", n)
	}
	_, err := s.ErasePerson(ctx, reader.Email, 0)
	noErr(t, "ErasePerson", err)
	open(reader.ID) // the old mail's pixel, after the erasure
	if n := personal(reader.ID); n != 0 {
		t.Fatalf("after the erasure, %d events still carry the erased subscriber's ID", n)
	}
	// Someone who restricted the processing of their data, or objected to it: their
	// consent to tracking stands, but nothing more is recorded about them.
	for _, status := range []tidings.SubscriberStatus{tidings.StatusRestricted, tidings.StatusObjected} {
		held := tidings.Subscriber{Email: tidings.MustParseAddress(string(status) + "@consent-now.example"), TrackingConsent: true}
		noErr(t, "CreateSubscriber", s.CreateSubscriber(ctx, a.ID, &held, []int64{l.ID}, tidings.SubConfirmed, testGrant))
		held.Status = status
		noErr(t, "UpdateSubscriber", s.UpdateSubscriber(ctx, a.ID, &held))
		open(held.ID)
		if n := personal(held.ID); n != 0 {
			t.Fatalf("%s subscriber: %d personal events; want none", status, n)
		}
	}
	// An account that stops tracking: the consent of its people no longer counts.
	still := tidings.Subscriber{Email: tidings.MustParseAddress("still@consent-now.example"), TrackingConsent: true}
	noErr(t, "CreateSubscriber", s.CreateSubscriber(ctx, a.ID, &still, []int64{l.ID}, tidings.SubConfirmed, testGrant))
	a.TrackingEnabled = false
	noErr(t, "UpdateAccount", s.UpdateAccount(ctx, &a))
	open(still.ID)
	if n := personal(still.ID); n != 0 {
		t.Fatalf("after the account turned tracking off, %d personal events", n)
	}
	st, err := s.CampaignStats(ctx, a.ID, camp.ID)
	noErr(t, "CampaignStats", err)
	if st.Opens != 1 || st.UniqueOpens != 1 || st.AnonOpens != 6 {
		t.Fatalf("stats %+v; want 1 personal open and 6 anonymous", st)
	}
}
