// Package config loads Tidings' configuration. One table of settings drives every
// source: defaults, an optional TOML file, TIDINGS_* environment variables (with *_FILE
// variants for secrets) and command-line flags, in that order of precedence.
package config

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is the effective configuration.
type Config struct {
	DataDir         string
	DatabaseURL     string
	Listen          string
	BounceListen    string // inbound SMTP for bounces and complaints; empty: off
	BaseURL         string
	SecretKey       string
	LogLevel        string
	LogFormat       string
	TrustedProxies  []netip.Prefix
	SMTP            SMTPConfig
	MaxBodyBytes    int64
	MaxUploadBytes  int64
	ShutdownTimeout time.Duration
	Send            SendConfig
	DKIMLibcrypto   string // OpenSSL 3 libcrypto for RSA DKIM signatures; "off": crypto/rsa
	DNSResolver     string // DNS server (host:port) of the sending-domain DNS check; empty: the system's
}

// SendConfig shapes the campaign engine on this node.
type SendConfig struct {
	Workers   int     // batches sent at once
	Rate      float64 // messages per second across the node; 0 = unlimited
	PerDomain float64 // messages per second to one recipient domain; 0 = unlimited
}

// SMTPConfig is the outbound relay. An empty Host means "no relay: use the outbox".
type SMTPConfig struct {
	Host     string
	Port     int // 0: by TLS mode, resolved by mail.NewSMTPPool (465 for "tls", else 587)
	Username string
	Password string
	TLS      string // starttls | tls | none
	PoolSize int
}

// setting describes one configuration value once for every source.
type setting struct {
	key    string // TOML key; env is TIDINGS_ + upper(key); flag is key with '-' for '_'
	help   string
	secret bool
	get    func(*Config) string
	set    func(*Config, string) error // parses and range-checks one value
}

func (s setting) env() string  { return "TIDINGS_" + strings.ToUpper(s.key) }
func (s setting) flag() string { return strings.ReplaceAll(s.key, "_", "-") }

var settings = []setting{
	{key: "data_dir", help: "data folder (SQLite database, outbox, generated secret)",
		get: func(c *Config) string { return c.DataDir },
		set: func(c *Config, v string) error { return nonEmpty(&c.DataDir, v) }},
	{key: "database_url", help: "sqlite:PATH or postgres://… (default sqlite:<data_dir>/tidings.db)", secret: true,
		get: func(c *Config) string { return c.DatabaseURL },
		set: func(c *Config, v string) error { return checkDatabaseURL(&c.DatabaseURL, v) }},
	{key: "listen", help: "HTTP listen address, host:port",
		get: func(c *Config) string { return c.Listen },
		set: func(c *Config, v string) error { return checkHostPort(&c.Listen, v) }},
	{key: "bounce_listen", help: "inbound SMTP address for bounces, complaints and mailto unsubscribes, host:port (empty: off)",
		get: func(c *Config) string { return c.BounceListen },
		set: func(c *Config, v string) error { return optionalHostPort(&c.BounceListen, v) }},
	{key: "base_url", help: "public URL used in links (default http://<listen>)",
		get: func(c *Config) string { return c.BaseURL },
		set: func(c *Config, v string) error { return checkBaseURL(&c.BaseURL, v) }},
	{key: "secret_key", help: "master secret, ≥ 32 bytes in base64 or hex", secret: true,
		get: func(c *Config) string { return c.SecretKey },
		set: func(c *Config, v string) error { return checkSecret(&c.SecretKey, v) }},
	{key: "log_level", help: "debug, info, warn or error",
		get: func(c *Config) string { return c.LogLevel },
		set: func(c *Config, v string) error { return oneOf(&c.LogLevel, v, "debug", "info", "warn", "error") }},
	{key: "log_format", help: "text or json",
		get: func(c *Config) string { return c.LogFormat },
		set: func(c *Config, v string) error { return oneOf(&c.LogFormat, v, "text", "json") }},
	{key: "trusted_proxies", help: "comma-separated IPs/CIDRs whose X-Forwarded-For is believed",
		get: func(c *Config) string { return joinPrefixes(c.TrustedProxies) },
		set: func(c *Config, v string) error { return parsePrefixes(&c.TrustedProxies, v) }},
	{key: "smtp_host", help: "SMTP relay host; empty writes mail to the outbox",
		get: func(c *Config) string { return c.SMTP.Host },
		set: func(c *Config, v string) error { c.SMTP.Host = v; return nil }},
	{key: "smtp_port", help: "SMTP relay port; 0: 465 with smtp_tls = \"tls\", else 587",
		get: func(c *Config) string { return strconv.Itoa(c.SMTP.Port) },
		set: func(c *Config, v string) error { return intRange(&c.SMTP.Port, v, 0, 65535) }},
	{key: "smtp_username", help: "SMTP user name",
		get: func(c *Config) string { return c.SMTP.Username },
		set: func(c *Config, v string) error { c.SMTP.Username = v; return nil }},
	{key: "smtp_password", help: "SMTP password", secret: true,
		get: func(c *Config) string { return c.SMTP.Password },
		set: func(c *Config, v string) error { c.SMTP.Password = v; return nil }},
	{key: "smtp_tls", help: "starttls, tls or none",
		get: func(c *Config) string { return c.SMTP.TLS },
		set: func(c *Config, v string) error { return oneOf(&c.SMTP.TLS, v, "starttls", "tls", "none") }},
	{key: "smtp_pool_size", help: "pooled SMTP connections, 1–256",
		get: func(c *Config) string { return strconv.Itoa(c.SMTP.PoolSize) },
		set: func(c *Config, v string) error { return intRange(&c.SMTP.PoolSize, v, 1, 256) }},
	{key: "max_body_bytes", help: "largest accepted API request body, in bytes",
		get: func(c *Config) string { return strconv.FormatInt(c.MaxBodyBytes, 10) },
		set: func(c *Config, v string) error { return int64Range(&c.MaxBodyBytes, v, 1024, 1<<30) }},
	{key: "max_upload_bytes", help: "largest accepted upload (CSV import), in bytes",
		get: func(c *Config) string { return strconv.FormatInt(c.MaxUploadBytes, 10) },
		set: func(c *Config, v string) error { return int64Range(&c.MaxUploadBytes, v, 1024, 1<<40) }},
	{key: "send_workers", help: "campaign batches this node sends at once, 1–256",
		get: func(c *Config) string { return strconv.Itoa(c.Send.Workers) },
		set: func(c *Config, v string) error { return intRange(&c.Send.Workers, v, 1, 256) }},
	{key: "send_rate", help: "campaign messages per second on this node (0: unlimited)",
		get: func(c *Config) string { return strconv.FormatFloat(c.Send.Rate, 'f', -1, 64) },
		set: func(c *Config, v string) error { return floatRange(&c.Send.Rate, v, 0, 1e6) }},
	{key: "send_domain_rate", help: "campaign messages per second to one recipient domain (0: unlimited)",
		get: func(c *Config) string { return strconv.FormatFloat(c.Send.PerDomain, 'f', -1, 64) },
		set: func(c *Config, v string) error { return floatRange(&c.Send.PerDomain, v, 0, 1e6) }},
	{key: "dkim_libcrypto", help: "OpenSSL 3 libcrypto (name or path) that makes RSA DKIM signatures, loaded at start; off, or if it fails: Go's crypto/rsa",
		get: func(c *Config) string { return c.DKIMLibcrypto },
		set: func(c *Config, v string) error { return nonEmpty(&c.DKIMLibcrypto, v) }},
	{key: "dns_resolver", help: "DNS server, host:port, that the sending domains' DNS check asks (empty: the system's resolver)",
		get: func(c *Config) string { return c.DNSResolver },
		set: func(c *Config, v string) error { return optionalHostPort(&c.DNSResolver, v) }},
	{key: "shutdown_timeout", help: "grace period for in-flight requests on shutdown (e.g. 15s)",
		get: func(c *Config) string { return c.ShutdownTimeout.String() },
		set: func(c *Config, v string) error { return duration(&c.ShutdownTimeout, v) }},
}

// Default returns the secure defaults: SQLite in ./tidings-data, loopback only.
func Default() Config {
	return Config{
		DataDir: "./tidings-data", Listen: "127.0.0.1:8080", LogLevel: "info", LogFormat: "text",
		SMTP:         SMTPConfig{TLS: "starttls", PoolSize: 4}, // Port 0: by TLS mode
		MaxBodyBytes: 1 << 20, MaxUploadBytes: 64 << 20, ShutdownTimeout: 15 * time.Second,
		Send: SendConfig{Workers: 8}, DKIMLibcrypto: "libcrypto.so.3",
	}
}

// Sources are the places configuration comes from.
type Sources struct {
	File    string                      // TOML file; "" for none
	Env     func(string) (string, bool) // os.LookupEnv in production
	Environ []string                    // os.Environ(), to report unknown TIDINGS_* variables
	Flags   map[string]string           // flag name → value, only the flags the user set
}

// SettingError names a setting, where its value came from, and what is wrong with it.
type SettingError struct {
	Setting, Source, Problem string
}

func (e *SettingError) Error() string {
	return fmt.Sprintf("%s (from %s): %s", e.Setting, e.Source, e.Problem)
}

// Load applies defaults, file, environment and flags, then validates the result.
func Load(src Sources) (Config, error) {
	c := Default()
	var errs []error
	fail := func(name, source string, err error) {
		errs = append(errs, &SettingError{Setting: name, Source: source, Problem: err.Error()})
	}
	if src.File != "" {
		errs = append(errs, loadFile(&c, src.File)...)
	}
	if src.Env == nil {
		src.Env = func(string) (string, bool) { return "", false }
	}
	known := map[string]bool{"TIDINGS_CONFIG": true}
	for _, s := range settings {
		known[s.env()] = true
		known[s.env()+"_FILE"] = true
		v, ok := src.Env(s.env())
		fv, fok := src.Env(s.env() + "_FILE")
		switch {
		case ok && fok:
			fail(s.env(), "environment", errors.New("set both "+s.env()+" and "+s.env()+"_FILE; choose one"))
			continue
		case fok:
			b, err := os.ReadFile(fv)
			if err != nil {
				fail(s.env()+"_FILE", "environment", fmt.Errorf("cannot read %s: %w", fv, err))
				continue
			}
			v, ok = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r"), true
		}
		if ok {
			if err := s.set(&c, v); err != nil {
				fail(s.env(), "environment", err)
			}
		}
	}
	for _, kv := range src.Environ {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "TIDINGS_") && !known[k] && !strings.HasPrefix(k, "TIDINGS_TEST_") {
			fail(k, "environment", errors.New("unknown setting (misspelt?)"))
		}
	}
	for _, s := range settings {
		if v, ok := src.Flags[s.flag()]; ok {
			if err := s.set(&c, v); err != nil {
				fail(s.key, "flag --"+s.flag(), err)
			}
		}
	}
	if len(errs) > 0 {
		return c, errors.Join(errs...)
	}
	return c, c.Validate()
}

// loadFile reads a TOML file of top-level keys; values may be strings, numbers,
// booleans or (for trusted_proxies) arrays of strings.
func loadFile(c *Config, path string) []error {
	source := "config file " + path
	var raw map[string]any
	if _, err := toml.DecodeFile(path, &raw); err != nil {
		return []error{&SettingError{Setting: "config", Source: source, Problem: err.Error()}}
	}
	byKey := map[string]setting{}
	for _, s := range settings {
		byKey[s.key] = s
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	for _, k := range keys {
		s, ok := byKey[k]
		if !ok {
			errs = append(errs, &SettingError{Setting: k, Source: source, Problem: "unknown setting (misspelt?)"})
			continue
		}
		var v string
		switch x := raw[k].(type) {
		case []any:
			parts := make([]string, len(x))
			for i, p := range x {
				parts[i] = fmt.Sprint(p)
			}
			v = strings.Join(parts, ",")
		default:
			v = fmt.Sprint(x)
		}
		if err := s.set(c, v); err != nil {
			errs = append(errs, &SettingError{Setting: k, Source: source, Problem: err.Error()})
		}
	}
	return errs
}

// Validate checks rules that involve more than one setting.
func (c Config) Validate() error {
	var errs []error
	if c.SMTP.Host != "" && (c.SMTP.Username == "") != (c.SMTP.Password == "") {
		errs = append(errs, &SettingError{Setting: "smtp_username/smtp_password", Source: "configuration",
			Problem: "give both a user name and a password, or neither"})
	}
	return errors.Join(errs...)
}

// DatabaseURLOrDefault returns the database URL, defaulting to SQLite in the data folder.
func (c Config) DatabaseURLOrDefault() string {
	if c.DatabaseURL != "" {
		return c.DatabaseURL
	}
	return "sqlite:" + strings.TrimSuffix(c.DataDir, "/") + "/tidings.db"
}

// PublicURL is the base of every link Tidings puts in mail and pages, without a trailing slash.
func (c Config) PublicURL() string {
	if c.BaseURL != "" {
		return strings.TrimSuffix(c.BaseURL, "/")
	}
	return "http://" + c.Listen
}

// SecretKeyBytes decodes the master secret; nil when none is configured.
func (c Config) SecretKeyBytes() ([]byte, error) {
	if c.SecretKey == "" {
		return nil, nil
	}
	return decodeSecret(c.SecretKey)
}

const redacted = "[redacted]"

// Redacted returns a copy safe to print: secrets replaced, database passwords masked.
func (c Config) Redacted() Config {
	if c.SecretKey != "" {
		c.SecretKey = redacted
	}
	if c.SMTP.Password != "" {
		c.SMTP.Password = redacted
	}
	if u, err := url.Parse(c.DatabaseURL); err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			c.DatabaseURL = u.String()
		}
	}
	return c
}

// WriteTOML prints the configuration as a TOML file (call it on Redacted()).
func (c Config) WriteTOML(w io.Writer) error {
	for _, s := range settings {
		v := s.get(&c)
		if s.key == "database_url" && v == "" {
			v = c.DatabaseURLOrDefault()
		}
		if _, err := fmt.Fprintf(w, "%s = %s  # %s\n", s.key, tomlValue(s.key, v), s.help); err != nil {
			return err
		}
	}
	return nil
}

func tomlValue(key, v string) string {
	switch key {
	case "smtp_port", "smtp_pool_size", "max_body_bytes", "max_upload_bytes", "send_workers", "send_rate", "send_domain_rate":
		return v
	case "trusted_proxies":
		var parts []string
		for _, p := range strings.Split(v, ",") {
			if p != "" {
				parts = append(parts, strconv.Quote(p))
			}
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return strconv.Quote(v)
}

// RegisterFlags defines a flag for every setting on fs. After fs.Parse, the returned
// function yields the flags the user actually set, for Sources.Flags.
func RegisterFlags(fs *flag.FlagSet) func() map[string]string {
	vals := map[string]*string{}
	for _, s := range settings {
		vals[s.flag()] = fs.String(s.flag(), "", s.help+" (env "+s.env()+")")
	}
	return func() map[string]string {
		set := map[string]string{}
		fs.Visit(func(f *flag.Flag) {
			if v, ok := vals[f.Name]; ok {
				set[f.Name] = *v
			}
		})
		return set
	}
}

// Parsers: each returns a problem in words, without the setting's name.

func nonEmpty(dst *string, v string) error {
	if strings.TrimSpace(v) == "" {
		return errors.New("must not be empty")
	}
	*dst = v
	return nil
}

func oneOf(dst *string, v string, choices ...string) error {
	v = strings.ToLower(strings.TrimSpace(v))
	for _, c := range choices {
		if v == c {
			*dst = v
			return nil
		}
	}
	return fmt.Errorf("%q is not one of %s", v, strings.Join(choices, ", "))
}

func intRange(dst *int, v string, lo, hi int) error {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < lo || n > hi {
		return fmt.Errorf("%q must be a whole number from %d to %d", v, lo, hi)
	}
	*dst = n
	return nil
}

func int64Range(dst *int64, v string, lo, hi int64) error {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < lo || n > hi {
		return fmt.Errorf("%q must be a whole number of bytes from %d to %d", v, lo, hi)
	}
	*dst = n
	return nil
}

func floatRange(dst *float64, v string, lo, hi float64) error {
	n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || n < lo || n > hi {
		return fmt.Errorf("%q must be a number from %g to %g", v, lo, hi)
	}
	*dst = n
	return nil
}

func duration(dst *time.Duration, v string) error {
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil || d <= 0 {
		return fmt.Errorf("%q must be a positive duration like 15s or 2m", v)
	}
	*dst = d
	return nil
}

// optionalHostPort is checkHostPort for a setting that may be empty (off, or a default).
func optionalHostPort(dst *string, v string) error {
	if v == "" {
		*dst = ""
		return nil
	}
	return checkHostPort(dst, v)
}

func checkHostPort(dst *string, v string) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("%q is not a host:port address like 127.0.0.1:8080", v)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q has an invalid port", v)
	}
	_ = host
	*dst = v
	return nil
}

func checkBaseURL(dst *string, v string) error {
	if v == "" {
		*dst = ""
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q must be an absolute http(s) URL without query or fragment, like https://news.example.com", v)
	}
	*dst = strings.TrimSuffix(v, "/")
	return nil
}

func checkDatabaseURL(dst *string, v string) error {
	switch {
	case v == "":
	case strings.HasPrefix(v, "sqlite:"):
		if strings.TrimPrefix(strings.TrimPrefix(v, "sqlite:"), "//") == "" {
			return errors.New("sqlite: needs a file path, like sqlite:./tidings-data/tidings.db")
		}
	case strings.HasPrefix(v, "postgres://"), strings.HasPrefix(v, "postgresql://"):
		if _, err := url.Parse(v); err != nil {
			return errors.New("is not a valid postgres:// URL")
		}
	default:
		return errors.New("must start with sqlite: or postgres://")
	}
	*dst = v
	return nil
}

func checkSecret(dst *string, v string) error {
	v = strings.TrimSpace(v)
	if v != "" {
		if _, err := decodeSecret(v); err != nil {
			return err
		}
	}
	*dst = v
	return nil
}

func decodeSecret(v string) ([]byte, error) {
	for _, dec := range []func(string) ([]byte, error){hex.DecodeString, base64.StdEncoding.DecodeString,
		base64.RawStdEncoding.DecodeString, base64.URLEncoding.DecodeString, base64.RawURLEncoding.DecodeString} {
		if b, err := dec(v); err == nil && len(b) >= 32 {
			return b, nil
		}
	}
	return nil, errors.New("must be at least 32 random bytes in hex or base64 (make one with: head -c 32 /dev/urandom | base64)")
}

func parsePrefixes(dst *[]netip.Prefix, v string) error {
	var out []netip.Prefix
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if p, err := netip.ParsePrefix(part); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(part)
		if err != nil {
			return fmt.Errorf("%q is not an IP address or CIDR range", part)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	*dst = out
	return nil
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}
