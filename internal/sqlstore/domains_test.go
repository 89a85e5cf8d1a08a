package sqlstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/tidings/tidings/internal/mail"
	"github.com/tidings/tidings/internal/postman"
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

// sink is a mail sender that keeps nothing.
type sink struct{}

func (sink) Send(context.Context, mail.Envelope, []byte) error { return nil }
func (sink) Close() error                                      { return nil }

// verifyWith checks msg's DKIM signatures against the public keys of domains as their
// DNS records give them: every signature must verify, and there must be one.
func verifyWith(t *testing.T, msg []byte, domains []tidings.SendingDomain) error {
	t.Helper()
	dns := map[string]string{}
	for _, d := range domains {
		for _, k := range d.Keys {
			name, value, _, err := postman.DKIMRecord(d.Domain, k)
			if err != nil {
				t.Fatal(err)
			}
			dns[name] = value
		}
	}
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(msg), &dkim.VerifyOptions{LookupTXT: func(name string) ([]string, error) {
		if v, ok := dns[name]; ok {
			return []string{v}, nil
		}
		return nil, fmt.Errorf("no TXT %s", name)
	}})
	if err != nil {
		return err
	}
	if len(vs) == 0 {
		return errors.New("no DKIM signature")
	}
	for _, v := range vs {
		if v.Err != nil {
			return fmt.Errorf("%s: %w", v.Domain, v.Err)
		}
	}
	return nil
}

// TestRemoveAndMoveSendingDomain: an account removes a sending domain and the operator
// moves one; the account a domain leaves keeps its keys, retired, and a proof message
// signed with them still verifies against them. Refusals change nothing. Both engines.
func TestRemoveAndMoveSendingDomain(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			ctx := context.Background()
			s := testdb.Open(t, engine)
			var a, b tidings.Account
			for _, acc := range []*tidings.Account{&a, &b} {
				*acc = tidings.Account{PostalAddress: "1 Example Street, Exampletown", Name: "Shop", ContactEmail: "dpo@shop.example"}
				if err := s.CreateAccount(ctx, acc); err != nil {
					t.Fatal(err)
				}
			}
			gen := func(prefix string) []*tidings.DKIMKey {
				var ks []*tidings.DKIMKey
				for _, alg := range postman.DKIMAlgorithms {
					k, err := postman.NewDKIMKey(alg, prefix)
					if err != nil {
						t.Fatal(err)
					}
					ks = append(ks, &k)
				}
				return ks
			}
			const dom = "news.shop.example"
			if err := s.AddDKIMKeys(ctx, a.ID, dom, gen("a1")...); err != nil {
				t.Fatal(err)
			}
			domainID := func(accountID int64) int64 {
				t.Helper()
				ds, err := s.SendingDomains(ctx, accountID)
				if err != nil || len(ds) != 1 {
					t.Fatalf("account %d's domains: %+v, %v", accountID, ds, err)
				}
				return ds[0].ID
			}
			aDomain := domainID(a.ID)

			// A's confirmation request, kept as proof, signed with A's keys.
			l := tidings.NewList("News")
			if err := s.CreateList(ctx, a.ID, &l); err != nil {
				t.Fatal(err)
			}
			res, err := s.RequestSubscription(ctx, a.ID, tidings.SubscriptionRequest{Email: tidings.MustParseAddress("ann@example.com"),
				Lists: []int64{l.ID}, Source: tidings.SourceForm, Kind: tidings.LedgerSingleOptIn})
			if err != nil {
				t.Fatal(err)
			}
			sent, err := postman.New(s, sink{}, "tidings.example").Send(ctx, a.ID, postman.Letter{To: tidings.MustParseAddress("ann@example.com"),
				Subject: "Please confirm", Text: "Confirm here."})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.AttachProof(ctx, a.ID, res.Subscriber.ID, res.LedgerSeq, "confirmation_request", sent); err != nil {
				t.Fatal(err)
			}
			proofVerifies := func(when string) {
				t.Helper()
				ps, err := s.Proofs(ctx, a.ID, res.Subscriber.ID)
				if err != nil || len(ps) != 1 {
					t.Fatalf("%s: proofs %+v, %v", when, ps, err)
				}
				active, err1 := s.SendingDomains(ctx, a.ID)
				removed, err2 := s.RemovedSendingDomains(ctx, a.ID)
				if err1 != nil || err2 != nil {
					t.Fatal(err1, err2)
				}
				if err := verifyWith(t, ps[0].Data, append(active, removed...)); err != nil {
					t.Fatalf("%s: A's proof does not verify with A's keys: %v", when, err)
				}
			}
			proofVerifies("before the removal")

			// A campaign not yet sent or cancelled keeps the domain.
			c := tidings.Campaign{Name: "Weekly", Subject: "S", FromAddress: "news@" + dom, HTML: "<p>x</p>", Lists: []int64{l.ID}}
			if err := s.CreateCampaign(ctx, a.ID, &c); err != nil {
				t.Fatal(err)
			}
			at := time.Now().Add(time.Hour)
			c.ScheduledAt = &at
			if err := s.UpdateCampaign(ctx, a.ID, &c); err != nil {
				t.Fatal(err)
			}
			if err := s.SetCampaignStatus(ctx, a.ID, c.ID, tidings.CampaignScheduled, ""); err != nil {
				t.Fatal(err)
			}
			err = s.RemoveSendingDomain(ctx, a.ID, aDomain)
			if v, ok := tidings.AsValidation(err); !ok || v.Code != "domain_in_use" || !strings.Contains(v.Message, `"Weekly"`) {
				t.Fatalf("removing a domain a scheduled campaign sends from: %v", err)
			}
			if _, err := s.MoveSendingDomain(ctx, dom, b.ID, gen("b1")...); err == nil {
				t.Fatal("moving a domain a scheduled campaign sends from: no error")
			}
			// A draft too: moving it to sending does not check its From domain again.
			if err := s.SetCampaignStatus(ctx, a.ID, c.ID, tidings.CampaignDraft, ""); err != nil {
				t.Fatal(err)
			}
			if v, ok := tidings.AsValidation(s.RemoveSendingDomain(ctx, a.ID, aDomain)); !ok || v.Code != "domain_in_use" {
				t.Fatal("removing a domain a draft sends from: no domain_in_use")
			}
			if err := s.SetCampaignStatus(ctx, a.ID, c.ID, tidings.CampaignCancelled, ""); err != nil {
				t.Fatal(err)
			}
			// Only the account's own, current domain.
			if err := s.RemoveSendingDomain(ctx, b.ID, aDomain); !errors.Is(err, tidings.ErrNotFound) {
				t.Fatalf("B removing A's domain: %v, want ErrNotFound", err)
			}
			if err := s.RemoveSendingDomain(ctx, a.ID, aDomain); err != nil {
				t.Fatal(err)
			}
			if err := s.RemoveSendingDomain(ctx, a.ID, aDomain); !errors.Is(err, tidings.ErrNotFound) {
				t.Fatalf("removing it twice: %v, want ErrNotFound", err)
			}
			if ds, err := s.SendingDomains(ctx, a.ID); err != nil || len(ds) != 0 {
				t.Fatalf("A's domains after the removal: %+v, %v", ds, err)
			}
			removed, err := s.RemovedSendingDomains(ctx, a.ID)
			if err != nil || len(removed) != 1 || removed[0].Domain != dom || removed[0].RemovedAt == nil || len(removed[0].Keys) != 2 {
				t.Fatalf("A's removed domains: %+v, %v", removed, err)
			}
			for _, k := range removed[0].Keys {
				if k.RetiredAt == nil {
					t.Fatalf("a key of a removed domain still signs: %+v", k)
				}
			}
			if ds, _ := s.RemovedSendingDomains(ctx, b.ID); len(ds) != 0 {
				t.Fatalf("B sees A's removed domain: %+v", ds)
			}
			proofVerifies("after the removal")
			// No campaign sends from it now: new or edited, the store refuses it, inside
			// the write's transaction (the forms' check reads the domains before it).
			fresh := tidings.Campaign{Name: "Late", Subject: "S", FromAddress: "news@" + dom, HTML: "<p>x</p>", Lists: []int64{l.ID}}
			if v, ok := tidings.AsValidation(s.CreateCampaign(ctx, a.ID, &fresh)); !ok || v.Code != "domain_removed" || v.Field != "from_address" {
				t.Fatal("a new campaign on a removed domain: no domain_removed")
			}
			fresh.FromAddress = "news@elsewhere.example"
			if err := s.CreateCampaign(ctx, a.ID, &fresh); err != nil {
				t.Fatal(err)
			}
			fresh.FromAddress = "news@" + dom
			if v, ok := tidings.AsValidation(s.UpdateCampaign(ctx, a.ID, &fresh)); !ok || v.Code != "domain_removed" {
				t.Fatal("a campaign edited onto a removed domain: no domain_removed")
			}
			if err := s.DeleteCampaign(ctx, a.ID, fresh.ID); err != nil {
				t.Fatal(err)
			}

			// The domain is free: B takes it, but not with a selector A used on it.
			err = s.AddDKIMKeys(ctx, b.ID, dom, gen("a1")...)
			if v, ok := tidings.AsValidation(err); !errors.Is(err, tidings.ErrConflict) || !ok || v.Code != "selector_taken" {
				t.Fatalf("B reusing A's selector: %v, want selector_taken", err)
			}
			if err := s.AddDKIMKeys(ctx, b.ID, dom, gen("b1")...); err != nil {
				t.Fatal(err)
			}
			bDomain := domainID(b.ID)
			if bDomain == aDomain {
				t.Fatal("B got A's domain row, with A's keys")
			}

			// The operator moves it back to A: refusals first, each leaving B's domain as it was.
			for _, tc := range []struct {
				domain string
				to     int64
				keys   []*tidings.DKIMKey
				code   string // "" for ErrNotFound
			}{
				{"other.example", a.ID, gen("a2"), "unknown_domain"},
				{dom, b.ID, gen("a2"), "same_account"},
				{dom, 999999, gen("a2"), ""},
				{dom, a.ID, gen("b1"), "selector_taken"},
				{dom, a.ID, nil, "required"},
			} {
				_, err := s.MoveSendingDomain(ctx, tc.domain, tc.to, tc.keys...)
				if v, ok := tidings.AsValidation(err); tc.code != "" && (!ok || v.Code != tc.code) || tc.code == "" && !errors.Is(err, tidings.ErrNotFound) {
					t.Fatalf("move %s to %d: %v, want %q", tc.domain, tc.to, err, tc.code)
				}
				if domainID(b.ID) != bDomain {
					t.Fatalf("a refused move changed B's domain")
				}
			}
			ks := gen("a2")
			from, err := s.MoveSendingDomain(ctx, " News.Shop.Example ", a.ID, ks...)
			if err != nil || from != b.ID || ks[0].ID == 0 {
				t.Fatalf("move: from %d, %v", from, err)
			}
			// A's row is A's again: its old keys retired, the new ones signing.
			ds, err := s.SendingDomains(ctx, a.ID)
			if err != nil || len(ds) != 1 || ds[0].ID != aDomain || len(ds[0].Keys) != 4 {
				t.Fatalf("A's domains after the move: %+v, %v", ds, err)
			}
			for _, k := range ds[0].Keys {
				if (k.RetiredAt == nil) != strings.HasPrefix(k.Selector, "a2-") {
					t.Fatalf("A's key %s after the move: retired %v", k.Selector, k.RetiredAt)
				}
			}
			if ds, _ := s.SendingDomains(ctx, b.ID); len(ds) != 0 {
				t.Fatalf("B still sends from the moved domain: %+v", ds)
			}
			if ds, _ := s.RemovedSendingDomains(ctx, b.ID); len(ds) != 1 || ds[0].Keys[0].RetiredAt == nil {
				t.Fatalf("B's removed domains after the move: %+v", ds)
			}
			proofVerifies("after the move back")
		})
	}
}
