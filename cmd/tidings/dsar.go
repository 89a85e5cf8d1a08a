package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	"github.com/tidings/tidings/internal/tidings"
)

func cmdDSAR(ctx context.Context, e env, args []string) error {
	if len(args) == 0 || (args[0] != "export" && args[0] != "erase") {
		return fmt.Errorf("%w: dsar export --email ADDRESS [--format json|csv] | dsar erase --email ADDRESS [--account ID]", errUsage)
	}
	fs, load := newFlags("dsar "+args[0], e)
	email := fs.String("email", "", "the person's address (required)")
	format := fs.String("format", "json", "export format: json or csv")
	account := fs.String("account", "", "erase: only in this account (default: every account)")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	addr, err := tidings.ParseAddress(*email)
	if err != nil {
		return fmt.Errorf("%w: --email: %v", errUsage, err)
	}
	a, err := openLoaded(ctx, e, load)
	if err != nil {
		return err
	}
	defer a.Close()
	if args[0] == "export" {
		recs, err := a.store.PersonData(ctx, addr)
		if err != nil {
			return err
		}
		switch *format {
		case "json":
			enc := json.NewEncoder(e.stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(map[string]any{"format": "tidings-person-export/1", "email": addr.String(), "accounts": recs})
		case "csv":
			return writePersonCSV(e, recs)
		}
		return fmt.Errorf("%w: --format must be json or csv", errUsage)
	}
	var accountID int64
	if *account != "" {
		if accountID, err = strconv.ParseInt(*account, 10, 64); err != nil || accountID <= 0 {
			return fmt.Errorf("%w: --account must be an account ID", errUsage)
		}
	}
	er, err := a.store.ErasePerson(ctx, addr, accountID)
	if err != nil {
		return err
	}
	purged := 0
	if a.outbox != nil && er.KeyDestroyed {
		if purged, err = a.outbox.Purge(addr.String()); err != nil {
			return err
		}
	}
	a.log.Info("erasure done", "accounts", len(er.Accounts), "key_destroyed", er.KeyDestroyed)
	fmt.Fprintf(e.stdout, "erased in %d account(s); data key destroyed: %v; outbox messages deleted: %d\n", len(er.Accounts), er.KeyDestroyed, purged)
	fmt.Fprintln(e.stdout, "Kept: a keyed hash of the address per account (so uploads cannot add the person back), and the consent ledger's hashes (no personal data).")
	return nil
}

// writePersonCSV flattens an export: one row per fact, account by account.
func writePersonCSV(e env, recs []tidings.PersonRecord) error {
	w := csv.NewWriter(e.stdout)
	w.Write([]string{"account", "kind", "field", "value", "time"})
	for _, r := range recs {
		acc := r.Account.Name
		s := r.Subscriber
		w.Write([]string{acc, "subscriber", "email", s.Email.String(), ""})
		w.Write([]string{acc, "subscriber", "name", s.Name, ""})
		w.Write([]string{acc, "subscriber", "status", string(s.Status), ""})
		w.Write([]string{acc, "subscriber", "tracking_consent", strconv.FormatBool(s.TrackingConsent), ""})
		keys := make([]string, 0, len(s.Attributes))
		for k := range s.Attributes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
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
	}
	w.Flush()
	return w.Error()
}
