package sqlstore_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tidings/tidings/internal/sqlstore"
	"github.com/tidings/tidings/internal/storetest"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
)

// TestConformance runs the store conformance suite on every available engine; the
// subtest names carry the engine, so the output says which ones ran.
func TestConformance(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) tidings.Store { return testdb.Open(t, engine) })
		})
	}
}

func TestPostgresConfigured(t *testing.T) {
	if os.Getenv(testdb.PostgresEnv) == "" {
		t.Skipf("LOUD SKIP: %s is not set, so the PostgreSQL engine was NOT tested", testdb.PostgresEnv)
	}
}

// TestNoPlaintextAtRest writes a subscriber and searches the raw SQLite files for the
// address, the name and an attribute value: none may appear.
func TestNoPlaintextAtRest(t *testing.T) {
	url := testdb.URL(t, sqlstore.SQLite)
	s, err := sqlstore.Open(context.Background(), url, testdb.Keyring(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a := tidings.Account{PostalAddress: "1 Example Street, Exampletown", Name: "Shop", ContactEmail: "dpo@shop.example"}
	if err := s.CreateAccount(ctx, &a); err != nil {
		t.Fatal(err)
	}
	sub := tidings.Subscriber{Email: tidings.MustParseAddress("secret.person@private.example"), Name: "Hidden Name",
		Attributes: tidings.Attributes{"note": "confidential-value"}}
	if err := s.CreateSubscriber(ctx, a.ID, &sub, nil, "", nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	path := strings.TrimPrefix(url, "sqlite:")
	var all []byte
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		b, _ := os.ReadFile(f)
		all = append(all, b...)
	}
	if len(all) == 0 {
		t.Fatal("read nothing from the database files")
	}
	for _, secret := range []string{"secret.person", "private.example", "Hidden Name", "confidential-value"} {
		if bytes.Contains(all, []byte(secret)) {
			t.Errorf("%q found in plaintext in %s", secret, filepath.Base(path))
		}
	}
}

// TestConcurrentStartMigrates starts several stores on one fresh PostgreSQL database at
// once, as several nodes would; the advisory lock must let migrations apply exactly once
// and every node come up. (SQLite has one node by construction.)
func TestConcurrentStartMigrates(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		if engine != sqlstore.Postgres {
			continue
		}
		t.Run(string(engine), func(t *testing.T) {
			url := testdb.URL(t, engine)
			var wg sync.WaitGroup
			errs := make(chan error, 4)
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s, err := sqlstore.Open(context.Background(), url, testdb.Keyring(t), nil)
					if err == nil {
						err = s.Ping(context.Background())
						s.Close()
					}
					errs <- err
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Errorf("concurrent start: %v", err)
				}
			}
		})
	}
}

func TestBadURL(t *testing.T) {
	for _, u := range []string{"mysql://x", "sqlite:", "", "postgres//nope"} {
		if _, err := sqlstore.Open(context.Background(), u, testdb.Keyring(t), nil); err == nil {
			t.Errorf("Open(%q) succeeded", u)
		}
	}
}

// TestRunExclusive: while one node runs the sweep, another skips it.
func TestRunExclusive(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		if engine != sqlstore.Postgres {
			continue
		}
		t.Run(string(engine), func(t *testing.T) {
			url := testdb.URL(t, engine)
			a, err := sqlstore.Open(context.Background(), url, testdb.Keyring(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			b, err := sqlstore.Open(context.Background(), url, testdb.Keyring(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			ranA, err := a.RunExclusive(context.Background(), "sweep", func(ctx context.Context) error {
				ranB, err := b.RunExclusive(ctx, "sweep", func(context.Context) error { return nil })
				if err != nil || ranB {
					t.Errorf("the second node ran while the first held the lock (%v)", err)
				}
				return nil
			})
			if err != nil || !ranA {
				t.Fatalf("first node: %v %v", ranA, err)
			}
			if ran, _ := b.RunExclusive(context.Background(), "sweep", func(context.Context) error { return nil }); !ran {
				t.Fatal("the lock was not released")
			}
		})
	}
}
