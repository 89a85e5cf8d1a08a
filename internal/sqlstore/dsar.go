package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"

	"github.com/tidings/tidings/internal/tidings"
)

func (s *Store) LogDSAR(ctx context.Context, accountID int64, email tidings.Address, kind tidings.DSARKind, source tidings.Source, completed bool) error {
	return s.logDSAR(ctx, accountID, s.keys.Lookup(email.String()), kind, source, completed)
}

func (s *Store) LogDSARDigest(ctx context.Context, accountID int64, digest [sha256.Size]byte, kind tidings.DSARKind, source tidings.Source, completed bool) error {
	return s.logDSAR(ctx, accountID, s.keys.LookupDigest(digest), kind, source, completed)
}

func (s *Store) logDSAR(ctx context.Context, accountID int64, subject []byte, kind tidings.DSARKind, source tidings.Source, completed bool) error {
	now := s.stamp()
	due := now.AddDate(0, 1, 0)
	var done sql.NullInt64
	if completed {
		done = sql.NullInt64{Int64: toDB(now), Valid: true}
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO dsar_requests (account_id, subject_hash, kind, source, received_at, due_at, completed_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, accountID, subject, string(kind), string(source), toDB(now), toDB(due), done)
	return translate(err)
}

func (s *Store) ListDSARs(ctx context.Context, accountID int64, p tidings.Page) ([]tidings.DSAR, error) {
	p = p.Clamp()
	rows, err := s.r.QueryContext(ctx, `SELECT id, account_id, kind, source, received_at, due_at, completed_at FROM dsar_requests
		WHERE account_id = $1 AND id > $2 ORDER BY id LIMIT $3`, accountID, p.After, p.Limit)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r interface{ Scan(...any) error }) (tidings.DSAR, error) {
		var d tidings.DSAR
		var received, due int64
		var done sql.NullInt64
		err := r.Scan(&d.ID, &d.AccountID, &d.Kind, &d.Source, &received, &due, &done)
		d.ReceivedAt, d.DueAt, d.CompletedAt = fromDB(received), fromDB(due), fromDBPtr(done)
		return d, err
	})
}
