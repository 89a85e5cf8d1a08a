package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/tidings/tidings/internal/config"
	"github.com/tidings/tidings/internal/keys"
	"github.com/tidings/tidings/internal/tidings"
)

func cmdAccount(ctx context.Context, e env, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: account create|list", errUsage)
	}
	switch args[0] {
	case "create":
		return accountCreate(ctx, e, args[1:])
	case "list":
		return accountList(ctx, e, args[1:])
	}
	return fmt.Errorf("%w: unknown subcommand %q (want create or list)", errUsage, args[0])
}

func accountCreate(ctx context.Context, e env, args []string) error {
	fs, load := newFlags("account create", e)
	var acc tidings.Account
	fs.StringVar(&acc.Name, "name", "", "the controller's legal name (required)")
	fs.StringVar(&acc.ContactEmail, "contact-email", "", "the controller's contact address (required)")
	fs.StringVar(&acc.PostalAddress, "postal-address", "", "the controller's postal address, shown in every mail")
	fs.StringVar(&acc.PrivacyPolicyURL, "privacy-policy-url", "", "URL of the controller's privacy policy")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	a, err := openLoaded(ctx, e, load)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.store.CreateAccount(ctx, &acc); err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(acc)
	}
	fmt.Fprintf(e.stdout, "created account %d (%s)\n", acc.ID, acc.Name)
	return nil
}

func accountList(ctx context.Context, e env, args []string) error {
	fs, load := newFlags("account list", e)
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	a, err := openLoaded(ctx, e, load)
	if err != nil {
		return err
	}
	defer a.Close()
	var all []tidings.Account
	for p := (tidings.Page{Limit: tidings.MaxPageSize}); ; {
		page, err := a.store.ListAccounts(ctx, p)
		if err != nil {
			return err
		}
		all = append(all, page...)
		if len(page) < p.Limit {
			break
		}
		p.After = page[len(page)-1].ID
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(all)
	}
	for _, acc := range all {
		fmt.Fprintf(e.stdout, "%d\t%s\n", acc.ID, acc.Name)
	}
	return nil
}

func cmdToken(ctx context.Context, e env, args []string) error {
	if len(args) == 0 || args[0] != "create" {
		return fmt.Errorf("%w: token create --account ID | --operator", errUsage)
	}
	fs, load := newFlags("token create", e)
	account := fs.String("account", "", "ID of the account the token acts for")
	operator := fs.Bool("operator", false, "create a platform-wide operator token instead (manages accounts)")
	name := fs.String("name", "", "a name to recognise the token by")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	var accountID int64
	switch {
	case *operator && *account != "":
		return fmt.Errorf("%w: give either --account or --operator, not both", errUsage)
	case !*operator:
		id, err := strconv.ParseInt(*account, 10, 64)
		if err != nil || id <= 0 {
			return fmt.Errorf("%w: --account must be an account ID (a positive number), got %q", errUsage, *account)
		}
		accountID = id
	}
	a, err := openLoaded(ctx, e, load)
	if err != nil {
		return err
	}
	defer a.Close()
	if accountID != 0 {
		if _, err := a.store.GetAccount(ctx, accountID); err != nil {
			return fmt.Errorf("account %d: %w", accountID, err)
		}
	}
	secret, hash := keys.NewSecretToken("tid_")
	tok := tidings.APIToken{AccountID: accountID, Name: *name, Prefix: secret[:8]}
	if err := a.store.CreateToken(ctx, &tok, hash); err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(struct {
			tidings.APIToken
			Token string `json:"token"`
		}{tok, secret})
	}
	fmt.Fprintf(e.stdout, "%s\n\nThis is the only time the token is shown; store it now.\n", secret)
	return nil
}

// openLoaded loads the configuration with load and opens the app.
func openLoaded(ctx context.Context, e env, load func() (config.Config, error)) (*app, error) {
	cfg, err := load()
	if err != nil {
		return nil, err
	}
	return openApp(ctx, cfg, e)
}
