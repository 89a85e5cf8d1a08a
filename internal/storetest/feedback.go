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
	_, err = s.ConfirmSubscription(ctx, tokenHash("tok-feedback"), tidings.Evidence{})
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
