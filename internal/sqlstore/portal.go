package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/tidings/tidings/internal/tidings"
)

var portalAAD = []byte("tidings/v1 portal token")

func (s *Store) CreatePortalToken(ctx context.Context, hash []byte, email tidings.Address, session bool, expires time.Time) error {
	now := s.stamp()
	return s.tx(ctx, func(tx *sql.Tx) error {
		// Expired rows go whenever a new one comes: they hold a sealed address.
		if _, err := tx.ExecContext(ctx, `DELETE FROM portal_tokens WHERE expires_at < $1`, toDB(now)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO portal_tokens (token_hash, email_sealed, email_hash, expires_at, session) VALUES ($1, $2, $3, $4, $5)`,
			hash, s.keys.SealInstance([]byte(email.String()), portalAAD), s.keys.Lookup(email.String()), toDB(expires), session)
		return translate(err)
	})
}

func (s *Store) UsePortalToken(ctx context.Context, hash []byte, session bool) (tidings.Address, error) {
	var addr tidings.Address
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var sealed []byte
		var expires int64
		err := tx.QueryRowContext(ctx, `SELECT email_sealed, expires_at FROM portal_tokens WHERE token_hash = $1 AND session = $2`,
			hash, session).Scan(&sealed, &expires)
		if err != nil {
			return translate(err)
		}
		if !session { // a sign-in link works once
			// Only the request whose delete took the row consumed it: concurrent ones
			// read it too (READ COMMITTED on PostgreSQL) but delete nothing.
			res, err := tx.ExecContext(ctx, `DELETE FROM portal_tokens WHERE token_hash = $1`, hash)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 0 {
				return tidings.ErrNotFound
			}
		}
		if expires < toDB(s.stamp()) {
			return tidings.ErrNotFound
		}
		raw, err := s.keys.OpenInstance(sealed, portalAAD)
		if err != nil {
			return err
		}
		addr, err = tidings.ParseAddress(string(raw))
		return err
	})
	return addr, err
}

func (s *Store) DeletePortalToken(ctx context.Context, hash []byte) error {
	_, err := s.w.ExecContext(ctx, `DELETE FROM portal_tokens WHERE token_hash = $1`, hash)
	return err
}
