package api

import (
	"errors"
	"mime"
	"net/http"

	"github.com/tidings/tidings/internal/bounce"
)

// postFeedback takes one bounce or complaint report as a raw message, for relays that
// forward reports by HTTP instead of delivering them to the inbound SMTP server. The
// optional recipient query parameter is the return path it was sent to
// (bounces+TOKEN@domain); without it the token is taken from the quoted original.
func (a *api) postFeedback(w http.ResponseWriter, r *http.Request, _ caller) error {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "message/rfc822" {
		return fail(http.StatusUnsupportedMediaType, "unsupported_media_type", "send the report as Content-Type: message/rfc822")
	}
	rcpt := r.URL.Query().Get("recipient")
	if rcpt != "" && bounce.TokenFromAddress(rcpt) == "" {
		return &Error{Status: http.StatusBadRequest, Code: "invalid", Field: "recipient", Message: "is not a Tidings return path (bounces+TOKEN@domain)"}
	}
	p := bounce.Processor{Store: a.Store, Keys: a.Keys, Log: a.Log}
	out, err := p.Handle(r.Context(), rcpt, r.Body)
	switch {
	case bounce.IsTooLarge(err):
		return fail(http.StatusRequestEntityTooLarge, "too_large", "a report may be at most 1 MiB")
	case errors.Is(err, bounce.ErrNotMail):
		return fail(http.StatusBadRequest, "not_mail", "the body is not a mail message")
	case err != nil:
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}
