package consent

import (
	"context"
	"errors"

	"github.com/tidings/tidings/internal/send"
	"github.com/tidings/tidings/internal/tidings"
)

// UnsubscribeRecipient withdraws a campaign recipient's consent, given the signed token
// of the campaign's unsubscribe link or List-Unsubscribe mailto address: from the
// campaign's lists, or from every list of the account when the campaign is gone. Each
// withdrawal is a ledger entry with source and evidence, and leaves a suppression. It
// returns the campaign's unsubscribe event (never personal) for the caller to record,
// or a zero Event (Kind empty) when nothing was withdrawn: a repeated request, a
// recipient erased since, the inert link of a test send (subscriber 0) count nothing.
// ErrBadLink for a token that is not valid.
func (s *Service) UnsubscribeRecipient(ctx context.Context, token string, source tidings.Source, ev tidings.Evidence) (tidings.Event, error) {
	accountID, campaignID, subscriberID, ok := send.ParseRecipientToken(s.Keys, token)
	if !ok {
		return tidings.Event{}, ErrBadLink
	}
	// The campaign's lists; none (every list) when the campaign is gone.
	var lists []int64
	c, err := s.Store.GetCampaign(ctx, accountID, campaignID)
	switch {
	case err == nil:
		lists = c.Lists
	case !errors.Is(err, tidings.ErrNotFound):
		return tidings.Event{}, err // not a reason to withdraw from every list
	}
	// One transaction for all the lists; what it withdrew, not an earlier read, decides
	// whether this request counts, so concurrent requests count one unsubscription once.
	n, err := s.Store.Unsubscribe(ctx, accountID, subscriberID, lists, source, ev)
	if errors.Is(err, tidings.ErrNotFound) {
		return tidings.Event{}, nil // erased since (or a test send): nothing to withdraw
	}
	if err != nil {
		return tidings.Event{}, err
	}
	if n == 0 {
		return tidings.Event{}, nil
	}
	s.log().Info("unsubscribed", "account_id", accountID, "campaign_id", campaignID, "subscriber_id", subscriberID, "source", source)
	return tidings.Event{AccountID: accountID, CampaignID: campaignID, Kind: tidings.EventUnsubscribe, Time: s.now()}, nil
}
