package api

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"time"

	"github.com/tidings/tidings/internal/tidings"
)

// OpenDSR (https://github.com/opengdpr/opendsr, API version 0.2) lets a controller route
// data-subject requests to Tidings programmatically. The controller calls as itself, with
// its account token; requests are carried out at once, within that account only.

const openDSRVersion = "0.2"

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func (a *api) openDSRDiscovery(w http.ResponseWriter, r *http.Request, _ caller) error {
	return writeJSON(w, http.StatusOK, map[string]any{
		"api_version": openDSRVersion,
		// People are found by a keyed hash over the SHA-256 of their address, so a
		// digest finds them too, without Tidings keeping any unkeyed hash.
		"supported_identities": []map[string]string{{"identity_type": "email", "identity_format": "raw"},
			{"identity_type": "email", "identity_format": "sha256"}},
		"supported_subject_request_types": []string{"erasure", "access", "portability"},
		"processor_certificate":           a.BaseURL + "/.well-known/tidings-processor.pem",
	})
}

type openDSRInput struct {
	SubjectRequestID   string `json:"subject_request_id"`
	SubjectRequestType string `json:"subject_request_type"`
	SubmittedTime      string `json:"submitted_time"`
	SubjectIdentities  []struct {
		IdentityType   string `json:"identity_type"`
		IdentityValue  string `json:"identity_value"`
		IdentityFormat string `json:"identity_format"`
	} `json:"subject_identities"`
	APIVersion         string          `json:"api_version"`
	StatusCallbackURLs []string        `json:"status_callback_urls"`
	Extensions         json.RawMessage `json:"extensions"`
}

func invalid(field, code, msg string) error {
	return &tidings.ValidationError{Field: field, Code: code, Message: msg}
}

func (a *api) createOpenDSR(w http.ResponseWriter, r *http.Request, c caller) error {
	var in openDSRInput
	if err := a.decode(w, r, &in); err != nil {
		return err
	}
	if !uuidRE.MatchString(in.SubjectRequestID) {
		return invalid("subject_request_id", "invalid_id", "must be a UUID")
	}
	switch in.SubjectRequestType {
	case "erasure", "access", "portability":
	default:
		return invalid("subject_request_type", "invalid_choice", "must be erasure, access or portability")
	}
	if len(in.SubjectIdentities) != 1 || in.SubjectIdentities[0].IdentityType != "email" {
		return invalid("subject_identities", "unsupported_identity", "give exactly one identity of type email")
	}
	id := in.SubjectIdentities[0]
	// A raw address, or the hex SHA-256 of the normalised (lower-case) address, which
	// finds the person only where this account holds them.
	var addr tidings.Address
	var digest [sha256.Size]byte
	switch id.IdentityFormat {
	case "raw":
		var err error
		if addr, err = tidings.ParseAddress(id.IdentityValue); err != nil {
			v, _ := tidings.AsValidation(err)
			return invalid("subject_identities[0].identity_value", v.Code, v.Message)
		}
	case "sha256":
		b, err := hex.DecodeString(id.IdentityValue)
		if err != nil || len(b) != sha256.Size {
			return invalid("subject_identities[0].identity_value", "invalid_digest", "must be a SHA-256 digest in hex (64 characters)")
		}
		copy(digest[:], b)
		switch found, err := a.Store.AddressByDigest(r.Context(), c.AccountID, digest); {
		case err == nil:
			addr = found
		case !errors.Is(err, tidings.ErrNotFound):
			return err
		}
	default:
		return invalid("subject_identities[0].identity_format", "unsupported_identity_format", "must be raw or sha256")
	}
	for i, cb := range in.StatusCallbackURLs {
		u, err := url.Parse(cb)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return invalid("status_callback_urls", "invalid_url", "callback "+itoaInt(i)+" must be an https URL")
		}
	}
	req := tidings.OpenDSRRequest{ID: in.SubjectRequestID, AccountID: c.AccountID, Kind: in.SubjectRequestType, Status: "pending",
		Callbacks: in.StatusCallbackURLs, ExpectedAt: time.Now().AddDate(0, 1, 0)}
	if req.Kind != "erasure" {
		req.Email = addr // kept, sealed, until the results are fetched
	}
	if err := a.Store.CreateOpenDSR(r.Context(), &req); errors.Is(err, tidings.ErrConflict) {
		return fail(http.StatusConflict, "conflict", "a request with this subject_request_id exists")
	} else if err != nil {
		return err
	}
	// Carried out at once: an erasure now, an access request by preparing its results. A
	// digest the account does not know has nothing to erase or show (and, without the
	// address, no suppression can be derived from it).
	kind := tidings.DSARKind(req.Kind)
	if req.Kind == "erasure" && !addr.IsZero() {
		if _, err := a.Store.ErasePerson(r.Context(), addr, c.AccountID); err != nil {
			return err
		}
	}
	if err := a.Store.SetOpenDSRStatus(r.Context(), c.AccountID, req.ID, "completed", req.Kind != "erasure" && !addr.IsZero()); err != nil {
		return err
	}
	logged := a.Store.LogDSARDigest(r.Context(), c.AccountID, digest, kind, tidings.SourceAPI, true)
	if !addr.IsZero() {
		logged = a.Store.LogDSAR(r.Context(), c.AccountID, addr, kind, tidings.SourceAPI, true)
	}
	if logged != nil {
		return logged
	}
	body, _ := json.Marshal(in)
	a.callback(c.AccountID, req.ID, req.ExpectedAt, "completed", in.StatusCallbackURLs)
	return writeJSON(w, http.StatusCreated, map[string]any{
		"controller_id": itoa64(c.AccountID), "expected_completion_time": req.ExpectedAt.UTC().Format(time.RFC3339),
		"received_time": req.ReceivedAt.UTC().Format(time.RFC3339), "encoded_request": base64.StdEncoding.EncodeToString(body),
		"subject_request_id": req.ID,
	})
}

func (a *api) openDSRStatus(w http.ResponseWriter, r *http.Request, c caller) error {
	req, err := a.Store.GetOpenDSR(r.Context(), c.AccountID, r.PathValue("rid"))
	if err != nil {
		return err
	}
	out := map[string]any{"controller_id": itoa64(c.AccountID), "expected_completion_time": req.ExpectedAt.UTC().Format(time.RFC3339),
		"subject_request_id": req.ID, "request_status": req.Status, "api_version": openDSRVersion}
	if req.Kind != "erasure" && !req.Email.IsZero() {
		out["results_url"] = a.BaseURL + "/api/v1/opendsr/" + req.ID + "/results"
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *api) cancelOpenDSR(w http.ResponseWriter, r *http.Request, c caller) error {
	req, err := a.Store.GetOpenDSR(r.Context(), c.AccountID, r.PathValue("rid"))
	if err != nil {
		return err
	}
	if req.Status != "pending" {
		return fail(http.StatusConflict, "not_cancellable", "the request is %s and can no longer be cancelled", req.Status)
	}
	if err := a.Store.SetOpenDSRStatus(r.Context(), c.AccountID, req.ID, "cancelled", false); err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, map[string]any{"subject_request_id": req.ID,
		"received_time": req.ReceivedAt.UTC().Format(time.RFC3339), "api_version": openDSRVersion})
}

// openDSRResults returns an access or portability request's export (this account only),
// once: the sealed address is dropped afterwards.
func (a *api) openDSRResults(w http.ResponseWriter, r *http.Request, c caller) error {
	req, err := a.Store.GetOpenDSR(r.Context(), c.AccountID, r.PathValue("rid"))
	if err != nil {
		return err
	}
	if req.Email.IsZero() {
		return fail(http.StatusGone, "gone", "no results: an erasure, or results already fetched")
	}
	recs, err := a.Store.PersonData(r.Context(), req.Email)
	if err != nil {
		return err
	}
	mine := []tidings.PersonRecord{}
	for _, rec := range recs {
		if rec.Account.ID == c.AccountID {
			mine = append(mine, rec)
		}
	}
	if err := a.Store.SetOpenDSRStatus(r.Context(), c.AccountID, req.ID, req.Status, false); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"format": "tidings-person-export/1", "email": req.Email.String(), "accounts": mine})
}

// callback posts the request's status to the controller's callback URLs, signed with the
// instance key (Ed25519, base64 in X-OpenDSR-Signature; the discovery document's
// processor_certificate URL serves it as a self-signed X.509 certificate).
func (a *api) callback(accountID int64, id string, expected time.Time, status string, urls []string) {
	if len(urls) == 0 || a.Keys == nil {
		return
	}
	go func() {
		for _, u := range urls {
			body, _ := json.Marshal(map[string]any{"controller_id": itoa64(accountID), "expected_completion_time": expected.UTC().Format(time.RFC3339),
				"status_callback_url": u, "subject_request_id": id, "request_status": status, "api_version": openDSRVersion})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			req, _ := http.NewRequestWithContext(ctx, "POST", u, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-OpenDSR-Processor-Domain", a.BaseURL)
			req.Header.Set("X-OpenDSR-Signature", base64.StdEncoding.EncodeToString(ed25519.Sign(a.Keys.ReceiptKey(), body)))
			if res, err := a.httpClient().Do(req); err != nil {
				a.Log.Warn("opendsr callback failed", "request", id, "err", err)
			} else {
				res.Body.Close()
			}
			cancel()
		}
	}()
}

func (a *api) httpClient() *http.Client {
	if a.CallbackClient != nil {
		return a.CallbackClient
	}
	return &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func itoa64(n int64) string { b, _ := json.Marshal(n); return string(b) }

func itoaInt(n int) string { return itoa64(int64(n)) }
