package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/tidings/tidings/internal/tidings"
)

type statDelta struct{ opens, uniqueOpens, anonOpens, clicks, uniqueClicks, anonClicks, automated, unsubscribes int64 }

// eventKey marks a person's first event of a kind in a campaign (event_uniques).
type eventKey struct {
	campaign, subscriber int64
	kind                 string
}

// The statements RecordEvents runs on SQLite once per campaign, day or link of a group;
// the per-event steps have multi-row forms, prepared in a few sizes (sqliteEventStmts).
// PostgreSQL takes arrays instead: the uniques, the deliveries, and then the events with
// every counter (pgEventWrite), one round trip each.
const (
	sqlEventDaily = `INSERT INTO campaign_daily (campaign_id, day, kind, n) VALUES ($1, $2, $3, $4)
		ON CONFLICT (campaign_id, day, kind) DO UPDATE SET n = campaign_daily.n + excluded.n`
	sqlEventLink = `INSERT INTO campaign_links (campaign_id, url, clicks) VALUES ($1, $2, $3)
		ON CONFLICT (campaign_id, url) DO UPDATE SET clicks = campaign_links.clicks + excluded.clicks`
	sqlEventStats = `INSERT INTO campaign_stats (campaign_id, opens, unique_opens, anon_opens, clicks, unique_clicks, anon_clicks, automated, unsubscribes)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (campaign_id) DO UPDATE SET opens = campaign_stats.opens + excluded.opens,
			unique_opens = campaign_stats.unique_opens + excluded.unique_opens, anon_opens = campaign_stats.anon_opens + excluded.anon_opens,
			clicks = campaign_stats.clicks + excluded.clicks, unique_clicks = campaign_stats.unique_clicks + excluded.unique_clicks,
			anon_clicks = campaign_stats.anon_clicks + excluded.anon_clicks, automated = campaign_stats.automated + excluded.automated,
			unsubscribes = campaign_stats.unsubscribes + excluded.unsubscribes`

	// PostgreSQL: a whole group per statement, with arrays. The text never changes, so
	// pgx prepares each once per connection.
	pgEventUniques = `INSERT INTO event_uniques (campaign_id, subscriber_id, kind)
		SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[])
		ON CONFLICT (campaign_id, subscriber_id, kind) DO NOTHING RETURNING campaign_id, subscriber_id, kind`
	// The subscribers whose consent stands are locked (KEY SHARE, in ID order) until the
	// group commits: an erasure or deletion (deleteSubscriber) waits, and then deletes
	// what the group wrote; one that came first has deleted them, and the group's events
	// for them are anonymous. Updates of other columns (consent withdrawn) do not wait:
	// the group then counts as written before them, which changes no row they write.
	pgEventConsent = `SELECT s.account_id, s.id FROM subscribers s JOIN accounts a ON a.id = s.account_id
		WHERE s.id = ANY($1::bigint[]) AND s.tracking_consent AND s.status = 'active' AND a.tracking_enabled
		ORDER BY s.id FOR KEY SHARE OF s`
	// The group's campaigns are locked first (KEY SHARE, in ID order), before the
	// subscribers and the counter rows: DeleteCampaign locks the campaign before it
	// deletes its rows, so both take their locks in one order (see "Lock order" in
	// ARCHITECTURE.md). The rows found are the campaigns that still exist; the events
	// of the others are left out of the group.
	pgEventCampaigns  = `SELECT id, account_id FROM campaigns WHERE id = ANY($1::bigint[]) ORDER BY id FOR KEY SHARE`
	pgEventDeliveries = `SELECT d.campaign_id, d.subscriber_id, d.sent_at,
		EXISTS (SELECT 1 FROM event_uniques u WHERE u.campaign_id = d.campaign_id AND u.subscriber_id = d.subscriber_id AND u.kind = 'open')
		FROM deliveries d WHERE (d.campaign_id, d.subscriber_id) IN (SELECT * FROM unnest($1::bigint[], $2::bigint[]))`
)

// sqliteEventStmts are the statements prepared on SQLite's writer. Groups differ in
// size, so multi-row statements sized to the group had a new text almost every time,
// and SQLite spent about a quarter of the server's CPU parsing them. The per-event
// statements (uniques, deliveries, events) come instead in a few fixed sizes
// (sqliteChunks): a group is cut into chunks of those sizes, largest first, so a group
// of 20 takes two statements instead of 20, and each is parsed once per Store.
var sqliteEventStmts = []string{sqlEventDaily, sqlEventLink, sqlEventStats} // and the chunks (init)

// sqliteChunks are the sizes of SQLite's multi-row event statements, largest first;
// the last must be 1.
var sqliteChunks = []int{64, 16, 4, 1}

// The multi-row statements by size. They bind anonymous ? parameters (see
// Engine.param), in the order they appear.
var sqliteUniques, sqliteFresh, sqliteDeliveries, sqliteInserts = map[int]string{}, map[int]string{}, map[int]string{}, map[int]string{}

// sqliteConsent finds, among n subscriber IDs, those whose tracking consent stands.
var sqliteConsent = map[int]string{}

// sqliteCampaigns finds, among n campaign IDs, the campaigns that exist, with their
// accounts.
var sqliteCampaigns = map[int]string{}

func init() {
	for _, n := range sqliteChunks {
		// Which keys are new, then an insert of those. (An insert RETURNING the
		// rows it added collects them in a temporary B-tree first, opened and closed
		// per statement: a tenth of the server's CPU under tracking load.) The writer
		// holds the write lock, so nobody adds a key in between; OR IGNORE needs no
		// statement journal.
		sqliteFresh[n] = `WITH p (campaign_id, subscriber_id, kind) AS (VALUES ` + rows(n, 3) + `)
			SELECT p.campaign_id, p.subscriber_id, p.kind FROM p WHERE NOT EXISTS (SELECT 1 FROM event_uniques u
			WHERE u.campaign_id = p.campaign_id AND u.subscriber_id = p.subscriber_id AND u.kind = p.kind)`
		sqliteUniques[n] = `INSERT OR IGNORE INTO event_uniques (campaign_id, subscriber_id, kind) VALUES ` + rows(n, 3)
		sqliteDeliveries[n] = `WITH p (campaign_id, subscriber_id) AS (VALUES ` + rows(n, 2) + `)
			SELECT d.campaign_id, d.subscriber_id, d.sent_at,
			EXISTS (SELECT 1 FROM event_uniques u WHERE u.campaign_id = d.campaign_id AND u.subscriber_id = d.subscriber_id AND u.kind = 'open')
			FROM p JOIN deliveries d ON d.campaign_id = p.campaign_id AND d.subscriber_id = p.subscriber_id`
		sqliteInserts[n] = `INSERT INTO events (account_id, campaign_id, subscriber_id, kind, url, automated, created_at) VALUES ` + rows(n, 7)
		sqliteConsent[n] = `WITH p (id) AS (VALUES ` + rows(n, 1) + `)
			SELECT s.account_id, s.id FROM p JOIN subscribers s ON s.id = p.id JOIN accounts a ON a.id = s.account_id
			WHERE s.tracking_consent AND s.status = 'active' AND a.tracking_enabled`
		sqliteCampaigns[n] = `WITH p (id) AS (VALUES ` + rows(n, 1) + `)
			SELECT c.id, c.account_id FROM p JOIN campaigns c ON c.id = p.id`
		sqliteEventStmts = append(sqliteEventStmts, sqliteFresh[n], sqliteUniques[n], sqliteDeliveries[n], sqliteInserts[n], sqliteConsent[n],
			sqliteCampaigns[n])
	}
}

// rows returns n rows of width anonymous parameters: "(?,?),(?,?)".
func rows(n, width int) string { return SQLite.values(n, slices.Repeat([]string{"?"}, width)...) }

// chunk returns the size of the next chunk of a group with left items to go.
func chunk(left int) int {
	for _, n := range sqliteChunks {
		if n <= left {
			return n
		}
	}
	return 1
}

// eventStatements prepares sqliteEventStmts once per Store. It runs outside any
// transaction: the writer pool has one connection, which a transaction would hold.
func (s *Store) eventStatements(ctx context.Context) (map[string]*sql.Stmt, error) {
	s.eventMu.Lock()
	defer s.eventMu.Unlock()
	if s.eventStmts != nil {
		return s.eventStmts, nil
	}
	m := map[string]*sql.Stmt{}
	for _, q := range sqliteEventStmts {
		st, err := s.w.PrepareContext(ctx, q)
		if err != nil {
			for _, st := range m {
				st.Close()
			}
			return nil, err
		}
		m[q] = st
	}
	s.eventStmts = m
	return m, nil
}

// eventTx runs RecordEvents' statements in one transaction: on SQLite the prepared
// statements, bound to the transaction once each; on PostgreSQL the text.
type eventTx struct {
	ctx      context.Context
	tx       *sql.Tx
	prepared map[string]*sql.Stmt // SQLite only
	bound    map[string]*sql.Stmt
	fresh    map[eventKey]bool // keys new to event_uniques in this group
}

func (e *eventTx) stmt(query string) *sql.Stmt {
	st := e.bound[query]
	if st == nil {
		st = e.tx.StmtContext(e.ctx, e.prepared[query])
		e.bound[query] = st
	}
	return st
}

func (e *eventTx) exec(query string, args ...any) (sql.Result, error) {
	return e.stmt(query).ExecContext(e.ctx, args...)
}

// RecordEvents writes a whole group in one transaction: the uniques insert reports which
// (campaign, subscriber, kind) are new, the deliveries of the people who clicked give
// the times and earlier opens needed to flag scanners, then the events, and the
// counters once per campaign, day and link. Events of campaigns deleted meanwhile are
// left out, and reported (tidings.DroppedEventsError) after the rest has committed.
func (s *Store) RecordEvents(ctx context.Context, events []tidings.Event) error {
	if len(events) == 0 {
		return nil
	}
	var prepared map[string]*sql.Stmt
	if s.engine == SQLite {
		var err error
		if prepared, err = s.eventStatements(ctx); err != nil {
			return err
		}
	}
	for i := range events {
		if events[i].Kind == tidings.EventUnsubscribe {
			events[i].SubscriberID = 0
		}
	}
	var dropped []int
	err := s.tx(ctx, func(tx *sql.Tx) error {
		e := &eventTx{ctx: ctx, tx: tx, prepared: prepared, bound: map[string]*sql.Stmt{}}
		// On SQLite the group runs on the one writer, in a transaction begun IMMEDIATE:
		// no erasure, deletion or consent change can commit between the checks below and
		// the writes, so nothing is locked there.
		var err error
		if events, dropped, err = e.liveCampaigns(events); err != nil || len(events) == 0 {
			return err
		}
		// Consent is checked again now: the link was made at send time, and since then
		// the person may have withdrawn their tracking consent or been erased. Their
		// event is then counted anonymously, never linked to them.
		if err := e.anonymiseWithoutConsent(events); err != nil {
			return err
		}
		// Which personal events are the first of their kind for that person. The
		// inserts come first: the delivery lookup below sees opens of this same group.
		fresh := map[eventKey]bool{}
		var keys []eventKey
		for _, ev := range events {
			if ev.SubscriberID == 0 {
				continue
			}
			k := eventKey{ev.CampaignID, ev.SubscriberID, string(ev.Kind)}
			if _, seen := fresh[k]; !seen {
				fresh[k] = false
				keys = append(keys, k)
			}
		}
		e.fresh = fresh
		if err := e.uniques(keys); err != nil {
			return err
		}
		// Delivery times and earlier opens of the people who clicked.
		var clickers [][2]int64
		seen := map[[2]int64]bool{}
		for _, ev := range events {
			pair := [2]int64{ev.CampaignID, ev.SubscriberID}
			if ev.Kind == tidings.EventClick && ev.SubscriberID != 0 && !seen[pair] {
				seen[pair] = true
				clickers = append(clickers, pair)
			}
		}
		sentAt := map[[2]int64]int64{}
		opened := map[[2]int64]bool{}
		if err := e.deliveries(clickers, func(pair [2]int64, sent sql.NullInt64, open bool) {
			if sent.Valid {
				sentAt[pair] = sent.Int64
			}
			opened[pair] = open
		}); err != nil {
			return err
		}
		deltas := map[int64]*statDelta{}
		automated := make([]bool, len(events))
		for i, ev := range events {
			d := deltas[ev.CampaignID]
			if d == nil {
				d = &statDelta{}
				deltas[ev.CampaignID] = d
			}
			k := eventKey{ev.CampaignID, ev.SubscriberID, string(ev.Kind)}
			unique := fresh[k]
			fresh[k] = false // later duplicates in the same group are not unique
			if ev.Kind == tidings.EventClick && ev.SubscriberID != 0 {
				pair := [2]int64{ev.CampaignID, ev.SubscriberID}
				sent, ok := sentAt[pair]
				automated[i] = ok && !opened[pair] && toDB(ev.Time)-sent < tidings.ScannerWindow.Microseconds()
			}
			if ev.Kind == tidings.EventOpen && ev.SubscriberID != 0 {
				opened[[2]int64{ev.CampaignID, ev.SubscriberID}] = true
			}
			switch {
			case ev.Kind == tidings.EventUnsubscribe:
				d.unsubscribes++
			case ev.Kind == tidings.EventOpen && ev.SubscriberID == 0:
				d.anonOpens++
			case ev.Kind == tidings.EventOpen:
				d.opens++
				if unique {
					d.uniqueOpens++
				}
			case ev.SubscriberID == 0:
				d.anonClicks++
			default:
				d.clicks++
				if unique {
					d.uniqueClicks++
				}
			}
			if automated[i] {
				d.automated++
			}
		}
		if e.prepared == nil {
			// PostgreSQL: the events and every counter in one statement, one round trip.
			return translate(e.pgWrite(events, automated, deltas))
		}
		if err := e.insertEvents(events, automated); err != nil {
			return translate(err)
		}
		if err := e.bumpDailyAndLinks(events); err != nil {
			return err
		}
		for id, d := range deltas {
			if _, err := e.exec(sqlEventStats, id, d.opens, d.uniqueOpens, d.anonOpens, d.clicks, d.uniqueClicks, d.anonClicks,
				d.automated, d.unsubscribes); err != nil {
				return translate(err)
			}
		}
		return nil
	})
	if err == nil && len(dropped) > 0 {
		return &tidings.DroppedEventsError{Indexes: dropped}
	}
	return err
}

// liveCampaigns returns the events whose campaign exists in the event's account, and
// the positions of the others: a campaign deleted since its mail went out has no
// counter rows left to add to, and one event of it must not sink its group. On
// PostgreSQL the campaigns found are locked (pgEventCampaigns) until the group
// commits, so they cannot go meanwhile; the first lock the group takes. The events are
// returned as they came when none is left out.
func (e *eventTx) liveCampaigns(events []tidings.Event) ([]tidings.Event, []int, error) {
	var ids []int64
	seen := map[int64]bool{}
	for _, ev := range events {
		if !seen[ev.CampaignID] {
			seen[ev.CampaignID] = true
			ids = append(ids, ev.CampaignID)
		}
	}
	accountOf := make(map[int64]int64, len(ids))
	scan := func(rows *sql.Rows, err error) error {
		if err != nil {
			return translate(err)
		}
		defer rows.Close()
		for rows.Next() {
			var id, account int64
			if err := rows.Scan(&id, &account); err != nil {
				return err
			}
			accountOf[id] = account
		}
		return rows.Err()
	}
	if e.prepared != nil {
		if err := e.chunkedIDs(sqliteCampaigns, ids, scan); err != nil {
			return nil, nil, err
		}
	} else if err := scan(e.tx.QueryContext(e.ctx, pgEventCampaigns, ids)); err != nil {
		return nil, nil, err
	}
	var dropped []int
	for i, ev := range events {
		if account, ok := accountOf[ev.CampaignID]; !ok || account != ev.AccountID {
			dropped = append(dropped, i)
		}
	}
	if len(dropped) == 0 {
		return events, nil, nil
	}
	live := make([]tidings.Event, 0, len(events)-len(dropped))
	for i, ev := range events {
		if !slices.Contains(dropped, i) {
			live = append(live, ev)
		}
	}
	return live, dropped, nil
}

// chunkedIDs runs one of SQLite's statements over ids (stmts by chunk size), handing
// each result to scan.
func (e *eventTx) chunkedIDs(stmts map[int]string, ids []int64, scan func(*sql.Rows, error) error) error {
	args := make([]any, 0, sqliteChunks[0])
	for len(ids) > 0 {
		n := chunk(len(ids))
		args = args[:0]
		for _, id := range ids[:n] {
			args = append(args, id)
		}
		if err := scan(e.stmt(stmts[n]).QueryContext(e.ctx, args...)); err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}

// anonymiseWithoutConsent clears the subscriber of every event whose subscriber does
// not exist in the event's account (erased) or has no tracking consent (withdrawn).
func (e *eventTx) anonymiseWithoutConsent(events []tidings.Event) error {
	var ids []int64
	seen := map[int64]bool{}
	for _, ev := range events {
		if ev.SubscriberID != 0 && !seen[ev.SubscriberID] {
			seen[ev.SubscriberID] = true
			ids = append(ids, ev.SubscriberID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	consented := map[[2]int64]bool{} // account, subscriber
	scan := func(rows *sql.Rows, err error) error {
		if err != nil {
			return translate(err)
		}
		defer rows.Close()
		for rows.Next() {
			var k [2]int64
			if err := rows.Scan(&k[0], &k[1]); err != nil {
				return err
			}
			consented[k] = true
		}
		return rows.Err()
	}
	if e.prepared != nil {
		if err := e.chunkedIDs(sqliteConsent, ids, scan); err != nil {
			return err
		}
	} else if err := scan(e.tx.QueryContext(e.ctx, pgEventConsent, ids)); err != nil {
		return err
	}
	for i := range events {
		if events[i].SubscriberID != 0 && !consented[[2]int64{events[i].AccountID, events[i].SubscriberID}] {
			events[i].SubscriberID = 0
		}
	}
	return nil
}

// uniques inserts keys into event_uniques and marks in e.fresh those that were new.
func (e *eventTx) uniques(keys []eventKey) error {
	if len(keys) == 0 {
		return nil
	}
	if e.prepared != nil {
		args := make([]any, 0, 3*sqliteChunks[0])
		chunks := func(keys []eventKey, run func(n int, args []any) error) error {
			for len(keys) > 0 {
				n := chunk(len(keys))
				args = args[:0]
				for _, k := range keys[:n] {
					args = append(args, k.campaign, k.subscriber, k.kind)
				}
				if err := run(n, args); err != nil {
					return err
				}
				keys = keys[n:]
			}
			return nil
		}
		var fresh []eventKey
		if err := chunks(keys, func(n int, args []any) error {
			found, err := e.scanUniques(e.stmt(sqliteFresh[n]).QueryContext(e.ctx, args...))
			fresh = append(fresh, found...)
			return err
		}); err != nil {
			return err
		}
		return chunks(fresh, func(n int, args []any) error {
			_, err := e.stmt(sqliteUniques[n]).ExecContext(e.ctx, args...)
			return translate(err)
		})
	}
	campaigns, subscribers, kinds := make([]int64, len(keys)), make([]int64, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		campaigns[i], subscribers[i], kinds[i] = k.campaign, k.subscriber, k.kind
	}
	_, err := e.scanUniques(e.tx.QueryContext(e.ctx, pgEventUniques, campaigns, subscribers, kinds))
	return err
}

// scanUniques marks in fresh, and returns, the unique keys a query found new.
func (e *eventTx) scanUniques(rows *sql.Rows, err error) ([]eventKey, error) {
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	var found []eventKey
	for rows.Next() {
		var k eventKey
		if err := rows.Scan(&k.campaign, &k.subscriber, &k.kind); err != nil {
			return found, err
		}
		found = append(found, k)
		e.fresh[k] = true
	}
	return found, rows.Err()
}

// deliveries calls found with the delivery time of each (campaign, subscriber) pair that
// has a delivery, and whether that person has opened the campaign.
func (e *eventTx) deliveries(pairs [][2]int64, found func(pair [2]int64, sent sql.NullInt64, opened bool)) error {
	if len(pairs) == 0 {
		return nil
	}
	if e.prepared != nil {
		args := make([]any, 0, 2*sqliteChunks[0])
		for len(pairs) > 0 {
			n := chunk(len(pairs))
			args = args[:0]
			for _, p := range pairs[:n] {
				args = append(args, p[0], p[1])
			}
			rows, err := e.stmt(sqliteDeliveries[n]).QueryContext(e.ctx, args...)
			if err := scanDeliveries(rows, err, found); err != nil {
				return err
			}
			pairs = pairs[n:]
		}
		return nil
	}
	campaigns, subscribers := make([]int64, len(pairs)), make([]int64, len(pairs))
	for i, p := range pairs {
		campaigns[i], subscribers[i] = p[0], p[1]
	}
	rows, err := e.tx.QueryContext(e.ctx, pgEventDeliveries, campaigns, subscribers)
	return scanDeliveries(rows, err, found)
}

func scanDeliveries(rows *sql.Rows, err error, found func(pair [2]int64, sent sql.NullInt64, opened bool)) error {
	if err != nil {
		return err
	}
	defer rows.Close()
	var p [2]int64
	var sent sql.NullInt64
	var open bool
	for rows.Next() {
		if err := rows.Scan(&p[0], &p[1], &sent, &open); err != nil {
			return err
		}
		found(p, sent, open)
	}
	return rows.Err()
}

// insertEvents stores the events on SQLite, automated[i] flagging events[i].
func (e *eventTx) insertEvents(events []tidings.Event, automated []bool) error {
	args := make([]any, 0, 7*sqliteChunks[0])
	for i := 0; i < len(events); {
		n := chunk(len(events) - i)
		args = args[:0]
		for j, ev := range events[i : i+n] {
			args = append(args, ev.AccountID, ev.CampaignID, ev.SubscriberID, string(ev.Kind), ev.URL, automated[i+j], toDB(ev.Time))
		}
		if _, err := e.stmt(sqliteInserts[n]).ExecContext(e.ctx, args...); err != nil {
			return err
		}
		i += n
	}
	return nil
}

func (s *Store) CampaignStats(ctx context.Context, accountID, campaignID int64) (tidings.CampaignStats, error) {
	var st tidings.CampaignStats
	p, err := s.CampaignProgress(ctx, accountID, campaignID)
	if err != nil {
		return st, err
	}
	st.Total, st.Delivered, st.Failed = p.Total, p.Sent, p.Failed
	err = s.r.QueryRowContext(ctx, `SELECT opens, unique_opens, anon_opens, clicks, unique_clicks, anon_clicks, automated, unsubscribes,
		bounced, soft_bounced, complaints FROM campaign_stats WHERE campaign_id = $1`, campaignID).
		Scan(&st.Opens, &st.UniqueOpens, &st.AnonOpens, &st.Clicks, &st.UniqueClicks, &st.AnonClicks, &st.Automated, &st.Unsubscribes,
			&st.Bounced, &st.SoftBounced, &st.Complaints)
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
func (e *eventTx) bumpDailyAndLinks(events []tidings.Event) error {
	days, links := dailyAndLinks(events)
	for k, n := range days {
		if _, err := e.exec(sqlEventDaily, k.campaign, k.day, k.kind, n); err != nil {
			return err
		}
	}
	for k, n := range links {
		if _, err := e.exec(sqlEventLink, k.campaign, k.url, n); err != nil {
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

type dayKey struct {
	campaign, day int64
	kind          string
}

type linkKey struct {
	campaign int64
	url      string
}

// dailyAndLinks counts a group's opens and clicks per campaign, day and kind, and its
// clicks per campaign and link.
func dailyAndLinks(events []tidings.Event) (map[dayKey]int64, map[linkKey]int64) {
	days, links := map[dayKey]int64{}, map[linkKey]int64{}
	for _, ev := range events {
		if ev.Kind != tidings.EventOpen && ev.Kind != tidings.EventClick {
			continue
		}
		days[dayKey{ev.CampaignID, toDB(ev.Time) / dayMicros, string(ev.Kind)}]++
		if ev.Kind == tidings.EventClick {
			links[linkKey{ev.CampaignID, ev.URL}]++
		}
	}
	return days, links
}

// pgEventWrite inserts a group's events and adds it to the daily, per-link and campaign
// counters: one statement, so one round trip instead of one per step and counter row
// (the group's commit took 4-8 ms, mostly waiting). Data-modifying WITH clauses run
// whether or not anything reads them. Each array holds distinct keys, as ON CONFLICT DO
// UPDATE requires.
const pgEventWrite = `WITH ev AS (
		INSERT INTO events (account_id, campaign_id, subscriber_id, kind, url, automated, created_at)
		SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::boolean[], $7::bigint[])
	), daily AS (
		INSERT INTO campaign_daily (campaign_id, day, kind, n)
		SELECT * FROM unnest($8::bigint[], $9::bigint[], $10::text[], $11::bigint[])
		ON CONFLICT (campaign_id, day, kind) DO UPDATE SET n = campaign_daily.n + excluded.n
	), links AS (
		INSERT INTO campaign_links (campaign_id, url, clicks)
		SELECT * FROM unnest($12::bigint[], $13::text[], $14::bigint[])
		ON CONFLICT (campaign_id, url) DO UPDATE SET clicks = campaign_links.clicks + excluded.clicks
	)
	INSERT INTO campaign_stats (campaign_id, opens, unique_opens, anon_opens, clicks, unique_clicks, anon_clicks, automated, unsubscribes)
	SELECT * FROM unnest($15::bigint[], $16::bigint[], $17::bigint[], $18::bigint[], $19::bigint[], $20::bigint[], $21::bigint[],
		$22::bigint[], $23::bigint[])
	ON CONFLICT (campaign_id) DO UPDATE SET opens = campaign_stats.opens + excluded.opens,
		unique_opens = campaign_stats.unique_opens + excluded.unique_opens, anon_opens = campaign_stats.anon_opens + excluded.anon_opens,
		clicks = campaign_stats.clicks + excluded.clicks, unique_clicks = campaign_stats.unique_clicks + excluded.unique_clicks,
		anon_clicks = campaign_stats.anon_clicks + excluded.anon_clicks, automated = campaign_stats.automated + excluded.automated,
		unsubscribes = campaign_stats.unsubscribes + excluded.unsubscribes`

// pgWrite runs pgEventWrite for a group (PostgreSQL).
func (e *eventTx) pgWrite(events []tidings.Event, automated []bool, deltas map[int64]*statDelta) error {
	n := len(events)
	accounts, campaigns, subscribers, created := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	kinds, urls := make([]string, n), make([]string, n)
	for i, ev := range events {
		accounts[i], campaigns[i], subscribers[i], created[i] = ev.AccountID, ev.CampaignID, ev.SubscriberID, toDB(ev.Time)
		kinds[i], urls[i] = string(ev.Kind), ev.URL
	}
	days, links := dailyAndLinks(events)
	var dCampaigns, dDays, dCounts, lCampaigns, lCounts []int64
	var dKinds, lURLs []string
	// The counter rows are upserted in key order, so that two groups writing the same
	// rows (two nodes) lock them in one order and never deadlock.
	for _, k := range slices.SortedFunc(maps.Keys(days), func(a, b dayKey) int {
		return cmp.Or(cmp.Compare(a.campaign, b.campaign), cmp.Compare(a.day, b.day), strings.Compare(a.kind, b.kind))
	}) {
		dCampaigns, dDays, dKinds, dCounts = append(dCampaigns, k.campaign), append(dDays, k.day), append(dKinds, k.kind), append(dCounts, days[k])
	}
	for _, k := range slices.SortedFunc(maps.Keys(links), func(a, b linkKey) int {
		return cmp.Or(cmp.Compare(a.campaign, b.campaign), strings.Compare(a.url, b.url))
	}) {
		lCampaigns, lURLs, lCounts = append(lCampaigns, k.campaign), append(lURLs, k.url), append(lCounts, links[k])
	}
	var st [9][]int64
	for _, id := range slices.Sorted(maps.Keys(deltas)) {
		d := deltas[id]
		for i, v := range []int64{id, d.opens, d.uniqueOpens, d.anonOpens, d.clicks, d.uniqueClicks, d.anonClicks, d.automated, d.unsubscribes} {
			st[i] = append(st[i], v)
		}
	}
	// An empty Go slice may be sent as NULL; unnest(NULL) is no rows, as wanted.
	_, err := e.tx.ExecContext(e.ctx, pgEventWrite, accounts, campaigns, subscribers, kinds, urls, automated, created,
		dCampaigns, dDays, dKinds, dCounts, lCampaigns, lURLs, lCounts,
		st[0], st[1], st[2], st[3], st[4], st[5], st[6], st[7], st[8])
	return err
}
