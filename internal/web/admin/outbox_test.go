package admin_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/tidings/tidings/internal/mail"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
)

func TestAccountOutboxShowsOnlyTheAccountsMail(t *testing.T) {
	e := newEnv(t)
	testdb.DKIMKeys(t, e.store, e.a.ID, "news.a.example")
	testdb.DKIMKeys(t, e.store, e.b.ID, "news.b.example")
	put := func(from, to, subject string) {
		msg := "From: <" + from + ">\r\nTo: <" + to + ">\r\nSubject: " + subject + "\r\n\r\nHello\r\n"
		if err := e.outbox.Send(ctx, mail.Envelope{From: from, To: []string{to}}, []byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	put("bounces+t1@news.a.example", "ada@example.net", "A's <b>news</b>")
	put("bounces+t2@news.b.example", "bob@example.net", "B's news")
	put("bounces@tidings.example", "cid@example.net", "Fallback domain")

	a := "/admin/a/" + itoa(e.a.ID)
	editor := e.login(e.user(e.a.ID, tidings.RoleEditor, false))
	p := editor.get(a+"/outbox").want(t, http.StatusOK, "A&#39;s &lt;b&gt;news&lt;/b&gt;", "ada@example.net")
	for _, leak := range []string{"bob@example.net", "cid@example.net", "Fallback domain"} {
		if strings.Contains(p.body, leak) {
			t.Fatalf("account A's outbox shows %q", leak)
		}
	}
	link := regexp.MustCompile(`href="(` + a + `/outbox/[^"]+)"`).FindStringSubmatch(p.body)
	if link == nil {
		t.Fatalf("no message link:\n%s", p.body)
	}
	editor.get(link[1]).want(t, http.StatusOK, "Hello")
	if !e.audited(e.a.ID, "outbox.view", "") {
		t.Fatal("viewing a message is not audited")
	}

	// B's owner cannot open A's message through B's outbox; viewers see no outbox.
	other := e.login(e.user(e.b.ID, tidings.RoleOwner, false))
	msgID := link[1][strings.LastIndex(link[1], "/")+1:]
	other.get("/admin/a/"+itoa(e.b.ID)+"/outbox/"+msgID).want(t, http.StatusNotFound)
	other.get(link[1]).want(t, http.StatusNotFound)
	e.login(e.user(e.a.ID, tidings.RoleViewer, false)).get(a+"/outbox").want(t, http.StatusForbidden)
}
