package sqlstore

import (
	"context"
	"database/sql"

	"github.com/tidings/tidings/internal/tidings"
)

// UpdateMembership changes or removes a membership, keeping at least one owner. The
// account row is written first: on PostgreSQL that row lock serialises concurrent
// changes of the same account's memberships (SQLite's writer is serial anyway).
func (s *Store) UpdateMembership(ctx context.Context, accountID, userID int64, role tidings.Role) error {
	if role != "" && !role.Valid() {
		return tidings.Invalid("role", "invalid_choice", "must be one of owner, admin, editor, viewer")
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := rowsAffected(tx.ExecContext(ctx, `UPDATE accounts SET updated_at = updated_at WHERE id = $1`, accountID)); err != nil {
			return err
		}
		var current tidings.Role
		err := tx.QueryRowContext(ctx, `SELECT role FROM memberships WHERE account_id = $1 AND user_id = $2`, accountID, userID).Scan(&current)
		if err != nil {
			return translate(err)
		}
		if current == tidings.RoleOwner && role != tidings.RoleOwner {
			var owners int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM memberships WHERE account_id = $1 AND role = $2`,
				accountID, string(tidings.RoleOwner)).Scan(&owners); err != nil {
				return err
			}
			if owners <= 1 {
				return tidings.Invalid("role", "last_owner", "the account must keep at least one owner")
			}
		}
		if role == "" {
			_, err = tx.ExecContext(ctx, `DELETE FROM memberships WHERE account_id = $1 AND user_id = $2`, accountID, userID)
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE memberships SET role = $3 WHERE account_id = $1 AND user_id = $2`, accountID, userID, string(role))
		}
		return translate(err)
	})
}
