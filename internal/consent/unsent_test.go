package consent_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/tidings/tidings/internal/consent"
	"github.com/tidings/tidings/internal/mail"
	"github.com/tidings/tidings/internal/postman"
	"github.com/tidings/tidings/internal/sqlstore"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
)

// relay is a mail.Sender that fails with next (once) when it is set, and otherwise
// keeps what it is given.
type relay struct {
	mu   sync.Mutex
	next error
	sent int
	last []byte // the last message sent
}

func (r *relay) Send(_ context.Context, _ mail.Envelope, msg []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.next; err != nil {
		r.next = nil
		return err
	}
	r.sent++
	r.last = msg
	return nil
}

func (r *relay) Close() error { return nil }

func (r *relay) failNext(err error) {
	r.mu.Lock()
	r.next = err
	r.mu.Unlock()
}

var (
	relayDown    = &mail.SendError{Message: "connection refused", Temporary: true}
	userUnknown  = &mail.SendError{Code: 550, Enhanced: "5.1.1", Message: "user unknown"}
	greylisted   = &mail.SendError{Code: 451, Enhanced: "4.7.1", Message: "try again later", Temporary: true}
	personOnList = tidings.MustParseAddress("new@example.com")
)

// asking is a double opt-in list and a consent service whose relay can be made to fail.
type asking struct {
	store *sqlstore.Store
	svc   *consent.Service
	relay *relay
	acc   tidings.Account
	list  int64
}

func newAsking(t *testing.T, engine sqlstore.Engine) *asking {
	t.Helper()
	ctx := context.Background()
	a := &asking{store: testdb.Open(t, engine), relay: &relay{}}
	a.svc = &consent.Service{Store: a.store, Keys: testdb.Keyring(t), Postman: postman.New(a.store, a.relay, "tidings.example"),
		BaseURL: "https://tidings.example"}
	a.acc = tidings.Account{Name: "Club", ContactEmail: "dpo@club.example", PostalAddress: "1 Main St"}
	if err := a.store.CreateAccount(ctx, &a.acc); err != nil {
		t.Fatal(err)
	}
	l := tidings.NewList("News") // double opt-in
	if err := a.store.CreateList(ctx, a.acc.ID, &l); err != nil {
		t.Fatal(err)
	}
	a.list = l.ID
	return a
}

func (a *asking) subscribe(t *testing.T) error {
	t.Helper()
	text, err := a.svc.CurrentText(context.Background(), a.acc)
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.svc.Subscribe(context.Background(), consent.SubscribeRequest{AccountID: a.acc.ID, Lists: []int64{a.list},
		Email: personOnList.String(), TextVersion: text.Version, Source: tidings.SourceForm, Evidence: tidings.Evidence{IP: "192.0.2.1"}})
	return err
}

func (a *asking) ask(t *testing.T) error {
	t.Helper()
	_, err := a.svc.AskToConfirm(context.Background(), a.acc.ID, consent.Ask{Email: personOnList, Lists: []int64{a.list},
		Source: tidings.SourceAPI, Note: "test"})
	return err
}

// held says whether the account holds the person, and the ledger's kinds so far, after
// checking that the chain verifies.
func (a *asking) held(t *testing.T) (bool, []tidings.LedgerKind) {
	t.Helper()
	ctx := context.Background()
	subs, err := a.store.ListSubscribers(ctx, a.acc.ID, tidings.SubscriberFilter{Email: personOnList})
	if err != nil {
		t.Fatal(err)
	}
	entries, err := a.store.LedgerEntries(ctx, a.acc.ID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []tidings.LedgerKind
	for _, e := range entries {
		kinds = append(kinds, e.Kind)
	}
	if rep, err := consent.VerifyLedger(ctx, a.store, a.acc.ID); err != nil || !rep.OK {
		t.Fatalf("ledger verify: %+v, %v", rep, err)
	}
	return len(subs) > 0, kinds
}

// A confirmation mail that cannot be sent withdraws its request: nobody could confirm
// it, and it would otherwise stand in the way of asking again until it expired.
func TestUnsentConfirmationIsWithdrawn(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			for _, c := range []struct {
				name string
				do   func(*asking, *testing.T) error
			}{{"form", (*asking).subscribe}, {"account holder", (*asking).ask}} {
				t.Run(c.name, func(t *testing.T) {
					a := newAsking(t, engine)
					a.relay.failNext(relayDown)
					err := c.do(a, t)
					if !errors.Is(err, consent.ErrMailNotSent) {
						t.Fatalf("relay down: err = %v, want ErrMailNotSent", err)
					}
					if kept, kinds := a.held(t); kept || len(kinds) != 2 || kinds[0] != tidings.LedgerRequested || kinds[1] != tidings.LedgerUnsent {
						t.Fatalf("after the failed mail: subscriber kept %v, ledger %v; want nothing kept, [requested unsent]", kept, kinds)
					}
					// Asking again works at once, and this time the mail goes.
					if err := c.do(a, t); err != nil {
						t.Fatalf("asking again: %v", err)
					}
					if kept, _ := a.held(t); !kept || a.relay.sent != 1 {
						t.Fatalf("asking again: subscriber kept %v, %d mails sent; want kept, 1", kept, a.relay.sent)
					}
					subs, err := a.store.ListSubscribers(context.Background(), a.acc.ID, tidings.SubscriberFilter{Email: personOnList})
					if err != nil {
						t.Fatal(err)
					}
					got, err := a.store.Subscriptions(context.Background(), a.acc.ID, subs[0].ID)
					if err != nil || len(got) != 1 || got[0].Status != tidings.SubUnconfirmed || got[0].AwaitingUntil == nil {
						t.Fatalf("subscriptions after asking again: %+v, %v; want one unconfirmed, awaiting its link", got, err)
					}
				})
			}
		})
	}
}

// A relay that refuses the address for good is a mistake in the address: a validation
// error on it, and nothing kept. A temporary refusal is ErrMailNotSent.
func TestRefusedAddress(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			a := newAsking(t, engine)
			a.relay.failNext(userUnknown)
			err := a.ask(t)
			if v, ok := tidings.AsValidation(err); !ok || v.Field != "email" || v.Code != "refused" {
				t.Fatalf("550 5.1.1: err = %v, want a validation error on email (refused)", err)
			}
			a.relay.failNext(greylisted)
			if err := a.subscribe(t); !errors.Is(err, consent.ErrMailNotSent) {
				t.Fatalf("451: err = %v, want ErrMailNotSent", err)
			}
			if kept, kinds := a.held(t); kept || len(kinds) != 4 {
				t.Fatalf("subscriber kept %v, ledger %v; want nothing kept, two requests each withdrawn", kept, kinds)
			}
		})
	}
}

// An import asking for confirmation reports an address the relay refuses as a bad row
// and goes on; a relay that is down stops it.
func TestRequesterRefusedRow(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			a := newAsking(t, engine)
			request := a.svc.Requester(a.acc.ID, a.list, tidings.ImportDeclaration{Source: "fair", LawfulBasis: tidings.BasisConsent})
			ctx := context.Background()
			a.relay.failNext(userUnknown)
			res, err := request(ctx, tidings.ImportRow{Row: 2, Email: personOnList})
			if err != nil || res.Status != tidings.ImportInvalid || res.Row != 2 {
				t.Fatalf("refused row: %+v, %v; want row 2 invalid, no error", res, err)
			}
			a.relay.failNext(relayDown)
			if _, err := request(ctx, tidings.ImportRow{Row: 3, Email: personOnList}); !errors.Is(err, consent.ErrMailNotSent) {
				t.Fatalf("relay down: err = %v, want ErrMailNotSent", err)
			}
			res, err = request(ctx, tidings.ImportRow{Row: 4, Email: personOnList})
			if err != nil || res.Status != tidings.ImportRequested {
				t.Fatalf("relay back: %+v, %v; want confirmation_sent", res, err)
			}
		})
	}
}
