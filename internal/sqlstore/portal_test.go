package sqlstore_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidings/tidings/internal/keys"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
)

// TestPortalLinkWorksOnceUnderRace: a sign-in link used by many requests at the same
// moment (a mail scanner and the person, or someone who intercepted it) opens exactly
// one session.
func TestPortalLinkWorksOnceUnderRace(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			s := testdb.Open(t, engine)
			ctx := context.Background()
			addr := tidings.MustParseAddress("pat@portal.example")
			for round := 0; round < 20; round++ {
				_, hash := keys.NewSecretToken("p_")
				if err := s.CreatePortalToken(ctx, hash, addr, false, time.Now().Add(time.Minute)); err != nil {
					t.Fatal(err)
				}
				var ok atomic.Int64
				var wg sync.WaitGroup
				start := make(chan struct{})
				for range 8 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						if _, err := s.UsePortalToken(ctx, hash, false); err == nil {
							ok.Add(1)
						}
					}()
				}
				close(start)
				wg.Wait()
				if n := ok.Load(); n != 1 {
					t.Fatalf("round %d: the single-use link opened %d sessions", round, n)
				}
			}
		})
	}
}

// TestPortalSessionsEndWithThePerson: deleting the last subscriber of a person (here by
// staff) ends their portal links and sessions, which hold the address sealed; another
// person's session stays.
func TestPortalSessionsEndWithThePerson(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			s := testdb.Open(t, engine)
			ctx := context.Background()
			a := tidings.Account{PostalAddress: "1 Example Street, Exampletown", Name: "Shop", ContactEmail: "dpo@shop.example"}
			if err := s.CreateAccount(ctx, &a); err != nil {
				t.Fatal(err)
			}
			gone := tidings.Subscriber{Email: tidings.MustParseAddress("gone@portal.example")}
			stays := tidings.Subscriber{Email: tidings.MustParseAddress("stays@portal.example")}
			hashes := map[string][]byte{}
			for _, sub := range []*tidings.Subscriber{&gone, &stays} {
				if err := s.CreateSubscriber(ctx, a.ID, sub, nil, "", nil); err != nil {
					t.Fatal(err)
				}
				_, hash := keys.NewSecretToken("p_")
				if err := s.CreatePortalToken(ctx, hash, sub.Email, true, time.Now().Add(time.Hour)); err != nil {
					t.Fatal(err)
				}
				hashes[sub.Email.String()] = hash
			}
			if err := s.DeleteSubscriber(ctx, a.ID, gone.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := s.UsePortalToken(ctx, hashes["gone@portal.example"], true); err == nil {
				t.Fatal("the deleted person's portal session still works")
			}
			if _, err := s.UsePortalToken(ctx, hashes["stays@portal.example"], true); err != nil {
				t.Fatalf("another person's session: %v", err)
			}
		})
	}
}
