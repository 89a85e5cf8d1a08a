// Package privacy formats what Tidings holds about a person for access and portability
// requests. The JSON format is documented in docs/EXPORT.md.
package privacy

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/tidings/tidings/internal/tidings"
)

// Format names the JSON export's version.
const Format = "tidings-person-export/1"

// WriteJSON writes the machine-readable export.
func WriteJSON(w io.Writer, email tidings.Address, recs []tidings.PersonRecord) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(map[string]any{"format": Format, "email": email.String(), "accounts": recs})
}

// WriteCSV flattens an export: one row per fact, account by account.
func WriteCSV(out io.Writer, recs []tidings.PersonRecord) error {
	w := csv.NewWriter(out)
	w.Write([]string{"account", "kind", "field", "value", "time"})
	for _, r := range recs {
		acc := r.Account.Name
		s := r.Subscriber
		w.Write([]string{acc, "subscriber", "email", s.Email.String(), ""})
		w.Write([]string{acc, "subscriber", "name", s.Name, ""})
		w.Write([]string{acc, "subscriber", "status", string(s.Status), ""})
		w.Write([]string{acc, "subscriber", "tracking_consent", strconv.FormatBool(s.TrackingConsent), ""})
		for _, k := range sortedKeys(s.Attributes) {
			w.Write([]string{acc, "attribute", k, fmt.Sprint(s.Attributes[k]), ""})
		}
		for _, x := range r.Subscriptions {
			w.Write([]string{acc, "subscription", fmt.Sprintf("list %d", x.ListID), string(x.Status), x.CreatedAt.Format("2006-01-02T15:04:05Z")})
		}
		for _, c := range r.Consent {
			w.Write([]string{acc, "consent", string(c.Kind), fmt.Sprintf("list %d via %s; ip %s; user agent %s", c.ListID, c.Source, c.Evidence.IP, c.Evidence.UserAgent), c.Time.Format("2006-01-02T15:04:05Z")})
		}
		for _, d := range r.Deliveries {
			at := ""
			if d.SentAt != nil {
				at = d.SentAt.Format("2006-01-02T15:04:05Z")
			}
			w.Write([]string{acc, "delivery", d.CampaignName, string(d.Status), at})
		}
		for _, e := range r.Events {
			v := fmt.Sprintf("campaign %d", e.CampaignID)
			if e.URL != "" {
				v += "; " + e.URL
			}
			if e.Automated {
				v += "; flagged as automated"
			}
			w.Write([]string{acc, "event", string(e.Kind), v, e.Time.Format("2006-01-02T15:04:05Z")})
		}
		// Unconfirmed requests: numbered, since one request's facts span several rows.
		for i, p := range r.Pending {
			req := fmt.Sprintf("request %d", i+1)
			at := p.CreatedAt.UTC().Format("2006-01-02T15:04:05Z")
			lists := make([]string, len(p.Lists))
			for j, l := range p.Lists {
				lists[j] = fmt.Sprintf("list %d", l)
			}
			w.Write([]string{acc, "pending", req, strings.Join(lists, ", ") + "; awaiting confirmation until " +
				p.ExpiresAt.UTC().Format("2006-01-02T15:04:05Z"), at})
			if c := p.Changes; c != nil {
				w.Write([]string{acc, "pending", req + " name", c.Name, at})
				w.Write([]string{acc, "pending", req + " tracking_consent", strconv.FormatBool(c.TrackingConsent), at})
				for _, k := range sortedKeys(c.Attributes) {
					w.Write([]string{acc, "pending", req + " attribute " + k, fmt.Sprint(c.Attributes[k]), at})
				}
			}
		}
	}
	w.Flush()
	return w.Error()
}

func sortedKeys(a tidings.Attributes) []string {
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
