// Package api is the REST API under /api/v1: JSON in and out, bearer API tokens, one
// error shape, and tenant isolation by construction — every handler gets the caller's
// account ID from the token and passes it to the store, which scopes every query by it.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/tidings/tidings/internal/consent"
	"github.com/tidings/tidings/internal/keys"
	"github.com/tidings/tidings/internal/mail"
	"github.com/tidings/tidings/internal/send"
	"github.com/tidings/tidings/internal/tidings"
)

// Deps is what the API needs.
type Deps struct {
	Store        tidings.Store
	Log          *slog.Logger
	MaxBodyBytes int64
	// MaxUploadBytes limits CSV uploads.
	MaxUploadBytes int64
	Consent        *consent.Service // subscribe links and forms; may be nil in tests
	Outbox         *mail.Outbox     // nil when mail goes to a relay
	Engine         *send.Engine     // test sends and previews; may be nil in tests
	Keys           *keys.Keyring    // signs OpenDSR callbacks
	BaseURL        string           // public base for links in responses
	// CallbackClient posts OpenDSR status callbacks (https only); nil uses a default.
	CallbackClient *http.Client
}

type api struct{ Deps }

// caller is who is calling: the token's account, or the operator (AccountID 0).
type caller struct{ tidings.APIToken }

// access says who may call a route.
type access int

const (
	accountOnly  access = iota // an account token; acts within its account
	operatorOnly               // an operator token
)

type handler func(w http.ResponseWriter, r *http.Request, c caller) error

// Error is an API error with its HTTP status and stable code.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func (e *Error) Error() string { return e.Message }

func fail(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Routes registers every route of the table on mux.
func Routes(mux *http.ServeMux, d Deps) {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.MaxBodyBytes <= 0 {
		d.MaxBodyBytes = 1 << 20
	}
	if d.MaxUploadBytes <= 0 {
		d.MaxUploadBytes = 64 << 20
	}
	a := &api{d}
	for _, rt := range a.routes() {
		mux.Handle(rt.Method+" "+rt.Path, a.wrap(rt))
	}
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, fail(http.StatusNotFound, "not_found", "no such API endpoint"))
	})
}

// wrap authenticates, authorises and turns a handler's error into the error response.
func (a *api) wrap(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		err := a.serve(w, r, rt)
		if err == nil {
			return
		}
		e := toError(err)
		if e.Status == http.StatusInternalServerError {
			a.Log.ErrorContext(r.Context(), "api request failed", "route", rt.Path, "err", err)
		}
		if e.Status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tidings"`)
		}
		writeError(w, e)
	})
}

func (a *api) serve(w http.ResponseWriter, r *http.Request, rt Route) error {
	if rt.Public {
		return rt.h(w, r, caller{})
	}
	c, err := a.authenticate(r)
	if err != nil {
		return err
	}
	switch {
	case rt.access == operatorOnly && !c.Operator():
		return fail(http.StatusForbidden, "forbidden", "this endpoint needs an operator token")
	case rt.access == accountOnly && c.Operator():
		return fail(http.StatusForbidden, "forbidden", "this endpoint needs an account token; operator tokens manage accounts only")
	}
	return rt.h(w, r, c)
}

func (a *api) authenticate(r *http.Request) (caller, error) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return caller{}, fail(http.StatusUnauthorized, "unauthorized", "send an API token as 'Authorization: Bearer <token>'")
	}
	t, err := a.Store.TokenByHash(r.Context(), keys.HashSecretToken(strings.TrimSpace(token)))
	if errors.Is(err, tidings.ErrNotFound) {
		return caller{}, fail(http.StatusUnauthorized, "unauthorized", "the API token is not valid")
	}
	if err != nil {
		return caller{}, err
	}
	return caller{t}, nil
}

// toError maps domain errors to API errors; anything unknown is a 500 whose details
// stay in the log.
func toError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if v, ok := tidings.AsValidation(err); ok {
		return &Error{Status: http.StatusUnprocessableEntity, Code: v.Code, Message: v.Error(), Field: v.Field}
	}
	switch {
	case errors.Is(err, tidings.ErrNotFound):
		return fail(http.StatusNotFound, "not_found", "not found")
	case errors.Is(err, tidings.ErrConflict):
		return fail(http.StatusConflict, "conflict", "this already exists")
	case errors.Is(err, tidings.ErrSuppressed):
		return fail(http.StatusConflict, "suppressed", "this address is suppressed and cannot be added")
	case errors.Is(err, tidings.ErrUnauthorized):
		return fail(http.StatusUnauthorized, "unauthorized", "not authenticated")
	case errors.Is(err, tidings.ErrForbidden):
		return fail(http.StatusForbidden, "forbidden", "not allowed")
	case errors.Is(err, context.Canceled):
		return fail(499, "canceled", "request canceled")
	}
	return fail(http.StatusInternalServerError, "internal", "internal error; the server log has details")
}

func writeError(w http.ResponseWriter, e *Error) {
	writeJSON(w, e.Status, map[string]*Error{"error": e})
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	return enc.Encode(v)
}

// decode reads one JSON object into dst: JSON content type, bounded size, no unknown
// fields, nothing after the object.
func (a *api) decode(w http.ResponseWriter, r *http.Request, dst any) error {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/json" {
		return fail(http.StatusUnsupportedMediaType, "unsupported_media_type", "send the body as Content-Type: application/json")
	}
	body := http.MaxBytesReader(w, r.Body, a.MaxBodyBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err, a.MaxBodyBytes)
	}
	if _, err := dec.Token(); err != io.EOF {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return decodeError(err, a.MaxBodyBytes)
		}
		return fail(http.StatusBadRequest, "invalid_json", "the body must hold exactly one JSON object, with nothing after it")
	}
	return nil
}

func decodeError(err error, limit int64) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return fail(http.StatusRequestEntityTooLarge, "body_too_large", "the body is larger than %d bytes", limit)
	case errors.As(err, &syn):
		return fail(http.StatusBadRequest, "invalid_json", "malformed JSON at byte %d: %s", syn.Offset, syn.Error())
	case errors.As(err, &typ):
		e := fail(http.StatusUnprocessableEntity, "wrong_type", "must be of JSON type %s", typ.Type.String())
		e.Field = typ.Field
		return e
	case errors.Is(err, io.EOF):
		return fail(http.StatusBadRequest, "invalid_json", "the body is empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fail(http.StatusBadRequest, "invalid_json", "the JSON body ends too early")
	}
	if _, ok := tidings.AsValidation(err); ok {
		return err
	}
	// encoding/json reports unknown fields only as text: `json: unknown field "x"`.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		e := fail(http.StatusBadRequest, "unknown_field", "unknown field %s", name)
		e.Field = strings.Trim(name, `"`)
		return e
	}
	return fail(http.StatusBadRequest, "invalid_json", "cannot read the JSON body: %v", err)
}

// pathID reads the {id} path segment: a positive decimal integer.
func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		e := fail(http.StatusBadRequest, "invalid_id", "the ID in the path must be a positive whole number")
		e.Field = "id"
		return 0, e
	}
	return id, nil
}

// page reads ?after= and ?limit=.
func page(r *http.Request) (tidings.Page, error) {
	var p tidings.Page
	q := r.URL.Query()
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return p, &tidings.ValidationError{Field: "after", Code: "invalid_cursor", Message: "must be the 'next' value of a previous page"}
		}
		p.After = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > tidings.MaxPageSize {
			return p, &tidings.ValidationError{Field: "limit", Code: "out_of_range", Message: fmt.Sprintf("must be a whole number from 1 to %d", tidings.MaxPageSize)}
		}
		p.Limit = n
	}
	return p.Clamp(), nil
}

// pageOf is the envelope of every collection: the rows, and the cursor for the next
// page when this one was full.
type pageOf[T any] struct {
	Data []T    `json:"data"`
	Next string `json:"next,omitempty"`
}

func respondPage[T any](w http.ResponseWriter, rows []T, p tidings.Page, id func(T) int64) error {
	out := pageOf[T]{Data: rows}
	if len(rows) == p.Limit && len(rows) > 0 {
		out.Next = strconv.FormatInt(id(rows[len(rows)-1]), 10)
	}
	return writeJSON(w, http.StatusOK, out)
}
