package bounce

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"

	"github.com/tidings/tidings/internal/consent"
	"github.com/tidings/tidings/internal/keys"
	"github.com/tidings/tidings/internal/send"
	"github.com/tidings/tidings/internal/tidings"
)

// Processor applies inbound mail: reports to their deliveries, and unsubscribe requests
// sent to the List-Unsubscribe mailto address.
type Processor struct {
	Store   tidings.Store
	Keys    *keys.Keyring
	Consent *consent.Service // for unsubscribe requests
	Log     *slog.Logger
}

// Outcome says what became of one report.
type Outcome struct {
	Result     string               `json:"result"` // recorded, repeated or ignored
	Reason     string               `json:"reason,omitempty"`
	Kind       tidings.FeedbackKind `json:"kind,omitempty"`
	Status     string               `json:"status,omitempty"`
	Suppressed bool                 `json:"suppressed"`
}

// Outcome results.
const (
	Recorded = "recorded"
	Repeated = "repeated"
	Ignored  = "ignored"
)

// Handle reads one report and applies it. rcpt is the address it was sent to, when
// known: the VERP return path names the recipient; otherwise the token is looked for
// in the quoted original message. A report that cannot be matched, or is not a bounce
// or complaint, is ignored with a reason; the error is for input that is not mail
// (ErrNotMail) and for store failures, which the sender may retry.
func (p *Processor) Handle(ctx context.Context, rcpt string, msg io.Reader) (Outcome, error) {
	body, err := io.ReadAll(io.LimitReader(msg, MaxMessageBytes+1))
	if err != nil {
		return Outcome{}, err
	}
	if len(body) > MaxMessageBytes {
		return Outcome{}, errTooLarge
	}
	rep, err := Parse(bytes.NewReader(body))
	if err != nil {
		return Outcome{}, err
	}
	return p.Apply(ctx, rcpt, rep)
}

// Apply applies a parsed report that was sent to rcpt (may be empty), as Handle does.
func (p *Processor) Apply(ctx context.Context, rcpt string, rep Report) (Outcome, error) {
	out := Outcome{Result: Ignored, Kind: rep.Kind, Status: rep.Status}
	if rep.Kind == "" {
		out.Reason = "not a bounce or complaint"
		return out, nil
	}
	token := TokenFromAddress(rcpt)
	if token == "" {
		token = rep.Token
	}
	if token == "" {
		out.Reason = "no recipient token: the report names no Tidings message"
		return out, nil
	}
	account, campaign, subscriber, ok := send.ParseRecipientToken(p.Keys, token)
	if !ok {
		out.Reason = "the recipient token is not valid"
		return out, nil
	}
	res, err := p.Store.RecordFeedback(ctx, tidings.Feedback{AccountID: account, CampaignID: campaign, SubscriberID: subscriber,
		Kind: rep.Kind, Status: rep.Status, Detail: rep.Detail})
	if errors.Is(err, tidings.ErrNotFound) {
		out.Reason = "no such delivery (deleted since, or never sent)"
		return out, nil
	}
	if err != nil {
		return Outcome{}, err
	}
	out.Result, out.Suppressed = Recorded, res.Suppressed
	if !res.Counted {
		out.Result = Repeated
	}
	// IDs only: logs carry no addresses.
	p.log().Info("feedback", "kind", rep.Kind, "status", rep.Status, "account", account, "campaign", campaign,
		"subscriber", subscriber, "result", out.Result, "suppressed", out.Suppressed)
	return out, nil
}

// Unsubscribe takes a message to the List-Unsubscribe mailto address
// (unsub+TOKEN@domain): whatever it says, it withdraws the recipient's consent,
// as the one-click link does (RFC 2369 and RFC 8058 ask nothing more of it).
func (p *Processor) Unsubscribe(ctx context.Context, token string) error {
	ev := tidings.Evidence{Note: "by email to the List-Unsubscribe address"}
	event, err := p.Consent.UnsubscribeRecipient(ctx, token, tidings.SourceMail, ev)
	if err != nil || event.Kind == "" { // nothing withdrawn: nothing to count
		return err
	}
	return p.Store.RecordEvents(ctx, []tidings.Event{event})
}

var errTooLarge = errors.New("bounce: the report is larger than 1 MiB")

// IsTooLarge reports whether Handle refused a report for its size.
func IsTooLarge(err error) bool { return errors.Is(err, errTooLarge) }

func (p *Processor) log() *slog.Logger {
	if p.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Log
}
