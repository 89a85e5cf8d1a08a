package admin

import (
	"context"
	"errors"
	"fmt"
	"image/png"
	"net/http"
	netmail "net/mail"
	"strings"
	"time"

	"github.com/pquerna/otp"

	"github.com/tidings/tidings/internal/auth"
	"github.com/tidings/tidings/internal/mail"
	"github.com/tidings/tidings/internal/tidings"
)

// Sign-in, second factor, sign-out, password reset, terms, and the user's own security
// page.

type loginData struct {
	Email, Next string
	Pending     string // set on the second-factor form
}

func (rq *request) loginPage() error {
	if c, err := rq.r.Cookie(cookieName); err == nil {
		if _, err := rq.Auth.Session(rq.r.Context(), c.Value); err == nil {
			http.Redirect(rq.w, rq.r, "/admin/", http.StatusSeeOther)
			return nil
		}
	}
	rq.render(http.StatusOK, "login", "Sign in", loginData{Next: safeNext(rq.r.URL.Query().Get("next"))})
	return nil
}

// safeNext keeps a post-login destination inside the admin UI (no open redirect).
func safeNext(next string) string {
	if strings.HasPrefix(next, "/admin/") && !strings.HasPrefix(next, "//") && !strings.ContainsAny(next, "\\\r\n") {
		return next
	}
	return "/admin/"
}

func (rq *request) login() error {
	if err := rq.form(); err != nil {
		return err
	}
	d := loginData{Email: rq.value("email"), Next: safeNext(rq.value("next"))}
	if !rq.PerIP.Allow("login/" + rq.limitKey()) {
		rq.Auth.Store.RecordLogin(rq.r.Context(), tidings.LoginAttempt{IP: rq.ip(), UserAgent: rq.client().UserAgent,
			Result: tidings.LoginThrottled, At: rq.Auth.Now()}, 0, rq.Auth.Now())
		rq.renderView(http.StatusTooManyRequests, "login", view{Title: "Sign in", Error: "Too many attempts from your network. Wait a minute and try again.", Data: d})
		return nil
	}
	step, err := rq.Auth.Login(rq.r.Context(), d.Email, rq.r.PostForm.Get("password"), rq.client())
	if errors.Is(err, auth.ErrBadCredentials) {
		rq.renderView(http.StatusUnauthorized, "login", view{Title: "Sign in", Data: d,
			Error: "The address or password is wrong, or the account is locked for 15 minutes after repeated failures."})
		return nil
	}
	if err != nil {
		return err
	}
	if step.Pending != "" {
		d.Pending = step.Pending
		rq.render(http.StatusOK, "login", "Two-factor sign-in", d)
		return nil
	}
	rq.startSession(step.Session)
	http.Redirect(rq.w, rq.r, d.Next, http.StatusSeeOther)
	return nil
}

func (rq *request) secondFactor() error {
	if err := rq.form(); err != nil {
		return err
	}
	d := loginData{Next: safeNext(rq.value("next")), Pending: rq.value("pending")}
	if !rq.PerIP.Allow("login/" + rq.limitKey()) {
		rq.renderView(http.StatusTooManyRequests, "login", view{Title: "Two-factor sign-in", Error: "Too many attempts. Wait a minute and try again.", Data: d})
		return nil
	}
	step, err := rq.Auth.SecondFactor(rq.r.Context(), d.Pending, rq.value("code"), rq.client())
	switch {
	case errors.Is(err, auth.ErrExpired):
		rq.renderView(http.StatusUnauthorized, "login", view{Title: "Sign in", Error: "That took too long. Please sign in again.", Data: loginData{Next: d.Next}})
		return nil
	case errors.Is(err, auth.ErrBadCode):
		rq.renderView(http.StatusUnauthorized, "login", view{Title: "Two-factor sign-in", Error: "That code is wrong or expired.", Data: d})
		return nil
	case err != nil:
		return err
	}
	rq.startSession(step.Session)
	http.Redirect(rq.w, rq.r, d.Next, http.StatusSeeOther)
	return nil
}

// startSession sets the session cookie: first-party, HttpOnly, SameSite=Lax, Secure over
// HTTPS, and without Max-Age so the browser drops it when it closes.
func (rq *request) startSession(token string) {
	http.SetCookie(rq.w, &http.Cookie{Name: cookieName, Value: token, Path: "/admin", HttpOnly: true,
		Secure: strings.HasPrefix(rq.BaseURL, "https://"), SameSite: http.SameSiteLaxMode})
}

func (rq *request) logout() error {
	if rq.session != "" {
		rq.Auth.Logout(rq.r.Context(), rq.session)
	}
	http.SetCookie(rq.w, &http.Cookie{Name: cookieName, Value: "", Path: "/admin", MaxAge: -1, HttpOnly: true})
	http.Redirect(rq.w, rq.r, "/admin/login", http.StatusSeeOther)
	return nil
}

// Password reset: the same answer whether or not the address has a user.

type resetData struct {
	Token string
	Sent  bool
}

func (rq *request) resetPage() error {
	rq.render(http.StatusOK, "reset", "Reset your password", resetData{Token: rq.r.URL.Query().Get("token")})
	return nil
}

func (rq *request) requestReset() error {
	if err := rq.form(); err != nil {
		return err
	}
	if !rq.PerIP.Allow("reset/" + rq.limitKey()) {
		rq.renderView(http.StatusTooManyRequests, "reset", view{Title: "Reset your password", Error: "Too many requests. Wait a minute and try again.", Data: resetData{}})
		return nil
	}
	u, token, err := rq.Auth.RequestPasswordReset(rq.r.Context(), rq.value("email"))
	if err != nil {
		return err
	}
	if token != "" {
		link := rq.BaseURL + "/admin/reset?token=" + token
		if err := rq.mailUser(rq.r.Context(), u, "Reset your Tidings password",
			"Someone (hopefully you) asked to reset your Tidings password. This link works once, for 30 minutes:\n\n"+link+
				"\n\nIf it wasn't you, ignore this mail: your password stays as it is.\n"); err != nil {
			rq.Log.Error("password reset mail not sent", "user_id", u.ID, "err", err)
		}
	}
	rq.render(http.StatusOK, "reset", "Reset your password", resetData{Sent: true})
	return nil
}

func (rq *request) reset() error {
	if err := rq.form(); err != nil {
		return err
	}
	d := resetData{Token: rq.value("token")}
	err := rq.Auth.ResetPassword(rq.r.Context(), d.Token, rq.r.PostForm.Get("password"))
	if errors.Is(err, auth.ErrExpired) {
		rq.renderView(http.StatusBadRequest, "reset", view{Title: "Reset your password", Error: "This reset link is not valid: it expired, was used already, or is incomplete. Ask for a new one.", Data: resetData{}})
		return nil
	}
	if v, ok := tidings.AsValidation(err); ok {
		rq.renderView(http.StatusUnprocessableEntity, "reset", view{Title: "Reset your password", Error: "The new password " + v.Message + ".", Data: d})
		return nil
	}
	if err != nil {
		return err
	}
	return rq.redirect("/admin/login", "password")
}

// mailUser sends an instance mail to a staff member.
func (rq *request) mailUser(ctx context.Context, u tidings.User, subject, text string) error {
	if rq.Sender == nil {
		return errors.New("no mail sender configured")
	}
	to, err := tidings.ParseAddress(u.Email)
	if err != nil {
		return err
	}
	m := &mail.Message{
		From: netmail.Address{Name: "Tidings", Address: rq.MailFrom}, To: netmail.Address{Address: to.String()},
		Subject: subject, Date: time.Now(), MessageID: mail.NewMessageID(domainOf(rq.MailFrom)), Text: text,
	}
	return rq.Sender.Send(ctx, mail.Envelope{From: rq.MailFrom, To: []string{to.String()}}, m.Bytes())
}

// Terms: accept the latest version before going on.

func (rq *request) termsPage() error {
	pending, err := rq.Auth.TermsPending(rq.r.Context(), rq.User.ID)
	if err != nil {
		return err
	}
	if pending.Version == 0 {
		http.Redirect(rq.w, rq.r, "/admin/", http.StatusSeeOther)
		return nil
	}
	rq.render(http.StatusOK, "terms", "Terms of use", pending)
	return nil
}

func (rq *request) acceptTerms() error {
	if err := rq.form(); err != nil {
		return err
	}
	pending, err := rq.Auth.TermsPending(rq.r.Context(), rq.User.ID)
	if err != nil {
		return err
	}
	// Accept only the version the person saw: a newer one published meanwhile is shown.
	if fmt.Sprint(pending.Version) != rq.value("version") || rq.value("accept") != "yes" {
		return rq.termsPage()
	}
	if err := rq.Store.AcceptTerms(rq.r.Context(), rq.User.ID, pending.Version, rq.ip()); err != nil {
		return err
	}
	http.Redirect(rq.w, rq.r, "/admin/", http.StatusSeeOther)
	return nil
}

// The user's own page: password, two-factor, recent sign-ins.

type meData struct {
	Security      tidings.UserSecurity
	RecoveryLeft  int
	Logins        []tidings.LoginAttempt
	Enroll        *auth.Enrollment
	RecoveryCodes []string
	Required      bool
}

func (rq *request) me() error { return rq.renderMe(http.StatusOK, meData{}, "") }

func (rq *request) renderMe(status int, d meData, errText string) error {
	ctx := rq.r.Context()
	var err error
	if d.Security, err = rq.Store.UserSecurity(ctx, rq.User.ID); err != nil {
		return err
	}
	d.RecoveryLeft, _ = rq.Store.RecoveryCodesLeft(ctx, rq.User.ID)
	d.Logins, _ = rq.Store.LoginAttempts(ctx, rq.User.ID, tidings.Page{Limit: 20})
	d.Required = d.Required || rq.r.URL.Query().Get("required") == "1"
	rq.renderView(status, "me", view{Title: "Your sign-in", Nav: "me", Error: errText, Data: d})
	return nil
}

func (rq *request) changePassword() error {
	if err := rq.form(); err != nil {
		return err
	}
	err := rq.Auth.ChangePassword(rq.r.Context(), rq.User, rq.r.PostForm.Get("current_password"), rq.r.PostForm.Get("new_password"))
	if v, ok := tidings.AsValidation(err); ok {
		field := "The new password"
		if v.Field == "current_password" {
			field = "The current password"
		}
		return rq.renderMe(http.StatusUnprocessableEntity, meData{}, field+" "+v.Message+".")
	}
	if err != nil {
		return err
	}
	// Every session ended with the change; this browser gets a fresh one.
	session, err := rq.Auth.NewSession(rq.r.Context(), rq.User.ID)
	if err != nil {
		return err
	}
	rq.startSession(session)
	return rq.redirect("/admin/me", "password")
}

func (rq *request) twoFactorPage() error {
	e, err := rq.Auth.BeginTOTP(rq.User)
	if err != nil {
		return err
	}
	return rq.renderMe(http.StatusOK, meData{Enroll: &e}, "")
}

func (rq *request) enableTwoFactor() error {
	if err := rq.form(); err != nil {
		return err
	}
	codes, err := rq.Auth.ConfirmTOTP(rq.r.Context(), rq.User, rq.value("enrollment"), rq.value("code"))
	if errors.Is(err, auth.ErrBadCode) || errors.Is(err, auth.ErrExpired) {
		e, oerr := rq.Auth.OpenEnrollment(rq.User, rq.value("enrollment"))
		if oerr != nil {
			return rq.renderMe(http.StatusUnprocessableEntity, meData{}, "The setup expired; start again.")
		}
		return rq.renderMe(http.StatusUnprocessableEntity, meData{Enroll: &e}, "That code is wrong; check your app's clock and try the current code.")
	}
	if err != nil {
		return err
	}
	return rq.renderMe(http.StatusOK, meData{RecoveryCodes: codes}, "")
}

func (rq *request) disableTwoFactor() error {
	if err := rq.form(); err != nil {
		return err
	}
	if a, required := rq.totpRequiredBy(); required {
		return rq.renderMe(http.StatusForbidden, meData{}, a.Name+" requires two-factor sign-in; it cannot be turned off.")
	}
	err := rq.Auth.DisableTOTP(rq.r.Context(), rq.User, rq.r.PostForm.Get("password"))
	if _, ok := tidings.AsValidation(err); ok {
		return rq.renderMe(http.StatusUnprocessableEntity, meData{}, "That is not your password.")
	}
	if err != nil {
		return err
	}
	return rq.redirect("/admin/me", "2fa-off")
}

// totpQR serves the QR code of an enrollment as a PNG (the CSP allows our own images,
// not data: URLs).
func (rq *request) totpQR() error {
	e, err := rq.Auth.OpenEnrollment(rq.User, rq.r.URL.Query().Get("e"))
	if err != nil {
		return tidings.ErrNotFound
	}
	key, err := otp.NewKeyFromURL(e.URL)
	if err != nil {
		return err
	}
	img, err := key.Image(240, 240)
	if err != nil {
		return err
	}
	rq.w.Header().Set("Content-Type", "image/png")
	return png.Encode(rq.w, img)
}

func domainOf(addr string) string {
	_, d, _ := strings.Cut(addr, "@")
	return d
}
