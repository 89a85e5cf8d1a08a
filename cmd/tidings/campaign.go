package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/tidings/tidings/internal/send"
	"github.com/tidings/tidings/internal/tidings"
)

// engine returns the campaign engine configured for this node.
func (a *app) engine() *send.Engine {
	return &send.Engine{Store: a.store, Keys: a.keys, Sender: a.sender, BaseURL: a.cfg.PublicURL(), Log: a.log,
		Workers: a.cfg.Send.Workers, Rate: a.cfg.Send.Rate, PerDomain: a.cfg.Send.PerDomain}
}

func cmdCampaign(ctx context.Context, e env, args []string) error {
	if len(args) == 0 || (args[0] != "send" && args[0] != "status") {
		return fmt.Errorf("%w: campaign send|status --account ID --id ID", errUsage)
	}
	fs, load := newFlags("campaign "+args[0], e)
	account := fs.String("account", "", "ID of the account (required)")
	id := fs.String("id", "", "ID of the campaign (required)")
	asJSON := fs.Bool("json", false, "print progress as JSON")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	accountID, err1 := strconv.ParseInt(*account, 10, 64)
	campaignID, err2 := strconv.ParseInt(*id, 10, 64)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("%w: --account and --id are required", errUsage)
	}
	a, err := openLoaded(ctx, e, load)
	if err != nil {
		return err
	}
	defer a.Close()
	printProgress := func() error {
		p, err := a.store.CampaignProgress(ctx, accountID, campaignID)
		if err != nil {
			return err
		}
		c, err := a.store.GetCampaign(ctx, accountID, campaignID)
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(e.stdout).Encode(map[string]any{"status": c.Status, "pause_reason": c.PauseReason, "progress": p})
		}
		fmt.Fprintf(e.stdout, "%s: %d sent, %d failed, %d remaining of %d; %.0f/s", c.Status, p.Sent, p.Failed, p.Remaining, p.Total, p.Rate)
		if p.ETA != "" {
			fmt.Fprintf(e.stdout, ", ETA %s", p.ETA)
		}
		if c.PauseReason != "" {
			fmt.Fprintf(e.stdout, "\n%s", c.PauseReason)
		}
		fmt.Fprintln(e.stdout)
		return nil
	}
	if args[0] == "status" {
		return printProgress()
	}
	// send: start the campaign if it has not started, then send in the foreground until
	// it is done (or paused). Running it again after a crash resumes it.
	c, err := a.store.GetCampaign(ctx, accountID, campaignID)
	if err != nil {
		return err
	}
	if c.Status == tidings.CampaignDraft || c.Status == tidings.CampaignScheduled || c.Status == tidings.CampaignPaused {
		if err := a.store.SetCampaignStatus(ctx, accountID, campaignID, tidings.CampaignSending, ""); err != nil {
			return err
		}
	}
	eng := a.engine()
	eng.Lease = leaseFromEnv(e)
	for {
		if err := eng.Send(ctx, accountID, campaignID); err != nil {
			return err
		}
		c, err := a.store.GetCampaign(ctx, accountID, campaignID)
		if err != nil {
			return err
		}
		if c.Status != tidings.CampaignSending || ctx.Err() != nil {
			break
		}
		// Batches leased by a node that died are claimable once the lease runs out.
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	if err := printProgress(); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return errors.New("interrupted; run the command again to resume")
	}
	return nil
}

// leaseFromEnv reads TIDINGS_TEST_LEASE (tests shorten leases to see takeovers quickly).
func leaseFromEnv(e env) time.Duration {
	if v, ok := e.lookup("TIDINGS_TEST_LEASE"); ok {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	}
	return 0
}
