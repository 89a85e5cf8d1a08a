package public

import (
	"net/http"
	"time"

	"github.com/tidings/tidings/internal/tidings"
	"github.com/tidings/tidings/internal/track"
)

// A 1×1 transparent GIF.
var pixel = []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")

// Header values of the tracking responses, shared and assigned under their canonical
// names (see web.securityHeaders): these are the busiest routes.
var (
	noStore        = []string{"no-store"}
	noStorePrivate = []string{"no-store, private"}
	gifType        = []string{"image/gif"}
)

// optedOut reports the browser's Do Not Track or Global Privacy Control signal.
func optedOut(r *http.Request) bool {
	return r.Header.Get("DNT") == "1" || r.Header.Get("Sec-GPC") == "1"
}

func (s *server) event(r *http.Request, l track.Link, kind tidings.EventKind) error {
	ev := tidings.Event{AccountID: l.AccountID, CampaignID: l.CampaignID, SubscriberID: l.SubscriberID, Kind: kind, URL: l.URL, Time: time.Now()}
	if optedOut(r) {
		ev.SubscriberID = 0 // personal becomes anonymous
	}
	return s.Events.Record(r.Context(), ev)
}

func (s *server) click(w http.ResponseWriter, r *http.Request) {
	l, ok := track.ParseClick(s.Consent.Keys, r.PathValue("token"))
	if !ok {
		// Never redirect on a link we did not sign: no open redirect.
		s.message(w, http.StatusNotFound, "Link not valid", "This link is damaged or was altered, so it leads nowhere. Use the link from the email exactly as it is.")
		return
	}
	if err := s.event(r, l, tidings.EventClick); err != nil {
		s.Log.Error("recording a click failed", "campaign_id", l.CampaignID, "err", err)
	}
	h := w.Header()
	h["Cache-Control"] = noStore
	if !isASCII(l.URL) {
		http.Redirect(w, r, l.URL, http.StatusFound) // escapes non-ASCII bytes for the header
		return
	}
	// The target is a signed absolute http(s) URL, so what http.Redirect adds (parsing
	// for relative paths, an HTML body no client shows) is only cost on this hot path.
	h["Location"] = []string{l.URL}
	w.WriteHeader(http.StatusFound)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func (s *server) open(w http.ResponseWriter, r *http.Request) {
	if l, ok := track.ParseOpen(s.Consent.Keys, r.PathValue("token")); ok {
		if err := s.event(r, l, tidings.EventOpen); err != nil {
			s.Log.Error("recording an open failed", "campaign_id", l.CampaignID, "err", err)
		}
	}
	h := w.Header()
	h["Content-Type"] = gifType
	h["Cache-Control"] = noStorePrivate
	w.Write(pixel)
}

// gpc publishes that this site honours Global Privacy Control.
func (s *server) gpc(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"gpc": true, "lastUpdate": "2026-11-22"})
}
