package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidings/tidings/internal/postman"
	"github.com/tidings/tidings/internal/sqlstore"
	"github.com/tidings/tidings/internal/tidings"
)

func cmdDKIM(ctx context.Context, e env, args []string) error {
	if len(args) == 0 || args[0] != "generate" {
		return fmt.Errorf("%w: dkim generate --account ID --domain DOMAIN [--algorithms rsa,ed25519]", errUsage)
	}
	fs, load := newFlags("dkim generate", e)
	account := fs.String("account", "", "ID of the account that sends from the domain (required)")
	domain := fs.String("domain", "", "the sending domain, e.g. news.example.com (required)")
	algs := fs.String("algorithms", "rsa,ed25519", "comma-separated: rsa (2048-bit), ed25519")
	selector := fs.String("selector", "", "selector prefix, new on the domain (default: tidings + the date, e.g. tidings202611); each key's selector is PREFIX-ALGORITHM")
	asJSON := fs.Bool("json", false, "print the DNS records as JSON")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	// Every flag is checked before anything is stored: a run adds all its keys or none.
	accountID, err := strconv.ParseInt(*account, 10, 64)
	if err != nil || accountID <= 0 || *domain == "" {
		return fmt.Errorf("%w: --account ID and --domain are required", errUsage)
	}
	dom, err := tidings.ParseDomain(*domain)
	if err != nil {
		return fmt.Errorf("%w: --domain %q: must be a domain name like news.example.com", errUsage, *domain)
	}
	prefix := strings.ToLower(strings.TrimSpace(*selector))
	if prefix == "" {
		prefix = "tidings" + time.Now().UTC().Format("200601")
	}
	var algorithms, selectors []string
	for _, alg := range strings.Split(*algs, ",") {
		alg = strings.ToLower(strings.TrimSpace(alg))
		switch {
		case !slices.Contains(postman.DKIMAlgorithms, alg):
			return fmt.Errorf("%w: --algorithms: unknown algorithm %q; choose from %s", errUsage, alg, strings.Join(postman.DKIMAlgorithms, ", "))
		case slices.Contains(algorithms, alg):
			return fmt.Errorf("%w: --algorithms: %s is given twice", errUsage, alg)
		}
		algorithms = append(algorithms, alg)
	}
	for _, alg := range algorithms {
		selectors = append(selectors, prefix+"-"+alg)
		if !sqlstore.ValidSelector(prefix + "-" + alg) {
			return fmt.Errorf("%w: --selector %q: must be a DNS label (letters, digits and hyphens, at most %d characters with -%s)",
				errUsage, *selector, 63, alg)
		}
	}
	a, err := openLoaded(ctx, e, load)
	if err != nil {
		return err
	}
	defer a.Close()
	taken := func() (string, error) {
		ds, err := a.store.SendingDomains(ctx, accountID)
		if err != nil {
			return "", err
		}
		for _, d := range ds {
			for _, k := range d.Keys {
				if d.Domain == dom && slices.Contains(selectors, k.Selector) {
					return k.Selector, nil
				}
			}
		}
		return "", nil
	}
	conflict := func(sel string) error {
		return fmt.Errorf("selector %s already exists for domain %s (%s); choose another with --selector", prefix, dom, sel)
	}
	if sel, err := taken(); err != nil {
		return err
	} else if sel != "" {
		return conflict(sel)
	}
	keys := make([]*tidings.DKIMKey, len(algorithms))
	for i, alg := range algorithms {
		k, err := postman.NewDKIMKey(alg, prefix)
		if err != nil {
			return err
		}
		keys[i] = &k
	}
	if err := a.store.AddDKIMKeys(ctx, accountID, dom, keys...); err != nil {
		if v, ok := tidings.AsValidation(err); ok && v.Code == "domain_taken" {
			// A domain belongs to one account; the store does not say which.
			return fmt.Errorf("%s is already a sending domain of another account on this instance (a domain belongs to one account)", *domain)
		}
		switch {
		case errors.Is(err, tidings.ErrNotFound):
			return fmt.Errorf("account %d not found", accountID)
		case errors.Is(err, tidings.ErrConflict):
			// Another run added the selector meanwhile.
			if sel, _ := taken(); sel != "" {
				return conflict(sel)
			}
		}
		return fmt.Errorf("no keys stored for domain %s: %w", dom, err)
	}
	type record struct{ Name, Value, Zone string }
	var records []record
	for _, k := range keys {
		name, value, zone, err := postman.DKIMRecord(dom, *k)
		if err != nil {
			return err
		}
		records = append(records, record{name, value, zone})
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(records)
	}
	fmt.Fprintln(e.stdout, "Publish these DNS TXT records; Tidings signs with the new keys from now on, and with")
	fmt.Fprintln(e.stdout, "older keys of the domain until you retire them (admin: Sending domains, Retire):")
	for _, r := range records {
		fmt.Fprintf(e.stdout, "\n%s\n", r.Zone)
	}
	return nil
}
