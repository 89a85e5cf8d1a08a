package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/tidings/tidings/internal/consent"
)

// errLedgerBroken makes `tidings ledger verify` exit non-zero when a chain is broken.
var errLedgerBroken = errors.New("the consent ledger does not verify")

func cmdLedger(ctx context.Context, e env, args []string) error {
	if len(args) == 0 || args[0] != "verify" {
		return fmt.Errorf("%w: ledger verify [--account ID] [--json]", errUsage)
	}
	fs, load := newFlags("ledger verify", e)
	account := fs.String("account", "", "verify only this account (default: every account)")
	asJSON := fs.Bool("json", false, "print the reports as JSON")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	a, err := openLoaded(ctx, e, load)
	if err != nil {
		return err
	}
	defer a.Close()
	var ids []int64
	if *account != "" {
		id, err := strconv.ParseInt(*account, 10, 64)
		if err != nil || id <= 0 {
			return fmt.Errorf("%w: --account must be an account ID", errUsage)
		}
		ids = []int64{id}
	} else if ids, err = a.store.LedgerAccounts(ctx); err != nil {
		return err
	}
	var reports []consent.LedgerReport
	broken := false
	for _, id := range ids {
		rep, err := consent.VerifyLedger(ctx, a.store, id)
		if err != nil {
			return err
		}
		reports = append(reports, rep)
		broken = broken || !rep.OK
		if !*asJSON {
			if rep.OK {
				fmt.Fprintf(e.stdout, "account %d: ok, %d entries\n", id, rep.Entries)
			} else {
				fmt.Fprintf(e.stdout, "account %d: BROKEN at entry %d: %s\n", id, rep.BrokenAt, rep.Problem)
			}
		}
	}
	if *asJSON {
		json.NewEncoder(e.stdout).Encode(reports)
	}
	if broken {
		return errLedgerBroken
	}
	return nil
}
