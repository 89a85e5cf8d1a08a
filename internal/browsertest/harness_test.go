package browsertest

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/tidings/tidings/internal/consent"
	"github.com/tidings/tidings/internal/keys"
	"github.com/tidings/tidings/internal/mail"
	"github.com/tidings/tidings/internal/mail/mailtest"
	"github.com/tidings/tidings/internal/postman"
	"github.com/tidings/tidings/internal/send"
	"github.com/tidings/tidings/internal/sqlstore"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
	"github.com/tidings/tidings/internal/web"
)

// bg is the context of store calls made by the tests themselves.
var bg = context.Background()

// Timeouts: a hung browser or a page that never loads fails a step in seconds.
const (
	stepTimeout  = 10 * time.Second // one action: navigate, fill, click and wait, read
	startTimeout = 30 * time.Second // starting the browser, once
	tabTimeout   = 10 * time.Second // opening a tab
)

// password of every staff member the tests create: strong enough for the rules.
const password = "violet anchor mellow thirteen"

// Cheap password hashing: the tests sign in many times.
func init() { keys.Argon2Params.Memory, keys.Argon2Params.Time = 1024, 1 }

func TestMain(m *testing.M) {
	code := m.Run()
	shared.stop()
	os.Exit(code)
}

// ---------------------------------------------------------------------------------
// The browser: one headless Chromium for the whole test binary.

type sharedBrowser struct {
	once   sync.Once
	ctx    context.Context // a chromedp context whose browser is running
	cancel []context.CancelFunc
	err    error
	path   string
}

var shared sharedBrowser

// stop closes the browser. Each cancel waits for the browser, so it is bounded: a hung
// browser (or a failed start, after which chromedp v0.23's cancel never returns) must
// not hang the test binary.
func (s *sharedBrowser) stop() {
	for i := len(s.cancel) - 1; i >= 0; i-- {
		within(5*time.Second, func() error { s.cancel[i](); return nil })
	}
}

// chromiumPath finds the browser: TIDINGS_CHROMIUM, else Debian's chromium.
func chromiumPath() string {
	if p := os.Getenv("TIDINGS_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

func inCI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "0" && !strings.EqualFold(v, "false")
}

var warnOnce sync.Once

// browserContext returns the context of the shared browser, starting it on first use.
// Without a browser the test skips, loudly; under CI it fails, so CI never skips
// silently.
func browserContext(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		msg := "Chromium was not found (TIDINGS_CHROMIUM, /usr/bin/chromium, chromium in PATH): the BROWSER TESTS DID NOT RUN. " +
			"Install it with: apt-get install chromium"
		if inCI() {
			t.Fatal(msg)
		}
		warnOnce.Do(func() { fmt.Fprintf(os.Stderr, "\n*** %s ***\n\n", msg) })
		t.Skip(msg)
	}
	shared.once.Do(func() { startBrowser(path) })
	if shared.err != nil {
		t.Fatalf("starting %s: %v", shared.path, shared.err)
	}
	return shared.ctx
}

func startBrowser(path string) {
	shared.path = path
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // root in containers and CI
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		// Nothing may leave the machine: no component or field-trial downloads.
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("disable-field-trial-config", true),
		chromedp.Flag("no-pings", true),
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	shared.cancel = []context.CancelFunc{cancelAlloc, cancelCtx}
	// The first Do starts the browser and binds it to ctx, so it runs without a
	// deadline; the timer below bounds it instead.
	if err := within(startTimeout, func() error { return chromedp.Do(ctx) }); err != nil {
		shared.err = err
		shared.stop()
		return
	}
	shared.ctx = ctx
}

// within runs f and gives up after d (f keeps running; its context is cancelled by the
// caller's cleanup).
func within(d time.Duration, f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		return fmt.Errorf("no answer from the browser within %s", d)
	}
}

// ---------------------------------------------------------------------------------
// The server: a real Tidings HTTP server in-process, as `tidings serve` wires it.

type server struct {
	t       *testing.T
	URL     string // http://127.0.0.1:port
	store   *sqlstore.Store
	outbox  *mail.Outbox
	consent *consent.Service
}

func newServer(t *testing.T) *server {
	t.Helper()
	store := testdb.Open(t, sqlstore.SQLite)
	kr := testdb.Keyring(t)
	ob, err := mail.NewOutbox(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil) // listens on 127.0.0.1
	base := "http://" + srv.Listener.Addr().String()
	cs := &consent.Service{Store: store, Keys: kr, Postman: postman.New(store, ob, "tidings.example"), BaseURL: base}
	eng := &send.Engine{Store: store, Keys: kr, Sender: ob, BaseURL: base, Workers: 2}
	srv.Config.Handler = web.NewHandler(web.Deps{Store: store, Keys: kr, BaseURL: base, Consent: cs, Outbox: ob, Sender: ob,
		MailFrom: "tidings@tidings.example", Engine: eng, MaxBodyBytes: 1 << 20, MaxUploadBytes: 1 << 20})
	srv.Start()
	t.Cleanup(srv.Close)
	// The campaign engine runs beside the server, as in `tidings serve`.
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			eng.RunOnce(ctx)
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { stop(); <-done })
	return &server{t: t, URL: base, store: store, outbox: ob, consent: cs}
}

// setupLink stores a fresh first-operator token and returns the link that `tidings
// serve` prints (cmd/tidings/serve.go, printSetupLink).
func (s *server) setupLink() string {
	s.t.Helper()
	token, hash := keys.NewSecretToken("setup_")
	if err := s.store.PutSetting(bg, sqlstore.SettingSetupToken, hex.EncodeToString(hash)); err != nil {
		s.t.Fatal(err)
	}
	return s.URL + "/setup?token=" + token
}

// account creates an account holder through the store.
func (s *server) account(name string) tidings.Account {
	s.t.Helper()
	a := tidings.Account{Name: name, ContactEmail: "dpo@example.org", PostalAddress: "1 Main St, Springfield"}
	if err := s.store.CreateAccount(bg, &a); err != nil {
		s.t.Fatal(err)
	}
	return a
}

// staff creates a user with a role in the account (role "" for none).
func (s *server) staff(email string, accountID int64, role tidings.Role) tidings.User {
	s.t.Helper()
	hash, err := keys.HashPassword(password)
	if err != nil {
		s.t.Fatal(err)
	}
	u := tidings.User{Email: email, Name: "Staff", PasswordHash: hash}
	if err := s.store.CreateUser(bg, &u); err != nil {
		s.t.Fatal(err)
	}
	if role != "" {
		if err := s.store.SetMembership(bg, accountID, u.ID, role); err != nil {
			s.t.Fatal(err)
		}
	}
	return u
}

// mail waits for the newest outbox mail to addr whose subject starts with subject, and
// returns its plain-text body.
func (s *server) mail(addr, subject string) string {
	s.t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for {
		list, err := s.outbox.List(0)
		if err != nil {
			s.t.Fatal(err)
		}
		for _, m := range list {
			if !strings.HasPrefix(m.Subject, subject) || !containsFold(m.To, addr) {
				continue
			}
			raw, err := s.outbox.Read(m.ID)
			if err != nil {
				s.t.Fatal(err)
			}
			text, err := plainText(raw)
			if err != nil {
				s.t.Fatalf("mail %q to %s: %v", m.Subject, addr, err)
			}
			return text
		}
		if time.Now().After(deadline) {
			var subjects []string
			for _, m := range list {
				subjects = append(subjects, fmt.Sprintf("%q to %v", m.Subject, m.To))
			}
			s.t.Fatalf("no mail %q to %s in the outbox after %s; it holds: %s", subject, addr, stepTimeout, strings.Join(subjects, "; "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// link returns the first link in text to this server whose path starts with prefix.
func (s *server) link(text, prefix string) string {
	s.t.Helper()
	re := regexp.MustCompile(regexp.QuoteMeta(s.URL+prefix) + `[^\s<>"]*`)
	l := re.FindString(text)
	if l == "" {
		s.t.Fatalf("no link %s%s… in:\n%s", s.URL, prefix, text)
	}
	return l
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// plainText decodes the text/plain part of a message (single part or multipart).
func plainText(raw []byte) (string, error) {
	text, _, err := mailtest.Parts(raw)
	if err == nil && text == "" {
		err = errors.New("no text/plain part")
	}
	return text, err
}

// ---------------------------------------------------------------------------------
// A tab: its own browser context (own cookies), bound to one test. On failure it saves
// a full-page screenshot and the page's HTML. Each helper is one step with its own
// timeout, and fails the test with what it was doing and where.

type tab struct {
	t   *testing.T
	s   *server
	ctx context.Context

	mu       sync.Mutex
	problems []string // CSP violations and script errors reported by the browser
}

func (s *server) tab(t *testing.T) *tab {
	t.Helper()
	bctx := browserContext(t)
	ctx, cancel := chromedp.NewContext(bctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	b := &tab{t: t, s: s, ctx: ctx}
	if err := within(tabTimeout, func() error { return chromedp.Do(ctx) }); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	// Cleanups run last-in first-out: the evidence is saved before the tab closes.
	t.Cleanup(func() {
		if t.Failed() {
			b.saveEvidence()
		}
	})
	t.Cleanup(b.checkConsole)
	b.watchConsole()
	return b
}

// watchConsole records what the page must never cause: a Content-Security-Policy
// violation (an inline style or script), a script error, a dialog.
func (b *tab) watchConsole() {
	b.t.Helper()
	err := chromedp.Listen(b.ctx, func(ev any) {
		var p string
		switch ev := ev.(type) {
		case *cdplog.EventEntryAdded:
			if ev.Entry.Source == cdplog.EntrySourceSecurity || strings.Contains(ev.Entry.Text, "Content Security Policy") {
				p = fmt.Sprintf("%s: %s", ev.Entry.URL, ev.Entry.Text)
			}
		case *runtime.EventExceptionThrown:
			p = "script error: " + ev.ExceptionDetails.Text
		case *runtime.EventConsoleAPICalled:
			p = "console." + string(ev.Type) + " called: a script ran"
		}
		if p != "" {
			b.mu.Lock()
			b.problems = append(b.problems, p)
			b.mu.Unlock()
		}
	})
	if err == nil {
		_, err = chromedp.Call(b.ctx, cdplog.Enable, cdp.Empty{})
	}
	if err != nil {
		b.t.Fatalf("watching the console: %v", err)
	}
}

func (b *tab) checkConsole() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		b.t.Errorf("the browser reported: %s", p)
	}
}

var evidence struct {
	once sync.Once
	dir  string
	err  error
}

// evidenceDir is $TIDINGS_SCREENSHOTS, or a temporary folder that is kept.
func evidenceDir() (string, error) {
	evidence.once.Do(func() {
		if d := os.Getenv("TIDINGS_SCREENSHOTS"); d != "" {
			evidence.dir, evidence.err = d, os.MkdirAll(d, 0o755)
			return
		}
		evidence.dir, evidence.err = os.MkdirTemp("", "tidings-screenshots-")
	})
	return evidence.dir, evidence.err
}

func (b *tab) saveEvidence() {
	dir, err := evidenceDir()
	if err != nil {
		b.t.Logf("no screenshot: %v", err)
		return
	}
	name := regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(b.t.Name(), "_")
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err != nil {
		b.t.Logf("no screenshot of %s: %v", loc, err)
	} else if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		b.t.Logf("no screenshot: %v", err)
	} else {
		b.t.Logf("screenshot of %s saved: %s", loc, filepath.Join(dir, name+".png"))
	}
	if html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html"))); err == nil {
		if os.WriteFile(filepath.Join(dir, name+".html"), []byte(html), 0o644) == nil {
			b.t.Logf("page HTML saved: %s", filepath.Join(dir, name+".html"))
		}
	}
}

// run runs one step with the step timeout, failing the test with what and where.
func run[T any](b *tab, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	b.check(what, err)
	return v
}

// check fails the test when a step failed.
func (b *tab) check(what string, err error) {
	b.t.Helper()
	if err == nil {
		return
	}
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("nothing happened within %s", stepTimeout)
	}
	b.t.Fatalf("%s, on %s: %v", what, b.where(), err)
}

// where is the current address, for messages.
func (b *tab) where() string {
	ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return "(unknown page)"
	}
	return strings.TrimPrefix(loc, b.s.URL)
}

// openStatus navigates to path (or a full URL) and returns the HTTP status.
func (b *tab) openStatus(path string) int {
	b.t.Helper()
	u := path
	if strings.HasPrefix(path, "/") {
		u = b.s.URL + path
	}
	return statusOf(run(b, "open "+path, chromedp.NavigateResponse(u)))
}

// open navigates to path (or a full URL) and fails unless the page loads with a 2xx.
func (b *tab) open(path string) {
	b.t.Helper()
	if st := b.openStatus(path); st < 200 || st > 299 {
		b.t.Fatalf("open %s: status %d\n%s", path, st, b.text("body"))
	}
}

func statusOf(r *network.Response) int {
	if r == nil {
		return 0
	}
	return int(r.Status)
}

// fill types value into the field (after emptying it), as a person would.
func (b *tab) fill(css, value string) {
	b.t.Helper()
	// Not SetValue(css, ""): chromedp v0.23 drops an empty string argument and the
	// field then holds "undefined".
	q, _ := json.Marshal(css)
	run(b, "fill "+css, chromedp.Steps(
		chromedp.WaitVisible(chromedp.CSS(css)),
		chromedp.Evaluate[chromedp.Void]("document.querySelector("+string(q)+").value = 'x'.slice(1)"),
		chromedp.SendKeys(chromedp.CSS(css), value),
	))
}

// choose selects the option with this value in a <select>.
func (b *tab) choose(css, value string) {
	b.t.Helper()
	run(b, "choose "+value+" in "+css, chromedp.SetValue(chromedp.CSS(css), value))
}

// tick sets a checkbox on or off, by clicking it when needed.
func (b *tab) tick(css string, on bool) {
	b.t.Helper()
	if run(b, "read "+css, chromedp.JavascriptAttribute[bool](chromedp.CSS(css), "checked")) != on {
		run(b, "click "+css, chromedp.Click(chromedp.CSS(css)))
	}
}

// clickStatus clicks and waits for the next page, whatever its status, and returns
// the status. sel is a CSS selector, or an XPath when it starts with "/" (see button
// and link).
func (b *tab) clickStatus(sel string) int {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	var res *network.Response
	var err error
	if strings.HasPrefix(sel, "/") {
		res, err = chromedp.RunResponse(ctx, chromedp.Click(chromedp.Search(sel)))
	} else {
		res, err = chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel)))
	}
	b.check("click "+sel+" and wait for the next page", err)
	return statusOf(res)
}

// click clicks and waits for the next page, and fails unless it loads with a 2xx.
func (b *tab) click(sel string) {
	b.t.Helper()
	if st := b.clickStatus(sel); st < 200 || st > 299 {
		b.t.Fatalf("click %s: status %d on %s\n%s", sel, st, b.where(), b.text("body"))
	}
}

// clickHere clicks without waiting for a page (a download, a checkbox).
func (b *tab) clickHere(sel string) {
	b.t.Helper()
	if strings.HasPrefix(sel, "/") {
		run(b, "click "+sel, chromedp.Click(chromedp.Search(sel)))
	} else {
		run(b, "click "+sel, chromedp.Click(chromedp.CSS(sel)))
	}
}

// button is the XPath of the button with this label, for click.
func button(label string) string {
	return fmt.Sprintf("//button[normalize-space(.)=%s]", xpathString(label))
}

// link is the XPath of the link with this text, for click.
func link(text string) string {
	return fmt.Sprintf("//a[normalize-space(.)=%s]", xpathString(text))
}

func xpathString(s string) string {
	switch {
	case !strings.Contains(s, `"`):
		return `"` + s + `"`
	case !strings.Contains(s, "'"):
		return "'" + s + "'"
	}
	return "concat('" + strings.ReplaceAll(s, "'", `', "'", '`) + "')"
}

// text is the visible text of the first element matching css.
func (b *tab) text(css string) string {
	b.t.Helper()
	return run(b, "read the text of "+css, chromedp.Text(chromedp.CSS(css)))
}

// attr is an attribute of the first element matching css ("" when absent).
func (b *tab) attr(css, name string) string {
	b.t.Helper()
	return run(b, "read "+name+" of "+css, chromedp.AttributeValue(chromedp.CSS(css), name)).Value
}

// count is the number of elements matching css now (no waiting).
func (b *tab) count(css string) int {
	b.t.Helper()
	q, _ := json.Marshal(css)
	return run(b, "count "+css, chromedp.Evaluate[int]("document.querySelectorAll("+string(q)+").length"))
}

// path is the current address without the server's origin.
func (b *tab) path() string {
	b.t.Helper()
	return strings.TrimPrefix(run(b, "read the address", chromedp.Location()), b.s.URL)
}

// wantPath fails unless the current address starts with prefix.
func (b *tab) wantPath(prefix string) {
	b.t.Helper()
	if p := b.path(); !strings.HasPrefix(p, prefix) {
		b.t.Fatalf("on %s, want %s…\n%s", p, prefix, b.text("body"))
	}
}

// wantText fails unless the page shows every one of the texts.
func (b *tab) wantText(texts ...string) {
	b.t.Helper()
	body := b.text("body")
	for _, s := range texts {
		if !strings.Contains(body, s) {
			b.t.Fatalf("%s does not show %q:\n%s", b.where(), s, body)
		}
	}
}

// wantNoText fails if the page shows any of the texts.
func (b *tab) wantNoText(texts ...string) {
	b.t.Helper()
	body := b.text("body")
	for _, s := range texts {
		if strings.Contains(body, s) {
			b.t.Fatalf("%s shows %q:\n%s", b.where(), s, body)
		}
	}
}

// download clicks a link that downloads a file and returns the file's content.
func (b *tab) download(sel string) []byte {
	b.t.Helper()
	dir := b.t.TempDir()
	bcID := chromedp.FromContext(b.ctx).BrowserContextID
	_, err := chromedp.CallBrowser(b.ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, BrowserContextID: bcID, DownloadPath: dir, EventsEnabled: new(true)})
	b.check("allow downloads", err)
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	progress := chromedp.BrowserEvents(ctx, browser.DownloadProgress)
	b.clickHere(sel)
	for ev, err := range progress {
		b.check("download via "+sel, err)
		switch ev.State {
		case browser.DownloadProgressStateCompleted:
			data, err := os.ReadFile(filepath.Join(dir, ev.GUID))
			b.check("read the download", err)
			return data
		case browser.DownloadProgressStateCanceled:
			b.t.Fatalf("the download via %s was cancelled", sel)
		}
	}
	b.t.Fatalf("download via %s: no file", sel)
	return nil
}

// upload puts a file with this name and content into a file input (for the CSV import).
func (b *tab) upload(css, name string, content []byte) {
	b.t.Helper()
	path := filepath.Join(b.t.TempDir(), name)
	if err := os.WriteFile(path, content, 0o644); err != nil {
		b.t.Fatal(err)
	}
	run(b, "attach "+name+" to "+css, chromedp.SetUploadFiles(chromedp.CSS(css), []string{path}))
}

// reloadUntil reloads the page until it shows text (a job finishing, mail going out),
// for at most d.
func (b *tab) reloadUntil(text string, d time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(d)
	for {
		if strings.Contains(b.text("body"), text) {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s did not show %q within %s:\n%s", b.where(), text, d, b.text("body"))
		}
		time.Sleep(200 * time.Millisecond)
		b.openStatus(b.path())
	}
}
