package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"text/tabwriter"

	"github.com/tidings/tidings/internal/postman"
	"github.com/tidings/tidings/internal/tidings"
)

// Sending domains: a check of a domain's DNS records, an account holder's domain
// removed, or the operator's move of a domain to another account. Either way the
// account the domain leaves keeps its keys, retired: stored proof messages signed with
// them stay verifiable.

const domainUsage = "domain check --account ID --domain D | domain remove --account ID --domain D | domain move --domain D --to ID [--selector P] [--algorithms rsa,ed25519]"

func cmdDomain(ctx context.Context, e env, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: %s", errUsage, domainUsage)
	}
	switch args[0] {
	case "check":
		return domainCheck(ctx, e, args[1:])
	case "remove":
		return domainRemove(ctx, e, args[1:])
	case "move":
		return domainMove(ctx, e, args[1:])
	}
	return fmt.Errorf("%w: unknown subcommand %q (want check, remove or move)", errUsage, args[0])
}

// sendingDomain reads the --account and --domain flags of a domain subcommand (what it
// does to the domain, for the flag's help), opens the app, and finds the account's
// sending domain. The caller closes the app.
func sendingDomain(ctx context.Context, e env, name, what string, args []string) (*app, tidings.SendingDomain, error) {
	fs, load := newFlags(name, e)
	account := fs.String("account", "", "ID of the account that sends from the domain (required)")
	domain := fs.String("domain", "", "the sending domain to "+what+" (required)")
	if err := parse(fs, args); err != nil {
		return nil, tidings.SendingDomain{}, err
	}
	accountID, dom, err := accountDomainFlags(*account, *domain)
	if err != nil {
		return nil, tidings.SendingDomain{}, err
	}
	a, err := openLoaded(ctx, e, load)
	if err != nil {
		return nil, tidings.SendingDomain{}, err
	}
	sd, err := func() (tidings.SendingDomain, error) {
		if _, err := a.store.GetAccount(ctx, accountID); errors.Is(err, tidings.ErrNotFound) {
			return tidings.SendingDomain{}, fmt.Errorf("account %d not found", accountID)
		} else if err != nil {
			return tidings.SendingDomain{}, err
		}
		ds, err := a.store.SendingDomains(ctx, accountID)
		if err != nil {
			return tidings.SendingDomain{}, err
		}
		i := slices.IndexFunc(ds, func(d tidings.SendingDomain) bool { return d.Domain == dom })
		if i < 0 {
			return tidings.SendingDomain{}, fmt.Errorf("%s is not a sending domain of account %d", dom, accountID)
		}
		return ds[i], nil
	}()
	if err != nil {
		a.Close()
		return nil, tidings.SendingDomain{}, err
	}
	return a, sd, nil
}

// domainCheck prints what the DNS holds of a sending domain's records (postman.CheckDomain)
// and fails unless every signing key is published: receivers cannot verify mail signed
// with a key they do not find.
func domainCheck(ctx context.Context, e env, args []string) error {
	a, sd, err := sendingDomain(ctx, e, "domain check", "check", args)
	if err != nil {
		return err
	}
	defer a.Close()
	c := postman.CheckDomain(ctx, postman.NewResolver(a.cfg.DNSResolver), sd)
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	for i, k := range sd.Keys {
		use := "signing"
		if k.RetiredAt != nil {
			use = "retired"
		}
		fmt.Fprintf(tw, "DKIM %s (%s)\t%s\t%s\n", k.Selector, use, dnsState(c.Keys[i].RecordCheck), c.Keys[i].Name)
	}
	fmt.Fprintf(tw, "SPF\t%s\t%s\n", dnsState(c.SPF), c.SPF.Name)
	fmt.Fprintf(tw, "DMARC\t%s\t%s\n", dnsState(c.DMARC), c.DMARC.Name)
	tw.Flush()
	if !c.Ready(sd.Keys) {
		return fmt.Errorf("%s is not ready: not every signing key of it is published as made, or it has none; `tidings dkim generate` printed the records (the admin UI shows them too)", sd.Domain)
	}
	fmt.Fprintf(e.stdout, "%s is ready: every signing key is published.\n", sd.Domain)
	return nil
}

// dnsState says what the DNS holds of a record, for people.
func dnsState(c postman.RecordCheck) string {
	s := map[postman.DNSState]string{postman.DNSPublished: "published", postman.DNSMissing: "not found",
		postman.DNSDifferent: "another key", postman.DNSRevoked: "revoked (empty key)", postman.DNSUnknown: "could not check"}[c.State]
	if c.Found != "" {
		s += ": " + c.Found
	}
	if c.Detail != "" {
		s += " (" + c.Detail + ")"
	}
	return s
}

func domainRemove(ctx context.Context, e env, args []string) error {
	a, sd, err := sendingDomain(ctx, e, "domain remove", "remove", args)
	if err != nil {
		return err
	}
	defer a.Close()
	dom, accountID := sd.Domain, sd.AccountID
	err = a.store.RemoveSendingDomain(ctx, accountID, sd.ID)
	if v, ok := tidings.AsValidation(err); ok {
		return fmt.Errorf("%s not removed: %s", dom, v.Message)
	}
	if errors.Is(err, tidings.ErrNotFound) {
		return fmt.Errorf("%s is not a sending domain of account %d (removed meanwhile?)", dom, accountID)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Removed %s from account %d: its keys are retired and kept, so that mail signed with them\n", dom, accountID)
	fmt.Fprintln(e.stdout, "(such as stored proof messages) can still be verified. Mail no longer goes out from it.")
	return nil
}

func domainMove(ctx context.Context, e env, args []string) error {
	fs, load := newFlags("domain move", e)
	domain := fs.String("domain", "", "the sending domain to move (required)")
	to := fs.String("to", "", "ID of the account that sends from the domain from now on (required)")
	kf := addKeyFlags(fs, "selector prefix of the new account's keys (default: tidings + the UTC date, e.g. tidings20261130)")
	if err := parse(fs, args); err != nil {
		return err
	}
	toID, err := strconv.ParseInt(*to, 10, 64)
	if err != nil || toID <= 0 || *domain == "" {
		return fmt.Errorf("%w: --domain and --to ID are required", errUsage)
	}
	dom, err := domainFlag(*domain)
	if err != nil {
		return err
	}
	gen, err := kf.generation()
	if err != nil {
		return err
	}
	a, err := openLoaded(ctx, e, load)
	if err != nil {
		return err
	}
	defer a.Close()
	keys, err := gen.keys()
	if err != nil {
		return err
	}
	from, err := a.store.MoveSendingDomain(ctx, dom, toID, keys...)
	if err != nil {
		if err := gen.refusal(err, dom); err != nil {
			return err
		}
		if v, ok := tidings.AsValidation(err); ok {
			return fmt.Errorf("%s not moved: %s", dom, v.Message)
		}
		if errors.Is(err, tidings.ErrNotFound) {
			return fmt.Errorf("account %d not found", toID)
		}
		return fmt.Errorf("%s not moved: %w", dom, err)
	}
	fmt.Fprintf(e.stderr, "Moved %s from account %d to account %d; account %d keeps its old keys, retired.\n", dom, from, toID, from)
	return printRecords(e, dom, keys, *kf.asJSON)
}
