package sqlstore

import (
	"context"

	"github.com/tidings/tidings/internal/tidings"
)

func (s *Store) SubscriberLedger(ctx context.Context, accountID, subscriberID int64, p tidings.Page) ([]tidings.LedgerEntry, error) {
	p = p.Clamp()
	var pid int64
	err := s.r.QueryRowContext(ctx, `SELECT person_id FROM subscribers WHERE account_id = $1 AND id = $2`, accountID, subscriberID).Scan(&pid)
	if err != nil {
		return nil, translate(err)
	}
	// ledger_person (person_id, account_id, seq) serves this directly.
	rows, err := s.r.QueryContext(ctx, `SELECT `+ledgerCols+` FROM `+s.engine.ledgerOfPerson()+` WHERE person_id = $1 AND account_id = $2 AND seq > $3 ORDER BY seq LIMIT $4`,
		pid, accountID, p.After, p.Limit)
	if err != nil {
		return nil, err
	}
	return s.collectLedger(ctx, accountID, rows)
}
