package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/tidings/tidings/internal/tidings"
)

// dayMicros is one UTC day in the microseconds every time column holds.
const dayMicros = 86400000000

func scanSeries(rows *sql.Rows) (tidings.Series, error) {
	defer rows.Close()
	out := tidings.Series{}
	for rows.Next() {
		var name string
		var day, n int64
		if err := rows.Scan(&name, &day, &n); err != nil {
			return nil, err
		}
		out[name] = append(out[name], tidings.DayCount{Day: time.Unix(day*86400, 0).UTC(), Count: n})
	}
	return out, rows.Err()
}

func (s *Store) CampaignDaily(ctx context.Context, accountID, campaignID int64) (tidings.Series, error) {
	if _, err := s.GetCampaign(ctx, accountID, campaignID); err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT kind, day, n FROM campaign_daily WHERE campaign_id = $1 ORDER BY kind, day`, campaignID)
	if err != nil {
		return nil, err
	}
	return scanSeries(rows)
}

// ListStats reads counters that triggers on subscriptions keep, so it costs the same at
// a million subscribers as at ten.
func (s *Store) ListStats(ctx context.Context, accountID, listID int64) (tidings.ListStats, error) {
	var st tidings.ListStats
	if _, err := s.GetList(ctx, accountID, listID); err != nil {
		return st, err
	}
	err := s.r.QueryRowContext(ctx, `SELECT confirmed, unconfirmed, unsubscribed FROM list_counts WHERE list_id = $1`, listID).
		Scan(&st.Confirmed, &st.Unconfirmed, &st.Unsubscribed)
	if err != nil && err != sql.ErrNoRows {
		return st, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT kind, day, n FROM list_daily WHERE list_id = $1 AND n > 0 ORDER BY kind, day`, listID)
	if err != nil {
		return st, err
	}
	st.Daily, err = scanSeries(rows)
	return st, err
}
