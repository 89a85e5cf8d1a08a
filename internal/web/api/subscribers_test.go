package api_test

import (
	"context"
	"fmt"
	"strings"
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

// An add is one write. Without lists, a tracking consent is recorded through the
// ledger in the subscriber's own transaction: when the ledger refuses its entry,
// nothing of the subscriber is stored. With lists, the caller's status is written with
// the subscriber, confirmed at once or asking for confirmation: when the database
// refuses writing that status (by INSERT or by a later UPDATE), the add either fails
// with nothing stored or is stored whole.
func TestSubscriberCreateIsOneWrite(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.a.TrackingEnabled = true
		if err := e.store.UpdateAccount(ctx, &e.a); err != nil {
			t.Fatal(err)
		}
		s := e.store.(*sqlstore.Store)
		absent := func(what, email string) {
			t.Helper()
			if data := e.must(200, e.do("GET", "/api/v1/subscribers?email="+email, e.tokA, nil)).json(t)["data"].([]any); len(data) != 0 {
				t.Fatalf("%s: a failed add left %v behind", what, data)
			}
			if rep, err := consent.VerifyLedger(ctx, e.store, e.a.ID); err != nil || !rep.OK || rep.Entries != 0 {
				t.Fatalf("%s: ledger %+v, %v; want empty", what, rep, err)
			}
		}

		add := map[string]any{"email": "ann@example.com", "tracking_consent": true}
		restore := failTrackingEntries(t, e.store)
		e.must(500, e.do("POST", "/api/v1/subscribers", e.tokA, add))
		absent("tracking entry refused", "ann@example.com")
		restore()
		ann := e.must(201, e.do("POST", "/api/v1/subscribers", e.tokA, add)).json(t)
		hist, err := e.store.SubscriberLedger(ctx, e.a.ID, int64(ann["id"].(float64)), tidings.Page{})
		if ann["tracking_consent"] != true || err != nil || len(hist) != 1 || hist[0].Kind != tidings.LedgerTrackingChange || hist[0].Source != tidings.SourceAPI {
			t.Fatalf("an add with tracking consent: %v; ledger %+v, %v", ann, hist, err)
		}
		if err := e.store.DeleteSubscriber(ctx, e.a.ID, int64(ann["id"].(float64))); err != nil {
			t.Fatal(err)
		}

		single := id(t, e.must(201, e.do("POST", "/api/v1/lists", e.tokA, map[string]any{"name": "Single", "double_opt_in": false})))
		doi := id(t, e.must(201, e.do("POST", "/api/v1/lists", e.tokA, map[string]any{"name": "DOI"})))
		for _, c := range []struct {
			list int64
			op   string
		}{{single, "INSERT"}, {single, "UPDATE"}, {doi, "INSERT"}, {doi, "UPDATE"}} {
			op := c.op
			email := fmt.Sprintf("%s-%d@example.com", strings.ToLower(op), c.list)
			before, err := consent.VerifyLedger(ctx, e.store, e.a.ID)
			if err != nil {
				t.Fatal(err)
			}
			restore := testdb.FailWrites(t, s.DB(), s.Engine(), op, "subscribers", "NEW.status = 'restricted'")
			r := e.do("POST", "/api/v1/subscribers", e.tokA, map[string]any{"email": email, "status": "restricted",
				"lists": []int64{c.list}, "source": "fair", "lawful_basis": "consent"})
			restore()
			found := e.must(200, e.do("GET", "/api/v1/subscribers?email="+email, e.tokA, nil)).json(t)["data"].([]any)
			after, err := consent.VerifyLedger(ctx, e.store, e.a.ID)
			if err != nil || !after.OK {
				t.Fatalf("%s refused: ledger %+v, %v", op, after, err)
			}
			switch {
			case r.status == 201:
				if len(found) != 1 || found[0].(map[string]any)["status"] != "restricted" || after.Entries != before.Entries+1 {
					t.Fatalf("%s refused, add answered 201: stored %v, %d ledger entries (%d before)", op, found, after.Entries, before.Entries)
				}
			case r.status >= 500:
				if len(found) != 0 || after.Entries != before.Entries {
					t.Fatalf("%s refused, add failed (%d) but left %v and %d ledger entries (%d before)", op, r.status, found, after.Entries, before.Entries)
				}
			default:
				t.Fatalf("%s refused: status %d: %s", op, r.status, r.body)
			}
		}
	})
}
