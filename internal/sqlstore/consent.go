package sqlstore

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidings/tidings/internal/keys"
	"github.com/tidings/tidings/internal/tidings"
)

func (s *Store) PublishConsentText(ctx context.Context, accountID int64, body string) (tidings.ConsentText, error) {
	body = strings.TrimSpace(body)
	if body == "" {
		return tidings.ConsentText{}, tidings.Invalid("consent_text", "required", "is required")
	}
	if len(body) > 10000 {
		return tidings.ConsentText{}, tidings.Invalid("consent_text", "too_long", "must be at most 10000 bytes")
	}
	sum := sha256.Sum256([]byte(body))
	t := tidings.ConsentText{AccountID: accountID, Body: body, SHA256: sum[:], CreatedAt: s.stamp()}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM accounts WHERE id = $1`, accountID).Scan(new(int)); err != nil {
			return translate(err)
		}
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) + 1 FROM consent_texts WHERE account_id = $1`, accountID).Scan(&t.Version); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO consent_texts (account_id, version, body, sha256, created_at) VALUES ($1, $2, $3, $4, $5)`,
			accountID, t.Version, t.Body, t.SHA256, toDB(t.CreatedAt))
		return translate(err)
	})
	return t, err
}

func (s *Store) ConsentText(ctx context.Context, accountID int64, version int) (tidings.ConsentText, error) {
	t := tidings.ConsentText{AccountID: accountID}
	var created int64
	q := `SELECT version, body, sha256, created_at FROM consent_texts WHERE account_id = $1 AND version = $2`
	args := []any{accountID, version}
	if version == 0 {
		q = `SELECT version, body, sha256, created_at FROM consent_texts WHERE account_id = $1 ORDER BY version DESC LIMIT 1`
		args = args[:1]
	}
	err := s.r.QueryRowContext(ctx, q, args...).Scan(&t.Version, &t.Body, &t.SHA256, &created)
	if err != nil {
		return tidings.ConsentText{}, translate(err)
	}
	t.CreatedAt = fromDB(created)
	if err := checkConsentText(t); err != nil {
		return tidings.ConsentText{}, err
	}
	return t, nil
}

// checkConsentText refuses a text whose body no longer hashes to the SHA-256 stored with
// it: someone changed it in the database, and forms, confirmations and receipts must not
// show, record or sign a wording other than the one published.
func checkConsentText(t tidings.ConsentText) error {
	if sum := sha256.Sum256([]byte(t.Body)); !bytes.Equal(sum[:], t.SHA256) {
		return fmt.Errorf("sqlstore: account %d, consent text version %d: %w", t.AccountID, t.Version, tidings.ErrConsentTextAltered)
	}
	return nil
}

// RequestSubscription: see tidings.ConsentStore.
func (s *Store) RequestSubscription(ctx context.Context, accountID int64, req tidings.SubscriptionRequest) (tidings.SubscriptionResult, error) {
	var res tidings.SubscriptionResult
	if req.Email.IsZero() {
		return res, tidings.Invalid("email", "required", "is required")
	}
	if len(req.Lists) == 0 {
		return res, tidings.Invalid("lists", "required", "choose at least one list")
	}
	req.Lists = tidings.DistinctIDs(req.Lists)
	sub := tidings.Subscriber{Email: req.Email, Name: req.Name, Attributes: req.Attributes, TrackingConsent: req.TrackingConsent, Status: req.Status}
	sub.Normalize()
	if err := sub.Validate(); err != nil {
		return res, err
	}
	if (req.Kind == tidings.LedgerRequested || req.ConfirmUnlessNew) && len(req.TokenHash) == 0 {
		return res, fmt.Errorf("sqlstore: a double opt-in request needs a token hash")
	}
	now := s.stamp()
	newKey, err := s.newKeyFor(ctx, req.Email)
	if err != nil {
		return res, err
	}
	orig := sub
	attempt := func(tx *sql.Tx) error {
		sub = orig
		kind := req.Kind
		if kind == tidings.LedgerSingleOptIn && req.ConfirmUnlessNew {
			// Single opt-in is for addresses the account has never had. Anyone can type an
			// address into a form: a known subscriber's data, a list they left, or a
			// suppression is changed only by the person, through the link in the mail.
			asked, err := s.heldOrSuppressed(ctx, tx, accountID, req.Email)
			if err != nil {
				return err
			}
			if asked {
				kind = tidings.LedgerRequested
			}
		}
		doubleOptIn := kind == tidings.LedgerRequested
		res.Requested = doubleOptIn
		if req.RespectSuppression {
			if ok, _, err := suppressed(ctx, tx, accountID, s.keys.SuppressionHash(req.Email.String())); err != nil || ok {
				if ok {
					return tidings.ErrSuppressed
				}
				return err
			}
		}
		pid, dk, err := s.person(ctx, tx, req.Email, newKey)
		if err != nil {
			return err
		}
		sub.AccountID, sub.PersonID = accountID, pid
		// A double opt-in request changes nothing of a known subscriber until its link is
		// used: anyone can type an address into a form. Its changes wait, sealed, beside it.
		changes := tidings.Subscriber{Name: sub.Name, Attributes: sub.Attributes, TrackingConsent: sub.TrackingConsent}
		if doubleOptIn {
			// Not even for someone new: the mail tells the person what the request asks
			// for, and they may confirm without the tracking (ConfirmSubscription).
			sub.TrackingConsent = false
		}
		given, err := s.upsertSubscriber(ctx, tx, &sub, dk, now, !doubleOptIn)
		if err != nil {
			return err
		}
		status := tidings.SubConfirmed
		if doubleOptIn {
			status = tidings.SubUnconfirmed
		}
		for _, listID := range req.Lists {
			if err := requestSubscription(ctx, tx, accountID, sub.ID, listID, status, now); err != nil {
				return err
			}
		}
		var textVersion int
		var textHash []byte
		if req.Text != nil {
			textVersion, textHash = req.Text.Version, req.Text.SHA256
		}
		if doubleOptIn {
			raw, err := json.Marshal(pendingChanges{Name: changes.Name, Attributes: changes.Attributes, TrackingConsent: changes.TrackingConsent})
			if err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `
				INSERT INTO pending_confirmations (account_id, subscriber_id, token_hash, lists, text_version, created_at, expires_at, changes_sealed)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
				accountID, sub.ID, req.TokenHash, joinIDs(req.Lists), textVersion, toDB(now), toDB(req.ExpiresAt),
				dk.Seal(raw, []byte(aad(accountID, pid, "pending_changes"))))
			if err != nil {
				return translate(err)
			}
		}
		ev := req.Evidence
		ev.Time = now
		// Consent to tracking is a consent too: the sign-up's evidence records it when
		// it gives it, not again for someone who has it (staff adding them to a list).
		// A double opt-in request gives it only at confirmation.
		tracking := ""
		switch {
		case given:
			tracking = "tracking consent given"
		case req.TrackingConsent && doubleOptIn:
			tracking = "tracking consent asked for"
		}
		if tracking != "" && ev.Note != "" {
			ev.Note += "; "
		}
		ev.Note += tracking
		for i, listID := range req.Lists {
			e := tidings.LedgerEntry{AccountID: accountID, Time: now, Kind: kind, PersonID: pid, ListID: listID,
				Source: req.Source, TextVersion: textVersion, TextSHA256: textHash}
			if err := s.appendLedger(ctx, tx, &e, dk, ev); err != nil {
				return err
			}
			if i == 0 {
				res.LedgerSeq = e.Seq
			}
		}
		return nil
	}
	err = s.tx(ctx, attempt)
	if errors.Is(err, tidings.ErrConflict) {
		// The same person signed up at the same moment (a double click) and their
		// subscriber was committed first: this request now finds it.
		err = s.tx(ctx, attempt)
	}
	res.Subscriber = sub
	return res, err
}

// heldOrSuppressed says whether the account holds a subscriber with this address, or
// has suppressed it.
func (s *Store) heldOrSuppressed(ctx context.Context, tx *sql.Tx, accountID int64, email tidings.Address) (bool, error) {
	if ok, _, err := suppressed(ctx, tx, accountID, s.keys.SuppressionHash(email.String())); err != nil || ok {
		return ok, err
	}
	var held bool
	err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM subscribers s JOIN persons p ON p.id = s.person_id
		WHERE s.account_id = $1 AND p.email_hash = $2)`, accountID, s.keys.Lookup(email.String())).Scan(&held)
	return held, err
}

// pendingChanges is what a double opt-in request asks to change of the subscriber,
// applied at confirmation.
type pendingChanges struct {
	Name            string             `json:"name"`
	Attributes      tidings.Attributes `json:"attributes"`
	TrackingConsent bool               `json:"tracking_consent"`
}

// record is the changes as an access request or a confirm page reads them; nil stays nil.
func (ch *pendingChanges) record() *tidings.PendingChanges {
	if ch == nil {
		return nil
	}
	return &tidings.PendingChanges{Name: ch.Name, Attributes: ch.Attributes, TrackingConsent: ch.TrackingConsent}
}

// upsertSubscriber creates the subscriber, or (with update) refreshes an existing one's
// name and attributes (merged) with what the person just gave, and gives the tracking
// consent if sub has it. given says that it stored a consent the subscriber did not
// have, which the caller records in the ledger: a change, and only a change. Without
// update an existing subscriber is only read: sub gets its ID, status and times.
//
// A sign-up, an add or a confirmation without tracking consent never withdraws an
// earlier one: the box is optional, an import's or staff's request does not ask, and a
// confirmation mail mentions tracking only when its request asks for it, so none of
// them is the person's choice to withdraw. Their latest explicit choice stands,
// provable by its ledger entry; it is withdrawn by an explicit change (portal, edit),
// which the ledger records.
func (s *Store) upsertSubscriber(ctx context.Context, tx *sql.Tx, sub *tidings.Subscriber, dk *keys.DataKey, now time.Time, update bool) (given bool, err error) {
	var id int64
	var had bool
	var nameEnc, attrsEnc []byte
	var created int64
	var status string
	err = tx.QueryRowContext(ctx, `SELECT id, name_enc, attributes_enc, status, tracking_consent, created_at FROM subscribers
		WHERE account_id = $1 AND person_id = $2`, sub.AccountID, sub.PersonID).Scan(&id, &nameEnc, &attrsEnc, &status, &had, &created)
	if err == sql.ErrNoRows {
		enc, err := seal(dk, sub)
		if err != nil {
			return false, err
		}
		err = tx.QueryRowContext(ctx, `
			INSERT INTO subscribers (id, account_id, person_id, email_enc, name_enc, attributes_enc, status, tracking_consent, created_at, updated_at)
			VALUES (`+s.engine.newID("subscribers")+`, $1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id`,
			sub.AccountID, sub.PersonID, enc.email, enc.name, enc.attrs, string(sub.Status), sub.TrackingConsent, toDB(now)).Scan(&sub.ID)
		sub.CreatedAt, sub.UpdatedAt = now, now
		return sub.TrackingConsent, translate(err)
	}
	if err != nil {
		return false, err
	}
	sub.ID, sub.Status, sub.CreatedAt, sub.UpdatedAt = id, tidings.SubscriberStatus(status), fromDB(created), now
	if !update {
		sub.UpdatedAt = time.Time{}
		return false, nil
	}
	given = sub.TrackingConsent && !had
	sub.TrackingConsent = sub.TrackingConsent || had
	a, p := sub.AccountID, sub.PersonID
	if sub.Name == "" {
		if sub.Name, err = dk.OpenString(nameEnc, aad(a, p, "name")); err != nil {
			return false, err
		}
	}
	if attrsEnc != nil {
		raw, err := dk.Open(attrsEnc, []byte(aad(a, p, "attributes")))
		if err != nil {
			return false, err
		}
		old := tidings.Attributes{}
		json.Unmarshal(raw, &old)
		for k, v := range sub.Attributes {
			old[k] = v
		}
		sub.Attributes = old
	}
	enc, err := seal(dk, sub)
	if err != nil {
		return false, err
	}
	_, err = tx.ExecContext(ctx, `UPDATE subscribers SET name_enc = $2, attributes_enc = $3, tracking_consent = $4, updated_at = $5 WHERE id = $1`,
		sub.ID, enc.name, enc.attrs, sub.TrackingConsent, toDB(now))
	return given && err == nil, err
}

// requestSubscription adds the subscription; a confirmed one stays confirmed when the
// person asks again, and an unsubscribed one stays unsubscribed (on record) until a
// double opt-in request is confirmed.
func requestSubscription(ctx context.Context, tx *sql.Tx, accountID, subscriberID, listID int64, status tidings.SubscriptionStatus, now time.Time) error {
	if err := tx.QueryRowContext(ctx, `SELECT 1 FROM lists WHERE account_id = $1 AND id = $2`, accountID, listID).Scan(new(int)); err != nil {
		if err == sql.ErrNoRows {
			return tidings.Invalid("lists", "unknown_list", "list %d does not exist", listID)
		}
		return err
	}
	var confirmed sql.NullInt64
	if status == tidings.SubConfirmed {
		confirmed = sql.NullInt64{Int64: toDB(now), Valid: true}
	}
	_, err := tx.ExecContext(ctx, `
		INSERT INTO subscriptions (list_id, subscriber_id, account_id, status, created_at, confirmed_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (list_id, subscriber_id) DO UPDATE SET
			status = CASE WHEN subscriptions.status = 'confirmed' THEN 'confirmed'
				WHEN subscriptions.status = 'unsubscribed' AND excluded.status = 'unconfirmed' THEN 'unsubscribed'
				ELSE excluded.status END,
			confirmed_at = COALESCE(subscriptions.confirmed_at, excluded.confirmed_at),
			unsubscribed_at = CASE WHEN subscriptions.status = 'confirmed' THEN subscriptions.unsubscribed_at
				WHEN subscriptions.status = 'unsubscribed' AND excluded.status = 'unconfirmed' THEN subscriptions.unsubscribed_at
				ELSE NULL END`,
		listID, subscriberID, accountID, string(status), toDB(now), confirmed)
	return translate(err)
}

var genesis = make([]byte, sha256.Size)

func evidenceAAD(accountID, personID int64) []byte {
	b := append(make([]byte, 0, 64), "tidings/v1 ledger evidence account="...)
	b = strconv.AppendInt(b, accountID, 10)
	b = append(b, " person="...)
	return strconv.AppendInt(b, personID, 10)
}

// appendLedger seals the evidence, takes the next link of the account's chain (the
// head row is locked by the UPDATE until the transaction ends), and writes the entry.
func (s *Store) appendLedger(ctx context.Context, tx *sql.Tx, e *tidings.LedgerEntry, dk *keys.DataKey, ev tidings.Evidence) error {
	raw, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	e.EvidenceSealed = dk.Seal(raw, evidenceAAD(e.AccountID, e.PersonID))
	sum := sha256.Sum256(e.EvidenceSealed)
	e.EvidenceSHA256 = sum[:]
	if _, err := tx.ExecContext(ctx, `INSERT INTO ledger_heads (account_id, seq, hash) VALUES ($1, 0, $2) ON CONFLICT (account_id) DO NOTHING`,
		e.AccountID, genesis); err != nil {
		return translate(err)
	}
	if err := tx.QueryRowContext(ctx, `UPDATE ledger_heads SET seq = seq + 1 WHERE account_id = $1 RETURNING seq, hash`, e.AccountID).
		Scan(&e.Seq, &e.PrevHash); err != nil {
		return err
	}
	e.Hash = e.ComputeHash()
	if _, err := tx.ExecContext(ctx, `UPDATE ledger_heads SET hash = $2 WHERE account_id = $1`, e.AccountID, e.Hash); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `
		INSERT INTO ledger (account_id, seq, created_at, kind, person_id, list_id, source, text_version, text_sha256,
			evidence_sha256, evidence_sealed, prev_hash, hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		e.AccountID, e.Seq, toDB(e.Time), string(e.Kind), e.PersonID, e.ListID, string(e.Source), e.TextVersion, e.TextSHA256,
		e.EvidenceSHA256, e.EvidenceSealed, e.PrevHash, e.Hash)
	return translate(err)
}

func (s *Store) AttachProof(ctx context.Context, accountID, subscriberID, ledgerSeq int64, kind string, data []byte) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		pid, dk, err := s.subscriberKey(ctx, tx, accountID, subscriberID)
		if err != nil {
			return err
		}
		sealed := dk.Seal(data, proofAAD(accountID, pid, ledgerSeq))
		_, err = tx.ExecContext(ctx, `
			INSERT INTO proofs (account_id, person_id, subscriber_id, ledger_seq, kind, data_sealed, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, accountID, pid, subscriberID, ledgerSeq, kind, sealed, toDB(s.stamp()))
		return translate(err)
	})
}

func proofAAD(accountID, personID, seq int64) []byte {
	return []byte(fmt.Sprintf("tidings/v1 proof account=%d person=%d seq=%d", accountID, personID, seq))
}

func (s *Store) Proofs(ctx context.Context, accountID, subscriberID int64) ([]tidings.Proof, error) {
	rows, err := s.r.QueryContext(ctx, `
		SELECT x.id, x.person_id, x.ledger_seq, x.kind, x.data_sealed, x.created_at, k.wrapped_key
		FROM proofs x JOIN persons p ON p.id = x.person_id JOIN person_keys k ON k.id = p.key_id
		WHERE x.account_id = $1 AND x.subscriber_id = $2 ORDER BY x.id`, accountID, subscriberID)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r interface{ Scan(...any) error }) (tidings.Proof, error) {
		var p tidings.Proof
		var pid, created int64
		var sealed, wrapped []byte
		if err := r.Scan(&p.ID, &pid, &p.LedgerSeq, &p.Kind, &sealed, &created, &wrapped); err != nil {
			return p, err
		}
		p.CreatedAt = fromDB(created)
		dk, err := s.keys.UnwrapDataKey(wrapped)
		if err != nil {
			return p, err
		}
		p.Data, err = dk.Open(sealed, proofAAD(accountID, pid, p.LedgerSeq))
		return p, err
	})
}

// pending is a row of pending_confirmations with its subscriber's key.
type pending struct {
	id, accountID, subscriberID, personID int64
	lists                                 []int64
	textVersion                           int
	created, expires                      int64
	changes                               []byte // sealed pendingChanges, or nil
	dk                                    *keys.DataKey
}

func (s *Store) loadPending(ctx context.Context, q querier, tokenHash []byte) (pending, error) {
	var p pending
	var lists string
	var wrapped []byte
	err := q.QueryRowContext(ctx, `
		SELECT c.id, c.account_id, c.subscriber_id, c.lists, c.text_version, c.created_at, c.expires_at, c.changes_sealed, s.person_id, k.wrapped_key
		FROM pending_confirmations c JOIN subscribers s ON s.id = c.subscriber_id JOIN persons p ON p.id = s.person_id JOIN person_keys k ON k.id = p.key_id
		WHERE c.token_hash = $1`, tokenHash).Scan(&p.id, &p.accountID, &p.subscriberID, &lists, &p.textVersion, &p.created, &p.expires, &p.changes, &p.personID, &wrapped)
	if err != nil {
		return p, translate(err)
	}
	if p.lists, err = splitIDs(lists); err != nil {
		return p, err
	}
	p.dk, err = s.keys.UnwrapDataKey(wrapped)
	return p, err
}

// usablePending loads the pending request a link may still use at now: ErrNotFound
// when the token is unknown, used or expired. Confirming, declining and looking a
// request up (PendingRequest) check it the same way: a link is valid for all or none.
func (s *Store) usablePending(ctx context.Context, q querier, tokenHash []byte, now time.Time) (pending, error) {
	p, err := s.loadPending(ctx, q, tokenHash)
	if err == nil && p.expires < toDB(now) {
		return p, tidings.ErrNotFound
	}
	return p, err
}

// openChanges unseals what a pending request asks to change of the subscriber; nil for
// a request from before changes were kept.
func openChanges(dk *keys.DataKey, sealed []byte, accountID, personID int64) (*pendingChanges, error) {
	if sealed == nil {
		return nil, nil
	}
	raw, err := dk.Open(sealed, []byte(aad(accountID, personID, "pending_changes")))
	if err != nil {
		return nil, err
	}
	ch := &pendingChanges{}
	if err := json.Unmarshal(raw, ch); err != nil {
		return nil, err
	}
	return ch, nil
}

// liveLists returns the lists of p that a confirmation would confirm now: those whose
// subscription is still there, as ConfirmSubscription's update finds them. A deleted
// list's subscriptions went with it; a pending request's are deleted with it alone.
func liveLists(ctx context.Context, q querier, p pending) ([]int64, error) {
	rows, err := q.QueryContext(ctx, `SELECT list_id FROM subscriptions WHERE subscriber_id = $1`, p.subscriberID)
	if err != nil {
		return nil, err
	}
	held, err := collect(rows, scanInt64)
	if err != nil {
		return nil, err
	}
	live := []int64{}
	for _, id := range p.lists {
		if slices.Contains(held, id) {
			live = append(live, id)
		}
	}
	return live, nil
}

// PendingRequest reads the request from the read pool, in no transaction: it changes
// nothing, so a link scanner's GET leaves the request as it was. Its lists are those a
// confirmation would confirm (liveLists), so that the page can tell, as the POST would,
// that they are all gone.
func (s *Store) PendingRequest(ctx context.Context, tokenHash []byte) (tidings.PendingRecord, error) {
	p, err := s.usablePending(ctx, s.r, tokenHash, s.stamp())
	if err != nil {
		return tidings.PendingRecord{}, err
	}
	lists, err := liveLists(ctx, s.r, p)
	if err != nil {
		return tidings.PendingRecord{}, err
	}
	ch, err := openChanges(p.dk, p.changes, p.accountID, p.personID)
	if err != nil {
		return tidings.PendingRecord{}, err
	}
	return tidings.PendingRecord{Lists: lists, CreatedAt: fromDB(p.created), ExpiresAt: fromDB(p.expires), Changes: ch.record()}, nil
}

func (s *Store) ConfirmSubscription(ctx context.Context, tokenHash []byte, ev tidings.Evidence, withoutTracking bool) (tidings.Confirmation, error) {
	var c tidings.Confirmation
	var subscriberID int64
	now := s.stamp()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		p, err := s.usablePending(ctx, tx, tokenHash, now)
		if err != nil {
			return err
		}
		// The link is used up first: of two uses at once (PostgreSQL), the second waits
		// here for the first to commit and then finds nothing to delete.
		if err := claimPending(ctx, tx, s.engine, p); err != nil {
			return err
		}
		c.AccountID, c.Time, subscriberID = p.accountID, now, p.subscriberID
		ev.Time = now
		// What the person chose in the request (name, attributes, tracking), applied
		// once something is confirmed.
		ch, err := openChanges(p.dk, p.changes, p.accountID, p.personID)
		if err != nil {
			return err
		}
		declined := false // the request asked for tracking consent, and the person said no
		if ch != nil && ch.TrackingConsent && withoutTracking {
			// The mail told the person what the request asked for, and they said no:
			// the confirmation's evidence says so, and no consent is given.
			ch.TrackingConsent, declined = false, true
			if ev.Note != "" {
				ev.Note += "; "
			}
			ev.Note += "confirmed without the tracking consent the request asked for"
		}
		var text tidings.ConsentText
		if p.textVersion > 0 {
			var created int64
			err := tx.QueryRowContext(ctx, `SELECT version, body, sha256, created_at FROM consent_texts WHERE account_id = $1 AND version = $2`,
				p.accountID, p.textVersion).Scan(&text.Version, &text.Body, &text.SHA256, &created)
			if err != nil {
				return translate(err)
			}
			text.AccountID, text.CreatedAt = p.accountID, fromDB(created)
			if err := checkConsentText(text); err != nil {
				return err
			}
		}
		c.Text = text
		for _, listID := range p.lists {
			res, err := tx.ExecContext(ctx, `
				UPDATE subscriptions SET status = 'confirmed', confirmed_at = $3, unsubscribed_at = NULL
				WHERE list_id = $1 AND subscriber_id = $2`, listID, p.subscriberID, toDB(now))
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				continue // the list was deleted meanwhile
			}
			e := tidings.LedgerEntry{AccountID: p.accountID, Time: now, Kind: tidings.LedgerConfirmed, PersonID: p.personID,
				ListID: listID, Source: tidings.SourceMail, TextVersion: text.Version, TextSHA256: text.SHA256}
			if err := s.appendLedger(ctx, tx, &e, p.dk, ev); err != nil {
				return err
			}
			if c.LedgerSeq == 0 {
				c.LedgerSeq = e.Seq
			}
			c.Lists = append(c.Lists, listID)
		}
		if len(c.Lists) == 0 {
			// Every list it named was deleted: nothing was confirmed, so nothing the
			// request asked for applies, and no suppression is lifted. The used-up request
			// leaves nothing behind, as a lapsed one does.
			return s.dropIfEmpty(ctx, tx, p.subscriberID, p.personID)
		}
		// The person's own confirmed subscription lifts the account's suppression, and
		// an instance-wide one (a complaint about another account, which keeps its own).
		var emailEnc []byte
		if err := tx.QueryRowContext(ctx, `SELECT email_enc FROM subscribers WHERE id = $1`, p.subscriberID).Scan(&emailEnc); err != nil {
			return err
		}
		email, err := p.dk.OpenString(emailEnc, aad(p.accountID, p.personID, "email"))
		if err != nil {
			return err
		}
		if ch != nil {
			if ch.TrackingConsent {
				// A tracking change recorded since the request (the person's in the portal,
				// or an edit) is a later explicit choice than the request's: it stands. Of
				// a change in the request's microsecond, this says it came later.
				var later bool
				if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM `+s.engine.ledgerOfPerson()+` WHERE person_id = $1 AND account_id = $2
					AND kind = $3 AND created_at >= $4)`, p.personID, p.accountID, string(tidings.LedgerTrackingChange), p.created).Scan(&later); err != nil {
					return err
				}
				ch.TrackingConsent = !later
			}
			sub := tidings.Subscriber{AccountID: p.accountID, PersonID: p.personID, Name: ch.Name, Attributes: ch.Attributes, TrackingConsent: ch.TrackingConsent}
			given, err := s.upsertSubscriber(ctx, tx, &sub, p.dk, now, true)
			if err != nil {
				return err
			}
			// A consent the request asked for is given now, and the ledger says so; one
			// the request did not ask for is left standing (see upsertSubscriber).
			if given {
				tev := ev
				tev.Note = "by the person, confirming the request that asked for it"
				if err := s.trackingEntry(ctx, tx, p.accountID, p.personID, p.dk, true, tidings.SourceMail, tev, now); err != nil {
					return err
				}
			}
			// Saying no to tracking, when asked, is the person's latest explicit choice
			// about it: a consent they gave before is withdrawn, and the ledger says so.
			if declined && sub.TrackingConsent {
				tev := ev
				tev.Note = "by the person, confirming without tracking"
				if err := s.setTracking(ctx, tx, p.accountID, p.subscriberID, p.personID, p.dk, false, tidings.SourceMail, tev, now); err != nil {
					return err
				}
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM suppressions WHERE account_id IN ($1, 0) AND hash = $2`,
			p.accountID, s.keys.SuppressionHash(email)); err != nil {
			return err
		}
		return nil
	})
	if err != nil || len(c.Lists) == 0 {
		return c, err
	}
	c.Subscriber, err = s.GetSubscriber(ctx, c.AccountID, subscriberID)
	return c, err
}

// DeclineSubscription refuses an expired request as ConfirmSubscription does
// (usablePending), though deleting it early would do no harm: a link is valid for both
// of its buttons or for neither, so the pages can say "valid for 7 days at most" and
// mean it. Refusing costs the person nothing: nobody can confirm the request any more,
// and the hourly sweep deletes it with all it created, sending nothing, and records it
// as what ended it (expired), not as the person's decline.
func (s *Store) DeclineSubscription(ctx context.Context, tokenHash []byte, ev tidings.Evidence) error {
	now := s.stamp()
	return s.tx(ctx, func(tx *sql.Tx) error {
		p, err := s.usablePending(ctx, tx, tokenHash, now)
		if err != nil {
			return err
		}
		return s.dropPending(ctx, tx, p, tidings.LedgerDeclined, tidings.SourceMail, tidings.Evidence{Time: now}, now)
	})
}

func (s *Store) WithdrawRequest(ctx context.Context, tokenHash []byte) error {
	now := s.stamp()
	return s.tx(ctx, func(tx *sql.Tx) error {
		p, err := s.loadPending(ctx, tx, tokenHash)
		if err != nil {
			return err
		}
		return s.dropPending(ctx, tx, p, tidings.LedgerUnsent, tidings.SourceAdmin, tidings.Evidence{Time: now, Note: "the confirmation mail could not be sent"}, now)
	})
}

// dropPending removes a pending request, its unconfirmed subscriptions, and the
// subscriber when nothing else is left; it records why in the ledger.
func (s *Store) dropPending(ctx context.Context, tx *sql.Tx, p pending, kind tidings.LedgerKind, source tidings.Source, ev tidings.Evidence, now time.Time) error {
	if err := claimPending(ctx, tx, s.engine, p); err != nil {
		return err
	}
	// A list another of the subscriber's requests still asks for keeps its unconfirmed
	// subscription: that link must go on working.
	rows, err := tx.QueryContext(ctx, `SELECT lists FROM pending_confirmations WHERE subscriber_id = $1`, p.subscriberID)
	if err != nil {
		return err
	}
	stillAsked := map[int64]bool{}
	for rows.Next() {
		var lists string
		if err := rows.Scan(&lists); err != nil {
			rows.Close()
			return err
		}
		ids, err := splitIDs(lists)
		if err != nil {
			rows.Close()
			return err
		}
		for _, id := range ids {
			stillAsked[id] = true
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, listID := range p.lists {
		if stillAsked[listID] {
			continue
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM subscriptions WHERE list_id = $1 AND subscriber_id = $2 AND status = 'unconfirmed'`,
			listID, p.subscriberID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			continue
		}
		e := tidings.LedgerEntry{AccountID: p.accountID, Time: now, Kind: kind, PersonID: p.personID, ListID: listID, Source: source}
		if err := s.appendLedger(ctx, tx, &e, p.dk, ev); err != nil {
			return err
		}
	}
	return s.dropIfEmpty(ctx, tx, p.subscriberID, p.personID)
}

// dropIfEmpty deletes a subscriber left with no subscription and no pending request,
// what a lapsed or declined sign-up leaves. Someone known nowhere else leaves nothing
// behind: the request's evidence (IP, browser) goes with their key; the ledger keeps
// the entries' digests.
func (s *Store) dropIfEmpty(ctx context.Context, tx *sql.Tx, subscriberID, personID int64) error {
	_, err := tx.ExecContext(ctx, `
		DELETE FROM subscribers WHERE id = $1
		AND NOT EXISTS (SELECT 1 FROM subscriptions WHERE subscriber_id = $1)
		AND NOT EXISTS (SELECT 1 FROM pending_confirmations WHERE subscriber_id = $1)`, subscriberID)
	if err != nil {
		return err
	}
	return s.deletePersonIfUnused(ctx, tx, personID)
}

// claimPending deletes the pending request p, or reports ErrNotFound when a concurrent
// use of its link (confirm, decline, expiry) deleted it first: a link works once. The
// request's subscriber is locked before (lockSubscriber), as by every writer of their
// consent.
func claimPending(ctx context.Context, tx *sql.Tx, engine Engine, p pending) error {
	if err := lockSubscriber(ctx, tx, engine, p.subscriberID); err != nil {
		return err
	}
	return rowsAffected(tx.ExecContext(ctx, `DELETE FROM pending_confirmations WHERE id = $1`, p.id))
}

// lockSubscriber locks a subscriber's row on PostgreSQL, or reports ErrNotFound when
// they are gone. Every writer of a subscriber's consent (a request's confirmation,
// decline or expiry, an unsubscribe, an edit, a tracking consent change) locks the
// subscriber before the rows it then changes (requests, subscriptions, the ledger
// head), so two of them queue instead of deadlocking (docs/ARCHITECTURE.md, "Lock
// order"). NO KEY UPDATE, the lock an UPDATE of the row takes, leaves the KEY SHARE
// locks of event groups and foreign key checks alone. On SQLite the one writer already
// excludes everyone else, and the callers have just read the subscriber in the same
// transaction: nothing to do.
func lockSubscriber(ctx context.Context, tx *sql.Tx, engine Engine, id int64) error {
	if engine != Postgres {
		return nil
	}
	return translate(tx.QueryRowContext(ctx, `SELECT id FROM subscribers WHERE id = $1 FOR NO KEY UPDATE`, id).Scan(new(int64)))
}

func (s *Store) ExpireUnconfirmed(ctx context.Context, accountID int64, cutoff time.Time, dryRun bool) (int, error) {
	if dryRun {
		// What the run deletes, counted once: old or lapsed (expirePending).
		var n, orphans int
		err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM pending_confirmations WHERE (created_at < $1 OR expires_at < $3) AND ($2 = 0 OR account_id = $2)`,
			toDB(cutoff), accountID, toDB(s.stamp())).Scan(&n)
		if err == nil {
			err = s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM subscriptions WHERE `+unaskedUnconfirmed, toDB(cutoff), accountID).Scan(&orphans)
		}
		return n + orphans, err
	}
	total, err := s.expirePending(ctx, accountID, cutoff)
	if err != nil {
		return total, err
	}
	// Unconfirmed subscriptions that no request waits for (adds by the account holder
	// made them so before they asked the person) go after the same time, as a lapsed
	// request's do: nobody can confirm them. They are looked for on a reader, so that
	// the scan holds up no writer; each is checked again as it is deleted.
	for {
		rows, err := s.r.QueryContext(ctx, `SELECT list_id, subscriber_id, account_id FROM subscriptions WHERE `+unaskedUnconfirmed+` LIMIT 500`,
			toDB(cutoff), accountID)
		if err != nil {
			return total, err
		}
		type key struct{ list, subscriber, account int64 }
		keys, err := collect(rows, func(r interface{ Scan(...any) error }) (key, error) {
			var k key
			return k, r.Scan(&k.list, &k.subscriber, &k.account)
		})
		if err != nil || len(keys) == 0 {
			return total, err
		}
		deleted := 0
		err = s.tx(ctx, func(tx *sql.Tx) error {
			deleted = 0
			now := s.stamp()
			for _, k := range keys {
				res, err := tx.ExecContext(ctx, `DELETE FROM subscriptions WHERE list_id = $3 AND subscriber_id = $4 AND `+unaskedUnconfirmed,
					toDB(cutoff), accountID, k.list, k.subscriber)
				if err != nil {
					return err
				}
				n, err := res.RowsAffected()
				if err != nil {
					return err
				}
				if n == 0 {
					continue // deleted or asked for meanwhile
				}
				deleted++
				pid, dk, err := s.subscriberKey(ctx, tx, k.account, k.subscriber)
				if err != nil {
					return err
				}
				e := tidings.LedgerEntry{AccountID: k.account, Time: now, Kind: tidings.LedgerExpired, PersonID: pid, ListID: k.list, Source: tidings.SourceAdmin}
				if err := s.appendLedger(ctx, tx, &e, dk, tidings.Evidence{Time: now}); err != nil {
					return err
				}
				if err := s.dropIfEmpty(ctx, tx, k.subscriber, pid); err != nil {
					return err
				}
			}
			return nil
		})
		total += deleted
		if err != nil || len(keys) < 500 {
			return total, err
		}
	}
}

// unaskedUnconfirmed selects the unconfirmed subscriptions created before $1 (in account
// $2, or any for 0) that no pending request asks for.
const unaskedUnconfirmed = `status = 'unconfirmed' AND created_at < $1 AND ($2 = 0 OR account_id = $2)
	AND NOT EXISTS (SELECT 1 FROM pending_confirmations c WHERE c.subscriber_id = subscriptions.subscriber_id)`

// expirePending deletes, as expired, the pending requests created before cutoff and
// those whose link has expired (usablePending refuses it): a request made under a
// shorter rule than the account's current one is dead from then on, and is not kept
// until the longer rule ends (ExpireUnconfirmed).
func (s *Store) expirePending(ctx context.Context, accountID int64, cutoff time.Time) (int, error) {
	lapsed, err := s.expirePendingWhere(ctx, pendingLapsed, toDB(s.stamp()), accountID)
	if err != nil {
		return lapsed, err
	}
	old, err := s.expirePendingWhere(ctx, pendingOlder, toDB(cutoff), accountID)
	return lapsed + old, err
}

// The selections of expirePending, each with its batch order: $1 is a time, $2 an
// account (0: any). Each is found, and taken in order, through an index of its time
// (pending_confirmations_expiry, pending_confirmations_created: migration 36) on both
// engines, so the hourly passes read only the rows they delete; ordered by id, SQLite
// scanned the whole table instead.
const (
	pendingLapsed = `expires_at < $1 AND ($2 = 0 OR account_id = $2) ORDER BY expires_at`
	pendingOlder  = `created_at < $1 AND ($2 = 0 OR account_id = $2) ORDER BY created_at`
)

// expirePendingWhere deletes, as expired, the pending requests that where selects.
func (s *Store) expirePendingWhere(ctx context.Context, where string, args ...any) (int, error) {
	total := 0
	for {
		// Batches keep each transaction short on big instances.
		var n int
		err := s.tx(ctx, func(tx *sql.Tx) error {
			rows, err := tx.QueryContext(ctx, `SELECT token_hash, subscriber_id FROM pending_confirmations WHERE `+where+` LIMIT 500`, args...)
			if err != nil {
				return err
			}
			type request struct {
				hash       []byte
				subscriber int64
			}
			var batch []request
			for rows.Next() {
				var r request
				if err := rows.Scan(&r.hash, &r.subscriber); err != nil {
					rows.Close()
					return err
				}
				batch = append(batch, r)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			// The batch's subscribers are locked first, in ID order, before any ledger
			// head: dropping a request appends to its account's ledger, and the head,
			// held to the end, must not be taken while a later subscriber of the batch is
			// still to lock; an edit or a confirmation holding that subscriber waits for
			// the head (Lock order in docs/ARCHITECTURE.md).
			slices.SortFunc(batch, func(a, b request) int { return cmp.Compare(a.subscriber, b.subscriber) })
			for _, r := range batch {
				if err := lockSubscriber(ctx, tx, s.engine, r.subscriber); err != nil && !errors.Is(err, tidings.ErrNotFound) {
					return err
				}
			}
			now := s.stamp()
			for _, r := range batch {
				p, err := s.loadPending(ctx, tx, r.hash)
				if err == nil {
					err = s.dropPending(ctx, tx, p, tidings.LedgerExpired, tidings.SourceAdmin, tidings.Evidence{Time: now}, now)
				}
				if errors.Is(err, tidings.ErrNotFound) {
					continue // its link was used meanwhile
				}
				if err != nil {
					return err
				}
			}
			n = len(batch)
			return nil
		})
		if err != nil {
			return total, err
		}
		total += n
		if n < 500 {
			return total, nil
		}
	}
}

func (s *Store) Unsubscribe(ctx context.Context, accountID, subscriberID int64, lists []int64, source tidings.Source, ev tidings.Evidence) (int, error) {
	now := s.stamp()
	ev.Time = now
	var n int
	err := s.tx(ctx, func(tx *sql.Tx) (err error) {
		n, err = s.unsubscribe(ctx, tx, accountID, subscriberID, lists, source, ev, now)
		return err
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// unsubscribe is Unsubscribe inside tx.
func (s *Store) unsubscribe(ctx context.Context, tx *sql.Tx, accountID, subscriberID int64, lists []int64, source tidings.Source, ev tidings.Evidence, now time.Time) (int, error) {
	pid, dk, err := s.subscriberKey(ctx, tx, accountID, subscriberID)
	if err != nil {
		return 0, err
	}
	if err := lockSubscriber(ctx, tx, s.engine, subscriberID); err != nil {
		return 0, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT list_id FROM subscriptions WHERE account_id = $1 AND subscriber_id = $2 AND status <> 'unsubscribed'
		ORDER BY list_id`, accountID, subscriberID)
	if err != nil {
		return 0, err
	}
	var active []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, err
		}
		if len(lists) == 0 || slices.Contains(lists, id) {
			active = append(active, id)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	withdrawn := 0
	for _, l := range active {
		// The status condition, not the SELECT above, decides: a concurrent unsubscribe
		// (PostgreSQL, read committed) that withdrew the row first leaves nothing here,
		// so each withdrawal is recorded and counted once.
		res, err := tx.ExecContext(ctx, `UPDATE subscriptions SET status = 'unsubscribed', unsubscribed_at = $3
			WHERE list_id = $1 AND subscriber_id = $2 AND status <> 'unsubscribed'`, l, subscriberID, toDB(now))
		if err != nil {
			return 0, err
		}
		if n, err := res.RowsAffected(); err != nil {
			return 0, err
		} else if n == 0 {
			continue
		}
		withdrawn++
		e := tidings.LedgerEntry{AccountID: accountID, Time: now, Kind: tidings.LedgerUnsubscribed, PersonID: pid, ListID: l, Source: source}
		if err := s.appendLedger(ctx, tx, &e, dk, ev); err != nil {
			return 0, err
		}
	}
	// Pending requests for the list(s) left go with them; a request for another list
	// goes on (confirmed, declined or expired like any other).
	prows, err := tx.QueryContext(ctx, `SELECT id, lists FROM pending_confirmations WHERE subscriber_id = $1 ORDER BY id`, subscriberID)
	if err != nil {
		return 0, err
	}
	var pendings []pending
	for prows.Next() {
		p := pending{accountID: accountID, subscriberID: subscriberID, personID: pid, dk: dk}
		var ids string
		if err := prows.Scan(&p.id, &ids); err != nil {
			prows.Close()
			return 0, err
		}
		if p.lists, err = splitIDs(ids); err != nil {
			prows.Close()
			return 0, err
		}
		pendings = append(pendings, p)
	}
	prows.Close()
	if err := prows.Err(); err != nil {
		return 0, err
	}
	for _, p := range pendings {
		if len(lists) > 0 && !slices.ContainsFunc(p.lists, func(l int64) bool { return slices.Contains(lists, l) }) {
			continue
		}
		if err := s.dropPending(ctx, tx, p, tidings.LedgerUnsubscribed, source, ev, now); err != nil && !errors.Is(err, tidings.ErrNotFound) {
			return 0, err
		}
	}
	var left int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM subscriptions WHERE subscriber_id = $1 AND status <> 'unsubscribed'`,
		subscriberID).Scan(&left); err != nil {
		return 0, err
	}
	if left > 0 {
		return withdrawn, nil
	}
	return withdrawn, s.suppressSubscriber(ctx, tx, subscriberID, tidings.SuppressUnsubscribed, now, accountID)
}

func (s *Store) LedgerAccounts(ctx context.Context) ([]int64, error) {
	// The ledger's accounts too: an account whose head row was removed is still verified
	// (and found broken).
	rows, err := s.r.QueryContext(ctx, `SELECT account_id FROM ledger_heads UNION SELECT DISTINCT account_id FROM ledger ORDER BY account_id`)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanInt64)
}

const ledgerCols = `account_id, seq, created_at, kind, person_id, list_id, source, text_version, text_sha256,
	evidence_sha256, evidence_sealed, prev_hash, hash`

func scanLedger(r interface{ Scan(...any) error }) (tidings.LedgerEntry, error) {
	var e tidings.LedgerEntry
	var created int64
	err := r.Scan(&e.AccountID, &e.Seq, &created, &e.Kind, &e.PersonID, &e.ListID, &e.Source, &e.TextVersion, &e.TextSHA256,
		&e.EvidenceSHA256, &e.EvidenceSealed, &e.PrevHash, &e.Hash)
	e.Time = fromDB(created)
	return e, err
}

func (s *Store) LedgerEntries(ctx context.Context, accountID, afterSeq int64, limit int) ([]tidings.LedgerEntry, error) {
	if limit <= 0 || limit > 10000 {
		limit = 10000
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+ledgerCols+` FROM ledger WHERE account_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
		accountID, afterSeq, limit)
	if err != nil {
		return nil, err
	}
	return s.collectLedger(ctx, accountID, rows)
}

// collectLedger reads one account's entries from rows (ledgerCols), with the shared
// evidence (migration 35) of those that have no sealed evidence of their own. An
// account has one shared evidence per import, all read in one query: looked up entry
// by entry in the ledger's query, it made verifying a SQLite ledger twice as slow.
func (s *Store) collectLedger(ctx context.Context, accountID int64, rows *sql.Rows) ([]tidings.LedgerEntry, error) {
	entries, err := collect(rows, scanLedger)
	if err != nil || !slices.ContainsFunc(entries, func(e tidings.LedgerEntry) bool { return e.EvidenceSealed == nil }) {
		return entries, err
	}
	shared, err := s.r.QueryContext(ctx, `SELECT sha256, body FROM shared_evidence WHERE account_id = $1`, accountID)
	if err != nil {
		return nil, err
	}
	bodies := map[string][]byte{}
	defer shared.Close()
	for shared.Next() {
		var sum, body []byte
		if err := shared.Scan(&sum, &body); err != nil {
			return nil, err
		}
		bodies[string(sum)] = body
	}
	if err := shared.Err(); err != nil {
		return nil, err
	}
	for i, e := range entries {
		if e.EvidenceSealed == nil {
			entries[i].SharedEvidence = bodies[string(e.EvidenceSHA256)] // nil: erased
		}
	}
	return entries, nil
}

func (s *Store) LedgerHead(ctx context.Context, accountID int64) (int64, []byte, error) {
	var seq int64
	var hash []byte
	err := s.r.QueryRowContext(ctx, `SELECT seq, hash FROM ledger_heads WHERE account_id = $1`, accountID).Scan(&seq, &hash)
	return seq, hash, translate(err)
}

func (s *Store) OpenEvidence(ctx context.Context, e tidings.LedgerEntry) (tidings.Evidence, error) {
	var ev tidings.Evidence
	if e.EvidenceSealed == nil && e.SharedEvidence != nil {
		return ev, json.Unmarshal(e.SharedEvidence, &ev)
	}
	if e.EvidenceSealed == nil {
		return ev, tidings.ErrNotFound
	}
	var wrapped []byte
	if err := s.r.QueryRowContext(ctx, `SELECT k.wrapped_key FROM persons p JOIN person_keys k ON k.id = p.key_id WHERE p.id = $1`, e.PersonID).Scan(&wrapped); err != nil {
		return ev, translate(err)
	}
	dk, err := s.keys.UnwrapDataKey(wrapped)
	if err != nil {
		return ev, err
	}
	raw, err := dk.Open(e.EvidenceSealed, evidenceAAD(e.AccountID, e.PersonID))
	if err != nil {
		return ev, err
	}
	return ev, json.Unmarshal(raw, &ev)
}

func (s *Store) AddSuppression(ctx context.Context, accountID int64, email tidings.Address, reason tidings.SuppressionReason) error {
	return addSuppression(ctx, s.w, accountID, s.keys.SuppressionHash(email.String()), reason, s.stamp())
}

type execer interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
}

// addSuppression suppresses hash in an account, or instance-wide (account 0). An
// account deleted meanwhile gets none: suppressions have no foreign key (they are
// keyed hashes, written and read often), and an erasure that waited for an account's
// deletion would otherwise leave one behind for an account that no longer exists.
func addSuppression(ctx context.Context, db execer, accountID int64, hash []byte, reason tidings.SuppressionReason, now time.Time) error {
	// The account is passed twice: PostgreSQL types each parameter once, and $1 is the
	// inserted column's while $5 is compared.
	_, err := db.ExecContext(ctx, `INSERT INTO suppressions (account_id, hash, reason, created_at) SELECT $1, $2, $3, $4
		WHERE $5 = 0 OR EXISTS (SELECT 1 FROM accounts WHERE id = $5)
		ON CONFLICT (account_id, hash) DO NOTHING`, accountID, hash, string(reason), toDB(now), accountID)
	return translate(err)
}

// suppressSubscriber adds a suppression of the subscriber's address in each scope: an
// account, or InstanceWide. The address is opened with the person's key inside tx.
func (s *Store) suppressSubscriber(ctx context.Context, tx *sql.Tx, subscriberID int64, reason tidings.SuppressionReason, now time.Time, scopes ...int64) error {
	var accountID, pid int64
	var wrapped, emailEnc []byte
	err := tx.QueryRowContext(ctx, `SELECT s.account_id, s.person_id, k.wrapped_key, s.email_enc FROM subscribers s
		JOIN persons p ON p.id = s.person_id JOIN person_keys k ON k.id = p.key_id WHERE s.id = $1`, subscriberID).
		Scan(&accountID, &pid, &wrapped, &emailEnc)
	if err != nil {
		return translate(err)
	}
	dk, err := s.keys.UnwrapDataKey(wrapped)
	if err != nil {
		return err
	}
	email, err := dk.OpenString(emailEnc, aad(accountID, pid, "email"))
	if err != nil {
		return err
	}
	hash := s.keys.SuppressionHash(email)
	for _, scope := range scopes {
		if err := addSuppression(ctx, tx, scope, hash, reason, now); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) SetTrackingConsent(ctx context.Context, accountID, subscriberID int64, on bool, source tidings.Source, ev tidings.Evidence) error {
	now := s.stamp()
	return s.tx(ctx, func(tx *sql.Tx) error {
		pid, dk, err := s.subscriberKey(ctx, tx, accountID, subscriberID)
		if err != nil {
			return err
		}
		return s.setTracking(ctx, tx, accountID, subscriberID, pid, dk, on, source, ev, now)
	})
}

// setTracking changes a subscriber's tracking consent in tx: the flag, then a
// tracking-change entry in the ledger. The subscriber's row is written (locked, on
// PostgreSQL) before the account's ledger head, whoever calls it (SetTrackingConsent,
// EditSubscriber).
func (s *Store) setTracking(ctx context.Context, tx *sql.Tx, accountID, subscriberID, personID int64, dk *keys.DataKey, on bool,
	source tidings.Source, ev tidings.Evidence, now time.Time) error {
	if _, err := tx.ExecContext(ctx, `UPDATE subscribers SET tracking_consent = $3, updated_at = $4 WHERE account_id = $1 AND id = $2`,
		accountID, subscriberID, on, toDB(now)); err != nil {
		return err
	}
	return s.trackingEntry(ctx, tx, accountID, personID, dk, on, source, ev, now)
}

// trackingEntry appends a tracking change, written to the subscriber's row in tx, to
// the ledger, with its note (trackingNote).
func (s *Store) trackingEntry(ctx context.Context, tx *sql.Tx, accountID, personID int64, dk *keys.DataKey, on bool,
	source tidings.Source, ev tidings.Evidence, now time.Time) error {
	note, err := trackingNote(on, source, ev.Note)
	if err != nil {
		return err
	}
	ev.Time, ev.Note = now, note
	e := tidings.LedgerEntry{AccountID: accountID, Time: now, Kind: tidings.LedgerTrackingChange, PersonID: personID, Source: source}
	return s.appendLedger(ctx, tx, &e, dk, ev)
}

// trackingNote is a tracking change's ledger note: the change, then who made it (see
// tidings.DSARStore.SetTrackingConsent). The note is sealed in the evidence, which the
// chain covers by digest, so it is evidence like the IP: it is never rewritten.
func trackingNote(on bool, source tidings.Source, who string) (string, error) {
	note := "tracking consent withdrawn"
	if on {
		note = "tracking consent given"
	}
	if who = strings.TrimSpace(who); who == "" {
		switch source {
		case tidings.SourcePortal, tidings.SourceForm, tidings.SourceMail:
			who = "by the person"
		default:
			return "", fmt.Errorf("sqlstore: a tracking change from %q must say who made it", source)
		}
	}
	return note + "; " + who, nil
}

// subscriberKey returns the person and the unwrapped data key of one of the account's
// subscribers, read with q (a transaction, or a pool); ErrNotFound if there is none.
func (s *Store) subscriberKey(ctx context.Context, q querier, accountID, subscriberID int64) (int64, *keys.DataKey, error) {
	var pid int64
	var wrapped []byte
	err := q.QueryRowContext(ctx, `SELECT s.person_id, k.wrapped_key FROM subscribers s JOIN persons p ON p.id = s.person_id
		JOIN person_keys k ON k.id = p.key_id WHERE s.account_id = $1 AND s.id = $2`, accountID, subscriberID).Scan(&pid, &wrapped)
	if err != nil {
		return 0, nil, translate(err)
	}
	dk, err := s.keys.UnwrapDataKey(wrapped)
	return pid, dk, err
}

type querier interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

func suppressed(ctx context.Context, db querier, accountID int64, hash []byte) (bool, tidings.SuppressionReason, error) {
	var reason string
	err := db.QueryRowContext(ctx, `SELECT reason FROM suppressions WHERE account_id IN ($1, 0) AND hash = $2 ORDER BY account_id DESC LIMIT 1`,
		accountID, hash).Scan(&reason)
	if err == sql.ErrNoRows {
		return false, "", nil
	}
	return err == nil, tidings.SuppressionReason(reason), err
}

func (s *Store) Suppressed(ctx context.Context, accountID int64, email tidings.Address) (bool, tidings.SuppressionReason, error) {
	return suppressed(ctx, s.r, accountID, s.keys.SuppressionHash(email.String()))
}

func (s *Store) RemoveSuppression(ctx context.Context, accountID int64, email tidings.Address) error {
	return rowsAffected(s.w.ExecContext(ctx, `DELETE FROM suppressions WHERE account_id = $1 AND hash = $2`,
		accountID, s.keys.SuppressionHash(email.String())))
}

func joinIDs(ids []int64) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.FormatInt(id, 10)
	}
	return strings.Join(parts, ",")
}

func splitIDs(s string) ([]int64, error) {
	var out []int64
	for _, p := range strings.Split(s, ",") {
		id, err := strconv.ParseInt(p, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("corrupt id list %q", s)
		}
		out = append(out, id)
	}
	return out, nil
}
