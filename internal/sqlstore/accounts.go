package sqlstore

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"time"

	"github.com/tidings/tidings/internal/tidings"
)

const accountCols = `id, name, postal_address, contact_email, privacy_policy_url, tracking_enabled, anonymous_counts, editable_attributes, inactive_days, event_days, unconfirmed_days, require_totp, public_page_url, public_page_verified_at, created_at, updated_at`

func scanAccount(row interface{ Scan(...any) error }) (tidings.Account, error) {
	var a tidings.Account
	var created, updated int64
	var editable string
	var verified sql.NullInt64
	err := row.Scan(&a.ID, &a.Name, &a.PostalAddress, &a.ContactEmail, &a.PrivacyPolicyURL, &a.TrackingEnabled, &a.AnonymousCounts, &editable, &a.InactiveDays, &a.EventDays, &a.UnconfirmedDays,
		&a.RequireTOTP, &a.PublicPageURL, &verified, &created, &updated)
	a.CreatedAt, a.UpdatedAt = fromDB(created), fromDB(updated)
	a.PublicPageVerifiedAt = fromDBPtr(verified)
	a.EditableAttributes = []string{}
	if editable != "" {
		a.EditableAttributes = strings.Split(editable, ",")
	}
	return a, translate(err)
}

// CreateAccount inserts a; it validates first so that nothing invalid is ever stored.
func (s *Store) CreateAccount(ctx context.Context, a *tidings.Account) error {
	a.Normalize()
	if err := a.Validate(); err != nil {
		return err
	}
	now := s.stamp()
	err := s.w.QueryRowContext(ctx, `
		INSERT INTO accounts (name, postal_address, contact_email, privacy_policy_url, tracking_enabled, anonymous_counts, editable_attributes,
			inactive_days, require_totp, public_page_url, event_days, unconfirmed_days, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $12, $13, $11, $11) RETURNING id`,
		a.Name, a.PostalAddress, a.ContactEmail, a.PrivacyPolicyURL, a.TrackingEnabled, a.AnonymousCounts, strings.Join(a.EditableAttributes, ","),
		a.InactiveDays, a.RequireTOTP, a.PublicPageURL, toDB(now), a.EventDays, a.UnconfirmedDays).Scan(&a.ID)
	if err != nil {
		return translate(err)
	}
	a.CreatedAt, a.UpdatedAt = now, now
	return nil
}

func (s *Store) GetAccount(ctx context.Context, id int64) (tidings.Account, error) {
	return scanAccount(s.r.QueryRowContext(ctx, `SELECT `+accountCols+` FROM accounts WHERE id = $1`, id))
}

func (s *Store) ListAccounts(ctx context.Context, p tidings.Page) ([]tidings.Account, error) {
	p = p.Clamp()
	rows, err := s.r.QueryContext(ctx, `SELECT `+accountCols+` FROM accounts WHERE id > $1 ORDER BY id LIMIT $2`, p.After, p.Limit)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanAccount)
}

func (s *Store) UpdateAccount(ctx context.Context, a *tidings.Account) error {
	var verified sql.NullInt64
	a.Normalize()
	if err := a.Validate(); err != nil {
		return err
	}
	now := s.stamp()
	err := s.w.QueryRowContext(ctx, `
		UPDATE accounts SET name = $2, postal_address = $3, contact_email = $4, privacy_policy_url = $5,
			tracking_enabled = $6, anonymous_counts = $7, editable_attributes = $8, inactive_days = $9, updated_at = $10,
			require_totp = $11, event_days = $13, unconfirmed_days = $14,
			-- a changed public page must be verified again
			public_page_verified_at = CASE WHEN public_page_url = $12 THEN public_page_verified_at END,
			public_page_url = $12
		WHERE id = $1 RETURNING created_at, public_page_verified_at`,
		a.ID, a.Name, a.PostalAddress, a.ContactEmail, a.PrivacyPolicyURL, a.TrackingEnabled, a.AnonymousCounts, strings.Join(a.EditableAttributes, ","),
		a.InactiveDays, toDB(now), a.RequireTOTP, a.PublicPageURL, a.EventDays, a.UnconfirmedDays).Scan(new(int64), &verified)
	if err != nil {
		return translate(err)
	}
	a.UpdatedAt = now
	a.PublicPageVerifiedAt = fromDBPtr(verified)
	return nil
}

// MarkPublicPageVerified records that the account's public page links to Tidings.
func (s *Store) MarkPublicPageVerified(ctx context.Context, accountID int64, url string, at time.Time) error {
	return rowsAffected(s.w.ExecContext(ctx, `UPDATE accounts SET public_page_verified_at = $3 WHERE id = $1 AND public_page_url = $2`,
		accountID, url, toDB(at)))
}

// DeleteAccount deletes the account and everything it owns: by cascade, and explicitly
// the rows kept without a foreign key (the campaigns' uniques and counters, the lists'
// counters, the account's suppressions). People who were subscribers of this account
// and of no other go too, with their data keys: a processor whose contract ends keeps
// nothing of the controller's (GDPR Art. 28(3)(g)), and a lookup hash with a key would
// still say the address was once held here.
//
// On PostgreSQL the locks come in the order of "Lock order" (ARCHITECTURE.md), all
// before the account row's, which every insert of the account's rows reads (KEY SHARE)
// on its way: the campaigns first (FOR UPDATE, in ID order), so that the deletion waits
// for the event groups, reports and send records holding one, or they find it gone;
// then their deliveries, which an erasure deletes before it locks its subscriber; then
// the sending domains (FOR UPDATE), which a campaign being written locks before it
// reads the account row; then the subscribers (FOR UPDATE, in ID order, as event
// groups lock them). The deletion
// used to delete the account row first and the rest by cascade, and deadlocked with an
// event group or a report that held the campaign and then read the account row.
func (s *Store) DeleteAccount(ctx context.Context, id int64) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		const campaigns = `(SELECT id FROM campaigns WHERE account_id = $1)`
		const lists = `(SELECT id FROM lists WHERE account_id = $1)`
		steps := []string{
			`SELECT id FROM campaigns WHERE account_id = $1 ORDER BY id` + s.engine.forUpdate(),
			`DELETE FROM deliveries WHERE campaign_id IN ` + campaigns,
		}
		for _, table := range campaignTables {
			steps = append(steps, `DELETE FROM `+table+` WHERE campaign_id IN `+campaigns)
		}
		steps = append(steps,
			`DELETE FROM campaigns WHERE account_id = $1`, // and their batches and stats
			`SELECT id FROM sending_domains WHERE account_id = $1 ORDER BY id`+s.engine.forUpdate(),
			`SELECT id FROM subscribers WHERE account_id = $1 ORDER BY id`+s.engine.forUpdate(),
			`DELETE FROM list_counts WHERE list_id IN `+lists,
			`DELETE FROM list_daily WHERE list_id IN `+lists,
			`DELETE FROM suppressions WHERE account_id = $1`,
		)
		for _, q := range steps {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return err
			}
		}
		rows, err := tx.QueryContext(ctx, `SELECT p.id, p.key_id FROM subscribers x JOIN persons p ON p.id = x.person_id
			WHERE x.account_id = $1 AND NOT EXISTS (SELECT 1 FROM subscribers y WHERE y.person_id = x.person_id AND y.account_id <> $1)`, id)
		if err != nil {
			return err
		}
		var persons, keyIDs []int64
		for rows.Next() {
			var pid, kid int64
			if err := rows.Scan(&pid, &kid); err != nil {
				rows.Close()
				return err
			}
			persons, keyIDs = append(persons, pid), append(keyIDs, kid)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if err := rowsAffected(tx.ExecContext(ctx, `DELETE FROM accounts WHERE id = $1`, id)); err != nil {
			return err
		}
		// The account's ledger went with it; the people's evidence in other accounts'
		// ledgers (left when they were erased there) is sealed with the keys that go now.
		for ids := range slices.Chunk(persons, 500) {
			args := make([]any, len(ids))
			for i, v := range ids {
				args[i] = v
			}
			in := s.engine.inList(len(ids), 1)
			if _, err := tx.ExecContext(ctx, `UPDATE ledger SET evidence_sealed = NULL WHERE person_id IN (`+in+`)`, args...); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM persons WHERE id IN (`+in+`)`, args...); err != nil {
				return err
			}
		}
		return s.deleteKeys(ctx, tx, keyIDs)
	})
}

// scanInt64 scans a row of one integer column, for collect.
func scanInt64(r interface{ Scan(...any) error }) (int64, error) {
	var n int64
	return n, r.Scan(&n)
}

// collect scans every row with scan and closes rows.
func collect[T any](rows *sql.Rows, scan func(interface{ Scan(...any) error }) (T, error)) ([]T, error) {
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
