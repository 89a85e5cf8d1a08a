package admin_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tidings/tidings/internal/sqlstore"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
)

func TestDSARExportAndErasure(t *testing.T) {
	e := newEnv(t)
	la, lb := e.list(e.a.ID, "News A", false), e.list(e.b.ID, "News B", false)
	s := e.subscriber(e.a.ID, "person@example.net", "Person in A", la.ID)
	e.subscriber(e.b.ID, "person@example.net", "Person in B", lb.ID)
	editor := e.login(e.user(e.a.ID, tidings.RoleEditor, false))
	viewer := e.login(e.user(e.a.ID, tidings.RoleViewer, false))
	other := e.login(e.user(e.b.ID, tidings.RoleAdmin, false))
	path := acct(e.a, "/dsar")

	viewer.get(path).want(t, http.StatusForbidden)
	viewer.post(path, url.Values{"email": {"person@example.net"}, "kind": {"access"}}).want(t, http.StatusForbidden)
	other.get(path).want(t, http.StatusNotFound)
	other.post(path, url.Values{"email": {"person@example.net"}, "kind": {"erasure"}, "confirm": {"on"}}).want(t, http.StatusNotFound)

	// Access: a JSON download of this account's data only.
	p := editor.post(path, url.Values{"email": {"Person@Example.net"}, "kind": {"access"}}).want(t, http.StatusOK)
	if ct := p.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") ||
		!strings.HasPrefix(p.header.Get("Content-Disposition"), "attachment;") || strings.Contains(p.header.Get("Content-Disposition"), "@") {
		t.Fatalf("export headers: %v", p.header)
	}
	var export struct {
		Format   string                 `json:"format"`
		Email    string                 `json:"email"`
		Accounts []tidings.PersonRecord `json:"accounts"`
	}
	if err := json.Unmarshal([]byte(p.body), &export); err != nil {
		t.Fatal(err)
	}
	if export.Format != "tidings-person-export/1" || export.Email != "person@example.net" || len(export.Accounts) != 1 ||
		export.Accounts[0].Account.ID != e.a.ID || export.Accounts[0].Subscriber.Name != "Person in A" {
		t.Fatalf("export: %+v", export)
	}
	if strings.Contains(p.body, "Person in B") {
		t.Fatal("the export holds another account's data")
	}
	if !e.audited(e.a.ID, "dsar.export", "subscriber "+itoa(s.ID)) {
		t.Fatal("export not audited")
	}
	editor.get(path).want(t, http.StatusOK, "access</td><td>admin")

	// Validation.
	editor.post(path, url.Values{"email": {"nonsense"}, "kind": {"access"}}).want(t, http.StatusUnprocessableEntity, "email", `value="nonsense"`)
	editor.post(path, url.Values{"email": {"person@example.net"}, "kind": {"everything"}}).want(t, http.StatusUnprocessableEntity, "Request:")
	editor.post(path, url.Values{"email": {"person@example.net"}, "kind": {"erasure"}}).want(t, http.StatusUnprocessableEntity, "Confirm:")
	if _, err := e.store.GetSubscriber(ctx, e.a.ID, s.ID); err != nil {
		t.Fatal("an unconfirmed erasure erased")
	}

	// Erasure in this account only; the address cannot be added again by staff.
	editor.post(path, url.Values{"email": {"person@example.net"}, "kind": {"erasure"}, "confirm": {"on"}}).want(t, http.StatusSeeOther)
	if _, err := e.store.GetSubscriber(ctx, e.a.ID, s.ID); err != tidings.ErrNotFound {
		t.Fatalf("after erasure: %v", err)
	}
	if recs, _ := e.store.PersonData(ctx, tidings.MustParseAddress("person@example.net")); len(recs) != 1 || recs[0].Account.ID != e.b.ID {
		t.Fatalf("B's data after erasure in A: %+v", recs)
	}
	if !e.audited(e.a.ID, "dsar.erase", "subscriber "+itoa(s.ID)) {
		t.Fatal("erasure not audited")
	}
	editor.post(acct(e.a, "/subscribers"), url.Values{"email": {"person@example.net"}}).want(t, http.StatusUnprocessableEntity, "suppressed in this account (erasure)")
	dsars, _ := e.store.ListDSARs(ctx, e.a.ID, tidings.Page{})
	if len(dsars) != 2 || dsars[0].Kind != tidings.DSARAccess || dsars[1].Kind != tidings.DSARErasure || dsars[1].Source != tidings.SourceAdmin {
		t.Fatalf("log: %+v", dsars)
	}
	if bd, _ := e.store.ListDSARs(ctx, e.b.ID, tidings.Page{}); len(bd) != 0 {
		t.Fatal("B's log has A's requests")
	}
	// The export of someone unknown still answers (nothing held), and is logged.
	p = editor.post(path, url.Values{"email": {"stranger@example.net"}, "kind": {"access"}}).want(t, http.StatusOK, `"accounts": []`)
	if !e.audited(e.a.ID, "dsar.export", "person without subscriber") {
		t.Fatal("export of an unknown person not audited")
	}
}

func TestDSARLogPagesAndOverdue(t *testing.T) {
	dbURL := testdb.URL(t, sqlstore.SQLite)
	store, err := sqlstore.Open(ctx, dbURL, testdb.Keyring(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := newEnvWith(t, store)
	// A request received two months ago and never answered.
	past, err := sqlstore.Open(ctx, dbURL, testdb.Keyring(t), nil, sqlstore.WithClock(func() time.Time { return time.Now().AddDate(0, -2, 0) }))
	if err != nil {
		t.Fatal(err)
	}
	addr := tidings.MustParseAddress("p@example.net")
	if err := past.LogDSAR(ctx, e.a.ID, addr, tidings.DSARObjection, tidings.SourceAPI, false); err != nil {
		t.Fatal(err)
	}
	past.Close()
	for i := 0; i < 52; i++ {
		if err := e.store.LogDSAR(ctx, e.a.ID, addr, tidings.DSARAccess, tidings.SourcePortal, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.store.LogDSAR(ctx, e.a.ID, addr, tidings.DSARErasure, tidings.SourceAPI, false); err != nil {
		t.Fatal(err)
	}
	b := e.login(e.user(e.a.ID, tidings.RoleEditor, false))
	first := b.get(acct(e.a, "/dsar")).want(t, http.StatusOK, `rel="next"`, `<td class="overdue">`, "(overdue)")
	if strings.Contains(first.body, "erasure</td>") {
		t.Fatal("the first page holds more than 50")
	}
	rows, _ := e.store.ListDSARs(ctx, e.a.ID, tidings.Page{Limit: 50})
	second := b.get(acct(e.a, "/dsar?after="+itoa(rows[49].ID))).want(t, http.StatusOK, "erasure", "open")
	if strings.Contains(second.body, `rel="next"`) || strings.Contains(second.body, "overdue") {
		t.Fatal("second page wrong")
	}
	if strings.Contains(second.body, "p@example.net") {
		t.Fatal("the log shows addresses")
	}
}
