package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tidings/tidings/internal/dnstest"
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

// createShop creates an account with the CLI.
func createShop(t *testing.T, c *cli) tidings.Account {
	t.Helper()
	code, out, errs := c.run("account", "create", "--name", "Shop", "--postal-address", "1 Main St", "--contact-email", "dpo@shop.example", "--json")
	var acc tidings.Account
	if code != 0 || json.Unmarshal([]byte(out), &acc) != nil || acc.ID == 0 {
		t.Fatalf("account create: %d %s%s", code, out, errs)
	}
	return acc
}

// TestDKIMGenerateAllOrNothing: a run that cannot add every key it was asked for adds
// none, and says why in words; on both engines.
func TestDKIMGenerateAllOrNothing(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			c := newCLI(t, "TIDINGS_DATABASE_URL="+testdb.URL(t, engine), "TIDINGS_SECRET_KEY=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
			acc := createShop(t, c)
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

// TestDomainRemoveAndMove: `tidings domain remove` and `tidings domain move` refuse in
// words (unknown domain, missing account, bad flags, a campaign on its way from the
// domain) without changing anything, and otherwise leave the old account its keys,
// retired; on both engines.
func TestDomainRemoveAndMove(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			ctx := context.Background()
			c := newCLI(t, "TIDINGS_DATABASE_URL="+testdb.URL(t, engine), "TIDINGS_SECRET_KEY=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
			var ids [2]string
			var accs [2]tidings.Account
			for i := range ids {
				code, out, errs := c.run("account", "create", "--name", "Shop", "--postal-address", "1 Main St", "--contact-email", "dpo@shop.example", "--json")
				if code != 0 {
					t.Fatal(errs)
				}
				json.Unmarshal([]byte(out), &accs[i])
				ids[i] = fmt.Sprint(accs[i].ID)
			}
			if code, _, errs := c.run("dkim", "generate", "--account", ids[0], "--domain", "news.shop.example", "--selector", "a1"); code != 0 {
				t.Fatalf("generate: %d %s", code, errs)
			}
			for _, bad := range []struct {
				args []string
				code int
				want string
			}{
				{[]string{"domain"}, 2, "domain remove"},
				{[]string{"domain", "drop"}, 2, "unknown subcommand"},
				{[]string{"domain", "remove", "--domain", "news.shop.example"}, 2, "--account ID and --domain are required"},
				{[]string{"domain", "remove", "--account", ids[0], "--domain", "not a domain"}, 2, "must be a domain name"},
				{[]string{"domain", "remove", "--account", "999999", "--domain", "news.shop.example"}, 1, "account 999999 not found"},
				{[]string{"domain", "remove", "--account", ids[1], "--domain", "news.shop.example"}, 1, "news.shop.example is not a sending domain of account " + ids[1]},
				{[]string{"domain", "move", "--domain", "news.shop.example"}, 2, "--domain and --to ID are required"},
				{[]string{"domain", "move", "--domain", "news.shop.example", "--to", ids[1], "--selector", "a_1"}, 2, "--selector"},
				{[]string{"domain", "move", "--domain", "other.example", "--to", ids[1]}, 1, "other.example is not a sending domain of any account"},
				{[]string{"domain", "move", "--domain", "news.shop.example", "--to", "999999"}, 1, "account 999999 not found"},
				{[]string{"domain", "move", "--domain", "news.shop.example", "--to", ids[0]}, 1, "already a sending domain of account " + ids[0]},
				{[]string{"domain", "move", "--domain", "news.shop.example", "--to", ids[1], "--selector", "a1"}, 1, "selector a1 already exists for domain news.shop.example"},
			} {
				code, out, errs := c.run(bad.args...)
				if code != bad.code || out != "" || !strings.Contains(errs, bad.want) {
					t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d and %q", bad.args, code, out, errs, bad.code, bad.want)
				}
			}
			if got := storedSelectors(t, c, accs[0].ID)["news.shop.example"]; len(got) != 2 {
				t.Fatalf("after the refusals, A's keys: %v", got)
			}

			// A campaign on its way from the domain keeps it where it is.
			a := openTestApp(t, c)
			l := tidings.NewList("News")
			at := time.Now().Add(time.Hour)
			camp := tidings.Campaign{Name: "Weekly", Subject: "S", FromAddress: "news@news.shop.example", HTML: "<p>x</p>", ScheduledAt: &at}
			if err := a.store.CreateList(ctx, accs[0].ID, &l); err != nil {
				t.Fatal(err)
			}
			camp.Lists = []int64{l.ID}
			if err := a.store.CreateCampaign(ctx, accs[0].ID, &camp); err != nil {
				t.Fatal(err)
			}
			if err := a.store.SetCampaignStatus(ctx, accs[0].ID, camp.ID, tidings.CampaignScheduled, ""); err != nil {
				t.Fatal(err)
			}
			a.Close()
			for _, args := range [][]string{
				{"domain", "remove", "--account", ids[0], "--domain", "news.shop.example"},
				{"domain", "move", "--domain", "news.shop.example", "--to", ids[1]},
			} {
				if code, _, errs := c.run(args...); code != 1 || !strings.Contains(errs, `campaign "Weekly"`) {
					t.Errorf("%v with a scheduled campaign: exit %d, %q", args, code, errs)
				}
			}
			a = openTestApp(t, c)
			if err := a.store.SetCampaignStatus(ctx, accs[0].ID, camp.ID, tidings.CampaignCancelled, ""); err != nil {
				t.Fatal(err)
			}
			a.Close()

			// The operator moves it to B, with new keys whose records are printed.
			code, out, errs := c.run("domain", "move", "--domain", "News.Shop.Example", "--to", ids[1], "--selector", "b1")
			if code != 0 || !strings.Contains(out, `b1-rsa._domainkey.news.shop.example. IN TXT "v=DKIM1; k=rsa; p=`) ||
				!strings.Contains(errs, "Moved news.shop.example from account "+ids[0]+" to account "+ids[1]) {
				t.Fatalf("move: %d\n%s\n%s", code, out, errs)
			}
			a = openTestApp(t, c)
			removed, err := a.store.RemovedSendingDomains(ctx, accs[0].ID)
			active, _ := a.store.SendingDomains(ctx, accs[0].ID)
			a.Close()
			if err != nil || len(active) != 0 || len(removed) != 1 || len(removed[0].Keys) != 2 || removed[0].Keys[0].RetiredAt == nil {
				t.Fatalf("A after the move: sending %+v, removed %+v, %v", active, removed, err)
			}
			if got := storedSelectors(t, c, accs[1].ID)["news.shop.example"]; strings.Join(got, " ") != "b1-rsa b1-ed25519" {
				t.Fatalf("B's keys after the move: %v", got)
			}

			// B removes it; then it is nobody's.
			code, out, errs = c.run("domain", "remove", "--account", ids[1], "--domain", "news.shop.example")
			if code != 0 || !strings.Contains(out, "Removed news.shop.example from account "+ids[1]) {
				t.Fatalf("remove: %d %q %q", code, out, errs)
			}
			if code, _, errs := c.run("domain", "move", "--domain", "news.shop.example", "--to", ids[0]); code != 1 || !strings.Contains(errs, "not a sending domain of any account") {
				t.Fatalf("moving a removed domain: %d %q", code, errs)
			}
			if got := storedSelectors(t, c, accs[1].ID); len(got) != 0 {
				t.Fatalf("B still sends from %v", got)
			}
		})
	}
}

// TestDomainCheck: `domain check` asks the configured DNS server for each key's record,
// SPF and DMARC, prints what it found, and fails until every signing key is published.
func TestDomainCheck(t *testing.T) {
	dns := dnstest.Start(t)
	c := newCLI(t, "TIDINGS_DNS_RESOLVER="+dns.Addr)
	acc := createShop(t, c)
	id := fmt.Sprint(acc.ID)
	if code, _, errs := c.run("dkim", "generate", "--account", id, "--domain", "news.shop.example", "--selector", "s1"); code != 0 {
		t.Fatal(errs)
	}
	check := func() (int, string, string) {
		return c.run("domain", "check", "--account", id, "--domain", "News.Shop.Example")
	}

	code, out, errs := check()
	if code == 0 || strings.Count(out, "not found") != 4 || !strings.Contains(errs, "news.shop.example is not ready: not every signing key of it is published") {
		t.Fatalf("empty zone: %d\n%s%s", code, out, errs)
	}
	a := openTestApp(t, c)
	domains, err := a.store.SendingDomains(context.Background(), acc.ID)
	a.Close()
	if err != nil || len(domains) != 1 || len(domains[0].Keys) != 2 {
		t.Fatal(domains, err)
	}
	for _, k := range domains[0].Keys {
		name, value, _, err := postman.DKIMRecord("news.shop.example", k)
		if err != nil {
			t.Fatal(err)
		}
		dns.SetTXT(name, value)
	}
	dns.SetTXT("news.shop.example", "v=spf1 -all")
	code, out, errs = check()
	published := regexp.MustCompile(`(?m)^(DKIM s1-rsa \(signing\)|DKIM s1-ed25519 \(signing\)|SPF) +published`)
	if code != 0 || len(published.FindAllString(out, -1)) != 3 || !strings.Contains(out, "published: v=spf1 -all") ||
		!strings.Contains(out, "news.shop.example is ready") {
		t.Fatalf("published: %d\n%s%s", code, out, errs)
	}
	if code, _, errs := c.run("domain", "check", "--account", id, "--domain", "other.example"); code == 0 || !strings.Contains(errs, "not a sending domain") {
		t.Fatalf("unknown domain: %d %s", code, errs)
	}
}
