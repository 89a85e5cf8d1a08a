package consent

import (
	"context"
	"errors"
	"fmt"

	"github.com/tidings/tidings/internal/keys"
	"github.com/tidings/tidings/internal/tidings"
)

// Requester returns an importer.Requester-shaped function that asks each imported person
// to confirm by email (double opt-in), whatever the list's setting. Suppressed people and
// people who left the list are skipped and reported.
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
				switch x.Status {
				case tidings.SubConfirmed:
					res.Status, res.Reason = tidings.ImportExisting, "already subscribed to this list"
					return res, nil
				case tidings.SubUnsubscribed:
					res.Status, res.Reason = tidings.ImportUnsubscribed, "unsubscribed from this list earlier; only the person can subscribe again"
					return res, nil
				}
			}
		}
		acc, err := s.Store.GetAccount(ctx, accountID)
		if err != nil {
			return res, err
		}
		list, err := s.Store.GetList(ctx, accountID, listID)
		if err != nil {
			return res, err
		}
		text, err := s.CurrentText(ctx, acc)
		if err != nil {
			return res, err
		}
		token := s.Keys.Sign("confirm", randomBytes(32))
		req := tidings.SubscriptionRequest{Email: row.Email, Name: row.Name, Attributes: row.Attributes, Lists: []int64{listID},
			Source: tidings.SourceImport, Text: &text, Evidence: tidings.Evidence{Note: note}, Kind: tidings.LedgerRequested,
			TokenHash: keys.HashSecretToken(token), ExpiresAt: s.now().AddDate(0, 0, confirmDays(acc)), RespectSuppression: true}
		stored, err := s.Store.RequestSubscription(ctx, accountID, req)
		if errors.Is(err, tidings.ErrSuppressed) {
			res.Status, res.Reason = tidings.ImportSuppressed, "the address is suppressed; only the person can subscribe again"
			return res, nil
		}
		if err != nil {
			return res, err
		}
		letter := confirmationLetter(acc, []string{list.Name}, text, row.Email, row.Name, s.BaseURL+"/confirm/"+token, s.BaseURL+"/decline/"+token, confirmDays(acc))
		sent, err := s.Postman.Send(ctx, accountID, letter)
		if err != nil {
			return res, fmt.Errorf("row %d: send confirmation: %w", row.Row, err)
		}
		if err := s.Store.AttachProof(ctx, accountID, stored.Subscriber.ID, stored.LedgerSeq, "confirmation_request", sent); err != nil {
			return res, err
		}
		res.Status = tidings.ImportRequested
		return res, nil
	}
}
