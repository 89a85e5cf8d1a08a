package admin_test

import (
	"bytes"
	"fmt"
	"mime/multipart"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tidings/tidings/internal/tidings"
)

// upload posts a multipart form with a CSV file, as a same-origin browser would.
func (b *browser) upload(path string, fields map[string]string, csv string) page {
	b.e.t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	for k, v := range fields {
		w.WriteField(k, v)
	}
	if csv != "" {
		f, _ := w.CreateFormFile("file", "people.csv")
		f.Write([]byte(csv))
	}
	w.Close()
	req, _ := http.NewRequest("POST", b.e.srv.URL+path, &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return b.do(req)
}

// waitImport follows the job page until the import is done and returns the last page.
func (b *browser) waitImport(t *testing.T, jobPath string) page {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		p := b.get(jobPath).want(t, http.StatusOK)
		if !strings.Contains(p.body, `http-equiv="refresh"`) {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("import not done:\n%s", p.body)
		}
		if !strings.Contains(p.body, "rows read so far") {
			t.Fatalf("a running job shows no progress:\n%s", p.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var jobRE = regexp.MustCompile(`/imports/[0-9a-f]{32}$`)

func declared(mode string) map[string]string {
	return map[string]string{"source": "sign-up sheet at the fair", "lawful_basis": "consent", "mode": mode}
}

func TestImportConfirmed(t *testing.T) {
	e := newEnv(t)
	l := e.list(e.a.ID, "News", true)
	editor := e.login(e.user(e.a.ID, tidings.RoleEditor, false))
	viewer := e.login(e.user(e.a.ID, tidings.RoleViewer, false))
	other := e.login(e.user(e.b.ID, tidings.RoleOwner, false))
	path := acct(e.a, "/lists/"+itoa(l.ID)+"/import")

	editor.get(path).want(t, http.StatusOK, `enctype="multipart/form-data"`, `name="file"`, `name="source"`, "send_confirmation")
	viewer.get(path).want(t, http.StatusForbidden)
	other.get(path).want(t, http.StatusNotFound)
	other.get(acct(e.b, "/lists/"+itoa(l.ID)+"/import")).want(t, http.StatusNotFound)

	e.subscriber(e.a.ID, "old@example.net", "Old", l.ID)
	if err := e.store.AddSuppression(ctx, e.a.ID, tidings.MustParseAddress("gone@example.net"), tidings.SuppressUnsubscribed); err != nil {
		t.Fatal(err)
	}
	csv := "email,name,city,secret\nnew@example.net,New,Lyon,x\nold@example.net,Old,,\nnot-an-address,Bad,,\nnew@example.net,Again,,\ngone@example.net,Gone,,\n<b>x</b>@example.net,Tag,,\n"
	viewer.upload(path, declared("confirmed"), csv).want(t, http.StatusForbidden)
	res := editor.upload(path, map[string]string{"source": "sign-up sheet at the fair", "lawful_basis": "consent", "mode": "confirmed", "ignore": "secret"}, csv)
	if res.status != http.StatusSeeOther || !jobRE.MatchString(res.location) {
		t.Fatalf("start: %d %q\n%s", res.status, res.location, res.body)
	}
	p := editor.waitImport(t, res.location)
	p.want(t, http.StatusOK, "Import finished: 6 rows read", "Rows by outcome", "added", "existing", "duplicate", "suppressed", "invalid",
		"same address as row 2")
	for _, line := range []string{">4<", ">5<", ">6<"} { // the rows not added, by line
		if !strings.Contains(p.body, line) {
			t.Fatalf("report lacks line %s:\n%s", line, p.body)
		}
	}
	if strings.Contains(p.body, "<b>x</b>") {
		t.Fatal("a row's content is rendered as markup")
	}
	got, _ := e.store.ListSubscribers(ctx, e.a.ID, tidings.SubscriberFilter{Email: tidings.MustParseAddress("new@example.net")})
	if len(got) != 1 || got[0].Attributes["city"] != "Lyon" || got[0].Attributes["secret"] != nil {
		t.Fatalf("imported: %+v", got)
	}
	if subs, _ := e.store.Subscriptions(ctx, e.a.ID, got[0].ID); len(subs) != 1 || subs[0].Status != tidings.SubConfirmed {
		t.Fatalf("imported subscription: %+v", subs)
	}
	if !e.audited(e.a.ID, "import", "list "+itoa(l.ID)) {
		t.Fatal("import not audited")
	}
	// The job is the account's: other users see nothing, not even that it exists.
	other.get(res.location).want(t, http.StatusNotFound)
	other.get(strings.Replace(res.location, "/a/"+itoa(e.a.ID)+"/", "/a/"+itoa(e.b.ID)+"/", 1)).want(t, http.StatusNotFound)
	viewer.get(res.location).want(t, http.StatusForbidden)
	editor.get(acct(e.a, "/imports/0123456789abcdef0123456789abcdef")).want(t, http.StatusNotFound)
}

func TestImportRefusals(t *testing.T) {
	e := newEnv(t)
	l := e.list(e.a.ID, "News", false)
	b := e.login(e.user(e.a.ID, tidings.RoleEditor, false))
	path := acct(e.a, "/lists/"+itoa(l.ID)+"/import")

	// The form: missing file, missing declaration, bad mode; typed values come back.
	b.upload(path, declared("confirmed"), "").want(t, http.StatusUnprocessableEntity, "file", "choose a CSV file", `value="sign-up sheet at the fair"`)
	b.upload(path, map[string]string{"mode": "confirmed", "email_column": "Mail"}, "email\na@example.net\n").
		want(t, http.StatusUnprocessableEntity, "Declaration:", `value="Mail"`)
	b.upload(path, declared("sometimes"), "email\na@example.net\n").want(t, http.StatusUnprocessableEntity, "Mode:")
	// Too large (the harness allows 1 MiB).
	big := "email\n" + strings.Repeat("someone@example.net\n", (1<<20)/20+10)
	b.upload(path, declared("confirmed"), big).want(t, http.StatusRequestEntityTooLarge, "larger than the limit", "nothing was imported")

	// A bad file is refused as a whole, with its reason: even the good rows before the
	// bad line are not imported.
	for _, tc := range []struct{ csv, reason string }{
		{"name\nAda\n", "no email column"},
		{"email\ngood@example.net\n\"broken@example.net\n", "not valid CSV"},
		{"email\ngood@example.net\n\xff\xfe@example.net\n", "UTF-8"},
	} {
		res := b.upload(path, declared("confirmed"), tc.csv).want(t, http.StatusSeeOther)
		b.waitImport(t, res.location).want(t, http.StatusOK, "The file was refused, nothing was imported", tc.reason)
	}
	if got, _ := e.store.ListSubscribers(ctx, e.a.ID, tidings.SubscriberFilter{}); len(got) != 0 {
		t.Fatalf("a refused file imported %d", len(got))
	}
	// In confirmation mode too: nobody is mailed when the file is bad.
	res := b.upload(path, declared("send_confirmation"), "email\nfirst@example.net\n\xff@example.net\n").want(t, http.StatusSeeOther)
	b.waitImport(t, res.location).want(t, http.StatusOK, "The file was refused")
	if list, _ := e.outbox.List(100); len(list) != 0 {
		t.Fatalf("%d mails sent for a refused file", len(list))
	}
}

func TestImportSendConfirmation(t *testing.T) {
	e := newEnv(t)
	l := e.list(e.a.ID, "News", false)
	b := e.login(e.user(e.a.ID, tidings.RoleEditor, false))
	path := acct(e.a, "/lists/"+itoa(l.ID)+"/import")
	res := b.upload(path, declared("send_confirmation"), "E-Mail,Full Name\nann@example.net,Ann\nbob@example.net,Bob\n").want(t, http.StatusSeeOther)
	b.waitImport(t, res.location).want(t, http.StatusOK, "Import finished: 2 rows read", "confirmation_sent")
	got, _ := e.store.ListSubscribers(ctx, e.a.ID, tidings.SubscriberFilter{Email: tidings.MustParseAddress("ann@example.net")})
	if len(got) != 1 || got[0].Name != "Ann" {
		t.Fatalf("requested: %+v", got)
	}
	if subs, _ := e.store.Subscriptions(ctx, e.a.ID, got[0].ID); len(subs) != 1 || subs[0].Status != tidings.SubUnconfirmed {
		t.Fatalf("subscription: %+v", subs)
	}
	if list, _ := e.outbox.List(100); len(list) != 2 {
		t.Fatalf("%d confirmation mails, want 2", len(list))
	}
}

func TestImportProgressOnBigFile(t *testing.T) {
	if testing.Short() {
		t.Skip("big file")
	}
	e := newEnv(t)
	l := e.list(e.a.ID, "News", false)
	b := e.login(e.user(e.a.ID, tidings.RoleEditor, false))
	var sb strings.Builder
	sb.WriteString("email\n")
	for i := 0; i < 5000; i++ {
		fmt.Fprintf(&sb, "p%d@example.net\n", i)
	}
	res := b.upload(acct(e.a, "/lists/"+itoa(l.ID)+"/import"), declared("confirmed"), sb.String()).want(t, http.StatusSeeOther)
	// 5,000 rows take far longer than one request: the first look sees it running.
	b.get(res.location).want(t, http.StatusOK, `<meta http-equiv="refresh" content="1">`, "rows read so far", `role="status"`)
	b.waitImport(t, res.location).want(t, http.StatusOK, "Import finished: 5000 rows read")
	if st, _ := e.store.ListStats(ctx, e.a.ID, l.ID); st.Confirmed != 5000 {
		t.Fatalf("confirmed %d", st.Confirmed)
	}
}

// The list page's snippet offers the account's other lists the staff tick, as unticked
// "also" checkboxes, and never another account's.
func TestListSnippetOffersMoreLists(t *testing.T) {
	e := newEnv(t)
	news, events := e.list(e.a.ID, "News", true), e.list(e.a.ID, "Events", true)
	foreign := e.list(e.b.ID, "Foreign", true)
	viewer := e.login(e.user(e.a.ID, tidings.RoleViewer, false))
	path := acct(e.a, "/lists/"+itoa(news.ID))
	page := viewer.get(path).want(t, http.StatusOK, `name="also" value="`+itoa(events.ID)+`"`)
	if strings.Contains(page.body, "Also subscribe to") || strings.Contains(page.body, "Foreign") {
		t.Fatal("the snippet offers lists nobody chose, or another account's list")
	}
	viewer.get(path+"?also="+itoa(events.ID)+"&also="+itoa(foreign.ID)).want(t, http.StatusOK, "Also subscribe to Events")
	if page := viewer.get(path + "?also=" + itoa(foreign.ID)); strings.Contains(page.body, "Foreign") {
		t.Fatal("another account's list in the snippet")
	}
}
