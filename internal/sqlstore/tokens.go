package sqlstore

import (
	"context"
	"database/sql"
	"strings"

	"github.com/tidings/tidings/internal/tidings"
)

func (s *Store) CreateToken(ctx context.Context, t *tidings.APIToken, hash []byte) error {
	t.Name = strings.TrimSpace(t.Name)
	if t.Name == "" {
		t.Name = "API token"
	}
	if len(t.Name) > 200 {
		return tidings.Invalid("name", "too_long", "must be at most 200 bytes")
	}
	if len(hash) < 32 {
		return tidings.Invalid("token", "invalid", "token hash must be a SHA-256")
	}
	now := s.stamp()
	err := s.w.QueryRowContext(ctx, `
		INSERT INTO api_tokens (account_id, name, prefix, token_hash, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
		nullID(t.AccountID), t.Name, t.Prefix, hash, toDB(now)).Scan(&t.ID)
	if err != nil {
		return translate(err)
	}
	t.CreatedAt = now
	return nil
}

// TokenByHash finds the token and records its use. last_used_at is only written when it
// is more than a minute old, so a busy API client does not turn reads into writes.
func (s *Store) TokenByHash(ctx context.Context, hash []byte) (tidings.APIToken, error) {
	var t tidings.APIToken
	var account sql.NullInt64
	var created int64
	var used sql.NullInt64
	err := s.r.QueryRowContext(ctx, `
		SELECT id, account_id, name, prefix, created_at, last_used_at FROM api_tokens WHERE token_hash = $1`, hash).
		Scan(&t.ID, &account, &t.Name, &t.Prefix, &created, &used)
	if err != nil {
		return t, translate(err)
	}
	t.AccountID, t.CreatedAt, t.LastUsedAt = account.Int64, fromDB(created), fromDBPtr(used)
	now := s.stamp()
	if !used.Valid || now.UnixMicro()-used.Int64 > 60e6 {
		if _, err := s.w.ExecContext(ctx, `UPDATE api_tokens SET last_used_at = $2 WHERE id = $1`, t.ID, toDB(now)); err != nil {
			return t, err
		}
		t.LastUsedAt = &now
	}
	return t, nil
}

func (s *Store) ListTokens(ctx context.Context, accountID int64) ([]tidings.APIToken, error) {
	rows, err := s.r.QueryContext(ctx, `
		SELECT id, account_id, name, prefix, created_at, last_used_at FROM api_tokens
		WHERE account_id IS NOT DISTINCT FROM $1 ORDER BY id`, nullID(accountID))
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r interface{ Scan(...any) error }) (tidings.APIToken, error) {
		var t tidings.APIToken
		var account, used sql.NullInt64
		var created int64
		err := r.Scan(&t.ID, &account, &t.Name, &t.Prefix, &created, &used)
		t.AccountID, t.CreatedAt, t.LastUsedAt = account.Int64, fromDB(created), fromDBPtr(used)
		return t, err
	})
}

func (s *Store) DeleteToken(ctx context.Context, accountID, id int64) error {
	return rowsAffected(s.w.ExecContext(ctx,
		`DELETE FROM api_tokens WHERE id = $1 AND account_id IS NOT DISTINCT FROM $2`, id, nullID(accountID)))
}

// nullID stores account 0 (operator scope) as NULL.
func nullID(id int64) sql.NullInt64 { return sql.NullInt64{Int64: id, Valid: id != 0} }
