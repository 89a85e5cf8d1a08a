package sqlstore

import (
	"context"
	"database/sql"
	"strings"

	"github.com/tidings/tidings/internal/tidings"
)

var opendsrAAD = []byte("tidings/v1 opendsr subject")

func (s *Store) CreateOpenDSR(ctx context.Context, r *tidings.OpenDSRRequest) error {
	var sealed []byte
	if !r.Email.IsZero() {
		sealed = s.keys.SealInstance([]byte(r.Email.String()), opendsrAAD)
	}
	r.ReceivedAt = s.stamp()
	_, err := s.w.ExecContext(ctx, `INSERT INTO opendsr_requests (id, account_id, kind, status, email_sealed, callbacks, received_at, expected_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, r.ID, r.AccountID, r.Kind, r.Status, sealed, strings.Join(r.Callbacks, " "),
		toDB(r.ReceivedAt), toDB(r.ExpectedAt))
	return translate(err)
}

func (s *Store) GetOpenDSR(ctx context.Context, accountID int64, id string) (tidings.OpenDSRRequest, error) {
	r := tidings.OpenDSRRequest{AccountID: accountID}
	var sealed []byte
	var callbacks string
	var received, expected int64
	var completed sql.NullInt64
	err := s.r.QueryRowContext(ctx, `SELECT id, kind, status, email_sealed, callbacks, received_at, expected_at, completed_at
		FROM opendsr_requests WHERE account_id = $1 AND id = $2`, accountID, id).
		Scan(&r.ID, &r.Kind, &r.Status, &sealed, &callbacks, &received, &expected, &completed)
	if err != nil {
		return r, translate(err)
	}
	r.ReceivedAt, r.ExpectedAt, r.CompletedAt = fromDB(received), fromDB(expected), fromDBPtr(completed)
	if callbacks != "" {
		r.Callbacks = strings.Fields(callbacks)
	}
	if sealed != nil {
		raw, err := s.keys.OpenInstance(sealed, opendsrAAD)
		if err != nil {
			return r, err
		}
		r.Email, _ = tidings.ParseAddress(string(raw))
	}
	return r, nil
}

func (s *Store) SetOpenDSRStatus(ctx context.Context, accountID int64, id, status string, keepEmail bool) error {
	var completed sql.NullInt64
	if status == "completed" || status == "cancelled" {
		completed = sql.NullInt64{Int64: toDB(s.stamp()), Valid: true}
	}
	q := `UPDATE opendsr_requests SET status = $3, completed_at = $4 WHERE account_id = $1 AND id = $2`
	if !keepEmail {
		q = `UPDATE opendsr_requests SET status = $3, completed_at = $4, email_sealed = NULL WHERE account_id = $1 AND id = $2`
	}
	return rowsAffected(s.w.ExecContext(ctx, q, accountID, id, status, completed))
}
