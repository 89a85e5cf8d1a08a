package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/tidings/tidings/internal/config"
	"github.com/tidings/tidings/internal/consent"
	"github.com/tidings/tidings/internal/keys"
	"github.com/tidings/tidings/internal/mail"
	"github.com/tidings/tidings/internal/postman"
	"github.com/tidings/tidings/internal/sqlstore"
)

// app is what most commands need: the configuration, a logger, the keyring, the store.
type app struct {
	cfg     config.Config
	log     *slog.Logger
	keys    *keys.Keyring
	store   *sqlstore.Store
	sender  mail.Sender
	outbox  *mail.Outbox // nil when a relay is configured
	consent *consent.Service
}

// newFlags returns a flag set carrying every configuration setting plus --config.
// Call loadConfig after Parse.
func newFlags(name string, e env) (*flag.FlagSet, func() (config.Config, error)) {
	fs := flag.NewFlagSet("tidings "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	file := fs.String("config", "", "TOML configuration file (or TIDINGS_CONFIG)")
	setFlags := config.RegisterFlags(fs)
	return fs, func() (config.Config, error) {
		path := *file
		if path == "" {
			path, _ = e.lookup("TIDINGS_CONFIG")
		}
		return config.Load(config.Sources{File: path, Env: e.lookup, Environ: e.environ, Flags: setFlags()})
	}
}

// parse parses args; -h prints help and counts as a usage error.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return nil
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// openApp loads the keyring and opens (and migrates) the store.
func openApp(ctx context.Context, cfg config.Config, e env) (*app, error) {
	log := newLogger(cfg, e.stderr)
	kr, err := keyring(cfg, log)
	if err != nil {
		return nil, err
	}
	store, err := sqlstore.Open(ctx, cfg.DatabaseURLOrDefault(), kr, log)
	if err != nil {
		return nil, err
	}
	a := &app{cfg: cfg, log: log, keys: kr, store: store}
	mail.UseLibcrypto(cfg.DKIMLibcrypto)
	if err := a.openMail(); err != nil {
		store.Close()
		return nil, err
	}
	return a, nil
}

// openMail sets up delivery: the configured SMTP relay, or else the outbox in the data
// folder, so a new user sees every mail Tidings would have sent.
func (a *app) openMail() error {
	if a.cfg.SMTP.Host != "" {
		pool, err := mail.NewSMTPPool(mail.SMTPConfig{Host: a.cfg.SMTP.Host, Port: a.cfg.SMTP.Port, Username: a.cfg.SMTP.Username,
			Password: a.cfg.SMTP.Password, TLS: a.cfg.SMTP.TLS, PoolSize: a.cfg.SMTP.PoolSize, HelloName: publicHost(a.cfg)})
		if err != nil {
			return fmt.Errorf("smtp: %w", err)
		}
		a.sender = pool
	} else {
		ob, err := mail.NewOutbox(filepath.Join(a.cfg.DataDir, "outbox"))
		if err != nil {
			return err
		}
		a.sender, a.outbox = ob, ob
	}
	a.consent = &consent.Service{Store: a.store, Keys: a.keys, Postman: postman.New(a.store, a.sender, fallbackDomain(a.cfg)),
		BaseURL: a.cfg.PublicURL(), Log: a.log}
	return nil
}

// publicHost is the host of the public URL, without a port.
func publicHost(cfg config.Config) string {
	u, err := url.Parse(cfg.PublicURL())
	if err != nil {
		return "localhost"
	}
	return u.Hostname()
}

// fallbackDomain sends mail for accounts without a sending domain: the public host when
// it is a domain name, else "localhost".
func fallbackDomain(cfg config.Config) string {
	h := publicHost(cfg)
	if net.ParseIP(h) != nil || !strings.Contains(h, ".") {
		return "localhost"
	}
	return h
}

func (a *app) Close() {
	a.sender.Close()
	a.store.Close()
}

// keyring builds the instance keyring. The master secret comes from the configuration;
// on the embedded SQLite default, without one, it is generated once and kept in the data
// folder (mode 0600) so that a new user needs no setup. PostgreSQL deployments, where
// several nodes must share one secret, have to configure it.
func keyring(cfg config.Config, log *slog.Logger) (*keys.Keyring, error) {
	master, err := cfg.SecretKeyBytes()
	if err != nil {
		return nil, err
	}
	if master == nil {
		if !strings.HasPrefix(cfg.DatabaseURLOrDefault(), "sqlite:") {
			return nil, errors.New("secret_key: TIDINGS_SECRET_KEY (or TIDINGS_SECRET_KEY_FILE) is required with PostgreSQL, " +
				"so that every node shares it; create one with: head -c 32 /dev/urandom | base64")
		}
		if master, err = dataDirSecret(cfg.DataDir, log); err != nil {
			return nil, err
		}
	}
	return keys.NewKeyring(master)
}

func dataDirSecret(dir string, log *slog.Logger) ([]byte, error) {
	path := filepath.Join(dir, "secret.key")
	b, err := os.ReadFile(path)
	if err == nil {
		master, derr := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
		if derr != nil || len(master) < 32 {
			return nil, fmt.Errorf("%s is damaged: it must hold at least 32 bytes in base64", path)
		}
		return master, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	master := make([]byte, 32)
	rand.Read(master)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := fmt.Fprintln(f, base64.StdEncoding.EncodeToString(master)); err != nil {
		return nil, err
	}
	log.Warn("generated a new instance secret; back it up: without it, encrypted personal data cannot be read", "path", path)
	return master, f.Sync()
}
