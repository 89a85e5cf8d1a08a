package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/tidings/tidings/internal/consent"
	"github.com/tidings/tidings/internal/keys"
	"github.com/tidings/tidings/internal/mail"
	"github.com/tidings/tidings/internal/postman"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
	"github.com/tidings/tidings/internal/web"
)

// env is one running server with an operator token and two accounts, A and B.
type env struct {
	t        *testing.T
	srv      *httptest.Server
	store    tidings.Store
	operator string
	a, b     tidings.Account
	tokA     string
	tokB     string
	outbox   *mail.Outbox // where confirmation requests go
	relay    *relay       // in front of the outbox: can be made to fail
}

// relay hands mail to the outbox, or fails with fail while it is set.
type relay struct {
	*mail.Outbox
	mu   sync.Mutex
	fail error
}

func (r *relay) Send(ctx context.Context, env mail.Envelope, msg []byte) error {
	r.mu.Lock()
	err := r.fail
	r.mu.Unlock()
	if err != nil {
		return err
	}
	return r.Outbox.Send(ctx, env, msg)
}

func (r *relay) failWith(err error) {
	r.mu.Lock()
	r.fail = err
	r.mu.Unlock()
}

func newEnv(t *testing.T, store tidings.Store) *env {
	t.Helper()
	e := &env{t: t, store: store}
	ob, err := mail.NewOutbox(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e.outbox, e.relay = ob, &relay{Outbox: ob}
	kr := testdb.Keyring(t)
	e.srv = httptest.NewServer(web.NewHandler(web.Deps{Store: store, Keys: kr, MaxBodyBytes: 4096, MaxUploadBytes: 4096,
		Consent: &consent.Service{Store: store, Keys: kr, Postman: postman.New(store, e.relay, "tidings.example"), BaseURL: "https://tidings.example"}}))
	t.Cleanup(e.srv.Close)
	ctx := context.Background()
	e.operator = e.token(0)
	for _, acc := range []*tidings.Account{&e.a, &e.b} {
		*acc = tidings.Account{PostalAddress: "1 Example Street, Exampletown", Name: fmt.Sprintf("Controller %p", acc), ContactEmail: "dpo@example.org"}
		if err := store.CreateAccount(ctx, acc); err != nil {
			t.Fatal(err)
		}
	}
	e.tokA, e.tokB = e.token(e.a.ID), e.token(e.b.ID)
	return e
}

func (e *env) token(accountID int64) string {
	secret, hash := keys.NewSecretToken("tid_")
	if err := e.store.CreateToken(context.Background(), &tidings.APIToken{AccountID: accountID, Prefix: secret[:8]}, hash); err != nil {
		e.t.Fatal(err)
	}
	return secret
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v\n%s", err, r.body)
	}
	return m
}

// errCode returns error.code and error.field of an error response.
func (r response) errCode(t *testing.T) (string, string) {
	t.Helper()
	e, ok := r.json(t)["error"].(map[string]any)
	if !ok {
		t.Fatalf("no error object in %s", r.body)
	}
	field, _ := e["field"].(string)
	return e["code"].(string), field
}

func (e *env) do(method, path, token string, body any) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, rd)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{res.StatusCode, res.Header, b}
}

func (e *env) must(status int, r response) response {
	e.t.Helper()
	if r.status != status {
		e.t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	return r
}

func id(t *testing.T, r response) int64 {
	t.Helper()
	return int64(r.json(t)["id"].(float64))
}

func forEachEngine(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) { fn(t, newEnv(t, testdb.Open(t, engine))) })
	}
}

func TestListsCRUD(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		r := e.must(201, e.do("POST", "/api/v1/lists", e.tokA, map[string]any{"name": "Weekly", "purpose": "news"}))
		l := r.json(t)
		if l["double_opt_in"] != true || l["lawful_basis"] != "consent" {
			t.Fatalf("defaults: %s", r.body)
		}
		lid := id(t, r)
		path := fmt.Sprintf("/api/v1/lists/%d", lid)
		r = e.must(200, e.do("PATCH", path, e.tokA, map[string]any{"description": "every Monday"}))
		if got := r.json(t); got["description"] != "every Monday" || got["name"] != "Weekly" {
			t.Fatalf("PATCH changed more or less than asked: %s", r.body)
		}
		e.must(200, e.do("GET", path, e.tokA, nil))
		e.must(409, e.do("POST", "/api/v1/lists", e.tokA, map[string]any{"name": "Weekly"}))
		r = e.must(422, e.do("POST", "/api/v1/lists", e.tokA, map[string]any{"name": "x", "lawful_basis": "whim"}))
		if code, field := r.errCode(t); code != "invalid_choice" || field != "lawful_basis" {
			t.Fatalf("bad basis error = %s/%s", code, field)
		}
		e.must(204, e.do("DELETE", path, e.tokA, nil))
		e.must(404, e.do("GET", path, e.tokA, nil))
	})
}

// An add to a double opt-in list whose confirmation mail cannot be sent keeps nothing,
// so that the same call works once the relay does; a relay that refuses the address
// for good is an error on the address.
func TestSubscriberAddMailFails(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		doi := id(t, e.must(201, e.do("POST", "/api/v1/lists", e.tokA, map[string]any{"name": "DOI"})))
		add := map[string]any{"email": "bob@example.com", "lists": []int64{doi}}
		e.relay.failWith(&mail.SendError{Message: "connection refused", Temporary: true})
		if code, _ := e.must(503, e.do("POST", "/api/v1/subscribers", e.tokA, add)).errCode(t); code != "mail_unavailable" {
			t.Fatalf("relay down: code %s, want mail_unavailable", code)
		}
		e.relay.failWith(&mail.SendError{Code: 550, Enhanced: "5.1.1", Message: "user unknown"})
		if code, field := e.must(422, e.do("POST", "/api/v1/subscribers", e.tokA, add)).errCode(t); code != "refused" || field != "email" {
			t.Fatalf("address refused: %s on %s, want refused on email", code, field)
		}
		if data := e.must(200, e.do("GET", "/api/v1/subscribers?email=bob@example.com", e.tokA, nil)).json(t)["data"].([]any); len(data) != 0 {
			t.Fatalf("a subscriber was kept after the mail failed: %v", data)
		}
		e.relay.failWith(nil)
		e.must(201, e.do("POST", "/api/v1/subscribers", e.tokA, add))
		if sent, err := e.outbox.List(10); err != nil || len(sent) != 1 {
			t.Fatalf("after the relay came back: %d mails, %v; want 1", len(sent), err)
		}
	})
}

// Tracking consent the account holder asserts through the API is a consent event: in
// the ledger with the token, and refused where the account does not track.
func TestSubscriberTrackingConsentThroughLedger(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		path := fmt.Sprintf("/api/v1/subscribers/%d", id(t, e.must(201, e.do("POST", "/api/v1/subscribers", e.tokA, map[string]any{"email": "ann@example.com"}))))
		if code, field := e.must(422, e.do("PATCH", path, e.tokA, map[string]any{"tracking_consent": true})).errCode(t); code != "tracking_off" || field != "tracking_consent" {
			t.Fatalf("tracking consent where the account does not track: %s on %s", code, field)
		}
		e.must(422, e.do("POST", "/api/v1/subscribers", e.tokA, map[string]any{"email": "bob@example.com", "tracking_consent": true}))
		e.a.TrackingEnabled = true
		if err := e.store.UpdateAccount(ctx, &e.a); err != nil {
			t.Fatal(err)
		}
		kinds := func(sub int64) (n int) {
			t.Helper()
			hist, err := e.store.SubscriberLedger(ctx, e.a.ID, sub, tidings.Page{})
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range hist {
				if h.Kind == tidings.LedgerTrackingChange && h.Source == tidings.SourceAPI {
					n++
				}
			}
			return n
		}
		ann := e.must(200, e.do("PATCH", path, e.tokA, map[string]any{"tracking_consent": true, "name": "Ann"})).json(t)
		annID := int64(ann["id"].(float64))
		if ann["tracking_consent"] != true || ann["name"] != "Ann" || kinds(annID) != 1 {
			t.Fatalf("PATCH tracking consent: %v, %d ledger entries; want given, 1 entry", ann, kinds(annID))
		}
		e.must(200, e.do("PATCH", path, e.tokA, map[string]any{"name": "Ann B"}))
		if kinds(annID) != 1 {
			t.Fatal("a PATCH that left tracking consent alone wrote a ledger entry")
		}
		if got := e.must(200, e.do("PATCH", path, e.tokA, map[string]any{"tracking_consent": false})).json(t); got["tracking_consent"] != false || kinds(annID) != 2 {
			t.Fatalf("withdrawing: %v, %d entries", got, kinds(annID))
		}
		bob := e.must(201, e.do("POST", "/api/v1/subscribers", e.tokA, map[string]any{"email": "bob@example.com", "tracking_consent": true})).json(t)
		if bob["tracking_consent"] != true || kinds(int64(bob["id"].(float64))) != 1 {
			t.Fatalf("an add with tracking consent: %v", bob)
		}

		// Each entry's note says which token made the change (by ID, not the address).
		toks, err := e.store.ListTokens(ctx, e.a.ID)
		if err != nil || len(toks) != 1 {
			t.Fatalf("tokens of A: %+v, %v", toks, err)
		}
		by := fmt.Sprintf("recorded through the API with token %d", toks[0].ID)
		notes := func(sub int64) (out []string) {
			t.Helper()
			hist, err := e.store.SubscriberLedger(ctx, e.a.ID, sub, tidings.Page{})
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range hist {
				ev, err := e.store.OpenEvidence(ctx, h)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, ev.Note)
			}
			return out
		}
		if n := notes(annID); len(n) != 2 || n[0] != "tracking consent given; "+by || n[1] != "tracking consent withdrawn; "+by {
			t.Fatalf("notes of the PATCHes: %q", n)
		}
		if n := notes(int64(bob["id"].(float64))); len(n) != 1 || n[0] != "tracking consent given; "+by {
			t.Fatalf("note of the add: %q", n)
		}
		if rep, err := consent.VerifyLedger(ctx, e.store, e.a.ID); err != nil || !rep.OK || rep.Entries != 3 {
			t.Fatalf("ledger %+v, %v; want 3 entries that verify", rep, err)
		}
	})
}

// A list's form can offer more lists (?also=): the snippet carries their tokens as
// "also" checkboxes, and a sign-up that names them subscribes to every one.
func TestListFormOffersMoreLists(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		news := id(t, e.must(201, e.do("POST", "/api/v1/lists", e.tokA, map[string]any{"name": "News"})))
		events := id(t, e.must(201, e.do("POST", "/api/v1/lists", e.tokA, map[string]any{"name": "Events"})))
		foreign := id(t, e.must(201, e.do("POST", "/api/v1/lists", e.tokB, map[string]any{"name": "Foreign"})))
		path := fmt.Sprintf("/api/v1/lists/%d/form", news)
		for _, bad := range []string{"x", fmt.Sprint(foreign), "999999"} {
			if _, field := e.must(422, e.do("GET", path+"?also="+bad, e.tokA, nil)).errCode(t); field != "also" {
				t.Fatalf("also=%s: error on %q, want also", bad, field)
			}
		}
		form := e.must(200, e.do("GET", fmt.Sprintf("%s?also=%d", path, events), e.tokA, nil)).json(t)
		snippet := form["embed_html"].(string)
		m := regexp.MustCompile(`name="also" value="([^"]+)"> Also subscribe to Events`).FindStringSubmatch(snippet)
		if m == nil {
			t.Fatalf("the snippet does not offer Events:\n%s", snippet)
		}
		if page := form["url"].(string); !strings.HasSuffix(page, "?also="+m[1]) {
			t.Fatalf("the page link %s does not offer Events (token %s)", page, m[1])
		}
		url := form["json_endpoint"].(string)
		body := map[string]any{"email": "both@example.com", "consent_version": form["consent_version"], "also": []string{m[1]}}
		j, _ := json.Marshal(body)
		res, err := http.Post(e.srv.URL+url[strings.Index(url, "/s/"):], "application/json", bytes.NewReader(j))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("sign-up for both lists: %d", res.StatusCode)
		}
		found := e.must(200, e.do("GET", "/api/v1/subscribers?email=both@example.com", e.tokA, nil)).json(t)["data"].([]any)
		if len(found) != 1 {
			t.Fatalf("subscribers: %v", found)
		}
		subs := e.must(200, e.do("GET", fmt.Sprintf("/api/v1/subscribers/%v/subscriptions", found[0].(map[string]any)["id"]), e.tokA, nil)).json(t)["data"].([]any)
		if len(subs) != 2 {
			t.Fatalf("subscriptions: %v, want News and Events", subs)
		}
	})
}

func TestSubscribersCRUDAndSearch(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		doi := id(t, e.must(201, e.do("POST", "/api/v1/lists", e.tokA, map[string]any{"name": "DOI"})))
		single := id(t, e.must(201, e.do("POST", "/api/v1/lists", e.tokA, map[string]any{"name": "Single", "double_opt_in": false})))

		// Confirmed at once on a single opt-in list: only under a declaration of where the
		// address came from, recorded in the ledger.
		annIn := map[string]any{"email": " Ann@Example.COM ", "name": "Ann", "attributes": map[string]any{"city": "Oslo"}, "lists": []int64{single}}
		if r := e.must(422, e.do("POST", "/api/v1/subscribers", e.tokA, annIn)); !strings.Contains(string(r.body), "lawful_basis") {
			t.Fatalf("a confirmed add without a declaration: %s", r.body)
		}
		annIn["source"], annIn["lawful_basis"] = "shop checkout", "bogus"
		e.must(422, e.do("POST", "/api/v1/subscribers", e.tokA, annIn))
		annIn["lawful_basis"] = "consent"
		r := e.must(201, e.do("POST", "/api/v1/subscribers", e.tokA, annIn))
		ann := r.json(t)
		if ann["email"] != "ann@example.com" || ann["status"] != "active" {
			t.Fatalf("created %s", r.body)
		}
		annID := id(t, r)
		subs := e.must(200, e.do("GET", fmt.Sprintf("/api/v1/subscribers/%d/subscriptions", annID), e.tokA, nil)).json(t)["data"].([]any)
		if len(subs) != 1 || subs[0].(map[string]any)["status"] != "confirmed" {
			t.Fatalf("single opt-in list should confirm at once: %v", subs)
		}
		// Every field of the input is kept on the confirmed path too (tracking consent
		// where the account tracks).
		e.a.TrackingEnabled = true
		if err := e.store.UpdateAccount(context.Background(), &e.a); err != nil {
			t.Fatal(err)
		}
		kept := e.must(201, e.do("POST", "/api/v1/subscribers", e.tokA, map[string]any{"email": "kept@example.com", "status": "restricted",
			"tracking_consent": true, "attributes": map[string]any{"plan": "pro"}, "lists": []int64{single}, "source": "fair", "lawful_basis": "consent"})).json(t)
		if kept["status"] != "restricted" || kept["tracking_consent"] != true || kept["attributes"].(map[string]any)["plan"] != "pro" {
			t.Fatalf("a confirmed add lost input: %v", kept)
		}
		if got := e.must(200, e.do("GET", fmt.Sprintf("/api/v1/subscribers/%v", kept["id"]), e.tokA, nil)).json(t); got["status"] != "restricted" {
			t.Fatalf("stored: %v", got)
		}
		hist, err := e.store.SubscriberLedger(context.Background(), e.a.ID, annID, tidings.Page{})
		if err != nil || len(hist) != 1 || hist[0].Kind != tidings.LedgerImported || hist[0].Source != tidings.SourceAPI {
			t.Fatalf("ledger of an API add: %+v %v", hist, err)
		}
		// A double opt-in list asks the person, like a sign-up: the subscriptions wait for
		// the link, and the request (with the declaration given) is in the ledger.
		bob := id(t, e.must(201, e.do("POST", "/api/v1/subscribers", e.tokA, map[string]any{"email": "bob@example.com", "lists": []int64{doi, single},
			"source": "fair", "lawful_basis": "consent"})))
		subs = e.must(200, e.do("GET", fmt.Sprintf("/api/v1/subscribers/%d/subscriptions", bob), e.tokA, nil)).json(t)["data"].([]any)
		if len(subs) != 2 || subs[0].(map[string]any)["status"] != "unconfirmed" || subs[1].(map[string]any)["status"] != "unconfirmed" {
			t.Fatalf("a double opt-in list must leave the subscriptions unconfirmed: %v", subs)
		}
		if subs[0].(map[string]any)["awaiting_confirmation_until"] == nil {
			t.Fatalf("no confirmation request waits for the subscription: %v", subs)
		}
		sent, err := e.outbox.List(10)
		if err != nil || len(sent) != 1 || len(sent[0].To) != 1 || sent[0].To[0] != "bob@example.com" {
			t.Fatalf("the confirmation mail: %+v %v", sent, err)
		}
		hist, err = e.store.SubscriberLedger(context.Background(), e.a.ID, bob, tidings.Page{})
		if err != nil || len(hist) != 2 || hist[0].Kind != tidings.LedgerRequested || hist[0].Source != tidings.SourceAPI {
			t.Fatalf("ledger of an API add to double opt-in lists: %+v %v", hist, err)
		}
		if ev, err := e.store.OpenEvidence(context.Background(), hist[0]); err != nil || !strings.Contains(ev.Note, "source: fair; lawful basis: consent") {
			t.Fatalf("the request's evidence lacks the declaration: %+v %v", ev, err)
		}

		e.must(409, e.do("POST", "/api/v1/subscribers", e.tokA, map[string]any{"email": "ANN@example.com"}))
		r = e.must(200, e.do("GET", "/api/v1/subscribers?email=ANN@EXAMPLE.COM", e.tokA, nil))
		if data := r.json(t)["data"].([]any); len(data) != 1 || data[0].(map[string]any)["name"] != "Ann" {
			t.Fatalf("search by address: %s", r.body)
		}
		r = e.must(200, e.do("GET", fmt.Sprintf("/api/v1/subscribers?list=%d", doi), e.tokA, nil))
		if data := r.json(t)["data"].([]any); len(data) != 1 {
			t.Fatalf("filter by list: %s", r.body)
		}
		r = e.must(200, e.do("PATCH", fmt.Sprintf("/api/v1/subscribers/%d", annID), e.tokA, map[string]any{"status": "restricted"}))
		if got := r.json(t); got["status"] != "restricted" || got["name"] != "Ann" || got["attributes"].(map[string]any)["city"] != "Oslo" {
			t.Fatalf("PATCH: %s", r.body)
		}
		r = e.must(422, e.do("PATCH", fmt.Sprintf("/api/v1/subscribers/%d", annID), e.tokA, map[string]any{"email": "new@example.com"}))
		if code, _ := r.errCode(t); code != "read_only" {
			t.Fatalf("changing the address: %s", r.body)
		}
		e.must(204, e.do("DELETE", fmt.Sprintf("/api/v1/subscribers/%d", annID), e.tokA, nil))
		e.must(404, e.do("GET", fmt.Sprintf("/api/v1/subscribers/%d", annID), e.tokA, nil))
	})
}

func TestPagination(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		want := map[string]bool{}
		for i := range 12 {
			addr := fmt.Sprintf("p%02d@example.com", i)
			e.must(201, e.do("POST", "/api/v1/subscribers", e.tokA, map[string]any{"email": addr}))
			want[addr] = true
		}
		seen := map[string]bool{}
		next := ""
		for range 10 {
			r := e.must(200, e.do("GET", "/api/v1/subscribers?limit=5&after="+next, e.tokA, nil)).json(t)
			for _, d := range r["data"].([]any) {
				addr := d.(map[string]any)["email"].(string)
				if seen[addr] {
					t.Fatalf("%s on two pages", addr)
				}
				seen[addr] = true
			}
			n, ok := r["next"].(string)
			if !ok {
				break
			}
			next = n
		}
		if len(seen) != len(want) {
			t.Fatalf("saw %d of %d subscribers", len(seen), len(want))
		}
		for _, q := range []string{"limit=0", "limit=1001", "limit=x", "after=-1", "after=abc", "status=gone", "list=x", "email=not-an-address"} {
			r := e.must(422, e.do("GET", "/api/v1/subscribers?"+q, e.tokA, nil))
			if _, field := r.errCode(t); field == "" {
				t.Errorf("?%s: the error names no parameter: %s", q, r.body)
			}
		}
	})
}

// TestCrossTenant proves that account B's token sees and changes nothing of account A's,
// and gets 404 — exactly as for a missing row — on every route with an ID.
func TestCrossTenant(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		list := id(t, e.must(201, e.do("POST", "/api/v1/lists", e.tokA, map[string]any{"name": "A's list"})))
		sub := id(t, e.must(201, e.do("POST", "/api/v1/subscribers", e.tokA, map[string]any{"email": "a-only@example.com", "name": "A", "lists": []int64{list}, "source": "test", "lawful_basis": "consent"})))
		calls := []struct {
			method, path string
			body         any
		}{
			{"GET", fmt.Sprintf("/api/v1/lists/%d", list), nil},
			{"PATCH", fmt.Sprintf("/api/v1/lists/%d", list), map[string]any{"name": "stolen"}},
			{"DELETE", fmt.Sprintf("/api/v1/lists/%d", list), nil},
			{"GET", fmt.Sprintf("/api/v1/subscribers/%d", sub), nil},
			{"PATCH", fmt.Sprintf("/api/v1/subscribers/%d", sub), map[string]any{"name": "stolen"}},
			{"DELETE", fmt.Sprintf("/api/v1/subscribers/%d", sub), nil},
			{"GET", fmt.Sprintf("/api/v1/subscribers/%d/subscriptions", sub), nil},
		}
		for _, c := range calls {
			r := e.do(c.method, c.path, e.tokB, c.body)
			if r.status != 404 {
				t.Errorf("B: %s %s = %d, want 404: %s", c.method, c.path, r.status, r.body)
			}
			if bytes.Contains(r.body, []byte("a-only")) || bytes.Contains(r.body, []byte("A's list")) {
				t.Errorf("B: %s %s leaked A's data: %s", c.method, c.path, r.body)
			}
		}
		// B cannot subscribe its people to A's list, nor find A's subscribers.
		r := e.must(422, e.do("POST", "/api/v1/subscribers", e.tokB, map[string]any{"email": "b@example.com", "lists": []int64{list}}))
		if _, field := r.errCode(t); field != "lists[0]" {
			t.Errorf("B onto A's list: %s", r.body)
		}
		for _, q := range []string{"", "?email=a-only@example.com", fmt.Sprintf("?list=%d", list)} {
			if data := e.must(200, e.do("GET", "/api/v1/subscribers"+q, e.tokB, nil)).json(t)["data"].([]any); len(data) != 0 {
				t.Errorf("B lists A's subscribers with %q: %v", q, data)
			}
		}
		if data := e.must(200, e.do("GET", "/api/v1/lists", e.tokB, nil)).json(t)["data"].([]any); len(data) != 0 {
			t.Errorf("B lists A's lists: %v", data)
		}
		// Everything of A's is intact.
		if got := e.must(200, e.do("GET", fmt.Sprintf("/api/v1/lists/%d", list), e.tokA, nil)).json(t); got["name"] != "A's list" {
			t.Errorf("A's list changed: %v", got)
		}
		if got := e.must(200, e.do("GET", fmt.Sprintf("/api/v1/subscribers/%d", sub), e.tokA, nil)).json(t); got["name"] != "A" {
			t.Errorf("A's subscriber changed: %v", got)
		}
		// An account token cannot reach other accounts through the operator routes.
		for _, c := range []struct{ method, path string }{
			{"GET", "/api/v1/accounts"}, {"GET", fmt.Sprintf("/api/v1/accounts/%d", e.a.ID)},
			{"DELETE", fmt.Sprintf("/api/v1/accounts/%d", e.a.ID)}, {"PATCH", fmt.Sprintf("/api/v1/accounts/%d", e.a.ID)},
		} {
			if r := e.do(c.method, c.path, e.tokB, map[string]any{}); r.status != 403 {
				t.Errorf("account token on %s %s = %d, want 403", c.method, c.path, r.status)
			}
		}
		own := e.must(200, e.do("GET", "/api/v1/account", e.tokB, nil)).json(t)
		if int64(own["id"].(float64)) != e.b.ID {
			t.Errorf("GET /account returned %v, want B", own)
		}
	})
}

func TestAccountsOperator(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		r := e.must(201, e.do("POST", "/api/v1/accounts", e.operator, map[string]any{
			"name": "New Shop", "postal_address": "1 New Street", "contact_email": "dpo@new.example", "privacy_policy_url": "https://new.example/privacy"}))
		if r.json(t)["tracking_enabled"] != false {
			t.Fatalf("tracking must default to off: %s", r.body)
		}
		path := fmt.Sprintf("/api/v1/accounts/%d", id(t, r))
		r = e.must(200, e.do("PATCH", path, e.operator, map[string]any{"tracking_enabled": true}))
		if got := r.json(t); got["tracking_enabled"] != true || got["name"] != "New Shop" {
			t.Fatalf("PATCH: %s", r.body)
		}
		if data := e.must(200, e.do("GET", "/api/v1/accounts", e.operator, nil)).json(t)["data"].([]any); len(data) != 3 {
			t.Fatalf("accounts: %v", data)
		}
		r = e.must(422, e.do("POST", "/api/v1/accounts", e.operator, map[string]any{"name": "X", "contact_email": "Bob <bob@x.example>"}))
		if code, field := r.errCode(t); code != "display_name" || field != "contact_email" {
			t.Fatalf("bad contact: %s", r.body)
		}
		// Operator tokens manage accounts, not their contents.
		e.must(403, e.do("GET", "/api/v1/lists", e.operator, nil))
		e.must(204, e.do("DELETE", path, e.operator, nil))
		e.must(404, e.do("GET", path, e.operator, nil))
	})
}

func TestAuthentication(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		for _, tok := range []string{"", "tid_forged", e.tokA + "x"} {
			r := e.must(401, e.do("GET", "/api/v1/lists", tok, nil))
			if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without a Bearer challenge")
			}
		}
		e.must(404, e.do("GET", "/api/v1/nothing-here", e.tokA, nil))
	})
}

// TestBadInput sends every kind of bad request and checks the error and that nothing
// was written.
func TestBadInput(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		big := `{"name":"` + strings.Repeat("x", 5000) + `"}`
		cases := []struct {
			name, method, path, body, ctype string
			status                          int
			code, field                     string
		}{
			{"malformed", "POST", "/api/v1/lists", `{"name": "x",}`, "application/json", 400, "invalid_json", ""},
			{"truncated", "POST", "/api/v1/lists", `{"name": "x"`, "application/json", 400, "invalid_json", ""},
			{"empty", "POST", "/api/v1/lists", ``, "application/json", 400, "invalid_json", ""},
			{"not an object", "POST", "/api/v1/lists", `[1,2]`, "application/json", 422, "wrong_type", ""},
			{"trailing data", "POST", "/api/v1/lists", `{"name":"x"} {"name":"y"}`, "application/json", 400, "invalid_json", ""},
			{"unknown field", "POST", "/api/v1/lists", `{"name":"x","owner":"me"}`, "application/json", 400, "unknown_field", "owner"},
			{"wrong type", "POST", "/api/v1/lists", `{"name":42}`, "application/json", 422, "wrong_type", "name"},
			{"oversized", "POST", "/api/v1/lists", big, "application/json", 413, "body_too_large", ""},
			{"form encoded", "POST", "/api/v1/lists", `name=x`, "application/x-www-form-urlencoded", 415, "unsupported_media_type", ""},
			{"bad id", "GET", "/api/v1/lists/abc", ``, "", 400, "invalid_id", "id"},
			{"zero id", "GET", "/api/v1/lists/0", ``, "", 400, "invalid_id", "id"},
			{"huge id", "GET", "/api/v1/subscribers/99999999999999999999", ``, "", 400, "invalid_id", "id"},
			{"invalid address", "POST", "/api/v1/subscribers", `{"email":"no-at-sign"}`, "application/json", 422, "missing_at", "email"},
			{"display name", "POST", "/api/v1/subscribers", `{"email":"Eve <eve@example.com>"}`, "application/json", 422, "display_name", "email"},
			{"missing address", "POST", "/api/v1/subscribers", `{"name":"Eve"}`, "application/json", 422, "required", "email"},
			{"bad attribute", "POST", "/api/v1/subscribers", `{"email":"eve@example.com","attributes":{"a b":1}}`, "application/json", 422, "bad_key", "attributes.a b"},
			{"unknown list", "POST", "/api/v1/subscribers", `{"email":"eve@example.com","lists":[999999]}`, "application/json", 422, "unknown_list", "lists[0]"},
		}
		for _, c := range cases {
			req, _ := http.NewRequest(c.method, e.srv.URL+c.path, strings.NewReader(c.body))
			if c.ctype != "" {
				req.Header.Set("Content-Type", c.ctype)
			}
			req.Header.Set("Authorization", "Bearer "+e.tokA)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			r := response{res.StatusCode, res.Header, b}
			if r.status != c.status {
				t.Errorf("%s: status %d, want %d: %s", c.name, r.status, c.status, b)
				continue
			}
			if code, field := r.errCode(t); code != c.code || field != c.field {
				t.Errorf("%s: error %s/%q, want %s/%q: %s", c.name, code, field, c.code, c.field, b)
			}
		}
		lists := e.must(200, e.do("GET", "/api/v1/lists", e.tokA, nil)).json(t)["data"].([]any)
		subs := e.must(200, e.do("GET", "/api/v1/subscribers", e.tokA, nil)).json(t)["data"].([]any)
		if len(lists) != 0 || len(subs) != 0 {
			t.Errorf("bad requests wrote rows: %d lists, %d subscribers", len(lists), len(subs))
		}
	})
}

func evidence() tidings.Evidence { return tidings.Evidence{IP: "192.0.2.1"} }
