package admin

import (
	"crypto/rand"
	"errors"
	"net/http"

	"github.com/tidings/tidings/internal/keys"
	"github.com/tidings/tidings/internal/tidings"
)

// The account's staff: invitations, roles, removal.
//
// Rules: only owners grant the owner role, change an owner's role or remove an owner;
// admins manage admins, editors and viewers. The store keeps at least one owner.

var roles = []tidings.Role{tidings.RoleOwner, tidings.RoleAdmin, tidings.RoleEditor, tidings.RoleViewer}

type usersData struct {
	Members []tidings.Member
	Roles   []tidings.Role // the roles the viewer may grant
	Email   string         // the invitation form
	Role    tidings.Role
	Self    int64
}

func (rq *request) users() error { return rq.renderUsers(http.StatusOK, "", tidings.RoleEditor, "") }

func (rq *request) renderUsers(status int, email string, role tidings.Role, errText string) error {
	ms, err := rq.Store.Members(rq.r.Context(), rq.Account.ID)
	if err != nil {
		return err
	}
	d := usersData{Members: ms, Email: email, Role: role, Self: rq.User.ID}
	for _, r := range roles {
		if r != tidings.RoleOwner || rq.Role == tidings.RoleOwner {
			d.Roles = append(d.Roles, r)
		}
	}
	rq.renderView(status, "users", view{Title: "Users", Nav: "users", Error: errText, Data: d})
	return nil
}

// mayManage reports whether the viewer may give role to someone who has current ("" for
// someone new), and if not, why.
func (rq *request) mayManage(current, role tidings.Role) string {
	if rq.Role == tidings.RoleOwner {
		return ""
	}
	if current == tidings.RoleOwner {
		return "Only an owner can change or remove an owner."
	}
	if role == tidings.RoleOwner {
		return "Only an owner can make someone an owner."
	}
	return ""
}

func (rq *request) inviteUser() error {
	if err := rq.form(); err != nil {
		return err
	}
	ctx := rq.r.Context()
	email, role := rq.value("email"), tidings.Role(rq.value("role"))
	addr, err := tidings.ParseAddress(email)
	if err != nil {
		return rq.renderUsers(http.StatusUnprocessableEntity, email, role, formError(err))
	}
	if !role.Valid() {
		return rq.renderUsers(http.StatusUnprocessableEntity, email, tidings.RoleEditor, "role: choose owner, admin, editor or viewer.")
	}
	if why := rq.mayManage("", role); why != "" {
		return rq.renderUsers(http.StatusForbidden, email, role, why)
	}
	u, err := rq.Store.UserByEmail(ctx, addr.String())
	isNew := errors.Is(err, tidings.ErrNotFound)
	switch {
	case isNew:
		// A random password nobody knows: the person sets their own through the link.
		hash, herr := keys.HashPassword(rand.Text() + rand.Text())
		if herr != nil {
			return herr
		}
		u = tidings.User{Email: addr.String(), PasswordHash: hash}
		if err := rq.Store.CreateMember(ctx, rq.Account.ID, &u, role); err != nil {
			return err
		}
	case err != nil:
		return err
	default:
		ms, err := rq.Store.Members(ctx, rq.Account.ID)
		if err != nil {
			return err
		}
		for _, m := range ms {
			if m.ID == u.ID {
				return rq.renderUsers(http.StatusConflict, email, role, "That person is a member already; change their role in the table.")
			}
		}
	}
	if !isNew {
		if err := rq.Store.SetMembership(ctx, rq.Account.ID, u.ID, role); err != nil {
			return err
		}
	}
	if err := rq.audit("user.invite", "user "+itoa(u.ID)+" as "+string(role)); err != nil {
		return err
	}
	text := rq.User.Email + " gave you the role " + string(role) + " in " + rq.Account.Name + " on Tidings.\n\n"
	if isNew {
		_, token, err := rq.Auth.RequestPasswordReset(ctx, u.Email)
		if err != nil {
			return err
		}
		text += "Choose your password with this link (it works once, for a limited time; if it expired, ask for a new one on the sign-in page):\n\n" +
			rq.BaseURL + "/admin/reset?token=" + token + "\n"
	} else {
		text += "Sign in as usual: " + rq.BaseURL + "/admin/\n"
	}
	if err := rq.mailUser(ctx, u, "You were invited to "+rq.Account.Name+" on Tidings", text); err != nil {
		rq.Log.Error("invitation mail not sent", "user_id", u.ID, "err", err)
	}
	return rq.redirect(rq.a("/users"), "invited")
}

// member finds a member of the account by the URL's id; 404 if not one.
func (rq *request) member() (tidings.Member, error) {
	id, err := rq.id("id")
	if err != nil {
		return tidings.Member{}, err
	}
	ms, err := rq.Store.Members(rq.r.Context(), rq.Account.ID)
	if err != nil {
		return tidings.Member{}, err
	}
	for _, m := range ms {
		if m.ID == id {
			return m, nil
		}
	}
	return tidings.Member{}, tidings.ErrNotFound
}

func (rq *request) changeRole() error {
	if err := rq.form(); err != nil {
		return err
	}
	m, err := rq.member()
	if err != nil {
		return err
	}
	role := tidings.Role(rq.value("role"))
	if !role.Valid() {
		return rq.renderUsers(http.StatusUnprocessableEntity, "", tidings.RoleEditor, "role: choose owner, admin, editor or viewer.")
	}
	if why := rq.mayManage(m.Role, role); why != "" {
		return rq.renderUsers(http.StatusForbidden, "", tidings.RoleEditor, why)
	}
	err = rq.Store.UpdateMembership(rq.r.Context(), rq.Account.ID, m.ID, role)
	if msg := formError(err); msg != "" {
		return rq.renderUsers(http.StatusUnprocessableEntity, "", tidings.RoleEditor, msg)
	}
	if err != nil {
		return err
	}
	if err := rq.audit("user.role", "user "+itoa(m.ID)+" as "+string(role)); err != nil {
		return err
	}
	return rq.redirect(rq.a("/users"), "saved")
}

func (rq *request) removeUser() error {
	m, err := rq.member()
	if err != nil {
		return err
	}
	if why := rq.mayManage(m.Role, ""); why != "" {
		return rq.renderUsers(http.StatusForbidden, "", tidings.RoleEditor, why)
	}
	err = rq.Store.UpdateMembership(rq.r.Context(), rq.Account.ID, m.ID, "")
	if msg := formError(err); msg != "" {
		return rq.renderUsers(http.StatusUnprocessableEntity, "", tidings.RoleEditor, msg)
	}
	if err != nil {
		return err
	}
	if err := rq.audit("user.remove", "user "+itoa(m.ID)); err != nil {
		return err
	}
	if m.ID == rq.User.ID {
		return rq.redirect("/admin/", "removed")
	}
	return rq.redirect(rq.a("/users"), "removed")
}
