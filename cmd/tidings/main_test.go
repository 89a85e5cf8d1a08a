package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tidings/tidings/internal/mail"
)

// cli runs a command in-process with a fresh data folder per test unless env overrides.
type cli struct {
	t       testing.TB
	environ []string
}

func newCLI(t testing.TB, environ ...string) *cli {
	return &cli{t: t, environ: append([]string{"TIDINGS_DATA_DIR=" + t.TempDir()}, environ...)}
}

func (c *cli) run(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(context.Background(), args, env{strings.NewReader(""), &out, &errb, c.environ})
	return code, out.String(), errb.String()
}

func TestAccountAndTokenCommands(t *testing.T) {
	c := newCLI(t)
	code, out, errs := c.run("account", "create", "--name", "Example Shop", "--postal-address", "1 Main St", "--contact-email", "DPO@Shop.Example", "--json")
	if code != 0 {
		t.Fatalf("account create: %d %s", code, errs)
	}
	var acc struct {
		ID           int64  `json:"id"`
		ContactEmail string `json:"contact_email"`
	}
	if err := json.Unmarshal([]byte(out), &acc); err != nil || acc.ID == 0 || acc.ContactEmail != "dpo@shop.example" {
		t.Fatalf("account create output %q: %v", out, err)
	}
	code, out, errs = c.run("token", "create", "--account", fmt.Sprint(acc.ID), "--json")
	if code != 0 {
		t.Fatalf("token create: %d %s", code, errs)
	}
	var tok struct {
		Token     string `json:"token"`
		AccountID int64  `json:"account_id"`
	}
	if err := json.Unmarshal([]byte(out), &tok); err != nil || !strings.HasPrefix(tok.Token, "tid_") || tok.AccountID != acc.ID {
		t.Fatalf("token create output %q: %v", out, err)
	}
	if strings.Contains(errs, tok.Token) {
		t.Fatal("the token was logged")
	}
	code, out, _ = c.run("account", "list")
	if code != 0 || !strings.Contains(out, "Example Shop") {
		t.Fatalf("account list: %d %q", code, out)
	}

	for _, bad := range [][]string{
		{"account", "create", "--name", "X", "--contact-email", "Bob <bob@x.example>"},
		{"account", "create", "--contact-email", "a@b.example"},
		{"token", "create", "--account", "999"},
		{"token", "create", "--account", "abc"},
		{"token", "create", "--account", "1", "--operator"},
		{"token", "create"},
		{"account"},
		{"frobnicate"},
	} {
		if code, _, errs := c.run(bad...); code == 0 || errs == "" {
			t.Errorf("%v: exit %d, stderr %q; want a failure with a message", bad, code, errs)
		}
	}
	code, _, errs = c.run("account", "create", "--name", "X", "--postal-address", "1 Main St", "--contact-email", "nope")
	if code != 1 || !strings.Contains(errs, "contact_email") {
		t.Errorf("invalid contact: %d %q", code, errs)
	}
}

func TestConfigCommand(t *testing.T) {
	c := newCLI(t, "TIDINGS_SECRET_KEY=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "TIDINGS_SMTP_PASSWORD=hunter2-secret",
		"TIDINGS_SMTP_HOST=relay.example", "TIDINGS_SMTP_USERNAME=u")
	code, out, errs := c.run("config", "--listen", "127.0.0.1:9999")
	if code != 0 {
		t.Fatalf("config: %d %s", code, errs)
	}
	if !strings.Contains(out, `listen = "127.0.0.1:9999"`) || !strings.Contains(out, "relay.example") {
		t.Errorf("effective config missing values:\n%s", out)
	}
	if strings.Contains(out, "hunter2-secret") || strings.Contains(out, "MDEyMzQ1") {
		t.Errorf("secrets printed:\n%s", out)
	}
	code, _, errs = newCLI(t, "TIDINGS_LISTEN=nowhere").run("serve")
	if code != 1 || !strings.Contains(errs, "TIDINGS_LISTEN") || !strings.Contains(errs, "host:port") {
		t.Errorf("bad config: exit %d, %q; want a message naming the setting", code, errs)
	}
}

// TestSMTPPortByTLSMode: with no smtp_port, implicit TLS goes to 465 and STARTTLS (or
// none) to 587; a port that is set is kept. `tidings config` says which.
func TestSMTPPortByTLSMode(t *testing.T) {
	for _, tc := range []struct {
		environ []string
		addr    string
	}{
		{[]string{"TIDINGS_SMTP_TLS=tls"}, "relay.example:465"},
		{[]string{"TIDINGS_SMTP_TLS=starttls"}, "relay.example:587"},
		{nil, "relay.example:587"},
		{[]string{"TIDINGS_SMTP_TLS=tls", "TIDINGS_SMTP_PORT=2465"}, "relay.example:2465"},
		{[]string{"TIDINGS_SMTP_TLS=starttls", "TIDINGS_SMTP_PORT=0"}, "relay.example:587"},
	} {
		c := newCLI(t, append([]string{"TIDINGS_SMTP_HOST=relay.example"}, tc.environ...)...)
		a := openTestApp(t, c)
		got := "no SMTP pool"
		if pool, ok := a.sender.(*mail.SMTPPool); ok {
			got = pool.Addr()
		}
		a.Close()
		if got != tc.addr {
			t.Errorf("%v: relay %s, want %s", tc.environ, got, tc.addr)
		}
	}
	code, out, errs := newCLI(t, "TIDINGS_SMTP_HOST=relay.example", "TIDINGS_SMTP_TLS=tls").run("config")
	if code != 0 || !strings.Contains(out, `smtp_port = 0  # SMTP relay port; 0: 465 with smtp_tls = "tls", else 587`) {
		t.Errorf("config: %d %s\n%s", code, errs, out)
	}
}

// TestServeFromFreshFolder is the README's promise: in an empty folder, with no
// configuration, `tidings serve` answers /healthz and keeps its data in SQLite; it prints
// the first-operator link, and SIGTERM stops it cleanly.
func TestServeFromFreshFolder(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "tidings")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build: %v\n%s", err, out)
	}
	addr, bounceAddr := freeAddr(t), freeAddr(t)
	cmd := exec.Command(bin, "serve")
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "TIDINGS_LISTEN=" + addr, "TIDINGS_BOUNCE_LISTEN=" + bounceAddr}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no /healthz within 10s\nstdout: %s\nstderr: %s", stdout.String(), stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	res, err := http.Get("http://" + addr + "/readyz")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("/readyz: %v %v", err, res)
	}
	res.Body.Close()
	// The inbound mail server is up, and takes no mail for ordinary addresses.
	if err := smtp.SendMail(bounceAddr, nil, "a@b.example", []string{"postmaster@news.example"}, []byte("\r\n")); err == nil || !strings.Contains(err.Error(), "550") {
		t.Fatalf("inbound SMTP for an ordinary address: %v, want 550", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "tidings-data", "tidings.db")); err != nil {
		t.Fatalf("no SQLite database in ./tidings-data: %v", err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit within 10s of SIGTERM")
	}
	if !strings.Contains(stdout.String(), "/setup?token=setup_") {
		t.Errorf("no first-operator link printed:\n%s", stdout.String())
	}
	// The log is buffered (logBuffer); a clean stop writes out every line, the access
	// log's included.
	for _, line := range []string{`route="GET /healthz"`, `route="GET /readyz"`, `msg=stopped`} {
		if !strings.Contains(stderr.String(), line) {
			t.Errorf("the log lacks %s:\n%s", line, stderr.String())
		}
	}
	if strings.Contains(stderr.String(), "setup_") {
		t.Errorf("the setup token reached the log:\n%s", stderr.String())
	}
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
