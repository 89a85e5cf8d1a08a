package consent

import (
	"context"
	"errors"
	"slices"

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
	lists := []int64{0} // 0: every list
	if c, err := s.Store.GetCampaign(ctx, accountID, campaignID); err == nil {
		lists = c.Lists
	}
	// Whether this request withdraws anything, so that the campaign counts each
	// unsubscription once.
	subs, err := s.Store.Subscriptions(ctx, accountID, subscriberID)
	if err != nil && !errors.Is(err, tidings.ErrNotFound) {
		return tidings.Event{}, err
	}
	withdraws := false
	for _, x := range subs {
		withdraws = withdraws || x.Status != tidings.SubUnsubscribed && (lists[0] == 0 || slices.Contains(lists, x.ListID))
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
	if !withdraws {
		return tidings.Event{}, nil
	}
	s.log().Info("unsubscribed", "account_id", accountID, "campaign_id", campaignID, "subscriber_id", subscriberID, "source", source)
	return tidings.Event{AccountID: accountID, CampaignID: campaignID, Kind: tidings.EventUnsubscribe, Time: s.now()}, nil
}
