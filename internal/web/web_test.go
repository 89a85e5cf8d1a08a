package web_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/tidings/tidings/internal/keys"
	"github.com/tidings/tidings/internal/sqlstore"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
	"github.com/tidings/tidings/internal/web"
)

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func newServer(t *testing.T) (*httptest.Server, *sqlstore.Store, *syncBuffer) {
	t.Helper()
	store := testdb.Open(t, sqlstore.SQLite)
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := httptest.NewServer(web.NewHandler(web.Deps{Store: store, Keys: testdb.Keyring(t), Log: log, MaxBodyBytes: 1 << 20}))
	t.Cleanup(srv.Close)
	return srv, store, logs
}

func get(t *testing.T, u string) (*http.Response, string) {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func TestHealthAndReadiness(t *testing.T) {
	srv, store, _ := newServer(t)
	if res, body := get(t, srv.URL+"/healthz"); res.StatusCode != 200 || body != "ok\n" {
		t.Fatalf("/healthz = %d %q", res.StatusCode, body)
	}
	if res, body := get(t, srv.URL+"/readyz"); res.StatusCode != 200 || !strings.Contains(body, "ready") {
		t.Fatalf("/readyz = %d %q", res.StatusCode, body)
	}
	store.Close() // the database goes away: not ready, but still alive
	if res, _ := get(t, srv.URL+"/readyz"); res.StatusCode != 503 {
		t.Fatalf("/readyz with a closed database = %d, want 503", res.StatusCode)
	}
	if res, _ := get(t, srv.URL+"/healthz"); res.StatusCode != 200 {
		t.Fatalf("/healthz with a closed database = %d, want 200", res.StatusCode)
	}
}

func TestSecurityHeadersEverywhere(t *testing.T) {
	srv, _, _ := newServer(t)
	for _, path := range []string{"/healthz", "/readyz", "/setup?token=x", "/api/v1/lists", "/api/v1/openapi.json", "/static/style.css", "/nope"} {
		res, _ := get(t, srv.URL+path)
		h := res.Header
		if !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
			h.Get("X-Content-Type-Options") != "nosniff" || h.Get("X-Frame-Options") != "DENY" ||
			h.Get("Referrer-Policy") == "" || h.Get("X-Request-ID") == "" {
			t.Errorf("%s: missing security headers: %v", path, h)
		}
	}
}

func postForm(t *testing.T, srv *httptest.Server, path string, form url.Values) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestFirstOperatorSetup(t *testing.T) {
	srv, store, logs := newServer(t)
	keys.Argon2Params.Memory, keys.Argon2Params.Time = 1024, 1
	token, hash := keys.NewSecretToken("setup_")
	if err := store.PutSetting(context.Background(), sqlstore.SettingSetupToken, hex.EncodeToString(hash)); err != nil {
		t.Fatal(err)
	}
	res, body := get(t, srv.URL+"/setup?token="+token)
	if res.StatusCode != 200 || !strings.Contains(body, `name="password"`) {
		t.Fatalf("setup form: %d %s", res.StatusCode, body)
	}
	form := url.Values{"token": {token}, "name": {"<script>alert(1)</script>"}, "email": {"root@op.example"}, "password": {"short"}}
	if code, body := postForm(t, srv, "/setup", form); code != 422 || !strings.Contains(body, "at least 12") {
		t.Fatalf("short password: %d", code)
	}
	form.Set("password", "correct horse battery staple")
	form.Set("email", "not an address")
	if code, _ := postForm(t, srv, "/setup", form); code != 422 {
		t.Fatalf("bad address: %d", code)
	}
	form.Set("email", "root@op.example")
	code, body := postForm(t, srv, "/setup", form)
	if code != 200 || !strings.Contains(body, "was created") {
		t.Fatalf("setup: %d %s", code, body)
	}
	if strings.Contains(body, "<script>") || !strings.Contains(body, "&lt;script&gt;") {
		t.Fatalf("the name was not escaped: %s", body)
	}
	u, err := store.UserByEmail(context.Background(), "root@op.example")
	if err != nil || !u.Operator {
		t.Fatalf("operator not stored: %+v %v", u, err)
	}
	if ok, _ := keys.VerifyPassword(u.PasswordHash, "correct horse battery staple"); !ok {
		t.Fatal("stored password hash does not verify")
	}
	form.Set("email", "second@op.example")
	if code, body := postForm(t, srv, "/setup", form); code != 404 || !strings.Contains(body, "not valid any more") {
		t.Fatalf("reused link: %d", code)
	}
	// Cross-site form posts are refused before they reach the handler.
	req, _ := http.NewRequest("POST", srv.URL+"/setup", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site POST = %d, want 403", res.StatusCode)
	}
	if strings.Contains(logs.String(), token) || strings.Contains(logs.String(), "root@op.example") {
		t.Fatal("the setup token or the address reached the log")
	}
}

// TestLogsCarryNoPersonalData makes requests full of addresses and tokens (in paths,
// queries, headers and bodies, valid and invalid, succeeding and failing) and checks
// that none of them, nor the client IP, reaches the log.
func TestLogsCarryNoPersonalData(t *testing.T) {
	srv, store, logs := newServer(t)
	ctx := context.Background()
	acc := tidings.Account{PostalAddress: "1 Example Street, Exampletown", Name: "Shop", ContactEmail: "dpo@shop.example"}
	if err := store.CreateAccount(ctx, &acc); err != nil {
		t.Fatal(err)
	}
	token, hash := keys.NewSecretToken("tid_")
	if err := store.CreateToken(ctx, &tidings.APIToken{AccountID: acc.ID}, hash); err != nil {
		t.Fatal(err)
	}
	secrets := []string{"private.person@secret.example", "private.person", token, "127.0.0.1", "tid_wrongtoken123"}
	do := func(method, path, tok, body string) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	do("POST", "/api/v1/subscribers", token, `{"email":"private.person@secret.example","name":"P"}`)
	do("POST", "/api/v1/subscribers", token, `{"email":"private.person@secret.example"}`) // conflict
	do("GET", "/api/v1/subscribers?email=private.person@secret.example", token, "")
	do("GET", "/api/v1/subscribers?email=private.person@", token, "")
	do("GET", "/api/v1/lists", "tid_wrongtoken123", "")
	do("GET", "/api/v1/private.person@secret.example", token, "")
	do("POST", "/api/v1/subscribers", token, `{"email":"private.person@secret.example",}`)
	out := logs.String()
	if !strings.Contains(out, `"route"`) {
		t.Fatalf("no access log lines were written:\n%s", out)
	}
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("log contains %q:\n%s", s, out)
		}
	}
}
