package api_test

import (
	"context"
	"strings"
	"testing"

	"github.com/tidings/tidings/internal/consent"
	"github.com/tidings/tidings/internal/mail"
	"github.com/tidings/tidings/internal/postman"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
	"github.com/tidings/tidings/internal/web"
)

// TestAccountChangeReachesTheFooter: the next mail after a PATCH of the controller's
// details carries the new details, though the sender identity was cached before.
func TestAccountChangeReachesTheFooter(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ob, err := mail.NewOutbox(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		pm := postman.New(e.store, ob, "tidings.example")
		e.srv.Config.Handler = web.NewHandler(web.Deps{Store: e.store, Keys: testdb.Keyring(t), MaxBodyBytes: 4096,
			Consent: &consent.Service{Store: e.store, Keys: testdb.Keyring(t), Postman: pm}})
		letter := postman.Letter{To: tidings.MustParseAddress("reader@example.com"), Subject: "Hello", Text: "Hello"}
		if _, err := pm.Send(context.Background(), e.a.ID, letter); err != nil { // caches the identity
			t.Fatal(err)
		}
		e.must(200, e.do("PATCH", "/api/v1/account", e.tokA, map[string]any{"postal_address": "9 New Road, Leeds"}))
		sent, err := pm.Send(context.Background(), e.a.ID, letter)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(sent), "9 New Road, Leeds") {
			t.Fatalf("the footer still shows the old address:\n%s", sent)
		}
	})
}
