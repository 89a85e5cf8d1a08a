package admin_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/tidings/tidings/internal/tidings"
)

// roleOf is the user's role in the account ("" if none).
func (e *env) roleOf(accountID, userID int64) tidings.Role {
	e.t.Helper()
	ms, err := e.store.Members(ctx, accountID)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, m := range ms {
		if m.ID == userID {
			return m.Role
		}
	}
	return ""
}

var resetLinkRE = regexp.MustCompile(`/admin/reset\?token=(\S+)`)

func TestInviteUsers(t *testing.T) {
	e := newEnv(t)
	a := "/admin/a/" + itoa(e.a.ID)
	for _, role := range []tidings.Role{tidings.RoleViewer, tidings.RoleEditor} {
		b := e.login(e.user(e.a.ID, role, false))
		b.get(a+"/users").want(t, http.StatusForbidden)
		b.post(a+"/users", url.Values{"email": {"x@example.org"}, "role": {"viewer"}}).want(t, http.StatusForbidden)
	}
	e.login(e.user(e.b.ID, tidings.RoleOwner, false)).get(a+"/users").want(t, http.StatusNotFound)

	admin := e.user(e.a.ID, tidings.RoleAdmin, false)
	b := e.login(admin)
	p := b.get(a+"/users").want(t, http.StatusOK, admin.Email+" (you)", "<option value=\"viewer\"")
	if strings.Contains(p.body, `<option value="owner"`) {
		t.Fatal("an admin is offered the owner role")
	}
	b.post(a+"/users", url.Values{"email": {"not an <address>"}, "role": {"editor"}}).want(t, http.StatusUnprocessableEntity, `value="not an &lt;address&gt;"`)
	b.post(a+"/users", url.Values{"email": {"new@example.org"}, "role": {"boss"}}).want(t, http.StatusUnprocessableEntity, "role:", `value="new@example.org"`)
	b.post(a+"/users", url.Values{"email": {"new@example.org"}, "role": {"owner"}}).want(t, http.StatusForbidden, "Only an owner")
	if _, err := e.store.UserByEmail(ctx, "new@example.org"); err == nil {
		t.Fatal("a refused invitation created the user")
	}

	// A new person: created, added, and mailed a link to choose a password.
	if p := b.post(a+"/users", url.Values{"email": {"New@Example.org"}, "role": {"editor"}}); p.status != http.StatusSeeOther || p.location != a+"/users?done=invited" {
		t.Fatalf("invite: %d %q\n%s", p.status, p.location, p.body)
	}
	u, err := e.store.UserByEmail(ctx, "new@example.org")
	if err != nil || e.roleOf(e.a.ID, u.ID) != tidings.RoleEditor || e.roleOf(e.b.ID, u.ID) != "" {
		t.Fatalf("invited user: %+v %v", u, err)
	}
	mail := e.mailTo("new@example.org", "You were invited to Controller A on Tidings")
	token := resetLinkRE.FindStringSubmatch(mail)[1]
	anon := e.browser()
	if p := anon.post("/admin/reset/password", url.Values{"token": {token}, "password": {password}}); p.status != http.StatusSeeOther {
		t.Fatalf("set password: %d\n%s", p.status, p.body)
	}
	e.login(u).get(a+"/").want(t, http.StatusOK, "Controller A")
	if !e.audited(e.a.ID, "user.invite", "user "+itoa(u.ID)+" as editor") {
		t.Fatal("invitation not audited")
	}
	b.get(a+"/users").want(t, http.StatusOK, "new@example.org", "editor")

	// Someone with a user already (of another account): added, told, no password link.
	other := e.user(e.b.ID, tidings.RoleViewer, false)
	if p := b.post(a+"/users", url.Values{"email": {other.Email}, "role": {"viewer"}}); p.status != http.StatusSeeOther {
		t.Fatalf("invite existing: %d\n%s", p.status, p.body)
	}
	if e.roleOf(e.a.ID, other.ID) != tidings.RoleViewer || e.roleOf(e.b.ID, other.ID) != tidings.RoleViewer {
		t.Fatal("existing user not added, or their other membership changed")
	}
	if m := e.mailTo(other.Email, "You were invited to Controller A on Tidings"); strings.Contains(m, "reset?token") {
		t.Fatal("an existing user got a password link")
	}
	// A member already: refused, role unchanged.
	b.post(a+"/users", url.Values{"email": {other.Email}, "role": {"admin"}}).want(t, http.StatusConflict, "member already")
	if e.roleOf(e.a.ID, other.ID) != tidings.RoleViewer {
		t.Fatal("role changed by a second invitation")
	}
}

func TestRoleRules(t *testing.T) {
	e := newEnv(t)
	a := "/admin/a/" + itoa(e.a.ID)
	owner := e.user(e.a.ID, tidings.RoleOwner, false)
	admin := e.user(e.a.ID, tidings.RoleAdmin, false)
	editor := e.user(e.a.ID, tidings.RoleEditor, false)
	outsider := e.user(e.b.ID, tidings.RoleOwner, false)
	ob, ab := e.login(owner), e.login(admin)
	role := func(b *browser, u tidings.User, r string) page {
		return b.post(a+"/users/"+itoa(u.ID)+"/role", url.Values{"role": {r}})
	}

	// Admins manage editors, viewers and admins...
	if p := role(ab, editor, "viewer"); p.status != http.StatusSeeOther {
		t.Fatalf("admin demotes editor: %d\n%s", p.status, p.body)
	}
	if e.roleOf(e.a.ID, editor.ID) != tidings.RoleViewer || !e.audited(e.a.ID, "user.role", "user "+itoa(editor.ID)+" as viewer") {
		t.Fatal("role not changed or not audited")
	}
	role(ab, editor, "admin").want(t, http.StatusSeeOther)
	// ...but not owners, and make nobody an owner.
	role(ab, editor, "owner").want(t, http.StatusForbidden, "Only an owner")
	role(ab, owner, "editor").want(t, http.StatusForbidden, "Only an owner")
	ab.post(a+"/users/"+itoa(owner.ID)+"/remove", nil).want(t, http.StatusForbidden, "Only an owner")
	role(ab, editor, "boss").want(t, http.StatusUnprocessableEntity, "role:")
	if e.roleOf(e.a.ID, owner.ID) != tidings.RoleOwner || e.roleOf(e.a.ID, editor.ID) != tidings.RoleAdmin {
		t.Fatal("a refused change happened")
	}

	// The only owner cannot step down or leave.
	role(ob, owner, "admin").want(t, http.StatusUnprocessableEntity, "at least one owner")
	ob.post(a+"/users/"+itoa(owner.ID)+"/remove", nil).want(t, http.StatusUnprocessableEntity, "at least one owner")
	if e.roleOf(e.a.ID, owner.ID) != tidings.RoleOwner {
		t.Fatal("the last owner lost the role")
	}
	// With a second owner, they can.
	role(ob, editor, "owner").want(t, http.StatusSeeOther)
	role(ob, owner, "admin").want(t, http.StatusSeeOther)
	if e.roleOf(e.a.ID, owner.ID) != tidings.RoleAdmin || e.roleOf(e.a.ID, editor.ID) != tidings.RoleOwner {
		t.Fatal("owner change failed")
	}

	// Tenancy: someone of another account, or another account's user through this one.
	ext := e.login(outsider)
	role(ext, editor, "viewer").want(t, http.StatusNotFound)
	ext.post(a+"/users/"+itoa(editor.ID)+"/remove", nil).want(t, http.StatusNotFound)
	role(e.login(editor), outsider, "viewer").want(t, http.StatusNotFound)
	e.login(editor).post(a+"/users/"+itoa(outsider.ID)+"/remove", nil).want(t, http.StatusNotFound)
	if e.roleOf(e.b.ID, outsider.ID) != tidings.RoleOwner || e.roleOf(e.a.ID, outsider.ID) != "" {
		t.Fatal("another account's membership changed")
	}

	// Removal.
	viewer := e.user(e.a.ID, tidings.RoleViewer, false)
	vb := e.login(viewer)
	vb.post(a+"/users/"+itoa(admin.ID)+"/remove", nil).want(t, http.StatusForbidden)
	if p := ab.post(a+"/users/"+itoa(viewer.ID)+"/remove", nil); p.status != http.StatusSeeOther {
		t.Fatalf("remove: %d\n%s", p.status, p.body)
	}
	if e.roleOf(e.a.ID, viewer.ID) != "" || !e.audited(e.a.ID, "user.remove", "user "+itoa(viewer.ID)) {
		t.Fatal("not removed or not audited")
	}
	vb.get(a+"/").want(t, http.StatusNotFound)
	ab.post(a+"/users/"+itoa(viewer.ID)+"/remove", nil).want(t, http.StatusNotFound)
}
