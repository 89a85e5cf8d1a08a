package public_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/tidings/tidings/internal/mail"
	"github.com/tidings/tidings/internal/mail/mailtest"
	"github.com/tidings/tidings/internal/send"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
	"github.com/tidings/tidings/internal/track"
	"github.com/tidings/tidings/internal/web"
)

var (
	clickRE = regexp.MustCompile(`/c/[A-Za-z0-9_-]+`)
	openRE  = regexp.MustCompile(`/o/[A-Za-z0-9_-]+`)
)

// TestTrackingByConsent sends one campaign to a consenting and a non-consenting
// subscriber and follows their links: personal events for the first (anonymous with DNT
// or GPC), anonymous counts for the second, nothing for forged links, and stats that add up.
func TestTrackingByConsent(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			w := newWorld(t, testdb.Open(t, engine), false)
			ctx := context.Background()
			w.acc.AnonymousCounts = true // TrackingEnabled is on in this world
			if err := w.store.UpdateAccount(ctx, &w.acc); err != nil {
				t.Fatal(err)
			}
			events := track.NewWriter(ctx, w.store)
			srv := httptest.NewServer(web.NewHandler(web.Deps{Store: w.store, Keys: testdb.Keyring(t), Consent: w.consent, Events: events}))
			defer srv.Close()
			yes := tidings.Subscriber{Email: tidings.MustParseAddress("yes@example.com"), TrackingConsent: true}
			no := tidings.Subscriber{Email: tidings.MustParseAddress("no@example.com")}
			grant := &tidings.TrackingGrant{Source: tidings.SourceAdmin, Evidence: tidings.Evidence{Note: "recorded by the test"}}
			for _, s := range []*tidings.Subscriber{&yes, &no} {
				if !s.TrackingConsent {
					grant = nil
				}
				if err := w.store.CreateSubscriber(ctx, w.acc.ID, s, []int64{w.list.ID}, tidings.SubConfirmed, grant); err != nil {
					t.Fatal(err)
				}
			}
			camp := tidings.Campaign{Name: "c", Subject: "s", FromAddress: "news@books.example", Lists: []int64{w.list.ID},
				HTML: `<html><body><a href="https://books.example/new?a=1&amp;b=2">new</a> <a href="mailto:x@books.example">mail</a></body></html>`}
			if err := w.store.CreateCampaign(ctx, w.acc.ID, &camp); err != nil {
				t.Fatal(err)
			}
			sink := mailtest.New(t)
			pool, _ := mail.NewSMTPPool(mail.SMTPConfig{Host: "127.0.0.1", Port: sink.Port(), TLS: "none", PoolSize: 2})
			defer pool.Close()
			eng := &send.Engine{Store: w.store, Keys: testdb.Keyring(t), Sender: pool, BaseURL: srv.URL}
			w.store.SetCampaignStatus(ctx, w.acc.ID, camp.ID, tidings.CampaignSending, "")
			if err := eng.Send(ctx, w.acc.ID, camp.ID); err != nil {
				t.Fatal(err)
			}
			// The HTML part only: the DKIM signatures' base64 may hold "/c/" or "/o/" too.
			html := func(addr string) string {
				msg := unQP(string(sink.Find(addr)[0].Data))
				return msg[strings.Index(msg, "<html>"):]
			}
			yesHTML, noHTML := html("yes@example.com"), html("no@example.com")
			if !openRE.MatchString(yesHTML) || !clickRE.MatchString(yesHTML) {
				t.Fatal("the consenting subscriber's mail lacks the pixel or tracked links")
			}
			if openRE.MatchString(noHTML) || !clickRE.MatchString(noHTML) {
				t.Fatal("the non-consenting subscriber's mail must have anonymous links and no pixel")
			}
			if strings.Contains(yesHTML, `href="https://books.example/new`) || !strings.Contains(yesHTML, "mailto:x@books.example") {
				t.Fatal("links were not rewritten as expected")
			}
			client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			hit := func(path string, headers ...string) *http.Response {
				req, _ := http.NewRequest("GET", srv.URL+path, nil)
				for i := 0; i+1 < len(headers); i += 2 {
					req.Header.Set(headers[i], headers[i+1])
				}
				res, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				return res
			}
			yesClick := clickRE.FindString(yesHTML)
			res := hit(yesClick) // right after delivery, no open yet: looks like a scanner
			if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "https://books.example/new?a=1&b=2" {
				t.Fatalf("click: %d %q", res.StatusCode, res.Header.Get("Location"))
			}
			// The redirect must not pass the tracking URL on as a referrer, nor be cached.
			if res.Header.Get("Referrer-Policy") != "no-referrer" || res.Header.Get("Cache-Control") != "no-store" ||
				res.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Fatalf("click headers: %v", res.Header)
			}
			if res := hit(openRE.FindString(yesHTML)); res.StatusCode != 200 || res.Header.Get("Content-Type") != "image/gif" ||
				res.Header.Get("Cache-Control") != "no-store, private" || res.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Fatalf("pixel: %d %v", res.StatusCode, res.Header)
			}
			hit(yesClick)                   // personal, not unique, not automated
			hit(yesClick, "DNT", "1")       // anonymous
			hit(yesClick, "Sec-GPC", "1")   // anonymous
			hit(clickRE.FindString(noHTML)) // anonymous by consent
			for _, bad := range []string{yesClick[:len(yesClick)-2] + "AA", "/c/forged", "/c/" + track.ClickToken(testdb.Keyring(t), track.Link{URL: "javascript:alert(1)"})} {
				if res := hit(bad); res.StatusCode != 404 || res.Header.Get("Location") != "" {
					t.Fatalf("%s: %d %q — a link we did not sign must not redirect", bad, res.StatusCode, res.Header.Get("Location"))
				}
			}
			st, err := w.store.CampaignStats(ctx, w.acc.ID, camp.ID)
			if err != nil {
				t.Fatal(err)
			}
			want := tidings.CampaignStats{Total: 2, Delivered: 2, Opens: 1, UniqueOpens: 1, Clicks: 2, UniqueClicks: 1, AnonClicks: 3, Automated: 1}
			st.TopLinks = nil
			if fmt.Sprint(st) != fmt.Sprint(want) {
				t.Fatalf("stats\n got %+v\nwant %+v", st, want)
			}
			// Non-ASCII bytes in a target are escaped in the Location header.
			res = hit("/c/" + track.ClickToken(testdb.Keyring(t), track.Link{AccountID: w.acc.ID, CampaignID: camp.ID, URL: "https://books.example/café"}))
			if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "https://books.example/caf%c3%a9" {
				t.Fatalf("click to a non-ASCII target: %d %q", res.StatusCode, res.Header.Get("Location"))
			}
			if res := hit("/.well-known/gpc.json"); res.StatusCode != 200 {
				t.Fatal("no gpc.json")
			}
		})
	}
}

// unQP undoes quoted-printable soft breaks and =3D, enough to find links.
func unQP(s string) string {
	return strings.NewReplacer("=\r\n", "", "=3D", "=").Replace(s)
}
