package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/tidings/tidings/internal/tidings"
)

type statDelta struct{ opens, uniqueOpens, anonOpens, clicks, uniqueClicks, anonClicks, automated, unsubscribes int64 }

// RecordEvents writes a whole batch with a handful of statements: the uniques insert
// reports which (campaign, subscriber, kind) are new, one query per campaign finds the
// delivery times and earlier opens needed to flag scanners, and one multi-row insert
// stores the events. The counters are bumped once per campaign.
func (s *Store) RecordEvents(ctx context.Context, events []tidings.Event) error {
	if len(events) == 0 {
		return nil
	}
	p := s.engine.param
	return s.tx(ctx, func(tx *sql.Tx) error {
		type key struct {
			campaign, subscriber int64
			kind                 string
		}
		// Which personal events are the first of their kind for that person.
		fresh := map[key]bool{}
		var uargs []any
		var uvals []string
		for i := range events {
			e := &events[i]
			if e.Kind == tidings.EventUnsubscribe {
				e.SubscriberID = 0
			}
			if e.SubscriberID == 0 {
				continue
			}
			k := key{e.CampaignID, e.SubscriberID, string(e.Kind)}
			if _, seen := fresh[k]; seen {
				continue
			}
			fresh[k] = false
			n := len(uargs)
			uargs = append(uargs, k.campaign, k.subscriber, k.kind)
			uvals = append(uvals, "("+p(n+1)+","+p(n+2)+","+p(n+3)+")")
		}
		if len(uargs) > 0 {
			rows, err := tx.QueryContext(ctx, `INSERT INTO event_uniques (campaign_id, subscriber_id, kind) VALUES `+strings.Join(uvals, ",")+
				` ON CONFLICT (campaign_id, subscriber_id, kind) DO NOTHING RETURNING campaign_id, subscriber_id, kind`, uargs...)
			if err != nil {
				return translate(err)
			}
			for rows.Next() {
				var k key
				rows.Scan(&k.campaign, &k.subscriber, &k.kind)
				fresh[k] = true
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}
		// Delivery times and earlier opens of the people who clicked, per campaign.
		clickers := map[int64][]any{}
		for _, e := range events {
			if e.Kind == tidings.EventClick && e.SubscriberID != 0 {
				clickers[e.CampaignID] = append(clickers[e.CampaignID], e.SubscriberID)
			}
		}
		sentAt := map[[2]int64]int64{}
		opened := map[[2]int64]bool{}
		for campaign, subs := range clickers {
			in := make([]string, len(subs))
			for i := range subs {
				in[i] = p(i + 2)
			}
			args := append([]any{campaign}, subs...)
			rows, err := tx.QueryContext(ctx, `SELECT d.subscriber_id, d.sent_at,
				EXISTS (SELECT 1 FROM event_uniques u WHERE u.campaign_id = d.campaign_id AND u.subscriber_id = d.subscriber_id AND u.kind = 'open')
				FROM deliveries d WHERE d.campaign_id = `+p(1)+` AND d.subscriber_id IN (`+strings.Join(in, ",")+`)`, args...)
			if err != nil {
				return err
			}
			for rows.Next() {
				var sub int64
				var sent sql.NullInt64
				var open bool
				rows.Scan(&sub, &sent, &open)
				if sent.Valid {
					sentAt[[2]int64{campaign, sub}] = sent.Int64
				}
				opened[[2]int64{campaign, sub}] = open
			}
			rows.Close()
		}
		deltas := map[int64]*statDelta{}
		var eargs []any
		var evals []string
		for _, e := range events {
			d := deltas[e.CampaignID]
			if d == nil {
				d = &statDelta{}
				deltas[e.CampaignID] = d
			}
			k := key{e.CampaignID, e.SubscriberID, string(e.Kind)}
			unique := fresh[k]
			fresh[k] = false // later duplicates in the same batch are not unique
			automated := false
			if e.Kind == tidings.EventClick && e.SubscriberID != 0 {
				pair := [2]int64{e.CampaignID, e.SubscriberID}
				sent, ok := sentAt[pair]
				automated = ok && !opened[pair] && toDB(e.Time)-sent < tidings.ScannerWindow.Microseconds()
			}
			if e.Kind == tidings.EventOpen && e.SubscriberID != 0 {
				opened[[2]int64{e.CampaignID, e.SubscriberID}] = true
			}
			n := len(eargs)
			eargs = append(eargs, e.AccountID, e.CampaignID, e.SubscriberID, string(e.Kind), e.URL, automated, toDB(e.Time))
			evals = append(evals, "("+p(n+1)+","+p(n+2)+","+p(n+3)+","+p(n+4)+","+p(n+5)+","+p(n+6)+","+p(n+7)+")")
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
		if _, err := tx.ExecContext(ctx, `INSERT INTO events (account_id, campaign_id, subscriber_id, kind, url, automated, created_at) VALUES `+
			strings.Join(evals, ","), eargs...); err != nil {
			return translate(err)
		}
		if err := bumpDailyAndLinks(ctx, tx, events); err != nil {
			return err
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
	rows, err := s.r.QueryContext(ctx, `SELECT url, clicks FROM campaign_links WHERE campaign_id = $1 ORDER BY clicks DESC, url LIMIT 10`, campaignID)
	if err != nil {
		return st, err
	}
	st.TopLinks, err = collect(rows, func(r interface{ Scan(...any) error }) (tidings.LinkCount, error) {
		var l tidings.LinkCount
		return l, r.Scan(&l.URL, &l.Clicks)
	})
	return st, err
}

func (s *Store) RollUpEvents(ctx context.Context, accountID int64, cutoff time.Time, dryRun bool) (int64, error) {
	if dryRun {
		var n int64
		err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM events WHERE created_at < $1 AND ($2 = 0 OR account_id = $2)`, toDB(cutoff), accountID).Scan(&n)
		return n, err
	}
	var n int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		// Integer division by a day of microseconds gives the UTC day in both engines.
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO event_daily (account_id, campaign_id, day, kind, url, personal, anonymous)
			SELECT account_id, campaign_id, created_at / 86400000000, kind, url,
				SUM(CASE WHEN subscriber_id <> 0 THEN 1 ELSE 0 END), SUM(CASE WHEN subscriber_id = 0 THEN 1 ELSE 0 END)
			FROM events WHERE created_at < $1 AND ($2 = 0 OR account_id = $2)
			GROUP BY account_id, campaign_id, created_at / 86400000000, kind, url
			ON CONFLICT (campaign_id, day, kind, url) DO UPDATE SET
				personal = event_daily.personal + excluded.personal, anonymous = event_daily.anonymous + excluded.anonymous`,
			toDB(cutoff), accountID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM events WHERE created_at < $1 AND ($2 = 0 OR account_id = $2)`, toDB(cutoff), accountID)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

func (s *Store) EventTotals(ctx context.Context, accountID, campaignID int64) (tidings.EventTotals, error) {
	t := tidings.EventTotals{}
	rows, err := s.r.QueryContext(ctx, `
		SELECT kind, SUM(CASE WHEN subscriber_id <> 0 THEN 1 ELSE 0 END), SUM(CASE WHEN subscriber_id = 0 THEN 1 ELSE 0 END)
		FROM events WHERE account_id = $1 AND campaign_id = $2 GROUP BY kind
		UNION ALL
		SELECT kind, SUM(personal), SUM(anonymous) FROM event_daily WHERE account_id = $1 AND campaign_id = $2 GROUP BY kind`,
		accountID, campaignID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var kind string
		var personal, anonymous int64
		if err := rows.Scan(&kind, &personal, &anonymous); err != nil {
			return nil, err
		}
		v := t[tidings.EventKind(kind)]
		t[tidings.EventKind(kind)] = [2]int64{v[0] + personal, v[1] + anonymous}
	}
	return t, rows.Err()
}

// bumpDailyAndLinks adds a batch of events to the per-day and per-link counters.
func bumpDailyAndLinks(ctx context.Context, tx *sql.Tx, events []tidings.Event) error {
	type day struct {
		campaign, day int64
		kind          string
	}
	type link struct {
		campaign int64
		url      string
	}
	days, links := map[day]int64{}, map[link]int64{}
	for _, e := range events {
		if e.Kind != tidings.EventOpen && e.Kind != tidings.EventClick {
			continue
		}
		days[day{e.CampaignID, toDB(e.Time) / dayMicros, string(e.Kind)}]++
		if e.Kind == tidings.EventClick {
			links[link{e.CampaignID, e.URL}]++
		}
	}
	for k, n := range days {
		if _, err := tx.ExecContext(ctx, `INSERT INTO campaign_daily (campaign_id, day, kind, n) VALUES ($1, $2, $3, $4)
			ON CONFLICT (campaign_id, day, kind) DO UPDATE SET n = campaign_daily.n + excluded.n`, k.campaign, k.day, k.kind, n); err != nil {
			return err
		}
	}
	for k, n := range links {
		if _, err := tx.ExecContext(ctx, `INSERT INTO campaign_links (campaign_id, url, clicks) VALUES ($1, $2, $3)
			ON CONFLICT (campaign_id, url) DO UPDATE SET clicks = campaign_links.clicks + excluded.clicks`, k.campaign, k.url, n); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) AccountsWithShorterRetention(ctx context.Context) ([]tidings.Account, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+accountCols+` FROM accounts WHERE event_days > 0 OR unconfirmed_days > 0 ORDER BY id`)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanAccount)
}
