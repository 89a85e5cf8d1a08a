package api_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/tidings/tidings/internal/consent"
	"github.com/tidings/tidings/internal/sqlstore"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
)

// failTrackingEntries makes the database refuse to append a tracking-change entry to
// the ledger, until the returned function is called.
func failTrackingEntries(t *testing.T, store tidings.Store) (restore func()) {
	s := store.(*sqlstore.Store)
	return testdb.FailWrites(t, s.DB(), s.Engine(), "INSERT", "ledger", "NEW.kind = 'tracking_change'")
}

// A PATCH is one write: when its tracking consent change cannot be recorded (the
// ledger refuses the entry, or the account does not track), the name, attributes and
// status it carries are not written either. A PATCH that succeeds writes both, and the
// ledger verifies.
func TestSubscriberPatchIsOneWrite(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.a.TrackingEnabled = true
		if err := e.store.UpdateAccount(ctx, &e.a); err != nil {
			t.Fatal(err)
		}
		subID := id(t, e.must(201, e.do("POST", "/api/v1/subscribers", e.tokA, map[string]any{"email": "ann@example.com", "name": "Ann"})))
		path := fmt.Sprintf("/api/v1/subscribers/%d", subID)
		patch := map[string]any{"name": "Ann B", "status": "restricted", "attributes": map[string]any{"city": "Lyon"}, "tracking_consent": true}
		untouched := func(what string) {
			t.Helper()
			got := e.must(200, e.do("GET", path, e.tokA, nil)).json(t)
			if got["name"] != "Ann" || got["status"] != "active" || got["tracking_consent"] != false || len(got["attributes"].(map[string]any)) != 0 {
				t.Fatalf("%s: the subscriber is %v; want nothing of the PATCH written", what, got)
			}
			if rep, err := consent.VerifyLedger(ctx, e.store, e.a.ID); err != nil || !rep.OK || rep.Entries != 0 {
				t.Fatalf("%s: ledger %+v, %v; want empty", what, rep, err)
			}
		}

		restore := failTrackingEntries(t, e.store)
		e.must(500, e.do("PATCH", path, e.tokA, patch))
		untouched("ledger entry refused")
		restore()

		e.a.TrackingEnabled = false
		if err := e.store.UpdateAccount(ctx, &e.a); err != nil {
			t.Fatal(err)
		}
		if code, field := e.must(422, e.do("PATCH", path, e.tokA, patch)).errCode(t); code != "tracking_off" || field != "tracking_consent" {
			t.Fatalf("consent where the account does not track: %s on %s", code, field)
		}
		untouched("account does not track")

		e.a.TrackingEnabled = true
		if err := e.store.UpdateAccount(ctx, &e.a); err != nil {
			t.Fatal(err)
		}
		got := e.must(200, e.do("PATCH", path, e.tokA, patch)).json(t)
		if got["name"] != "Ann B" || got["status"] != "restricted" || got["tracking_consent"] != true {
			t.Fatalf("PATCH answered %v", got)
		}
		stored, err := e.store.GetSubscriber(ctx, e.a.ID, subID)
		if err != nil || stored.Name != "Ann B" || stored.Status != tidings.StatusRestricted || stored.Attributes["city"] != "Lyon" || !stored.TrackingConsent {
			t.Fatalf("stored after the PATCH: %+v, %v", stored, err)
		}
		hist, err := e.store.SubscriberLedger(ctx, e.a.ID, subID, tidings.Page{})
		if err != nil || len(hist) != 1 || hist[0].Kind != tidings.LedgerTrackingChange || hist[0].Source != tidings.SourceAPI {
			t.Fatalf("ledger of the subscriber: %+v, %v; want one tracking change from the API", hist, err)
		}
		if rep, err := consent.VerifyLedger(ctx, e.store, e.a.ID); err != nil || !rep.OK || rep.Entries != 1 {
			t.Fatalf("ledger %+v, %v; want 1 entry that verifies", rep, err)
		}
	})
}
