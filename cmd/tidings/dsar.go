package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/tidings/tidings/internal/privacy"
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
			return privacy.WriteJSON(e.stdout, addr, recs)
		case "csv":
			return privacy.WriteCSV(e.stdout, recs)
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
