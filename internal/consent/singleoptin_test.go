package consent_test

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/tidings/tidings/internal/consent"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
)

// confirmToken is the confirmation token in the relay's last message.
func (a *asking) confirmToken(t *testing.T) string {
	t.Helper()
	text := strings.ReplaceAll(string(a.relay.last), "=\r\n", "") // quoted-printable soft breaks
	m := regexp.MustCompile(`/confirm/([A-Za-z0-9_.\-]+)`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no confirmation link in the last mail:\n%s", a.relay.last)
	}
	return m[1]
}

func (a *asking) status(t *testing.T) (tidings.SubscriptionStatus, tidings.Subscriber) {
	t.Helper()
	ctx := context.Background()
	subs, err := a.store.ListSubscribers(ctx, a.acc.ID, tidings.SubscriberFilter{Email: personOnList})
	if err != nil || len(subs) != 1 {
		t.Fatalf("subscriber: %v, %v", subs, err)
	}
	got, err := a.store.Subscriptions(ctx, a.acc.ID, subs[0].ID)
	if err != nil || len(got) != 1 {
		t.Fatalf("subscriptions: %v, %v", got, err)
	}
	return got[0].Status, subs[0]
}

// A form on a single opt-in list subscribes a new address at once, but an address the
// account already holds or has suppressed is asked to confirm by mail: whoever types it
// must not undo the person's unsubscribe, lift their suppression, or change their data.
func TestSingleOptInAsksKnownAddresses(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			ctx := context.Background()
			a := newAsking(t, engine)
			l := tidings.NewList("Offers")
			l.DoubleOptIn = false
			if err := a.store.CreateList(ctx, a.acc.ID, &l); err != nil {
				t.Fatal(err)
			}
			a.list = l.ID
			text, err := a.svc.CurrentText(ctx, a.acc)
			if err != nil {
				t.Fatal(err)
			}
			signUp := func(name string) consent.Outcome {
				t.Helper()
				out, err := a.svc.Subscribe(ctx, consent.SubscribeRequest{AccountID: a.acc.ID, Lists: []int64{a.list}, Email: personOnList.String(),
					Name: name, TextVersion: text.Version, Source: tidings.SourceForm})
				if err != nil {
					t.Fatalf("sign-up: %v", err)
				}
				return out
			}
			if out := signUp("Ann"); out.DoubleOptIn {
				t.Fatal("a new address on a single opt-in list was asked to confirm")
			}
			if st, _ := a.status(t); st != tidings.SubConfirmed {
				t.Fatalf("new address: %s, want confirmed at once", st)
			}
			// Known: a new name waits for the link.
			if out := signUp("Mallory"); !out.DoubleOptIn {
				t.Fatal("a known address was not asked to confirm")
			}
			if _, sub := a.status(t); sub.Name != "Ann" {
				t.Fatalf("name changed to %q by a sign-up nobody confirmed", sub.Name)
			}
			// Left the list: a sign-up does not put them back, nor lift the suppression.
			_, sub := a.status(t)
			if _, err := a.store.Unsubscribe(ctx, a.acc.ID, sub.ID, nil, tidings.SourceMail, tidings.Evidence{}); err != nil {
				t.Fatal(err)
			}
			signUp("")
			if st, _ := a.status(t); st != tidings.SubUnsubscribed {
				t.Fatalf("after a sign-up nobody confirmed: %s, want still unsubscribed", st)
			}
			if held, _, err := a.store.Suppressed(ctx, a.acc.ID, personOnList); err != nil || !held {
				t.Fatalf("suppression lifted by a sign-up nobody confirmed (%v)", err)
			}
			// The person's own confirmation does both.
			if _, err := a.svc.Confirm(ctx, a.confirmToken(t), tidings.Evidence{}, false); err != nil {
				t.Fatalf("confirm: %v", err)
			}
			if st, _ := a.status(t); st != tidings.SubConfirmed {
				t.Fatalf("after confirming: %s, want confirmed", st)
			}
			if held, _, err := a.store.Suppressed(ctx, a.acc.ID, personOnList); err != nil || held {
				t.Fatalf("suppression kept after the person confirmed (%v)", err)
			}
		})
	}
}
