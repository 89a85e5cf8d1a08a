package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidings/tidings/internal/tidings"
)

// BatchSize is how many recipients a batch holds: large enough that claiming is rare,
// small enough that a crashed node's unfinished work is quickly taken over.
const BatchSize = 500

const campaignCols = `id, account_id, name, subject, from_name, from_address, reply_to, html, text_body, lists, segment,
	status, scheduled_at, started_at, finished_at, pause_reason, created_at, updated_at, utm`

func scanCampaign(row interface{ Scan(...any) error }) (tidings.Campaign, error) {
	var c tidings.Campaign
	var lists, segment, utm string
	var scheduled, started, finished sql.NullInt64
	var created, updated int64
	err := row.Scan(&c.ID, &c.AccountID, &c.Name, &c.Subject, &c.FromName, &c.FromAddress, &c.ReplyTo, &c.HTML, &c.Text,
		&lists, &segment, &c.Status, &scheduled, &started, &finished, &c.PauseReason, &created, &updated, &utm)
	if err != nil {
		return c, translate(err)
	}
	if c.Lists, err = splitIDs(lists); err != nil {
		return c, err
	}
	if segment != "" {
		if err := json.Unmarshal([]byte(segment), &c.Segment); err != nil {
			return c, err
		}
	}
	if utm != "" {
		c.UTM = &tidings.UTM{}
		if err := json.Unmarshal([]byte(utm), c.UTM); err != nil {
			return c, err
		}
	}
	c.ScheduledAt, c.StartedAt, c.FinishedAt = fromDBPtr(scheduled), fromDBPtr(started), fromDBPtr(finished)
	c.CreatedAt, c.UpdatedAt = fromDB(created), fromDB(updated)
	return c, nil
}

func nullTime(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: toDB(*t), Valid: true}
}

func utmJSON(u *tidings.UTM) string {
	if u == nil {
		return ""
	}
	b, _ := json.Marshal(u)
	return string(b)
}

func segmentJSON(s tidings.Segment) string {
	if len(s) == 0 {
		return ""
	}
	b, _ := json.Marshal(s)
	return string(b)
}

// checkLists verifies that every list is the account's.
func checkLists(ctx context.Context, tx *sql.Tx, accountID int64, lists []int64) error {
	for i, id := range lists {
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM lists WHERE account_id = $1 AND id = $2`, accountID, id).Scan(new(int)); err != nil {
			if err == sql.ErrNoRows {
				return tidings.Invalid(fmt.Sprintf("lists[%d]", i), "unknown_list", "list %d does not exist", id)
			}
			return err
		}
	}
	return nil
}

// checkFromDomain refuses a From address on a domain the account has removed (or the
// operator moved away), and keeps a current sending domain of the account from being
// removed until the campaign is stored: the row is locked FOR SHARE on PostgreSQL
// (SHARE, not KEY SHARE, so that any UPDATE of removed_at waits), and the removal
// locks it FOR UPDATE before it looks for campaigns that send from it (retireDomain).
// Whichever goes second sees the other's work. A domain the account never had is left
// to send.Check, which every caller runs first: a domain it found the account's keeps
// the account's row (removed or not) for good, so the race is closed here.
func (s *Store) checkFromDomain(ctx context.Context, tx *sql.Tx, accountID int64, from string) error {
	a, err := tidings.ParseAddress(from)
	if err != nil {
		return err // Validate has already refused it
	}
	// One row per account and domain (a unique key): the account's own, or none.
	var removed sql.NullInt64
	err = tx.QueryRowContext(ctx, `SELECT removed_at FROM sending_domains WHERE account_id = $1 AND domain = $2`+s.engine.forShare(),
		accountID, a.Domain).Scan(&removed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	if removed.Valid {
		return tidings.Invalid("from_address", "domain_removed", "%s is no longer one of the account's sending domains (it was removed); choose another From address or add the domain again",
			a.Domain)
	}
	return nil
}

func (s *Store) CreateCampaign(ctx context.Context, accountID int64, c *tidings.Campaign) error {
	c.Status = tidings.CampaignDraft
	c.Normalize()
	if err := c.Validate(); err != nil {
		return err
	}
	now := s.stamp()
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := checkLists(ctx, tx, accountID, c.Lists); err != nil {
			return err
		}
		if err := s.checkFromDomain(ctx, tx, accountID, c.FromAddress); err != nil {
			return err
		}
		err := tx.QueryRowContext(ctx, `
			INSERT INTO campaigns (account_id, name, subject, from_name, from_address, reply_to, html, text_body, lists, segment,
				status, scheduled_at, created_at, updated_at, utm)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $14) RETURNING id`,
			accountID, c.Name, c.Subject, c.FromName, c.FromAddress, c.ReplyTo, c.HTML, c.Text, joinIDs(c.Lists), segmentJSON(c.Segment),
			string(c.Status), nullTime(c.ScheduledAt), toDB(now), utmJSON(c.UTM)).Scan(&c.ID)
		c.AccountID, c.CreatedAt, c.UpdatedAt = accountID, now, now
		return translate(err)
	})
}

func (s *Store) GetCampaign(ctx context.Context, accountID, id int64) (tidings.Campaign, error) {
	return scanCampaign(s.r.QueryRowContext(ctx, `SELECT `+campaignCols+` FROM campaigns WHERE account_id = $1 AND id = $2`, accountID, id))
}

func (s *Store) ListCampaigns(ctx context.Context, accountID int64, p tidings.Page) ([]tidings.Campaign, error) {
	p = p.Clamp()
	rows, err := s.r.QueryContext(ctx, `SELECT `+campaignCols+` FROM campaigns WHERE account_id = $1 AND id > $2 ORDER BY id LIMIT $3`,
		accountID, p.After, p.Limit)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanCampaign)
}

func (s *Store) UpdateCampaign(ctx context.Context, accountID int64, c *tidings.Campaign) error {
	c.Normalize()
	if err := c.Validate(); err != nil {
		return err
	}
	now := s.stamp()
	return s.tx(ctx, func(tx *sql.Tx) error {
		// Locked, so that a campaign starting to send meanwhile (another node, the
		// scheduler) is not changed under its recipients' planning.
		var status string
		if err := tx.QueryRowContext(ctx, `SELECT status FROM campaigns WHERE account_id = $1 AND id = $2`+s.engine.forUpdate(), accountID, c.ID).Scan(&status); err != nil {
			return translate(err)
		}
		if status != string(tidings.CampaignDraft) && status != string(tidings.CampaignScheduled) {
			return tidings.Invalid("status", "not_editable", "a %s campaign can no longer be changed", status)
		}
		// A scheduled campaign keeps a time to come, as scheduling it required.
		if status == string(tidings.CampaignScheduled) && c.ScheduledAt == nil {
			return tidings.Invalid("scheduled_at", "required", "a scheduled campaign needs a time; unschedule it first to keep it as a draft")
		}
		if status == string(tidings.CampaignScheduled) && !c.ScheduledAt.After(now) {
			return tidings.Invalid("scheduled_at", "in_the_past", "the scheduled time has passed; choose a later time or send now")
		}
		if err := checkLists(ctx, tx, accountID, c.Lists); err != nil {
			return err
		}
		if err := s.checkFromDomain(ctx, tx, accountID, c.FromAddress); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `
			UPDATE campaigns SET name = $3, subject = $4, from_name = $5, from_address = $6, reply_to = $7, html = $8, text_body = $9,
				lists = $10, segment = $11, scheduled_at = $12, updated_at = $13, utm = $14
			WHERE account_id = $1 AND id = $2`,
			accountID, c.ID, c.Name, c.Subject, c.FromName, c.FromAddress, c.ReplyTo, c.HTML, c.Text, joinIDs(c.Lists),
			segmentJSON(c.Segment), nullTime(c.ScheduledAt), toDB(now), utmJSON(c.UTM))
		c.AccountID, c.Status, c.UpdatedAt = accountID, tidings.CampaignStatus(status), now
		return translate(err)
	})
}

func (s *Store) DeleteCampaign(ctx context.Context, accountID, id int64) error {
	// One transaction, the row locked: a campaign that starts sending meanwhile is not
	// deleted under its workers. The lock comes before the cascade's deletes, and every
	// writer of the campaign's deliveries and counters (claims, send records, feedback,
	// event groups) locks the campaign before those rows too (see "Lock order" in
	// ARCHITECTURE.md), so the deletion waits for them or they find it gone.
	return s.tx(ctx, func(tx *sql.Tx) error {
		var status string
		if err := tx.QueryRowContext(ctx, `SELECT status FROM campaigns WHERE account_id = $1 AND id = $2`+s.engine.forUpdate(), accountID, id).Scan(&status); err != nil {
			return translate(err)
		}
		if status == string(tidings.CampaignSending) {
			return tidings.Invalid("status", "sending", "pause or cancel the campaign before deleting it")
		}
		// The deliveries before the events, as an erasure deletes them (deleteSubscriber).
		for _, table := range append([]string{"deliveries"}, campaignTables...) {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE campaign_id = $1`, id); err != nil {
				return err
			}
		}
		return rowsAffected(tx.ExecContext(ctx, `DELETE FROM campaigns WHERE account_id = $1 AND id = $2`, accountID, id))
	})
}

// campaignTables hold a campaign's rows without a foreign key to it (events and their
// counters are written often, and the check would cost each write a look-up): deleting
// the campaign deletes them by name. Its batches and stats go by cascade.
var campaignTables = []string{"events", "event_uniques", "event_daily", "campaign_daily", "campaign_links"}

// allowed lists the moves of a campaign's life.
var allowed = map[tidings.CampaignStatus][]tidings.CampaignStatus{
	tidings.CampaignDraft:     {tidings.CampaignScheduled, tidings.CampaignSending, tidings.CampaignCancelled},
	tidings.CampaignScheduled: {tidings.CampaignDraft, tidings.CampaignSending, tidings.CampaignCancelled},
	tidings.CampaignSending:   {tidings.CampaignPaused, tidings.CampaignSent, tidings.CampaignCancelled},
	tidings.CampaignPaused:    {tidings.CampaignSending, tidings.CampaignCancelled},
}

func (s *Store) SetCampaignStatus(ctx context.Context, accountID, id int64, to tidings.CampaignStatus, reason string) error {
	now := s.stamp()
	return s.tx(ctx, func(tx *sql.Tx) error {
		// Locked: two moves at once (two nodes starting a scheduled campaign) take turns,
		// and the second sees what the first did.
		c, err := scanCampaign(tx.QueryRowContext(ctx, `SELECT `+campaignCols+` FROM campaigns WHERE account_id = $1 AND id = $2`+s.engine.forUpdate(),
			accountID, id))
		if err != nil {
			return err
		}
		ok := false
		for _, next := range allowed[c.Status] {
			ok = ok || next == to
		}
		if !ok {
			return tidings.Invalid("status", "bad_transition", "a %s campaign cannot become %s", c.Status, to)
		}
		if to == tidings.CampaignScheduled && c.ScheduledAt == nil {
			return tidings.Invalid("scheduled_at", "required", "set a time to schedule the campaign")
		}
		if to == tidings.CampaignScheduled && !c.ScheduledAt.After(now) {
			return tidings.Invalid("scheduled_at", "in_the_past", "the scheduled time has passed; choose a later time or send now")
		}
		if to == tidings.CampaignSending && c.StartedAt == nil {
			if _, err := tx.ExecContext(ctx, `UPDATE campaigns SET started_at = $2, planning = TRUE, plan_after = 0, total = 0 WHERE id = $1`,
				id, toDB(now)); err != nil {
				return err
			}
			total, planned, err := s.planStep(ctx, tx, c)
			if err != nil {
				return err
			}
			// Nobody to send to: the campaign is done at once (no batch would ever
			// close it).
			if planned && total == 0 {
				to = tidings.CampaignSent
			}
		}
		var finished sql.NullInt64
		if to == tidings.CampaignSent || to == tidings.CampaignCancelled {
			finished = sql.NullInt64{Int64: toDB(now), Valid: true}
		}
		if _, err = tx.ExecContext(ctx, `UPDATE campaigns SET status = $2, pause_reason = $3, finished_at = COALESCE($4, finished_at), updated_at = $5 WHERE id = $1`,
			id, string(to), reason, finished, toDB(now)); err != nil {
			return err
		}
		// Resumed with every batch done (it was paused while its last one was being
		// recorded): no worker would find anything to claim, so it is sent now.
		if to == tidings.CampaignSending {
			return closeIfDone(ctx, tx, id, toDB(now))
		}
		return nil
	})
}

// planStepSize is how many subscribers one planning step examines: a few tens of
// milliseconds of the writer, however big the campaign. (A variable for tests.)
var planStepSize = 5000

// planStep plans the next share of a sending campaign's recipients: one queued delivery
// per recipient — confirmed on a target list, active (not restricted or objecting),
// matching the segment, not suppressed, each person once — in subscriber order after
// the campaign's cursor. It adds the batches that are now complete (the last, partial
// one when planning ends) and returns the planned total so far and whether planning is
// over. The campaign row is locked first, so nodes sharing PostgreSQL plan in turn.
func (s *Store) planStep(ctx context.Context, tx *sql.Tx, c tidings.Campaign) (total int64, planned bool, err error) {
	var planning bool
	var after int64
	if err := tx.QueryRowContext(ctx, `SELECT planning, plan_after, total FROM campaigns WHERE id = $1`+s.engine.forUpdate(), c.ID).
		Scan(&planning, &after, &total); err != nil {
		return 0, false, translate(err)
	}
	if !planning {
		return total, true, nil
	}
	fullBefore := total / BatchSize
	for examined := 0; examined < planStepSize && !planned; {
		limit := min(1000, planStepSize-examined)
		args := []any{c.AccountID, after}
		q := `SELECT s.id, s.person_id, s.email_enc, s.attributes_enc, k.wrapped_key
			FROM subscribers s JOIN persons p ON p.id = s.person_id JOIN person_keys k ON k.id = p.key_id
			WHERE s.account_id = $1 AND s.id > $2 AND s.status = 'active'
			AND EXISTS (SELECT 1 FROM subscriptions x WHERE x.subscriber_id = s.id AND x.status = 'confirmed' AND x.list_id IN (`
		for i, l := range c.Lists {
			if i > 0 {
				q += ","
			}
			args = append(args, l)
			q += fmt.Sprintf("$%d", len(args))
		}
		q += `)) ORDER BY s.id LIMIT ` + strconv.Itoa(limit)
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return 0, false, err
		}
		type cand struct {
			id       int64
			suppress []byte
		}
		var cands []cand
		n := 0
		for rows.Next() {
			n++
			var id, pid int64
			var emailEnc, attrsEnc, wrapped []byte
			if err := rows.Scan(&id, &pid, &emailEnc, &attrsEnc, &wrapped); err != nil {
				rows.Close()
				return 0, false, err
			}
			after = id
			dk, err := s.keys.UnwrapDataKey(wrapped)
			if err != nil {
				rows.Close()
				return 0, false, err
			}
			if len(c.Segment) > 0 {
				attrs := tidings.Attributes{}
				if attrsEnc != nil {
					raw, err := dk.Open(attrsEnc, []byte(aad(c.AccountID, pid, "attributes")))
					if err != nil {
						rows.Close()
						return 0, false, err
					}
					json.Unmarshal(raw, &attrs)
				}
				if !c.Segment.Matches(attrs) {
					continue
				}
			}
			email, err := dk.OpenString(emailEnc, aad(c.AccountID, pid, "email"))
			if err != nil {
				rows.Close()
				return 0, false, err
			}
			cands = append(cands, cand{id, s.keys.SuppressionHash(email)})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, false, err
		}
		examined += n
		planned = n < limit
		if len(cands) == 0 {
			continue
		}
		held := map[string]bool{}
		sargs := []any{c.AccountID}
		for _, cd := range cands {
			sargs = append(sargs, cd.suppress)
		}
		srows, err := tx.QueryContext(ctx, `SELECT hash FROM suppressions WHERE account_id IN (`+s.engine.param(1)+`, 0) AND hash IN (`+
			s.engine.inList(len(cands), 2)+`)`, sargs...)
		if err != nil {
			return 0, false, err
		}
		for srows.Next() {
			var h []byte
			srows.Scan(&h)
			held[string(h)] = true
		}
		srows.Close()
		var ins []any
		for _, cd := range cands {
			if !held[string(cd.suppress)] {
				ins = append(ins, c.ID, cd.id, total/BatchSize)
				total++
			}
		}
		if len(ins) > 0 {
			if _, err := tx.ExecContext(ctx, `INSERT INTO deliveries (campaign_id, subscriber_id, batch_no) VALUES `+
				s.engine.values(len(ins)/3, "?", "?", "?"), ins...); err != nil {
				return 0, false, translate(err)
			}
		}
	}
	// Batches below fullAfter are full; the partial last one opens only when planning
	// is over (a batch must not be sent while recipients may still join it).
	fullAfter := total / BatchSize
	if planned && total%BatchSize != 0 {
		fullAfter++
	}
	for no := fullBefore; no < fullAfter; no++ {
		if _, err := tx.ExecContext(ctx, `INSERT INTO campaign_batches (campaign_id, batch_no) VALUES ($1, $2)`, c.ID, no); err != nil {
			return 0, false, err
		}
	}
	_, err = tx.ExecContext(ctx, `UPDATE campaigns SET total = $2, plan_after = $3, planning = $4 WHERE id = $1`, c.ID, total, after, !planned)
	return total, planned, err
}

// closeIfDone marks a sending campaign sent once planning is over and every batch is done.
func closeIfDone(ctx context.Context, tx *sql.Tx, campaignID, now int64) error {
	_, err := tx.ExecContext(ctx, `UPDATE campaigns SET status = 'sent', finished_at = $2, updated_at = $2
		WHERE id = $1 AND status = 'sending' AND NOT planning
		AND NOT EXISTS (SELECT 1 FROM campaign_batches WHERE campaign_id = $1 AND NOT done)`, campaignID, now)
	return err
}

func (s *Store) DueCampaigns(ctx context.Context, now time.Time) ([]tidings.Campaign, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+campaignCols+` FROM campaigns
		WHERE status = 'sending' OR (status = 'scheduled' AND scheduled_at <= $1) ORDER BY id`, toDB(now))
	if err != nil {
		return nil, err
	}
	return collect(rows, scanCampaign)
}

// ClaimBatch leases the next open batch. While the campaign is still being planned and no
// batch is open, it plans another step, each in a transaction of its own, until one is.
func (s *Store) ClaimBatch(ctx context.Context, campaignID int64, node string, now, leaseUntil time.Time) (tidings.Batch, error) {
	for {
		b, planning, err := s.claimBatch(ctx, campaignID, node, now, leaseUntil)
		if !planning || !errors.Is(err, tidings.ErrNotFound) {
			return b, err
		}
		err = s.tx(ctx, func(tx *sql.Tx) error {
			c, err := scanCampaign(tx.QueryRowContext(ctx, `SELECT `+campaignCols+` FROM campaigns WHERE id = $1`, campaignID))
			if err != nil || c.Status != tidings.CampaignSending {
				return err
			}
			if _, planned, err := s.planStep(ctx, tx, c); err != nil || !planned {
				return err
			}
			return closeIfDone(ctx, tx, campaignID, toDB(s.stamp()))
		})
		if err != nil {
			return b, err
		}
	}
}

func (s *Store) RenewLease(ctx context.Context, campaignID int64, batchNo int, node string, held, until time.Time) error {
	return rowsAffected(s.w.ExecContext(ctx, `UPDATE campaign_batches SET lease_until = $5
		WHERE campaign_id = $1 AND batch_no = $2 AND lease_owner = $3 AND lease_until = $4 AND NOT done`,
		campaignID, batchNo, node, toDB(held), toDB(until)))
}

// claimBatch is one attempt of ClaimBatch; planning says the campaign has recipients
// left to plan.
func (s *Store) claimBatch(ctx context.Context, campaignID int64, node string, now, leaseUntil time.Time) (b tidings.Batch, planning bool, err error) {
	b = tidings.Batch{CampaignID: campaignID}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		var status, lists string
		// Locked first (KEY SHARE on PostgreSQL): the claim then updates the batch, its
		// deliveries and the campaign's counter, and DeleteCampaign, which locks the
		// campaign before deleting those rows, waits instead of deadlocking with it.
		if err := tx.QueryRowContext(ctx, `SELECT account_id, status, planning, lists FROM campaigns WHERE id = $1`+s.engine.forKeyShare(), campaignID).
			Scan(&b.AccountID, &status, &planning, &lists); err != nil {
			return translate(err)
		}
		listIDs, err := splitIDs(lists)
		if err != nil {
			return err
		}
		if status != string(tidings.CampaignSending) {
			planning = false
			return tidings.ErrNotFound
		}
		// The outer lease test is re-checked on the locked row, so two nodes racing for
		// the same batch cannot both win; PostgreSQL also skips rows another node holds.
		err = tx.QueryRowContext(ctx, `
			UPDATE campaign_batches SET lease_owner = $3, lease_until = $4
			WHERE campaign_id = $1 AND NOT done AND lease_until < $2 AND batch_no = (
				SELECT batch_no FROM campaign_batches WHERE campaign_id = $1 AND NOT done AND lease_until < $2
				ORDER BY batch_no LIMIT 1`+s.engine.skipLocked()+`)
			RETURNING batch_no`, campaignID, toDB(now), node, toDB(leaseUntil)).Scan(&b.No)
		if err != nil {
			return translate(err)
		}
		// People who were erased, restricted, who objected or who unsubscribed from the
		// campaign's lists since planning get nothing.
		args := []any{campaignID, b.No}
		for _, l := range listIDs {
			args = append(args, l)
		}
		res, err := tx.ExecContext(ctx, `
			UPDATE deliveries SET status = 'failed', error = 'recipient no longer eligible'
			WHERE campaign_id = `+s.engine.param(1)+` AND batch_no = `+s.engine.param(2)+` AND status = 'queued'
			AND NOT EXISTS (SELECT 1 FROM subscribers s WHERE s.id = deliveries.subscriber_id AND s.status = 'active'
				AND EXISTS (SELECT 1 FROM subscriptions x WHERE x.subscriber_id = s.id AND x.status = 'confirmed'
					AND x.list_id IN (`+s.engine.inList(len(listIDs), 3)+`)))`, args...)
		if err != nil {
			return err
		}
		ineligible, _ := res.RowsAffected()
		rows, err := tx.QueryContext(ctx, `
			SELECT s.id, s.account_id, s.person_id, s.email_enc, s.name_enc, s.attributes_enc, s.status,
				s.tracking_consent, s.created_at, s.updated_at, k.wrapped_key, d.attempts
			FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id JOIN persons p ON p.id = s.person_id JOIN person_keys k ON k.id = p.key_id
			WHERE d.campaign_id = $1 AND d.batch_no = $2 AND d.status = 'queued' ORDER BY s.id`, campaignID, b.No)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var r tidings.Recipient
			sub, err := s.scanSubscriber(attemptsScanner{rows, &r.Attempts})
			if err != nil {
				return err
			}
			r.Subscriber = sub
			b.Recipients = append(b.Recipients, r)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()
		// Addresses suppressed since planning (a complaint or a bounce elsewhere, a
		// controller's entry) get nothing either.
		n, err := s.dropSuppressed(ctx, tx, &b)
		if err != nil {
			return err
		}
		if ineligible += n; ineligible > 0 {
			if _, err := tx.ExecContext(ctx, `UPDATE campaigns SET failed = failed + $2 WHERE id = $1`, campaignID, ineligible); err != nil {
				return err
			}
		}
		return nil
	})
	return b, planning, err
}

// dropSuppressed marks the batch's recipients whose address is suppressed (for the
// account or instance-wide) failed, removes them from the batch and returns how many.
func (s *Store) dropSuppressed(ctx context.Context, tx *sql.Tx, b *tidings.Batch) (int64, error) {
	if len(b.Recipients) == 0 {
		return 0, nil
	}
	hashes := make([][]byte, len(b.Recipients))
	args := []any{b.AccountID}
	for i, r := range b.Recipients {
		hashes[i] = s.keys.SuppressionHash(r.Subscriber.Email.String())
		args = append(args, hashes[i])
	}
	rows, err := tx.QueryContext(ctx, `SELECT hash FROM suppressions WHERE account_id IN (`+s.engine.param(1)+`, 0) AND hash IN (`+
		s.engine.inList(len(hashes), 2)+`)`, args...)
	if err != nil {
		return 0, err
	}
	held := map[string]bool{}
	for rows.Next() {
		var h []byte
		if err := rows.Scan(&h); err != nil {
			rows.Close()
			return 0, err
		}
		held[string(h)] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(held) == 0 {
		return 0, err
	}
	var n int64
	kept := b.Recipients[:0]
	for i, r := range b.Recipients {
		if !held[string(hashes[i])] {
			kept = append(kept, r)
			continue
		}
		if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET status = 'failed', error = 'recipient no longer eligible'
			WHERE campaign_id = $1 AND subscriber_id = $2 AND status = 'queued'`, b.CampaignID, r.Subscriber.ID); err != nil {
			return 0, err
		}
		n++
	}
	b.Recipients = kept
	return n, nil
}

// attemptsScanner lets scanSubscriber read a row that carries one extra column.
type attemptsScanner struct {
	rows     *sql.Rows
	attempts *int
}

func (a attemptsScanner) Scan(dest ...any) error { return a.rows.Scan(append(dest, a.attempts)...) }

func (s *Store) RecordDeliveries(ctx context.Context, campaignID int64, batchNo int, node string, results []tidings.DeliveryResult, done bool) error {
	now := toDB(s.stamp())
	return s.tx(ctx, func(tx *sql.Tx) error {
		// The campaign is locked first (KEY SHARE on PostgreSQL), before the deliveries
		// and then its counters are updated: DeleteCampaign locks it before its cascade
		// deletes the deliveries, and the two deadlocked in the opposite order (a paused
		// or cancelled campaign deleted while its last batches were being recorded). A
		// campaign deleted meanwhile has nothing left to record.
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM campaigns WHERE id = $1`+s.engine.forKeyShare(), campaignID).Scan(new(int))
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		// Only queued deliveries change: a result recorded twice (a batch resumed after a
		// crash) neither overwrites nor counts twice. One a bounce or complaint reached
		// first keeps its state and count, and only gains the send's details.
		if len(results) > 0 {
			var sent, failed int64
			var err error
			if s.engine.batchedUpdates() {
				for chunk := range slices.Chunk(firstPerSubscriber(results), recordChunkSize) {
					st, f, err := s.recordChunk(ctx, tx, campaignID, now, chunk)
					if err != nil {
						return err
					}
					sent, failed = sent+st, failed+f
				}
			} else if sent, failed, err = s.recordEach(ctx, tx, campaignID, now, results); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE campaigns SET sent = sent + $2, failed = failed + $3 WHERE id = $1`, campaignID, sent, failed); err != nil {
				return err
			}
		}
		if !done {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE campaign_batches SET done = TRUE, lease_owner = $3 WHERE campaign_id = $1 AND batch_no = $2`,
			campaignID, batchNo, node); err != nil {
			return err
		}
		return closeIfDone(ctx, tx, campaignID, now)
	})
}

// recordEach stores results with one UPDATE each, counting those that changed a queued
// delivery.
func (s *Store) recordEach(ctx context.Context, tx *sql.Tx, campaignID, now int64, results []tidings.DeliveryResult) (sent, failed int64, err error) {
	st, err := tx.PrepareContext(ctx, `UPDATE deliveries SET status = $3, message_id = $4, error = $5, attempts = $6,
		sent_at = CASE WHEN $3 = 'sent' THEN $7 ELSE sent_at END WHERE campaign_id = $1 AND subscriber_id = $2 AND status = 'queued'`)
	if err != nil {
		return 0, 0, err
	}
	defer st.Close()
	for _, r := range results {
		res, err := st.ExecContext(ctx, campaignID, r.SubscriberID, string(r.Status), r.MessageID, r.Error, r.Attempts, now)
		if err != nil {
			return 0, 0, err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			if r.Status == tidings.DeliverySent {
				sent++
			} else if r.Status == tidings.DeliveryFailed {
				failed++
			}
		} else if r.Status == tidings.DeliverySent {
			// Rare (a report came first, or a result recorded twice): a second statement
			// rather than a costlier first one for every row.
			if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET message_id = $3, attempts = $4, sent_at = $5
				WHERE campaign_id = $1 AND subscriber_id = $2 AND sent_at IS NULL AND status IN (`+feedbackStates+`)`,
				campaignID, r.SubscriberID, r.MessageID, r.Attempts, now); err != nil {
				return 0, 0, err
			}
		}
	}
	return sent, failed, nil
}

// recordChunkSize is how many results one statement stores (see batchedUpdates): 5
// parameters each, and a flush of 500 costs three round trips rather than 500.
const recordChunkSize = 200

// recordChunk stores results in one UPDATE … FROM (VALUES …) and counts those that
// changed a queued delivery, by the status each one now has (RETURNING). It does what
// one UPDATE per result did, given at most one result per subscriber.
func (s *Store) recordChunk(ctx context.Context, tx *sql.Tx, campaignID, now int64, results []tidings.DeliveryResult) (sent, failed int64, err error) {
	args := make([]any, 0, 2+5*len(results))
	p := func(v any) string {
		args = append(args, v)
		return s.engine.param(len(args))
	}
	var q strings.Builder
	// A delivery a report reached before its send was recorded keeps the report's state
	// and error and is not counted again (RecordFeedback counted the send); it gains the
	// send's Message-ID and time.
	q.WriteString(`UPDATE deliveries SET status = CASE WHEN deliveries.status = 'queued' THEN v.column2 ELSE deliveries.status END,
		message_id = v.column3, error = CASE WHEN deliveries.status = 'queued' THEN v.column4 ELSE deliveries.error END, attempts = v.column5,
		sent_at = CASE WHEN v.column2 = 'sent' THEN ` + p(now) + ` ELSE deliveries.sent_at END FROM (VALUES `)
	for i, r := range results {
		if i > 0 {
			q.WriteString(", ")
		}
		// Typed, so PostgreSQL does not take the VALUES columns for text.
		q.WriteString("(CAST(" + p(r.SubscriberID) + " AS BIGINT), CAST(" + p(string(r.Status)) + " AS TEXT), CAST(" +
			p(r.MessageID) + " AS TEXT), CAST(" + p(r.Error) + " AS TEXT), CAST(" + p(r.Attempts) + " AS INTEGER))")
	}
	q.WriteString(`) AS v WHERE deliveries.campaign_id = ` + p(campaignID) + ` AND deliveries.subscriber_id = v.column1
		AND (deliveries.status = 'queued' OR (v.column2 = 'sent' AND deliveries.sent_at IS NULL AND deliveries.status IN (` + feedbackStates + `)))
		RETURNING deliveries.status`)
	rows, err := tx.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return 0, 0, err
	}
	defer rows.Close()
	for rows.Next() {
		var st string
		if err := rows.Scan(&st); err != nil {
			return 0, 0, err
		}
		switch tidings.DeliveryStatus(st) {
		case tidings.DeliverySent:
			sent++
		case tidings.DeliveryFailed:
			failed++
		}
	}
	return sent, failed, rows.Err()
}

// firstPerSubscriber drops repeated results for a subscriber, keeping the first: one
// statement cannot apply two updates to a row in order, and the second would have found
// the delivery no longer queued anyway.
func firstPerSubscriber(results []tidings.DeliveryResult) []tidings.DeliveryResult {
	seen := make(map[int64]bool, len(results))
	out := make([]tidings.DeliveryResult, 0, len(results))
	for _, r := range results {
		if !seen[r.SubscriberID] {
			seen[r.SubscriberID] = true
			out = append(out, r)
		}
	}
	return out
}

func (s *Store) CampaignProgress(ctx context.Context, accountID, id int64) (tidings.Progress, error) {
	var p tidings.Progress
	var started sql.NullInt64
	var status string
	err := s.r.QueryRowContext(ctx, `SELECT planning, total, sent, failed, started_at, status FROM campaigns WHERE account_id = $1 AND id = $2`, accountID, id).
		Scan(&p.Planning, &p.Total, &p.Sent, &p.Failed, &started, &status)
	if err != nil {
		return p, translate(err)
	}
	p.Remaining = p.Total - p.Sent - p.Failed
	if started.Valid {
		p.StartedAt = fromDB(started.Int64)
		if el := s.now().Sub(p.StartedAt).Seconds(); el > 0 {
			p.Rate = float64(p.Sent+p.Failed) / el
			// An ETA only while sending: a paused or cancelled campaign has nothing on its way.
			if p.Rate > 0 && p.Remaining > 0 && !p.Planning && status == string(tidings.CampaignSending) {
				p.ETA = (time.Duration(float64(p.Remaining)/p.Rate) * time.Second).Round(time.Second).String()
			}
		}
	}
	return p, nil
}
