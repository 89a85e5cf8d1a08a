// Package consent is how an address gets onto a list lawfully and how Tidings proves
// it: double opt-in with signed single-use links, the hash-chained ledger, proof
// messages kept exactly as sent, consent receipts, and suppression.
package consent

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/tidings/tidings/internal/keys"
	"github.com/tidings/tidings/internal/mail"
	"github.com/tidings/tidings/internal/postman"
	"github.com/tidings/tidings/internal/tidings"
)

// ConfirmWindow is how long a confirmation link works; unconfirmed requests are deleted
// after it.
const ConfirmWindow = 7 * 24 * time.Hour

// ErrBadLink: a confirmation, decline or receipt link is forged, altered, used or expired.
var ErrBadLink = errors.New("this link is not valid: it may have been used already, expired, or been altered")

// ErrListsGone: every list a confirmation link asked for was deleted since; nothing was
// confirmed or changed, and the link is used up.
var ErrListsGone = errors.New("the lists of this request no longer exist: nothing was confirmed")

// Service runs the subscribe flows.
type Service struct {
	Store   tidings.Store
	Keys    *keys.Keyring
	Postman *postman.Postman
	BaseURL string // public base of links in mail, without trailing slash
	Log     *slog.Logger
	Now     func() time.Time
}

// confirmDays is how many days an account's confirmation links work: the instance's
// ConfirmWindow, or the account's shorter rule for unconfirmed requests (the retention
// sweep deletes them then).
func confirmDays(a tidings.Account) int {
	days := int(ConfirmWindow / (24 * time.Hour))
	if a.UnconfirmedDays > 0 && a.UnconfirmedDays < days {
		days = a.UnconfirmedDays
	}
	return days
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// SubscribeRequest is a sign-up from a form, the JSON API or the portal.
type SubscribeRequest struct {
	AccountID       int64
	Lists           []int64
	Email           string
	Name            string
	TrackingConsent bool
	TextVersion     int // the version of the consent text the person saw
	Source          tidings.Source
	Evidence        tidings.Evidence
}

// Outcome says what happened, in terms a page can show.
type Outcome struct {
	SubscriberID int64
	DoubleOptIn  bool // a confirmation mail was sent
}

// DefaultConsentText is published for an account that has none when its first form is
// shown, so that every consent refers to a recorded text.
func DefaultConsentText(a tidings.Account) string {
	return fmt.Sprintf("I agree that %s may send me the newsletters I selected by email. "+
		"I can withdraw my consent at any time with the unsubscribe link in every email, "+
		"or in the subscriber portal.", a.Name)
}

// CurrentText returns the account's consent text, publishing the default if none exists.
func (s *Service) CurrentText(ctx context.Context, a tidings.Account) (tidings.ConsentText, error) {
	t, err := s.Store.ConsentText(ctx, a.ID, 0)
	if errors.Is(err, tidings.ErrNotFound) {
		return s.Store.PublishConsentText(ctx, a.ID, DefaultConsentText(a))
	}
	return t, err
}

// Subscribe records the request and sends the confirmation mail (double opt-in), or
// subscribes at once where every chosen list uses single opt-in (recorded as such).
func (s *Service) Subscribe(ctx context.Context, r SubscribeRequest) (Outcome, error) {
	addr, err := tidings.ParseAddress(r.Email)
	if err != nil {
		return Outcome{}, err
	}
	if len(r.Lists) == 0 {
		return Outcome{}, tidings.Invalid("lists", "required", "choose at least one list")
	}
	r.Lists = tidings.DistinctIDs(r.Lists)
	acc, err := s.Store.GetAccount(ctx, r.AccountID)
	if err != nil {
		return Outcome{}, err
	}
	doubleOptIn := false
	var names []string
	for i, id := range r.Lists {
		l, err := s.Store.GetList(ctx, r.AccountID, id)
		if errors.Is(err, tidings.ErrNotFound) {
			return Outcome{}, tidings.Invalid(fmt.Sprintf("lists[%d]", i), "unknown_list", "list %d does not exist", id)
		}
		if err != nil {
			return Outcome{}, err
		}
		doubleOptIn = doubleOptIn || l.DoubleOptIn
		names = append(names, l.Name)
	}
	text, err := s.Store.ConsentText(ctx, r.AccountID, r.TextVersion)
	if errors.Is(err, tidings.ErrNotFound) || r.TextVersion <= 0 {
		return Outcome{}, tidings.Invalid("consent_version", "unknown_version", "the consent text version is missing or unknown; reload the form")
	}
	if err != nil {
		return Outcome{}, err
	}
	req := tidings.SubscriptionRequest{
		Email: addr, Name: r.Name, Lists: r.Lists, Source: r.Source, Text: &text, Evidence: r.Evidence,
		TrackingConsent: r.TrackingConsent && acc.TrackingEnabled, Kind: tidings.LedgerSingleOptIn,
	}
	// A token either way: on single opt-in lists the store asks for confirmation all the
	// same when the address is already known or suppressed (ConfirmUnlessNew).
	token := s.Keys.Sign("confirm", randomBytes(32))
	req.TokenHash, req.ExpiresAt = keys.HashSecretToken(token), s.now().AddDate(0, 0, confirmDays(acc))
	if doubleOptIn {
		req.Kind = tidings.LedgerRequested
	} else {
		req.ConfirmUnlessNew = true
	}
	res, err := s.Store.RequestSubscription(ctx, r.AccountID, req)
	if err != nil {
		return Outcome{}, err
	}
	doubleOptIn = res.Requested
	out := Outcome{SubscriberID: res.Subscriber.ID, DoubleOptIn: doubleOptIn}
	var letter postman.Letter
	proofKind := "welcome"
	if doubleOptIn {
		proofKind = "confirmation_request"
		letter = confirmationLetter(acc, names, text, addr, r.Name, s.BaseURL, token, confirmDays(acc), req.TrackingConsent)
	} else {
		letter = welcomeLetter(acc, names, addr, r.Name, s.receiptURL(r.AccountID, res.LedgerSeq, res.Subscriber.ID))
	}
	sent, err := s.Postman.Send(ctx, r.AccountID, letter)
	if err != nil && doubleOptIn {
		return out, s.unsent(ctx, r.AccountID, req.TokenHash, err)
	}
	if err != nil {
		// The person subscribed on the form; only the welcome mail, with its receipt
		// link, failed. The subscription stands, as after a confirmation (Confirm).
		s.log().Warn("welcome mail not sent", "account_id", r.AccountID, "subscriber_id", res.Subscriber.ID, "err", err)
		return out, nil
	}
	// The confirmation request exactly as sent, DKIM signature included, is the proof
	// that the person was asked (single opt-in: the welcome mail, proof of what they
	// were told).
	s.keepProof(ctx, r.AccountID, res.Subscriber.ID, res.LedgerSeq, proofKind, sent)
	s.log().Info("subscription requested", "account_id", r.AccountID, "subscriber_id", res.Subscriber.ID, "double_opt_in", doubleOptIn)
	return out, nil
}

// Confirm uses a confirmation link: the subscriptions become confirmed, the ledger
// records it, and a welcome mail carries the link to the consent receipt.
// withoutTracking is the person's choice, offered by the mail, to confirm without the
// tracking consent the request asked for. ErrListsGone when every list of the request
// was deleted since.
func (s *Service) Confirm(ctx context.Context, token string, ev tidings.Evidence, withoutTracking bool) (tidings.Confirmation, error) {
	hash, err := s.confirmTokenHash(token)
	if err != nil {
		return tidings.Confirmation{}, err
	}
	c, err := s.Store.ConfirmSubscription(ctx, hash, ev, withoutTracking)
	if errors.Is(err, tidings.ErrNotFound) {
		return c, ErrBadLink
	}
	if err != nil {
		return c, err
	}
	if len(c.Lists) == 0 {
		// Every list of the request was deleted since: nothing was confirmed or changed
		// (the request is used up), and there is nothing to welcome the person to.
		return c, ErrListsGone
	}
	acc, err := s.Store.GetAccount(ctx, c.AccountID)
	if err != nil {
		return c, err
	}
	var names []string
	for _, id := range c.Lists {
		if l, err := s.Store.GetList(ctx, c.AccountID, id); err == nil {
			names = append(names, l.Name)
		}
	}
	letter := welcomeLetter(acc, names, c.Subscriber.Email, c.Subscriber.Name, s.receiptURL(c.AccountID, c.LedgerSeq, c.Subscriber.ID))
	if sent, err := s.Postman.Send(ctx, c.AccountID, letter); err != nil {
		// The confirmation stands; only the courtesy mail failed.
		s.log().Warn("welcome mail not sent", "account_id", c.AccountID, "subscriber_id", c.Subscriber.ID, "err", err)
	} else {
		s.keepProof(ctx, c.AccountID, c.Subscriber.ID, c.LedgerSeq, "welcome", sent)
	}
	s.log().Info("subscription confirmed", "account_id", c.AccountID, "subscriber_id", c.Subscriber.ID)
	return c, nil
}

// PendingRequest is a double opt-in request as its confirm and decline pages show it.
type PendingRequest struct {
	// AsksTracking: confirming gives the tracking consent the request asks for, unless
	// the person chooses to confirm without it; the page must offer both.
	AsksTracking bool
	// Lists are the lists confirming would subscribe to now: the request's, less those
	// deleted since. None: Confirm would answer ErrListsGone.
	Lists []int64
}

// LookUpRequest reads the request a confirmation (or decline) link names, as Confirm
// and Decline would find it, and changes nothing: the pages' GETs, which mail scanners
// follow, must neither use nor spend the link. ErrBadLink where Confirm and Decline
// would answer so (forged, altered, used, expired).
func (s *Service) LookUpRequest(ctx context.Context, token string) (PendingRequest, error) {
	hash, err := s.confirmTokenHash(token)
	if err != nil {
		return PendingRequest{}, err
	}
	p, err := s.Store.PendingRequest(ctx, hash)
	if errors.Is(err, tidings.ErrNotFound) {
		return PendingRequest{}, ErrBadLink
	}
	if err != nil {
		return PendingRequest{}, err
	}
	return PendingRequest{AsksTracking: p.Changes != nil && p.Changes.TrackingConsent, Lists: p.Lists}, nil
}

// confirmTokenHash checks the signature of a confirmation (or decline) link's token and
// returns the hash the store keeps it by; ErrBadLink when it is forged or altered.
func (s *Service) confirmTokenHash(token string) ([]byte, error) {
	if _, err := s.Keys.Verify("confirm", token); err != nil {
		return nil, ErrBadLink
	}
	return keys.HashSecretToken(token), nil
}

// Decline uses the "this wasn't me" link: the request and what it created are deleted.
// ErrBadLink where Confirm would answer so, an expired link included (the retention
// sweep deletes that request).
func (s *Service) Decline(ctx context.Context, token string) error {
	hash, err := s.confirmTokenHash(token)
	if err != nil {
		return err
	}
	err = s.Store.DeclineSubscription(ctx, hash, tidings.Evidence{})
	if errors.Is(err, tidings.ErrNotFound) {
		return ErrBadLink
	}
	return err
}

// keepProof stores a mail as sent beside its ledger entry. It runs after the request or
// confirmation is committed and the mail is gone, so a failure here must not tell the
// person the opposite of what happened: it is logged, and the request stands without
// its proof. It goes on when the caller has gone away.
func (s *Service) keepProof(ctx context.Context, accountID, subscriberID, ledgerSeq int64, kind string, sent []byte) {
	if err := s.Store.AttachProof(context.WithoutCancel(ctx), accountID, subscriberID, ledgerSeq, kind, sent); err != nil {
		s.log().Error("proof of a mail as sent not stored", "account_id", accountID, "subscriber_id", subscriberID, "ledger_seq", ledgerSeq, "kind", kind, "err", err)
	}
}

// ErrMailNotSent is a confirmation mail that could not be sent now (relay unreachable,
// or a temporary refusal): the request was withdrawn, and asking again later works.
var ErrMailNotSent = errors.New("the confirmation mail could not be sent just now")

// unsent withdraws a request whose confirmation mail failed (WithdrawRequest): nobody
// can confirm it, and left in place it would stand in the way of asking again for a
// week. A relay's lasting refusal of the address (5xx) is the caller's mistake, a
// *tidings.ValidationError on "email"; anything else is ErrMailNotSent.
func (s *Service) unsent(ctx context.Context, accountID int64, tokenHash []byte, sendErr error) error {
	// Withdrawn even when the caller went away (a send cut short by a closed request).
	if err := s.Store.WithdrawRequest(context.WithoutCancel(ctx), tokenHash); err != nil {
		s.log().Error("unsent confirmation request not withdrawn; it expires on its own", "account_id", accountID, "err", err)
	}
	var refused *mail.SendError
	if errors.As(sendErr, &refused) && !refused.Temporary && refused.Code >= 500 {
		return tidings.Invalid("email", "refused", "the mail server refused mail to this address (%s); check the address",
			strings.TrimSpace(fmt.Sprintf("%d %s", refused.Code, refused.Enhanced)))
	}
	return fmt.Errorf("%w: %w", ErrMailNotSent, sendErr)
}

func (s *Service) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func greeting(name string) string {
	if name = strings.TrimSpace(name); name != "" {
		return "Hello " + name + ","
	}
	return "Hello,"
}
