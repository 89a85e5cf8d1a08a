package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"

	"github.com/tidings/tidings/internal/consent"
	"github.com/tidings/tidings/internal/importer"
	"github.com/tidings/tidings/internal/mail"
	"github.com/tidings/tidings/internal/tidings"
)

// listForm returns a list's hosted subscribe page, a snippet to embed on the account
// holder's own site, and the JSON endpoint.
func (a *api) listForm(w http.ResponseWriter, r *http.Request, c caller) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	l, err := a.Store.GetList(r.Context(), c.AccountID, id)
	if err != nil {
		return err
	}
	if a.Consent == nil {
		return fail(http.StatusServiceUnavailable, "unavailable", "subscribe forms are not enabled on this server")
	}
	acc, err := a.Store.GetAccount(r.Context(), c.AccountID)
	if err != nil {
		return err
	}
	text, err := a.Consent.CurrentText(r.Context(), acc)
	if err != nil {
		return err
	}
	// ?also=2,3: the snippet offers those lists too, as checkboxes.
	var also []tidings.List
	if v := r.URL.Query().Get("also"); v != "" {
		for i, f := range strings.Split(v, ",") {
			id, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
			if err != nil {
				return &tidings.ValidationError{Field: "also", Code: "bad_id", Message: fmt.Sprintf("item %d is not a list ID", i+1)}
			}
			more, err := a.Store.GetList(r.Context(), c.AccountID, id)
			if errors.Is(err, tidings.ErrNotFound) {
				return &tidings.ValidationError{Field: "also", Code: "unknown_list", Message: fmt.Sprintf("list %d does not exist", id)}
			}
			if err != nil {
				return err
			}
			if more.ID != l.ID {
				also = append(also, more)
			}
		}
	}
	// The page link offers the chosen lists too; the snippet and the JSON endpoint post
	// to the plain address, naming the lists ticked.
	offer := a.Consent.AlsoLists(also)
	u := a.Consent.SubscribeURL(c.AccountID, l.ID)
	return writeJSON(w, http.StatusOK, map[string]any{
		"url": a.Consent.SubscribeURL(c.AccountID, l.ID, offer...), "json_endpoint": u, "consent_version": text.Version,
		"embed_html": consent.EmbedSnippet(u, l, acc, text, offer...),
	})
}

func (a *api) currentConsentText(w http.ResponseWriter, r *http.Request, c caller) error {
	t, err := a.Store.ConsentText(r.Context(), c.AccountID, 0)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, t)
}

func (a *api) publishConsentText(w http.ResponseWriter, r *http.Request, c caller) error {
	var in struct {
		Body string `json:"body"`
	}
	if err := a.decode(w, r, &in); err != nil {
		return err
	}
	t, err := a.Store.PublishConsentText(r.Context(), c.AccountID, in.Body)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, t)
}

func (a *api) listOutbox(w http.ResponseWriter, r *http.Request, _ caller) error {
	if a.Outbox == nil {
		return fail(http.StatusNotFound, "no_outbox", "mail goes to an SMTP relay; there is no outbox")
	}
	p, err := page(r)
	if err != nil {
		return err
	}
	entries, err := a.Outbox.List(p.Limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, pageOf[mail.OutboxEntry]{Data: entries})
}

func (a *api) readOutbox(w http.ResponseWriter, r *http.Request, _ caller) error {
	if a.Outbox == nil {
		return fail(http.StatusNotFound, "no_outbox", "mail goes to an SMTP relay; there is no outbox")
	}
	msg, err := a.Outbox.Read(r.PathValue("msg"))
	if errors.Is(err, mail.ErrNoMessage) {
		return fail(http.StatusNotFound, "not_found", "no such message in the outbox")
	}
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "message/rfc822")
	_, err = w.Write(msg)
	return err
}

// importCSV imports a CSV upload into a list. The body is the CSV itself (text/csv) or a
// multipart form with a "file" field; the declaration and options are query parameters.
// A confirmed import is atomic; the report lists every row not added, with its reason.
func (a *api) importCSV(w http.ResponseWriter, r *http.Request, c caller) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if _, err := a.Store.GetList(r.Context(), c.AccountID, id); err != nil {
		return err
	}
	q := r.URL.Query()
	decl := tidings.ImportDeclaration{Source: q.Get("source"), LawfulBasis: tidings.LawfulBasis(q.Get("lawful_basis"))}
	opts := importer.Options{AccountID: c.AccountID, ListID: id, Declaration: decl, Mode: importer.Mode(q.Get("mode")),
		EmailColumn: q.Get("email_column"), NameColumn: q.Get("name_column")}
	if opts.Mode == "" {
		opts.Mode = importer.Confirmed
	}
	if v := q.Get("ignore"); v != "" {
		opts.Ignore = strings.Split(v, ",")
	}
	if err := decl.Validate(); err != nil {
		return err
	}
	body := http.MaxBytesReader(w, r.Body, a.MaxUploadBytes)
	var csvData io.Reader = body
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "text/csv", "text/plain", "application/csv":
	case "multipart/form-data":
		mr := multipart.NewReader(body, params["boundary"])
		part, err := mr.NextPart()
		for err == nil && part.FormName() != "file" {
			part, err = mr.NextPart()
		}
		if err != nil {
			return fail(http.StatusBadRequest, "invalid_upload", "the multipart body has no \"file\" part")
		}
		csvData = part
	default:
		return fail(http.StatusUnsupportedMediaType, "unsupported_media_type", "send the CSV as text/csv, or as multipart/form-data with a \"file\" field")
	}
	var request func(context.Context, tidings.ImportRow) (tidings.ImportResult, error)
	if a.Consent != nil {
		request = a.Consent.Requester(c.AccountID, id, decl)
	}
	run := func() (importer.Report, error) {
		if opts.Mode == importer.SendConfirmation {
			// Asking people to confirm is not one transaction: a file refused partway
			// would have mailed the rows before it. The whole upload is checked first.
			file, err := io.ReadAll(csvData)
			if err != nil {
				return importer.Report{}, err
			}
			if err := importer.Check(r.Context(), bytes.NewReader(file), opts); err != nil {
				return importer.Report{}, err
			}
			csvData = bytes.NewReader(file)
		}
		return importer.Run(r.Context(), a.Store, request, csvData, opts)
	}
	rep, err := run()
	var mbe *http.MaxBytesError
	var fe *importer.FileError
	switch {
	case errors.As(err, &mbe):
		return fail(http.StatusRequestEntityTooLarge, "body_too_large", "the upload is larger than %d bytes; nothing was imported", a.MaxUploadBytes)
	case errors.As(err, &fe):
		e := fail(http.StatusUnprocessableEntity, "invalid_csv", "nothing was imported: %s", fe.Error())
		e.Field = "file"
		return e
	case err != nil && rep.Counts[tidings.ImportRequested] > 0:
		// Some people were mailed already: the answer must not let the caller think
		// nothing happened.
		a.Log.ErrorContext(r.Context(), "import stopped", "account_id", c.AccountID, "list_id", id, "err", err)
		return fail(http.StatusServiceUnavailable, "import_stopped", "the import stopped partway because of a server error; %d people were already asked to confirm",
			rep.Counts[tidings.ImportRequested])
	case err != nil:
		return err
	}
	return writeJSON(w, http.StatusOK, rep)
}
