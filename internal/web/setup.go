package web

import (
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"strings"

	"github.com/tidings/tidings/internal/auth"
	"github.com/tidings/tidings/internal/keys"
	"github.com/tidings/tidings/internal/tidings"
)

var pages = template.Must(template.ParseFS(assets, "templates/*.html"))

// setup serves the one-time page that creates the first operator. The token printed at
// start-up is the only key to it; it is consumed on success.
type setup struct {
	store tidings.Store
	log   *slog.Logger
}

type setupPage struct {
	Token, Name, Email string
	Error              string
	Done               bool
}

func (s *setup) form(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	if token == "" {
		s.render(w, http.StatusNotFound, setupPage{Error: "This setup link is incomplete. Use the link printed when Tidings started."})
		return
	}
	s.render(w, http.StatusOK, setupPage{Token: token})
}

func (s *setup) submit(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		s.render(w, http.StatusBadRequest, setupPage{Error: "The form could not be read."})
		return
	}
	p := setupPage{Token: r.PostForm.Get("token"), Name: strings.TrimSpace(r.PostForm.Get("name")), Email: r.PostForm.Get("email")}
	password := r.PostForm.Get("password")
	if err := auth.CheckPassword(password, p.Email, p.Name); err != nil {
		v, _ := tidings.AsValidation(err)
		p.Error = "The password " + v.Message + "."
		s.render(w, http.StatusUnprocessableEntity, p)
		return
	}
	hash, err := keys.HashPassword(password)
	if err != nil {
		p.Error = "The password is too long."
		s.render(w, http.StatusUnprocessableEntity, p)
		return
	}
	u := tidings.User{Email: p.Email, Name: p.Name, PasswordHash: hash}
	err = s.store.CreateFirstOperator(r.Context(), keys.HashSecretToken(p.Token), &u)
	switch {
	case err == nil:
		s.log.Info("first operator created", "user_id", u.ID)
		s.render(w, http.StatusOK, setupPage{Done: true, Name: u.Name})
	case errors.Is(err, tidings.ErrNotFound):
		s.render(w, http.StatusNotFound, setupPage{Error: "This setup link is not valid any more: it was already used, or Tidings was restarted and printed a new one."})
	default:
		if v, ok := tidings.AsValidation(err); ok {
			p.Error = "Email address: " + v.Message
			s.render(w, http.StatusUnprocessableEntity, p)
			return
		}
		s.log.Error("first operator setup failed", "err", err)
		s.render(w, http.StatusInternalServerError, setupPage{Error: "Something went wrong; the server log has details."})
	}
}

func (s *setup) render(w http.ResponseWriter, status int, p setupPage) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, "setup.html", p); err != nil {
		s.log.Error("render setup page", "err", err)
	}
}
