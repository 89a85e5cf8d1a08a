package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/tidings/tidings/internal/tidings"
)

// RecordFeedback applies a bounce or complaint to its delivery. Each kind counts once per
// delivery, since mail systems repeat their reports; the delivery's state moves from sent
// to what was reported (a complaint also overrides a bounce: the message did arrive).
func (s *Store) RecordFeedback(ctx context.Context, f tidings.Feedback) (tidings.FeedbackResult, error) {
	var res tidings.FeedbackResult
	now := s.stamp()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var status string
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM campaigns WHERE id = $1 AND account_id = $2`, f.CampaignID, f.AccountID).Scan(new(int)); err != nil {
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
		res.Counted = true
		if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET status = $3, error = $4 WHERE campaign_id = $1 AND subscriber_id = $2`,
			f.CampaignID, f.SubscriberID, string(next), feedbackError(f)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO campaign_stats (campaign_id, `+counter+`) VALUES ($1, 1)
			ON CONFLICT (campaign_id) DO UPDATE SET `+counter+` = campaign_stats.`+counter+` + 1`, f.CampaignID); err != nil {
			return err
		}
		switch f.Kind {
		case tidings.FeedbackHard:
			res.Suppressed = true
			return s.suppressSubscriber(ctx, tx, f.AccountID, f.SubscriberID, tidings.SuppressBounce, now)
		case tidings.FeedbackSoft:
			var n int
			if err := tx.QueryRowContext(ctx, `UPDATE subscribers SET soft_bounces = soft_bounces + 1 WHERE id = $1 RETURNING soft_bounces`,
				f.SubscriberID).Scan(&n); err != nil {
				return translate(err)
			}
			if n < tidings.SoftBounceLimit {
				return nil
			}
			res.Suppressed = true
			return s.suppressSubscriber(ctx, tx, f.AccountID, f.SubscriberID, tidings.SuppressBounce, now)
		default: // complaint
			res.Suppressed = true
			// Suppressed first, so the account's entry says why (the unsubscription's own
			// suppression then finds it there).
			for _, scope := range []int64{f.AccountID, tidings.InstanceWide} {
				if err := s.suppressSubscriber(ctx, tx, scope, f.SubscriberID, tidings.SuppressComplaint, now); err != nil {
					return err
				}
			}
			ev := tidings.Evidence{Time: now, Note: "spam complaint reported by the receiving mail system"}
			return s.unsubscribe(ctx, tx, f.AccountID, f.SubscriberID, 0, tidings.SourceFeedback, ev, now)
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
		msg = msg[:500]
	}
	return msg
}

// suppressSubscriber adds a suppression of the subscriber's address, in the account or
// (InstanceWide) everywhere. The address is opened with the person's key inside tx.
func (s *Store) suppressSubscriber(ctx context.Context, tx *sql.Tx, scope, subscriberID int64, reason tidings.SuppressionReason, now time.Time) error {
	var accountID, pid int64
	var wrapped, emailEnc []byte
	err := tx.QueryRowContext(ctx, `SELECT s.account_id, s.person_id, k.wrapped_key, s.email_enc FROM subscribers s
		JOIN persons p ON p.id = s.person_id JOIN person_keys k ON k.id = p.key_id WHERE s.id = $1`, subscriberID).
		Scan(&accountID, &pid, &wrapped, &emailEnc)
	if err != nil {
		return translate(err)
	}
	dk, err := s.keys.UnwrapDataKey(wrapped)
	if err != nil {
		return err
	}
	email, err := dk.OpenString(emailEnc, aad(accountID, pid, "email"))
	if err != nil {
		return err
	}
	return addSuppression(ctx, tx, scope, s.keys.SuppressionHash(email), reason, now)
}
