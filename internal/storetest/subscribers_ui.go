package storetest

import (
	"testing"

	"github.com/tidings/tidings/internal/tidings"
)

// testSubscriberLedger: one subscriber's ledger entries in one account, in order, paged,
// and never another account's entries of the same person.
func testSubscriberLedger(t *testing.T, s tidings.Store) {
	a, b := mustAccount(t, s), mustAccount(t, s)
	la1, la2, lb := mustList(t, s, a.ID), mustList(t, s, a.ID), mustList(t, s, b.ID)
	addr := unique("history") + "@ledger.example"
	text, err := s.PublishConsentText(ctx, a.ID, "I agree to the history test.")
	noErr(t, "PublishConsentText", err)
	req := request(addr, []int64{la1.ID, la2.ID}, tidings.LedgerSingleOptIn, "")
	req.Text = &text
	ra, err := s.RequestSubscription(ctx, a.ID, req)
	noErr(t, "RequestSubscription(a)", err)
	rb, err := s.RequestSubscription(ctx, b.ID, request(addr, []int64{lb.ID}, tidings.LedgerSingleOptIn, ""))
	noErr(t, "RequestSubscription(b)", err)
	noErr(t, "Unsubscribe", errOf(s.Unsubscribe(ctx, a.ID, ra.Subscriber.ID, []int64{la1.ID}, tidings.SourceAdmin, tidings.Evidence{Note: "by letter"})))
	other := tidings.Subscriber{Email: tidings.MustParseAddress(unique("other") + "@ledger.example")}
	noErr(t, "CreateSubscriber(other)", s.CreateSubscriber(ctx, a.ID, &other, nil, "", nil))

	got, err := s.SubscriberLedger(ctx, a.ID, ra.Subscriber.ID, tidings.Page{})
	noErr(t, "SubscriberLedger", err)
	if len(got) != 3 || got[0].Kind != tidings.LedgerSingleOptIn || got[2].Kind != tidings.LedgerUnsubscribed ||
		got[0].TextVersion != text.Version || string(got[0].TextSHA256) != string(text.SHA256) {
		t.Fatalf("SubscriberLedger = %+v", got)
	}
	for i, e := range got {
		if e.AccountID != a.ID || e.PersonID != ra.Subscriber.PersonID || (i > 0 && e.Seq <= got[i-1].Seq) {
			t.Fatalf("entry %d: %+v", i, e)
		}
	}
	if ev, err := s.OpenEvidence(ctx, got[0]); err != nil || ev.IP != "198.51.100.1" {
		t.Fatalf("OpenEvidence = %+v, %v", ev, err)
	}
	page, err := s.SubscriberLedger(ctx, a.ID, ra.Subscriber.ID, tidings.Page{After: got[0].Seq, Limit: 1})
	noErr(t, "SubscriberLedger(page)", err)
	if len(page) != 1 || page[0].Seq != got[1].Seq {
		t.Fatalf("page = %+v", page)
	}
	// B's entries of the same person stay B's; A's subscriber ID is not found in B.
	gb, err := s.SubscriberLedger(ctx, b.ID, rb.Subscriber.ID, tidings.Page{})
	noErr(t, "SubscriberLedger(b)", err)
	if len(gb) != 1 || gb[0].AccountID != b.ID {
		t.Fatalf("B's history = %+v", gb)
	}
	_, err = s.SubscriberLedger(ctx, b.ID, ra.Subscriber.ID, tidings.Page{})
	wantErr(t, "SubscriberLedger(other account)", err, tidings.ErrNotFound)
	none, err := s.SubscriberLedger(ctx, a.ID, other.ID, tidings.Page{})
	noErr(t, "SubscriberLedger(no entries)", err)
	if len(none) != 0 {
		t.Fatalf("a subscriber without consent events has %d", len(none))
	}
}
