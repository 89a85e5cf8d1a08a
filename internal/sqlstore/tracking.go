package sqlstore

import (
	"context"
	"database/sql"

	"github.com/tidings/tidings/internal/tidings"
)

type statDelta struct{ opens, uniqueOpens, anonOpens, clicks, uniqueClicks, anonClicks, automated, unsubscribes int64 }

func (s *Store) RecordEvents(ctx context.Context, events []tidings.Event) error {
	if len(events) == 0 {
		return nil
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		deltas := map[int64]*statDelta{}
		for _, e := range events {
			d := deltas[e.CampaignID]
			if d == nil {
				d = &statDelta{}
				deltas[e.CampaignID] = d
			}
			unique, automated := false, false
			if e.Kind == tidings.EventUnsubscribe {
				e.SubscriberID = 0
			}
			if e.SubscriberID != 0 {
				res, err := tx.ExecContext(ctx, `INSERT INTO event_uniques (campaign_id, subscriber_id, kind) VALUES ($1, $2, $3)
					ON CONFLICT (campaign_id, subscriber_id, kind) DO NOTHING`, e.CampaignID, e.SubscriberID, string(e.Kind))
				if err != nil {
					return err
				}
				n, _ := res.RowsAffected()
				unique = n == 1
				if e.Kind == tidings.EventClick {
					var sent sql.NullInt64
					var opened int
					tx.QueryRowContext(ctx, `SELECT sent_at FROM deliveries WHERE campaign_id = $1 AND subscriber_id = $2`, e.CampaignID, e.SubscriberID).Scan(&sent)
					tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM event_uniques WHERE campaign_id = $1 AND subscriber_id = $2 AND kind = 'open'`,
						e.CampaignID, e.SubscriberID).Scan(&opened)
					automated = sent.Valid && opened == 0 && toDB(e.Time)-sent.Int64 < tidings.ScannerWindow.Microseconds()
				}
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO events (account_id, campaign_id, subscriber_id, kind, url, automated, created_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7)`, e.AccountID, e.CampaignID, e.SubscriberID, string(e.Kind), e.URL, automated, toDB(e.Time)); err != nil {
				return translate(err)
			}
			switch {
			case e.Kind == tidings.EventUnsubscribe:
				d.unsubscribes++
			case e.Kind == tidings.EventOpen && e.SubscriberID == 0:
				d.anonOpens++
			case e.Kind == tidings.EventOpen:
				d.opens++
				if unique {
					d.uniqueOpens++
				}
			case e.SubscriberID == 0:
				d.anonClicks++
			default:
				d.clicks++
				if unique {
					d.uniqueClicks++
				}
			}
			if automated {
				d.automated++
			}
		}
		for id, d := range deltas {
			if _, err := tx.ExecContext(ctx, `
				INSERT INTO campaign_stats (campaign_id, opens, unique_opens, anon_opens, clicks, unique_clicks, anon_clicks, automated, unsubscribes)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
				ON CONFLICT (campaign_id) DO UPDATE SET opens = campaign_stats.opens + excluded.opens,
					unique_opens = campaign_stats.unique_opens + excluded.unique_opens, anon_opens = campaign_stats.anon_opens + excluded.anon_opens,
					clicks = campaign_stats.clicks + excluded.clicks, unique_clicks = campaign_stats.unique_clicks + excluded.unique_clicks,
					anon_clicks = campaign_stats.anon_clicks + excluded.anon_clicks, automated = campaign_stats.automated + excluded.automated,
					unsubscribes = campaign_stats.unsubscribes + excluded.unsubscribes`,
				id, d.opens, d.uniqueOpens, d.anonOpens, d.clicks, d.uniqueClicks, d.anonClicks, d.automated, d.unsubscribes); err != nil {
				return translate(err)
			}
		}
		return nil
	})
}

func (s *Store) CampaignStats(ctx context.Context, accountID, campaignID int64) (tidings.CampaignStats, error) {
	var st tidings.CampaignStats
	p, err := s.CampaignProgress(ctx, accountID, campaignID)
	if err != nil {
		return st, err
	}
	st.Total, st.Delivered, st.Failed = p.Total, p.Sent, p.Failed
	err = s.r.QueryRowContext(ctx, `SELECT opens, unique_opens, anon_opens, clicks, unique_clicks, anon_clicks, automated, unsubscribes
		FROM campaign_stats WHERE campaign_id = $1`, campaignID).
		Scan(&st.Opens, &st.UniqueOpens, &st.AnonOpens, &st.Clicks, &st.UniqueClicks, &st.AnonClicks, &st.Automated, &st.Unsubscribes)
	if err != nil && err != sql.ErrNoRows {
		return st, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT url, COUNT(*) FROM events WHERE campaign_id = $1 AND kind = 'click'
		GROUP BY url ORDER BY COUNT(*) DESC, url LIMIT 10`, campaignID)
	if err != nil {
		return st, err
	}
	st.TopLinks, err = collect(rows, func(r interface{ Scan(...any) error }) (tidings.LinkCount, error) {
		var l tidings.LinkCount
		return l, r.Scan(&l.URL, &l.Clicks)
	})
	return st, err
}
