package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidings/tidings/internal/postman"
	"github.com/tidings/tidings/internal/tidings"
)

func cmdDKIM(ctx context.Context, e env, args []string) error {
	if len(args) == 0 || args[0] != "generate" {
		return fmt.Errorf("%w: dkim generate --account ID --domain DOMAIN [--algorithms rsa,ed25519]", errUsage)
	}
	fs, load := newFlags("dkim generate", e)
	account := fs.String("account", "", "ID of the account that sends from the domain (required)")
	domain := fs.String("domain", "", "the sending domain, e.g. news.example.com (required)")
	kf := addKeyFlags(fs, "selector prefix (default: tidings + the UTC date, e.g. tidings20261130); each key's selector is PREFIX-ALGORITHM, which must never have been used on the domain")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	// Every flag is checked before anything is stored: a run adds all its keys or none.
	accountID, dom, err := accountDomainFlags(*account, *domain)
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
	if err := a.store.AddDKIMKeys(ctx, accountID, dom, keys...); err != nil {
		if v, ok := tidings.AsValidation(err); ok && v.Code == "domain_taken" {
			// A domain belongs to one account; the store does not say which.
			return fmt.Errorf("%s is already a sending domain of another account on this instance (a domain belongs to one account; the operator can move it: tidings domain move)", *domain)
		}
		if err := gen.refusal(err, dom); err != nil {
			return err
		}
		if errors.Is(err, tidings.ErrNotFound) {
			return fmt.Errorf("account %d not found", accountID)
		}
		return fmt.Errorf("no keys stored for domain %s: %w", dom, err)
	}
	return printRecords(e, dom, keys, *kf.asJSON)
}

// keyFlags are the flags of a command that makes DKIM keys (dkim generate, domain move).
type keyFlags struct {
	algorithms, selector *string
	asJSON               *bool
}

func addKeyFlags(fs *flag.FlagSet, selectorHelp string) keyFlags {
	return keyFlags{
		algorithms: fs.String("algorithms", "rsa,ed25519", "comma-separated: rsa (2048-bit), ed25519"),
		selector:   fs.String("selector", "", selectorHelp),
		asJSON:     fs.Bool("json", false, "print the DNS records as JSON"),
	}
}

func (k keyFlags) generation() (generation, error) { return newGeneration(*k.algorithms, *k.selector) }

// accountDomainFlags checks a command's --account ID and --domain flags.
func accountDomainFlags(account, domain string) (int64, string, error) {
	accountID, err := strconv.ParseInt(account, 10, 64)
	if err != nil || accountID <= 0 || domain == "" {
		return 0, "", fmt.Errorf("%w: --account ID and --domain are required", errUsage)
	}
	dom, err := domainFlag(domain)
	return accountID, dom, err
}

// generation is a DKIM key generation asked for by --algorithms and --selector, checked
// by the one selector rule (tidings.DKIMSelectors) before anything is made.
type generation struct {
	prefix     string
	algorithms []string
}

// domainFlag reads a --domain flag: a domain name, normalised.
func domainFlag(v string) (string, error) {
	dom, err := tidings.ParseDomain(v)
	if err != nil {
		return "", fmt.Errorf("%w: --domain %q: must be a domain name like news.example.com", errUsage, v)
	}
	return dom, nil
}

func newGeneration(algs, selector string) (generation, error) {
	var g generation
	for _, alg := range strings.Split(algs, ",") {
		alg = strings.ToLower(strings.TrimSpace(alg))
		switch {
		case !slices.Contains(postman.DKIMAlgorithms, alg):
			return g, fmt.Errorf("%w: --algorithms: unknown algorithm %q; choose from %s", errUsage, alg, strings.Join(postman.DKIMAlgorithms, ", "))
		case slices.Contains(g.algorithms, alg):
			return g, fmt.Errorf("%w: --algorithms: %s is given twice", errUsage, alg)
		}
		g.algorithms = append(g.algorithms, alg)
	}
	prefix, _, err := tidings.DKIMSelectors(selector, g.algorithms, time.Now())
	if v, ok := tidings.AsValidation(err); ok {
		return g, fmt.Errorf("%w: --selector %q: %s", errUsage, selector, v.Message)
	}
	g.prefix = prefix
	return g, err
}

func (g generation) keys() ([]*tidings.DKIMKey, error) {
	keys := make([]*tidings.DKIMKey, len(g.algorithms))
	for i, alg := range g.algorithms {
		k, err := postman.NewDKIMKey(alg, g.prefix)
		if err != nil {
			return nil, err
		}
		keys[i] = &k
	}
	return keys, nil
}

// refusal says in the command's words why the store refused the generation's keys
// on dom; nil when it was not for their selectors.
func (g generation) refusal(err error, dom string) error {
	if v, ok := tidings.AsValidation(err); ok && v.Code == "selector_taken" {
		return fmt.Errorf("selector %s already exists for domain %s: %s; choose another with --selector", g.prefix, dom, v.Message)
	}
	return nil
}

// printRecords prints the DNS TXT records of the keys stored on dom.
func printRecords(e env, dom string, keys []*tidings.DKIMKey, asJSON bool) error {
	type record struct{ Name, Value, Zone string }
	var records []record
	for _, k := range keys {
		name, value, zone, err := postman.DKIMRecord(dom, *k)
		if err != nil {
			return err
		}
		records = append(records, record{name, value, zone})
	}
	if asJSON {
		return json.NewEncoder(e.stdout).Encode(records)
	}
	fmt.Fprintln(e.stdout, "Publish these DNS TXT records; Tidings signs with the new keys from now on, and with")
	fmt.Fprintln(e.stdout, "older keys of the domain until you retire them (admin: Sending domains, Retire):")
	for _, r := range records {
		fmt.Fprintf(e.stdout, "\n%s\n", r.Zone)
	}
	return nil
}
