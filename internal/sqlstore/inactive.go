package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/tidings/tidings/internal/tidings"
)

func (s *Store) AccountsDeletingInactive(ctx context.Context) ([]tidings.Account, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+accountCols+` FROM accounts WHERE inactive_days > 0 ORDER BY id`)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanAccount)
}

// inactiveWhere selects an account's subscribers with no sign of life since $2. Events
// older than the event retention are rolled into anonymous aggregates, but event_uniques
// keeps who opened or clicked which campaign: an open or click of a mail delivered
// since $2 happened since $2, so a rule longer than the event retention still sees it.
const inactiveWhere = `s.account_id = $1 AND s.created_at < $2 AND s.updated_at < $2
	AND NOT EXISTS (SELECT 1 FROM events e WHERE e.subscriber_id = s.id AND e.created_at >= $2)
	AND NOT EXISTS (SELECT 1 FROM event_uniques u JOIN deliveries d ON d.campaign_id = u.campaign_id AND d.subscriber_id = u.subscriber_id
		WHERE u.subscriber_id = s.id AND d.sent_at >= $2)
	AND NOT EXISTS (SELECT 1 FROM subscriptions x WHERE x.subscriber_id = s.id AND x.confirmed_at >= $2)`

func (s *Store) DeleteInactive(ctx context.Context, accountID int64, cutoff time.Time, dryRun bool) (int, error) {
	if dryRun {
		var n int
		err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM subscribers s WHERE `+inactiveWhere, accountID, toDB(cutoff)).Scan(&n)
		return n, err
	}
	var n int
	err := s.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT s.id, s.person_id FROM subscribers s WHERE `+inactiveWhere+
			` ORDER BY s.id`, accountID, toDB(cutoff)) // the order event groups lock subscribers in (deleteSubscriber)
		if err != nil {
			return err
		}
		type ref struct{ id, person int64 }
		var refs []ref
		for rows.Next() {
			var r ref
			rows.Scan(&r.id, &r.person)
			refs = append(refs, r)
		}
		rows.Close()
		now := s.stamp()
		for _, r := range refs {
			if err := s.rememberUnsubscribe(ctx, tx, accountID, r.id, now); err != nil {
				return err
			}
			if err := deleteSubscriber(ctx, tx, s.engine, accountID, r.id, r.person); err != nil {
				return err
			}
			// The person and their key go with their last subscriber anywhere.
			if err := s.deletePersonIfUnused(ctx, tx, r.person); err != nil {
				return err
			}
		}
		n = len(refs)
		return nil
	})
	return n, err
}
