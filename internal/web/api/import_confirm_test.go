package api_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tidings/tidings/internal/consent"
	"github.com/tidings/tidings/internal/mail"
	"github.com/tidings/tidings/internal/postman"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/web"
)

// TestImportSendConfirmationBadFile: an upload that asks people to confirm and is refused
// for a line after the first batch mails nobody — the answer says nothing was imported.
func TestImportSendConfirmationBadFile(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ob, err := mail.NewOutbox(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		kr := testdb.Keyring(t)
		e.srv.Config.Handler = web.NewHandler(web.Deps{Store: e.store, Keys: kr, MaxBodyBytes: 4096, MaxUploadBytes: 1 << 20,
			Consent: &consent.Service{Store: e.store, Keys: kr, Postman: postman.New(e.store, ob, "tidings.example")}})
		list := id(t, e.must(201, e.do("POST", "/api/v1/lists", e.tokA, map[string]any{"name": "Asked"})))
		var b strings.Builder
		b.WriteString("email\n")
		for i := range 1200 {
			fmt.Fprintf(&b, "person%d@example.com\n", i)
		}
		b.WriteString("\"broken@example.com\n")
		path := fmt.Sprintf("/api/v1/lists/%d/imports?source=fair&lawful_basis=consent&mode=send_confirmation", list)
		r := e.upload(path, "text/csv", []byte(b.String()))
		if code, _ := r.errCode(t); r.status != 422 || code != "invalid_csv" || !strings.Contains(string(r.body), "nothing was imported") {
			t.Fatalf("upload of a broken file: %d %s", r.status, r.body)
		}
		if sent, _ := ob.List(10); len(sent) != 0 {
			t.Fatalf("\"nothing was imported\", but %d people were mailed", len(sent))
		}
	})
}

// TestImportSendConfirmationTwice: importing the same file again asks nobody twice while
// their first request still waits; someone new in the file is asked.
func TestImportSendConfirmationTwice(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		list := id(t, e.must(201, e.do("POST", "/api/v1/lists", e.tokA, map[string]any{"name": "Asked"})))
		path := fmt.Sprintf("/api/v1/lists/%d/imports?source=fair&lawful_basis=consent&mode=send_confirmation", list)
		counts := func(r response) map[string]any {
			t.Helper()
			if r.status != 200 {
				t.Fatalf("import: %d %s", r.status, r.body)
			}
			return r.json(t)["counts"].(map[string]any)
		}
		first := counts(e.upload(path, "text/csv", []byte("email\nann@example.com\nbob@example.com\n")))
		if first["confirmation_sent"] != 2.0 {
			t.Fatalf("first import: %v", first)
		}
		again := counts(e.upload(path, "text/csv", []byte("email\nann@example.com\nbob@example.com\ncid@example.com\n")))
		if again["awaiting_confirmation"] != 2.0 || again["confirmation_sent"] != 1.0 {
			t.Fatalf("second import: %v", again)
		}
		if sent, err := e.outbox.List(10); err != nil || len(sent) != 3 {
			t.Fatalf("%d mails sent for three people (%v)", len(sent), err)
		}
	})
}
