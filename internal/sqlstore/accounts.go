package sqlstore

import (
	"context"
	"database/sql"
	"strings"

	"github.com/tidings/tidings/internal/tidings"
)

const accountCols = `id, name, postal_address, contact_email, privacy_policy_url, tracking_enabled, anonymous_counts, editable_attributes, inactive_days, created_at, updated_at`

func scanAccount(row interface{ Scan(...any) error }) (tidings.Account, error) {
	var a tidings.Account
	var created, updated int64
	var editable string
	err := row.Scan(&a.ID, &a.Name, &a.PostalAddress, &a.ContactEmail, &a.PrivacyPolicyURL, &a.TrackingEnabled, &a.AnonymousCounts, &editable, &a.InactiveDays, &created, &updated)
	a.CreatedAt, a.UpdatedAt = fromDB(created), fromDB(updated)
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
			inactive_days, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING id`,
		a.Name, a.PostalAddress, a.ContactEmail, a.PrivacyPolicyURL, a.TrackingEnabled, a.AnonymousCounts, strings.Join(a.EditableAttributes, ","),
		a.InactiveDays, toDB(now)).Scan(&a.ID)
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
	a.Normalize()
	if err := a.Validate(); err != nil {
		return err
	}
	now := s.stamp()
	err := s.w.QueryRowContext(ctx, `
		UPDATE accounts SET name = $2, postal_address = $3, contact_email = $4, privacy_policy_url = $5,
			tracking_enabled = $6, anonymous_counts = $7, editable_attributes = $8, inactive_days = $9, updated_at = $10
		WHERE id = $1 RETURNING created_at`,
		a.ID, a.Name, a.PostalAddress, a.ContactEmail, a.PrivacyPolicyURL, a.TrackingEnabled, a.AnonymousCounts, strings.Join(a.EditableAttributes, ","),
		a.InactiveDays, toDB(now)).Scan(new(int64))
	if err != nil {
		return translate(err)
	}
	a.UpdatedAt = now
	return nil
}

func (s *Store) DeleteAccount(ctx context.Context, id int64) error {
	return rowsAffected(s.w.ExecContext(ctx, `DELETE FROM accounts WHERE id = $1`, id))
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
