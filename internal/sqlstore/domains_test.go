package sqlstore_test

import (
	"context"
	"testing"

	"github.com/tidings/tidings/internal/sqlstore"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
)

// Migration 31 makes a sending domain one account's: where two accounts already hold
// the same domain, the earlier claim keeps it (and its keys), the later one goes.
func TestDomainOwnerMigration(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			ctx := context.Background()
			s, err := sqlstore.Connect(ctx, testdb.URL(t, engine), testdb.Keyring(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.MigrateUpTo(ctx, 30); err != nil {
				t.Fatal(err)
			}
			var ids [3]int64
			for i := range ids {
				a := tidings.Account{PostalAddress: "1 Example Street, Exampletown", Name: "Shop", ContactEmail: "dpo@shop.example"}
				if err := s.CreateAccount(ctx, &a); err != nil {
					t.Fatal(err)
				}
				ids[i] = a.ID
			}
			claim := func(accountID int64, domain string) {
				t.Helper()
				var id int64
				if err := s.DB().QueryRowContext(ctx, `INSERT INTO sending_domains (account_id, domain, created_at) VALUES ($1, $2, 1) RETURNING id`,
					accountID, domain).Scan(&id); err != nil {
					t.Fatal(err)
				}
				if _, err := s.DB().ExecContext(ctx, `INSERT INTO dkim_keys (domain_id, selector, algorithm, private_key_sealed, public_key, created_at)
					VALUES ($1, 's1', 'rsa', $2, $2, 1)`, id, []byte("x")); err != nil {
					t.Fatal(err)
				}
			}
			claim(ids[0], "news.shop.example")
			claim(ids[1], "news.shop.example") // the later claim
			claim(ids[1], "b.example")
			claim(ids[2], "news.shop.example")
			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			count := func(accountID int64) (domains, keys int) {
				t.Helper()
				if err := s.DB().QueryRowContext(ctx, `SELECT count(DISTINCT d.id), count(k.id) FROM sending_domains d
					LEFT JOIN dkim_keys k ON k.domain_id = d.id WHERE d.account_id = $1`, accountID).Scan(&domains, &keys); err != nil {
					t.Fatal(err)
				}
				return domains, keys
			}
			for i, want := range []int{1, 1, 0} {
				if d, k := count(ids[i]); d != want || k != want {
					t.Errorf("account %d after the migration: %d domains, %d keys; want %d", i, d, k, want)
				}
			}
			var owner int64
			if err := s.DB().QueryRowContext(ctx, `SELECT account_id FROM sending_domains WHERE domain = 'news.shop.example'`).Scan(&owner); err != nil || owner != ids[0] {
				t.Fatalf("news.shop.example is held by %d (%v), want the first account %d", owner, err, ids[0])
			}
		})
	}
}
