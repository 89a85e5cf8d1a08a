package main

import (
	"context"
	"fmt"
	"time"

	"github.com/tidings/tidings/internal/consent"
	"github.com/tidings/tidings/internal/postman"
	"github.com/tidings/tidings/internal/tidings"
)

// runRetention applies the retention rules at start and then every interval, until ctx
// ends. On PostgreSQL one node sweeps at a time (an advisory lock); the rules are
// idempotent besides.
func (a *app) runRetention(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		// One node sweeps; on PostgreSQL the others skip this round.
		a.store.RunExclusive(ctx, "retention", func(ctx context.Context) error {
			a.sweep(ctx)
			return nil
		})
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sweep applies every retention rule once.
func (a *app) sweep(ctx context.Context) {
	if n, err := a.expireUnconfirmed(ctx, false); err != nil {
		a.log.Error("retention: expiring unconfirmed sign-ups failed", "err", err)
	} else if n > 0 {
		a.log.Info("retention: deleted unconfirmed sign-ups", "count", n)
	}
	if n, err := a.rollUpEvents(ctx, false); err != nil {
		a.log.Error("retention: rolling up tracking events failed", "err", err)
	} else if n > 0 {
		a.log.Info("retention: rolled tracking events into daily aggregates", "count", n)
	}
	if n, err := a.store.PruneLoginAttempts(ctx, time.Now().Add(-tidings.LoginLogRetention)); err != nil {
		a.log.Error("retention: pruning the login log failed", "err", err)
	} else if n > 0 {
		a.log.Info("retention: pruned old login attempts", "count", n)
	}
	if _, err := a.deleteInactive(ctx, false); err != nil {
		a.log.Error("retention: deleting inactive subscribers failed", "err", err)
	}
	if n, err := a.store.SweepOrphanKeys(ctx); err != nil {
		a.log.Error("retention: sweeping orphan data keys failed", "err", err)
	} else if n > 0 {
		a.log.Info("retention: deleted data keys that belonged to no person", "count", n)
	}
}

// deleteInactive applies each account's inactivity rule and tells the account holder
// how many subscribers went; it returns the total.
func (a *app) deleteInactive(ctx context.Context, dryRun bool) (int, error) {
	accounts, err := a.store.AccountsDeletingInactive(ctx)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, acc := range accounts {
		cutoff := time.Now().AddDate(0, 0, -acc.InactiveDays)
		n, err := a.store.DeleteInactive(ctx, acc.ID, cutoff, dryRun)
		if err != nil {
			return total, err
		}
		total += n
		if n == 0 || dryRun {
			continue
		}
		a.log.Info("retention: deleted inactive subscribers", "account_id", acc.ID, "count", n)
		to, err := tidings.ParseAddress(acc.ContactEmail)
		if err != nil {
			continue
		}
		text := fmt.Sprintf("Following your retention setting, %d subscriber(s) with no activity for %d days were deleted today, "+
			"with their consent evidence. They can subscribe again.\n", n, acc.InactiveDays)
		if _, err := a.consent.Postman.Send(ctx, acc.ID, postman.Letter{To: to, Subject: "Inactive subscribers deleted", Text: text}); err != nil {
			a.log.Warn("retention: notice to the account holder not sent", "account_id", acc.ID, "err", err)
		}
	}
	return total, nil
}

// expireUnconfirmed applies the accounts' shorter rules first, then the instance's.
func (a *app) expireUnconfirmed(ctx context.Context, dryRun bool) (int, error) {
	shorter, err := a.store.AccountsWithShorterRetention(ctx)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, acc := range shorter {
		if acc.UnconfirmedDays == 0 {
			continue
		}
		cutoff := time.Now().AddDate(0, 0, -acc.UnconfirmedDays)
		n, err := a.store.ExpireUnconfirmed(ctx, acc.ID, cutoff, dryRun)
		if err != nil {
			return total, err
		}
		total += n
		if dryRun {
			// The instance rule below counts them again; a run would not find them.
			both, err := a.store.ExpireUnconfirmed(ctx, acc.ID, earlier(cutoff, time.Now().Add(-consent.ConfirmWindow)), true)
			if err != nil {
				return total, err
			}
			total -= both
		}
	}
	n, err := a.store.ExpireUnconfirmed(ctx, 0, time.Now().Add(-consent.ConfirmWindow), dryRun)
	return total + n, err
}

// earlier returns the earlier of two cutoffs: what both rules select is older than it.
func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// rollUpEvents applies the accounts' shorter event rules first, then the instance's.
// A dry run counts an account's events that both rules select once, as a run removes
// them once.
func (a *app) rollUpEvents(ctx context.Context, dryRun bool) (int64, error) {
	shorter, err := a.store.AccountsWithShorterRetention(ctx)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, acc := range shorter {
		if acc.EventDays == 0 {
			continue
		}
		cutoff := time.Now().AddDate(0, 0, -acc.EventDays)
		n, err := a.store.RollUpEvents(ctx, acc.ID, cutoff, dryRun)
		if err != nil {
			return total, err
		}
		total += n
		if dryRun {
			both, err := a.store.RollUpEvents(ctx, acc.ID, earlier(cutoff, time.Now().Add(-tidings.EventRetention)), true)
			if err != nil {
				return total, err
			}
			total -= both
		}
	}
	n, err := a.store.RollUpEvents(ctx, 0, time.Now().Add(-tidings.EventRetention), dryRun)
	return total + n, err
}

func cmdRetention(ctx context.Context, e env, args []string) error {
	if len(args) == 0 || args[0] != "run" {
		return fmt.Errorf("%w: retention run [--dry-run]", errUsage)
	}
	fs, load := newFlags("retention run", e)
	dry := fs.Bool("dry-run", false, "report what would be removed, remove nothing")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	a, err := openLoaded(ctx, e, load)
	if err != nil {
		return err
	}
	defer a.Close()
	n, err := a.expireUnconfirmed(ctx, *dry)
	if err != nil {
		return err
	}
	verb := "deleted"
	if *dry {
		verb = "would delete"
	}
	// Each line names the instance's rule; an account may set a shorter one (its settings).
	fmt.Fprintf(e.stdout, "unconfirmed sign-ups older than %d days, or their account's shorter rule: %s %d\n",
		int(consent.ConfirmWindow.Hours()/24), verb, n)
	events, err := a.rollUpEvents(ctx, *dry)
	if err != nil {
		return err
	}
	if !*dry {
		verb = "rolled into daily aggregates and deleted"
	}
	fmt.Fprintf(e.stdout, "tracking events older than 6 months, or their account's shorter rule: %s %d\n", verb, events)
	inactive, err := a.deleteInactive(ctx, *dry)
	if err != nil {
		return err
	}
	verb = "deleted"
	if *dry {
		verb = "would delete"
	}
	fmt.Fprintf(e.stdout, "inactive subscribers (accounts that enabled it): %s %d\n", verb, inactive)
	if !*dry {
		keys, err := a.store.SweepOrphanKeys(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "data keys that belonged to no person: deleted %d\n", keys)
	}
	return nil
}
