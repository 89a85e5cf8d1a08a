// Command tidings is the Tidings server and its command-line tools. It is the only
// package that reads flags and the environment and wires the parts together.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// env is what a command sees of its process: arguments, streams and environment.
// Tests run commands in-process with their own env.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	environ        []string
}

func (e env) lookup(key string) (string, bool) {
	for i := len(e.environ) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(e.environ[i], "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

type command struct {
	summary string
	run     func(ctx context.Context, e env, args []string) error
}

var commands = map[string]command{
	"serve":     {"start the HTTP server (applies migrations first)", cmdServe},
	"migrate":   {"apply database migrations and exit", cmdMigrate},
	"config":    {"print the effective configuration, secrets redacted", cmdConfig},
	"account":   {"manage account holders: account create|list", cmdAccount},
	"token":     {"manage API tokens: token create", cmdToken},
	"dkim":      {"DKIM keys: dkim generate --account ID --domain D", cmdDKIM},
	"domain":    {"sending domains: domain check|remove --account ID --domain D | domain move --domain D --to ID", cmdDomain},
	"ledger":    {"consent ledger: ledger verify [--account ID]", cmdLedger},
	"retention": {"apply retention rules now: retention run [--dry-run]", cmdRetention},
	"campaign":  {"send a campaign in the foreground, or show progress: campaign send|status --account ID --id ID", cmdCampaign},
	"dsar":      {"data-subject requests: dsar export --email A | dsar erase --email A [--account ID]", cmdDSAR},
	"import":    {"import a CSV: import FILE --account ID --list ID --source S --basis B", cmdImport},
	"backup":    {"copy the data or the key store while running: backup --data FILE | backup --keys FILE", cmdBackup},
	"version": {"print the version", func(_ context.Context, e env, _ []string) error {
		fmt.Fprintln(e.stdout, "tidings", version)
		return nil
	}},
}

var version = "dev"

// errUsage marks errors caused by how the command was called (exit status 2).
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], env{os.Stdin, os.Stdout, os.Stderr, os.Environ()}))
}

func run(ctx context.Context, args []string, e env) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(e.stderr)
		return 2
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(e.stderr, "tidings: unknown command %q\n\n", args[0])
		usage(e.stderr)
		return 2
	}
	if err := cmd.run(ctx, e, args[1:]); err != nil {
		fmt.Fprintf(e.stderr, "tidings %s: %v\n", args[0], err)
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	return 0
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: tidings <command> [flags]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'tidings <command> -h' for the flags of a command. Every flag can also be set\nwith a TIDINGS_* environment variable or in a TOML file given by --config.")
}
