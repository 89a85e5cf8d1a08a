// Package web is Tidings' HTTP surface: the server's handler, its middleware, and the
// pages that belong to no other surface (health, first-operator setup). The API lives in
// web/api; later surfaces (admin UI, public pages) get their own subpackages.
package web

import (
	"context"
	"embed"
	"log/slog"
	"net/http"
	"time"

	"github.com/tidings/tidings/internal/auth"
	"github.com/tidings/tidings/internal/consent"
	"github.com/tidings/tidings/internal/keys"
	"github.com/tidings/tidings/internal/mail"
	"github.com/tidings/tidings/internal/postman"
	"github.com/tidings/tidings/internal/send"
	"github.com/tidings/tidings/internal/tidings"
	"github.com/tidings/tidings/internal/track"
	"github.com/tidings/tidings/internal/web/admin"
	"github.com/tidings/tidings/internal/web/api"
	"github.com/tidings/tidings/internal/web/clientip"
	"github.com/tidings/tidings/internal/web/portal"
	"github.com/tidings/tidings/internal/web/public"
)

//go:embed static templates
var assets embed.FS

// Deps is what the web layer needs from the rest of the program.
type Deps struct {
	Store          tidings.Store
	Keys           *keys.Keyring
	Log            *slog.Logger
	BaseURL        string
	MaxBodyBytes   int64
	MaxUploadBytes int64
	// Consent runs subscribe flows; nil disables the public pages (tests of other parts).
	Consent *consent.Service
	// Outbox is the embedded mail sink, viewable by operators; nil when a relay is used.
	Outbox   *mail.Outbox
	ClientIP clientip.Resolver
	// Engine sends campaigns' test mails and previews; nil disables them.
	Engine *send.Engine
	// Events records opens and clicks; nil disables tracking endpoints.
	Events *track.Writer
	// Sender delivers portal sign-in links; nil disables the portal.
	Sender   mail.Sender
	MailFrom string // sender address of instance mail (portal links)
	// Auth signs staff in to the admin UI; nil makes one with the default policy.
	Auth *auth.Service
	// CallbackClient posts OpenDSR status callbacks; nil uses a default client.
	CallbackClient *http.Client
	// DNS reads sending domains' records for the DNS check; nil uses the system's resolver.
	DNS postman.TXTResolver
}

// NewHandler returns the complete HTTP handler.
func NewHandler(d Deps) http.Handler {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Auth == nil {
		d.Auth = auth.New(d.Store, d.Keys)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := d.Store.Ping(ctx); err != nil {
			d.Log.Warn("not ready", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.Handle("GET /static/", http.FileServerFS(assets))
	// The key that signs consent receipts and OpenDSR status callbacks, as the
	// self-signed X.509 certificate the OpenDSR discovery document names.
	mux.HandleFunc("GET /.well-known/tidings-processor.pem", func(w http.ResponseWriter, r *http.Request) {
		pem, err := d.Keys.ProcessorCertificate()
		if err != nil {
			d.Log.Error("processor certificate", "err", err)
			http.Error(w, "certificate unavailable", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Write(pem)
	})
	s := &setup{store: d.Store, log: d.Log}
	mux.HandleFunc("GET /setup", s.form)
	mux.HandleFunc("POST /setup", s.submit)
	api.Routes(mux, api.Deps{Store: d.Store, Log: d.Log, MaxBodyBytes: d.MaxBodyBytes, MaxUploadBytes: d.MaxUploadBytes, Keys: d.Keys, BaseURL: d.BaseURL, CallbackClient: d.CallbackClient, Consent: d.Consent, Outbox: d.Outbox, Engine: d.Engine})
	if d.Sender != nil {
		portal.Routes(mux, portal.Deps{Store: d.Store, Sender: d.Sender, Outbox: d.Outbox, BaseURL: d.BaseURL, From: d.MailFrom,
			ClientIP: d.ClientIP, Log: d.Log})
	}
	admin.Routes(mux, admin.Deps{Store: d.Store, Keys: d.Keys, Auth: d.Auth, Log: d.Log, BaseURL: d.BaseURL, ClientIP: d.ClientIP,
		Sender: d.Sender, MailFrom: d.MailFrom, Outbox: d.Outbox, Consent: d.Consent, Engine: d.Engine, MaxUploadBytes: d.MaxUploadBytes, DNS: d.DNS})
	if d.Consent != nil {
		public.Routes(mux, public.Deps{Store: d.Store, Consent: d.Consent, ClientIP: d.ClientIP, Log: d.Log, Events: d.Events})
	}

	// Outermost first: recover and log everything, then headers, then CSRF checks on
	// browser form posts (the API is token-authenticated and carries no cookies). Forms
	// embedded on account holders' own sites post cross-origin to the subscribe endpoint
	// (protected by its honeypot and rate limit instead), and mail providers post
	// one-click unsubscribes (RFC 8058; the signed token is the authority): those two
	// routes are exempt.
	csrf := http.NewCrossOriginProtection()
	csrf.AddInsecureBypassPattern(public.SubscribePattern)
	csrf.AddInsecureBypassPattern(public.UnsubscribePattern)
	var h http.Handler = mux
	h = csrf.Handler(h)
	h = securityHeaders(h)
	h = recoverPanics(d.Log, h)
	h = accessLog(d.Log, h)
	return h
}
