package mail

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Envelope is the SMTP envelope: the return path (perhaps a VERP address) and recipients.
type Envelope struct {
	From string
	To   []string
	// Account is the account the mail is sent for (0 for the instance's own mail, such
	// as sign-in links). Relays ignore it; the outbox records it, so that an account is
	// shown its own mail whatever domain it went out from.
	Account int64
}

// check refuses envelopes no relay could take: no recipient, or a line break that
// would smuggle an SMTP command. Retrying cannot help, so the error is permanent.
func (e Envelope) check() error {
	if len(e.To) == 0 {
		return &SendError{Message: "no recipients"}
	}
	bad := strings.ContainsAny(e.From, "\r\n")
	for _, a := range e.To {
		bad = bad || strings.ContainsAny(a, "\r\n")
	}
	if bad {
		return &SendError{Message: "line break in an envelope address"}
	}
	return nil
}

// Sender delivers signed messages.
type Sender interface {
	Send(ctx context.Context, env Envelope, msg []byte) error
	Close() error
}

// SendError is a delivery failure with what the relay said. Temporary errors (4xx,
// broken connections) are worth retrying; permanent ones (5xx) are not.
type SendError struct {
	Code      int    // SMTP reply code; 0 when the relay never answered
	Enhanced  string // enhanced status code ("5.1.1"), when the relay gave one
	Message   string // the relay's text, addresses redacted
	Temporary bool
	err       error // the cause, for errors.Is (context.Canceled, ErrPoolClosed, …)
}

func (e *SendError) Error() string {
	kind := "permanent"
	if e.Temporary {
		kind = "temporary"
	}
	if e.Code == 0 {
		return fmt.Sprintf("%s delivery failure: %s", kind, e.Message)
	}
	return fmt.Sprintf("%s delivery failure: %d %s %s", kind, e.Code, e.Enhanced, e.Message)
}

func (e *SendError) Unwrap() error { return e.err }

// IsTemporary reports whether err is worth retrying. Errors that are not SendErrors
// (network trouble, timeouts) are.
func IsTemporary(err error) bool {
	var se *SendError
	if errors.As(err, &se) {
		return se.Temporary
	}
	return err != nil
}

var addressRE = regexp.MustCompile(`[^\s<>"'()\[\],;:@]+@[^\s<>"'()\[\],;:]+`)

// redact removes email addresses from a relay's reply ("550 <ann@example.com>: no such
// user"): delivery errors end up in logs and delivery records, which carry no addresses.
func redact(s string) string { return addressRE.ReplaceAllString(s, "<address>") }
