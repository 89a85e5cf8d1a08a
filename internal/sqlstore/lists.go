package sqlstore

import (
	"context"

	"github.com/tidings/tidings/internal/tidings"
)

const listCols = `id, account_id, name, description, purpose, lawful_basis, double_opt_in, created_at, updated_at`

func scanList(row interface{ Scan(...any) error }) (tidings.List, error) {
	var l tidings.List
	var created, updated int64
	err := row.Scan(&l.ID, &l.AccountID, &l.Name, &l.Description, &l.Purpose, &l.LawfulBasis, &l.DoubleOptIn, &created, &updated)
	l.CreatedAt, l.UpdatedAt = fromDB(created), fromDB(updated)
	return l, translate(err)
}

func (s *Store) CreateList(ctx context.Context, accountID int64, l *tidings.List) error {
	l.Normalize()
	if err := l.Validate(); err != nil {
		return err
	}
	now := s.stamp()
	err := s.w.QueryRowContext(ctx, `
		INSERT INTO lists (account_id, name, description, purpose, lawful_basis, double_opt_in, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id`,
		accountID, l.Name, l.Description, l.Purpose, string(l.LawfulBasis), l.DoubleOptIn, toDB(now)).Scan(&l.ID)
	if err != nil {
		return translate(err)
	}
	l.AccountID, l.CreatedAt, l.UpdatedAt = accountID, now, now
	return nil
}

func (s *Store) GetList(ctx context.Context, accountID, id int64) (tidings.List, error) {
	return scanList(s.r.QueryRowContext(ctx,
		`SELECT `+listCols+` FROM lists WHERE account_id = $1 AND id = $2`, accountID, id))
}

func (s *Store) GetLists(ctx context.Context, accountID int64, ids []int64) ([]tidings.List, error) {
	if len(ids) > tidings.MaxPageSize {
		return nil, tidings.Invalid("ids", "too_many", "at most %d lists at once", tidings.MaxPageSize)
	}
	if len(ids) == 0 {
		return []tidings.List{}, nil
	}
	args := make([]any, 0, len(ids)+1)
	args = append(args, accountID)
	for _, id := range ids {
		args = append(args, id)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+listCols+` FROM lists WHERE account_id = `+s.engine.param(1)+` AND id IN (`+s.engine.inList(len(ids), 2)+`) ORDER BY id`,
		args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanList)
}

func (s *Store) ListLists(ctx context.Context, accountID int64, p tidings.Page) ([]tidings.List, error) {
	p = p.Clamp()
	rows, err := s.r.QueryContext(ctx, `
		SELECT `+listCols+` FROM lists WHERE account_id = $1 AND id > $2 ORDER BY id LIMIT $3`,
		accountID, p.After, p.Limit)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanList)
}

func (s *Store) UpdateList(ctx context.Context, accountID int64, l *tidings.List) error {
	l.Normalize()
	if err := l.Validate(); err != nil {
		return err
	}
	now := s.stamp()
	var created int64
	err := s.w.QueryRowContext(ctx, `
		UPDATE lists SET name = $3, description = $4, purpose = $5, lawful_basis = $6, double_opt_in = $7, updated_at = $8
		WHERE account_id = $1 AND id = $2 RETURNING created_at`,
		accountID, l.ID, l.Name, l.Description, l.Purpose, string(l.LawfulBasis), l.DoubleOptIn, toDB(now)).Scan(&created)
	if err != nil {
		return translate(err)
	}
	l.AccountID, l.CreatedAt, l.UpdatedAt = accountID, fromDB(created), now
	return nil
}

func (s *Store) DeleteList(ctx context.Context, accountID, id int64) error {
	return rowsAffected(s.w.ExecContext(ctx, `DELETE FROM lists WHERE account_id = $1 AND id = $2`, accountID, id))
}
