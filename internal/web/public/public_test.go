package public_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/tidings/tidings/internal/consent"
	"github.com/tidings/tidings/internal/mail"
	"github.com/tidings/tidings/internal/mail/mailtest"
	"github.com/tidings/tidings/internal/postman"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
	"github.com/tidings/tidings/internal/web"
)

type world struct {
	t       *testing.T
	store   tidings.Store
	srv     *httptest.Server
	sink    *mailtest.Sink
	consent *consent.Service
	acc     tidings.Account
	list    tidings.List
	dns     map[string]string
	client  *http.Client
}

func newWorld(t *testing.T, store tidings.Store, doubleOptIn bool) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{t: t, store: store, sink: mailtest.New(t), dns: map[string]string{}}
	pool, err := mail.NewSMTPPool(mail.SMTPConfig{Host: "127.0.0.1", Port: w.sink.Port(), TLS: "none", PoolSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	w.acc = tidings.Account{Name: "Bücherei Müller", ContactEmail: "dpo@books.example", PostalAddress: "Hauptstr. 1, Berlin",
		PrivacyPolicyURL: "https://books.example/privacy", TrackingEnabled: true}
	if err := store.CreateAccount(ctx, &w.acc); err != nil {
		t.Fatal(err)
	}
	w.list = tidings.NewList("Neuerscheinungen")
	w.list.Purpose = "Monthly news about new books"
	w.list.DoubleOptIn = doubleOptIn
	if err := store.CreateList(ctx, w.acc.ID, &w.list); err != nil {
		t.Fatal(err)
	}
	w.dns = testdb.DKIMKeys(t, store, w.acc.ID, "books.example")
	w.consent = &consent.Service{Store: store, Keys: testdb.Keyring(t), Postman: postman.New(store, pool, "tidings.example")}
	w.srv = httptest.NewServer(web.NewHandler(web.Deps{Store: store, Keys: testdb.Keyring(t), Consent: w.consent}))
	w.consent.BaseURL = w.srv.URL
	t.Cleanup(w.srv.Close)
	w.client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return w
}

func (w *world) get(path string) (int, string) {
	w.t.Helper()
	res, err := w.client.Get(w.srv.URL + path)
	if err != nil {
		w.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func (w *world) post(path string, form url.Values, headers ...string) (int, string) {
	w.t.Helper()
	req, _ := http.NewRequest("POST", w.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := w.client.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// textOf returns the decoded text/plain part of a message.
func textOf(t *testing.T, raw []byte) string {
	t.Helper()
	text, _, err := mailtest.Parts(raw)
	if err != nil || text == "" {
		t.Fatalf("no text part: %v", err)
	}
	return text
}

func (w *world) verifyDKIM(raw []byte) {
	w.t.Helper()
	verifs, err := dkim.VerifyWithOptions(bytes.NewReader(raw), &dkim.VerifyOptions{LookupTXT: func(d string) ([]string, error) {
		if v, ok := w.dns[d]; ok {
			return []string{v}, nil
		}
		return nil, fmt.Errorf("no TXT %s", d)
	}})
	if err != nil || len(verifs) != 2 {
		w.t.Fatalf("DKIM: %d signatures, %v", len(verifs), err)
	}
	for _, v := range verifs {
		if v.Err != nil {
			w.t.Fatalf("DKIM signature of %s does not verify: %v", v.Domain, v.Err)
		}
	}
}

var linkRE = regexp.MustCompile(`https?://[^\s]+/(confirm|decline|receipt)/[A-Za-z0-9_-]+`)

func links(text string) map[string]string {
	out := map[string]string{}
	for _, m := range linkRE.FindAllStringSubmatch(text, -1) {
		out[m[1]] = m[0][strings.Index(m[0], "/"+m[1]+"/"):]
	}
	return out
}

// TestDoubleOptInEndToEnd: hosted form → confirmation mail at the SMTP sink → confirm →
// confirmed, ledger verifies, proof stored exactly as sent with a verifying DKIM
// signature, receipt signed; the link is single-use.
func TestDoubleOptInEndToEnd(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			w := newWorld(t, testdb.Open(t, engine), true)
			ctx := context.Background()
			form := "/s/" + w.consent.ListToken(w.acc.ID, w.list.ID)
			code, page := w.get(form)
			if code != 200 || !strings.Contains(page, "Neuerscheinungen") || !strings.Contains(page, "Bücherei Müller") ||
				!strings.Contains(page, `name="tracking_consent"`) || !strings.Contains(page, "https://books.example/privacy") {
				t.Fatalf("form page: %d\n%s", code, page)
			}
			version := regexp.MustCompile(`name="consent_version" value="(\d+)"`).FindStringSubmatch(page)[1]

			code, page = w.post(form, url.Values{"email": {"Zoe@Example.COM"}, "name": {"Zoë"}, "tracking_consent": {"yes"},
				"consent_version": {version}}, "User-Agent", "TestBrowser/1.0", "Referer", "https://books.example/join")
			if code != 200 || !strings.Contains(page, "Check your inbox") {
				t.Fatalf("subscribe: %d %s", code, page)
			}
			msgs := w.sink.Find("zoe@example.com")
			if len(msgs) != 1 {
				t.Fatalf("%d mails at the sink, want 1 confirmation", len(msgs))
			}
			w.verifyDKIM(msgs[0].Data)
			text := textOf(t, msgs[0].Data)
			l := links(text)
			if l["confirm"] == "" || l["decline"] == "" || !strings.Contains(text, "Hauptstr. 1, Berlin") {
				t.Fatalf("confirmation mail lacks links or the controller's identity:\n%s", text)
			}
			if !strings.Contains(text, "consent to tracking") {
				t.Fatalf("the mail does not say that the request asks for tracking consent:\n%s", text)
			}
			subs, _ := w.store.ListSubscribers(ctx, w.acc.ID, tidings.SubscriberFilter{Email: tidings.MustParseAddress("zoe@example.com")})
			if len(subs) != 1 {
				t.Fatal("subscriber not stored")
			}
			st, _ := w.store.Subscriptions(ctx, w.acc.ID, subs[0].ID)
			if st[0].Status != tidings.SubUnconfirmed {
				t.Fatalf("before confirming: %s", st[0].Status)
			}

			// GET shows a button and changes nothing (link scanners).
			if code, page := w.get(l["confirm"]); code != 200 || !strings.Contains(page, "<button") {
				t.Fatalf("confirm page: %d", code)
			}
			st, _ = w.store.Subscriptions(ctx, w.acc.ID, subs[0].ID)
			if st[0].Status != tidings.SubUnconfirmed {
				t.Fatal("a GET confirmed the subscription")
			}
			if code, page := w.post(l["confirm"], nil, "User-Agent", "TestBrowser/2.0"); code != 200 || !strings.Contains(page, "confirmed") {
				t.Fatalf("confirm: %d %s", code, page)
			}
			st, _ = w.store.Subscriptions(ctx, w.acc.ID, subs[0].ID)
			if st[0].Status != tidings.SubConfirmed || st[0].ConfirmedAt == nil {
				t.Fatalf("after confirming: %+v", st[0])
			}
			sub, _ := w.store.GetSubscriber(ctx, w.acc.ID, subs[0].ID)
			if !sub.TrackingConsent || sub.Name != "Zoë" {
				t.Fatalf("subscriber = %+v", sub)
			}

			// Replay: the link works once.
			if code, page := w.post(l["confirm"], nil); code != 404 || !strings.Contains(page, "not valid") {
				t.Fatalf("replayed confirm: %d", code)
			}
			// Forged or altered links fail the same way.
			forged := l["confirm"][:len(l["confirm"])-3] + "abc"
			if code, _ := w.post(forged, nil); code != 404 {
				t.Fatalf("forged confirm: %d", code)
			}

			// Ledger: requested + confirmed + the tracking consent given by confirming, chain
			// verifies, evidence is what was sent.
			rep, err := consent.VerifyLedger(ctx, w.store, w.acc.ID)
			if err != nil || !rep.OK || rep.Entries != 3 {
				t.Fatalf("ledger: %+v %v", rep, err)
			}
			entries, _ := w.store.LedgerEntries(ctx, w.acc.ID, 0, 10)
			if entries[0].Kind != tidings.LedgerRequested || entries[1].Kind != tidings.LedgerConfirmed || entries[0].TextVersion == 0 ||
				entries[2].Kind != tidings.LedgerTrackingChange {
				t.Fatalf("ledger entries: %+v", entries)
			}
			ev, err := w.store.OpenEvidence(ctx, entries[0])
			if err != nil || ev.UserAgent != "TestBrowser/1.0" || ev.Referrer != "https://books.example/join" || ev.IP != "127.0.0.1" {
				t.Fatalf("request evidence = %+v %v", ev, err)
			}
			ev, _ = w.store.OpenEvidence(ctx, entries[1])
			if ev.UserAgent != "TestBrowser/2.0" {
				t.Fatalf("confirmation evidence = %+v", ev)
			}

			// The proof is the confirmation mail exactly as sent, and it still verifies.
			proofs, err := w.store.Proofs(ctx, w.acc.ID, sub.ID)
			if err != nil || len(proofs) < 1 || !bytes.Equal(proofs[0].Data, msgs[0].Data) {
				t.Fatalf("proof differs from the mail as sent (%d proofs, %v)", len(proofs), err)
			}
			w.verifyDKIM(proofs[0].Data)

			// The welcome mail links a signed Kantara receipt.
			var welcome []byte
			for _, m := range w.sink.Find("zoe@example.com") {
				if strings.Contains(textOf(t, m.Data), "/receipt/") {
					welcome = m.Data
				}
			}
			if welcome == nil {
				t.Fatal("no welcome mail with a receipt link")
			}
			code, body := w.get(links(textOf(t, welcome))["receipt"])
			if code != 200 {
				t.Fatalf("receipt: %d %s", code, body)
			}
			var rc consent.SignedReceipt
			json.Unmarshal([]byte(body), &rc)
			if rc.Receipt.Version != "KI-CR-v1.1.0" || rc.Receipt.PIIPrincipalID != "zoe@example.com" ||
				rc.Receipt.PIIControllers[0].PIIController != "Bücherei Müller" || rc.Receipt.Services[0].Service != "Neuerscheinungen" {
				t.Fatalf("receipt = %+v", rc.Receipt)
			}
			pub := testdb.Keyring(t).ReceiptKey().Public().(ed25519.PublicKey)
			payload, err := consent.VerifyJWS(pub, rc.JWS)
			if err != nil || !strings.Contains(string(payload), "zoe@example.com") {
				t.Fatalf("receipt JWS: %v", err)
			}
		})
	}
}

func TestDeclineDeletesRequest(t *testing.T) {
	w := newWorld(t, testdb.Open(t, "sqlite"), true)
	ctx := context.Background()
	form := "/s/" + w.consent.ListToken(w.acc.ID, w.list.ID)
	text, _ := w.consent.CurrentText(ctx, w.acc)
	w.post(form, url.Values{"email": {"victim@example.com"}, "consent_version": {fmt.Sprint(text.Version)}})
	msgs := w.sink.Find("victim@example.com")
	if len(msgs) != 1 {
		t.Fatal("no confirmation mail")
	}
	l := links(textOf(t, msgs[0].Data))
	if code, _ := w.post(l["decline"], nil); code != 200 {
		t.Fatalf("decline: %d", code)
	}
	if subs, _ := w.store.ListSubscribers(ctx, w.acc.ID, tidings.SubscriberFilter{}); len(subs) != 0 {
		t.Fatalf("declined request left %d subscribers", len(subs))
	}
	if code, _ := w.post(l["confirm"], nil); code != 404 {
		t.Fatal("a declined request could still be confirmed")
	}
	if rep, _ := consent.VerifyLedger(ctx, w.store, w.acc.ID); !rep.OK || rep.Entries != 2 {
		t.Fatalf("ledger after decline: %+v", rep)
	}
}

func TestSingleOptInAndJSON(t *testing.T) {
	w := newWorld(t, testdb.Open(t, "sqlite"), false)
	ctx := context.Background()
	text, _ := w.consent.CurrentText(ctx, w.acc)
	path := "/s/" + w.consent.ListToken(w.acc.ID, w.list.ID)
	body := fmt.Sprintf(`{"email":"json@example.com","name":"J","consent_version":%d}`, text.Version)
	req, _ := http.NewRequest("POST", w.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", "https://books.example") // cross-origin: allowed for this endpoint
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(b), `"subscribed"`) {
		t.Fatalf("JSON subscribe: %d %s", res.StatusCode, b)
	}
	if got := res.Header.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Fatalf("a script on the account holder's site cannot read the answer: Access-Control-Allow-Origin %q", got)
	}
	// A browser asks first before it posts JSON cross-origin.
	pre, _ := http.NewRequest("OPTIONS", w.srv.URL+path, nil)
	pre.Header.Set("Origin", "https://books.example")
	pre.Header.Set("Access-Control-Request-Method", "POST")
	pre.Header.Set("Access-Control-Request-Headers", "content-type")
	if res, err := http.DefaultClient.Do(pre); err != nil || res.StatusCode != http.StatusNoContent ||
		res.Header.Get("Access-Control-Allow-Methods") != "POST" || !strings.EqualFold(res.Header.Get("Access-Control-Allow-Headers"), "content-type") {
		t.Fatalf("preflight: %v %v", res, err)
	}
	subs, _ := w.store.ListSubscribers(ctx, w.acc.ID, tidings.SubscriberFilter{})
	st, _ := w.store.Subscriptions(ctx, w.acc.ID, subs[0].ID)
	if len(st) != 1 || st[0].Status != tidings.SubConfirmed {
		t.Fatalf("single opt-in: %+v", st)
	}
	entries, _ := w.store.LedgerEntries(ctx, w.acc.ID, 0, 10)
	if len(entries) != 1 || entries[0].Kind != tidings.LedgerSingleOptIn || entries[0].Source != tidings.SourceAPI {
		t.Fatalf("single opt-in must be recorded as such: %+v", entries)
	}
	// The mail kept as proof is the welcome mail, and is named so.
	if proofs, err := w.store.Proofs(ctx, w.acc.ID, subs[0].ID); err != nil || len(proofs) != 1 || proofs[0].Kind != "welcome" {
		t.Fatalf("single opt-in proof: %d proofs, first kind %q, err %v", len(proofs), func() string {
			if len(proofs) == 0 {
				return ""
			}
			return proofs[0].Kind
		}(), err)
	}
	for _, bad := range []string{`{"email":"x"}`, `{"email":"a@b.example","consent_version":999}`, `{"email":"a@b.example","x":1}`, `not json`} {
		req, _ := http.NewRequest("POST", w.srv.URL+path, strings.NewReader(bad))
		req.Header.Set("Content-Type", "application/json")
		res, _ := http.DefaultClient.Do(req)
		res.Body.Close()
		if res.StatusCode/100 != 4 {
			t.Errorf("%s: %d, want 4xx", bad, res.StatusCode)
		}
	}
}

// One sign-up can name more lists of the same account by their form tokens ("also"):
// one request, one mail, every list; a list of another account is refused and nothing
// is stored.
func TestSignUpForSeveralLists(t *testing.T) {
	store := testdb.Open(t, "sqlite")
	w := newWorld(t, store, true)
	ctx := context.Background()
	text, _ := w.consent.CurrentText(ctx, w.acc)
	second := tidings.NewList("Events")
	if err := store.CreateList(ctx, w.acc.ID, &second); err != nil {
		t.Fatal(err)
	}
	other := tidings.Account{Name: "Other", PostalAddress: "2 Other Road", ContactEmail: "dpo@other.example"}
	if err := store.CreateAccount(ctx, &other); err != nil {
		t.Fatal(err)
	}
	foreign := tidings.NewList("Not yours")
	if err := store.CreateList(ctx, other.ID, &foreign); err != nil {
		t.Fatal(err)
	}
	form := "/s/" + w.consent.ListToken(w.acc.ID, w.list.ID)
	v := url.Values{"email": {"two@example.com"}, "consent_version": {fmt.Sprint(text.Version)},
		"also": {w.consent.ListToken(other.ID, foreign.ID)}}
	if code, _ := w.post(form, v); code != http.StatusUnprocessableEntity {
		t.Fatalf("another account's list: %d, want 422", code)
	}
	if subs, _ := store.ListSubscribers(ctx, w.acc.ID, tidings.SubscriberFilter{}); len(subs) != 0 || w.sink.Count() != 0 {
		t.Fatal("a refused sign-up stored or mailed something")
	}
	v["also"] = []string{w.consent.ListToken(w.acc.ID, second.ID)}
	if code, page := w.post(form, v); code != 200 || !strings.Contains(page, "Check your inbox") {
		t.Fatalf("two lists: %d", code)
	}
	subs, _ := store.ListSubscribers(ctx, w.acc.ID, tidings.SubscriberFilter{})
	if len(subs) != 1 {
		t.Fatalf("%d subscribers, want 1", len(subs))
	}
	got, _ := store.Subscriptions(ctx, w.acc.ID, subs[0].ID)
	if len(got) != 2 || w.sink.Count() != 1 {
		t.Fatalf("%d subscriptions and %d mails, want 2 and 1", len(got), w.sink.Count())
	}
}

func TestBotsAndLimits(t *testing.T) {
	store := testdb.Open(t, "sqlite")
	w := newWorld(t, store, true)
	ctx := context.Background()
	text, _ := w.consent.CurrentText(ctx, w.acc)
	form := "/s/" + w.consent.ListToken(w.acc.ID, w.list.ID)
	v := url.Values{"email": {"bot@example.com"}, "website": {"http://spam.example"}, "consent_version": {fmt.Sprint(text.Version)}}
	if code, page := w.post(form, v); code != 200 || !strings.Contains(page, "Check your inbox") {
		t.Fatalf("honeypot should look like success: %d", code)
	}
	if subs, _ := store.ListSubscribers(ctx, w.acc.ID, tidings.SubscriberFilter{}); len(subs) != 0 || w.sink.Count() != 0 {
		t.Fatal("the honeypot stored or mailed something")
	}
	if code, _ := w.get("/s/forged-token"); code != 404 {
		t.Fatalf("forged list token: %d", code)
	}
	// One address gets at most 3 confirmation mails however often the form is sent
	// (every 10 minutes one more); the answer stays the same.
	for i := range 4 {
		v := url.Values{"email": {"target@example.com"}, "consent_version": {fmt.Sprint(text.Version)}}
		if code, page := w.post(form, v); code != 200 || !strings.Contains(page, "Check your inbox") {
			t.Fatalf("sign-up %d for one address: %d", i+1, code)
		}
	}
	if n := w.sink.Count(); n != 3 {
		t.Fatalf("%d confirmation mails to one address, want 3", n)
	}
	// The default limiter allows a burst of 5 posts per client IP, then refuses.
	limited := httptest.NewServer(web.NewHandler(web.Deps{Store: store, Keys: testdb.Keyring(t), Consent: w.consent}))
	defer limited.Close()
	codes := []int{}
	for i := range 7 {
		v := url.Values{"email": {fmt.Sprintf("r%d@example.com", i)}, "consent_version": {fmt.Sprint(text.Version)}}
		req, _ := http.NewRequest("POST", limited.URL+form, strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		res, _ := http.DefaultClient.Do(req)
		res.Body.Close()
		codes = append(codes, res.StatusCode)
	}
	if codes[0] != 200 || codes[6] != http.StatusTooManyRequests {
		t.Fatalf("rate limit: codes %v, want the default burst of 5 then 429", codes)
	}
	// Views of the page too, more loosely: a burst of 60 per client IP (then one a
	// second), then refused.
	for i := range 120 {
		res, err := http.Get(limited.URL + form)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if i < 60 && res.StatusCode != 200 {
			t.Fatalf("view %d: %d, want the default burst of 60 first", i+1, res.StatusCode)
		}
		if res.StatusCode == http.StatusTooManyRequests {
			if res.Header.Get("Retry-After") == "" {
				t.Fatal("a refused view says nothing of when to come back")
			}
			return
		}
	}
	t.Fatal("120 views of the page from one client, none refused")
}

// TestConfirmationMailStatesTheAccountsWindow: an account that deletes unconfirmed
// requests sooner than the instance says so in the confirmation mail, instead of
// promising a link that works for 7 days.
func TestConfirmationMailStatesTheAccountsWindow(t *testing.T) {
	store := testdb.Open(t, testdb.Engines(t)[0])
	acc := tidings.Account{PostalAddress: "1 Example Street, Exampletown", Name: "Quick", ContactEmail: "dpo@quick.example", UnconfirmedDays: 2}
	if err := store.CreateAccount(context.Background(), &acc); err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, store, true)
	list := tidings.NewList("Fast news")
	if err := store.CreateList(context.Background(), acc.ID, &list); err != nil {
		t.Fatal(err)
	}
	text, err := w.consent.CurrentText(context.Background(), acc)
	if err != nil {
		t.Fatal(err)
	}
	code, page := w.post("/s/"+w.consent.ListToken(acc.ID, list.ID), url.Values{"email": {"quick@example.com"},
		"consent_version": {fmt.Sprint(text.Version)}})
	if code != 200 {
		t.Fatalf("subscribe: %d %s", code, page)
	}
	msgs := w.sink.Find("quick@example.com")
	if len(msgs) != 1 {
		t.Fatalf("%d mails", len(msgs))
	}
	if body := textOf(t, msgs[0].Data); !strings.Contains(body, "it works for 2 days") {
		t.Fatalf("the mail does not state the account's 2 days:\n%s", body)
	}
}

// TestConfirmDeletedList: a confirmation link whose lists were all deleted since
// confirms nothing and changes nothing the request asked for (name, tracking), and the
// page says the lists no longer exist, instead of welcoming the person to no list with
// a receipt link that does not work.
func TestConfirmDeletedList(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			w := newWorld(t, testdb.Open(t, engine), true)
			ctx := context.Background()
			text, err := w.consent.CurrentText(ctx, w.acc)
			if err != nil {
				t.Fatal(err)
			}
			other := tidings.NewList("Lesungen")
			if err := w.store.CreateList(ctx, w.acc.ID, &other); err != nil {
				t.Fatal(err)
			}
			known, err := w.store.RequestSubscription(ctx, w.acc.ID, tidings.SubscriptionRequest{Email: tidings.MustParseAddress("gone@example.com"),
				Name: "Ann", Lists: []int64{other.ID}, Source: tidings.SourceForm, Kind: tidings.LedgerSingleOptIn})
			if err != nil {
				t.Fatal(err)
			}
			if code, page := w.post("/s/"+w.consent.ListToken(w.acc.ID, w.list.ID), url.Values{"email": {"gone@example.com"},
				"name": {"Mallory"}, "tracking_consent": {"yes"}, "consent_version": {fmt.Sprint(text.Version)}}); code != 200 {
				t.Fatalf("subscribe: %d %s", code, page)
			}
			msgs := w.sink.Find("gone@example.com")
			if len(msgs) != 1 {
				t.Fatalf("%d mails", len(msgs))
			}
			l := links(textOf(t, msgs[0].Data))
			if err := w.store.DeleteList(ctx, w.acc.ID, w.list.ID); err != nil {
				t.Fatal(err)
			}
			if code, page := w.post(l["confirm"], nil); code != http.StatusGone || !strings.Contains(page, "no longer exist") {
				t.Fatalf("confirm for a deleted list: %d %s", code, page)
			}
			if n := len(w.sink.Find("gone@example.com")); n != 1 {
				t.Fatalf("%d mails: a welcome to no list was sent", n)
			}
			sub, err := w.store.GetSubscriber(ctx, w.acc.ID, known.Subscriber.ID)
			if err != nil || sub.Name != "Ann" || sub.TrackingConsent {
				t.Fatalf("after confirming no list: name %q, tracking %v (%v); want nothing changed", sub.Name, sub.TrackingConsent, err)
			}
		})
	}
}

// TestConfirmWithoutTrackingPage: the mail of a request with tracking consent links to
// a page that offers both choices, and to one that confirms without tracking; that one
// confirms the subscription and gives no consent. A request without it says nothing of
// tracking, in the mail or on the page.
func TestConfirmWithoutTrackingPage(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			w := newWorld(t, testdb.Open(t, engine), true)
			ctx := context.Background()
			mail := w.signUpMail("plain@example.com", false)
			if strings.Contains(mail, "tracking") {
				t.Fatalf("a request without tracking consent mentions tracking:\n%s", mail)
			}
			if _, page := w.get(links(mail)["confirm"]); strings.Contains(page, "tracking") {
				t.Fatalf("its confirm page mentions tracking:\n%s", page)
			}

			mail = w.signUpMail("careful@example.com", true)
			asked := regexp.MustCompile(`/confirm/[A-Za-z0-9_-]+\?tracking=asked`).FindString(mail)
			without := regexp.MustCompile(`/confirm/[A-Za-z0-9_-]+\?tracking=no`).FindString(mail)
			if asked == "" || without == "" {
				t.Fatalf("the mail lacks the links with and without tracking:\n%s", mail)
			}
			if code, page := w.get(asked); code != 200 || !strings.Contains(page, `name="tracking" value="no"`) {
				t.Fatalf("confirm page: %d, no choice to confirm without tracking:\n%s", code, page)
			}
			if code, page := w.get(without); code != 200 || !strings.Contains(page, "without tracking") {
				t.Fatalf("confirm page without tracking: %d\n%s", code, page)
			}
			if code, page := w.post(without, nil); code != 200 || !strings.Contains(page, "confirmed") {
				t.Fatalf("confirm without tracking: %d %s", code, page)
			}
			subs, _ := w.store.ListSubscribers(ctx, w.acc.ID, tidings.SubscriberFilter{Email: tidings.MustParseAddress("careful@example.com")})
			if len(subs) != 1 || subs[0].TrackingConsent {
				t.Fatalf("subscriber %+v: want one, without tracking consent", subs)
			}
			if st, _ := w.store.Subscriptions(ctx, w.acc.ID, subs[0].ID); len(st) != 1 || st[0].Status != tidings.SubConfirmed {
				t.Fatalf("subscriptions %+v: want confirmed", st)
			}
			hist, _ := w.store.SubscriberLedger(ctx, w.acc.ID, subs[0].ID, tidings.Page{})
			for _, e := range hist {
				if e.Kind == tidings.LedgerTrackingChange {
					t.Fatalf("a tracking change in the ledger: %+v", hist)
				}
			}
		})
	}
}

// The hosted page's link can offer more lists of its account (?also=token,token): they
// are unticked checkboxes with their descriptions; tokens of another account, forged or
// repeated ones, and the page's own are left out. A post ticking one makes one request,
// one mail, and both subscriptions once confirmed; a post naming another account's list
// stores nothing and shows the page again with the person's choices.
func TestHostedPageOffersMoreLists(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			store := testdb.Open(t, engine)
			w := newWorld(t, store, true)
			ctx := context.Background()
			newList := func(accountID int64, name, description, purpose string) tidings.List {
				l := tidings.NewList(name)
				l.Description, l.Purpose = description, purpose
				if err := store.CreateList(ctx, accountID, &l); err != nil {
					t.Fatal(err)
				}
				return l
			}
			events := newList(w.acc.ID, "Lesungen", "Readings and signings in the shop", "Invitations to events")
			kids := newList(w.acc.ID, "Kinderbücher", "", "")
			newList(w.acc.ID, "Unchosen", "", "")
			other := tidings.Account{Name: "Other", PostalAddress: "2 Other Road", ContactEmail: "dpo@other.example"}
			if err := store.CreateAccount(ctx, &other); err != nil {
				t.Fatal(err)
			}
			foreign := newList(other.ID, "Not yours", "", "")
			token := func(l tidings.List) string { return w.consent.ListToken(l.AccountID, l.ID) }
			form := "/s/" + token(w.list)

			code, page := w.get(form + "?also=" + strings.Join([]string{token(events), token(foreign), "forged", token(w.list), token(events)}, ",") +
				"&also=" + token(kids))
			if code != 200 {
				t.Fatalf("hosted page: %d\n%s", code, page)
			}
			if got, want := offered(page), []string{token(events), token(kids)}; !slices.Equal(got, want) {
				t.Fatalf("offered %q, want %q (events, kids)", got, want)
			}
			for _, s := range []string{"Also subscribe to Lesungen", "Readings and signings in the shop", "Purpose: Invitations to events",
				"Also subscribe to Kinderbücher", "Purpose of Neuerscheinungen: Monthly news about new books", `name="tracking_consent"`} {
				if !strings.Contains(page, s) {
					t.Fatalf("hosted page lacks %q:\n%s", s, page)
				}
			}
			if strings.Contains(page, "Not yours") || strings.Contains(page, "Unchosen") || strings.Contains(page, " checked") {
				t.Fatalf("hosted page offers a list not chosen, another account's, or ticks one:\n%s", page)
			}
			// The form posts back to the link's choice, without the tokens left out.
			action := html.UnescapeString(regexp.MustCompile(`<form method="post" action="([^"]+)"`).FindStringSubmatch(page)[1])
			if want := form + "?also=" + token(events) + "," + token(kids); action != want {
				t.Fatalf("form action %q, want %q", action, want)
			}
			version := regexp.MustCompile(`name="consent_version" value="(\d+)"`).FindStringSubmatch(page)[1]
			// A link naming nothing valid is the plain page.
			if code, page := w.get(form + "?also=forged," + token(foreign)); code != 200 || len(offered(page)) != 0 || strings.Contains(page, "Not yours") {
				t.Fatalf("a link naming only bad lists: %d, offers %q", code, offered(page))
			}

			// Another account's list, ticked (a forged post): refused, nothing stored, and the
			// page comes back with the person's entries and ticks.
			v := url.Values{"email": {"both@example.com"}, "name": {"Bo"}, "tracking_consent": {"yes"}, "consent_version": {version},
				"also": {token(events), token(foreign)}}
			code, page = w.post(action, v)
			if code != http.StatusUnprocessableEntity || !strings.Contains(page, "not a list of this form") {
				t.Fatalf("another account's list: %d, want 422\n%s", code, page)
			}
			if subs, _ := store.ListSubscribers(ctx, w.acc.ID, tidings.SubscriberFilter{}); len(subs) != 0 || w.sink.Count() != 0 {
				t.Fatal("a refused sign-up stored or mailed something")
			}
			if entries, _ := store.LedgerEntries(ctx, w.acc.ID, 0, 10); len(entries) != 0 {
				t.Fatalf("a refused sign-up wrote %d ledger entries", len(entries))
			}
			if got, want := offered(page), []string{token(events), token(kids)}; !slices.Equal(got, want) || strings.Contains(page, "Not yours") {
				t.Fatalf("after the error the page offers %q, want %q", got, want)
			}
			for _, s := range []string{`value="both@example.com"`, `value="Bo"`, `value="` + token(events) + `" checked`, `value="yes" checked`} {
				if !strings.Contains(page, s) {
					t.Fatalf("the page shown again lost %q:\n%s", s, page)
				}
			}
			if strings.Contains(page, `value="`+token(kids)+`" checked`) {
				t.Fatal("the page shown again ticks a list the person left unticked")
			}

			// A form embedded elsewhere posts its own choice to the plain page: an error shows
			// the page with that choice too.
			code, page = w.post(form, url.Values{"email": {"both@example.com"}, "consent_version": {"999"}, "also": {token(kids)}})
			if code != http.StatusUnprocessableEntity || !slices.Equal(offered(page), []string{token(kids)}) || !strings.Contains(page, `value="`+token(kids)+`" checked`) {
				t.Fatalf("an embedded form's error: %d, offers %q\n%s", code, offered(page), page)
			}

			// Ticking one more list: one request, one mail, both lists once confirmed.
			v["also"] = []string{token(events)}
			if code, page := w.post(action, v); code != 200 || !strings.Contains(page, "Check your inbox") {
				t.Fatalf("sign-up for two lists: %d\n%s", code, page)
			}
			msgs := w.sink.Find("both@example.com")
			if len(msgs) != 1 || w.sink.Count() != 1 {
				t.Fatalf("%d mails, want 1 confirmation", w.sink.Count())
			}
			// One request: a ledger entry per list asked for, one confirmation mail kept as
			// its proof, and its one link confirms both.
			entries, _ := store.LedgerEntries(ctx, w.acc.ID, 0, 10)
			requested := map[int64]bool{}
			for _, e := range entries {
				requested[e.ListID] = e.Kind == tidings.LedgerRequested
			}
			if len(entries) != 2 || !requested[w.list.ID] || !requested[events.ID] {
				t.Fatalf("ledger after the sign-up: %+v, want the request for the page's list and Lesungen", entries)
			}
			subs, _ := store.ListSubscribers(ctx, w.acc.ID, tidings.SubscriberFilter{})
			if len(subs) != 1 {
				t.Fatalf("%d subscribers, want 1", len(subs))
			}
			if proofs, _ := store.Proofs(ctx, w.acc.ID, subs[0].ID); len(proofs) != 1 || proofs[0].Kind != "confirmation_request" {
				t.Fatalf("%d proofs, want the one confirmation request", len(proofs))
			}
			if code, page := w.post(links(textOf(t, msgs[0].Data))["confirm"], nil); code != 200 {
				t.Fatalf("confirm: %d %s", code, page)
			}
			subs, _ = store.ListSubscribers(ctx, w.acc.ID, tidings.SubscriberFilter{})
			if len(subs) != 1 || !subs[0].TrackingConsent {
				t.Fatalf("subscribers: %+v", subs)
			}
			got, _ := store.Subscriptions(ctx, w.acc.ID, subs[0].ID)
			confirmed := map[int64]bool{}
			for _, s := range got {
				confirmed[s.ListID] = s.Status == tidings.SubConfirmed
			}
			if len(got) != 2 || !confirmed[w.list.ID] || !confirmed[events.ID] {
				t.Fatalf("subscriptions %+v, want the page's list and Lesungen, confirmed", got)
			}
		})
	}
}

// offered returns the form tokens a subscribe page offers as "also" checkboxes.
func offered(page string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`name="also" type="checkbox" value="([^"]+)"`).FindAllStringSubmatch(page, -1) {
		out = append(out, m[1])
	}
	return out
}

// lookups counts a store's look-ups of lists.
type lookups struct {
	tidings.Store
	one, many atomic.Int64
}

func (l *lookups) GetList(ctx context.Context, accountID, id int64) (tidings.List, error) {
	l.one.Add(1)
	return l.Store.GetList(ctx, accountID, id)
}

func (l *lookups) GetLists(ctx context.Context, accountID int64, ids []int64) ([]tidings.List, error) {
	l.many.Add(1)
	return l.Store.GetLists(ctx, accountID, ids)
}

// TestHostedPageLooksUpListsOnce: however many lists a hosted page's link names (up to
// 20 tokens) and a post ticks, a request looks them up once, in one query: a view used
// to cost a look-up per token, and a post looked its ticked lists up twice (once for
// the page shown again, once to check them).
func TestHostedPageLooksUpListsOnce(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			store := &lookups{Store: testdb.Open(t, engine)}
			w := newWorld(t, store, true)
			ctx := context.Background()
			var tokens []string
			for i := range 25 {
				l := tidings.NewList(fmt.Sprint("More ", i))
				if err := store.CreateList(ctx, w.acc.ID, &l); err != nil {
					t.Fatal(err)
				}
				tokens = append(tokens, w.consent.ListToken(w.acc.ID, l.ID))
			}
			form := "/s/" + w.consent.ListToken(w.acc.ID, w.list.ID)
			check := func(what string) {
				t.Helper()
				// The page's own list is a look-up of its own (GetList).
				if one, many := store.one.Swap(0), store.many.Swap(0); one != 1 || many != 1 {
					t.Fatalf("%s: %d single and %d batched list look-ups, want 1 and 1", what, one, many)
				}
			}
			store.one.Store(0)
			store.many.Store(0)
			code, page := w.get(form + "?also=" + strings.Join(tokens, ","))
			if code != 200 || len(offered(page)) != 20 {
				t.Fatalf("view: %d, %d lists offered, want the first 20", code, len(offered(page)))
			}
			check("a view naming 25 lists")
			// A post ticking 20 lists, one of them another account's: refused, and the page
			// shown again with the link's lists and the ticked ones.
			other := tidings.Account{Name: "Other", PostalAddress: "2 Other Road", ContactEmail: "dpo@other.example"}
			if err := store.CreateAccount(ctx, &other); err != nil {
				t.Fatal(err)
			}
			foreign := tidings.NewList("Not yours")
			if err := store.CreateList(ctx, other.ID, &foreign); err != nil {
				t.Fatal(err)
			}
			ticked := append(slices.Clone(tokens[6:25]), w.consent.ListToken(other.ID, foreign.ID))
			store.one.Store(0)
			store.many.Store(0)
			code, page = w.post(form+"?also="+strings.Join(tokens[:20], ","), url.Values{"email": {"many@example.com"}, "also": ticked})
			if code != http.StatusUnprocessableEntity || len(offered(page)) != 25 {
				t.Fatalf("post: %d, %d lists offered, want 422 and 25\n%s", code, len(offered(page)), page)
			}
			check("a refused post")
		})
	}
}
