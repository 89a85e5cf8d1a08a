package config

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func envOf(kv map[string]string) (func(string) (string, bool), []string) {
	var environ []string
	for k, v := range kv {
		environ = append(environ, k+"="+v)
	}
	return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }, environ
}

func load(t *testing.T, file string, env map[string]string, flags map[string]string) (Config, error) {
	t.Helper()
	lookup, environ := envOf(env)
	return Load(Sources{File: file, Env: lookup, Environ: environ, Flags: flags})
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const secret32 = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // base64 of 32 bytes

func TestDefaults(t *testing.T) {
	c, err := load(t, "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:8080" || c.DatabaseURLOrDefault() != "sqlite:./tidings-data/tidings.db" ||
		c.PublicURL() != "http://127.0.0.1:8080" || c.SMTP.Host != "" || c.ShutdownTimeout != 15*time.Second ||
		c.DKIMLibcrypto != "libcrypto.so.3" {
		t.Fatalf("defaults = %+v", c)
	}
	if k, _ := c.SecretKeyBytes(); k != nil {
		t.Fatal("a secret key by default")
	}
	// No default port: the SMTP pool picks it by TLS mode (465 for implicit TLS).
	c, err = load(t, "", map[string]string{"TIDINGS_SMTP_TLS": "tls"}, nil)
	if err != nil || c.SMTP.Port != 0 || c.SMTP.TLS != "tls" {
		t.Fatalf("smtp_tls = tls: port %d, %v; want 0 (by TLS mode)", c.SMTP.Port, err)
	}
}

func TestPrecedence(t *testing.T) {
	file := writeFile(t, "t.toml", "listen = \"127.0.0.1:1000\"\nlog_level = \"debug\"\nsmtp_port = 2525\ntrusted_proxies = [\"10.0.0.0/8\", \"192.168.1.1\"]\n")
	c, err := load(t, file, map[string]string{"TIDINGS_LISTEN": "127.0.0.1:2000", "TIDINGS_LOG_FORMAT": "json"},
		map[string]string{"listen": "127.0.0.1:3000"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:3000" {
		t.Errorf("flag did not win: listen = %s", c.Listen)
	}
	if c.LogLevel != "debug" || c.LogFormat != "json" || c.SMTP.Port != 2525 {
		t.Errorf("file/env layers lost: %+v", c)
	}
	if len(c.TrustedProxies) != 2 || c.TrustedProxies[1].String() != "192.168.1.1/32" {
		t.Errorf("trusted proxies = %v", c.TrustedProxies)
	}
	c, _ = load(t, file, map[string]string{"TIDINGS_LISTEN": "127.0.0.1:2000", "TIDINGS_DKIM_LIBCRYPTO": "off"}, nil)
	if c.Listen != "127.0.0.1:2000" || c.DKIMLibcrypto != "off" {
		t.Errorf("env did not beat the file: %s, %s", c.Listen, c.DKIMLibcrypto)
	}
}

func TestSecretFromFile(t *testing.T) {
	f := writeFile(t, "key", secret32+"\n")
	c, err := load(t, "", map[string]string{"TIDINGS_SECRET_KEY_FILE": f}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if k, err := c.SecretKeyBytes(); err != nil || len(k) != 32 {
		t.Fatalf("secret from file: %v %d", err, len(k))
	}
	_, err = load(t, "", map[string]string{"TIDINGS_SECRET_KEY_FILE": f, "TIDINGS_SECRET_KEY": secret32}, nil)
	if err == nil || !strings.Contains(err.Error(), "choose one") {
		t.Fatalf("both set: %v", err)
	}
	_, err = load(t, "", map[string]string{"TIDINGS_SMTP_PASSWORD_FILE": "/nonexistent/pw"}, nil)
	if err == nil || !strings.Contains(err.Error(), "TIDINGS_SMTP_PASSWORD_FILE") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestBadValuesNameTheSetting(t *testing.T) {
	cases := []struct{ env, value, want string }{
		{"TIDINGS_LISTEN", "abc", "TIDINGS_LISTEN (from environment): \"abc\" is not a host:port"},
		{"TIDINGS_DATABASE_URL", "mysql://x", "must start with sqlite: or postgres://"},
		{"TIDINGS_DATABASE_URL", "sqlite:", "needs a file path"},
		{"TIDINGS_BASE_URL", "ftp://x", "TIDINGS_BASE_URL"},
		{"TIDINGS_BASE_URL", "https://x/?q=1", "without query"},
		{"TIDINGS_SECRET_KEY", "short", "at least 32 random bytes"},
		{"TIDINGS_LOG_LEVEL", "loud", "is not one of debug, info, warn, error"},
		{"TIDINGS_LOG_FORMAT", "xml", "TIDINGS_LOG_FORMAT"},
		{"TIDINGS_TRUSTED_PROXIES", "10.0.0.0/8,nope", "\"nope\" is not an IP address"},
		{"TIDINGS_SMTP_PORT", "70000", "from 0 to 65535"},
		{"TIDINGS_SMTP_TLS", "ssl", "TIDINGS_SMTP_TLS"},
		{"TIDINGS_SMTP_POOL_SIZE", "0", "from 1 to 256"},
		{"TIDINGS_MAX_BODY_BYTES", "-1", "TIDINGS_MAX_BODY_BYTES"},
		{"TIDINGS_SHUTDOWN_TIMEOUT", "soon", "positive duration"},
		{"TIDINGS_SEND_RATE", "-5", "TIDINGS_SEND_RATE"},
		{"TIDINGS_SEND_WORKERS", "0", "from 1 to 256"},
		{"TIDINGS_DATA_DIR", " ", "must not be empty"},
		{"TIDINGS_DKIM_LIBCRYPTO", "", "TIDINGS_DKIM_LIBCRYPTO"},
		{"TIDINGS_DNS_RESOLVER", "8.8.8.8", "TIDINGS_DNS_RESOLVER (from environment): \"8.8.8.8\" is not a host:port"},
		{"TIDINGS_BOUNCE_LISTEN", "127.0.0.1:99999", "TIDINGS_BOUNCE_LISTEN (from environment): \"127.0.0.1:99999\" has an invalid port"},
		{"TIDINGS_LISTNE", "x", "TIDINGS_LISTNE (from environment): unknown setting"},
	}
	for _, c := range cases {
		_, err := load(t, "", map[string]string{c.env: c.value}, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s=%q: error %v, want it to contain %q", c.env, c.value, err, c.want)
		}
	}
	_, err := load(t, "", map[string]string{"TIDINGS_TEST_POSTGRES_URL": "x", "TIDINGS_CONFIG": "y"}, nil)
	if err != nil {
		t.Errorf("reserved variables rejected: %v", err)
	}
	_, err = load(t, "", nil, map[string]string{"listen": "nope"})
	if err == nil || !strings.Contains(err.Error(), "flag --listen") {
		t.Errorf("bad flag: %v", err)
	}
	_, err = load(t, "", map[string]string{"TIDINGS_SMTP_HOST": "relay", "TIDINGS_SMTP_USERNAME": "u"}, nil)
	if err == nil || !strings.Contains(err.Error(), "smtp_username/smtp_password") {
		t.Errorf("user without password: %v", err)
	}
}

func TestFileErrors(t *testing.T) {
	_, err := load(t, writeFile(t, "a.toml", "lissten = \"x\"\n"), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "lissten") || !strings.Contains(err.Error(), "unknown setting") {
		t.Errorf("unknown key: %v", err)
	}
	_, err = load(t, writeFile(t, "b.toml", "listen = \n"), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "b.toml") {
		t.Errorf("bad TOML: %v", err)
	}
	_, err = load(t, filepath.Join(t.TempDir(), "missing.toml"), nil, nil)
	if err == nil {
		t.Error("missing file accepted")
	}
}

func TestRedacted(t *testing.T) {
	c, err := load(t, "", map[string]string{
		"TIDINGS_SECRET_KEY":    secret32,
		"TIDINGS_SMTP_HOST":     "relay.example",
		"TIDINGS_SMTP_USERNAME": "mailer",
		"TIDINGS_SMTP_PASSWORD": "hunter2-smtp",
		"TIDINGS_DATABASE_URL":  "postgres://tidings:pg-pass-123@db:5432/t",
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := c.Redacted().WriteTOML(&out); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{secret32, "hunter2-smtp", "pg-pass-123"} {
		if strings.Contains(out.String(), s) {
			t.Errorf("secret %q printed:\n%s", s, out.String())
		}
	}
	if !strings.Contains(out.String(), "relay.example") || !strings.Contains(out.String(), "tidings:xxxxx@db") {
		t.Errorf("redacted output lost non-secrets:\n%s", out.String())
	}
	// The printed file loads back (round trip), redaction aside.
	if _, err := load(t, writeFile(t, "round.toml", strings.NewReplacer(`secret_key = "[redacted]"`, `secret_key = ""`, `"[redacted]"`, `"pw"`).Replace(out.String())), nil, nil); err != nil {
		t.Errorf("printed config does not load back: %v", err)
	}
}

func TestRegisterFlags(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	set := RegisterFlags(fs)
	if err := fs.Parse([]string{"--listen", "127.0.0.1:9", "--smtp-pool-size=8"}); err != nil {
		t.Fatal(err)
	}
	got := set()
	if len(got) != 2 || got["listen"] != "127.0.0.1:9" || got["smtp-pool-size"] != "8" {
		t.Fatalf("flags = %v", got)
	}
}
