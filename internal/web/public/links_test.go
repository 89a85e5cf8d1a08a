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

	"github.com/tidings/tidings/internal/keys"
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
			const choice = `name="tracking" value="no"`

			asked := w.signUp("asked@example.com", true)["confirm"]
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

			plain := w.signUp("plain@example.com", false)
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

// signUp signs email up on the world's list with the hosted form and returns the
// request's confirm and decline links from its mail, without query.
func (w *world) signUp(email string, tracking bool) map[string]string {
	w.t.Helper()
	return links(w.signUpMail(email, tracking))
}

// signUpMail signs email up on the world's list with the hosted form, asking for
// tracking consent if tracking, and returns the text of the one mail it sent.
func (w *world) signUpMail(email string, tracking bool) string {
	w.t.Helper()
	text, err := w.consent.CurrentText(context.Background(), w.acc)
	if err != nil {
		w.t.Fatal(err)
	}
	form := url.Values{"email": {email}, "consent_version": {fmt.Sprint(text.Version)}}
	if tracking {
		form.Set("tracking_consent", "yes")
	}
	if code, page := w.post("/s/"+w.consent.ListToken(w.acc.ID, w.list.ID), form); code != 200 {
		w.t.Fatalf("subscribe: %d %s", code, page)
	}
	msgs := w.sink.Find(email)
	if len(msgs) != 1 {
		w.t.Fatalf("%d mails to %s", len(msgs), email)
	}
	return textOf(w.t, msgs[0].Data)
}

// subscribers counts the world's account's subscribers with the address email.
func (w *world) subscribers(email string) int {
	w.t.Helper()
	subs, err := w.store.ListSubscribers(context.Background(), w.acc.ID, tidings.SubscriberFilter{Email: tidings.MustParseAddress(email)})
	if err != nil {
		w.t.Fatal(err)
	}
	return len(subs)
}

// TestDeclinePageChecksTheLink: the decline page reads the request as the confirm page
// does: a forged, altered, used or expired link gets the POST's 404 "Link not valid"
// instead of a button that can only fail. An expired request is refused by the POST
// too, as its confirmation is, and left for the sweep. A valid link's page shows the
// button, changes nothing, and the POST then declines.
func TestDeclinePageChecksTheLink(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			w := newWorld(t, testdb.Open(t, engine), true)
			valid := w.signUp("valid@example.com", false)
			used := w.signUp("used@example.com", false)
			if code, page := w.post(used["confirm"], nil); code != 200 {
				t.Fatalf("confirm: %d %s", code, page)
			}
			// Asked for 8 days ago: its link expired a day ago (links work for 7), and
			// the sweep has not run since.
			w.consent.Now = func() time.Time { return time.Now().AddDate(0, 0, -8) }
			expired := w.signUp("expired@example.com", false)
			w.consent.Now = nil

			altered := valid["decline"][:len(valid["decline"])-3] + "abc"
			unknown := "/decline/" + w.consent.Keys.Sign("confirm", []byte("no such request"))
			for name, link := range map[string]string{"altered": altered, "unknown": unknown, "used": used["decline"], "expired": expired["decline"]} {
				if code, page := w.get(link); code != http.StatusNotFound || !strings.Contains(page, "Link not valid") || strings.Contains(page, "<button") {
					t.Fatalf("decline page of the %s link: %d, want the 404 \"Link not valid\" without a button:\n%s", name, code, page)
				}
			}
			if code, page := w.post(expired["decline"], nil); code != http.StatusNotFound || !strings.Contains(page, "Link not valid") {
				t.Fatalf("decline of an expired request: %d, want 404 as for its confirmation:\n%s", code, page)
			}
			if n := w.subscribers("expired@example.com"); n != 1 {
				t.Fatalf("the expired request's subscriber: %d, want it left for the sweep", n)
			}

			for range 2 {
				if code, page := w.get(valid["decline"]); code != 200 || !strings.Contains(page, `action="`+valid["decline"]+`"`) || !strings.Contains(page, "<button") {
					t.Fatalf("decline page of a valid link: %d, want its button:\n%s", code, page)
				}
			}
			if code, page := w.post(valid["decline"], nil); code != 200 || !strings.Contains(page, "Request deleted") {
				t.Fatalf("decline after the GETs: %d %s", code, page)
			}
			if n := w.subscribers("valid@example.com"); n != 0 {
				t.Fatalf("a declined request left %d subscribers", n)
			}
			if code, _ := w.get(valid["decline"]); code != http.StatusNotFound {
				t.Fatalf("decline page of a used link: %d, want 404", code)
			}
		})
	}
}

// TestConfirmPageListsGone: when every list a request asked for was deleted since, the
// confirm page says so, with the POST's 410, instead of a button that confirms nothing;
// the GET leaves the request (the decline page still offers to delete it, and the POST
// finds it).
func TestConfirmPageListsGone(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			w := newWorld(t, testdb.Open(t, engine), true)
			ctx := context.Background()
			l := w.signUp("gone@example.com", true)
			if err := w.store.DeleteList(ctx, w.acc.ID, w.list.ID); err != nil {
				t.Fatal(err)
			}
			for _, query := range []string{"", "?tracking=no", ""} {
				if code, page := w.get(l["confirm"] + query); code != http.StatusGone || !strings.Contains(page, "no longer exist") || strings.Contains(page, "<button") {
					t.Fatalf("confirm page%s, its list deleted: %d, want the 410 \"Lists no longer exist\" without a button:\n%s", query, code, page)
				}
			}
			token := strings.TrimPrefix(l["confirm"], "/confirm/")
			if _, err := w.store.PendingRequest(ctx, keys.HashSecretToken(token)); err != nil {
				t.Fatalf("the request after the GETs: %v, want it still there", err)
			}
			if code, page := w.get(l["decline"]); code != 200 || !strings.Contains(page, "<button") {
				t.Fatalf("decline page, the request's lists deleted: %d, want its button:\n%s", code, page)
			}
			if code, page := w.post(l["confirm"], nil); code != http.StatusGone || !strings.Contains(page, "no longer exist") {
				t.Fatalf("confirm after the GETs: %d, want 410:\n%s", code, page)
			}
			if code, _ := w.get(l["confirm"]); code != http.StatusNotFound {
				t.Fatalf("confirm page of the used-up request: %d, want 404", code)
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
