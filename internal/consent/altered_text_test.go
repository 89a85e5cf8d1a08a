package consent_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/tidings/tidings/internal/consent"
	"github.com/tidings/tidings/internal/sqlstore"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
)

// A consent text changed in the database after people agreed to it is caught: the
// ledger does not verify, and the receipt link, forms and confirmations refuse the text
// rather than sign, show or record a wording nobody agreed to.
func TestAlteredConsentText(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			ctx := context.Background()
			a := newAsking(t, engine)
			l := tidings.NewList("Offers")
			l.DoubleOptIn = false
			if err := a.store.CreateList(ctx, a.acc.ID, &l); err != nil {
				t.Fatal(err)
			}
			a.list = l.ID
			if err := a.subscribe(t); err != nil {
				t.Fatal(err)
			}
			text, err := a.svc.CurrentText(ctx, a.acc)
			if err != nil {
				t.Fatal(err)
			}
			msg := strings.ReplaceAll(string(a.relay.last), "=\r\n", "")
			m := regexp.MustCompile(`/receipt/([A-Za-z0-9_.\-]+)`).FindStringSubmatch(msg)
			if m == nil {
				t.Fatalf("no receipt link in the welcome mail:\n%s", msg)
			}
			receipt := m[1]
			rc, err := a.svc.ReceiptFor(ctx, receipt)
			if err != nil || rc.Receipt.ConsentText.Body != text.Body {
				t.Fatalf("receipt before the change: %+v, %v", rc.Receipt.ConsentText, err)
			}
			if rep, err := consent.VerifyLedger(ctx, a.store, a.acc.ID); err != nil || !rep.OK {
				t.Fatalf("verify before the change: %+v, %v", rep, err)
			}

			// The database refuses to change a published text (migration 33); someone with
			// full access to it drops that guard and rewrites the wording people agreed to.
			if _, err := a.store.DB().ExecContext(ctx, `UPDATE consent_texts SET body = $3 WHERE account_id = $1 AND version = $2`,
				a.acc.ID, text.Version, "I agree to anything at all."); err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Fatalf("changing a published text: %v, want it refused as append-only", err)
			}
			drop := "DROP TRIGGER consent_texts_append_only_update"
			if engine == sqlstore.Postgres {
				drop += " ON consent_texts"
			}
			if _, err := a.store.DB().ExecContext(ctx, drop); err != nil {
				t.Fatal(err)
			}
			if _, err := a.store.DB().ExecContext(ctx, `UPDATE consent_texts SET body = $3 WHERE account_id = $1 AND version = $2`,
				a.acc.ID, text.Version, "I agree to anything at all."); err != nil {
				t.Fatal(err)
			}
			rep, err := consent.VerifyLedger(ctx, a.store, a.acc.ID)
			if err != nil || rep.OK || rep.BrokenAt != 1 || !strings.Contains(rep.Problem, "consent text") || !strings.Contains(rep.Problem, "altered") {
				t.Fatalf("verify after the body changed: %+v, %v; want entry 1 broken, its consent text altered", rep, err)
			}
			if rc, err := a.svc.ReceiptFor(ctx, receipt); !errors.Is(err, tidings.ErrConsentTextAltered) {
				t.Fatalf("receipt after the body changed: %+v, %v; want ErrConsentTextAltered", rc.Receipt.ConsentText, err)
			}
			if got, err := a.svc.CurrentText(ctx, a.acc); !errors.Is(err, tidings.ErrConsentTextAltered) || got.Body != "" {
				t.Fatalf("form text after the body changed: %q, %v; want ErrConsentTextAltered", got.Body, err)
			}
			if _, err := a.svc.Subscribe(ctx, consent.SubscribeRequest{AccountID: a.acc.ID, Lists: []int64{a.list},
				Email: "other@example.com", TextVersion: text.Version, Source: tidings.SourceForm}); !errors.Is(err, tidings.ErrConsentTextAltered) {
				t.Fatalf("sign-up after the body changed: %v; want ErrConsentTextAltered", err)
			}

			// The hash rewritten to match the new body: the text reads, but it is not the
			// one the ledger entry recorded.
			sum := sha256.Sum256([]byte("I agree to anything at all."))
			if _, err := a.store.DB().ExecContext(ctx, `UPDATE consent_texts SET sha256 = $3 WHERE account_id = $1 AND version = $2`,
				a.acc.ID, text.Version, sum[:]); err != nil {
				t.Fatal(err)
			}
			rep, err = consent.VerifyLedger(ctx, a.store, a.acc.ID)
			if err != nil || rep.OK || rep.BrokenAt != 1 || !strings.Contains(rep.Problem, "SHA-256 the entry recorded") {
				t.Fatalf("verify after body and hash changed: %+v, %v; want entry 1 broken, its text not the one recorded", rep, err)
			}
			if rc, err := a.svc.ReceiptFor(ctx, receipt); !errors.Is(err, tidings.ErrConsentTextAltered) {
				t.Fatalf("receipt after body and hash changed: %+v, %v; want ErrConsentTextAltered", rc.Receipt.ConsentText, err)
			}

			// Put back, everything verifies and the receipt is signed again.
			orig := sha256.Sum256([]byte(text.Body))
			if _, err := a.store.DB().ExecContext(ctx, `UPDATE consent_texts SET body = $3, sha256 = $4 WHERE account_id = $1 AND version = $2`,
				a.acc.ID, text.Version, text.Body, orig[:]); err != nil {
				t.Fatal(err)
			}
			if rep, err := consent.VerifyLedger(ctx, a.store, a.acc.ID); err != nil || !rep.OK {
				t.Fatalf("verify after the text was put back: %+v, %v", rep, err)
			}
			if _, err := a.svc.ReceiptFor(ctx, receipt); err != nil {
				t.Fatalf("receipt after the text was put back: %v", err)
			}
		})
	}
}
