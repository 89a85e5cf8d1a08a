package consent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tidings/tidings/internal/keys"
	"github.com/tidings/tidings/internal/tidings"
)

// Ask is the account holder's request that a person confirm a subscription by email:
// an import in send_confirmation mode, or an API add to a double opt-in list.
type Ask struct {
	Email           tidings.Address
	Name            string
	Attributes      tidings.Attributes
	TrackingConsent bool                     // as the account holder says the person gave it, where the account tracks: the mail asks, the confirmation gives it
	Status          tidings.SubscriberStatus // of a subscriber the request creates ("": active)
	Lists           []int64
	Source          tidings.Source
	Note            string // who asked, under which declaration: the request's evidence
}

// AskToConfirm records a double opt-in request for the lists, with the account's
// current consent text, and mails the person the confirmation link. The subscriptions
// stay unconfirmed until the link is used, and the request goes like any other (it
// expires, or the person declines it). tidings.ErrSuppressed if the address is
// suppressed: only the person can subscribe again.
func (s *Service) AskToConfirm(ctx context.Context, accountID int64, a Ask) (tidings.SubscriptionResult, error) {
	acc, err := s.Store.GetAccount(ctx, accountID)
	if err != nil {
		return tidings.SubscriptionResult{}, err
	}
	a.Lists = tidings.DistinctIDs(a.Lists)
	var names []string
	for _, id := range a.Lists {
		l, err := s.Store.GetList(ctx, accountID, id)
		if err != nil {
			return tidings.SubscriptionResult{}, err
		}
		names = append(names, l.Name)
	}
	text, err := s.CurrentText(ctx, acc)
	if err != nil {
		return tidings.SubscriptionResult{}, err
	}
	token := s.Keys.Sign("confirm", randomBytes(32))
	stored, err := s.Store.RequestSubscription(ctx, accountID, tidings.SubscriptionRequest{Email: a.Email, Name: a.Name,
		Attributes: a.Attributes, TrackingConsent: a.TrackingConsent && acc.TrackingEnabled, Lists: a.Lists, Source: a.Source,
		Status: a.Status, Text: &text, Evidence: tidings.Evidence{Note: a.Note}, Kind: tidings.LedgerRequested, TokenHash: keys.HashSecretToken(token),
		ExpiresAt: s.now().AddDate(0, 0, confirmDays(acc)), RespectSuppression: true})
	if err != nil {
		return stored, err
	}
	letter := confirmationLetter(acc, names, text, a.Email, a.Name, s.BaseURL, token, confirmDays(acc), a.TrackingConsent && acc.TrackingEnabled)
	sent, err := s.Postman.Send(ctx, accountID, letter)
	if err != nil {
		return stored, s.unsent(ctx, accountID, keys.HashSecretToken(token), err)
	}
	s.keepProof(ctx, accountID, stored.Subscriber.ID, stored.LedgerSeq, "confirmation_request", sent)
	return stored, nil
}

// Requester returns an importer.Requester-shaped function that asks each imported person
// to confirm by email (double opt-in), whatever the list's setting. Suppressed people,
// people who left the list or are on it already, and people whose earlier request still
// waits (a file imported twice) are skipped and reported.
func (s *Service) Requester(accountID, listID int64, d tidings.ImportDeclaration) func(context.Context, tidings.ImportRow) (tidings.ImportResult, error) {
	note := fmt.Sprintf("import asking for confirmation; source: %s; lawful basis: %s", d.Source, d.LawfulBasis)
	return func(ctx context.Context, row tidings.ImportRow) (tidings.ImportResult, error) {
		res := tidings.ImportResult{Row: row.Row}
		existing, err := s.Store.ListSubscribers(ctx, accountID, tidings.SubscriberFilter{Email: row.Email})
		if err != nil {
			return res, err
		}
		if len(existing) == 1 {
			subs, err := s.Store.Subscriptions(ctx, accountID, existing[0].ID)
			if err != nil {
				return res, err
			}
			for _, x := range subs {
				if x.ListID != listID {
					continue
				}
				switch {
				case x.Status == tidings.SubConfirmed:
					res.Status, res.Reason = tidings.ImportExisting, "already subscribed to this list"
					return res, nil
				case x.Status == tidings.SubUnsubscribed:
					res.Status, res.Reason = tidings.ImportUnsubscribed, "unsubscribed from this list earlier; only the person can subscribe again"
					return res, nil
				case x.AwaitingUntil != nil:
					res.Status = tidings.ImportAwaiting
					res.Reason = "asked to confirm earlier; the link works until " + x.AwaitingUntil.UTC().Format(time.DateOnly) + ", so it is not sent again"
					return res, nil
				}
			}
		}
		_, err = s.AskToConfirm(ctx, accountID, Ask{Email: row.Email, Name: row.Name, Attributes: row.Attributes,
			Lists: []int64{listID}, Source: tidings.SourceImport, Note: note})
		if errors.Is(err, tidings.ErrSuppressed) {
			res.Status, res.Reason = tidings.ImportSuppressed, "the address is suppressed; only the person can subscribe again"
			return res, nil
		}
		if v, ok := tidings.AsValidation(err); ok && v.Field == "email" {
			// The relay refused the address for good: a bad row, like a malformed one.
			res.Status, res.Reason = tidings.ImportInvalid, v.Error()
			return res, nil
		}
		if err != nil {
			// Anything else (the relay is down) would fail every row after this one.
			return res, fmt.Errorf("row %d: %w", row.Row, err)
		}
		res.Status = tidings.ImportRequested
		return res, nil
	}
}
