package public

import (
	"errors"
	"net/http"

	"github.com/tidings/tidings/internal/send"
	"github.com/tidings/tidings/internal/tidings"
)

// UnsubscribePattern receives one-click unsubscribes (RFC 8058): mail providers post
// without cookies, origin or CSRF token, so it is exempt from cross-origin checks; the
// signed token in the path is the authority.
const UnsubscribePattern = "POST /u/{token}"

// unsubscribePage answers GET: a button, never an unsubscribe, because link scanners
// and prefetchers follow every link in a mail.
func (s *server) unsubscribePage(w http.ResponseWriter, r *http.Request) {
	if _, _, _, ok := send.ParseRecipientToken(s.Consent.Keys, r.PathValue("token")); !ok {
		s.message(w, http.StatusNotFound, "Link not valid", "This unsubscribe link is not valid. Use the link from the email exactly as it is.")
		return
	}
	s.render(w, http.StatusOK, "unsubscribe.html", messagePage{Title: "Unsubscribe",
		Message: "Press the button to stop receiving these emails.", Action: "/u/" + r.PathValue("token"), Button: "Unsubscribe"})
}

// unsubscribe answers POST: at once, with 200 and no redirect, as RFC 8058 requires.
func (s *server) unsubscribe(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	if _, _, _, ok := send.ParseRecipientToken(s.Consent.Keys, token); !ok {
		s.message(w, http.StatusNotFound, "Link not valid", "This unsubscribe link is not valid. Use the link from the email exactly as it is.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseMultipartForm(64 << 10); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		s.message(w, http.StatusBadRequest, "Request not understood", "The unsubscribe request could not be read.")
		return
	}
	if r.PostForm.Get("List-Unsubscribe") != "One-Click" {
		s.message(w, http.StatusBadRequest, "Request not understood", "Use the button on the unsubscribe page, or your mail program's unsubscribe action.")
		return
	}
	ctx := r.Context()
	ev := tidings.Evidence{IP: s.ClientIP.IP(r).String(), UserAgent: clip(r.UserAgent(), 512)}
	event, err := s.Consent.UnsubscribeRecipient(ctx, token, tidings.SourceMail, ev)
	if err != nil {
		s.Log.Error("unsubscribe failed", "err", err)
		s.message(w, http.StatusInternalServerError, "Something went wrong", "Please try again in a moment.")
		return
	}
	if s.Events != nil && event.Kind != "" { // empty: nothing was withdrawn, nothing to count
		s.Events.Record(ctx, event)
	}
	s.message(w, http.StatusOK, "You are unsubscribed", "You will not receive these emails any more.")
}
