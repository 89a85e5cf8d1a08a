package admin_test

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/tidings/tidings/internal/mail/mailtest"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
)

// The list page's hosted-page link offers the lists the staff tick for the snippet, by
// form token (never another account's list, never an ID); the person following it
// ticks one, gets one confirmation mail, and is on both lists once confirmed.
func TestListHostedPageOffersMoreLists(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			e := newEnvWith(t, testdb.Open(t, engine))
			news, events := e.list(e.a.ID, "News", true), e.list(e.a.ID, "Events", true)
			e.list(e.a.ID, "Unchosen", true)
			foreign := e.list(e.b.ID, "Foreign", true)
			viewer := e.login(e.user(e.a.ID, tidings.RoleViewer, false))
			path := acct(e.a, "/lists/"+itoa(news.ID))
			hostedLink := regexp.MustCompile(`Hosted page: <a href="([^"]+)"`)

			plain := html.UnescapeString(hostedLink.FindStringSubmatch(viewer.get(path).want(t, http.StatusOK).body)[1])
			if strings.Contains(plain, "?") {
				t.Fatalf("with nothing chosen the hosted page link is %q, want the plain page", plain)
			}
			page := viewer.get(path+"?also="+itoa(events.ID)+"&also="+itoa(foreign.ID)).want(t, http.StatusOK, "Also subscribe to Events")
			link, err := url.Parse(html.UnescapeString(hostedLink.FindStringSubmatch(page.body)[1]))
			if err != nil {
				t.Fatal(err)
			}
			also := strings.Split(link.Query().Get("also"), ",")
			if link.Scheme+"://"+link.Host+link.Path != plain || len(also) != 1 || also[0] == "" || also[0] == itoa(events.ID) {
				t.Fatalf("hosted page link %s, want %s?also=<the token of Events>", link, plain)
			}
			// The snippet still posts to the plain page.
			if !strings.Contains(page.body, `action=&#34;`+html.EscapeString(plain)+`&#34;`) {
				t.Fatalf("the snippet does not post to %s:\n%s", plain, page.body)
			}

			// The person following the link sees Events, and only Events, as a choice.
			person := e.browser()
			form := person.get(link.RequestURI()).want(t, http.StatusOK, "Also subscribe to Events", `value="`+also[0]+`"`)
			if strings.Contains(form.body, "Foreign") || strings.Contains(form.body, "Unchosen") {
				t.Fatalf("the hosted page offers a list not chosen:\n%s", form.body)
			}
			action := html.UnescapeString(regexp.MustCompile(`<form method="post" action="([^"]+)"`).FindStringSubmatch(form.body)[1])
			version := regexp.MustCompile(`name="consent_version" value="(\d+)"`).FindStringSubmatch(form.body)[1]
			person.post(action, url.Values{"email": {"reader@example.net"}, "consent_version": {version}, "also": {also[0]}}).
				want(t, http.StatusOK, "Check your inbox")
			mails, _ := e.outbox.List(100)
			if len(mails) != 1 || mails[0].Subject != "Please confirm your subscription to News, Events" {
				t.Fatalf("outbox %+v, want one confirmation for both lists", mails)
			}
			raw, err := e.outbox.Read(mails[0].ID)
			if err != nil {
				t.Fatal(err)
			}
			confirm := regexp.MustCompile(`/confirm/[A-Za-z0-9_-]+`).FindString(plainText(t, raw))
			person.post(confirm, nil).want(t, http.StatusOK, "confirmed")
			for _, l := range []tidings.List{news, events} {
				if st, _ := e.store.ListStats(ctx, e.a.ID, l.ID); st.Confirmed != 1 {
					t.Fatalf("%s: %d confirmed, want 1", l.Name, st.Confirmed)
				}
			}
		})
	}
}

// plainText returns the decoded text/plain part of a message.
func plainText(t *testing.T, raw []byte) string {
	t.Helper()
	text, _, err := mailtest.Parts(raw)
	if err != nil || text == "" {
		t.Fatalf("no text part: %v", err)
	}
	return text
}
