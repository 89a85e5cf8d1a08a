package portal_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tidings/tidings/internal/keys"
	"github.com/tidings/tidings/internal/mail"
	"github.com/tidings/tidings/internal/mail/mailtest"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
	"github.com/tidings/tidings/internal/web"
)

var linkRE = regexp.MustCompile(`/portal/signin/[A-Za-z0-9_-]+`)

// TestPortalAcrossAccounts: a person signs in once, sees both account holders, exports
// exactly their own data as JSON and CSV, erases one account's data and keeps the other.
func TestPortalAcrossAccounts(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			store := testdb.Open(t, engine)
			ctx := context.Background()
			const person, bystander = "pat@example.com", "bystander@example.com"
			var accounts []tidings.Account
			for _, name := range []string{"Chess Club", "Book Shop"} {
				a := tidings.Account{PostalAddress: "1 Example Street, Exampletown", Name: name, ContactEmail: "dpo@" + strings.ReplaceAll(strings.ToLower(name), " ", "") + ".example"}
				store.CreateAccount(ctx, &a)
				l := tidings.NewList(name + " news")
				store.CreateList(ctx, a.ID, &l)
				for _, who := range []string{person, bystander} {
					_, err := store.RequestSubscription(ctx, a.ID, tidings.SubscriptionRequest{Email: tidings.MustParseAddress(who), Name: "Pat",
						Lists: []int64{l.ID}, Source: tidings.SourceForm, Kind: tidings.LedgerSingleOptIn, Evidence: tidings.Evidence{IP: "192.0.2.44"}})
					if err != nil {
						t.Fatal(err)
					}
				}
				accounts = append(accounts, a)
			}
			sink := mailtest.New(t)
			pool, _ := mail.NewSMTPPool(mail.SMTPConfig{Host: "127.0.0.1", Port: sink.Port(), TLS: "none", PoolSize: 1})
			defer pool.Close()
			var h http.Handler
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
			defer srv.Close()
			h = web.NewHandler(web.Deps{Store: store, Keys: testdb.Keyring(t), Sender: pool, MailFrom: "no-reply@tidings.example", BaseURL: srv.URL})

			jar, _ := cookiejar.New(nil)
			client := &http.Client{Jar: jar}
			do := func(method, path string, form url.Values) (int, string, *http.Response) {
				var body io.Reader
				if form != nil {
					body = strings.NewReader(form.Encode())
				}
				req, _ := http.NewRequest(method, srv.URL+path, body)
				if form != nil {
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				}
				res, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				b, _ := io.ReadAll(res.Body)
				return res.StatusCode, string(b), res
			}

			// Known and unknown addresses get the same answer.
			_, known, _ := do("POST", "/portal", url.Values{"email": {"PAT@example.com"}})
			_, unknown, _ := do("POST", "/portal", url.Values{"email": {"nobody@example.com"}})
			if known != unknown || !strings.Contains(known, "Check your inbox") {
				t.Fatalf("the answer reveals whether an address is known:\n%s\n---\n%s", known, unknown)
			}
			msgs := sink.Find(person)
			if len(msgs) != 1 {
				t.Fatalf("%d sign-in mails", len(msgs))
			}
			link := linkRE.FindString(strings.ReplaceAll(string(msgs[0].Data), "=\r\n", ""))
			if code, page, _ := do("GET", link, nil); code != 200 || !strings.Contains(page, "<button") {
				t.Fatalf("GET sign-in link: %d", code)
			}
			code, page, res := do("POST", link, url.Values{})
			if code != 200 || !strings.Contains(page, "Chess Club") || !strings.Contains(page, "Book Shop") || strings.Contains(page, bystander) {
				t.Fatalf("overview: %d\n%s", code, page)
			}
			var cookie *http.Cookie
			for _, c := range jar.Cookies(res.Request.URL) {
				if c.Name == "tidings_portal" {
					cookie = c
				}
			}
			if cookie == nil {
				t.Fatal("no session cookie")
			}
			// The link works once.
			if code, page, _ := do("POST", link, url.Values{}); code != 404 || !strings.Contains(page, "not valid") {
				t.Fatalf("reused link: %d", code)
			}
			if code, _, _ := do("POST", "/portal/signin/p_forged", url.Values{}); code != 404 {
				t.Fatalf("forged link: %d", code)
			}
			expired, hash := keys.NewSecretToken("p_")
			store.CreatePortalToken(ctx, hash, tidings.MustParseAddress(person), false, time.Now().Add(-time.Minute))
			if code, _, _ := do("POST", "/portal/signin/"+expired, url.Values{}); code != 404 {
				t.Fatalf("expired link: %d", code)
			}

			// The session cookie: first-party, HttpOnly, SameSite=Lax, ending with the browser.
			do("POST", "/portal", url.Values{"email": {person}})
			second := linkRE.FindString(strings.ReplaceAll(string(sink.Find(person)[1].Data), "=\r\n", ""))
			raw, _ := http.NewRequest("POST", srv.URL+second, strings.NewReader(""))
			raw.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := noRedirect.Do(raw)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			sc := resp.Header.Get("Set-Cookie")
			if resp.StatusCode != http.StatusSeeOther || !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "SameSite=Lax") ||
				strings.Contains(sc, "Expires") || strings.Contains(sc, "Max-Age") || !strings.Contains(sc, "Path=/portal") {
				t.Fatalf("session cookie: %d %q", resp.StatusCode, sc)
			}

			_, js, _ := do("GET", "/portal/export.json", nil)
			var export struct {
				Email    string
				Accounts []tidings.PersonRecord
			}
			if err := json.Unmarshal([]byte(js), &export); err != nil || export.Email != person || len(export.Accounts) != 2 ||
				strings.Contains(js, bystander) || export.Accounts[0].Consent[0].Evidence.IP != "192.0.2.44" {
				t.Fatalf("JSON export: %v\n%s", err, js)
			}
			_, csv, _ := do("GET", "/portal/export.csv", nil)
			if !strings.Contains(csv, "Chess Club,subscriber,email,pat@example.com") || strings.Contains(csv, bystander) {
				t.Fatalf("CSV export:\n%s", csv)
			}

			// Rectification: the name, and only the attributes the account allows.
			accounts[1].EditableAttributes = []string{"city"}
			store.UpdateAccount(ctx, &accounts[1])
			if code, _, _ := do("POST", "/portal/account/"+itoa(accounts[1].ID)+"/rectify",
				url.Values{"name": {"Patricia"}, "attr_city": {"Leeds"}, "attr_vip": {"yes"}}); code != 200 {
				t.Fatalf("rectify: %d", code)
			}
			if recs, _ := store.PersonData(ctx, tidings.MustParseAddress(person)); recs[1].Subscriber.Name != "Patricia" ||
				recs[1].Subscriber.Attributes["city"] != "Leeds" || recs[1].Subscriber.Attributes["vip"] != nil || recs[0].Subscriber.Name != "Pat" {
				t.Fatalf("after rectifying: %+v / %+v", recs[0].Subscriber, recs[1].Subscriber)
			}

			// Rights at one account at a time: restriction, objection, tracking consent.
			for _, act := range []string{"restrict", "tracking-on"} {
				if code, _, _ := do("POST", "/portal/account/"+itoa(accounts[1].ID)+"/"+act, url.Values{}); code != 200 {
					t.Fatalf("%s: %d", act, code)
				}
			}
			do("POST", "/portal/account/"+itoa(accounts[0].ID)+"/object", url.Values{})
			recs, _ := store.PersonData(ctx, tidings.MustParseAddress(person))
			if recs[0].Subscriber.Status != tidings.StatusObjected || recs[1].Subscriber.Status != tidings.StatusRestricted || !recs[1].Subscriber.TrackingConsent {
				t.Fatalf("after the actions: %+v / %+v", recs[0].Subscriber, recs[1].Subscriber)
			}
			var notes []string // the tracking change says who made it: the person
			for _, c := range recs[1].Consent {
				if c.Kind == tidings.LedgerTrackingChange {
					notes = append(notes, c.Evidence.Note)
				}
			}
			if len(notes) != 1 || notes[0] != "tracking consent given; by the person" {
				t.Fatalf("tracking changes in the ledger: %q", notes)
			}
			if held, reason, _ := store.Suppressed(ctx, accounts[0].ID, tidings.MustParseAddress(person)); !held || reason != tidings.SuppressObjection {
				t.Fatal("an objection must suppress the address")
			}
			if code, _, _ := do("POST", "/portal/account/999999/restrict", url.Values{}); code != 404 {
				t.Fatalf("acting on an account that holds nothing: %d", code)
			}
			logB, _ := store.ListDSARs(ctx, accounts[1].ID, tidings.Page{})
			kinds := map[tidings.DSARKind]bool{}
			for _, d := range logB {
				kinds[d.Kind] = d.CompletedAt != nil && d.DueAt.After(d.ReceivedAt)
			}
			if !kinds[tidings.DSARRestriction] || !kinds[tidings.DSARTracking] || !kinds[tidings.DSARPortability] || !kinds[tidings.DSARRectification] {
				t.Fatalf("DSAR log of Book Shop: %+v", logB)
			}
			if code, info, _ := do("GET", "/portal/info/"+itoa(accounts[1].ID), nil); code != 200 || !strings.Contains(info, "lawful basis: consent") {
				t.Fatalf("information page: %d", code)
			}

			code, page, _ = do("POST", "/portal/erase", url.Values{"account": {itoa(accounts[0].ID)}})
			if code != 200 || strings.Contains(page, "Chess Club") || !strings.Contains(page, "Book Shop") {
				t.Fatalf("after erasing at Chess Club: %d\n%s", code, page)
			}
			if recs, _ := store.PersonData(ctx, tidings.MustParseAddress(bystander)); len(recs) != 2 {
				t.Fatal("the bystander lost data")
			}
			code, page, _ = do("POST", "/portal/erase", url.Values{"account": {"all"}})
			if code != 200 || !strings.Contains(page, "erased") {
				t.Fatalf("erase everywhere: %d", code)
			}
			if code, _, _ := do("GET", "/portal/me", nil); code != 401 {
				t.Fatalf("the session outlived the erasure: %d", code)
			}
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestPortalExportPending: a double opt-in request not yet confirmed, and the changes it
// would make, are shown and exported (JSON and CSV) with the rest of the person's data.
func TestPortalExportPending(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			store := testdb.Open(t, engine)
			ctx := context.Background()
			person := tidings.MustParseAddress("pending@example.com")
			a := tidings.Account{PostalAddress: "1 Example Street, Exampletown", Name: "Chess Club", ContactEmail: "dpo@chessclub.example"}
			store.CreateAccount(ctx, &a)
			l1, l2 := tidings.NewList("News"), tidings.NewList("Events")
			store.CreateList(ctx, a.ID, &l1)
			store.CreateList(ctx, a.ID, &l2)
			if _, err := store.RequestSubscription(ctx, a.ID, tidings.SubscriptionRequest{Email: person, Name: "Pat", Lists: []int64{l1.ID},
				Source: tidings.SourceForm, Kind: tidings.LedgerSingleOptIn}); err != nil {
				t.Fatal(err)
			}
			_, hash := keys.NewSecretToken("c_")
			if _, err := store.RequestSubscription(ctx, a.ID, tidings.SubscriptionRequest{Email: person, Name: "Patricia Requested",
				Attributes: tidings.Attributes{"city": "Leeds"}, TrackingConsent: true, Lists: []int64{l2.ID}, Source: tidings.SourceForm,
				Kind: tidings.LedgerRequested, TokenHash: hash, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}

			sink := mailtest.New(t) // the portal runs only with a sender
			pool, _ := mail.NewSMTPPool(mail.SMTPConfig{Host: "127.0.0.1", Port: sink.Port(), TLS: "none", PoolSize: 1})
			defer pool.Close()
			srv := httptest.NewServer(web.NewHandler(web.Deps{Store: store, Keys: testdb.Keyring(t), Sender: pool, MailFrom: "no-reply@tidings.example"}))
			defer srv.Close()
			session, shash := keys.NewSecretToken("s_")
			if err := store.CreatePortalToken(ctx, shash, person, true, time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			get := func(path string) string {
				req, _ := http.NewRequest("GET", srv.URL+path, nil)
				req.AddCookie(&http.Cookie{Name: "tidings_portal", Value: session})
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				b, _ := io.ReadAll(res.Body)
				if res.StatusCode != 200 {
					t.Fatalf("GET %s: %d", path, res.StatusCode)
				}
				return string(b)
			}

			var export struct{ Accounts []tidings.PersonRecord }
			js := get("/portal/export.json")
			if err := json.Unmarshal([]byte(js), &export); err != nil || len(export.Accounts) != 1 {
				t.Fatalf("JSON export: %v\n%s", err, js)
			}
			p := export.Accounts[0].Pending
			if len(p) != 1 || len(p[0].Lists) != 1 || p[0].Lists[0] != l2.ID || p[0].CreatedAt.IsZero() || p[0].ExpiresAt.IsZero() ||
				p[0].Changes == nil || p[0].Changes.Name != "Patricia Requested" || p[0].Changes.Attributes["city"] != "Leeds" || !p[0].Changes.TrackingConsent {
				t.Fatalf("JSON export's pending requests: %+v\n%s", p, js)
			}
			csv := get("/portal/export.csv")
			for _, want := range []string{"Chess Club,pending,request 1,list " + itoa(l2.ID) + "; awaiting confirmation until ",
				"Chess Club,pending,request 1 name,Patricia Requested,", "Chess Club,pending,request 1 tracking_consent,true,",
				"Chess Club,pending,request 1 attribute city,Leeds,"} {
				if !strings.Contains(csv, want) {
					t.Fatalf("CSV export lacks %q:\n%s", want, csv)
				}
			}
			if page := get("/portal/me"); !strings.Contains(page, "Patricia Requested") || !strings.Contains(page, "Events") {
				t.Fatalf("the overview does not show the pending request:\n%s", page)
			}
		})
	}
}
