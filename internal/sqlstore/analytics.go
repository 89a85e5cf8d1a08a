package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/tidings/tidings/internal/tidings"
)

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
	rows, err := s.r.QueryContext(ctx, `
		SELECT kind, day, SUM(n) FROM (
			SELECT kind, created_at / 86400000000 AS day, COUNT(*) AS n FROM events
			WHERE account_id = $1 AND campaign_id = $2 AND kind IN ('open', 'click') GROUP BY kind, created_at / 86400000000
			UNION ALL
			SELECT kind, day, SUM(personal + anonymous) AS n FROM event_daily
			WHERE account_id = $1 AND campaign_id = $2 AND kind IN ('open', 'click') GROUP BY kind, day
		) AS d GROUP BY kind, day ORDER BY kind, day`, accountID, campaignID)
	if err != nil {
		return nil, err
	}
	return scanSeries(rows)
}

func (s *Store) ListStats(ctx context.Context, accountID, listID int64) (tidings.ListStats, error) {
	var st tidings.ListStats
	if _, err := s.GetList(ctx, accountID, listID); err != nil {
		return st, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT status, COUNT(*) FROM subscriptions WHERE account_id = $1 AND list_id = $2 GROUP BY status`, accountID, listID)
	if err != nil {
		return st, err
	}
	for rows.Next() {
		var status string
		var n int64
		rows.Scan(&status, &n)
		switch tidings.SubscriptionStatus(status) {
		case tidings.SubConfirmed:
			st.Confirmed = n
		case tidings.SubUnconfirmed:
			st.Unconfirmed = n
		case tidings.SubUnsubscribed:
			st.Unsubscribed = n
		}
	}
	rows.Close()
	rows, err = s.r.QueryContext(ctx, `
		SELECT 'subscribed', created_at / 86400000000, COUNT(*) FROM subscriptions WHERE account_id = $1 AND list_id = $2 GROUP BY created_at / 86400000000
		UNION ALL
		SELECT 'confirmed', confirmed_at / 86400000000, COUNT(*) FROM subscriptions WHERE account_id = $1 AND list_id = $2 AND confirmed_at IS NOT NULL GROUP BY confirmed_at / 86400000000
		UNION ALL
		SELECT 'unsubscribed', unsubscribed_at / 86400000000, COUNT(*) FROM subscriptions WHERE account_id = $1 AND list_id = $2 AND unsubscribed_at IS NOT NULL GROUP BY unsubscribed_at / 86400000000
		ORDER BY 1, 2`, accountID, listID)
	if err != nil {
		return st, err
	}
	st.Daily, err = scanSeries(rows)
	return st, err
}
