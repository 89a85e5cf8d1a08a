package consent_test

import (
	"context"
	"strings"
	"testing"

	"github.com/tidings/tidings/internal/consent"
	"github.com/tidings/tidings/internal/mail/mailtest"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
)

// parts returns the decoded text and HTML parts of a message.
func parts(t *testing.T, raw []byte) (text, htm string) {
	t.Helper()
	text, htm, err := mailtest.Parts(raw)
	if err != nil {
		t.Fatal(err)
	}
	return text, htm
}

// A confirmation mail whose request asks for tracking consent (the person's ticked box,
// or staff and API tokens saying they gave it) tells the person, in both parts, what
// confirming agrees to, and links to confirming without it; a mail whose request does
// not ask says nothing of tracking.
func TestConfirmationMailStatesTracking(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			ctx := context.Background()
			a := newAsking(t, engine)
			a.acc.TrackingEnabled = true
			if err := a.store.UpdateAccount(ctx, &a.acc); err != nil {
				t.Fatal(err)
			}
			text, err := a.svc.CurrentText(ctx, a.acc)
			if err != nil {
				t.Fatal(err)
			}
			signUp := func(email string, tracking bool) {
				t.Helper()
				if _, err := a.svc.Subscribe(ctx, consent.SubscribeRequest{AccountID: a.acc.ID, Lists: []int64{a.list}, Email: email,
					TrackingConsent: tracking, TextVersion: text.Version, Source: tidings.SourceForm}); err != nil {
					t.Fatal(err)
				}
			}
			ask := func(email string, tracking bool) {
				t.Helper()
				if _, err := a.svc.AskToConfirm(ctx, a.acc.ID, consent.Ask{Email: tidings.MustParseAddress(email), Lists: []int64{a.list},
					TrackingConsent: tracking, Source: tidings.SourceAPI, Note: "recorded through the API with token 1"}); err != nil {
					t.Fatal(err)
				}
			}
			for _, step := range []struct {
				name     string
				send     func(string, bool)
				tracking bool
			}{
				{"form with tracking", signUp, true},
				{"form without", signUp, false},
				{"API with tracking", ask, true},
				{"API without", ask, false},
			} {
				step.send(strings.ReplaceAll(step.name, " ", ".")+"@example.com", step.tracking)
				plain, htm := parts(t, a.relay.last)
				for part, body := range map[string]string{"text": plain, "HTML": htm} {
					body = strings.Join(strings.Fields(body), " ")
					says := strings.Contains(body, "by confirming, you also agree that Club sees whether you open its emails and click their links")
					without := strings.Contains(body, "?tracking=no")
					if says != step.tracking || without != step.tracking {
						t.Fatalf("%s, %s part: mentions tracking %v, offers to confirm without %v; want %v:\n%s",
							step.name, part, says, without, step.tracking, body)
					}
				}
			}
		})
	}
}
