package sqlstore

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/tidings/tidings/internal/tidings"
)

// SettingSetupToken holds the hex SHA-256 of the one-time first-operator setup token.
const SettingSetupToken = "setup_token_sha256"

const userCols = `id, email, name, password_hash, operator, created_at`

func scanUser(row interface{ Scan(...any) error }) (tidings.User, error) {
	var u tidings.User
	var created int64
	err := row.Scan(&u.ID, &u.Email, &u.Name, &u.PasswordHash, &u.Operator, &created)
	u.CreatedAt = fromDB(created)
	return u, translate(err)
}

func validateUser(u *tidings.User) error {
	addr, err := tidings.ParseAddress(u.Email)
	if err != nil {
		return err
	}
	u.Email = addr.String()
	u.Name = strings.TrimSpace(u.Name)
	if u.PasswordHash == "" {
		return tidings.Invalid("password", "required", "is required")
	}
	return nil
}

func (s *Store) CreateFirstOperator(ctx context.Context, setupHash []byte, u *tidings.User) error {
	if err := validateUser(u); err != nil {
		return err
	}
	u.Operator = true
	return s.tx(ctx, func(tx *sql.Tx) error {
		var stored string
		err := tx.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = $1`, SettingSetupToken).Scan(&stored)
		if err != nil {
			return translate(err)
		}
		want, _ := hex.DecodeString(stored)
		if len(want) == 0 || subtle.ConstantTimeCompare(want, setupHash) != 1 {
			return tidings.ErrNotFound
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE operator`).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return tidings.ErrNotFound
		}
		if err := insertUser(ctx, tx, u, s.stamp()); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM settings WHERE key = $1`, SettingSetupToken)
		return err
	})
}

func insertUser(ctx context.Context, tx *sql.Tx, u *tidings.User, now interface{ UnixMicro() int64 }) error {
	err := tx.QueryRowContext(ctx, `
		INSERT INTO users (email, name, password_hash, operator, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
		u.Email, u.Name, u.PasswordHash, u.Operator, now.UnixMicro()).Scan(&u.ID)
	if err != nil {
		return translate(err)
	}
	u.CreatedAt = fromDB(now.UnixMicro())
	return nil
}

func (s *Store) CreateUser(ctx context.Context, u *tidings.User) error {
	if err := validateUser(u); err != nil {
		return err
	}
	return s.tx(ctx, func(tx *sql.Tx) error { return insertUser(ctx, tx, u, s.stamp()) })
}

func (s *Store) CreateMember(ctx context.Context, accountID int64, u *tidings.User, role tidings.Role) error {
	if err := validateUser(u); err != nil {
		return err
	}
	if !role.Valid() {
		return tidings.Invalid("role", "invalid_choice", "must be one of owner, admin, editor, viewer")
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := insertUser(ctx, tx, u, s.stamp()); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO memberships (user_id, account_id, role) VALUES ($1, $2, $3)`, u.ID, accountID, string(role))
		return translate(err)
	})
}

func (s *Store) GetUser(ctx context.Context, id int64) (tidings.User, error) {
	return scanUser(s.r.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE id = $1`, id))
}

func (s *Store) UserByEmail(ctx context.Context, email string) (tidings.User, error) {
	addr, err := tidings.ParseAddress(email)
	if err != nil {
		return tidings.User{}, tidings.ErrNotFound
	}
	return scanUser(s.r.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE email = $1`, addr.String()))
}

func (s *Store) CountOperators(ctx context.Context) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE operator`).Scan(&n)
	return n, err
}

func (s *Store) SetMembership(ctx context.Context, accountID, userID int64, role tidings.Role) error {
	if !role.Valid() {
		return tidings.Invalid("role", "invalid_choice", "must be one of owner, admin, editor, viewer")
	}
	_, err := s.w.ExecContext(ctx, `
		INSERT INTO memberships (user_id, account_id, role) VALUES ($1, $2, $3)
		ON CONFLICT (user_id, account_id) DO UPDATE SET role = excluded.role`, userID, accountID, string(role))
	if err != nil {
		return fmt.Errorf("set membership: %w", translate(err))
	}
	return nil
}

func (s *Store) Memberships(ctx context.Context, userID int64) ([]tidings.Membership, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT user_id, account_id, role FROM memberships WHERE user_id = $1 ORDER BY account_id`, userID)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r interface{ Scan(...any) error }) (tidings.Membership, error) {
		var m tidings.Membership
		err := r.Scan(&m.UserID, &m.AccountID, &m.Role)
		return m, err
	})
}
