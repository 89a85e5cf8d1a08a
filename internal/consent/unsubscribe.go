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
// returns the campaign's unsubscribe event (never personal) for the caller to record.
// ErrBadLink for a token that is not valid; a recipient erased since is nothing to do.
func (s *Service) UnsubscribeRecipient(ctx context.Context, token string, source tidings.Source, ev tidings.Evidence) (tidings.Event, error) {
	accountID, campaignID, subscriberID, ok := send.ParseRecipientToken(s.Keys, token)
	if !ok {
		return tidings.Event{}, ErrBadLink
	}
	lists := []int64{0} // 0: every list
	if c, err := s.Store.GetCampaign(ctx, accountID, campaignID); err == nil {
		lists = c.Lists
	}
	for _, l := range lists {
		err := s.Store.Unsubscribe(ctx, accountID, subscriberID, l, source, ev)
		if errors.Is(err, tidings.ErrNotFound) {
			break // already erased: nothing left to unsubscribe
		}
		if err != nil {
			return tidings.Event{}, err
		}
	}
	s.log().Info("unsubscribed", "account_id", accountID, "campaign_id", campaignID, "subscriber_id", subscriberID, "source", source)
	return tidings.Event{AccountID: accountID, CampaignID: campaignID, Kind: tidings.EventUnsubscribe, Time: s.now()}, nil
}
