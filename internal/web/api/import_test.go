package api_test

import (
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
)

func (e *env) upload(path, ctype string, body []byte) response {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.srv.URL+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Authorization", "Bearer "+e.tokA)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{res.StatusCode, res.Header, b}
}

func TestImportUpload(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		list := id(t, e.must(201, e.do("POST", "/api/v1/lists", e.tokA, map[string]any{"name": "Imported"})))
		path := fmt.Sprintf("/api/v1/lists/%d/imports?source=fair+2026&lawful_basis=consent", list)
		csv := "email,name,plan\nann@example.com,Ann,pro\nbroken,Bob,free\nann@example.com,Ann,pro\n"
		r := e.must(200, e.upload(path, "text/csv", []byte(csv)))
		rep := r.json(t)
		counts := rep["counts"].(map[string]any)
		if rep["committed"] != true || counts["added"] != 1.0 || counts["invalid"] != 1.0 || counts["duplicate"] != 1.0 {
			t.Fatalf("report: %s", r.body)
		}
		// Multipart upload of the same file: nothing new, and the report says so.
		var mp bytes.Buffer
		mw := multipart.NewWriter(&mp)
		fw, _ := mw.CreateFormFile("file", "list.csv")
		fw.Write([]byte("email\nann@example.com\n"))
		mw.Close()
		r = e.must(200, e.upload(path, mw.FormDataContentType(), mp.Bytes()))
		if !strings.Contains(string(r.body), `"existing":1`) {
			t.Fatalf("re-upload: %s", r.body)
		}
		// Unsubscribe Ann via the store, then re-import: refused with the reason.
		subs := e.must(200, e.do("GET", "/api/v1/subscribers?email=ann@example.com", e.tokA, nil)).json(t)["data"].([]any)
		annID := int64(subs[0].(map[string]any)["id"].(float64))
		if _, err := e.store.Unsubscribe(t.Context(), e.a.ID, annID, nil, "mail", evidence()); err != nil {
			t.Fatal(err)
		}
		r = e.must(200, e.upload(path, "text/csv", []byte("email\nann@example.com\n")))
		if !strings.Contains(string(r.body), `"suppressed":1`) || !strings.Contains(string(r.body), "only the person can subscribe again") {
			t.Fatalf("re-import of an unsubscribed address: %s", r.body)
		}
		// The API refuses to add her too.
		r = e.must(409, e.do("POST", "/api/v1/subscribers", e.tokA, map[string]any{"email": "ann@example.com"}))
		if code, _ := r.errCode(t); code != "suppressed" {
			t.Fatalf("API add of a suppressed address: %s", r.body)
		}

		for _, c := range []struct {
			path, ctype, body string
			status            int
			code              string
		}{
			{path, "text/csv", "name\nx\n", 422, "invalid_csv"},
			{path, "text/csv", "email,name\nok@example.com,M\xfcller\n", 422, "invalid_csv"},
			{path, "text/csv", "email\n\"unterminated\n", 422, "invalid_csv"},
			{path, "application/json", "{}", 415, "unsupported_media_type"},
			{fmt.Sprintf("/api/v1/lists/%d/imports?lawful_basis=consent", list), "text/csv", "email\nx@example.com\n", 422, "required"},
			{fmt.Sprintf("/api/v1/lists/%d/imports?source=x&lawful_basis=whim", list), "text/csv", "email\nx@example.com\n", 422, "invalid_choice"},
			{path, "text/csv", "email\n" + strings.Repeat("someone@example.com\n", 300), 413, "body_too_large"},
			{"/api/v1/lists/999999/imports?source=x&lawful_basis=consent", "text/csv", "email\nx@example.com\n", 404, "not_found"},
		} {
			r := e.upload(c.path, c.ctype, []byte(c.body))
			if r.status != c.status {
				t.Errorf("%s: status %d, want %d: %s", c.body[:min(len(c.body), 20)], r.status, c.status, r.body)
				continue
			}
			if code, _ := r.errCode(t); code != c.code {
				t.Errorf("%q: code %s, want %s", c.body[:min(len(c.body), 20)], code, c.code)
			}
		}
		all := e.must(200, e.do("GET", fmt.Sprintf("/api/v1/subscribers?list=%d", list), e.tokA, nil)).json(t)["data"].([]any)
		if len(all) != 1 {
			t.Fatalf("refused uploads changed the list: %d subscribers", len(all))
		}
	})
}
