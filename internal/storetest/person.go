package storetest

import (
	"testing"
	"time"

	"github.com/tidings/tidings/internal/consent"
	"github.com/tidings/tidings/internal/tidings"
)

func testPersonDataAndErasure(t *testing.T, s tidings.Store) {
	a, b := mustAccount(t, s), mustAccount(t, s)
	la, lb := mustList(t, s, a.ID), mustList(t, s, b.ID)
	addr := tidings.MustParseAddress("person@rights.example")
	req := request(addr.String(), []int64{la.ID}, tidings.LedgerSingleOptIn, "")
	req.TrackingConsent = true // the events below are personal
	ra, err := s.RequestSubscription(ctx, a.ID, req)
	noErr(t, "RequestSubscription(a)", err)
	_, err = s.RequestSubscription(ctx, b.ID, request(addr.String(), []int64{lb.ID}, tidings.LedgerSingleOptIn, ""))
	noErr(t, "RequestSubscription(b)", err)
	noErr(t, "AttachProof", s.AttachProof(ctx, a.ID, ra.Subscriber.ID, ra.LedgerSeq, "confirmation_request", []byte("mail")))
	mustSubscriber(t, s, a.ID, "someone.else@rights.example", la.ID)
	camp := tidings.Campaign{Name: "c", Subject: "s", FromAddress: "a@rights.example", HTML: "x", Lists: []int64{la.ID}}
	noErr(t, "CreateCampaign", s.CreateCampaign(ctx, a.ID, &camp))
	noErr(t, "RecordEvents", s.RecordEvents(ctx, []tidings.Event{{AccountID: a.ID, CampaignID: camp.ID, SubscriberID: ra.Subscriber.ID,
		Kind: tidings.EventOpen, Time: time.Now()}, {AccountID: a.ID, CampaignID: camp.ID, SubscriberID: ra.Subscriber.ID,
		Kind: tidings.EventClick, URL: "https://erase.example/", Time: time.Now()}}))

	recs, err := s.PersonData(ctx, addr)
	noErr(t, "PersonData", err)
	if len(recs) != 2 || recs[0].Account.ID != a.ID || recs[1].Account.ID != b.ID || recs[0].Subscriber.Email != addr ||
		len(recs[0].Subscriptions) != 1 || len(recs[0].Consent) != 1 || recs[0].Consent[0].Evidence.IP != "198.51.100.1" {
		t.Fatalf("PersonData = %+v", recs)
	}
	// The opens and clicks recorded personally are data held about the person: the
	// access and portability export must list them.
	if ev := recs[0].Events; len(ev) != 2 || ev[0].CampaignID != camp.ID ||
		!(ev[0].Kind == tidings.EventClick && ev[0].URL == "https://erase.example/" || ev[1].Kind == tidings.EventClick && ev[1].URL == "https://erase.example/") {
		t.Fatalf("PersonData events = %+v, want the open and the click", ev)
	}
	none, err := s.PersonData(ctx, tidings.MustParseAddress("nobody@rights.example"))
	noErr(t, "PersonData(unknown)", err)
	if len(none) != 0 {
		t.Fatal("an unknown address has data")
	}

	// Erase in A only: A forgets, B keeps, the key survives for B.
	er, err := s.ErasePerson(ctx, addr, a.ID)
	noErr(t, "ErasePerson(a)", err)
	if len(er.Accounts) != 1 || er.Accounts[0] != a.ID || er.KeyDestroyed {
		t.Fatalf("erasure in A: %+v", er)
	}
	recs, _ = s.PersonData(ctx, addr)
	if len(recs) != 1 || recs[0].Account.ID != b.ID {
		t.Fatalf("after erasing in A: %+v", recs)
	}
	if held, reason, _ := s.Suppressed(ctx, a.ID, addr); !held || reason != tidings.SuppressErasure {
		t.Fatal("no erasure suppression in A")
	}
	entries, _ := s.LedgerEntries(ctx, a.ID, 0, 100)
	for _, e := range entries {
		if e.PersonID == ra.Subscriber.PersonID && e.EvidenceSealed != nil {
			t.Fatal("A's ledger still holds the person's evidence")
		}
	}
	if tot, _ := s.EventTotals(ctx, a.ID, camp.ID); tot[tidings.EventOpen][0] != 0 || tot[tidings.EventClick][0] != 0 {
		t.Fatalf("the erased person's events remain: %v", tot)
	}
	if st, _ := s.CampaignStats(ctx, a.ID, camp.ID); st.Opens != 1 {
		t.Fatalf("erasure changed the campaign's counters: %+v", st)
	}
	if others, _ := s.ListSubscribers(ctx, a.ID, tidings.SubscriberFilter{}); len(others) != 1 {
		t.Fatalf("erasure touched someone else: %d left in A", len(others))
	}

	// Erase everywhere: the key is destroyed.
	er, err = s.ErasePerson(ctx, addr, 0)
	noErr(t, "ErasePerson(all)", err)
	if len(er.Accounts) != 1 || !er.KeyDestroyed {
		t.Fatalf("erasure everywhere: %+v", er)
	}
	if recs, _ := s.PersonData(ctx, addr); len(recs) != 0 {
		t.Fatalf("after erasing everywhere: %+v", recs)
	}
	for _, acc := range []int64{a.ID, b.ID} {
		if rep, err := consent.VerifyLedger(ctx, s, acc); err != nil || !rep.OK {
			t.Fatalf("ledger of account %d after erasure: %+v %v", acc, rep, err)
		}
	}
	// The same address can come back only by their own request; imports are refused.
	_, err = s.RequestSubscription(ctx, b.ID, tidings.SubscriptionRequest{Email: addr, Lists: []int64{lb.ID}, Kind: tidings.LedgerImported,
		Source: tidings.SourceImport, RespectSuppression: true})
	wantErr(t, "re-adding an erased person", err, tidings.ErrSuppressed)
}

// testPendingInExport: a double opt-in request for a known subscriber holds what it
// would change (name, attributes, tracking consent) until its link is used. That is data
// held about the person, so their access export lists each pending request, its lists,
// times and changes; another account's export does not, and a confirmed request is no
// longer pending.
func testPendingInExport(t *testing.T, s tidings.Store) {
	a, b := mustAccount(t, s), mustAccount(t, s)
	l1, l2, lb := mustList(t, s, a.ID), mustList(t, s, a.ID), mustList(t, s, b.ID)
	addr := tidings.MustParseAddress(unique("pending") + "@rights.example")
	req := request(addr.String(), []int64{l1.ID}, tidings.LedgerSingleOptIn, "")
	req.Name = "Real Name"
	_, err := s.RequestSubscription(ctx, a.ID, req)
	noErr(t, "RequestSubscription(single opt-in)", err)
	_, err = s.RequestSubscription(ctx, b.ID, request(addr.String(), []int64{lb.ID}, tidings.LedgerSingleOptIn, ""))
	noErr(t, "RequestSubscription(b)", err)

	tok := unique("tok-pending")
	req = request(addr.String(), []int64{l2.ID}, tidings.LedgerRequested, tok)
	req.Name, req.TrackingConsent, req.Attributes = "Requested Name", true, tidings.Attributes{"city": "Nantes"}
	req.ExpiresAt = time.Now().Add(48 * time.Hour).Truncate(time.Second)
	before := time.Now().Add(-time.Second)
	_, err = s.RequestSubscription(ctx, a.ID, req)
	noErr(t, "RequestSubscription(double opt-in)", err)

	recs, err := s.PersonData(ctx, addr)
	noErr(t, "PersonData", err)
	if len(recs) != 2 || recs[0].Account.ID != a.ID || recs[1].Account.ID != b.ID {
		t.Fatalf("PersonData: %d records", len(recs))
	}
	if recs[0].Subscriber.Name != "Real Name" {
		t.Fatalf("the unconfirmed request changed the subscriber: %q", recs[0].Subscriber.Name)
	}
	p := recs[0].Pending
	if len(p) != 1 || len(p[0].Lists) != 1 || p[0].Lists[0] != l2.ID {
		t.Fatalf("pending requests in the export: %+v, want one for list %d", p, l2.ID)
	}
	if p[0].CreatedAt.Before(before) || !p[0].ExpiresAt.Equal(req.ExpiresAt) {
		t.Fatalf("pending request times: created %v, expires %v; want after %v, %v", p[0].CreatedAt, p[0].ExpiresAt, before, req.ExpiresAt)
	}
	if c := p[0].Changes; c == nil || c.Name != "Requested Name" || !c.TrackingConsent || c.Attributes["city"] != "Nantes" {
		t.Fatalf("pending changes in the export: %+v", c)
	}
	if len(recs[1].Pending) != 0 {
		t.Fatalf("another account's export lists a's request: %+v", recs[1].Pending)
	}

	_, err = s.ConfirmSubscription(ctx, tokenHash(tok), tidings.Evidence{}, false)
	noErr(t, "ConfirmSubscription", err)
	recs, err = s.PersonData(ctx, addr)
	noErr(t, "PersonData", err)
	if recs[0].Pending == nil || len(recs[0].Pending) != 0 || recs[0].Subscriber.Name != "Requested Name" {
		t.Fatalf("after confirming: pending %+v, name %q", recs[0].Pending, recs[0].Subscriber.Name)
	}
}
