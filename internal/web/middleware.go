package web

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/tidings/tidings/internal/web/public"
)

// Security headers every response carries. The CSP allows nothing but our own styles
// and images: no scripts, no third-party anything, no framing. The values are shared
// slices, assigned under their canonical names: Header.Set would canonicalise the name
// and allocate a slice per header per request. Nothing writes into a header's slice in
// place (Set replaces it, Add appends to a full slice, which copies).
var (
	cspValue             = []string{"default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"}
	nosniffValue         = []string{"nosniff"}
	frameOptionsValue    = []string{"DENY"}
	referrerPolicyValue  = []string{"no-referrer"}
	openerPolicyValue    = []string{"same-origin"}
	permissionsPolicyVal = []string{"interest-cohort=(), browsing-topics=()"}
)

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Security-Policy"] = cspValue
		h["X-Content-Type-Options"] = nosniffValue
		h["X-Frame-Options"] = frameOptionsValue
		h["Referrer-Policy"] = referrerPolicyValue
		h["Cross-Origin-Opener-Policy"] = openerPolicyValue
		h["Permissions-Policy"] = permissionsPolicyVal
		next.ServeHTTP(w, r)
	})
}

// statusWriter remembers the status code for the access log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// accessLog logs one line per request. It logs the route pattern, never the URL: paths
// and query strings can carry addresses and tokens, and logs must carry neither (nor
// client IPs).
//
// Responses carry the request ID (X-Request-ID), except the tracking pixel and click
// redirect: no person reads their headers, and they are the busiest routes. With the
// ID they had nine headers, one more than a Go map holds without growing into a table,
// which then net/http copies once more (Header.Clone at WriteHeader): about a quarter
// of the bytes allocated per tracking request.
func accessLog(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := newRequestID()
		if !public.IsTrackingPath(r.URL.Path) {
			w.Header()["X-Request-Id"] = []string{id}
		}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		route := r.Pattern
		if route == "" {
			route = "(unmatched)"
		}
		// The record is built here rather than by log.Info, which boxes every value and
		// asks the runtime for its caller (no handler of ours prints the source).
		h := log.Handler()
		if !h.Enabled(r.Context(), slog.LevelInfo) {
			return
		}
		rec := slog.NewRecord(time.Now(), slog.LevelInfo, "http", 0)
		rec.AddAttrs(slog.String("request_id", id), slog.String("method", r.Method), slog.String("route", route),
			slog.Int("status", sw.status), slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000))
		h.Handle(r.Context(), rec)
	})
}

// newRequestID returns 16 hex digits. An ID only tells log lines apart, so it comes
// from the runtime's fast generator rather than from the system's (one syscall each).
func newRequestID() string {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], rand.Uint64())
	return hex.EncodeToString(b[:])
}

// recoverPanics turns a panic into a 500 and a log line, keeping the server alive.
func recoverPanics(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.Error("panic in handler", "route", r.Pattern, "panic", v)
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
