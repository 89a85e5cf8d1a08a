package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidings/tidings/internal/keys"
	"github.com/tidings/tidings/internal/tidings"
)

// A subscriber's personal fields are sealed under the person's data key. The additional
// data binds each ciphertext to its account, person and field, so that no ciphertext can
// be moved to another row or column and still open.
func aad(accountID, personID int64, field string) string {
	return string(appendAAD(nil, accountID, personID, field))
}

// appendAAD appends aad's "tidings/v1 account=%d person=%d field=%s" to dst, without fmt
// or a string per field: an import seals three fields a row, a million rows.
func appendAAD(dst []byte, accountID, personID int64, field string) []byte {
	dst = append(dst, "tidings/v1 account="...)
	dst = strconv.AppendInt(dst, accountID, 10)
	dst = append(dst, " person="...)
	dst = strconv.AppendInt(dst, personID, 10)
	dst = append(dst, " field="...)
	return append(dst, field...)
}

// person finds or creates the instance-wide person row for addr and returns its ID and
// data key. newKey is the key newKeyFor made ahead of this transaction for an address
// that had no person (keys commit before the rows that point at them); it is left
// unused, for the sweep, when a concurrent sign-up created the person first. The key is
// read inside the transaction because an erasure may have deleted it meanwhile, and
// data sealed with a deleted key would be lost. Concurrent creators meet at the unique
// email_hash: ON CONFLICT DO NOTHING, then read the winner's row.
func (s *Store) person(ctx context.Context, tx *sql.Tx, addr tidings.Address, newKey int64) (int64, *keys.DataKey, error) {
	hash := s.keys.Lookup(addr.String())
	var id, keyID int64
	err := tx.QueryRowContext(ctx, `SELECT id, key_id FROM persons WHERE email_hash = $1`, hash).Scan(&id, &keyID)
	if err == sql.ErrNoRows {
		if newKey == 0 { // the person was erased since newKeyFor looked
			return 0, nil, errKeyGone
		}
		keyID = newKey
		err = tx.QueryRowContext(ctx, `
			INSERT INTO persons (id, email_hash, key_id, created_at) VALUES (`+s.engine.newID("persons")+`, $1, $2, $3)
			ON CONFLICT (email_hash) DO NOTHING RETURNING id`, hash, newKey, toDB(s.stamp())).Scan(&id)
		if err == sql.ErrNoRows {
			err = tx.QueryRowContext(ctx, `SELECT id, key_id FROM persons WHERE email_hash = $1`, hash).Scan(&id, &keyID)
		}
	}
	if err != nil {
		return 0, nil, translate(err)
	}
	dks, err := s.readKeys(ctx, tx, []int64{keyID})
	if err != nil {
		return 0, nil, err
	}
	if dks[keyID] == nil {
		return 0, nil, errKeyGone
	}
	return id, dks[keyID], nil
}

// sealed are a subscriber's encrypted columns.
type sealed struct{ email, name, attrs []byte }

func seal(dk *keys.DataKey, sub *tidings.Subscriber) (sealed, error) {
	attrs, err := marshalAttributes(sub.Attributes)
	if err != nil {
		return sealed{}, err
	}
	// One buffer for the three fields' additional data, each written over the last.
	prefix := appendAAD(make([]byte, 0, 64), sub.AccountID, sub.PersonID, "")
	field := func(name string) []byte { return append(prefix, name...) }
	out := sealed{email: dk.Seal([]byte(sub.Email.String()), field("email")), attrs: dk.Seal(attrs, field("attributes"))}
	if sub.Name != "" { // as SealString: no name, no ciphertext
		out.name = dk.Seal([]byte(sub.Name), field("name"))
	}
	return out, nil
}

// marshalAttributes encodes attributes as JSON, as json.Marshal would for what reads
// them back (json.Unmarshal), but without reflection when every value is a string, as a
// CSV import's or a form's are: json.Marshal cost an import of a million rows half a
// second of a core. Keys are sorted, as json.Marshal sorts them.
func marshalAttributes(attrs tidings.Attributes) ([]byte, error) {
	if attrs == nil {
		return []byte("null"), nil
	}
	names := make([]string, 0, len(attrs))
	for k, v := range attrs {
		if _, ok := v.(string); !ok {
			return json.Marshal(attrs)
		}
		names = append(names, k)
	}
	slices.Sort(names)
	out := append(make([]byte, 0, 64), '{')
	for i, k := range names {
		if i > 0 {
			out = append(out, ',')
		}
		out = appendJSONString(out, k)
		out = append(out, ':')
		out = appendJSONString(out, attrs[k].(string))
	}
	return append(out, '}'), nil
}

// appendJSONString appends s as a JSON string: a quote and a backslash are escaped with
// a backslash, control characters as \u00XX, and every other byte is kept (JSON allows
// any other character; json.Unmarshal reads invalid UTF-8 as U+FFFD, as json.Marshal
// would have written it). The result is sealed, never put into a page or a script.
func appendJSONString(dst []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// CreateSubscriber: see tidings.SubscriberStore. The row is inserted without consent; a
// granted one is written last, through setTracking: the new subscriber's row, then its
// subscriptions, then the ledger head, the order of every writer of consent.
func (s *Store) CreateSubscriber(ctx context.Context, accountID int64, sub *tidings.Subscriber, lists []int64, status tidings.SubscriptionStatus,
	tracking *tidings.TrackingGrant) error {
	sub.Normalize()
	if err := sub.Validate(); err != nil {
		return err
	}
	if len(lists) > 0 && !status.Valid() {
		return tidings.Invalid("status", "invalid_choice", "must be one of unconfirmed, confirmed, unsubscribed")
	}
	// Every stored consent is in the ledger: the flag is written only by its grant.
	switch {
	case sub.TrackingConsent && tracking == nil:
		return tidings.Invalid("tracking_consent", "grant_required", "a tracking consent needs its grant (who recorded it, and the evidence) for the consent ledger")
	case !sub.TrackingConsent && tracking != nil:
		return tidings.Invalid("tracking_consent", "grant_without_consent", "a tracking grant was given without tracking consent")
	}
	now := s.stamp()
	newKey, err := s.newKeyFor(ctx, sub.Email)
	if err != nil {
		return err
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		pid, dk, err := s.person(ctx, tx, sub.Email, newKey)
		if err != nil {
			return err
		}
		sub.AccountID, sub.PersonID = accountID, pid
		enc, err := seal(dk, sub)
		if err != nil {
			return err
		}
		err = tx.QueryRowContext(ctx, `
			INSERT INTO subscribers (id, account_id, person_id, email_enc, name_enc, attributes_enc, status, tracking_consent, created_at, updated_at)
			VALUES (`+s.engine.newID("subscribers")+`, $1, $2, $3, $4, $5, $6, FALSE, $7, $7) RETURNING id`,
			accountID, pid, enc.email, enc.name, enc.attrs, string(sub.Status), toDB(now)).Scan(&sub.ID)
		if err != nil {
			return translate(err)
		}
		for _, listID := range lists {
			if err := setSubscription(ctx, tx, accountID, sub.ID, listID, status, now); err != nil {
				return err
			}
		}
		sub.CreatedAt, sub.UpdatedAt = now, now
		if tracking == nil {
			return nil
		}
		if err := checkTracks(ctx, tx, accountID); err != nil {
			return err
		}
		return s.setTracking(ctx, tx, accountID, sub.ID, pid, dk, true, tracking.Source, tracking.Evidence, now)
	})
}

// setSubscription upserts one subscription after checking that the list is the account's
// (the foreign key alone would accept another account's list).
func setSubscription(ctx context.Context, tx *sql.Tx, accountID, subscriberID, listID int64, status tidings.SubscriptionStatus, now time.Time) error {
	var one int
	if err := tx.QueryRowContext(ctx, `SELECT 1 FROM lists WHERE account_id = $1 AND id = $2`, accountID, listID).Scan(&one); err != nil {
		if err == sql.ErrNoRows {
			return tidings.Invalid("lists", "unknown_list", "list %d does not exist", listID)
		}
		return err
	}
	var confirmed, unsubscribed sql.NullInt64
	switch status {
	case tidings.SubConfirmed:
		confirmed = sql.NullInt64{Int64: toDB(now), Valid: true}
	case tidings.SubUnsubscribed:
		unsubscribed = sql.NullInt64{Int64: toDB(now), Valid: true}
	}
	_, err := tx.ExecContext(ctx, `
		INSERT INTO subscriptions (list_id, subscriber_id, account_id, status, created_at, confirmed_at, unsubscribed_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (list_id, subscriber_id) DO UPDATE SET status = excluded.status,
			confirmed_at = COALESCE(excluded.confirmed_at, subscriptions.confirmed_at),
			unsubscribed_at = excluded.unsubscribed_at`,
		listID, subscriberID, accountID, string(status), toDB(now), confirmed, unsubscribed)
	return translate(err)
}

const subscriberSelect = `
	SELECT s.id, s.account_id, s.person_id, s.email_enc, s.name_enc, s.attributes_enc, s.status,
		s.tracking_consent, s.created_at, s.updated_at, k.wrapped_key
	FROM subscribers s JOIN persons p ON p.id = s.person_id JOIN person_keys k ON k.id = p.key_id`

func (s *Store) scanSubscriber(row interface{ Scan(...any) error }) (tidings.Subscriber, error) {
	var sub tidings.Subscriber
	var enc sealed
	var wrapped []byte
	var created, updated int64
	err := row.Scan(&sub.ID, &sub.AccountID, &sub.PersonID, &enc.email, &enc.name, &enc.attrs, &sub.Status,
		&sub.TrackingConsent, &created, &updated, &wrapped)
	if err != nil {
		return sub, translate(err)
	}
	sub.CreatedAt, sub.UpdatedAt = fromDB(created), fromDB(updated)
	dk, err := s.keys.UnwrapDataKey(wrapped)
	if err != nil {
		return sub, fmt.Errorf("subscriber %d: %w", sub.ID, err)
	}
	a, p := sub.AccountID, sub.PersonID
	email, err := dk.OpenString(enc.email, aad(a, p, "email"))
	if err != nil {
		return sub, fmt.Errorf("subscriber %d email: %w", sub.ID, err)
	}
	if sub.Email, err = tidings.ParseAddress(email); err != nil {
		return sub, fmt.Errorf("subscriber %d: stored address does not parse: %w", sub.ID, err)
	}
	if sub.Name, err = dk.OpenString(enc.name, aad(a, p, "name")); err != nil {
		return sub, fmt.Errorf("subscriber %d name: %w", sub.ID, err)
	}
	sub.Attributes = tidings.Attributes{}
	if enc.attrs != nil {
		raw, err := dk.Open(enc.attrs, []byte(aad(a, p, "attributes")))
		if err != nil {
			return sub, fmt.Errorf("subscriber %d attributes: %w", sub.ID, err)
		}
		if err := json.Unmarshal(raw, &sub.Attributes); err != nil {
			return sub, fmt.Errorf("subscriber %d attributes: %w", sub.ID, err)
		}
	}
	return sub, nil
}

func (s *Store) GetSubscriber(ctx context.Context, accountID, id int64) (tidings.Subscriber, error) {
	return s.scanSubscriber(s.r.QueryRowContext(ctx, subscriberSelect+` WHERE s.account_id = $1 AND s.id = $2`, accountID, id))
}

// ListSubscribers pages through an account's subscribers in ID order. An address filter
// is an exact match found through the keyed hash; a list filter walks the list's
// subscriptions, which are keyed by (list_id, subscriber_id), so deep pages stay fast.
func (s *Store) ListSubscribers(ctx context.Context, accountID int64, f tidings.SubscriberFilter) ([]tidings.Subscriber, error) {
	p := f.Page.Clamp()
	where := []string{"s.account_id = $1", "s.id > $2"}
	order := "s.id"
	args := []any{accountID, p.After}
	from := subscriberSelect
	if !f.Email.IsZero() {
		args = append(args, s.keys.Lookup(f.Email.String()))
		where = append(where, fmt.Sprintf("p.email_hash = $%d", len(args)))
	}
	if f.ListID != 0 {
		// Walk the subscriptions primary key (list_id, subscriber_id) in order: the page
		// is then a short index range whatever the list's size. Ordering by s.id let
		// PostgreSQL hash-join the whole list first (3.6 s at a million subscribers).
		args = append(args, f.ListID)
		from += fmt.Sprintf(" JOIN subscriptions x ON x.subscriber_id = s.id AND x.list_id = $%d", len(args))
		where[1], order = "x.subscriber_id > $2", "x.subscriber_id"
	}
	if f.Status != "" {
		args = append(args, string(f.Status))
		where = append(where, fmt.Sprintf("s.status = $%d", len(args)))
	}
	args = append(args, p.Limit)
	q := fmt.Sprintf("%s WHERE %s ORDER BY %s LIMIT $%d", from, strings.Join(where, " AND "), order, len(args))
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, s.scanSubscriber)
}

func (s *Store) UpdateSubscriber(ctx context.Context, accountID int64, sub *tidings.Subscriber) error {
	sub.Normalize()
	if err := sub.Validate(); err != nil {
		return err
	}
	now := s.stamp()
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, _, stored, err := s.writeFields(ctx, tx, accountID, sub, now)
		if err == nil {
			sub.TrackingConsent = stored
		}
		return err
	})
}

// EditSubscriber writes an edit by the account holder and, if it changes the tracking
// consent, the change through the ledger (setTracking), in one transaction. The UPDATE
// locks the row on PostgreSQL and returns the consent stored under that lock, so a
// change made meanwhile is compared with rather than overwritten; the ledger head is
// locked after the row, the order SetTrackingConsent has.
func (s *Store) EditSubscriber(ctx context.Context, accountID int64, sub *tidings.Subscriber, source tidings.Source, ev tidings.Evidence) error {
	sub.Normalize()
	if err := sub.Validate(); err != nil {
		return err
	}
	now := s.stamp()
	return s.tx(ctx, func(tx *sql.Tx) error {
		pid, dk, had, err := s.writeFields(ctx, tx, accountID, sub, now)
		if err != nil || sub.TrackingConsent == had {
			return err
		}
		if sub.TrackingConsent {
			if err := checkTracks(ctx, tx, accountID); err != nil {
				return err
			}
		}
		return s.setTracking(ctx, tx, accountID, sub.ID, pid, dk, sub.TrackingConsent, source, ev, now)
	})
}

// writeFields writes the subscriber's name, attributes and status, and returns their
// person, data key and the tracking consent as stored. The address is the person's
// identity and does not change here. Nor does the tracking consent: it changes only
// with its ledger entry (setTracking), and a caller that read the subscriber before
// such a change must not write the old value back.
func (s *Store) writeFields(ctx context.Context, tx *sql.Tx, accountID int64, sub *tidings.Subscriber, now time.Time) (int64, *keys.DataKey, bool, error) {
	pid, dk, err := s.subscriberKey(ctx, tx, accountID, sub.ID)
	if err != nil {
		return 0, nil, false, err
	}
	sub.AccountID, sub.PersonID = accountID, pid
	enc, err := seal(dk, sub)
	if err != nil {
		return 0, nil, false, err
	}
	var created int64
	var tracking bool
	err = tx.QueryRowContext(ctx, `
		UPDATE subscribers SET name_enc = $3, attributes_enc = $4, status = $5, updated_at = $6
		WHERE account_id = $1 AND id = $2 RETURNING created_at, tracking_consent`,
		accountID, sub.ID, enc.name, enc.attrs, string(sub.Status), toDB(now)).Scan(&created, &tracking)
	if err != nil {
		return 0, nil, false, translate(err)
	}
	sub.CreatedAt, sub.UpdatedAt = fromDB(created), now
	return pid, dk, tracking, nil
}

// checkTracks refuses a tracking consent in an account that does not track.
func checkTracks(ctx context.Context, tx *sql.Tx, accountID int64) error {
	var tracks bool
	if err := tx.QueryRowContext(ctx, `SELECT tracking_enabled FROM accounts WHERE id = $1`, accountID).Scan(&tracks); err != nil {
		return translate(err)
	}
	if !tracks {
		return tidings.TrackingOff()
	}
	return nil
}

// DeleteSubscriber deletes the subscriber and everything about them in the account, as
// an erasure does but without an erasure's suppression: the account holder, not the
// person, asked. An unsubscribe the person made is remembered (rememberUnsubscribe).
// A person no other account holds goes too, with their key.
func (s *Store) DeleteSubscriber(ctx context.Context, accountID, id int64) error {
	now := s.stamp()
	return s.tx(ctx, func(tx *sql.Tx) error {
		var personID int64
		if err := tx.QueryRowContext(ctx, `SELECT person_id FROM subscribers WHERE account_id = $1 AND id = $2`, accountID, id).Scan(&personID); err != nil {
			return translate(err)
		}
		if err := s.rememberUnsubscribe(ctx, tx, accountID, id, now); err != nil {
			return err
		}
		if err := deleteSubscriber(ctx, tx, s.engine, accountID, id, personID); err != nil {
			return err
		}
		return s.deletePersonIfUnused(ctx, tx, personID)
	})
}

// rememberUnsubscribe suppresses the address of a subscriber about to be deleted who
// left any list. Leaving one list while staying on others adds no suppression
// (Unsubscribe): the unsubscribed subscription is the memory, and it goes with the
// subscriber, after which an import could add the person back to the list they left.
func (s *Store) rememberUnsubscribe(ctx context.Context, tx *sql.Tx, accountID, subscriberID int64, now time.Time) error {
	var left bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM subscriptions WHERE subscriber_id = $1 AND status = 'unsubscribed')`,
		subscriberID).Scan(&left); err != nil || !left {
		return err
	}
	return s.suppressSubscriber(ctx, tx, subscriberID, tidings.SuppressUnsubscribed, now, accountID)
}

func (s *Store) Subscriptions(ctx context.Context, accountID, subscriberID int64) ([]tidings.Subscription, error) {
	rows, err := s.r.QueryContext(ctx, `
		SELECT list_id, subscriber_id, status, created_at, confirmed_at, unsubscribed_at FROM subscriptions
		WHERE account_id = $1 AND subscriber_id = $2 ORDER BY list_id`, accountID, subscriberID)
	if err != nil {
		return nil, err
	}
	subs, err := collect(rows, func(r interface{ Scan(...any) error }) (tidings.Subscription, error) {
		var x tidings.Subscription
		var created int64
		var confirmed, unsubscribed sql.NullInt64
		err := r.Scan(&x.ListID, &x.SubscriberID, &x.Status, &created, &confirmed, &unsubscribed)
		x.CreatedAt, x.ConfirmedAt, x.UnsubscribedAt = fromDB(created), fromDBPtr(confirmed), fromDBPtr(unsubscribed)
		return x, err
	})
	if err != nil {
		return nil, err
	}
	if len(subs) == 0 {
		// Tell "no subscriptions" from "no such subscriber" (or another account's).
		if _, err := s.GetSubscriber(ctx, accountID, subscriberID); err != nil {
			return nil, err
		}
	}
	if err := s.awaiting(ctx, accountID, subscriberID, subs); err != nil {
		return nil, err
	}
	return subs, nil
}

// awaiting sets AwaitingUntil on the unconfirmed subscriptions that a confirmation
// request still waits for: what tells "asked, not answered yet" from "never asked".
func (s *Store) awaiting(ctx context.Context, accountID, subscriberID int64, subs []tidings.Subscription) error {
	if !slices.ContainsFunc(subs, func(x tidings.Subscription) bool { return x.Status == tidings.SubUnconfirmed }) {
		return nil
	}
	rows, err := s.r.QueryContext(ctx, `SELECT lists, expires_at FROM pending_confirmations
		WHERE account_id = $1 AND subscriber_id = $2 AND expires_at > $3`, accountID, subscriberID, toDB(s.stamp()))
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var ids string
		var expires int64
		if err := rows.Scan(&ids, &expires); err != nil {
			return err
		}
		lists, err := splitIDs(ids)
		if err != nil {
			return err
		}
		until := fromDB(expires)
		for i := range subs {
			x := &subs[i]
			if x.Status == tidings.SubUnconfirmed && slices.Contains(lists, x.ListID) && (x.AwaitingUntil == nil || until.After(*x.AwaitingUntil)) {
				x.AwaitingUntil = &until
			}
		}
	}
	return rows.Err()
}

func (s *Store) SetSubscription(ctx context.Context, accountID, subscriberID, listID int64, status tidings.SubscriptionStatus) error {
	if !status.Valid() {
		return tidings.Invalid("status", "invalid_choice", "must be one of unconfirmed, confirmed, unsubscribed")
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM subscribers WHERE account_id = $1 AND id = $2`, accountID, subscriberID).Scan(&one)
		if err != nil {
			return translate(err)
		}
		err = setSubscription(ctx, tx, accountID, subscriberID, listID, status, s.stamp())
		if v, ok := tidings.AsValidation(err); ok && v.Code == "unknown_list" {
			return tidings.ErrNotFound
		}
		return err
	})
}
