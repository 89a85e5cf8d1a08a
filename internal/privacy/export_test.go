package privacy

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tidings/tidings/internal/tidings"
)

// A pending double opt-in request and the changes it would make are data held about
// the person: both formats carry them.
func TestExportPending(t *testing.T) {
	created := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	rec := tidings.PersonRecord{
		Account:    tidings.Account{PostalAddress: "1 Example Street, Exampletown", ID: 1, Name: "Chess Club"},
		Subscriber: tidings.Subscriber{Email: tidings.MustParseAddress("pat@example.com"), Name: "Pat"},
		Pending: []tidings.PendingRecord{{Lists: []int64{3, 4}, CreatedAt: created, ExpiresAt: created.Add(48 * time.Hour),
			Changes: &tidings.PendingChanges{Name: "Patricia", Attributes: tidings.Attributes{"city": "Leeds"}, TrackingConsent: true}}},
	}
	var csv bytes.Buffer
	if err := WriteCSV(&csv, []tidings.PersonRecord{rec}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`Chess Club,pending,request 1,"list 3, list 4; awaiting confirmation until 2026-12-02T10:00:00Z",2026-11-30T10:00:00Z`,
		"Chess Club,pending,request 1 name,Patricia,2026-11-30T10:00:00Z",
		"Chess Club,pending,request 1 tracking_consent,true,2026-11-30T10:00:00Z",
		"Chess Club,pending,request 1 attribute city,Leeds,2026-11-30T10:00:00Z",
	} {
		if !strings.Contains(csv.String(), want+"\n") {
			t.Errorf("CSV lacks %q:\n%s", want, csv.String())
		}
	}

	var js bytes.Buffer
	if err := WriteJSON(&js, rec.Subscriber.Email, []tidings.PersonRecord{rec}); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Accounts []struct {
			Pending []struct {
				Lists     []int64   `json:"lists"`
				CreatedAt time.Time `json:"created_at"`
				ExpiresAt time.Time `json:"expires_at"`
				Changes   struct {
					Name            string         `json:"name"`
					Attributes      map[string]any `json:"attributes"`
					TrackingConsent bool           `json:"tracking_consent"`
				} `json:"changes"`
			} `json:"pending"`
		} `json:"accounts"`
	}
	if err := json.Unmarshal(js.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Accounts) != 1 || len(got.Accounts[0].Pending) != 1 {
		t.Fatalf("JSON pending: %s", js.String())
	}
	p := got.Accounts[0].Pending[0]
	if len(p.Lists) != 2 || !p.CreatedAt.Equal(created) || !p.ExpiresAt.Equal(created.Add(48*time.Hour)) ||
		p.Changes.Name != "Patricia" || p.Changes.Attributes["city"] != "Leeds" || !p.Changes.TrackingConsent {
		t.Fatalf("JSON pending: %+v", p)
	}
}
