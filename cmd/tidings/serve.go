package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/tidings/tidings/internal/bounce"
	"github.com/tidings/tidings/internal/keys"
	"github.com/tidings/tidings/internal/mail"
	"github.com/tidings/tidings/internal/postman"
	"github.com/tidings/tidings/internal/sqlstore"
	"github.com/tidings/tidings/internal/track"
	"github.com/tidings/tidings/internal/web"
	"github.com/tidings/tidings/internal/web/clientip"
)

func cmdServe(ctx context.Context, e env, args []string) error {
	fs, load := newFlags("serve", e)
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := load()
	if err != nil {
		return err
	}
	// The log goes out in batches (logBuffer): one line per request written straight to
	// stderr was a system call per request. Closed last, after everything that logs.
	logs := newLogBuffer(e.stderr, 100*time.Millisecond)
	defer logs.Close()
	e.stderr = logs
	a, err := openApp(ctx, cfg, e)
	if err != nil {
		return err
	}
	defer a.Close()

	// The event writer outlives the signal: requests still in flight during the graceful
	// shutdown wait for their events' commit, so it stops only after the server has.
	wctx, stopWriter := context.WithCancel(context.Background())
	defer stopWriter()
	events := track.NewWriter(wctx, a.store)

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler: web.NewHandler(web.Deps{
			Store: a.store, Keys: a.keys, Log: a.log,
			BaseURL: cfg.PublicURL(), MaxBodyBytes: cfg.MaxBodyBytes, MaxUploadBytes: cfg.MaxUploadBytes,
			Consent: a.consent, Outbox: a.outbox, ClientIP: clientip.Resolver{Trusted: cfg.TrustedProxies}, Engine: a.engine(), Events: events,
			Sender: a.sender, MailFrom: "no-reply@" + fallbackDomain(cfg), DNS: postman.NewResolver(cfg.DNSResolver),
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       5 * time.Minute, // large CSV uploads
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          nil,
	}
	rsaBackend, err := mail.RSABackend()
	if err != nil {
		a.log.Warn("RSA DKIM signatures fall back to Go's crypto/rsa (slower)", "err", err)
	}
	a.log.Info("tidings serving", "addr", ln.Addr().String(), "engine", a.store.Engine(), "version", version, "dkim_rsa", rsaBackend)
	if err := printSetupLink(ctx, a, e); err != nil {
		return err
	}

	if cfg.BounceListen != "" {
		bl, err := net.Listen("tcp", cfg.BounceListen)
		if err != nil {
			return fmt.Errorf("listen for bounces: %w", err)
		}
		bounces := bounce.NewServer(&bounce.Processor{Store: a.store, Keys: a.keys, Consent: a.consent, Log: a.log}, fallbackDomain(cfg))
		defer bounces.Close()
		go bounces.Serve(bl)
		a.log.Info("taking bounces, complaints and unsubscribe requests by SMTP", "addr", bl.Addr().String())
	}

	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	go a.runRetention(ctx, time.Hour)
	eng := a.engine()
	go eng.Run(ctx, 2*time.Second)
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	a.log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	a.log.Info("stopped")
	return nil
}

// printSetupLink prints, while no operator exists, a one-time link to create the first
// one. Each start replaces the token, so only the newest link works. The link goes to
// standard output for the person starting the server, never into the logs.
func printSetupLink(ctx context.Context, a *app, e env) error {
	n, err := a.store.CountOperators(ctx)
	if err != nil || n > 0 {
		return err
	}
	token, hash := keys.NewSecretToken("setup_")
	if err := a.store.PutSetting(ctx, sqlstore.SettingSetupToken, hex.EncodeToString(hash)); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "\nNo operator account exists yet. Create the first one (this link works once):\n\n    %s/setup?token=%s\n\n",
		a.cfg.PublicURL(), token)
	return nil
}

func cmdMigrate(ctx context.Context, e env, args []string) error {
	fs, load := newFlags("migrate", e)
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := load()
	if err != nil {
		return err
	}
	a, err := openApp(ctx, cfg, e) // Open migrates
	if err != nil {
		return err
	}
	defer a.Close()
	fmt.Fprintf(e.stdout, "database (%s) is up to date\n", a.store.Engine())
	return nil
}

func cmdConfig(ctx context.Context, e env, args []string) error {
	fs, load := newFlags("config", e)
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := load()
	if err != nil {
		return err
	}
	return cfg.Redacted().WriteTOML(e.stdout)
}
