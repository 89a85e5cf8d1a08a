package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"

	"github.com/tidings/tidings/internal/tidings"
)

func (s *Store) PersonData(ctx context.Context, email tidings.Address) ([]tidings.PersonRecord, error) {
	var pid int64
	err := s.r.QueryRowContext(ctx, `SELECT id FROM persons WHERE email_hash = $1`, s.keys.Lookup(email.String())).Scan(&pid)
	if errors.Is(err, sql.ErrNoRows) {
		return []tidings.PersonRecord{}, nil
	}
	if err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT account_id, id FROM subscribers WHERE person_id = $1 ORDER BY account_id`, pid)
	if err != nil {
		return nil, err
	}
	type ref struct{ account, subscriber int64 }
	var refs []ref
	for rows.Next() {
		var r ref
		rows.Scan(&r.account, &r.subscriber)
		refs = append(refs, r)
	}
	rows.Close()
	out := []tidings.PersonRecord{}
	for _, r := range refs {
		var rec tidings.PersonRecord
		if rec.Account, err = s.GetAccount(ctx, r.account); err != nil {
			return nil, err
		}
		rec.Subscriber, err = s.GetSubscriber(ctx, r.account, r.subscriber)
		if errors.Is(err, tidings.ErrNotFound) {
			continue // a data backup restored after the person's erasure: their key is gone
		}
		if err != nil {
			return nil, err
		}
		if rec.Subscriptions, err = s.Subscriptions(ctx, r.account, r.subscriber); err != nil {
			return nil, err
		}
		entries, err := s.personLedger(ctx, r.account, pid)
		if err != nil {
			return nil, err
		}
		rec.Consent = []tidings.ConsentRecord{}
		for _, e := range entries {
			ev, _ := s.OpenEvidence(ctx, e) // gone after an earlier erasure: empty
			rec.Consent = append(rec.Consent, tidings.ConsentRecord{Seq: e.Seq, Time: e.Time, Kind: e.Kind, ListID: e.ListID, Source: e.Source, Evidence: ev})
		}
		drows, err := s.r.QueryContext(ctx, `SELECT d.campaign_id, c.name, d.status, d.sent_at FROM deliveries d JOIN campaigns c ON c.id = d.campaign_id
			WHERE d.subscriber_id = $1 AND c.account_id = $2 ORDER BY d.campaign_id`, r.subscriber, r.account)
		if err != nil {
			return nil, err
		}
		rec.Deliveries, err = collect(drows, func(x interface{ Scan(...any) error }) (tidings.DeliveryRecord, error) {
			var d tidings.DeliveryRecord
			var sent sql.NullInt64
			err := x.Scan(&d.CampaignID, &d.CampaignName, &d.Status, &sent)
			d.SentAt = fromDBPtr(sent)
			return d, err
		})
		if err != nil {
			return nil, err
		}
		erows, err := s.r.QueryContext(ctx, `SELECT campaign_id, kind, url, automated, created_at FROM events
			WHERE subscriber_id = $1 AND account_id = $2 ORDER BY created_at, campaign_id`, r.subscriber, r.account)
		if err != nil {
			return nil, err
		}
		rec.Events, err = collect(erows, func(x interface{ Scan(...any) error }) (tidings.EventRecord, error) {
			var e tidings.EventRecord
			var at int64
			err := x.Scan(&e.CampaignID, &e.Kind, &e.URL, &e.Automated, &at)
			e.Time = fromDB(at)
			return e, err
		})
		if err != nil {
			return nil, err
		}
		if rec.Pending, err = s.personPending(ctx, r.account, r.subscriber); err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

// personPending returns the subscriber's unconfirmed double opt-in requests with their
// changes unsealed: data held about the person, so an access request lists them.
func (s *Store) personPending(ctx context.Context, accountID, subscriberID int64) ([]tidings.PendingRecord, error) {
	personID, dk, err := s.subscriberKey(ctx, s.r, accountID, subscriberID)
	if errors.Is(err, tidings.ErrNotFound) {
		return []tidings.PendingRecord{}, nil // erased meanwhile: nothing held
	}
	if err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT lists, created_at, expires_at, changes_sealed FROM pending_confirmations
		WHERE subscriber_id = $1 AND account_id = $2 ORDER BY id`, subscriberID, accountID)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(x interface{ Scan(...any) error }) (tidings.PendingRecord, error) {
		var p tidings.PendingRecord
		var lists string
		var created, expires int64
		var sealed []byte
		if err := x.Scan(&lists, &created, &expires, &sealed); err != nil {
			return p, err
		}
		p.CreatedAt, p.ExpiresAt = fromDB(created), fromDB(expires)
		if p.Lists, err = splitIDs(lists); err != nil {
			return p, err
		}
		ch, err := openChanges(dk, sealed, accountID, personID)
		p.Changes = ch.record()
		return p, err
	})
}

func (s *Store) personLedger(ctx context.Context, accountID, personID int64) ([]tidings.LedgerEntry, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+ledgerCols+` FROM `+s.engine.ledgerOfPerson()+` WHERE account_id = $1 AND person_id = $2 ORDER BY seq`,
		accountID, personID)
	if err != nil {
		return nil, err
	}
	return s.collectLedger(ctx, accountID, rows)
}

func (s *Store) ErasePerson(ctx context.Context, email tidings.Address, accountID int64) (tidings.Erasure, error) {
	er := tidings.Erasure{Accounts: []int64{}}
	now := s.stamp()
	suppress := s.keys.SuppressionHash(email.String())
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var pid int64
		err := tx.QueryRowContext(ctx, `SELECT id FROM persons WHERE email_hash = $1`, s.keys.Lookup(email.String())).Scan(&pid)
		if errors.Is(err, sql.ErrNoRows) {
			if accountID != 0 { // nothing held, but the request still bars re-adding
				return addSuppression(ctx, tx, accountID, suppress, tidings.SuppressErasure, now)
			}
			return nil
		}
		if err != nil {
			return err
		}
		q := `SELECT account_id, id FROM subscribers WHERE person_id = $1`
		args := []any{pid}
		if accountID != 0 {
			q += ` AND account_id = $2`
			args = append(args, accountID)
		}
		q += ` ORDER BY id` // the order event groups lock subscribers in (deleteSubscriber)
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		type ref struct{ account, subscriber int64 }
		var refs []ref
		for rows.Next() {
			var r ref
			rows.Scan(&r.account, &r.subscriber)
			refs = append(refs, r)
		}
		rows.Close()
		for _, r := range refs {
			if err := deleteSubscriber(ctx, tx, s.engine, r.account, r.subscriber, pid); err != nil {
				return err
			}
			if err := addSuppression(ctx, tx, r.account, suppress, tidings.SuppressErasure, now); err != nil {
				return err
			}
			er.Accounts = append(er.Accounts, r.account)
		}
		if accountID != 0 && len(refs) == 0 {
			if err := addSuppression(ctx, tx, accountID, suppress, tidings.SuppressErasure, now); err != nil {
				return err
			}
		}
		var left int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM subscribers WHERE person_id = $1`, pid).Scan(&left); err != nil {
			return err
		}
		if left == 0 {
			// The person, their key, their evidence in every ledger and their portal
			// links and sessions go with their last subscriber.
			if err := s.deletePersonIfUnused(ctx, tx, pid); err != nil {
				return err
			}
			er.KeyDestroyed = true
		}
		return nil
	})
	return er, err
}

// deleteSubscriber deletes one subscriber and everything about them in the account:
// deliveries, events (campaign counters keep the numbers, without the person),
// subscriptions, pending requests and proofs (by cascade), and the evidence sealed in the
// account's ledger; the chain stays verifiable, as only the evidence goes and its digest
// stays. The person and their key are the caller's (deletePersonIfUnused).
//
// On PostgreSQL the subscriber row is locked (FOR UPDATE) after their deliveries are
// deleted and before their events are: an event group that found their consent holds a
// KEY SHARE lock on it until it commits (pgEventConsent), so the erasure waits for that
// group and its deletes, each reading what is committed when it runs, then take the
// events and event_uniques rows the group wrote. Deliveries come first, as in
// RecordFeedback (delivery, then subscriber). A caller deleting several subscribers
// goes in ID order, the order event groups lock them in. On SQLite the one writer runs
// one transaction at a time and no lock is needed.
func deleteSubscriber(ctx context.Context, tx *sql.Tx, engine Engine, accountID, subscriberID, personID int64) error {
	for _, q := range []string{
		`DELETE FROM deliveries WHERE subscriber_id = $1`,
		`SELECT id FROM subscribers WHERE id = $1` + engine.forUpdate(),
		`DELETE FROM events WHERE subscriber_id = $1`, // through events_subscriber (see ARCHITECTURE.md)
		`DELETE FROM event_uniques WHERE subscriber_id = $1`,
		`DELETE FROM subscribers WHERE id = $1`,
	} {
		if _, err := tx.ExecContext(ctx, q, subscriberID); err != nil {
			return err
		}
	}
	_, err := tx.ExecContext(ctx, `UPDATE `+engine.ledgerOfPerson()+` SET evidence_sealed = NULL WHERE account_id = $1 AND person_id = $2`, accountID, personID)
	return err
}

// deletePersonIfUnused deletes a person who is nobody's subscriber any more, and their
// data key with them: whatever is still sealed with it, here or in a backup, is unreadable
// from then on.
func (s *Store) deletePersonIfUnused(ctx context.Context, tx *sql.Tx, personID int64) error {
	var keyID int64
	var lookup []byte
	err := tx.QueryRowContext(ctx, `SELECT key_id, email_hash FROM persons p
		WHERE p.id = $1 AND NOT EXISTS (SELECT 1 FROM subscribers WHERE person_id = $1)`, personID).Scan(&keyID, &lookup)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	// The evidence is unreadable without the key; it goes too, as in an erasure, and the
	// chain, which covers its digest, still verifies.
	if _, err := tx.ExecContext(ctx, `UPDATE ledger SET evidence_sealed = NULL WHERE person_id = $1`, personID); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM persons WHERE id = $1`, personID); err != nil {
		return err
	}
	// Portal links and sessions hold the address, sealed under the instance key: they
	// end with the person (a staff deletion, the inactivity sweep), as with an erasure.
	if _, err := tx.ExecContext(ctx, `DELETE FROM portal_tokens WHERE email_hash = $1`, lookup); err != nil {
		return err
	}
	return s.deleteKey(ctx, tx, keyID)
}

func (s *Store) AddressByDigest(ctx context.Context, accountID int64, digest [sha256.Size]byte) (tidings.Address, error) {
	var sid int64
	err := s.r.QueryRowContext(ctx, `SELECT x.id FROM persons p JOIN subscribers x ON x.person_id = p.id
		WHERE p.email_hash = $1 AND x.account_id = $2`, s.keys.LookupDigest(digest), accountID).Scan(&sid)
	if err != nil {
		return tidings.Address{}, translate(err)
	}
	sub, err := s.GetSubscriber(ctx, accountID, sid)
	return sub.Email, err
}
