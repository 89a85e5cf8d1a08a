package storetest

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidings/tidings/internal/consent"
	"github.com/tidings/tidings/internal/tidings"
)

func request(email string, lists []int64, kind tidings.LedgerKind, token string) tidings.SubscriptionRequest {
	r := tidings.SubscriptionRequest{Email: tidings.MustParseAddress(email), Name: "N", Lists: lists, Source: tidings.SourceForm,
		Kind: kind, Evidence: tidings.Evidence{IP: "198.51.100.1", UserAgent: "UA"}}
	if token != "" {
		r.TokenHash, r.ExpiresAt = tokenHash(token), time.Now().Add(time.Hour)
	}
	return r
}

func testConsentTexts(t *testing.T, s tidings.Store) {
	a, b := mustAccount(t, s), mustAccount(t, s)
	_, err := s.ConsentText(ctx, a.ID, 0)
	wantErr(t, "ConsentText(none)", err, tidings.ErrNotFound)
	t1, err := s.PublishConsentText(ctx, a.ID, "I agree, version one.")
	noErr(t, "PublishConsentText", err)
	t2, _ := s.PublishConsentText(ctx, a.ID, "I agree, version two.")
	sum := sha256.Sum256([]byte("I agree, version two."))
	if t1.Version != 1 || t2.Version != 2 || !bytes.Equal(t2.SHA256, sum[:]) {
		t.Fatalf("versions %d %d, hash %x", t1.Version, t2.Version, t2.SHA256)
	}
	cur, _ := s.ConsentText(ctx, a.ID, 0)
	old, _ := s.ConsentText(ctx, a.ID, 1)
	if cur.Version != 2 || old.Body != "I agree, version one." {
		t.Fatalf("current %+v, v1 %+v", cur, old)
	}
	_, err = s.ConsentText(ctx, b.ID, 1)
	wantErr(t, "ConsentText(b, a's version)", err, tidings.ErrNotFound)
	bt, _ := s.PublishConsentText(ctx, b.ID, "B's own text")
	if bt.Version != 1 {
		t.Fatalf("B's first version = %d", bt.Version)
	}
	wantValidation(t, "PublishConsentText(empty)", func() error { _, err := s.PublishConsentText(ctx, a.ID, "  "); return err }(), "consent_text")

	// A published text cannot be changed, nor deleted but with its account (migration 33).
	db := s.(interface{ DB() *sql.DB }).DB()
	for _, q := range []string{
		`UPDATE consent_texts SET body = 'I agree to anything.' WHERE account_id = $1 AND version = 1`,
		`UPDATE consent_texts SET body = 'I agree to anything.', sha256 = sha256 WHERE account_id = $1`,
		`UPDATE consent_texts SET version = version + 10 WHERE account_id = $1`,
		`UPDATE consent_texts SET created_at = created_at + 1 WHERE account_id = $1 AND version = 2`,
		`DELETE FROM consent_texts WHERE account_id = $1 AND version = 2`,
		`DELETE FROM consent_texts WHERE account_id = $1`,
	} {
		if _, err := db.ExecContext(ctx, q, a.ID); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Fatalf("%s: err = %v, want it refused as append-only", q, err)
		}
	}
	if cur, err := s.ConsentText(ctx, a.ID, 0); err != nil || cur.Version != 2 || cur.Body != "I agree, version two." {
		t.Fatalf("after the refused statements: %+v, %v", cur, err)
	}
	// A body changed anyway, by someone who can drop the guard, no longer matches its
	// stored hash: it is refused, not returned.
	withoutGuard(t, db, textGuard, `UPDATE consent_texts SET body = 'I agree to anything.' WHERE account_id = $1 AND version = 1`, a.ID)
	got, err := s.ConsentText(ctx, a.ID, 1)
	wantErr(t, "ConsentText(altered)", err, tidings.ErrConsentTextAltered)
	if got.Body != "" {
		t.Fatalf("an altered text was returned: %q", got.Body)
	}
	if cur, err := s.ConsentText(ctx, a.ID, 0); err != nil || cur.Version != 2 {
		t.Fatalf("the unaltered current text: %+v, %v", cur, err)
	}
	// A confirmation does not record a text altered since the request; its link stays
	// unused.
	l := mustList(t, s, a.ID)
	req := request("altered@example.com", []int64{l.ID}, tidings.LedgerRequested, "tok-altered")
	req.Text = &t2
	res, err := s.RequestSubscription(ctx, a.ID, req)
	noErr(t, "RequestSubscription", err)
	withoutGuard(t, db, textGuard, `UPDATE consent_texts SET body = 'I agree to anything.' WHERE account_id = $1 AND version = 2`, a.ID)
	_, err = s.ConfirmSubscription(ctx, tokenHash("tok-altered"), tidings.Evidence{}, false)
	wantErr(t, "ConfirmSubscription(altered text)", err, tidings.ErrConsentTextAltered)
	if subs, _ := s.Subscriptions(ctx, a.ID, res.Subscriber.ID); len(subs) != 1 || subs[0].Status != tidings.SubUnconfirmed {
		t.Fatalf("after a refused confirmation: %+v", subs)
	}
	// The guard is back, and the account's deletion takes its texts along.
	if _, err := db.ExecContext(ctx, `UPDATE consent_texts SET body = 'x' WHERE account_id = $1`, b.ID); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Fatalf("changing a text after the guard was put back: %v", err)
	}
	noErr(t, "DeleteAccount", s.DeleteAccount(ctx, b.ID))
	var n int
	noErr(t, "count", db.QueryRowContext(ctx, `SELECT COUNT(*) FROM consent_texts WHERE account_id = $1`, b.ID).Scan(&n))
	if n != 0 {
		t.Fatalf("%d consent texts left after the account's deletion", n)
	}
}

// A guard is a trigger that keeps a table's rows unchanged.
type guard struct{ table, trigger string }

var (
	textGuard     = guard{"consent_texts", "consent_texts_append_only_update"}     // migration 33
	evidenceGuard = guard{"shared_evidence", "shared_evidence_append_only_update"} // migration 35
)

// withoutGuard runs q with the guard's trigger dropped, as someone with full access to
// the database could, and then puts the trigger back as it was: the suite's store is
// shared.
func withoutGuard(t *testing.T, db *sql.DB, g guard, q string, args ...any) {
	t.Helper()
	var def string
	drop := "DROP TRIGGER " + g.trigger
	if err := db.QueryRowContext(ctx, `SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = $1`, g.trigger).Scan(&def); err != nil {
		// Not SQLite: PostgreSQL.
		if err := db.QueryRowContext(ctx, `SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgname = $1 AND tgrelid = $2::regclass`, g.trigger, g.table).Scan(&def); err != nil {
			t.Fatalf("reading the guard %s: %v", g.trigger, err)
		}
		drop += " ON " + g.table
	}
	for _, step := range []struct {
		q    string
		args []any
	}{{drop, nil}, {q, args}, {def, nil}} {
		if _, err := db.ExecContext(ctx, step.q, step.args...); err != nil {
			t.Fatalf("%s: %v", step.q, err)
		}
	}
}

func testDoubleOptIn(t *testing.T, s tidings.Store) {
	a := mustAccount(t, s)
	l := mustList(t, s, a.ID)
	text, _ := s.PublishConsentText(ctx, a.ID, "I agree.")
	req := request("doi@example.com", []int64{l.ID}, tidings.LedgerRequested, "tok-doi")
	req.Text = &text
	res, err := s.RequestSubscription(ctx, a.ID, req)
	noErr(t, "RequestSubscription", err)
	subs, _ := s.Subscriptions(ctx, a.ID, res.Subscriber.ID)
	if len(subs) != 1 || subs[0].Status != tidings.SubUnconfirmed || res.LedgerSeq != 1 {
		t.Fatalf("after request: %+v seq %d", subs, res.LedgerSeq)
	}
	noErr(t, "AttachProof", s.AttachProof(ctx, a.ID, res.Subscriber.ID, res.LedgerSeq, "confirmation_request", []byte("the mail")))
	_, err = s.ConfirmSubscription(ctx, tokenHash("wrong"), tidings.Evidence{}, false)
	wantErr(t, "ConfirmSubscription(wrong token)", err, tidings.ErrNotFound)
	_, err = s.PendingRequest(ctx, tokenHash("wrong"))
	wantErr(t, "PendingRequest(wrong token)", err, tidings.ErrNotFound)
	// Reading the request (a confirm page) changes nothing: it is still there to confirm.
	for range 2 {
		p, err := s.PendingRequest(ctx, tokenHash("tok-doi"))
		noErr(t, "PendingRequest", err)
		if len(p.Lists) != 1 || p.Lists[0] != l.ID || p.Changes == nil || p.Changes.Name != "N" || p.Changes.TrackingConsent {
			t.Fatalf("PendingRequest = %+v", p)
		}
	}
	c, err := s.ConfirmSubscription(ctx, tokenHash("tok-doi"), tidings.Evidence{IP: "203.0.113.9"}, false)
	noErr(t, "ConfirmSubscription", err)
	if c.AccountID != a.ID || c.Subscriber.ID != res.Subscriber.ID || len(c.Lists) != 1 || c.Text.Version != text.Version || c.LedgerSeq != 2 {
		t.Fatalf("confirmation %+v", c)
	}
	subs, _ = s.Subscriptions(ctx, a.ID, res.Subscriber.ID)
	if subs[0].Status != tidings.SubConfirmed || subs[0].ConfirmedAt == nil {
		t.Fatalf("after confirm: %+v", subs)
	}
	_, err = s.ConfirmSubscription(ctx, tokenHash("tok-doi"), tidings.Evidence{}, false)
	wantErr(t, "ConfirmSubscription(used token)", err, tidings.ErrNotFound)
	_, err = s.PendingRequest(ctx, tokenHash("tok-doi"))
	wantErr(t, "PendingRequest(used token)", err, tidings.ErrNotFound)

	// Asking again while confirmed keeps the confirmation.
	again := request("doi@example.com", []int64{l.ID}, tidings.LedgerRequested, "tok-doi-2")
	again.Text, again.TrackingConsent = &text, true
	_, err = s.RequestSubscription(ctx, a.ID, again)
	noErr(t, "RequestSubscription(again)", err)
	if p, err := s.PendingRequest(ctx, tokenHash("tok-doi-2")); err != nil || p.Changes == nil || !p.Changes.TrackingConsent {
		t.Fatalf("PendingRequest of a request asking for tracking consent = %+v, %v", p, err)
	}
	subs, _ = s.Subscriptions(ctx, a.ID, res.Subscriber.ID)
	if subs[0].Status != tidings.SubConfirmed {
		t.Fatal("a repeated request downgraded a confirmed subscription")
	}

	entries, err := s.LedgerEntries(ctx, a.ID, 0, 100)
	noErr(t, "LedgerEntries", err)
	if len(entries) != 3 || entries[0].Kind != tidings.LedgerRequested || entries[1].Kind != tidings.LedgerConfirmed ||
		!bytes.Equal(entries[1].PrevHash, entries[0].Hash) || !bytes.Equal(entries[0].Hash, entries[0].ComputeHash()) ||
		entries[0].TextVersion != text.Version || !bytes.Equal(entries[0].TextSHA256, text.SHA256) {
		t.Fatalf("ledger %+v", entries)
	}
	ev, err := s.OpenEvidence(ctx, entries[1])
	noErr(t, "OpenEvidence", err)
	if ev.IP != "203.0.113.9" || ev.Time.IsZero() {
		t.Fatalf("evidence %+v", ev)
	}
	seq, head, err := s.LedgerHead(ctx, a.ID)
	noErr(t, "LedgerHead", err)
	if seq != 3 || !bytes.Equal(head, entries[2].Hash) {
		t.Fatalf("head %d %x", seq, head)
	}
	proofs, err := s.Proofs(ctx, a.ID, res.Subscriber.ID)
	noErr(t, "Proofs", err)
	if len(proofs) != 1 || string(proofs[0].Data) != "the mail" || proofs[0].LedgerSeq != 1 {
		t.Fatalf("proofs %+v", proofs)
	}
}

func testDeclineAndExpiry(t *testing.T, s tidings.Store) {
	a := mustAccount(t, s)
	l := mustList(t, s, a.ID)
	_, err := s.RequestSubscription(ctx, a.ID, request("decline@example.com", []int64{l.ID}, tidings.LedgerRequested, "tok-decline"))
	noErr(t, "RequestSubscription", err)
	noErr(t, "DeclineSubscription", s.DeclineSubscription(ctx, tokenHash("tok-decline"), tidings.Evidence{}))
	if subs, _ := s.ListSubscribers(ctx, a.ID, tidings.SubscriberFilter{}); len(subs) != 0 {
		t.Fatalf("decline left %+v", subs)
	}
	wantErr(t, "DeclineSubscription(again)", s.DeclineSubscription(ctx, tokenHash("tok-decline"), tidings.Evidence{}), tidings.ErrNotFound)
	// "This wasn't me": nothing of the request's evidence stays readable, and the person,
	// known nowhere else, is gone; the ledger keeps its entries without evidence.
	if recs, err := s.PersonData(ctx, tidings.MustParseAddress("decline@example.com")); err != nil || len(recs) != 0 {
		t.Fatalf("after the decline the person is still held: %d records, %v", len(recs), err)
	}
	entries, err := s.LedgerEntries(ctx, a.ID, 0, 100)
	noErr(t, "LedgerEntries", err)
	if len(entries) < 2 {
		t.Fatalf("ledger after a request and its decline: %d entries", len(entries))
	}
	for _, e := range entries {
		if e.EvidenceSealed != nil {
			t.Fatalf("ledger entry %d (%s) still holds evidence of a declined request", e.Seq, e.Kind)
		}
	}

	// An expired link no longer confirms.
	late := request("late@example.com", []int64{l.ID}, tidings.LedgerRequested, "tok-late")
	late.ExpiresAt = time.Now().Add(-time.Minute)
	_, err = s.RequestSubscription(ctx, a.ID, late)
	noErr(t, "RequestSubscription(late)", err)
	_, err = s.PendingRequest(ctx, tokenHash("tok-late"))
	wantErr(t, "PendingRequest(expired)", err, tidings.ErrNotFound)
	_, err = s.ConfirmSubscription(ctx, tokenHash("tok-late"), tidings.Evidence{}, false)
	wantErr(t, "ConfirmSubscription(expired)", err, tidings.ErrNotFound)
	// Nor does it decline: a link is valid for both its buttons or for neither. The
	// request is left for the sweep, which records it as expired.
	wantErr(t, "DeclineSubscription(expired)", s.DeclineSubscription(ctx, tokenHash("tok-late"), tidings.Evidence{}), tidings.ErrNotFound)
	if subs, _ := s.ListSubscribers(ctx, a.ID, tidings.SubscriberFilter{Email: tidings.MustParseAddress("late@example.com")}); len(subs) != 1 {
		t.Fatalf("declining an expired request left %d subscribers, want the request left for the sweep", len(subs))
	}

	// Expiry deletes old pending requests and what they created, and keeps confirmed people.
	keep := mustSubscriber(t, s, a.ID, "keep@example.com", l.ID)
	n, err := s.ExpireUnconfirmed(ctx, 0, time.Now().Add(time.Hour), true)
	noErr(t, "ExpireUnconfirmed(dry run)", err)
	if n < 1 {
		t.Fatalf("dry run found %d", n)
	}
	if subs, _ := s.ListSubscribers(ctx, a.ID, tidings.SubscriberFilter{}); len(subs) != 2 {
		t.Fatalf("a dry run deleted something: %d subscribers", len(subs))
	}
	_, err = s.ExpireUnconfirmed(ctx, 0, time.Now().Add(time.Hour), false)
	noErr(t, "ExpireUnconfirmed", err)
	subs, _ := s.ListSubscribers(ctx, a.ID, tidings.SubscriberFilter{})
	if len(subs) != 1 || subs[0].ID != keep.ID {
		t.Fatalf("after expiry: %+v", subs)
	}
	entries, err = s.LedgerEntries(ctx, a.ID, 0, 100)
	noErr(t, "LedgerEntries", err)
	kinds := map[tidings.LedgerKind]int{}
	for _, e := range entries {
		kinds[e.Kind]++
	}
	if kinds[tidings.LedgerDeclined] != 1 || kinds[tidings.LedgerExpired] != 1 {
		t.Fatalf("ledger kinds %v: want one decline (the valid link's) and one expiry (the expired request's)", kinds)
	}
	if n, _ := s.ExpireUnconfirmed(ctx, 0, time.Now().Add(time.Hour), true); n != 0 {
		t.Fatalf("%d pending left after expiry", n)
	}
}

func testUnsubscribeAndSuppression(t *testing.T, s tidings.Store) {
	a, b := mustAccount(t, s), mustAccount(t, s)
	l1, l2 := mustList(t, s, a.ID), mustList(t, s, a.ID)
	sub := mustSubscriber(t, s, a.ID, "leaver@example.com", l1.ID, l2.ID)
	addr := sub.Email
	noErr(t, "Unsubscribe(one list)", errOf(s.Unsubscribe(ctx, a.ID, sub.ID, []int64{l1.ID}, tidings.SourceMail, tidings.Evidence{})))
	if held, _, _ := s.Suppressed(ctx, a.ID, addr); held {
		t.Fatal("suppressed while still on another list")
	}
	noErr(t, "Unsubscribe(all)", errOf(s.Unsubscribe(ctx, a.ID, sub.ID, nil, tidings.SourceMail, tidings.Evidence{})))
	held, reason, err := s.Suppressed(ctx, a.ID, addr)
	noErr(t, "Suppressed", err)
	if !held || reason != tidings.SuppressUnsubscribed {
		t.Fatalf("after unsubscribing from all: %v %s", held, reason)
	}
	if held, _, _ := s.Suppressed(ctx, b.ID, addr); held {
		t.Fatal("account A's suppression holds in account B")
	}
	wantErr(t, "Unsubscribe(b, a's subscriber)", errOf(s.Unsubscribe(ctx, b.ID, sub.ID, nil, tidings.SourceMail, tidings.Evidence{})), tidings.ErrNotFound)
	_, err = s.RequestSubscription(ctx, a.ID, tidings.SubscriptionRequest{Email: addr, Lists: []int64{l1.ID}, Kind: tidings.LedgerImported,
		Source: tidings.SourceAPI, RespectSuppression: true})
	wantErr(t, "RequestSubscription(suppressed, controller add)", err, tidings.ErrSuppressed)

	// Instance-wide suppression (complaints) holds everywhere.
	other := tidings.MustParseAddress("complainer@example.com")
	noErr(t, "AddSuppression(instance)", s.AddSuppression(ctx, tidings.InstanceWide, other, tidings.SuppressComplaint))
	if held, reason, _ := s.Suppressed(ctx, b.ID, other); !held || reason != tidings.SuppressComplaint {
		t.Fatal("instance-wide suppression not seen by account B")
	}
	noErr(t, "AddSuppression(twice)", s.AddSuppression(ctx, tidings.InstanceWide, other, tidings.SuppressComplaint))

	// The person's own confirmed request lifts the account's suppression.
	lb := l1
	_, err = s.RequestSubscription(ctx, a.ID, request(addr.String(), []int64{lb.ID}, tidings.LedgerRequested, "tok-back"))
	noErr(t, "RequestSubscription(own request while suppressed)", err)
	_, err = s.ConfirmSubscription(ctx, tokenHash("tok-back"), tidings.Evidence{}, false)
	noErr(t, "ConfirmSubscription(back)", err)
	if held, _, _ := s.Suppressed(ctx, a.ID, addr); held {
		t.Fatal("a confirmed re-subscription did not lift the suppression")
	}
	noErr(t, "AddSuppression", s.AddSuppression(ctx, a.ID, addr, tidings.SuppressObjection))
	noErr(t, "RemoveSuppression", s.RemoveSuppression(ctx, a.ID, addr))
	wantErr(t, "RemoveSuppression(missing)", s.RemoveSuppression(ctx, a.ID, addr), tidings.ErrNotFound)
}

func testConsentIsolation(t *testing.T, s tidings.Store) {
	a, b := mustAccount(t, s), mustAccount(t, s)
	la, lb := mustList(t, s, a.ID), mustList(t, s, b.ID)
	res, err := s.RequestSubscription(ctx, a.ID, request("iso@example.com", []int64{la.ID}, tidings.LedgerSingleOptIn, ""))
	noErr(t, "RequestSubscription", err)
	// B cannot subscribe anyone to A's list, and nothing is half-written.
	_, err = s.RequestSubscription(ctx, b.ID, request("intruder@example.com", []int64{lb.ID, la.ID}, tidings.LedgerSingleOptIn, ""))
	wantValidation(t, "RequestSubscription(b, onto a's list)", err, "lists")
	if subs, _ := s.ListSubscribers(ctx, b.ID, tidings.SubscriberFilter{}); len(subs) != 0 {
		t.Fatal("a failed request left a subscriber in B")
	}
	if seq, _, err := s.LedgerHead(ctx, b.ID); err == nil && seq != 0 {
		t.Fatalf("a failed request left %d ledger entries in B", seq)
	}
	wantErr(t, "AttachProof(b, a's subscriber)", s.AttachProof(ctx, b.ID, res.Subscriber.ID, 1, "x", []byte("x")), tidings.ErrNotFound)
	proofs, err := s.Proofs(ctx, b.ID, res.Subscriber.ID)
	noErr(t, "Proofs(b)", err)
	if len(proofs) != 0 {
		t.Fatal("B reads A's proofs")
	}
	entries, _ := s.LedgerEntries(ctx, b.ID, 0, 100)
	if len(entries) != 0 {
		t.Fatalf("B reads A's ledger: %+v", entries)
	}
}

func testDomains(t *testing.T, s tidings.Store) {
	a, b := mustAccount(t, s), mustAccount(t, s)
	k := tidings.DKIMKey{Selector: "s1", Algorithm: "ed25519", PrivateKey: []byte("-----BEGIN PRIVATE KEY-----"), PublicKey: []byte{1, 2, 3}}
	noErr(t, "AddDKIMKey", s.AddDKIMKey(ctx, a.ID, "News.Example.COM", &k))
	k2 := tidings.DKIMKey{Selector: "s2", Algorithm: "rsa", PrivateKey: []byte("rsa key"), PublicKey: []byte{4}}
	noErr(t, "AddDKIMKey(second)", s.AddDKIMKey(ctx, a.ID, "news.example.com", &k2))
	wantErr(t, "AddDKIMKey(same selector)", s.AddDKIMKey(ctx, a.ID, "news.example.com", &tidings.DKIMKey{Selector: "s1", Algorithm: "rsa", PrivateKey: []byte("x"), PublicKey: []byte{1}}), tidings.ErrConflict)
	wantValidation(t, "AddDKIMKey(bad domain)", s.AddDKIMKey(ctx, a.ID, "not a domain", &tidings.DKIMKey{Selector: "x", Algorithm: "rsa"}), "domain")
	wantValidation(t, "AddDKIMKey(bad selector)", s.AddDKIMKey(ctx, a.ID, "x.example", &tidings.DKIMKey{Selector: "a b", Algorithm: "rsa"}), "selector")
	ds, err := s.SendingDomains(ctx, a.ID)
	noErr(t, "SendingDomains", err)
	if len(ds) != 1 || ds[0].Domain != "news.example.com" || len(ds[0].Keys) != 2 || string(ds[0].Keys[0].PrivateKey) != "-----BEGIN PRIVATE KEY-----" {
		t.Fatalf("domains %+v", ds)
	}
	wantErr(t, "RetireDKIMKey(b, a's key)", s.RetireDKIMKey(ctx, b.ID, k.ID), tidings.ErrNotFound)
	noErr(t, "RetireDKIMKey", s.RetireDKIMKey(ctx, a.ID, k.ID))
	ds, _ = s.SendingDomains(ctx, a.ID)
	if ds[0].Keys[0].RetiredAt == nil || ds[0].Keys[1].RetiredAt != nil {
		t.Fatalf("retired key should stay, marked: %+v", ds[0].Keys)
	}
	if ds, _ := s.SendingDomains(ctx, b.ID); len(ds) != 0 {
		t.Fatalf("B sees A's domains: %+v", ds)
	}
	// A domain belongs to one account: B cannot add A's, in any spelling, and is not
	// told whose it is.
	noErr(t, "AddDKIMKey(IDN)", s.AddDKIMKey(ctx, a.ID, "Bücher.example", &tidings.DKIMKey{Selector: "s1", Algorithm: "rsa", PrivateKey: []byte("x"), PublicKey: []byte{1}}))
	for _, d := range []string{"news.example.com", " NEWS.Example.com ", "xn--bcher-kva.example", "BÜCHER.example"} {
		err := s.AddDKIMKey(ctx, b.ID, d, &tidings.DKIMKey{Selector: "b1", Algorithm: "rsa", PrivateKey: []byte("b's key"), PublicKey: []byte{9}})
		wantValidation(t, "AddDKIMKey(b, a's domain "+d+")", err, "domain")
		if v, _ := tidings.AsValidation(err); v.Code != "domain_taken" || strings.Contains(v.Message, fmt.Sprint(a.ID)) {
			t.Fatalf("B adding %q: %+v", d, v)
		}
	}
	if ds, _ := s.SendingDomains(ctx, b.ID); len(ds) != 0 {
		t.Fatalf("B holds A's domain: %+v", ds)
	}
	ds, _ = s.SendingDomains(ctx, a.ID)
	if len(ds) != 2 || len(ds[0].Keys) != 2 || len(ds[1].Keys) != 1 || ds[1].Domain != "xn--bcher-kva.example" {
		t.Fatalf("A's domains after B's attempts: %+v", ds)
	}
	noErr(t, "AddDKIMKey(b, own)", s.AddDKIMKey(ctx, b.ID, "b.example", &tidings.DKIMKey{Selector: "b1", Algorithm: "rsa", PrivateKey: []byte("b's key"), PublicKey: []byte{9}}))
	wantValidation(t, "AddDKIMKey(a, b's domain)", s.AddDKIMKey(ctx, a.ID, "b.example", &tidings.DKIMKey{Selector: "a9", Algorithm: "rsa", PrivateKey: []byte("x"), PublicKey: []byte{1}}), "domain")
	wantErr(t, "AddDKIMKey(missing account)", s.AddDKIMKey(ctx, 999999, "x.example", &tidings.DKIMKey{Selector: "x", Algorithm: "rsa", PrivateKey: []byte("x"), PublicKey: []byte{1}}), tidings.ErrNotFound)
}

// testUnconfirmedRequestKeepsSubscriber: a double opt-in request for an address that is
// already a subscriber changes nothing of theirs until the link is used — anyone can type
// the address into a form. The choice made in the request applies at confirmation.
func testUnconfirmedRequestKeepsSubscriber(t *testing.T, s tidings.Store) {
	a := mustAccount(t, s)
	l1, l2 := mustList(t, s, a.ID), mustList(t, s, a.ID)
	req := request("known@example.com", []int64{l1.ID}, tidings.LedgerSingleOptIn, "")
	req.Name, req.TrackingConsent = "Real Name", false
	first, err := s.RequestSubscription(ctx, a.ID, req)
	noErr(t, "RequestSubscription(single opt-in)", err)

	// A stranger asks for another list in her name, consenting to tracking for her.
	req = request("known@example.com", []int64{l2.ID}, tidings.LedgerRequested, "tok-stranger")
	req.Name, req.TrackingConsent = "Stranger", true
	_, err = s.RequestSubscription(ctx, a.ID, req)
	noErr(t, "RequestSubscription(double opt-in)", err)
	got, err := s.GetSubscriber(ctx, a.ID, first.Subscriber.ID)
	noErr(t, "GetSubscriber", err)
	if got.TrackingConsent || got.Name != "Real Name" {
		t.Fatalf("an unconfirmed request changed the subscriber: tracking %v, name %q", got.TrackingConsent, got.Name)
	}
	// "This wasn't me": still nothing changed.
	noErr(t, "DeclineSubscription", s.DeclineSubscription(ctx, tokenHash("tok-stranger"), tidings.Evidence{}))
	got, _ = s.GetSubscriber(ctx, a.ID, first.Subscriber.ID)
	if got.TrackingConsent || got.Name != "Real Name" {
		t.Fatalf("after decline: tracking %v, name %q", got.TrackingConsent, got.Name)
	}

	// Her own request, confirmed: her choices apply then.
	req = request("known@example.com", []int64{l2.ID}, tidings.LedgerRequested, "tok-own")
	req.Name, req.TrackingConsent = "New Name", true
	_, err = s.RequestSubscription(ctx, a.ID, req)
	noErr(t, "RequestSubscription(own)", err)
	got, _ = s.GetSubscriber(ctx, a.ID, first.Subscriber.ID)
	if got.TrackingConsent || got.Name != "Real Name" {
		t.Fatalf("before confirmation: tracking %v, name %q", got.TrackingConsent, got.Name)
	}
	c, err := s.ConfirmSubscription(ctx, tokenHash("tok-own"), tidings.Evidence{}, false)
	noErr(t, "ConfirmSubscription", err)
	if !c.Subscriber.TrackingConsent || c.Subscriber.Name != "New Name" {
		t.Fatalf("after confirmation: tracking %v, name %q", c.Subscriber.TrackingConsent, c.Subscriber.Name)
	}
}

// testUnconfirmedRequestKeepsUnsubscription: someone's unsubscription from a list stays
// on record through a double opt-in request for it that is declined or expires; only
// the confirmation subscribes them again.
func testUnconfirmedRequestKeepsUnsubscription(t *testing.T, s tidings.Store) {
	a := mustAccount(t, s)
	l := mustList(t, s, a.ID)
	first, err := s.RequestSubscription(ctx, a.ID, request("left@example.com", []int64{l.ID}, tidings.LedgerSingleOptIn, ""))
	noErr(t, "RequestSubscription(single opt-in)", err)
	id := first.Subscriber.ID
	noErr(t, "Unsubscribe", errOf(s.Unsubscribe(ctx, a.ID, id, []int64{l.ID}, tidings.SourceMail, tidings.Evidence{})))
	check := func(when string) {
		t.Helper()
		subs, err := s.Subscriptions(ctx, a.ID, id)
		noErr(t, "Subscriptions", err)
		if len(subs) != 1 || subs[0].Status != tidings.SubUnsubscribed || subs[0].UnsubscribedAt == nil {
			t.Fatalf("%s: subscriptions %+v", when, subs)
		}
	}
	_, err = s.RequestSubscription(ctx, a.ID, request("left@example.com", []int64{l.ID}, tidings.LedgerRequested, "tok-1"))
	noErr(t, "RequestSubscription(double opt-in)", err)
	check("after a request")
	noErr(t, "DeclineSubscription", s.DeclineSubscription(ctx, tokenHash("tok-1"), tidings.Evidence{}))
	check("after decline")
	_, err = s.RequestSubscription(ctx, a.ID, request("left@example.com", []int64{l.ID}, tidings.LedgerRequested, "tok-2"))
	noErr(t, "RequestSubscription(again)", err)
	n, err := s.ExpireUnconfirmed(ctx, a.ID, time.Now().Add(time.Hour), false)
	noErr(t, "ExpireUnconfirmed", err)
	if n != 1 {
		t.Fatalf("expired %d requests", n)
	}
	check("after expiry")
	_, err = s.RequestSubscription(ctx, a.ID, request("left@example.com", []int64{l.ID}, tidings.LedgerRequested, "tok-3"))
	noErr(t, "RequestSubscription(own)", err)
	c, err := s.ConfirmSubscription(ctx, tokenHash("tok-3"), tidings.Evidence{}, false)
	noErr(t, "ConfirmSubscription", err)
	subs, _ := s.Subscriptions(ctx, a.ID, id)
	if len(c.Lists) != 1 || len(subs) != 1 || subs[0].Status != tidings.SubConfirmed || subs[0].UnsubscribedAt != nil {
		t.Fatalf("after confirmation: %+v, lists %v", subs, c.Lists)
	}
}

// testConfirmOnce: a confirmation link used twice at the same moment confirms once — one
// ledger entry, one success — and cannot also be declined.
func testConfirmOnce(t *testing.T, s tidings.Store) {
	a := mustAccount(t, s)
	l := mustList(t, s, a.ID)
	for round := range 5 {
		tok := fmt.Sprintf("tok-race-%d", round)
		_, err := s.RequestSubscription(ctx, a.ID, request(fmt.Sprintf("race%d@example.com", round), []int64{l.ID}, tidings.LedgerRequested, tok))
		noErr(t, "RequestSubscription", err)
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := 0
		for i := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var err error
				if i%3 == 2 {
					err = s.DeclineSubscription(ctx, tokenHash(tok), tidings.Evidence{})
				} else {
					_, err = s.ConfirmSubscription(ctx, tokenHash(tok), tidings.Evidence{}, false)
				}
				if err == nil {
					mu.Lock()
					ok++
					mu.Unlock()
				} else if !errors.Is(err, tidings.ErrNotFound) {
					t.Errorf("use of the link: %v", err)
				}
			}()
		}
		wg.Wait()
		if ok != 1 {
			t.Fatalf("round %d: the link worked %d times", round, ok)
		}
	}
	entries, err := s.LedgerEntries(ctx, a.ID, 0, 100)
	noErr(t, "LedgerEntries", err)
	if len(entries) != 10 {
		t.Fatalf("%d ledger entries for 5 requests used once each", len(entries))
	}
}

// testTwoRequestsOneList: someone who asked twice for a list, and declines (or lets
// expire) one request, can still confirm the other: the subscription it asks for stays.
func testTwoRequestsOneList(t *testing.T, s tidings.Store) {
	a := mustAccount(t, s)
	l := mustList(t, s, a.ID)
	_, err := s.RequestSubscription(ctx, a.ID, request("twice@example.com", []int64{l.ID}, tidings.LedgerRequested, "tok-first"))
	noErr(t, "RequestSubscription(first)", err)
	res, err := s.RequestSubscription(ctx, a.ID, request("twice@example.com", []int64{l.ID}, tidings.LedgerRequested, "tok-second"))
	noErr(t, "RequestSubscription(second)", err)
	noErr(t, "DeclineSubscription(first)", s.DeclineSubscription(ctx, tokenHash("tok-first"), tidings.Evidence{}))
	subs, _ := s.Subscriptions(ctx, a.ID, res.Subscriber.ID)
	if len(subs) != 1 || subs[0].Status != tidings.SubUnconfirmed {
		t.Fatalf("after declining one of two requests: %+v", subs)
	}
	c, err := s.ConfirmSubscription(ctx, tokenHash("tok-second"), tidings.Evidence{}, false)
	noErr(t, "ConfirmSubscription(second)", err)
	subs, _ = s.Subscriptions(ctx, a.ID, res.Subscriber.ID)
	if len(c.Lists) != 1 || len(subs) != 1 || subs[0].Status != tidings.SubConfirmed {
		t.Fatalf("after confirming the other: lists %v, subscriptions %+v", c.Lists, subs)
	}
}

// testConcurrentSignUps: the same address signing up several times at once (a double
// click) is one subscriber, and every request succeeds.
func testConcurrentSignUps(t *testing.T, s tidings.Store) {
	a, b := mustAccount(t, s), mustAccount(t, s)
	l, lb := mustList(t, s, a.ID), mustList(t, s, b.ID)
	for round := range 3 { // known to the instance through another account
		_, err := s.RequestSubscription(ctx, b.ID, request(fmt.Sprintf("double%d@example.com", round), []int64{lb.ID}, tidings.LedgerSingleOptIn, ""))
		noErr(t, "RequestSubscription(b)", err)
	}
	for round := range 3 {
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.RequestSubscription(ctx, a.ID, request(fmt.Sprintf("double%d@example.com", round), []int64{l.ID},
					tidings.LedgerRequested, fmt.Sprintf("tok-double-%d-%d", round, i)))
				if err != nil {
					t.Errorf("sign-up %d: %v", i, err)
				}
			}()
		}
		wg.Wait()
	}
	subs, err := s.ListSubscribers(ctx, a.ID, tidings.SubscriberFilter{})
	noErr(t, "ListSubscribers", err)
	if len(subs) != 3 {
		t.Fatalf("%d subscribers for 3 addresses", len(subs))
	}
}

// testUnsubscribeLists: one call withdraws the lists given (every list for none), says
// how many subscriptions it withdrew, and writes a ledger entry for each.
func testUnsubscribeLists(t *testing.T, s tidings.Store) {
	a, b := mustAccount(t, s), mustAccount(t, s)
	l1, l2, l3, lb := mustList(t, s, a.ID), mustList(t, s, a.ID), mustList(t, s, a.ID), mustList(t, s, b.ID)
	sub := mustSubscriber(t, s, a.ID, "lists@example.com", l1.ID, l2.ID, l3.ID)
	unsub := func(what string, lists []int64, want int) {
		t.Helper()
		n, err := s.Unsubscribe(ctx, a.ID, sub.ID, lists, tidings.SourceMail, tidings.Evidence{})
		noErr(t, what, err)
		if n != want {
			t.Fatalf("%s: withdrew %d, want %d", what, n, want)
		}
	}
	withdrawn := func() []int64 {
		t.Helper()
		entries, err := s.LedgerEntries(ctx, a.ID, 0, 1000)
		noErr(t, "LedgerEntries", err)
		var lists []int64
		for _, e := range entries {
			if e.Kind == tidings.LedgerUnsubscribed {
				lists = append(lists, e.ListID)
			}
		}
		slices.Sort(lists)
		return lists
	}
	unsub("Unsubscribe(l1, l2)", []int64{l1.ID, l2.ID}, 2)
	if got := withdrawn(); !slices.Equal(got, []int64{l1.ID, l2.ID}) {
		t.Fatalf("ledger withdrawals %v, want lists %d and %d", got, l1.ID, l2.ID)
	}
	subs, err := s.Subscriptions(ctx, a.ID, sub.ID)
	noErr(t, "Subscriptions", err)
	for _, x := range subs {
		want := tidings.SubUnsubscribed
		if x.ListID == l3.ID {
			want = tidings.SubConfirmed
		}
		if x.Status != want {
			t.Fatalf("list %d: %s, want %s", x.ListID, x.Status, want)
		}
	}
	if held, _, _ := s.Suppressed(ctx, a.ID, sub.Email); held {
		t.Fatal("suppressed while still on list 3")
	}
	unsub("Unsubscribe(l1, l2) again", []int64{l1.ID, l2.ID}, 0)
	unsub("Unsubscribe(another account's list)", []int64{lb.ID}, 0)
	unsub("Unsubscribe(every list)", nil, 1)
	unsub("Unsubscribe(every list) again", nil, 0)
	if got := withdrawn(); len(got) != 3 {
		t.Fatalf("ledger withdrawals %v, want one for each of the 3 lists", got)
	}
	if held, reason, _ := s.Suppressed(ctx, a.ID, sub.Email); !held || reason != tidings.SuppressUnsubscribed {
		t.Fatalf("after leaving every list: suppressed %v (%s)", held, reason)
	}
}

// testConcurrentUnsubscribes: simultaneous unsubscribes of one person (one-click POST and
// mailto, a double click) withdraw each subscription once: one ledger entry per list, and
// one call reports the withdrawals, so the campaign counts one unsubscription.
func testConcurrentUnsubscribes(t *testing.T, s tidings.Store) {
	a := mustAccount(t, s)
	lists := []int64{mustList(t, s, a.ID).ID, mustList(t, s, a.ID).ID, mustList(t, s, a.ID).ID}
	const rounds, callers = 5, 8
	for round := range rounds {
		sub := mustSubscriber(t, s, a.ID, fmt.Sprintf("racer%d@example.com", round), lists...)
		var wg sync.WaitGroup
		counts := make([]int, callers)
		for i := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var err error
				counts[i], err = s.Unsubscribe(ctx, a.ID, sub.ID, lists, tidings.SourceMail, tidings.Evidence{})
				if err != nil {
					t.Errorf("round %d, call %d: %v", round, i, err)
				}
			}()
		}
		wg.Wait()
		total, reporting := 0, 0
		for _, n := range counts {
			total += n
			if n > 0 {
				reporting++
			}
		}
		if total != len(lists) || reporting != 1 {
			t.Fatalf("round %d: %d calls withdrew %v subscriptions in all; want %d withdrawn by one call", round, callers, counts, len(lists))
		}
	}
	entries, err := s.LedgerEntries(ctx, a.ID, 0, 10000)
	noErr(t, "LedgerEntries", err)
	n := 0
	for _, e := range entries {
		if e.Kind == tidings.LedgerUnsubscribed {
			n++
		}
	}
	if n != rounds*len(lists) {
		t.Fatalf("%d withdrawals in the ledger for %d subscriptions", n, rounds*len(lists))
	}
}

// testUnsubscribeOneListKeepsOtherRequest: leaving one list does not strand a pending
// request for another — its link still works, and unconfirmed, it still expires.
func testUnsubscribeOneListKeepsOtherRequest(t *testing.T, s tidings.Store) {
	a := mustAccount(t, s)
	la, lb := mustList(t, s, a.ID), mustList(t, s, a.ID)
	res, err := s.RequestSubscription(ctx, a.ID, request("two@example.com", []int64{la.ID}, tidings.LedgerSingleOptIn, ""))
	noErr(t, "RequestSubscription(a)", err)
	id := res.Subscriber.ID
	_, err = s.RequestSubscription(ctx, a.ID, request("two@example.com", []int64{lb.ID}, tidings.LedgerRequested, "tok-b"))
	noErr(t, "RequestSubscription(b)", err)
	noErr(t, "Unsubscribe(a)", errOf(s.Unsubscribe(ctx, a.ID, id, []int64{la.ID}, tidings.SourceMail, tidings.Evidence{})))
	n, err := s.ExpireUnconfirmed(ctx, a.ID, time.Now().Add(time.Hour), true)
	noErr(t, "ExpireUnconfirmed(dry run)", err)
	if n != 1 {
		t.Fatalf("the request for list b is gone (%d pending): its unconfirmed subscription would never expire", n)
	}
	c, err := s.ConfirmSubscription(ctx, tokenHash("tok-b"), tidings.Evidence{}, false)
	noErr(t, "ConfirmSubscription(b)", err)
	if len(c.Lists) != 1 || c.Lists[0] != lb.ID {
		t.Fatalf("confirmed %v", c.Lists)
	}
}

// entryEvidence opens the evidence of the account's ledger entry seq.
func entryEvidence(t *testing.T, s tidings.Store, accountID, seq int64) tidings.Evidence {
	t.Helper()
	entries, err := s.LedgerEntries(ctx, accountID, seq-1, 1)
	noErr(t, "LedgerEntries", err)
	if len(entries) != 1 || entries[0].Seq != seq {
		t.Fatalf("ledger entry %d: %+v", seq, entries)
	}
	ev, err := s.OpenEvidence(ctx, entries[0])
	noErr(t, "OpenEvidence", err)
	return ev
}

// confirmationTrackingNotes returns the notes of a subscriber's tracking changes, each
// of which must be a confirmation's: from the mail link, with its IP (203.0.113.9).
func confirmationTrackingNotes(t *testing.T, s tidings.Store, accountID, subID int64) []string {
	t.Helper()
	hist, err := s.SubscriberLedger(ctx, accountID, subID, tidings.Page{})
	noErr(t, "SubscriberLedger", err)
	var notes []string
	for _, e := range hist {
		if e.Kind != tidings.LedgerTrackingChange {
			continue
		}
		ev, err := s.OpenEvidence(ctx, e)
		noErr(t, "OpenEvidence", err)
		if e.Source != tidings.SourceMail || ev.IP != "203.0.113.9" {
			t.Fatalf("tracking change %+v, evidence %+v; want the confirmation's, from the mail link", e, ev)
		}
		notes = append(notes, ev.Note)
	}
	return notes
}

// consentedThenAsked subscribes email to first with tracking consent (single opt-in),
// then asks them to confirm second with tracking consent too (double opt-in, token tok).
func consentedThenAsked(t *testing.T, s tidings.Store, accountID int64, email string, first, second int64, tok string) tidings.SubscriptionResult {
	t.Helper()
	req := request(email, []int64{first}, tidings.LedgerSingleOptIn, "")
	req.TrackingConsent = true
	res, err := s.RequestSubscription(ctx, accountID, req)
	noErr(t, "RequestSubscription(single opt-in, tracking)", err)
	req = request(email, []int64{second}, tidings.LedgerRequested, tok)
	req.TrackingConsent = true
	_, err = s.RequestSubscription(ctx, accountID, req)
	noErr(t, "RequestSubscription(double opt-in, tracking)", err)
	return res
}

// testTrackingConsentInLedger: consent to tracking given with a sign-up is in the
// ledger's evidence of that sign-up, as every other consent is. A double opt-in
// request, even a new person's, only asks for it: the person gives it, or not, at
// confirmation (testConfirmWithoutTracking).
func testTrackingConsentInLedger(t *testing.T, s tidings.Store) {
	a := mustAccount(t, s)
	l := mustList(t, s, a.ID)
	for i, step := range []struct {
		kind tidings.LedgerKind
		note string
		has  bool
	}{
		{tidings.LedgerSingleOptIn, "tracking consent given", true},
		{tidings.LedgerRequested, "tracking consent asked for", false},
	} {
		req := request(fmt.Sprintf("tracked%d@example.com", i), []int64{l.ID}, step.kind, fmt.Sprintf("tok-tracked-%d", i))
		req.TrackingConsent = true
		res, err := s.RequestSubscription(ctx, a.ID, req)
		noErr(t, "RequestSubscription", err)
		ev := entryEvidence(t, s, a.ID, res.LedgerSeq)
		if ev.Note != step.note || ev.IP != "198.51.100.1" {
			t.Fatalf("%s: evidence %+v", step.kind, ev)
		}
		if got, err := s.GetSubscriber(ctx, a.ID, res.Subscriber.ID); err != nil || got.TrackingConsent != step.has {
			t.Fatalf("%s: tracking consent %v (%v), want %v", step.kind, got.TrackingConsent, err, step.has)
		}
	}
}

// testConfirmationTracking: a confirmation gives the tracking consent its request asked
// for, with a tracking-change entry by the person, if the subscriber did not have it;
// a request without consent (an optional box left unticked, an import's or staff's
// request) does not withdraw an earlier consent. Either way the ledger verifies.
func testConfirmationTracking(t *testing.T, s tidings.Store) {
	a := mustAccount(t, s)
	l1, l2, l3 := mustList(t, s, a.ID), mustList(t, s, a.ID), mustList(t, s, a.ID)
	trackingNotes := func(subID int64) []string { return confirmationTrackingNotes(t, s, a.ID, subID) }
	confirm := func(email string, list int64, tok string, tracking bool) tidings.Subscriber {
		t.Helper()
		req := request(email, []int64{list}, tidings.LedgerRequested, tok)
		req.TrackingConsent = tracking
		_, err := s.RequestSubscription(ctx, a.ID, req)
		noErr(t, "RequestSubscription", err)
		c, err := s.ConfirmSubscription(ctx, tokenHash(tok), tidings.Evidence{IP: "203.0.113.9"}, false)
		noErr(t, "ConfirmSubscription", err)
		return c.Subscriber
	}

	// Consent given at sign-up stands through a confirmation that does not ask for it,
	// and one that asks again records nothing new.
	first, err := s.RequestSubscription(ctx, a.ID, func() tidings.SubscriptionRequest {
		r := request("kept@confirm-tracking.example", []int64{l1.ID}, tidings.LedgerSingleOptIn, "")
		r.TrackingConsent = true
		return r
	}())
	noErr(t, "RequestSubscription(single opt-in)", err)
	if sub := confirm("kept@confirm-tracking.example", l2.ID, "tok-ct-kept", false); !sub.TrackingConsent {
		t.Fatal("a confirmation without tracking consent withdrew an earlier one")
	}
	if sub := confirm("kept@confirm-tracking.example", l3.ID, "tok-ct-again", true); !sub.TrackingConsent {
		t.Fatal("consent lost")
	}
	if n := trackingNotes(first.Subscriber.ID); len(n) != 0 {
		t.Fatalf("tracking changes %q; the consent never changed", n)
	}

	// A known subscriber without consent confirms a request that asks for it: given now,
	// by the person, in the ledger.
	other, err := s.RequestSubscription(ctx, a.ID, request("given@confirm-tracking.example", []int64{l1.ID}, tidings.LedgerSingleOptIn, ""))
	noErr(t, "RequestSubscription(single opt-in)", err)
	if other.Subscriber.TrackingConsent {
		t.Fatal("consent without asking")
	}
	if sub := confirm("given@confirm-tracking.example", l2.ID, "tok-ct-given", true); !sub.TrackingConsent {
		t.Fatal("the confirmed request's tracking consent was not given")
	}
	if n := trackingNotes(other.Subscriber.ID); len(n) != 1 || n[0] != "tracking consent given; by the person, confirming the request that asked for it" {
		t.Fatalf("tracking changes %q; want the confirmation's", n)
	}
	if got, _ := s.GetSubscriber(ctx, a.ID, other.Subscriber.ID); !got.TrackingConsent {
		t.Fatal("consent not stored")
	}

	// A withdrawal after the request is the person's later choice: confirming the
	// request, whose mail does not mention tracking, does not give the consent again.
	third := consentedThenAsked(t, s, a.ID, "changed@confirm-tracking.example", l1.ID, l2.ID, "tok-ct-changed")
	noErr(t, "SetTrackingConsent", s.SetTrackingConsent(ctx, a.ID, third.Subscriber.ID, false, tidings.SourcePortal, tidings.Evidence{}))
	c, err := s.ConfirmSubscription(ctx, tokenHash("tok-ct-changed"), tidings.Evidence{IP: "203.0.113.9"}, false)
	noErr(t, "ConfirmSubscription", err)
	hist, err := s.SubscriberLedger(ctx, a.ID, third.Subscriber.ID, tidings.Page{})
	noErr(t, "SubscriberLedger", err)
	if c.Subscriber.TrackingConsent || hist[len(hist)-1].Kind != tidings.LedgerConfirmed {
		t.Fatalf("confirmed after a withdrawal: tracking %v, last entry %s; want the withdrawal to stand", c.Subscriber.TrackingConsent, hist[len(hist)-1].Kind)
	}
	if rep, err := consent.VerifyLedger(ctx, s, a.ID); err != nil || !rep.OK {
		t.Fatalf("ledger: %+v, %v", rep, err)
	}
}

// testTrackingNoteOnChange: a sign-up's or add's entry says "tracking consent given"
// when it gives the consent, not when the subscriber has it already; an add without
// consent leaves it standing. A known subscriber's double opt-in request says the
// consent was asked for: it is given at confirmation (testConfirmationTracking).
func testTrackingNoteOnChange(t *testing.T, s tidings.Store) {
	a := mustAccount(t, s)
	l1, l2, l3, l4 := mustList(t, s, a.ID), mustList(t, s, a.ID), mustList(t, s, a.ID), mustList(t, s, a.ID)
	add := func(email string, list int64, kind tidings.LedgerKind, tracking bool) (tidings.Subscriber, string) {
		t.Helper()
		req := request(email, []int64{list}, kind, fmt.Sprintf("tok-note-%d", list))
		req.TrackingConsent, req.Source, req.Evidence.Note = tracking, tidings.SourceAdmin, "by staff"
		res, err := s.RequestSubscription(ctx, a.ID, req)
		noErr(t, "RequestSubscription", err)
		ev := entryEvidence(t, s, a.ID, res.LedgerSeq)
		got, err := s.GetSubscriber(ctx, a.ID, res.Subscriber.ID)
		noErr(t, "GetSubscriber", err)
		return got, ev.Note
	}
	const email = "noted@tracking-note.example"
	for i, step := range []struct {
		list     int64
		kind     tidings.LedgerKind
		tracking bool
		want     bool
		note     string
	}{
		{l1.ID, tidings.LedgerImported, false, false, "by staff"},
		{l2.ID, tidings.LedgerImported, true, true, "by staff; tracking consent given"},
		{l3.ID, tidings.LedgerImported, true, true, "by staff"},  // has it: not again
		{l4.ID, tidings.LedgerImported, false, true, "by staff"}, // an add without it does not withdraw it
	} {
		got, note := add(email, step.list, step.kind, step.tracking)
		if got.TrackingConsent != step.want || note != step.note {
			t.Fatalf("step %d: tracking %v, note %q; want %v, %q", i, got.TrackingConsent, note, step.want, step.note)
		}
	}
	if _, note := add(email, l1.ID, tidings.LedgerRequested, true); note != "by staff; tracking consent asked for" {
		t.Fatalf("a known subscriber's request: note %q", note)
	}
	if rep, err := consent.VerifyLedger(ctx, s, a.ID); err != nil || !rep.OK {
		t.Fatalf("ledger: %+v, %v", rep, err)
	}
}

// testExpireUnaskedUnconfirmed: an unconfirmed subscription that no request asks for
// (how adds by the account holder were made before they asked the person) expires like
// a request: nobody can confirm it. One a request waits for is the request's to expire.
func testExpireUnaskedUnconfirmed(t *testing.T, s tidings.Store) {
	a, b := mustAccount(t, s), mustAccount(t, s)
	l, lb := mustList(t, s, a.ID), mustList(t, s, b.ID)
	unasked := tidings.Subscriber{Email: tidings.MustParseAddress("unasked@expire.example")}
	noErr(t, "CreateSubscriber", s.CreateSubscriber(ctx, a.ID, &unasked, []int64{l.ID}, tidings.SubUnconfirmed, nil))
	other := tidings.Subscriber{Email: tidings.MustParseAddress("unasked@expire.example")}
	noErr(t, "CreateSubscriber(b)", s.CreateSubscriber(ctx, b.ID, &other, []int64{lb.ID}, tidings.SubUnconfirmed, nil))
	_, err := s.RequestSubscription(ctx, a.ID, request("asked@expire.example", []int64{l.ID}, tidings.LedgerRequested, "tok-expire-asked"))
	noErr(t, "RequestSubscription", err)
	kept := mustSubscriber(t, s, a.ID, "kept@expire.example", l.ID)

	n, err := s.ExpireUnconfirmed(ctx, a.ID, time.Now().Add(-time.Hour), false)
	noErr(t, "ExpireUnconfirmed(an hour ago)", err)
	if subs, _ := s.Subscriptions(ctx, a.ID, unasked.ID); n != 0 || len(subs) != 1 {
		t.Fatalf("a cutoff before it was made expired %d and left %+v", n, subs)
	}
	n, err = s.ExpireUnconfirmed(ctx, a.ID, time.Now().Add(time.Hour), true)
	noErr(t, "ExpireUnconfirmed(dry run)", err)
	if n != 2 {
		t.Fatalf("dry run counts %d; want the request and the unasked subscription", n)
	}
	n, err = s.ExpireUnconfirmed(ctx, a.ID, time.Now().Add(time.Hour), false)
	noErr(t, "ExpireUnconfirmed", err)
	if n != 2 {
		t.Fatalf("expired %d; want 2", n)
	}
	if subs, err := s.Subscriptions(ctx, a.ID, unasked.ID); (err != nil && !errors.Is(err, tidings.ErrNotFound)) || len(subs) != 0 {
		t.Fatalf("the unasked subscription is still there: %+v %v", subs, err)
	}
	// As with a lapsed request: the subscriber, left with nothing, goes, and the ledger
	// says why the subscription ended.
	if _, err := s.GetSubscriber(ctx, a.ID, unasked.ID); !errors.Is(err, tidings.ErrNotFound) {
		t.Fatalf("the subscriber of an expired sign-up is kept: %v", err)
	}
	expired := 0
	entries, err := s.LedgerEntries(ctx, a.ID, 0, 100)
	noErr(t, "LedgerEntries", err)
	for _, e := range entries {
		if e.Kind == tidings.LedgerExpired && e.ListID == l.ID {
			expired++
		}
	}
	if expired != 2 {
		t.Fatalf("%d expiries in the ledger; want the request's and the unasked subscription's", expired)
	}
	if subs, _ := s.Subscriptions(ctx, a.ID, kept.ID); len(subs) != 1 || subs[0].Status != tidings.SubConfirmed {
		t.Fatalf("a confirmed subscription was touched: %+v", subs)
	}
	if subs, _ := s.Subscriptions(ctx, b.ID, other.ID); len(subs) != 1 {
		t.Fatalf("another account's unconfirmed subscription went with a sweep of one account: %+v", subs)
	}
	if n, _ := s.ExpireUnconfirmed(ctx, a.ID, time.Now().Add(time.Hour), true); n != 0 {
		t.Fatalf("%d left after expiry", n)
	}
}

// testRequestNamesListTwice: a request that names a list twice (a crafted form, an API
// call) is one subscription and one ledger entry for it, not two.
func testRequestNamesListTwice(t *testing.T, s tidings.Store) {
	a := mustAccount(t, s)
	l, m := mustList(t, s, a.ID), mustList(t, s, a.ID)
	res, err := s.RequestSubscription(ctx, a.ID, request("twice@lists.example", []int64{l.ID, m.ID, l.ID}, tidings.LedgerSingleOptIn, ""))
	noErr(t, "RequestSubscription", err)
	hist, err := s.SubscriberLedger(ctx, a.ID, res.Subscriber.ID, tidings.Page{})
	noErr(t, "SubscriberLedger", err)
	var lists []int64
	for _, e := range hist {
		lists = append(lists, e.ListID)
	}
	slices.Sort(lists)
	if want := []int64{min(l.ID, m.ID), max(l.ID, m.ID)}; !slices.Equal(lists, want) {
		t.Fatalf("ledger entries for lists %v; want one each for %v", lists, want)
	}
}

// A person who left one list while staying on another is not suppressed: the
// unsubscribed subscription remembers it. Deleting the subscriber (the account holder's
// choice) must not forget it, or an import would put them back on the list they left;
// someone who never left anything is deleted without a suppression.
func testDeletionRemembersUnsubscribe(t *testing.T, s tidings.Store) {
	a := mustAccount(t, s)
	l1, l2 := mustList(t, s, a.ID), mustList(t, s, a.ID)
	leaver := mustSubscriber(t, s, a.ID, "leaver@example.com", l1.ID, l2.ID)
	stayer := mustSubscriber(t, s, a.ID, "stayer@example.com", l1.ID, l2.ID)
	_, err := s.Unsubscribe(ctx, a.ID, leaver.ID, []int64{l1.ID}, tidings.SourceMail, tidings.Evidence{})
	noErr(t, "Unsubscribe", err)
	if held, _, _ := s.Suppressed(ctx, a.ID, leaver.Email); held {
		t.Fatal("suppressed while still on a list")
	}
	noErr(t, "DeleteSubscriber(leaver)", s.DeleteSubscriber(ctx, a.ID, leaver.ID))
	noErr(t, "DeleteSubscriber(stayer)", s.DeleteSubscriber(ctx, a.ID, stayer.ID))
	held, reason, err := s.Suppressed(ctx, a.ID, leaver.Email)
	if err != nil || !held || reason != tidings.SuppressUnsubscribed {
		t.Fatalf("after deleting someone who left a list: suppressed %v (%s), %v; want unsubscribed", held, reason, err)
	}
	if held, _, _ := s.Suppressed(ctx, a.ID, stayer.Email); held {
		t.Fatal("deleting someone who never left a list suppressed them")
	}
}

// The ledger is append-only in the database itself: a raw UPDATE or DELETE of an entry,
// or moving its head back or removing it, is refused. Erasing an entry's sealed
// evidence and deleting the account (which takes its ledger along) still work.
func testLedgerAppendOnly(t *testing.T, s tidings.Store) {
	a := mustAccount(t, s)
	l := mustList(t, s, a.ID)
	for _, email := range []string{"one@example.com", "two@example.com"} {
		_, err := s.RequestSubscription(ctx, a.ID, request(email, []int64{l.ID}, tidings.LedgerSingleOptIn, ""))
		noErr(t, "RequestSubscription", err)
	}
	db := s.(interface{ DB() *sql.DB }).DB()
	for _, q := range []string{
		`UPDATE ledger SET list_id = list_id + 1 WHERE account_id = $1 AND seq = 1`,
		`UPDATE ledger SET hash = prev_hash WHERE account_id = $1 AND seq = 2`,
		`UPDATE ledger SET evidence_sealed = evidence_sha256 WHERE account_id = $1 AND seq = 1`,
		`UPDATE ledger SET seq = seq + 10 WHERE account_id = $1`,
		`DELETE FROM ledger WHERE account_id = $1 AND seq = 2`,
		`DELETE FROM ledger WHERE account_id = $1`,
		`UPDATE ledger_heads SET seq = seq - 1 WHERE account_id = $1`,
		`DELETE FROM ledger_heads WHERE account_id = $1`,
	} {
		_, err := db.ExecContext(ctx, q, a.ID)
		if err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Fatalf("%s: err = %v, want it refused as append-only", q, err)
		}
	}
	if rep, err := consent.VerifyLedger(ctx, s, a.ID); err != nil || !rep.OK || rep.Entries != 2 {
		t.Fatalf("after the refused statements: %+v, %v", rep, err)
	}
	// What erasure does is allowed.
	_, err := db.ExecContext(ctx, `UPDATE ledger SET evidence_sealed = NULL WHERE account_id = $1 AND seq = 1`, a.ID)
	noErr(t, "erasing sealed evidence", err)
	if rep, err := consent.VerifyLedger(ctx, s, a.ID); err != nil || !rep.OK || rep.Entries != 2 {
		t.Fatalf("after erasing evidence: %+v, %v", rep, err)
	}
	// Deleting the account takes its ledger and head along.
	noErr(t, "DeleteAccount", s.DeleteAccount(ctx, a.ID))
	var n int
	noErr(t, "count", db.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM ledger WHERE account_id = $1) + (SELECT COUNT(*) FROM ledger_heads WHERE account_id = $1)`, a.ID).Scan(&n))
	if n != 0 {
		t.Fatalf("%d ledger rows left after the account's deletion", n)
	}
}

// testConfirmWithoutTracking: the person may confirm a request that asks for tracking
// consent without it (the mail offers it): no consent is stored and the ledger has no
// tracking change, for someone new (whose request, unconfirmed, gave none either) and
// for a known subscriber; the confirmation's evidence says what the person chose.
func testConfirmWithoutTracking(t *testing.T, s tidings.Store) {
	a := mustAccount(t, s)
	l1, l2 := mustList(t, s, a.ID), mustList(t, s, a.ID)
	known, err := s.RequestSubscription(ctx, a.ID, request("known@without-tracking.example", []int64{l1.ID}, tidings.LedgerSingleOptIn, ""))
	noErr(t, "RequestSubscription(single opt-in)", err)
	for _, email := range []string{"new@without-tracking.example", "known@without-tracking.example"} {
		tok := "tok-" + email
		req := request(email, []int64{l2.ID}, tidings.LedgerRequested, tok)
		req.TrackingConsent = true
		res, err := s.RequestSubscription(ctx, a.ID, req)
		noErr(t, "RequestSubscription(double opt-in)", err)
		if got, _ := s.GetSubscriber(ctx, a.ID, res.Subscriber.ID); got.TrackingConsent {
			t.Fatalf("%s: tracking consent stored before the person confirmed", email)
		}
		c, err := s.ConfirmSubscription(ctx, tokenHash(tok), tidings.Evidence{IP: "203.0.113.9"}, true)
		noErr(t, "ConfirmSubscription(without tracking)", err)
		if len(c.Lists) != 1 || c.Subscriber.TrackingConsent {
			t.Fatalf("%s: confirmed %v, tracking %v; want the list, without tracking", email, c.Lists, c.Subscriber.TrackingConsent)
		}
		if got, _ := s.GetSubscriber(ctx, a.ID, res.Subscriber.ID); got.TrackingConsent {
			t.Fatalf("%s: tracking consent stored", email)
		}
		hist, err := s.SubscriberLedger(ctx, a.ID, res.Subscriber.ID, tidings.Page{})
		noErr(t, "SubscriberLedger", err)
		for _, e := range hist {
			if e.Kind == tidings.LedgerTrackingChange {
				t.Fatalf("%s: a tracking change in the ledger: %+v", email, e)
			}
		}
		last := hist[len(hist)-1]
		ev, err := s.OpenEvidence(ctx, last)
		noErr(t, "OpenEvidence", err)
		if last.Kind != tidings.LedgerConfirmed || ev.Note != "confirmed without the tracking consent the request asked for" {
			t.Fatalf("%s: last entry %s, note %q", email, last.Kind, ev.Note)
		}
		if email == "known@without-tracking.example" && res.Subscriber.ID != known.Subscriber.ID {
			t.Fatal("a second subscriber for one address")
		}
	}
	// Someone who consented before, asked again and saying no, withdraws it: their
	// latest explicit choice, in the ledger as the person's.
	tracked := consentedThenAsked(t, s, a.ID, "tracked@without-tracking.example", l1.ID, l2.ID, "tok-tracked-no")
	if got, _ := s.GetSubscriber(ctx, a.ID, tracked.Subscriber.ID); !got.TrackingConsent {
		t.Fatal("the earlier tracking consent is gone before the confirmation")
	}
	c, err := s.ConfirmSubscription(ctx, tokenHash("tok-tracked-no"), tidings.Evidence{IP: "203.0.113.9"}, true)
	noErr(t, "ConfirmSubscription(without tracking, consented before)", err)
	if len(c.Lists) != 1 || c.Subscriber.TrackingConsent {
		t.Fatalf("consented before: confirmed %v, tracking %v; want the list, without tracking", c.Lists, c.Subscriber.TrackingConsent)
	}
	notes := confirmationTrackingNotes(t, s, a.ID, tracked.Subscriber.ID)
	if len(notes) != 1 || notes[0] != "tracking consent withdrawn; by the person, confirming without tracking" {
		t.Fatalf("consented before: tracking changes %q; want the withdrawal", notes)
	}
	if rep, err := consent.VerifyLedger(ctx, s, a.ID); err != nil || !rep.OK {
		t.Fatalf("ledger: %+v, %v", rep, err)
	}
}

// testConfirmListsGone: a confirmation whose lists were all deleted since confirms
// nothing and changes nothing the request asked for: not the name, not the tracking
// consent, not the suppression its confirmation would lift, and the ledger records
// nothing. The used-up request goes, and someone new with it.
func testConfirmListsGone(t *testing.T, s tidings.Store) {
	a := mustAccount(t, s)
	l1, l2, l3 := mustList(t, s, a.ID), mustList(t, s, a.ID), mustList(t, s, a.ID)
	req := request("known@lists-gone.example", []int64{l1.ID}, tidings.LedgerSingleOptIn, "")
	req.Name = "Real Name"
	known, err := s.RequestSubscription(ctx, a.ID, req)
	noErr(t, "RequestSubscription(single opt-in)", err)
	_, err = s.Unsubscribe(ctx, a.ID, known.Subscriber.ID, nil, tidings.SourceMail, tidings.Evidence{})
	noErr(t, "Unsubscribe", err) // and suppressed: the person left every list
	req = request("known@lists-gone.example", []int64{l2.ID}, tidings.LedgerRequested, "tok-gone-known")
	req.Name, req.TrackingConsent, req.Attributes = "Stranger", true, tidings.Attributes{"city": "Nowhere"}
	_, err = s.RequestSubscription(ctx, a.ID, req)
	noErr(t, "RequestSubscription(known)", err)
	req = request("new@lists-gone.example", []int64{l3.ID}, tidings.LedgerRequested, "tok-gone-new")
	req.TrackingConsent = true
	fresh, err := s.RequestSubscription(ctx, a.ID, req)
	noErr(t, "RequestSubscription(new)", err)
	l4, l5 := mustList(t, s, a.ID), mustList(t, s, a.ID)
	_, err = s.RequestSubscription(ctx, a.ID, request("partial@lists-gone.example", []int64{l4.ID, l5.ID}, tidings.LedgerRequested, "tok-gone-partial"))
	noErr(t, "RequestSubscription(partial)", err)
	if p, err := s.PendingRequest(ctx, tokenHash("tok-gone-new")); err != nil || !slices.Equal(p.Lists, []int64{l3.ID}) {
		t.Fatalf("PendingRequest before the list's deletion = %+v, %v", p, err)
	}
	noErr(t, "DeleteList", s.DeleteList(ctx, a.ID, l2.ID))
	noErr(t, "DeleteList", s.DeleteList(ctx, a.ID, l3.ID))
	noErr(t, "DeleteList", s.DeleteList(ctx, a.ID, l5.ID))
	head, _, err := s.LedgerHead(ctx, a.ID)
	noErr(t, "LedgerHead", err)

	// Reading the requests (a confirm page) tells which lists a confirmation would
	// confirm, none for those whose lists are all gone, and uses nothing up.
	if p, err := s.PendingRequest(ctx, tokenHash("tok-gone-partial")); err != nil || !slices.Equal(p.Lists, []int64{l4.ID}) {
		t.Fatalf("PendingRequest, one of two lists deleted = %+v, %v; want the other", p, err)
	}
	for _, tok := range []string{"tok-gone-known", "tok-gone-new", "tok-gone-known"} {
		if p, err := s.PendingRequest(ctx, tokenHash(tok)); err != nil || len(p.Lists) != 0 {
			t.Fatalf("PendingRequest(%s), all lists deleted = %+v, %v; want no lists", tok, p, err)
		}
	}

	for _, tok := range []string{"tok-gone-known", "tok-gone-new"} {
		c, err := s.ConfirmSubscription(ctx, tokenHash(tok), tidings.Evidence{IP: "203.0.113.9"}, false)
		noErr(t, "ConfirmSubscription("+tok+")", err)
		if len(c.Lists) != 0 || c.LedgerSeq != 0 {
			t.Fatalf("%s: confirmed %v (ledger seq %d) of deleted lists", tok, c.Lists, c.LedgerSeq)
		}
		_, err = s.ConfirmSubscription(ctx, tokenHash(tok), tidings.Evidence{}, false)
		wantErr(t, "ConfirmSubscription(again)", err, tidings.ErrNotFound)
	}
	got, err := s.GetSubscriber(ctx, a.ID, known.Subscriber.ID)
	noErr(t, "GetSubscriber", err)
	if got.Name != "Real Name" || got.TrackingConsent || len(got.Attributes) != 0 {
		t.Fatalf("a confirmation of no list changed the subscriber: name %q, tracking %v, attributes %v", got.Name, got.TrackingConsent, got.Attributes)
	}
	if held, _, err := s.Suppressed(ctx, a.ID, tidings.MustParseAddress("known@lists-gone.example")); err != nil || !held {
		t.Fatalf("a confirmation of no list lifted the suppression (%v)", err)
	}
	_, err = s.GetSubscriber(ctx, a.ID, fresh.Subscriber.ID)
	wantErr(t, "GetSubscriber(new, request used up)", err, tidings.ErrNotFound)
	if after, _, _ := s.LedgerHead(ctx, a.ID); after != head {
		t.Fatalf("ledger went from %d to %d entries for confirmations of nothing", head, after)
	}
	if rep, err := consent.VerifyLedger(ctx, s, a.ID); err != nil || !rep.OK {
		t.Fatalf("ledger: %+v, %v", rep, err)
	}
}

// testImportEvidenceShared: an import's declaration is the evidence of all its entries,
// stored once (migration 35): every entry opens it, with no sealed copy of its own; the
// ledger verifies, and catches a declaration altered behind the guard; the declaration
// cannot be changed or deleted, except with its account; erasing an imported person
// leaves it to the others.
func testImportEvidenceShared(t *testing.T, s tidings.Store) {
	a := mustAccount(t, s)
	l := mustList(t, s, a.ID)
	im, err := s.BeginImport(ctx, a.ID, l.ID, tidings.ImportDeclaration{Source: "fair stand", LawfulBasis: tidings.BasisConsent})
	noErr(t, "BeginImport", err)
	_, err = im.Add(ctx, []tidings.ImportRow{{Row: 2, Email: tidings.MustParseAddress("one@example.com")},
		{Row: 3, Email: tidings.MustParseAddress("two@example.com")}})
	noErr(t, "Add", err)
	noErr(t, "Commit", im.Commit())

	entries, err := s.LedgerEntries(ctx, a.ID, 0, 10)
	if err != nil || len(entries) != 2 {
		t.Fatalf("ledger: %d entries, %v; want 2", len(entries), err)
	}
	for _, e := range entries {
		if e.EvidenceSealed != nil || e.SharedEvidence == nil || string(e.EvidenceSHA256) != string(entries[0].EvidenceSHA256) {
			t.Fatalf("entry %d: sealed %d bytes, shared %q; want one shared declaration and no sealed copy", e.Seq, len(e.EvidenceSealed), e.SharedEvidence)
		}
		ev, err := s.OpenEvidence(ctx, e)
		if err != nil || !strings.Contains(ev.Note, "source: fair stand; lawful basis: consent") {
			t.Fatalf("entry %d's evidence: %+v, %v", e.Seq, ev, err)
		}
	}
	db := s.(interface{ DB() *sql.DB }).DB()
	var stored int
	noErr(t, "count", db.QueryRowContext(ctx, `SELECT COUNT(*) FROM shared_evidence WHERE account_id = $1`, a.ID).Scan(&stored))
	if stored != 1 {
		t.Fatalf("%d shared evidence rows for one import, want 1", stored)
	}
	if rep, err := consent.VerifyLedger(ctx, s, a.ID); err != nil || !rep.OK {
		t.Fatalf("verify: %+v, %v", rep, err)
	}

	for _, q := range []string{
		`UPDATE shared_evidence SET body = body || body WHERE account_id = $1`,
		`DELETE FROM shared_evidence WHERE account_id = $1`,
	} {
		if _, err := db.ExecContext(ctx, q, a.ID); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Fatalf("%s: err = %v, want it refused as append-only", q, err)
		}
	}

	// Erasing one person leaves the declaration to the other.
	_, err = s.ErasePerson(ctx, tidings.MustParseAddress("one@example.com"), a.ID)
	noErr(t, "ErasePerson", err)
	if ev, err := s.OpenEvidence(ctx, mustLedgerEntry(t, s, a.ID, 2)); err != nil || !strings.Contains(ev.Note, "fair stand") {
		t.Fatalf("the other person's evidence after an erasure: %+v, %v", ev, err)
	}

	withoutGuard(t, db, evidenceGuard, `UPDATE shared_evidence SET body = $2 WHERE account_id = $1`, a.ID,
		[]byte(`{"note":"import; source: anywhere; lawful basis: legitimate interest"}`))
	rep, err := consent.VerifyLedger(ctx, s, a.ID)
	if err != nil || rep.OK || rep.BrokenAt != 1 || !strings.Contains(rep.Problem, "evidence of entry 1 was altered") {
		t.Fatalf("verify after the declaration was altered: %+v, %v; want broken at entry 1", rep, err)
	}

	noErr(t, "DeleteAccount", s.DeleteAccount(ctx, a.ID))
	noErr(t, "count", db.QueryRowContext(ctx, `SELECT COUNT(*) FROM shared_evidence WHERE account_id = $1`, a.ID).Scan(&stored))
	if stored != 0 {
		t.Fatalf("%d shared evidence rows left after the account's deletion", stored)
	}
}

func mustLedgerEntry(t *testing.T, s tidings.Store, accountID, seq int64) tidings.LedgerEntry {
	t.Helper()
	entries, err := s.LedgerEntries(ctx, accountID, seq-1, 1)
	if err != nil || len(entries) != 1 {
		t.Fatalf("ledger entry %d: %d found, %v", seq, len(entries), err)
	}
	return entries[0]
}
