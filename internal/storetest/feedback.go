package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tidings/tidings/internal/tidings"
)

// testFeedback applies bounces and complaints to a sent campaign: each counts once per
// delivery, a hard bounce suppresses the address in the account, soft bounces only
// after SoftBounceLimit campaigns within SoftBounceWindow, and a complaint unsubscribes the person from every
// list of the account and suppresses them everywhere; another account's deliveries
// are never reached.
func testFeedback(t *testing.T, s tidings.Store) {
	a := mustAccount(t, s)
	l := mustList(t, s, a.ID)
	l2 := mustList(t, s, a.ID)
	hard := mustSubscriber(t, s, a.ID, "gone@feedback.example", l.ID)
	soft := mustSubscriber(t, s, a.ID, "full@feedback.example", l.ID)
	angry := mustSubscriber(t, s, a.ID, "angry@feedback.example", l.ID, l2.ID)
	flaky := mustSubscriber(t, s, a.ID, "sometimes-full@feedback.example", l.ID)

	campaigns := make([]tidings.Campaign, tidings.SoftBounceLimit)
	for i := range campaigns {
		campaigns[i] = tidings.Campaign{Name: fmt.Sprint("c", i), Subject: "s", FromAddress: "a@feedback.example", HTML: "x", Lists: []int64{l.ID}}
		noErr(t, "CreateCampaign", s.CreateCampaign(ctx, a.ID, &campaigns[i]))
		noErr(t, "SetCampaignStatus", s.SetCampaignStatus(ctx, a.ID, campaigns[i].ID, tidings.CampaignSending, ""))
		SendAll(t, s, campaigns[i].ID)
	}
	c := campaigns[0].ID
	report := func(sub tidings.Subscriber, campaign int64, kind tidings.FeedbackKind) tidings.FeedbackResult {
		t.Helper()
		res, err := s.RecordFeedback(ctx, tidings.Feedback{AccountID: a.ID, CampaignID: campaign, SubscriberID: sub.ID, Kind: kind, Status: "5.1.1", Detail: "no such user"})
		noErr(t, "RecordFeedback", err)
		return res
	}
	held := func(sub tidings.Subscriber, account int64) tidings.SuppressionReason {
		t.Helper()
		ok, reason, err := s.Suppressed(ctx, account, sub.Email)
		noErr(t, "Suppressed", err)
		if !ok {
			return ""
		}
		return reason
	}

	if r := report(hard, c, tidings.FeedbackHard); !r.Counted || !r.Suppressed {
		t.Fatalf("hard bounce: %+v", r)
	}
	if r := report(hard, c, tidings.FeedbackHard); r.Counted {
		t.Fatalf("a repeated hard bounce counted again: %+v", r)
	}
	if got := held(hard, a.ID); got != tidings.SuppressBounce {
		t.Fatalf("after a hard bounce the address is suppressed for %q, want bounce", got)
	}

	for i, camp := range campaigns {
		r := report(soft, camp.ID, tidings.FeedbackSoft)
		if last := i == len(campaigns)-1; !r.Counted || r.Suppressed != last {
			t.Fatalf("soft bounce %d: %+v", i+1, r)
		}
		if i == 0 {
			if r := report(soft, camp.ID, tidings.FeedbackSoft); r.Counted {
				t.Fatalf("a repeated soft bounce counted again: %+v", r)
			}
			if got := held(soft, a.ID); got != "" {
				t.Fatalf("one soft bounce suppressed the address (%q)", got)
			}
		}
	}
	if got := held(soft, a.ID); got != tidings.SuppressBounce {
		t.Fatalf("after %d soft bounces the address is suppressed for %q, want bounce", tidings.SoftBounceLimit, got)
	}

	if r := report(angry, c, tidings.FeedbackComplaint); !r.Counted || !r.Suppressed {
		t.Fatalf("complaint: %+v", r)
	}
	if r := report(angry, c, tidings.FeedbackHard); r.Counted {
		t.Fatalf("a bounce after a complaint counted: %+v", r)
	}
	if got := held(angry, a.ID); got != tidings.SuppressComplaint {
		t.Fatalf("after a complaint the account's suppression says %q, want complaint", got)
	}
	if got := held(angry, mustAccount(t, s).ID); got != tidings.SuppressComplaint {
		t.Fatalf("a complaint suppresses everywhere; another account sees %q", got)
	}
	subs, err := s.Subscriptions(ctx, a.ID, angry.ID)
	noErr(t, "Subscriptions", err)
	if len(subs) != 2 || subs[0].Status != tidings.SubUnsubscribed || subs[1].Status != tidings.SubUnsubscribed {
		t.Fatalf("after a complaint: %+v, want both lists unsubscribed", subs)
	}
	entries, err := s.LedgerEntries(ctx, a.ID, 0, 100)
	noErr(t, "LedgerEntries", err)
	withdrawals := 0
	for _, e := range entries {
		if e.PersonID == angry.PersonID && e.Kind == tidings.LedgerUnsubscribed && e.Source == tidings.SourceFeedback {
			withdrawals++
		}
	}
	if withdrawals != 2 {
		t.Fatalf("%d ledger withdrawals from feedback, want 2", withdrawals)
	}

	st, err := s.CampaignStats(ctx, a.ID, c)
	noErr(t, "CampaignStats", err)
	if st.Bounced != 1 || st.SoftBounced != 1 || st.Complaints != 1 {
		t.Fatalf("campaign counters: %d bounced, %d soft, %d complaints; want 1, 1, 1", st.Bounced, st.SoftBounced, st.Complaints)
	}

	// Soft bounces further apart than SoftBounceWindow start the count again: the first
	// is long past when the second comes, so the third makes two, not three.
	now := time.Now()
	for i, at := range []time.Time{now.Add(-tidings.SoftBounceWindow - 10*24*time.Hour), now.Add(-24 * time.Hour), now} {
		res, err := s.RecordFeedback(ctx, tidings.Feedback{AccountID: a.ID, CampaignID: campaigns[i].ID, SubscriberID: flaky.ID,
			Kind: tidings.FeedbackSoft, Status: "4.2.2", Detail: "mailbox full", Time: at})
		noErr(t, "RecordFeedback", err)
		if !res.Counted || res.Suppressed {
			t.Fatalf("soft bounce %d of a sometimes full mailbox: %+v", i+1, res)
		}
	}
	if got := held(flaky, a.ID); got != "" {
		t.Fatalf("soft bounces a season apart suppressed the address (%q)", got)
	}

	// The person's own confirmed sign-up elsewhere lifts the instance-wide suppression
	// there; the account they complained about keeps its own.
	elsewhere := mustAccount(t, s)
	el := mustList(t, s, elsewhere.ID)
	_, err = s.RequestSubscription(ctx, elsewhere.ID, request("angry@feedback.example", []int64{el.ID}, tidings.LedgerRequested, "tok-feedback"))
	noErr(t, "RequestSubscription", err)
	_, err = s.ConfirmSubscription(ctx, tokenHash("tok-feedback"), tidings.Evidence{}, false)
	noErr(t, "ConfirmSubscription", err)
	if got := held(angry, elsewhere.ID); got != "" {
		t.Fatalf("after confirming a new sign-up elsewhere, the address is still suppressed there (%q)", got)
	}
	if got := held(angry, a.ID); got != tidings.SuppressComplaint {
		t.Fatalf("the account complained about lost its suppression (%q)", got)
	}

	other := mustAccount(t, s)
	_, err = s.RecordFeedback(ctx, tidings.Feedback{AccountID: other.ID, CampaignID: c, SubscriberID: hard.ID, Kind: tidings.FeedbackHard})
	wantErr(t, "RecordFeedback(another account's delivery)", err, tidings.ErrNotFound)
	_, err = s.RecordFeedback(ctx, tidings.Feedback{AccountID: a.ID, CampaignID: c, SubscriberID: hard.ID, Kind: "bogus"})
	var ve *tidings.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("unknown kind: %v, want a validation error", err)
	}
}

// A soft bounce reported after a hard one (a delay notice's final copy, a second relay)
// leaves the delivery bounced: the address was found not to exist, and a soft count on
// top would count one message twice.
func testSoftAfterHard(t *testing.T, s tidings.Store) {
	a := mustAccount(t, s)
	l := mustList(t, s, a.ID)
	sub := mustSubscriber(t, s, a.ID, unique("hardsoft")+"@feedback.example", l.ID)
	c := tidings.Campaign{Name: "hs", Subject: "s", FromAddress: "a@feedback.example", HTML: "x", Lists: []int64{l.ID}}
	noErr(t, "CreateCampaign", s.CreateCampaign(ctx, a.ID, &c))
	noErr(t, "SetCampaignStatus", s.SetCampaignStatus(ctx, a.ID, c.ID, tidings.CampaignSending, ""))
	SendAll(t, s, c.ID)
	_, err := s.RecordFeedback(ctx, tidings.Feedback{AccountID: a.ID, CampaignID: c.ID, SubscriberID: sub.ID, Kind: tidings.FeedbackHard, Status: "5.1.1"})
	noErr(t, "RecordFeedback(hard)", err)
	res, err := s.RecordFeedback(ctx, tidings.Feedback{AccountID: a.ID, CampaignID: c.ID, SubscriberID: sub.ID, Kind: tidings.FeedbackSoft, Status: "4.2.2"})
	noErr(t, "RecordFeedback(soft)", err)
	st, _ := s.CampaignStats(ctx, a.ID, c.ID)
	if res.Counted || st.Bounced != 1 || st.SoftBounced != 0 {
		t.Fatalf("soft after hard: counted %v, %d bounced, %d soft; want 1 bounced only", res.Counted, st.Bounced, st.SoftBounced)
	}
}

// A report can arrive before its send is recorded: the relay accepted the message and
// the receiving system answered before the engine's group commit. Whichever comes
// first, the campaign ends with every recipient counted once (sent, bounced,
// nothing remaining), the report counts, and the delivery keeps the report's state
// with the send's time. A node that dies before recording leaves its batch to another:
// the reported recipient is not mailed again and still counts as sent.
func testFeedbackBeforeSend(t *testing.T, s tidings.Store) {
	for _, kind := range []tidings.FeedbackKind{tidings.FeedbackHard, tidings.FeedbackSoft, tidings.FeedbackComplaint} {
		for _, crash := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/crash=%v", kind, crash), func(t *testing.T) { feedbackBeforeSend(t, s, kind, crash) })
		}
	}
}

func feedbackBeforeSend(t *testing.T, s tidings.Store, kind tidings.FeedbackKind, crash bool) {
	a := mustAccount(t, s)
	l := mustList(t, s, a.ID)
	early := mustSubscriber(t, s, a.ID, unique("early")+"@feedback.example", l.ID)
	late := mustSubscriber(t, s, a.ID, unique("late")+"@feedback.example", l.ID)
	mustSubscriber(t, s, a.ID, unique("quiet")+"@feedback.example", l.ID)
	c := tidings.Campaign{Name: "fbs", Subject: "s", FromAddress: "a@feedback.example", HTML: "x", Lists: []int64{l.ID}}
	noErr(t, "CreateCampaign", s.CreateCampaign(ctx, a.ID, &c))
	noErr(t, "SetCampaignStatus", s.SetCampaignStatus(ctx, a.ID, c.ID, tidings.CampaignSending, ""))
	now := time.Now()
	b, err := s.ClaimBatch(ctx, c.ID, "n1", now, now.Add(time.Minute))
	noErr(t, "ClaimBatch", err)
	if len(b.Recipients) != 3 {
		t.Fatalf("batch of %d, want 3", len(b.Recipients))
	}
	var results []tidings.DeliveryResult
	for _, r := range b.Recipients {
		results = append(results, tidings.DeliveryResult{SubscriberID: r.Subscriber.ID, Status: tidings.DeliverySent, MessageID: fmt.Sprint("<m", r.Subscriber.ID, "@x>"), Attempts: 1})
	}
	report := func(sub tidings.Subscriber) tidings.FeedbackResult {
		t.Helper()
		res, err := s.RecordFeedback(ctx, tidings.Feedback{AccountID: a.ID, CampaignID: c.ID, SubscriberID: sub.ID, Kind: kind, Status: "5.1.1"})
		noErr(t, "RecordFeedback", err)
		return res
	}

	// early's report comes before the send is recorded.
	if r := report(early); !r.Counted {
		t.Fatalf("a report before the send was recorded did not count: %+v", r)
	}
	if crash {
		// The node dies; another claims the batch once the lease has run out.
		later := now.Add(2 * time.Minute)
		b2, err := s.ClaimBatch(ctx, c.ID, "n2", later, later.Add(time.Minute))
		noErr(t, "ClaimBatch(after the lease)", err)
		for _, r := range b2.Recipients {
			if r.Subscriber.ID == early.ID {
				t.Fatalf("the recipient reported on is mailed again")
			}
		}
		if len(b2.Recipients) != 2 {
			t.Fatalf("second claim: %d recipients, want 2", len(b2.Recipients))
		}
		results = results[:0]
		for _, r := range b2.Recipients {
			results = append(results, tidings.DeliveryResult{SubscriberID: r.Subscriber.ID, Status: tidings.DeliverySent, Attempts: 2})
		}
		noErr(t, "RecordDeliveries", s.RecordDeliveries(ctx, c.ID, b2.No, "n2", results, true))
	} else {
		noErr(t, "RecordDeliveries", s.RecordDeliveries(ctx, c.ID, b.No, "n1", results, true))
	}
	// late's report comes after: the usual order.
	if r := report(late); !r.Counted {
		t.Fatalf("a report after the send was recorded did not count: %+v", r)
	}
	if r := report(early); r.Counted {
		t.Fatalf("a repeated report counted again: %+v", r)
	}

	p, err := s.CampaignProgress(ctx, a.ID, c.ID)
	noErr(t, "CampaignProgress", err)
	if p.Sent != 3 || p.Failed != 0 || p.Remaining != 0 {
		t.Fatalf("progress: %d sent, %d failed, %d remaining; want 3, 0, 0", p.Sent, p.Failed, p.Remaining)
	}
	got, err := s.GetCampaign(ctx, a.ID, c.ID)
	noErr(t, "GetCampaign", err)
	if got.Status != tidings.CampaignSent {
		t.Fatalf("campaign is %s, want sent", got.Status)
	}
	st, err := s.CampaignStats(ctx, a.ID, c.ID)
	noErr(t, "CampaignStats", err)
	want := map[tidings.FeedbackKind]int64{kind: 2}
	if st.Delivered != 3 || st.Bounced != want[tidings.FeedbackHard] || st.SoftBounced != want[tidings.FeedbackSoft] || st.Complaints != want[tidings.FeedbackComplaint] {
		t.Fatalf("stats: %d delivered, %d bounced, %d soft, %d complaints; want 3 delivered and 2 %s",
			st.Delivered, st.Bounced, st.SoftBounced, st.Complaints, kind)
	}
	state, _ := feedbackDeliveryState(kind)
	recs, err := s.PersonData(ctx, early.Email)
	noErr(t, "PersonData", err)
	for _, rec := range recs {
		if rec.Account.ID != a.ID {
			continue
		}
		if len(rec.Deliveries) != 1 || rec.Deliveries[0].Status != state {
			t.Fatalf("early's deliveries: %+v, want one %s", rec.Deliveries, state)
		}
		if !crash && rec.Deliveries[0].SentAt == nil {
			t.Fatalf("early's delivery has no send time once the send was recorded")
		}
	}
}

func feedbackDeliveryState(k tidings.FeedbackKind) (tidings.DeliveryStatus, bool) {
	switch k {
	case tidings.FeedbackHard:
		return tidings.DeliveryBounced, true
	case tidings.FeedbackSoft:
		return tidings.DeliverySoftBounced, true
	case tidings.FeedbackComplaint:
		return tidings.DeliveryComplained, true
	}
	return "", false
}
