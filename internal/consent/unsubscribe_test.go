package consent_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/tidings/tidings/internal/consent"
	"github.com/tidings/tidings/internal/send"
	"github.com/tidings/tidings/internal/sqlstore"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
)

// recipient is a subscriber on two lists and the unsubscribe token of a campaign sent to
// both, on a fresh store; raw is the same database, for injecting a failure.
type recipient struct {
	store *sqlstore.Store
	raw   *sql.DB
	svc   *consent.Service
	acc   tidings.Account
	lists []int64
	sub   tidings.Subscriber
	token string
}

func newRecipient(t *testing.T, engine sqlstore.Engine) *recipient {
	t.Helper()
	ctx := context.Background()
	url := testdb.URL(t, engine)
	store, err := sqlstore.Open(ctx, url, testdb.Keyring(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	driver, dsn := "pgx", url
	if engine == sqlstore.SQLite {
		driver, dsn = "sqlite", strings.TrimPrefix(url, "sqlite:")
	}
	raw, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	r := &recipient{store: store, raw: raw, svc: &consent.Service{Store: store, Keys: testdb.Keyring(t)}}
	r.acc = tidings.Account{Name: "Shop", ContactEmail: "dpo@shop.example", PostalAddress: "1 Main St"}
	if err := store.CreateAccount(ctx, &r.acc); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		l := tidings.NewList(fmt.Sprintf("List %d", i))
		if err := store.CreateList(ctx, r.acc.ID, &l); err != nil {
			t.Fatal(err)
		}
		r.lists = append(r.lists, l.ID)
	}
	r.sub = tidings.Subscriber{Email: tidings.MustParseAddress("leaver@example.com")}
	if err := store.CreateSubscriber(ctx, r.acc.ID, &r.sub, r.lists, tidings.SubConfirmed, nil); err != nil {
		t.Fatal(err)
	}
	camp := tidings.Campaign{Name: "c", Subject: "s", FromAddress: "news@shop.example", HTML: "<p>x</p>", Lists: r.lists}
	if err := store.CreateCampaign(ctx, r.acc.ID, &camp); err != nil {
		t.Fatal(err)
	}
	r.token = send.RecipientToken(testdb.Keyring(t), r.acc.ID, camp.ID, r.sub.ID)
	return r
}

// withdrawals counts the ledger's unsubscribe entries.
func (r *recipient) withdrawals(t *testing.T) int {
	t.Helper()
	entries, err := r.store.LedgerEntries(context.Background(), r.acc.ID, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if e.Kind == tidings.LedgerUnsubscribed {
			n++
		}
	}
	return n
}

// TestUnsubscribeRecipientAllOrNothing: when withdrawing from the campaign's second list
// fails, the first stays subscribed too, and trying again withdraws both.
func TestUnsubscribeRecipientAllOrNothing(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			ctx := context.Background()
			r := newRecipient(t, engine)
			// The database refuses to unsubscribe anyone from the second list.
			restore := testdb.FailWrites(t, r.raw, engine, "UPDATE", "subscriptions",
				fmt.Sprintf("NEW.list_id = %d AND NEW.status = 'unsubscribed'", r.lists[1]))
			if _, err := r.svc.UnsubscribeRecipient(ctx, r.token, tidings.SourceMail, tidings.Evidence{}); err == nil {
				t.Fatal("unsubscribing succeeded despite the failure on the second list")
			}
			subs, err := r.store.Subscriptions(ctx, r.acc.ID, r.sub.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range subs {
				if x.Status != tidings.SubConfirmed {
					t.Errorf("list %d is %s after a failed unsubscribe; want it untouched", x.ListID, x.Status)
				}
			}
			if n := r.withdrawals(t); n != 0 {
				t.Errorf("%d withdrawals in the ledger after a failed unsubscribe", n)
			}

			restore()
			event, err := r.svc.UnsubscribeRecipient(ctx, r.token, tidings.SourceMail, tidings.Evidence{})
			if err != nil || event.Kind != tidings.EventUnsubscribe {
				t.Fatalf("retry: %+v, %v", event, err)
			}
			if n := r.withdrawals(t); n != 2 {
				t.Errorf("%d withdrawals in the ledger, want 2", n)
			}
		})
	}
}

// readBarrier holds each caller of Subscriptions until all callers have read: the
// interleaving in which a decision read before the withdrawal counts twice. Code that
// does not decide from such a read never waits.
type readBarrier struct {
	tidings.Store
	wg *sync.WaitGroup
}

func (b readBarrier) Subscriptions(ctx context.Context, accountID, subscriberID int64) ([]tidings.Subscription, error) {
	subs, err := b.Store.Subscriptions(ctx, accountID, subscriberID)
	b.wg.Done()
	b.wg.Wait()
	return subs, err
}

// TestUnsubscribeRecipientCountsOnce: simultaneous unsubscribes of one recipient (the
// one-click POST and the mailto, a double click) count one unsubscription.
func TestUnsubscribeRecipientCountsOnce(t *testing.T) {
	const callers = 8
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			r := newRecipient(t, engine)
			var read sync.WaitGroup
			read.Add(callers)
			r.svc.Store = readBarrier{Store: r.store, wg: &read}
			var wg sync.WaitGroup
			events := make([]tidings.Event, callers)
			for i := range callers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var err error
					events[i], err = r.svc.UnsubscribeRecipient(context.Background(), r.token, tidings.SourceMail, tidings.Evidence{})
					if err != nil {
						t.Errorf("call %d: %v", i, err)
					}
				}()
			}
			wg.Wait()
			counted := 0
			for _, e := range events {
				if e.Kind == tidings.EventUnsubscribe {
					counted++
				}
			}
			if counted != 1 {
				t.Errorf("%d simultaneous unsubscribes counted %d times; want once", callers, counted)
			}
			if n := r.withdrawals(t); n != len(r.lists) {
				t.Errorf("%d withdrawals in the ledger, want %d", n, len(r.lists))
			}
		})
	}
}
