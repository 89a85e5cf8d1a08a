package browsertest

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"github.com/tidings/tidings/internal/tidings"
)

// step is one stage of a flow. The stages of a flow build on each other (the operator
// made in the first signs in in the next), so once one fails the rest are skipped.
type step struct {
	name string
	run  func(t *testing.T)
}

func runSteps(t *testing.T, steps []step) {
	failed := ""
	for _, st := range steps {
		if failed != "" {
			t.Run(st.name, func(t *testing.T) { t.Skipf("skipped: the step %q failed", failed) })
			continue
		}
		if !t.Run(st.name, st.run) {
			failed = st.name
		}
	}
}

// adminFlow is the state the admin steps pass on.
type adminFlow struct {
	s          *server
	name       string // the operator's
	email      string
	totpSecret string   // set once two-factor sign-in is on
	recovery   []string // recovery codes: later sign-ins use them, as a TOTP code works once
	account    tidings.Account
	list       tidings.List
	campaign   string // the campaign page's path
}

// TestAdmin walks the staff side in a real browser: first-operator setup, sign-in,
// two-factor, lists.
func TestAdmin(t *testing.T) {
	browserContext(t) // skip (or fail under CI) before anything when there is no browser
	f := &adminFlow{s: newServer(t), name: "Olga Operator", email: "olga@example.org"}
	runSteps(t, []step{
		{"setup and sign in", f.setupAndSignIn},
		{"two-factor sign-in", f.twoFactor},
		{"operator creates an account", f.createAccount},
		{"lists", f.lists},
		{"import CSV", f.importCSV},
		{"sending domain", f.sendingDomain},
		{"compose and send a campaign", f.composeAndSend},
		{"campaign stats", f.campaignStats},
	})
}

// signIn signs in through the login page, with the two-factor code when it is on.
func (f *adminFlow) signIn(b *tab) {
	b.t.Helper()
	b.open("/admin/login")
	b.fill("#email", f.email)
	b.fill("#password", password)
	b.click(button("Sign in"))
	if f.totpSecret != "" {
		// Each TOTP code works once, and the steps sign in faster than codes change.
		if len(f.recovery) == 0 {
			b.t.Fatal("out of recovery codes")
		}
		code := f.recovery[0]
		f.recovery = f.recovery[1:]
		b.wantText("Two-factor sign-in")
		b.fill("#code", code)
		b.click(button("Verify"))
	}
	b.wantPath("/admin/")
}

func (f *adminFlow) setupAndSignIn(t *testing.T) {
	s := f.s
	b := s.tab(t)
	setup := s.setupLink()

	b.open(setup)
	b.wantText("Set up Tidings", "Create the first operator")
	// A weak password is refused, and what was typed stays.
	b.fill("#name", f.name)
	b.fill("#email", f.email)
	b.fill("#password", "password1234")
	if st := b.clickStatus(button("Create operator")); st != 422 {
		t.Fatalf("weak password: status %d", st)
	}
	b.wantText("The password")
	if got := b.attr("#email", "value"); got != f.email {
		t.Fatalf("email after the error: %q", got)
	}
	b.fill("#password", password)
	b.click(button("Create operator"))
	b.wantText("The operator account for " + f.name + " was created")

	// The link works once.
	b.open(setup)
	b.fill("#name", "Mallory")
	b.fill("#email", "mallory@example.org")
	b.fill("#password", password)
	if st := b.clickStatus(button("Create operator")); st != 404 {
		t.Fatalf("second use of the setup link: status %d", st)
	}
	b.wantText("not valid any more")
	if n, err := s.store.CountOperators(bg); err != nil || n != 1 {
		t.Fatalf("operators: %d, %v", n, err)
	}

	// A wrong password is refused; the right one signs in.
	b.open("/admin/login")
	b.fill("#email", f.email)
	b.fill("#password", "not the password at all")
	if st := b.clickStatus(button("Sign in")); st != 401 {
		t.Fatalf("wrong password: status %d", st)
	}
	b.wantText("The address or password is wrong")
	f.signIn(b)
	b.wantText("You have no role in any account yet", "operator pages", f.email)
	if b.count(`nav a[href="/admin/op/accounts"]`) != 1 {
		t.Fatal("no Operator link in the bar")
	}
}

func (f *adminFlow) twoFactor(t *testing.T) {
	b := f.s.tab(t)
	f.signIn(b)
	b.click(link(f.email)) // the bar links to the user's own page
	b.wantPath("/admin/me")
	b.wantText("Off.")
	b.click(link("Set up two-factor sign-in"))
	secret := b.text("#totp-secret")
	if secret == "" {
		t.Fatal("no key shown")
	}
	// The QR code is an image of our own (the CSP allows no data: URLs); it loaded.
	if w := run(b, "read the QR code's width", chromedp.Evaluate[int](`document.querySelector('img[alt^="QR code"]').naturalWidth`)); w == 0 {
		t.Fatal("the QR code did not load")
	}

	// A wrong code (one from an hour ago) is refused and the same key stays.
	old, _ := totp.GenerateCode(secret, time.Now().Add(-time.Hour))
	b.fill("#code", old)
	if st := b.clickStatus(button("Turn on two-factor sign-in")); st != 422 {
		t.Fatalf("wrong code: status %d", st)
	}
	b.wantText("That code is wrong")
	if got := b.text("#totp-secret"); got != secret {
		t.Fatalf("key changed after a wrong code: %q, was %q", got, secret)
	}
	code, _ := totp.GenerateCode(secret, time.Now())
	b.fill("#code", code)
	b.click(button("Turn on two-factor sign-in"))
	b.wantText("Two-factor sign-in is on", "Your recovery codes")
	if n := b.count(".codes li"); n < 5 {
		t.Fatalf("%d recovery codes shown", n)
	}
	f.recovery = strings.Fields(b.text(".codes"))
	f.totpSecret = secret

	// Sign out, then in again: the password alone is not enough any more.
	b.click(button("Sign out"))
	b.wantPath("/admin/login")
	b.openStatus("/admin/me") // signed out: back to the login page
	b.wantPath("/admin/login")
	b.open("/admin/login")
	b.fill("#email", f.email)
	b.fill("#password", password)
	b.click(button("Sign in"))
	b.wantText("Two-factor sign-in")
	b.fill("#code", old)
	if st := b.clickStatus(button("Verify")); st != 401 {
		t.Fatalf("wrong code at sign-in: status %d", st)
	}
	b.wantText("That code is wrong or expired")
	code, _ = totp.GenerateCode(secret, time.Now())
	b.fill("#code", code)
	b.click(button("Verify"))
	b.wantPath("/admin/")
	b.open("/admin/me")
	b.wantText("On.")
}

// createAccount: the operator creates an account holder and names themselves its first
// owner.
func (f *adminFlow) createAccount(t *testing.T) {
	b := f.s.tab(t)
	f.signIn(b)
	b.click(link("Operator"))
	b.wantPath("/admin/op/accounts")
	b.fill("#name", "Acme Books & Co")
	b.fill("#contact_email", "dpo@acme.example")
	b.fill("#postal_address", "1 Main St, Springfield")
	b.fill("#owner_email", f.email)
	b.click(button("Create account"))
	b.wantPath("/admin/op/accounts/")
	b.wantText("Acme Books & Co", f.email)
	accounts, err := f.s.store.ListAccounts(bg, tidings.Page{})
	if err != nil || len(accounts) != 1 {
		t.Fatalf("accounts: %+v %v", accounts, err)
	}
	f.account = accounts[0]
}

func (f *adminFlow) lists(t *testing.T) {
	s := f.s
	b := s.tab(t)
	f.signIn(b)
	b.click(link(f.account.Name))
	b.wantPath(fmt.Sprintf("/admin/a/%d/", f.account.ID))
	b.click(link("Lists"))
	b.wantPath(fmt.Sprintf("/admin/a/%d/lists", f.account.ID))
	b.wantText("No lists yet.")

	// A name of blanks passes the browser's "required" but not the server.
	b.fill("#name", "   ")
	if st := b.clickStatus(button("Create list")); st != 422 {
		t.Fatalf("blank name: status %d", st)
	}
	if b.count(`[role="alert"]`) != 1 {
		t.Fatal("no error shown")
	}

	// Markup in a name is text, everywhere it shows.
	name := `Weekly <script>alert("x")</script><b>bold</b>`
	b.fill("#name", name)
	b.fill("#description", "News & notes")
	b.fill("#purpose", "Sending the weekly news")
	b.choose("#lawful_basis", string(tidings.BasisConsent))
	b.tick("#double_opt_in", true)
	b.click(button("Create list"))
	prefix := fmt.Sprintf("/admin/a/%d/lists/", f.account.ID)
	b.wantPath(prefix)
	here, _, _ := strings.Cut(b.path(), "?")
	id, err := strconv.ParseInt(strings.TrimPrefix(here, prefix), 10, 64)
	if err != nil {
		t.Fatalf("list address %s: %v", b.path(), err)
	}
	if b.count(`[role="status"]`) != 1 {
		t.Fatal("no confirmation shown")
	}
	wantEscaped(b, "h1", name)
	if f.list, err = s.store.GetList(bg, f.account.ID, id); err != nil || f.list.Name != name || !f.list.DoubleOptIn {
		t.Fatalf("stored list: %+v, %v", f.list, err)
	}

	b.click(link("Lists"))
	wantEscaped(b, "tbody td a", name)

	// The list page links the hosted sign-up form, which shows the name as text too.
	b.click(link(name))
	formURL := s.consent.SubscribeURL(f.account.ID, id)
	if got := b.attr(`a[href*="/s/"]`, "href"); got != formURL {
		t.Fatalf("hosted form link %q, want %q", got, formURL)
	}
	b.click(link(formURL))
	wantEscaped(b, "h1", name)
	b.wantText("Acme Books & Co")
}

// wantEscaped checks that the element shows s as text and that the page holds no
// script or injected element.
func wantEscaped(b *tab, css, s string) {
	b.t.Helper()
	if got := b.text(css); got != s {
		b.t.Fatalf("%s on %s shows %q, want %q", css, b.where(), got, s)
	}
	if n := b.count("script, main b, main h1 *, td a *"); n != 0 {
		b.t.Fatalf("%s holds %d script or injected elements", b.where(), n)
	}
}

// importCSV uploads a CSV with one bad row and follows the job to its report.
func (f *adminFlow) importCSV(t *testing.T) {
	b := f.s.tab(t)
	f.signIn(b)
	b.open(fmt.Sprintf("/admin/a/%d/lists/%d", f.account.ID, f.list.ID))
	b.click(link("Import subscribers from CSV"))
	csv := "email,name,city\nada@example.net,Ada,Lyon\nbob@example.net,Bob,Oslo\nnot-an-address,Eve,Rome\ncid@example.net,<b>Cid</b>,Porto\n"
	b.upload("#file", "people.csv", []byte(csv))
	b.fill("#source", "sign-up sheet at the 2026 book fair")
	b.choose("#lawful_basis", string(tidings.BasisConsent))
	b.click(button("Start import"))
	b.wantPath(fmt.Sprintf("/admin/a/%d/imports/", f.account.ID))
	b.reloadUntil("Import finished", 20*time.Second)
	b.wantText("4 rows read", "Rows not added", "must contain an @")
	st, err := f.s.store.ListStats(bg, f.account.ID, f.list.ID)
	if err != nil || st.Confirmed != 3 {
		t.Fatalf("after the import: %+v %v, want 3 confirmed", st, err)
	}
}

// sendingDomain adds a sending domain with its DKIM keys.
func (f *adminFlow) sendingDomain(t *testing.T) {
	b := f.s.tab(t)
	f.signIn(b)
	b.open(fmt.Sprintf("/admin/a/%d/domains", f.account.ID))
	b.fill("#domain", "acme.example")
	b.click(button("Generate keys"))
	b.wantText("acme.example", "v=DKIM1; k=rsa", "v=DKIM1; k=ed25519")
}

// composeAndSend writes a campaign, sends a test, sends it, and sees it delivered.
func (f *adminFlow) composeAndSend(t *testing.T) {
	b := f.s.tab(t)
	f.signIn(b)
	b.open(fmt.Sprintf("/admin/a/%d/campaigns/new", f.account.ID))
	b.fill("#name", "Spring <i>books</i>")
	b.fill("#subject", "New books for {{.Subscriber.Name}}")
	b.fill("#from_name", "Acme Books")
	b.fill("#from_local", "news")
	b.choose("#from_domain", "acme.example")
	// A template error is shown with its line, and what was typed stays.
	b.fill("#html", "<p>Hello {{.Subscriber.Name}}</p>\n<p>{{.Nope</p>")
	b.tick(fmt.Sprintf("#list-%d", f.list.ID), true)
	if st := b.clickStatus(button("Create draft")); st != 422 {
		t.Fatalf("template error: status %d", st)
	}
	b.wantText("line 2")
	b.fill("#html", `<p>Hello {{.Subscriber.Name}}</p><p><a href="https://acme.example/spring">Our spring books</a></p>`)
	b.click(button("Create draft"))
	b.wantPath(fmt.Sprintf("/admin/a/%d/campaigns/", f.account.ID))
	f.campaign, _, _ = strings.Cut(b.path(), "?")
	wantEscaped(b, "h1", "Spring <i>books</i>")

	b.fill("#test-to", "proofreader@acme.example")
	b.click(button("Send test"))
	if got := f.s.mail("proofreader@acme.example", "[Test] New books for"); !strings.Contains(got, "Our spring books") {
		t.Fatalf("test mail:\n%s", got)
	}

	b.click(button("Send now"))
	b.wantText("sending")
	// The page refreshes itself while sending; the engine delivers in the background.
	b.reloadUntil("Results", 30*time.Second)
	for _, who := range []string{"ada@example.net", "bob@example.net", "cid@example.net"} {
		if got := f.s.mail(who, "New books for"); !strings.Contains(got, "Our spring books") {
			t.Fatalf("mail to %s:\n%s", who, got)
		}
	}
}

// campaignStats reads the results page of the sent campaign.
func (f *adminFlow) campaignStats(t *testing.T) {
	b := f.s.tab(t)
	f.signIn(b)
	b.open(f.campaign)
	b.wantText("Results")
	if got := b.text("#status"); got != "sent" {
		t.Fatalf("status %q, want sent", got)
	}
	if got := b.text("#delivered"); got != "3" {
		t.Fatalf("delivered %q, want 3", got)
	}
	if w := run(b, "read the chart's width", chromedp.Evaluate[int](`document.querySelector('img[src$="chart.svg"]').naturalWidth`)); w == 0 {
		t.Fatal("the chart did not load")
	}
}
