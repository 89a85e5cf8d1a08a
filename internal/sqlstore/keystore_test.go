package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidings/tidings/internal/importer"
	"github.com/tidings/tidings/internal/sqlstore"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
)

// TestOldBackupCannotOpenErasedPerson: a backup of the database taken before an erasure,
// restored beside today's key store, opens everybody's fields except the erased person's:
// their key existed only in the key store, and the erasure deleted it there.
func TestOldBackupCannotOpenErasedPerson(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	url := "sqlite:" + filepath.Join(dir, "live", "tidings.db")
	s, err := sqlstore.Open(ctx, url, testdb.Keyring(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	a := tidings.Account{PostalAddress: "1 Example Street, Exampletown", Name: "Shop", ContactEmail: "dpo@shop.example"}
	if err := s.CreateAccount(ctx, &a); err != nil {
		t.Fatal(err)
	}
	erased := tidings.Subscriber{Email: tidings.MustParseAddress("gone@people.example"), Name: "Gone"}
	kept := tidings.Subscriber{Email: tidings.MustParseAddress("kept@people.example"), Name: "Kept"}
	for _, sub := range []*tidings.Subscriber{&erased, &kept} {
		if err := s.CreateSubscriber(ctx, a.ID, sub, nil, "", nil); err != nil {
			t.Fatal(err)
		}
	}

	// The nightly backup of the data: a consistent copy of the database file alone.
	backup := filepath.Join(dir, "restored", "tidings.db")
	os.MkdirAll(filepath.Dir(backup), 0o700)
	if _, err := s.DB().ExecContext(ctx, `VACUUM INTO ?`, backup); err != nil {
		t.Fatal(err)
	}
	if er, err := s.ErasePerson(ctx, erased.Email, 0); err != nil || !er.KeyDestroyed {
		t.Fatalf("erase: %+v, %v", er, err)
	}
	s.Close()

	// Restore the old backup beside today's key store.
	copyFile(t, filepath.Join(dir, "live", "tidings.keys.db"), filepath.Join(dir, "restored", "tidings.keys.db"))
	old, err := sqlstore.Open(ctx, "sqlite:"+backup, testdb.Keyring(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	// The erased person's sealed fields are still in the backup…
	var n int
	if err := old.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM subscribers WHERE id = ?`, erased.ID).Scan(&n); err != nil || n != 1 {
		t.Fatalf("the backup should still hold the erased row: %d, %v", n, err)
	}
	// …and cannot be opened; everybody else's can.
	if got, err := old.GetSubscriber(ctx, a.ID, erased.ID); !errors.Is(err, tidings.ErrNotFound) {
		t.Fatalf("erased person from the old backup: %+v, %v; want not found", got, err)
	}
	got, err := old.GetSubscriber(ctx, a.ID, kept.ID)
	if err != nil || got.Email != kept.Email || got.Name != "Kept" {
		t.Fatalf("bystander from the old backup: %+v, %v", got, err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestKeysLiveApart: the data holds no key material; the key store holds nothing but
// lookup hashes and wrapped keys.
func TestKeysLiveApart(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			s := testdb.Open(t, engine)
			ctx := context.Background()
			a := tidings.Account{PostalAddress: "1 Example Street, Exampletown", Name: "Shop", ContactEmail: "dpo@shop.example"}
			if err := s.CreateAccount(ctx, &a); err != nil {
				t.Fatal(err)
			}
			sub := tidings.Subscriber{Email: tidings.MustParseAddress("apart@people.example")}
			if err := s.CreateSubscriber(ctx, a.ID, &sub, nil, "", nil); err != nil {
				t.Fatal(err)
			}
			var cols []string
			rows, err := s.DB().QueryContext(ctx, `SELECT * FROM persons`)
			if err != nil {
				t.Fatal(err)
			}
			cols, _ = rows.Columns()
			rows.Close()
			if strings.Contains(strings.Join(cols, ","), "wrapped") {
				t.Fatalf("persons still has key columns: %v", cols)
			}
			var keysN, personsN int
			s.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM person_keys k JOIN persons p ON p.key_id = k.id`).Scan(&keysN)
			s.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM persons`).Scan(&personsN)
			if keysN != 1 || personsN != 1 {
				t.Fatalf("%d keys for %d persons, want 1 for 1", keysN, personsN)
			}
		})
	}
}

// TestOrphanKeysAreSwept: a key left without a person (a sign-up refused after its key
// was made) is deleted by the sweep once it is a day old; keys in use never are.
func TestOrphanKeysAreSwept(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			now := time.Now()
			clock := func() time.Time { return now }
			s, err := sqlstore.Open(context.Background(), testdb.URL(t, engine), testdb.Keyring(t), nil, sqlstore.WithClock(func() time.Time { return clock() }))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			a := tidings.Account{PostalAddress: "1 Example Street, Exampletown", Name: "Shop", ContactEmail: "dpo@shop.example"}
			if err := s.CreateAccount(ctx, &a); err != nil {
				t.Fatal(err)
			}
			if err := s.CreateSubscriber(ctx, a.ID, &tidings.Subscriber{Email: tidings.MustParseAddress("in.use@people.example")}, nil, "", nil); err != nil {
				t.Fatal(err)
			}
			// Suppressed: the request is refused after its key was made.
			if err := s.AddSuppression(ctx, a.ID, tidings.MustParseAddress("refused@people.example"), tidings.SuppressUnsubscribed); err != nil {
				t.Fatal(err)
			}
			l := tidings.NewList("News")
			s.CreateList(ctx, a.ID, &l)
			_, err = s.RequestSubscription(ctx, a.ID, tidings.SubscriptionRequest{Email: tidings.MustParseAddress("refused@people.example"),
				Lists: []int64{l.ID}, Kind: tidings.LedgerSingleOptIn, Source: tidings.SourceAPI, RespectSuppression: true})
			if !errors.Is(err, tidings.ErrSuppressed) {
				t.Fatalf("suppressed request: %v", err)
			}
			count := func() (n int) {
				s.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM person_keys`).Scan(&n)
				return n
			}
			if n, err := s.SweepOrphanKeys(ctx); err != nil || n != 0 || count() != 2 {
				t.Fatalf("a fresh orphan must wait: swept %d (%v), %d keys left", n, err, count())
			}
			now = now.Add(25 * time.Hour)
			if n, err := s.SweepOrphanKeys(ctx); err != nil || n != 1 || count() != 1 {
				t.Fatalf("day-old orphan: swept %d (%v), %d keys left; want 1 swept, 1 left", n, err, count())
			}
		})
	}
}

// TestKeysMoveToKeyStore: a database from before the key store (and before lookups over
// SHA-256) keeps every person through the migrations: the key is copied to the key store
// and dropped from persons, the lookup hash is recomputed from the sealed address, and
// the subscriber is found by address and reads as before.
func TestKeysMoveToKeyStore(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			ctx := context.Background()
			kr := testdb.Keyring(t)
			s, err := sqlstore.Connect(ctx, testdb.URL(t, engine), kr, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.MigrateUpTo(ctx, 18); err != nil {
				t.Fatal(err)
			}
			a := tidings.Account{PostalAddress: "1 Example Street, Exampletown", Name: "Shop", ContactEmail: "dpo@shop.example"}
			if err := s.CreateAccount(ctx, &a); err != nil {
				t.Fatal(err)
			}
			// A person as version 18 wrote them: the key in persons, a hash of another
			// definition, the subscriber's fields sealed under the key.
			const addr = "old@people.example"
			dk, wrapped, _ := kr.NewDataKey()
			var pid int64
			if err := s.DB().QueryRowContext(ctx, `INSERT INTO persons (email_hash, wrapped_key, created_at) VALUES ($1, $2, 1) RETURNING id`,
				[]byte("an older lookup hash, 32 bytes.."), wrapped).Scan(&pid); err != nil {
				t.Fatal(err)
			}
			field := func(f string) string { return fmt.Sprintf("tidings/v1 account=%d person=%d field=%s", a.ID, pid, f) }
			var sid int64
			if err := s.DB().QueryRowContext(ctx, `INSERT INTO subscribers (account_id, person_id, email_enc, name_enc, attributes_enc, created_at, updated_at)
				VALUES ($1, $2, $3, $4, $5, 1, 1) RETURNING id`, a.ID, pid, dk.SealString(addr, field("email")), dk.SealString("Olga", field("name")),
				dk.SealString("{}", field("attributes"))).Scan(&sid); err != nil {
				t.Fatal(err)
			}

			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := s.DB().ExecContext(ctx, `SELECT wrapped_key FROM persons`); err == nil {
				t.Fatal("persons.wrapped_key is still there")
			}
			got, err := s.GetSubscriber(ctx, a.ID, sid)
			if err != nil || got.Email.String() != addr || got.Name != "Olga" {
				t.Fatalf("the subscriber after the migrations: %+v, %v", got, err)
			}
			recs, err := s.PersonData(ctx, tidings.MustParseAddress(addr))
			if err != nil || len(recs) != 1 {
				t.Fatalf("found by address after the rehash: %d records, %v", len(recs), err)
			}
			// New people get keys numbered after the moved ones.
			if err := s.CreateSubscriber(ctx, a.ID, &tidings.Subscriber{Email: tidings.MustParseAddress("new@people.example")}, nil, "", nil); err != nil {
				t.Fatalf("a new person after the move: %v", err)
			}
		})
	}
}

// TestDeletedAccountTakesItsPeople: deleting a subscriber, or a whole account, deletes
// the people who were subscribers there and nowhere else, with their keys; someone
// another account still holds keeps their person, key and data.
func TestDeletedAccountTakesItsPeople(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			s := testdb.Open(t, engine)
			ctx := context.Background()
			var a, b tidings.Account
			for _, acc := range []*tidings.Account{&a, &b} {
				*acc = tidings.Account{PostalAddress: "1 Example Street, Exampletown", Name: "Shop", ContactEmail: "dpo@shop.example"}
				if err := s.CreateAccount(ctx, acc); err != nil {
					t.Fatal(err)
				}
			}
			for _, sub := range []struct {
				account int64
				email   string
			}{{a.ID, "only.a@people.example"}, {a.ID, "shared@people.example"}, {b.ID, "shared@people.example"}, {b.ID, "only.b@people.example"}} {
				if err := s.CreateSubscriber(ctx, sub.account, &tidings.Subscriber{Email: tidings.MustParseAddress(sub.email)}, nil, "", nil); err != nil {
					t.Fatal(err)
				}
			}
			leaving := tidings.Subscriber{Email: tidings.MustParseAddress("leaving@people.example")}
			if err := s.CreateSubscriber(ctx, b.ID, &leaving, nil, "", nil); err != nil {
				t.Fatal(err)
			}
			if err := s.DeleteSubscriber(ctx, b.ID, leaving.ID); err != nil {
				t.Fatal(err)
			}
			count := func(table string) (n int) {
				if err := s.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			if p, k := count("persons"), count("person_keys"); p != 3 || k != 3 {
				t.Fatalf("before: %d persons, %d keys; want 3 and 3", p, k)
			}
			if err := s.DeleteAccount(ctx, a.ID); err != nil {
				t.Fatal(err)
			}
			if p, k := count("persons"), count("person_keys"); p != 2 || k != 2 {
				t.Fatalf("after: %d persons, %d keys; want 2 and 2 (only.a gone)", p, k)
			}
			recs, err := s.PersonData(ctx, tidings.MustParseAddress("shared@people.example"))
			if err != nil || len(recs) != 1 || recs[0].Account.ID != b.ID || recs[0].Subscriber.Email.String() != "shared@people.example" {
				t.Fatalf("shared person after A's deletion: %+v, %v", recs, err)
			}
			if recs, err := s.PersonData(ctx, tidings.MustParseAddress("only.a@people.example")); err != nil || len(recs) != 0 {
				t.Fatalf("only.a after A's deletion: %+v, %v", recs, err)
			}
			if err := s.DeleteAccount(ctx, a.ID); !errors.Is(err, tidings.ErrNotFound) {
				t.Fatalf("deleting a deleted account: %v, want ErrNotFound", err)
			}
		})
	}
}

// TestIDsAreNeverReused: after the newest person and subscriber are erased, the next
// ones get new IDs, so the erased person's old links and ledger rows name no one else
// (SQLite would otherwise hand out the largest ID again).
func TestIDsAreNeverReused(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			s := testdb.Open(t, engine)
			ctx := context.Background()
			a := tidings.Account{PostalAddress: "1 Example Street, Exampletown", Name: "Shop", ContactEmail: "dpo@shop.example"}
			if err := s.CreateAccount(ctx, &a); err != nil {
				t.Fatal(err)
			}
			add := func(email string) tidings.Subscriber {
				t.Helper()
				sub := tidings.Subscriber{Email: tidings.MustParseAddress(email)}
				if err := s.CreateSubscriber(ctx, a.ID, &sub, nil, "", nil); err != nil {
					t.Fatal(err)
				}
				return sub
			}
			add("first@people.example")
			gone := add("newest@people.example")
			if _, err := s.ErasePerson(ctx, gone.Email, 0); err != nil {
				t.Fatal(err)
			}
			next := add("next@people.example")
			if next.ID <= gone.ID || next.PersonID <= gone.PersonID {
				t.Fatalf("after erasing subscriber %d (person %d), the next is subscriber %d (person %d)", gone.ID, gone.PersonID, next.ID, next.PersonID)
			}
			// The import numbers its rows itself, from the same floor.
			if err := s.DeleteSubscriber(ctx, a.ID, next.ID); err != nil {
				t.Fatal(err)
			}
			l := tidings.NewList("News")
			s.CreateList(ctx, a.ID, &l)
			// Three rows: SQLite numbers all but the first itself (insertNumbered).
			if _, err := importer.Run(ctx, s, nil, strings.NewReader("email\nimported1@people.example\nimported2@people.example\nimported3@people.example\n"),
				importer.Options{AccountID: a.ID, ListID: l.ID, Mode: importer.Confirmed,
					Declaration: tidings.ImportDeclaration{Source: "test", LawfulBasis: tidings.BasisConsent}}); err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= 3; i++ {
				email := tidings.MustParseAddress(fmt.Sprintf("imported%d@people.example", i))
				subs, err := s.ListSubscribers(ctx, a.ID, tidings.SubscriberFilter{Email: email})
				if err != nil || len(subs) != 1 {
					t.Fatalf("imported subscriber %d: %+v, %v", i, subs, err)
				}
				if want := next.ID + int64(i); subs[0].ID != want || subs[0].PersonID != next.PersonID+int64(i) {
					t.Fatalf("after deleting subscriber %d (person %d), the import made subscriber %d (person %d) of its row %d",
						next.ID, next.PersonID, subs[0].ID, subs[0].PersonID, i)
				}
			}
		})
	}
}
