package main

import (
	"context"
	"encoding/json"
	"fmt"
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
	algs := fs.String("algorithms", "rsa,ed25519", "comma-separated: rsa (2048-bit), ed25519")
	selector := fs.String("selector", "", "selector prefix (default: tidings + the date, e.g. tidings202611)")
	asJSON := fs.Bool("json", false, "print the DNS records as JSON")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	accountID, err := strconv.ParseInt(*account, 10, 64)
	if err != nil || accountID <= 0 || *domain == "" {
		return fmt.Errorf("%w: --account ID and --domain are required", errUsage)
	}
	if *selector == "" {
		*selector = "tidings" + time.Now().Format("200601")
	}
	a, err := openLoaded(ctx, e, load)
	if err != nil {
		return err
	}
	defer a.Close()
	type record struct{ Name, Value, Zone string }
	var records []record
	for _, alg := range strings.Split(*algs, ",") {
		alg = strings.TrimSpace(alg)
		k, err := postman.NewDKIMKey(alg, *selector)
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		if err := a.store.AddDKIMKey(ctx, accountID, *domain, &k); err != nil {
			if v, ok := tidings.AsValidation(err); ok && v.Code == "domain_taken" {
				// A domain belongs to one account; the store does not say which.
				return fmt.Errorf("%s is already a sending domain of another account on this instance (a domain belongs to one account)", *domain)
			}
			return err
		}
		name, value, zone, err := postman.DKIMRecord(strings.ToLower(*domain), k)
		if err != nil {
			return err
		}
		records = append(records, record{name, value, zone})
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(records)
	}
	fmt.Fprintln(e.stdout, "Publish these DNS TXT records; Tidings signs with the new keys from now on:")
	for _, r := range records {
		fmt.Fprintf(e.stdout, "\n%s\n", r.Zone)
	}
	return nil
}
