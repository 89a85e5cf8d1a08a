package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/tidings/tidings/internal/tidings"
)

// RecordFeedback applies a bounce or complaint to its delivery. Each kind counts once per
// delivery, since mail systems repeat their reports; the delivery's state moves from sent
// (or queued, when the report beat the send's record) to what was reported (a complaint
// also overrides a bounce: the message did arrive; a soft bounce never overrides a hard
// one).
func (s *Store) RecordFeedback(ctx context.Context, f tidings.Feedback) (tidings.FeedbackResult, error) {
	var res tidings.FeedbackResult
	now := s.stamp()
	if !f.Time.IsZero() {
		now = f.Time.UTC().Truncate(time.Microsecond)
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var status string
		// The campaign is locked first (KEY SHARE on PostgreSQL), before the delivery:
		// DeleteCampaign locks it (FOR UPDATE) before its cascade deletes the
		// deliveries, and a report that locked the delivery first and then wanted the
		// campaign (its sent counter, a new campaign_stats row's key check) deadlocked
		// with it. Now the deletion waits for the report, or the report finds the
		// campaign gone (ErrNotFound, as for any report of a deleted campaign).
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM campaigns WHERE id = $1 AND account_id = $2`+s.engine.forKeyShare(),
			f.CampaignID, f.AccountID).Scan(new(int)); err != nil {
			return translate(err)
		}
		// The delivery is locked, so that two copies of one report arriving together
		// count once.
		err := tx.QueryRowContext(ctx, `SELECT status FROM deliveries WHERE campaign_id = $1 AND subscriber_id = $2`+s.engine.forUpdate(),
			f.CampaignID, f.SubscriberID).Scan(&status)
		if err != nil {
			return translate(err)
		}
		next, counter := feedbackState(f.Kind)
		if counter == "" {
			return &tidings.ValidationError{Field: "kind", Code: "invalid", Message: "is not a feedback kind"}
		}
		if tidings.DeliveryStatus(status) == next {
			return nil // a repeated report
		}
		if f.Kind != tidings.FeedbackComplaint && tidings.DeliveryStatus(status) == tidings.DeliveryComplained {
			return nil // a late bounce of a message that was read and reported
		}
		if f.Kind == tidings.FeedbackSoft && tidings.DeliveryStatus(status) == tidings.DeliveryBounced {
			return nil // a soft report after a hard one: the address does not exist
		}
		res.Counted = true
		if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET status = $3, error = $4 WHERE campaign_id = $1 AND subscriber_id = $2`,
			f.CampaignID, f.SubscriberID, string(next), feedbackError(f)); err != nil {
			return err
		}
		// Still queued: the report came before the engine's group commit recorded the
		// send (or its node died before recording). The report proves the message went
		// out, so the send is counted here; RecordDeliveries then finds the delivery no
		// longer queued and counts nothing, and a batch claimed again skips it.
		if tidings.DeliveryStatus(status) == tidings.DeliveryQueued {
			if _, err := tx.ExecContext(ctx, `UPDATE campaigns SET sent = sent + 1 WHERE id = $1`, f.CampaignID); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO campaign_stats (campaign_id, `+counter+`) VALUES ($1, 1)
			ON CONFLICT (campaign_id) DO UPDATE SET `+counter+` = campaign_stats.`+counter+` + 1`, f.CampaignID); err != nil {
			return err
		}
		switch f.Kind {
		case tidings.FeedbackHard:
			res.Suppressed = true
			return s.suppressSubscriber(ctx, tx, f.SubscriberID, tidings.SuppressBounce, now, f.AccountID)
		case tidings.FeedbackSoft:
			// Counted within SoftBounceWindow of the first soft bounce; a later one starts
			// a new count.
			var n int
			if err := tx.QueryRowContext(ctx, `UPDATE subscribers SET
				soft_bounces = CASE WHEN soft_bounce_since IS NULL OR soft_bounce_since < $2 THEN 1 ELSE soft_bounces + 1 END,
				soft_bounce_since = CASE WHEN soft_bounce_since IS NULL OR soft_bounce_since < $2 THEN $3 ELSE soft_bounce_since END
				WHERE id = $1 RETURNING soft_bounces`,
				f.SubscriberID, toDB(now.Add(-tidings.SoftBounceWindow)), toDB(now)).Scan(&n); err != nil {
				return translate(err)
			}
			if n < tidings.SoftBounceLimit {
				return nil
			}
			res.Suppressed = true
			return s.suppressSubscriber(ctx, tx, f.SubscriberID, tidings.SuppressBounce, now, f.AccountID)
		default: // complaint
			res.Suppressed = true
			// Suppressed first, so the account's entry says why (the unsubscription's own
			// suppression then finds it there).
			if err := s.suppressSubscriber(ctx, tx, f.SubscriberID, tidings.SuppressComplaint, now, f.AccountID, tidings.InstanceWide); err != nil {
				return err
			}
			ev := tidings.Evidence{Time: now, Note: "spam complaint reported by the receiving mail system"}
			_, err := s.unsubscribe(ctx, tx, f.AccountID, f.SubscriberID, nil, tidings.SourceFeedback, ev, now)
			return err
		}
	})
	return res, err
}

// feedbackState is the delivery state and campaign_stats counter of a feedback kind.
func feedbackState(k tidings.FeedbackKind) (tidings.DeliveryStatus, string) {
	switch k {
	case tidings.FeedbackHard:
		return tidings.DeliveryBounced, "bounced"
	case tidings.FeedbackSoft:
		return tidings.DeliverySoftBounced, "soft_bounced"
	case tidings.FeedbackComplaint:
		return tidings.DeliveryComplained, "complaints"
	}
	return "", ""
}

// feedbackError is what the delivery's error column says: the status and diagnostic,
// cut to a length a page can show.
func feedbackError(f tidings.Feedback) string {
	msg := string(f.Kind)
	if f.Status != "" {
		msg += " " + f.Status
	}
	if f.Detail != "" {
		msg += ": " + f.Detail
	}
	if len(msg) > 500 {
		msg = strings.ToValidUTF8(msg[:500], "")
	}
	return msg
}

// feedbackStates are the delivery states feedback sets, for SQL.
const feedbackStates = `'bounced', 'soft_bounced', 'complained'`
