// Package testdb opens real, fresh stores for tests: SQLite in a temporary folder always,
// and PostgreSQL in a schema of its own when TIDINGS_TEST_POSTGRES_URL is set. Each store
// is dropped when its test ends.
package testdb

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/tidings/tidings/internal/keys"
	"github.com/tidings/tidings/internal/mail"
	"github.com/tidings/tidings/internal/sqlstore"
	"github.com/tidings/tidings/internal/tidings"
)

// PostgresEnv names the variable that carries the test PostgreSQL URL.
const PostgresEnv = "TIDINGS_TEST_POSTGRES_URL"

var warnOnce sync.Once

// Engines returns the engines to test on: SQLite always, PostgreSQL when configured.
// Without PostgreSQL it says so loudly, once per test binary.
func Engines(t testing.TB) []sqlstore.Engine {
	if os.Getenv(PostgresEnv) == "" {
		warnOnce.Do(func() {
			fmt.Fprintf(os.Stderr, "\n*** %s is not set: PostgreSQL tests are SKIPPED; only SQLite runs. ***\n\n", PostgresEnv)
		})
		return []sqlstore.Engine{sqlstore.SQLite}
	}
	return []sqlstore.Engine{sqlstore.SQLite, sqlstore.Postgres}
}

// Keyring returns a keyring with a fixed test master secret.
func Keyring(t testing.TB) *keys.Keyring {
	kr, err := keys.NewKeyring([]byte("tidings test master secret, 32+ bytes long"))
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// URL creates a fresh database for engine and returns its Tidings database URL.
func URL(t testing.TB, engine sqlstore.Engine) string {
	t.Helper()
	switch engine {
	case sqlstore.SQLite:
		return "sqlite:" + filepath.Join(t.TempDir(), "tidings.db")
	case sqlstore.Postgres:
		base := os.Getenv(PostgresEnv)
		if base == "" {
			t.Skipf("%s is not set: skipping PostgreSQL", PostgresEnv)
		}
		schema := "tidings_test_" + randomHex(6)
		admin, err := sql.Open("pgx", base)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
			admin.Close()
			t.Fatalf("create test schema: %v", err)
		}
		t.Cleanup(func() {
			defer admin.Close()
			// The store keeps its key store in a schema beside the data's.
			if _, err := admin.Exec(`DROP SCHEMA IF EXISTS ` + schema + `_keys CASCADE`); err != nil {
				t.Errorf("drop test key schema %s_keys: %v", schema, err)
			}
			if _, err := admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`); err != nil {
				t.Errorf("drop test schema %s: %v", schema, err)
			}
		})
		u, err := url.Parse(base)
		if err != nil {
			t.Fatalf("%s: %v", PostgresEnv, err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	t.Fatalf("unknown engine %q", engine)
	return ""
}

// Open returns a fresh, migrated store on engine, closed when the test ends.
func Open(t testing.TB, engine sqlstore.Engine) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), URL(t, engine), Keyring(t), nil)
	if err != nil {
		t.Fatalf("open %s store: %v", engine, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// DKIMKeys gives the account an RSA and an Ed25519 key on domain and returns the DNS
// TXT records (name → value) an independent verifier needs.
func DKIMKeys(t testing.TB, store tidings.Store, accountID int64, domain string) map[string]string {
	t.Helper()
	dns := map[string]string{}
	for _, alg := range []string{"rsa", "ed25519"} {
		signer, err := mail.GenerateKey(alg)
		if err != nil {
			t.Fatal(err)
		}
		priv, _ := mail.MarshalPrivateKey(signer)
		pub, _ := x509.MarshalPKIXPublicKey(signer.Public())
		if k, ok := signer.Public().(ed25519.PublicKey); ok {
			pub = k
		}
		k := tidings.DKIMKey{Selector: "t-" + alg, Algorithm: alg, PrivateKey: priv, PublicKey: pub}
		if err := store.AddDKIMKey(context.Background(), accountID, domain, &k); err != nil {
			t.Fatal(err)
		}
		name, value, _ := mail.DNSRecord(k.Selector, domain, signer.Public())
		dns[name] = value
	}
	return dns
}

// FailWrites makes the database refuse op ("INSERT", "UPDATE" or "DELETE") on table
// where the condition on the row (in SQL naming NEW or OLD, e.g. "NEW.kind = 'x'")
// holds, as a failing disk or constraint would, until the returned function is called.
// A test uses it to show that a write that fails half-way leaves nothing behind.
func FailWrites(t testing.TB, db *sql.DB, engine sqlstore.Engine, op, table, when string) (restore func()) {
	t.Helper()
	create := []string{`CREATE TRIGGER fail_writes BEFORE ` + op + ` ON ` + table + `
		WHEN ` + when + ` BEGIN SELECT RAISE(ABORT, 'injected failure'); END`}
	drop := `DROP TRIGGER fail_writes`
	if engine == sqlstore.Postgres {
		create = []string{`CREATE OR REPLACE FUNCTION fail_writes() RETURNS trigger LANGUAGE plpgsql AS
			$$ BEGIN RAISE EXCEPTION 'injected failure'; END $$`,
			`CREATE TRIGGER fail_writes BEFORE ` + op + ` ON ` + table + ` FOR EACH ROW
			WHEN (` + when + `) EXECUTE FUNCTION fail_writes()`}
		drop = `DROP TRIGGER fail_writes ON ` + table
	}
	for _, q := range create {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	return func() {
		if _, err := db.Exec(drop); err != nil {
			t.Fatal(err)
		}
	}
}
