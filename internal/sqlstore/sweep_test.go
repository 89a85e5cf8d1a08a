package sqlstore_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/tidings/tidings/internal/consent"
	"github.com/tidings/tidings/internal/sqlstore"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
)

// TestSweepFollowsLinkExpiry: a request made under a 3-day rule is dead once its link
// expires, though the account lengthened its rule to 7 days since (the most it may
// set); the sweep deletes it then, as expired, and not 4 days later. A newer request
// stays. Shortening the rule deletes, by age, requests whose links still work.
func TestSweepFollowsLinkExpiry(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			now := time.Now()
			s, err := sqlstore.Open(context.Background(), testdb.URL(t, engine), testdb.Keyring(t), nil, sqlstore.WithClock(func() time.Time { return now }))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			a := tidings.Account{PostalAddress: "1 Example Street, Exampletown", Name: "Shop", ContactEmail: "dpo@shop.example", UnconfirmedDays: 3}
			if err := s.CreateAccount(ctx, &a); err != nil {
				t.Fatal(err)
			}
			l := tidings.NewList("news")
			if err := s.CreateList(ctx, a.ID, &l); err != nil {
				t.Fatal(err)
			}
			token := func(tok string) []byte { h := sha256.Sum256([]byte(tok)); return h[:] }
			// ask makes a request whose link works for the account's current rule, as
			// consent.Service makes it.
			ask := func(email, tok string) int64 {
				t.Helper()
				res, err := s.RequestSubscription(ctx, a.ID, tidings.SubscriptionRequest{Email: tidings.MustParseAddress(email),
					Lists: []int64{l.ID}, Source: tidings.SourceForm, Kind: tidings.LedgerRequested,
					TokenHash: token(tok), ExpiresAt: now.AddDate(0, 0, a.UnconfirmedDays)})
				if err != nil {
					t.Fatal(err)
				}
				return res.Subscriber.PersonID
			}
			setRule := func(days int) {
				t.Helper()
				a.UnconfirmedDays = days
				if err := s.UpdateAccount(ctx, &a); err != nil {
					t.Fatal(err)
				}
			}
			// sweep runs the rules as cmd/tidings does: the account's, then the instance's.
			sweep := func() int {
				t.Helper()
				n, err := s.ExpireUnconfirmed(ctx, a.ID, now.AddDate(0, 0, -a.UnconfirmedDays), false)
				if err != nil {
					t.Fatal(err)
				}
				m, err := s.ExpireUnconfirmed(ctx, 0, now.Add(-consent.ConfirmWindow), false)
				if err != nil {
					t.Fatal(err)
				}
				return n + m
			}
			held := func(email string) bool {
				t.Helper()
				subs, err := s.ListSubscribers(ctx, a.ID, tidings.SubscriberFilter{Email: tidings.MustParseAddress(email)})
				if err != nil {
					t.Fatal(err)
				}
				return len(subs) > 0
			}
			expired := func() (persons []int64) {
				t.Helper()
				entries, err := s.LedgerEntries(ctx, a.ID, 0, 100)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range entries {
					if e.Kind == tidings.LedgerExpired && e.ListID == l.ID {
						persons = append(persons, e.PersonID)
					}
				}
				return persons
			}

			early := ask("early@people.example", "tok-early")
			setRule(7)
			now = now.Add(3*24*time.Hour + time.Hour)
			later := ask("later@people.example", "tok-later")
			if _, err := s.PendingRequest(ctx, token("tok-early")); !errors.Is(err, tidings.ErrNotFound) {
				t.Fatalf("the early request's link after its expiry: %v, want refused", err)
			}
			if n, err := s.ExpireUnconfirmed(ctx, a.ID, now.AddDate(0, 0, -7), true); err != nil || n != 1 {
				t.Fatalf("dry run: %d (%v), want the lapsed request", n, err)
			}
			if n := sweep(); n != 1 || held("early@people.example") {
				t.Fatalf("sweep deleted %d; early request's subscriber held: %v; want the lapsed request deleted", n, held("early@people.example"))
			}
			if got := expired(); len(got) != 1 || got[0] != early {
				t.Fatalf("ledger expiries for persons %v, want one for %d", got, early)
			}
			if _, err := s.PendingRequest(ctx, token("tok-later")); err != nil || !held("later@people.example") {
				t.Fatalf("the newer request: %v, want it usable and kept", err)
			}

			// Shortened to 2 days, the rule deletes the newer request at 2 days, though
			// its link would work for 7.
			setRule(2)
			now = now.Add(2*24*time.Hour + time.Hour)
			if n := sweep(); n != 1 || held("later@people.example") {
				t.Fatalf("sweep under the shorter rule deleted %d, want the newer request", n)
			}
			if got := expired(); len(got) != 2 || got[1] != later {
				t.Fatalf("ledger expiries for persons %v, want %d then %d", got, early, later)
			}
		})
	}
}
