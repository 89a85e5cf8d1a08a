package admin_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/tidings/tidings/internal/mail"
	"github.com/tidings/tidings/internal/postman"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
)

func TestAccountOutboxShowsOnlyTheAccountsMail(t *testing.T) {
	e := newEnv(t)
	testdb.DKIMKeys(t, e.store, e.a.ID, "news.a.example")
	testdb.DKIMKeys(t, e.store, e.b.ID, "news.b.example")
	put := func(account int64, from, to, subject string) {
		msg := "From: <" + from + ">\r\nTo: <" + to + ">\r\nSubject: " + subject + "\r\n\r\nHello\r\n"
		if err := e.outbox.Send(ctx, mail.Envelope{From: from, To: []string{to}, Account: account}, []byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	put(e.a.ID, "bounces+t1@news.a.example", "ada@example.net", "A's <b>news</b>")
	put(e.b.ID, "bounces+t2@news.b.example", "bob@example.net", "B's news")
	put(e.b.ID, "bounces@tidings.example", "cid@example.net", "Fallback domain")
	// Mail without a recorded account (the instance's own, or stored by an earlier
	// version) is the operator's, even on A's domain.
	put(0, "bounces+t3@news.a.example", "dee@example.net", "Unattributed")

	a := "/admin/a/" + itoa(e.a.ID)
	editor := e.login(e.user(e.a.ID, tidings.RoleEditor, false))
	p := editor.get(a+"/outbox").want(t, http.StatusOK, "A&#39;s &lt;b&gt;news&lt;/b&gt;", "ada@example.net")
	for _, leak := range []string{"bob@example.net", "cid@example.net", "Fallback domain", "dee@example.net"} {
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

// Accounts without a sending domain all send from the instance's own domain: each sees
// its own such mail and no other account's, even an account that adds the instance's
// domain as a sending domain (which once showed it every account's fallback mail).
func TestAccountOutboxFallbackDomain(t *testing.T) {
	e := newEnv(t)
	pm := postman.New(e.store, e.outbox, "tidings.example")
	send := func(accountID int64, to, subject string) {
		if _, err := pm.Send(ctx, accountID, postman.Letter{To: tidings.MustParseAddress(to), Subject: subject, Text: "Confirm: " + e.srv.URL + "/c/secret"}); err != nil {
			t.Fatal(err)
		}
	}
	send(e.a.ID, "ada@example.net", "A's confirmation")
	send(e.b.ID, "bob@example.net", "B's confirmation")

	a, b := "/admin/a/"+itoa(e.a.ID), "/admin/a/"+itoa(e.b.ID)
	ea := e.login(e.user(e.a.ID, tidings.RoleOwner, false))
	eb := e.login(e.user(e.b.ID, tidings.RoleOwner, false))
	check := func(when string) {
		t.Helper()
		pa := ea.get(a+"/outbox").want(t, http.StatusOK, "ada@example.net", "A&#39;s confirmation")
		pb := eb.get(b+"/outbox").want(t, http.StatusOK, "bob@example.net", "B&#39;s confirmation")
		if strings.Contains(pa.body, "bob@example.net") || strings.Contains(pb.body, "ada@example.net") {
			t.Fatalf("%s: an account sees another's fallback-domain mail", when)
		}
	}
	check("without sending domains")
	ea.post(a+"/domains", url.Values{"domain": {"tidings.example"}}).want(t, http.StatusSeeOther)
	check("after A added the instance's domain")
	e.login(e.user(0, "", true)).get("/admin/op/outbox").want(t, http.StatusOK, "ada@example.net", "bob@example.net")
}
