package sqlstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/tidings/tidings/internal/consent"
	"github.com/tidings/tidings/internal/sqlstore"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
)

// failTrackingEntries makes the database refuse to append a tracking-change entry to
// the ledger, until the returned function is called.
func failTrackingEntries(t *testing.T, store tidings.Store) (restore func()) {
	s := store.(*sqlstore.Store)
	return testdb.FailWrites(t, s.DB(), s.Engine(), "INSERT", "ledger", "NEW.kind = 'tracking_change'")
}

// An edit whose tracking consent change cannot be appended to the ledger writes
// nothing: not the name, attributes or status either. Once the ledger takes it, the
// same edit writes all of it, and the ledger verifies.
func TestEditSubscriberLedgerFailureWritesNothing(t *testing.T) {
	ctx := context.Background()
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			s := testdb.Open(t, engine)
			acc := tidings.Account{Name: "Shop", ContactEmail: "dpo@shop.example", PostalAddress: "1 Main St", TrackingEnabled: true}
			if err := s.CreateAccount(ctx, &acc); err != nil {
				t.Fatal(err)
			}
			sub := tidings.Subscriber{Email: tidings.MustParseAddress("ada@example.com"), Name: "Ada"}
			if err := s.CreateSubscriber(ctx, acc.ID, &sub, nil, "", nil); err != nil {
				t.Fatal(err)
			}
			edit := sub
			edit.Name, edit.Attributes, edit.Status, edit.TrackingConsent = "Ada L.", tidings.Attributes{"city": "Lyon"}, tidings.StatusRestricted, true

			restore := failTrackingEntries(t, s)
			try := edit
			if err := s.EditSubscriber(ctx, acc.ID, &try, tidings.SourceAPI, tidings.Evidence{Note: "recorded through the API with token 1"}); err == nil {
				t.Fatal("the edit succeeded though its ledger entry was refused")
			}
			got, err := s.GetSubscriber(ctx, acc.ID, sub.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Name != "Ada" || got.Status != tidings.StatusActive || len(got.Attributes) != 0 || got.TrackingConsent {
				t.Fatalf("after a refused ledger entry the subscriber is %+v; want it untouched", got)
			}
			if head, _, err := s.LedgerHead(ctx, acc.ID); (err != nil && !errors.Is(err, tidings.ErrNotFound)) || head != 0 {
				t.Fatalf("ledger head %d, %v after the refused entry; want 0", head, err)
			}

			restore()
			try = edit
			if err := s.EditSubscriber(ctx, acc.ID, &try, tidings.SourceAPI, tidings.Evidence{Note: "recorded through the API with token 1"}); err != nil {
				t.Fatal(err)
			}
			got, _ = s.GetSubscriber(ctx, acc.ID, sub.ID)
			if got.Name != "Ada L." || got.Status != tidings.StatusRestricted || got.Attributes["city"] != "Lyon" || !got.TrackingConsent {
				t.Fatalf("after the edit: %+v", got)
			}
			if rep, err := consent.VerifyLedger(ctx, s, acc.ID); err != nil || !rep.OK || rep.Entries != 1 {
				t.Fatalf("ledger: %+v, %v; want 1 entry that verifies", rep, err)
			}
		})
	}
}

// TestEditSubscriberDoubleSubmit: two edits giving the same tracking consent at once
// (a form sent twice) on PostgreSQL. The second waits for the first's row lock and then
// compares with the consent the first stored: one ledger entry, not two. The test
// holds the ledger head so that both are under way before either commits.
func TestEditSubscriberDoubleSubmit(t *testing.T) {
	if !postgres(t) {
		return
	}
	ctx := context.Background()
	s := testdb.Open(t, sqlstore.Postgres)
	acc := tidings.Account{Name: "Shop", ContactEmail: "dpo@shop.example", PostalAddress: "1 Main St", TrackingEnabled: true}
	if err := s.CreateAccount(ctx, &acc); err != nil {
		t.Fatal(err)
	}
	sub := tidings.Subscriber{Email: tidings.MustParseAddress("ada@example.com"), Name: "Ada"}
	if err := s.CreateSubscriber(ctx, acc.ID, &sub, nil, "", nil); err != nil {
		t.Fatal(err)
	}
	// An entry of someone else's first, so that the account has a ledger head to hold.
	other := tidings.Subscriber{Email: tidings.MustParseAddress("bob@example.com"), TrackingConsent: true}
	if err := s.CreateSubscriber(ctx, acc.ID, &other, nil, "", &tidings.TrackingGrant{Source: tidings.SourceAdmin, Evidence: tidings.Evidence{Note: "recorded by the test"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetTrackingConsent(ctx, acc.ID, other.ID, false, tidings.SourceAPI, tidings.Evidence{Note: "recorded through the API with token 1"}); err != nil {
		t.Fatal(err)
	}
	h := hold(t, s.DB(), `SELECT 1 FROM ledger_heads WHERE account_id = $1 FOR UPDATE`, acc.ID)
	give := func() error {
		e := sub
		e.TrackingConsent = true
		return s.EditSubscriber(ctx, acc.ID, &e, tidings.SourceAPI, tidings.Evidence{Note: "recorded through the API with token 1"})
	}
	done1, err1 := run(give)
	done2, err2 := run(give)
	if !h.await(t, s.DB(), 2, nil) {
		t.Fatal("the two edits never both waited")
	}
	if err := h.tx.Commit(); err != nil {
		t.Fatal(err)
	}
	<-done1
	<-done2
	if *err1 != nil || *err2 != nil {
		t.Fatalf("edits: %v, %v", *err1, *err2)
	}
	if n := count(t, s, `SELECT COUNT(*) FROM ledger WHERE account_id = $1 AND kind = 'tracking_change'`, acc.ID); n != 3 {
		t.Fatalf("%d tracking entries; want 3 (the other person's grant and withdrawal, and one for both edits)", n)
	}
	if rep, err := consent.VerifyLedger(ctx, s, acc.ID); err != nil || !rep.OK {
		t.Fatalf("ledger: %+v, %v", rep, err)
	}
}

// A subscriber created with a tracking grant gets the consent through the ledger in the
// same transaction: refused where the account does not track, and with nothing of the
// subscriber, list or ledger stored when that entry fails. A sign-up carries the
// status of the subscriber it creates.
func TestCreateSubscriberWithTrackingGrant(t *testing.T) {
	ctx := context.Background()
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			s := testdb.Open(t, engine)
			acc := tidings.Account{Name: "Shop", ContactEmail: "dpo@shop.example", PostalAddress: "1 Main St"}
			if err := s.CreateAccount(ctx, &acc); err != nil {
				t.Fatal(err)
			}
			l := tidings.NewList("News")
			if err := s.CreateList(ctx, acc.ID, &l); err != nil {
				t.Fatal(err)
			}
			grant := tidings.TrackingGrant{Source: tidings.SourceAPI, Evidence: tidings.Evidence{Note: "by token 7"}}
			create := func() (tidings.Subscriber, error) {
				sub := tidings.Subscriber{Email: tidings.MustParseAddress("ada@example.com"), TrackingConsent: true}
				return sub, s.CreateSubscriber(ctx, acc.ID, &sub, []int64{l.ID}, tidings.SubConfirmed, &grant)
			}
			nothing := func(what string) {
				t.Helper()
				if found, err := s.ListSubscribers(ctx, acc.ID, tidings.SubscriberFilter{Email: tidings.MustParseAddress("ada@example.com")}); err != nil || len(found) != 0 {
					t.Fatalf("%s: %v left behind (%v)", what, found, err)
				}
				if rep, err := consent.VerifyLedger(ctx, s, acc.ID); err != nil || rep.Entries != 0 {
					t.Fatalf("%s: ledger %+v, %v; want empty", what, rep, err)
				}
			}
			if _, err := create(); err == nil || !isCode(err, "tracking_off") {
				t.Fatalf("a grant where the account does not track: %v", err)
			}
			nothing("account does not track")
			acc.TrackingEnabled = true
			if err := s.UpdateAccount(ctx, &acc); err != nil {
				t.Fatal(err)
			}
			restore := failTrackingEntries(t, s)
			if _, err := create(); err == nil {
				t.Fatal("the ledger refused the entry, and the create succeeded")
			}
			restore()
			nothing("ledger entry refused")
			sub, err := create()
			if err != nil {
				t.Fatal(err)
			}
			stored, err := s.GetSubscriber(ctx, acc.ID, sub.ID)
			hist, herr := s.SubscriberLedger(ctx, acc.ID, sub.ID, tidings.Page{})
			if err != nil || herr != nil || !stored.TrackingConsent || len(hist) != 1 || hist[0].Kind != tidings.LedgerTrackingChange || hist[0].Source != tidings.SourceAPI {
				t.Fatalf("stored %+v (%v), ledger %+v (%v)", stored, err, hist, herr)
			}

			res, err := s.RequestSubscription(ctx, acc.ID, tidings.SubscriptionRequest{Email: tidings.MustParseAddress("bob@example.com"),
				Status: tidings.StatusObjected, Lists: []int64{l.ID}, Source: tidings.SourceAPI, Kind: tidings.LedgerImported})
			if err != nil || res.Subscriber.Status != tidings.StatusObjected {
				t.Fatalf("sign-up with a status: %+v, %v", res.Subscriber, err)
			}
			if got, err := s.GetSubscriber(ctx, acc.ID, res.Subscriber.ID); err != nil || got.Status != tidings.StatusObjected {
				t.Fatalf("stored %+v, %v; want objected", got, err)
			}
		})
	}
}

func isCode(err error, code string) bool {
	v, ok := tidings.AsValidation(err)
	return ok && v.Code == code
}
