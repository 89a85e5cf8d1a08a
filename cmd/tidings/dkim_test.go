package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/tidings/tidings/internal/postman"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
)

// storedSelectors lists the DKIM selectors stored for the account, by domain.
func storedSelectors(t *testing.T, c *cli, accountID int64) map[string][]string {
	t.Helper()
	a := openTestApp(t, c)
	defer a.Close()
	ds, err := a.store.SendingDomains(context.Background(), accountID)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, d := range ds {
		for _, k := range d.Keys {
			out[d.Domain] = append(out[d.Domain], k.Selector)
		}
	}
	return out
}

// TestDKIMGenerateAllOrNothing: a run that cannot add every key it was asked for adds
// none, and says why in words; on both engines.
func TestDKIMGenerateAllOrNothing(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			c := newCLI(t, "TIDINGS_DATABASE_URL="+testdb.URL(t, engine), "TIDINGS_SECRET_KEY=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
			code, out, errs := c.run("account", "create", "--name", "Shop", "--postal-address", "1 Main St", "--contact-email", "dpo@shop.example", "--json")
			if code != 0 {
				t.Fatal(errs)
			}
			var acc tidings.Account
			json.Unmarshal([]byte(out), &acc)
			id := fmt.Sprint(acc.ID)
			gen := func(args ...string) (int, string, string) {
				return c.run(append([]string{"dkim", "generate", "--account", id, "--domain", "news.shop.example"}, args...)...)
			}

			// Bad flags are refused before anything is stored, even when an earlier
			// algorithm in the list is fine.
			for _, bad := range [][]string{
				{"--selector", "rot1", "--algorithms", "rsa,ed448"},
				{"--selector", "rot1", "--algorithms", "ed25519,"},
				{"--selector", "rot1", "--algorithms", "rsa,rsa"},
				{"--selector", "rot_1"},
				{"--selector", strings.Repeat("a", 60)},
				{"--domain", "not a domain"},
				{"--domain", "bob@news.shop.example"},
			} {
				code, out, errs := gen(bad...)
				if code != 2 || errs == "" || out != "" {
					t.Errorf("%v: exit %d, stdout %q, stderr %q; want a usage error", bad, code, out, errs)
				}
			}
			if got := storedSelectors(t, c, acc.ID); len(got) != 0 {
				t.Fatalf("refused runs stored keys: %v", got)
			}
			if code, _, errs := gen("--selector", "rot1", "--algorithms", "rsa,ed448"); !strings.Contains(errs, `"ed448"`) {
				t.Errorf("unknown algorithm: exit %d, %q; want it named", code, errs)
			}

			if code, _, errs := gen("--selector", "rot1"); code != 0 {
				t.Fatalf("first run: %d %s", code, errs)
			}
			// The same selector again (in part or whole): a clear message, nothing new.
			for _, again := range [][]string{{"--selector", "rot1"}, {"--selector", "ROT1", "--algorithms", "ed25519"}} {
				code, out, errs := gen(again...)
				if code != 1 || out != "" || !strings.Contains(errs, "selector rot1 already exists for domain news.shop.example") ||
					!strings.Contains(errs, "choose another with --selector") || strings.Contains(errs, "constraint") {
					t.Errorf("%v again: exit %d, stdout %q, stderr %q", again, code, out, errs)
				}
			}
			// rot2-ed25519 exists: asking for rot2's RSA and Ed25519 keys adds neither.
			if code, _, errs := gen("--selector", "rot2", "--algorithms", "ed25519"); code != 0 {
				t.Fatalf("rot2: %d %s", code, errs)
			}
			if code, _, errs := gen("--selector", "rot2"); code != 1 || !strings.Contains(errs, "selector rot2 already exists") {
				t.Errorf("rot2 again: exit %d, %q", code, errs)
			}
			got := storedSelectors(t, c, acc.ID)["news.shop.example"]
			if strings.Join(got, " ") != "rot1-rsa rot1-ed25519 rot2-ed25519" {
				t.Fatalf("stored selectors %v; want rot1-rsa rot1-ed25519 rot2-ed25519", got)
			}
		})
	}
}

// TestAddDKIMKeysAtomic: the store adds several keys in one transaction; a selector
// conflict on the last leaves none of them, and no new domain, on both engines.
func TestAddDKIMKeysAtomic(t *testing.T) {
	ctx := context.Background()
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			s := testdb.Open(t, engine)
			acc := tidings.Account{PostalAddress: "1 Example Street, Exampletown", Name: "Shop", ContactEmail: "dpo@shop.example"}
			if err := s.CreateAccount(ctx, &acc); err != nil {
				t.Fatal(err)
			}
			newKey := func(alg, prefix string) *tidings.DKIMKey {
				k, err := postman.NewDKIMKey(alg, prefix)
				if err != nil {
					t.Fatal(err)
				}
				return &k
			}
			first := []*tidings.DKIMKey{newKey("rsa", "a"), newKey("ed25519", "a")}
			if err := s.AddDKIMKeys(ctx, acc.ID, "News.Shop.Example", first...); err != nil {
				t.Fatal(err)
			}
			if first[0].ID == 0 || first[1].ID == 0 {
				t.Fatalf("IDs not set: %+v", first)
			}
			err := s.AddDKIMKeys(ctx, acc.ID, "news.shop.example", newKey("rsa", "b"), newKey("ed25519", "a"))
			if !errors.Is(err, tidings.ErrConflict) {
				t.Fatalf("conflicting batch: %v, want ErrConflict", err)
			}
			err = s.AddDKIMKeys(ctx, acc.ID, "other.shop.example", newKey("rsa", "c"), newKey("rsa", "c"))
			if _, ok := tidings.AsValidation(err); !ok {
				t.Fatalf("a selector twice in one batch: %v, want a validation error", err)
			}
			ds, err := s.SendingDomains(ctx, acc.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) != 1 || len(ds[0].Keys) != 2 || ds[0].Keys[0].Selector != "a-rsa" || ds[0].Keys[1].Selector != "a-ed25519" {
				t.Fatalf("stored %+v; want only a-rsa and a-ed25519 on one domain", ds)
			}
		})
	}
}
