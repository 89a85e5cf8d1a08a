package public_test

import (
	"bytes"
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/tidings/tidings/internal/send"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
)

// TestOneClickUnsubscribe follows RFC 8058: GET never unsubscribes; a POST with
// List-Unsubscribe=One-Click (form-urlencoded or multipart), without cookies, origin or
// CSRF token, unsubscribes at once, answers 200 without a redirect, and leaves a ledger
// entry and a suppression.
func TestOneClickUnsubscribe(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			w := newWorld(t, testdb.Open(t, engine), true)
			ctx := context.Background()
			kr := testdb.Keyring(t)
			camp := tidings.Campaign{Name: "c", Subject: "s", FromAddress: "news@books.example", HTML: "<p>x</p>", Lists: []int64{w.list.ID}}
			if err := w.store.CreateCampaign(ctx, w.acc.ID, &camp); err != nil {
				t.Fatal(err)
			}
			mk := func(email string) (tidings.Subscriber, string) {
				s := tidings.Subscriber{Email: tidings.MustParseAddress(email)}
				if err := w.store.CreateSubscriber(ctx, w.acc.ID, &s, []int64{w.list.ID}, tidings.SubConfirmed, nil); err != nil {
					t.Fatal(err)
				}
				return s, "/u/" + send.RecipientToken(kr, w.acc.ID, camp.ID, s.ID)
			}
			status := func(s tidings.Subscriber) tidings.SubscriptionStatus {
				x, _ := w.store.Subscriptions(ctx, w.acc.ID, s.ID)
				return x[0].Status
			}
			ann, annURL := mk("ann@example.com")
			if code, page := w.get(annURL); code != 200 || !strings.Contains(page, `name="List-Unsubscribe" value="One-Click"`) {
				t.Fatalf("GET: %d", code)
			}
			if status(ann) != tidings.SubConfirmed {
				t.Fatal("GET unsubscribed")
			}
			post := func(url, ctype string, body []byte) *http.Response {
				req, _ := http.NewRequest("POST", w.srv.URL+url, bytes.NewReader(body))
				req.Header.Set("Content-Type", ctype)
				res, err := w.client.Do(req) // no cookies, no Origin: as a mail provider posts
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				return res
			}
			res := post(annURL, "application/x-www-form-urlencoded", []byte("List-Unsubscribe=One-Click"))
			if res.StatusCode != 200 || res.Header.Get("Location") != "" {
				t.Fatalf("one-click POST: %d %v", res.StatusCode, res.Header)
			}
			if status(ann) != tidings.SubUnsubscribed {
				t.Fatal("one-click POST did not unsubscribe")
			}
			if held, reason, _ := w.store.Suppressed(ctx, w.acc.ID, ann.Email); !held || reason != tidings.SuppressUnsubscribed {
				t.Fatal("no suppression entry")
			}
			entries, _ := w.store.LedgerEntries(ctx, w.acc.ID, 0, 100)
			if last := entries[len(entries)-1]; last.Kind != tidings.LedgerUnsubscribed || last.Source != tidings.SourceMail {
				t.Fatalf("ledger: %+v", last)
			}
			if res := post(annURL, "application/x-www-form-urlencoded", []byte("List-Unsubscribe=One-Click")); res.StatusCode != 200 {
				t.Fatalf("repeated one-click: %d", res.StatusCode)
			}

			bob, bobURL := mk("bob@example.com")
			var mp bytes.Buffer
			mw := multipart.NewWriter(&mp)
			mw.WriteField("List-Unsubscribe", "One-Click")
			mw.Close()
			if res := post(bobURL, mw.FormDataContentType(), mp.Bytes()); res.StatusCode != 200 || status(bob) != tidings.SubUnsubscribed {
				t.Fatalf("multipart one-click: %d", res.StatusCode)
			}

			cy, cyURL := mk("cy@example.com")
			if res := post(cyURL, "application/x-www-form-urlencoded", []byte("something=else")); res.StatusCode != 400 || status(cy) != tidings.SubConfirmed {
				t.Fatalf("POST without List-Unsubscribe=One-Click: %d", res.StatusCode)
			}
			forged := cyURL[:len(cyURL)-2] + "xx"
			if res := post(forged, "application/x-www-form-urlencoded", []byte("List-Unsubscribe=One-Click")); res.StatusCode != 404 || status(cy) != tidings.SubConfirmed {
				t.Fatalf("forged token: %d", res.StatusCode)
			}
			if code, _ := w.get(forged); code != 404 {
				t.Fatalf("GET forged: %d", code)
			}
		})
	}
}
