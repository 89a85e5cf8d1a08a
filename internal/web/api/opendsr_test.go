package api_test

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/web"
)

func TestOpenDSR(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		// A controller's callback endpoint, over TLS.
		var mu sync.Mutex
		var got []*http.Request
		var bodies [][]byte
		cb := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			got, bodies = append(got, r), append(bodies, b)
			mu.Unlock()
		}))
		defer cb.Close()
		e.srv.Config.Handler = web.NewHandler(web.Deps{Store: e.store, Keys: testdb.Keyring(t), MaxBodyBytes: 4096, BaseURL: e.srv.URL, CallbackClient: cb.Client()})

		e.must(201, e.do("POST", "/api/v1/subscribers", e.tokA, map[string]any{"email": "dsr@example.com", "name": "Dee"}))
		disc := e.must(200, e.do("GET", "/api/v1/opendsr/discovery", e.tokA, nil)).json(t)
		if disc["api_version"] != "0.2" {
			t.Fatalf("discovery: %v", disc)
		}
		req := func(id, kind, value, format string, callbacks ...string) map[string]any {
			return map[string]any{"subject_request_id": id, "subject_request_type": kind, "api_version": "0.2",
				"subject_identities":   []map[string]string{{"identity_type": "email", "identity_value": value, "identity_format": format}},
				"status_callback_urls": callbacks}
		}
		const access = "11111111-2222-4333-8444-555555555555"
		r := e.must(201, e.do("POST", "/api/v1/opendsr", e.tokA, req(access, "access", "dsr@example.com", "raw")))
		if r.json(t)["subject_request_id"] != access {
			t.Fatalf("create: %s", r.body)
		}
		st := e.must(200, e.do("GET", "/api/v1/opendsr/"+access, e.tokA, nil)).json(t)
		if st["request_status"] != "completed" || !strings.HasSuffix(st["results_url"].(string), "/results") {
			t.Fatalf("status: %v", st)
		}
		res := e.must(200, e.do("GET", "/api/v1/opendsr/"+access+"/results", e.tokA, nil))
		if !strings.Contains(string(res.body), "Dee") {
			t.Fatalf("results: %s", res.body)
		}
		e.must(410, e.do("GET", "/api/v1/opendsr/"+access+"/results", e.tokA, nil))
		e.must(404, e.do("GET", "/api/v1/opendsr/"+access, e.tokB, nil)) // another account's request
		e.must(409, e.do("POST", "/api/v1/opendsr", e.tokA, req(access, "access", "dsr@example.com", "raw")))

		const erase = "22222222-2222-4333-8444-555555555555"
		e.must(201, e.do("POST", "/api/v1/opendsr", e.tokA, req(erase, "erasure", "dsr@example.com", "raw", cb.URL+"/callbacks")))
		if data := e.must(200, e.do("GET", "/api/v1/subscribers?email=dsr@example.com", e.tokA, nil)).json(t)["data"].([]any); len(data) != 0 {
			t.Fatal("the OpenDSR erasure left the subscriber")
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			mu.Lock()
			n := len(got)
			mu.Unlock()
			if n > 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(got) != 1 || !strings.Contains(string(bodies[0]), `"request_status":"completed"`) {
			t.Fatalf("callbacks: %d %s", len(got), bodies)
		}
		// The controller checks the signature with the certificate the discovery names.
		certURL, _ := disc["processor_certificate"].(string)
		certRes, err := http.Get(certURL)
		if err != nil {
			t.Fatal(err)
		}
		certPEM, _ := io.ReadAll(certRes.Body)
		certRes.Body.Close()
		block, _ := pem.Decode(certPEM)
		if block == nil || certRes.StatusCode != 200 {
			t.Fatalf("processor certificate: %d %q", certRes.StatusCode, certPEM)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
			t.Fatalf("the certificate is not self-signed by its key: %v", err)
		}
		sig, _ := base64.StdEncoding.DecodeString(got[0].Header.Get("X-OpenDSR-Signature"))
		if err := cert.CheckSignature(x509.PureEd25519, bodies[0], sig); err != nil {
			t.Fatalf("the callback signature does not verify with the processor certificate: %v", err)
		}
		if err := cert.CheckSignature(x509.PureEd25519, append(bodies[0], ' '), sig); err == nil {
			t.Fatal("a changed body verifies")
		}
		// sha256 identities: the hex digest of the normalised address finds the person,
		// in this account only.
		e.must(201, e.do("POST", "/api/v1/subscribers", e.tokA, map[string]any{"email": "hashed@example.com", "name": "Hal"}))
		sum := sha256.Sum256([]byte("hashed@example.com"))
		digest := hex.EncodeToString(sum[:])
		const byDigest = "77777777-2222-4333-8444-555555555555"
		e.must(201, e.do("POST", "/api/v1/opendsr", e.tokA, req(byDigest, "access", strings.ToUpper(digest), "sha256")))
		if res := e.must(200, e.do("GET", "/api/v1/opendsr/"+byDigest+"/results", e.tokA, nil)); !strings.Contains(string(res.body), "Hal") {
			t.Fatalf("results by digest: %s", res.body)
		}
		const otherAccount = "88888888-2222-4333-8444-555555555555"
		e.must(201, e.do("POST", "/api/v1/opendsr", e.tokB, req(otherAccount, "erasure", digest, "sha256")))
		if data := e.must(200, e.do("GET", "/api/v1/subscribers?email=hashed@example.com", e.tokA, nil)).json(t)["data"].([]any); len(data) != 1 {
			t.Fatal("another account's digest request reached this account's subscriber")
		}
		const eraseByDigest = "99999999-2222-4333-8444-555555555555"
		e.must(201, e.do("POST", "/api/v1/opendsr", e.tokA, req(eraseByDigest, "erasure", digest, "sha256")))
		if data := e.must(200, e.do("GET", "/api/v1/subscribers?email=hashed@example.com", e.tokA, nil)).json(t)["data"].([]any); len(data) != 0 {
			t.Fatal("the erasure by digest left the subscriber")
		}
		// The erasure left a suppression, found from the address the digest led to.
		e.must(409, e.do("POST", "/api/v1/subscribers", e.tokA, map[string]any{"email": "hashed@example.com"}))

		for _, bad := range []map[string]any{
			req("aaaaaaaa-2222-4333-8444-555555555555", "access", "abc123", "sha256"),
			req("bbbbbbbb-2222-4333-8444-555555555555", "access", "x@example.com", "md5"),
			req("not-a-uuid", "erasure", "x@example.com", "raw"),
			req("33333333-2222-4333-8444-555555555555", "erasure", "x@example.com", "sha256"),
			req("44444444-2222-4333-8444-555555555555", "rectification", "x@example.com", "raw"),
			req("55555555-2222-4333-8444-555555555555", "erasure", "not an address", "raw"),
			req("66666666-2222-4333-8444-555555555555", "erasure", "x@example.com", "raw", "http://insecure.example/cb"),
		} {
			e.must(422, e.do("POST", "/api/v1/opendsr", e.tokA, bad))
		}
	})
}
