package public_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tidings/tidings/internal/send"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
	"github.com/tidings/tidings/internal/web/clientip"
	"github.com/tidings/tidings/internal/web/public"
	"github.com/tidings/tidings/internal/web/ratelimit"
)

// TestConfirmPageFollowsTheRequest: the confirm page asks about tracking when the stored
// request asks for it, whatever the link's query says (a link whose query was stripped
// still shows both choices), never when it does not; a link that cannot confirm gets
// the POST's "Link not valid" (404) instead of a button that can only fail, and no GET
// uses up the request.
func TestConfirmPageFollowsTheRequest(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			w := newWorld(t, testdb.Open(t, engine), true)
			ctx := context.Background()
			text, err := w.consent.CurrentText(ctx, w.acc)
			if err != nil {
				t.Fatal(err)
			}
			// signUp returns the request's confirm and decline links, without query.
			signUp := func(email string, tracking bool) map[string]string {
				t.Helper()
				form := url.Values{"email": {email}, "consent_version": {fmt.Sprint(text.Version)}}
				if tracking {
					form.Set("tracking_consent", "yes")
				}
				if code, page := w.post("/s/"+w.consent.ListToken(w.acc.ID, w.list.ID), form); code != 200 {
					t.Fatalf("subscribe: %d %s", code, page)
				}
				msgs := w.sink.Find(email)
				if len(msgs) != 1 {
					t.Fatalf("%d mails to %s", len(msgs), email)
				}
				return links(textOf(t, msgs[0].Data))
			}
			const choice = `name="tracking" value="no"`

			asked := signUp("asked@example.com", true)["confirm"]
			for _, query := range []string{"", "?tracking=asked", "?tracking=yes", "?other=1"} {
				code, page := w.get(asked + query)
				if code != 200 || !strings.Contains(page, choice) || !strings.Contains(page, "I agree to tracking") {
					t.Fatalf("confirm page of a request asking for tracking, link %q: %d, both choices not shown:\n%s", query, code, page)
				}
			}
			// The mail's link to confirm without tracking preselects that choice.
			if code, page := w.get(asked + "?tracking=no"); code != 200 || !strings.Contains(page, "without tracking") ||
				!strings.Contains(page, `action="`+asked+`?tracking=no"`) {
				t.Fatalf("confirm page without tracking: %d\n%s", code, page)
			}

			plain := signUp("plain@example.com", false)
			for _, query := range []string{"", "?tracking=asked", "?tracking=no"} {
				code, page := w.get(plain["confirm"] + query)
				if code != 200 || !strings.Contains(page, "<button") || strings.Contains(strings.ToLower(page), "tracking") {
					t.Fatalf("confirm page of a request without tracking, link %q: %d, want a button and no word of tracking:\n%s", query, code, page)
				}
			}

			// Links that cannot confirm: altered (the signature fails), signed but
			// unknown, and declined (the request is gone).
			altered := asked[:len(asked)-3] + "abc"
			unknown := "/confirm/" + w.consent.Keys.Sign("confirm", []byte("no such request"))
			if code, _ := w.post(plain["decline"], nil); code != 200 {
				t.Fatalf("decline: %d", code)
			}
			for _, link := range []string{altered, unknown, plain["confirm"], plain["confirm"] + "?tracking=asked"} {
				if code, page := w.get(link); code != http.StatusNotFound || !strings.Contains(page, "Link not valid") || strings.Contains(page, "<button") {
					t.Fatalf("confirm page of %s: %d, want the 404 \"Link not valid\" without a button:\n%s", link, code, page)
				}
			}

			// None of these GETs used up the request: it is still unconfirmed, and the
			// person's POST confirms it, once; its page is then "Link not valid" too.
			subs, _ := w.store.ListSubscribers(ctx, w.acc.ID, tidings.SubscriberFilter{Email: tidings.MustParseAddress("asked@example.com")})
			if len(subs) != 1 {
				t.Fatalf("%d subscribers for the request", len(subs))
			}
			if st, _ := w.store.Subscriptions(ctx, w.acc.ID, subs[0].ID); len(st) != 1 || st[0].Status != tidings.SubUnconfirmed {
				t.Fatalf("after the GETs: %+v, want unconfirmed", st)
			}
			if code, page := w.post(asked, nil); code != 200 || !strings.Contains(page, "confirmed") {
				t.Fatalf("confirm after the GETs: %d %s", code, page)
			}
			if sub, _ := w.store.GetSubscriber(ctx, w.acc.ID, subs[0].ID); !sub.TrackingConsent {
				t.Fatal("confirming with the tracking button gave no tracking consent")
			}
			if code, _ := w.get(asked); code != http.StatusNotFound {
				t.Fatalf("confirm page of a used link: %d, want 404", code)
			}
		})
	}
}

// limitedServer serves the public routes behind a trusted proxy (loopback), so that
// X-Forwarded-For names the client, with the link limits given.
func limitedServer(t *testing.T, w *world, links, oneClick *ratelimit.Limiter) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	public.Routes(mux, public.Deps{Store: w.store, Consent: w.consent,
		ClientIP:  clientip.Resolver{Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}},
		LinkLimit: links, OneClickLimit: oneClick})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// from sends a request as the client at ip; a POST carries a one-click unsubscribe form.
func from(t *testing.T, srv *httptest.Server, ip, method, path string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader("List-Unsubscribe=One-Click"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-For", ip)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	res.Body = io.NopCloser(strings.NewReader(string(b)))
	return res
}

// TestLinkEndpointsLimitedPerClient: every endpoint that acts on a link's token (confirm,
// decline, receipt, unsubscribe) answers 429, with a page and Retry-After, once a client
// has used up its bucket; another client is not affected.
func TestLinkEndpointsLimitedPerClient(t *testing.T) {
	w := newWorld(t, testdb.Open(t, "sqlite"), true)
	srv := limitedServer(t, w, ratelimit.New(time.Hour, 2), ratelimit.New(time.Hour, 2))
	confirm := w.consent.Keys.Sign("confirm", []byte("no such request"))
	unsubscribe := send.RecipientToken(w.consent.Keys, w.acc.ID, 1, 1)
	for i, e := range []struct{ method, path string }{
		{"GET", "/confirm/" + confirm}, {"POST", "/confirm/" + confirm},
		{"GET", "/decline/" + confirm}, {"POST", "/decline/" + confirm},
		{"GET", "/receipt/" + confirm},
		{"GET", "/u/" + unsubscribe}, {"POST", "/u/" + unsubscribe},
	} {
		// A client of its own for each endpoint: the link endpoints share one bucket.
		client, other := fmt.Sprintf("198.51.100.%d", i+1), fmt.Sprintf("203.0.113.%d", i+1)
		for n := range 2 {
			if res := from(t, srv, client, e.method, e.path); res.StatusCode == http.StatusTooManyRequests {
				t.Fatalf("%s %s: request %d refused, want 2 allowed", e.method, e.path, n+1)
			}
		}
		res := from(t, srv, client, e.method, e.path)
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "Too many requests") {
			t.Fatalf("%s %s, third request: %d, Retry-After %q, want 429 with a page that says when to come back:\n%s",
				e.method, e.path, res.StatusCode, res.Header.Get("Retry-After"), body)
		}
		if res := from(t, srv, other, e.method, e.path); res.StatusCode == http.StatusTooManyRequests {
			t.Fatalf("%s %s: another client refused too", e.method, e.path)
		}
	}
}

// TestOneClickUnsubscribesFromOneProvider: a mail provider posts the one-click
// unsubscribes (RFC 8058) of many of its users from one address; under the default
// limits every one of them is answered and done, well past the burst the link pages
// allow one client, while those pages are refused to it.
func TestOneClickUnsubscribesFromOneProvider(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			w := newWorld(t, testdb.Open(t, engine), true)
			ctx := context.Background()
			srv := limitedServer(t, w, nil, nil) // the defaults
			camp := tidings.Campaign{Name: "c", Subject: "s", FromAddress: "news@books.example", HTML: "<p>x</p>", Lists: []int64{w.list.ID}}
			if err := w.store.CreateCampaign(ctx, w.acc.ID, &camp); err != nil {
				t.Fatal(err)
			}
			const provider = "192.0.2.25"
			var last tidings.Subscriber
			for i := range 100 {
				s := tidings.Subscriber{Email: tidings.MustParseAddress(fmt.Sprintf("user%d@mail.example", i))}
				if err := w.store.CreateSubscriber(ctx, w.acc.ID, &s, []int64{w.list.ID}, tidings.SubConfirmed, nil); err != nil {
					t.Fatal(err)
				}
				res := from(t, srv, provider, "POST", "/u/"+send.RecipientToken(w.consent.Keys, w.acc.ID, camp.ID, s.ID))
				if res.StatusCode != 200 {
					t.Fatalf("one-click unsubscribe %d from the provider's address: %d", i+1, res.StatusCode)
				}
				last = s
			}
			if st, _ := w.store.Subscriptions(ctx, w.acc.ID, last.ID); len(st) != 1 || st[0].Status != tidings.SubUnsubscribed {
				t.Fatalf("the last one-click post: %+v, want unsubscribed", st)
			}
			// The link pages allow one client a burst of 60 (then one a second).
			page := "/u/" + send.RecipientToken(w.consent.Keys, w.acc.ID, camp.ID, last.ID)
			for i := range 100 {
				if res := from(t, srv, provider, "GET", page); res.StatusCode == http.StatusTooManyRequests {
					if i < 60 {
						t.Fatalf("unsubscribe page view %d refused, want the default burst of 60 first", i+1)
					}
					return
				}
			}
			t.Fatal("100 unsubscribe page views from one client, none refused")
		})
	}
}
