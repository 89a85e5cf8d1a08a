package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidings/tidings/internal/config"
	"github.com/tidings/tidings/internal/sqlstore"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
)

// openTestApp opens the app the CLI would open for c's environment.
func openTestApp(t testing.TB, c *cli) *app {
	t.Helper()
	lookup := func(k string) (string, bool) { return env{environ: c.environ}.lookup(k) }
	cfg, err := config.Load(config.Sources{Env: lookup, Environ: c.environ})
	if err != nil {
		t.Fatal(err)
	}
	a, err := openApp(context.Background(), cfg, env{stdout: io.Discard, stderr: io.Discard, environ: c.environ})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// dropLedgerGuards drops the triggers that keep the ledger (migration 32) and the
// consent texts (migration 33) append-only, as someone with full access to the database
// could, so that a test can show that verification still catches what is changed then.
func dropLedgerGuards(t testing.TB, a *app) {
	t.Helper()
	for _, tr := range [][2]string{{"ledger_append_only_update", "ledger"}, {"ledger_append_only_delete", "ledger"},
		{"ledger_heads_forward_only", "ledger_heads"}, {"ledger_heads_append_only_delete", "ledger_heads"},
		{"consent_texts_append_only_update", "consent_texts"}, {"consent_texts_append_only_delete", "consent_texts"}} {
		q := "DROP TRIGGER " + tr[0]
		if a.store.Engine() == sqlstore.Postgres {
			q += " ON " + tr[1]
		}
		if _, err := a.store.DB().Exec(q); err != nil {
			t.Fatal(err)
		}
	}
}

// setupImport creates an account and a list and writes a CSV; it returns their IDs and the file.
func setupImport(t testing.TB, c *cli) (accountID, listID int64, file string) {
	t.Helper()
	code, out, errs := c.run("account", "create", "--name", "Shop", "--postal-address", "1 Main St", "--contact-email", "dpo@shop.example", "--json")
	if code != 0 {
		t.Fatal(errs)
	}
	var acc tidings.Account
	json.Unmarshal([]byte(out), &acc)
	a := openTestApp(t, c)
	l := tidings.NewList("News")
	if err := a.store.CreateList(context.Background(), acc.ID, &l); err != nil {
		t.Fatal(err)
	}
	a.Close()
	file = filepath.Join(t.TempDir(), "people.csv")
	os.WriteFile(file, []byte("email,name,city\nann@example.com,Ann,Oslo\nbob@example.com,Bob,Rome\nnope,X,Y\n"), 0o600)
	return acc.ID, l.ID, file
}

// engineCLI is a CLI on a fresh database of engine.
func engineCLI(t *testing.T, engine sqlstore.Engine) *cli {
	return newCLI(t, "TIDINGS_DATABASE_URL="+testdb.URL(t, engine), "TIDINGS_SECRET_KEY=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
}

// TestImportCommandAndLedgerTampering, on both engines (the guards differ).
func TestImportCommandAndLedgerTampering(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) { importAndLedgerTampering(t, engineCLI(t, engine)) })
	}
}

func importAndLedgerTampering(t *testing.T, c *cli) {
	accountID, listID, file := setupImport(t, c)
	ids := []string{"--account", fmt.Sprint(accountID), "--list", fmt.Sprint(listID)}

	code, _, errs := c.run(append([]string{"import", file, "--source", "fair"}, ids...)...)
	if code == 0 || !strings.Contains(errs, "lawful_basis") {
		t.Fatalf("import without a lawful basis: %d %q", code, errs)
	}
	code, out, errs := c.run(append([]string{"import", file, "--source", "book fair", "--basis", "consent"}, ids...)...)
	if code != 0 {
		t.Fatalf("import: %d %s", code, errs)
	}
	if !strings.Contains(out, "3 rows read") || !strings.Contains(out, "added") || !strings.Contains(out, "row 4: invalid") {
		t.Fatalf("import report:\n%s", out)
	}
	code, out, _ = c.run("ledger", "verify")
	if code != 0 || !strings.Contains(out, fmt.Sprintf("account %d: ok, 2 entries", accountID)) {
		t.Fatalf("ledger verify before tampering: %d %s", code, out)
	}

	// Someone with database access rewrites history: entry 1 now claims another list,
	// and the consent text says something else. The database refuses; whoever drops its
	// guards can, and verification catches the ledger's change (a text's, by its SHA-256).
	a := openTestApp(t, c)
	if _, err := a.store.PublishConsentText(context.Background(), accountID, "I agree to the news."); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`UPDATE ledger SET list_id = list_id + 1 WHERE account_id = $1 AND seq = 1`,
		`UPDATE consent_texts SET body = 'I agree to anything.' WHERE account_id = $1`, `DELETE FROM consent_texts WHERE account_id = $1`} {
		if _, err := a.store.DB().Exec(q, accountID); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Fatalf("%s: err = %v, want it refused as append-only", q, err)
		}
	}
	dropLedgerGuards(t, a)
	if _, err := a.store.DB().Exec(`UPDATE consent_texts SET body = 'I agree to anything.' WHERE account_id = $1`, accountID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.store.ConsentText(context.Background(), accountID, 0); !errors.Is(err, tidings.ErrConsentTextAltered) {
		t.Fatalf("reading the rewritten text: %v, want ErrConsentTextAltered", err)
	}
	if _, err := a.store.DB().Exec(`UPDATE ledger SET list_id = list_id + 1 WHERE account_id = $1 AND seq = 1`, accountID); err != nil {
		t.Fatal(err)
	}
	a.Close()
	code, out, errs = c.run("ledger", "verify")
	if code != 1 || !strings.Contains(out, "BROKEN at entry 1") || !strings.Contains(errs, "does not verify") {
		t.Fatalf("ledger verify after tampering: exit %d\n%s\n%s", code, out, errs)
	}

	// Deleting the last entry is caught too.
	a = openTestApp(t, c)
	a.store.DB().Exec(`UPDATE ledger SET list_id = list_id - 1 WHERE account_id = $1 AND seq = 1`, accountID)
	a.store.DB().Exec(`DELETE FROM ledger WHERE account_id = $1 AND seq = 2`, accountID)
	a.Close()
	code, out, _ = c.run("ledger", "verify", "--account", fmt.Sprint(accountID))
	if code != 1 || !strings.Contains(out, "removed from the end") {
		t.Fatalf("truncated ledger: %d %s", code, out)
	}
}

func TestDKIMAndRetentionCommands(t *testing.T) {
	c := newCLI(t)
	code, out, errs := c.run("account", "create", "--name", "Shop", "--postal-address", "1 Main St", "--contact-email", "dpo@shop.example", "--json")
	if code != 0 {
		t.Fatal(errs)
	}
	var acc tidings.Account
	json.Unmarshal([]byte(out), &acc)
	code, out, errs = c.run("dkim", "generate", "--account", fmt.Sprint(acc.ID), "--domain", "news.shop.example", "--selector", "t1")
	if code != 0 {
		t.Fatalf("dkim generate: %d %s", code, errs)
	}
	if !strings.Contains(out, `t1-rsa._domainkey.news.shop.example. IN TXT "v=DKIM1; k=rsa; p=`) ||
		!strings.Contains(out, `t1-ed25519._domainkey.news.shop.example. IN TXT "v=DKIM1; k=ed25519; p=`) {
		t.Fatalf("dkim records:\n%s", out)
	}
	a := openTestApp(t, c)
	ds, err := a.store.SendingDomains(context.Background(), acc.ID)
	a.Close()
	if err != nil || len(ds) != 1 || len(ds[0].Keys) != 2 {
		t.Fatalf("stored domains %+v %v", ds, err)
	}
	// Another account cannot take the domain.
	code, out, _ = c.run("account", "create", "--name", "Other", "--postal-address", "1 Main St", "--contact-email", "dpo@other.example", "--json")
	var other tidings.Account
	if json.Unmarshal([]byte(out), &other); code != 0 || other.ID == 0 {
		t.Fatalf("account create: %d %s", code, out)
	}
	code, out, errs = c.run("dkim", "generate", "--account", fmt.Sprint(other.ID), "--domain", "News.Shop.Example")
	if code != 1 || out != "" || !strings.Contains(errs, "News.Shop.Example is already a sending domain of another account") {
		t.Fatalf("dkim generate for another account's domain: %d %q %q", code, out, errs)
	}
	a = openTestApp(t, c)
	ds, err = a.store.SendingDomains(context.Background(), other.ID)
	a.Close()
	if err != nil || len(ds) != 0 {
		t.Fatalf("the other account holds %+v %v", ds, err)
	}
	if code, _, _ := c.run("dkim", "generate", "--account", fmt.Sprint(acc.ID), "--domain", "x.example", "--algorithms", "dsa"); code != 2 {
		t.Fatalf("unknown algorithm: exit %d", code)
	}
	code, out, _ = c.run("retention", "run", "--dry-run")
	if code != 0 || !strings.Contains(out, "would delete 0") {
		t.Fatalf("retention dry run: %d %s", code, out)
	}
}

// TestImportSendConfirmationBadFile: a file refused for a broken line after the first
// batch mails nobody — the report says nothing was imported, and it must be true.
func TestImportSendConfirmationBadFile(t *testing.T) {
	c := newCLI(t)
	accountID, listID, file := setupImport(t, c)
	var b strings.Builder
	b.WriteString("email\n")
	for i := range 1200 {
		fmt.Fprintf(&b, "person%d@example.com\n", i)
	}
	b.WriteString("\"broken@example.com\n")
	os.WriteFile(file, []byte(b.String()), 0o600)
	code, _, errs := c.run("import", file, "--account", fmt.Sprint(accountID), "--list", fmt.Sprint(listID),
		"--source", "fair", "--basis", "consent", "--mode", "send_confirmation")
	if code == 0 || !strings.Contains(errs, "nothing was imported") {
		t.Fatalf("import of a broken file: %d %q", code, errs)
	}
	a := openTestApp(t, c)
	defer a.Close()
	subs, err := a.store.ListSubscribers(context.Background(), accountID, tidings.SubscriberFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(subs) != 0 {
		t.Fatalf("\"nothing was imported\", but %d people were asked to confirm", len(subs))
	}
}

// TestLedgerVerifyWholeChainRemoved: removing every entry of an account's chain, or its
// head, is a broken ledger, not an empty or unlisted one.
func TestLedgerVerifyWholeChainRemoved(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) { ledgerVerifyWholeChainRemoved(t, engine) })
	}
}

func ledgerVerifyWholeChainRemoved(t *testing.T, engine sqlstore.Engine) {
	c := engineCLI(t, engine)
	accountID, listID, file := setupImport(t, c)
	if code, _, errs := c.run("import", file, "--account", fmt.Sprint(accountID), "--list", fmt.Sprint(listID),
		"--source", "fair", "--basis", "consent"); code != 0 {
		t.Fatalf("import: %d %s", code, errs)
	}
	a := openTestApp(t, c)
	db := a.store.DB()
	if _, err := db.Exec(`DELETE FROM ledger WHERE account_id = $1`, accountID); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Fatalf("deleting the ledger: err = %v, want it refused as append-only", err)
	}
	dropLedgerGuards(t, a)
	if _, err := db.Exec(`DELETE FROM ledger WHERE account_id = $1`, accountID); err != nil {
		t.Fatal(err)
	}
	a.Close()
	code, out, _ := c.run("ledger", "verify")
	if code != 1 || !strings.Contains(out, "BROKEN") {
		t.Fatalf("every entry removed: %d %s", code, out)
	}

	// The other way round: entries left, head removed — the account is still verified.
	c = engineCLI(t, engine)
	accountID, listID, file = setupImport(t, c)
	c.run("import", file, "--account", fmt.Sprint(accountID), "--list", fmt.Sprint(listID), "--source", "fair", "--basis", "consent")
	a = openTestApp(t, c)
	if _, err := a.store.DB().Exec(`DELETE FROM ledger_heads WHERE account_id = $1`, accountID); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Fatalf("deleting the ledger's head: err = %v, want it refused as append-only", err)
	}
	dropLedgerGuards(t, a)
	if _, err := a.store.DB().Exec(`DELETE FROM ledger_heads WHERE account_id = $1`, accountID); err != nil {
		t.Fatal(err)
	}
	a.Close()
	code, out, _ = c.run("ledger", "verify")
	if code != 1 || !strings.Contains(out, fmt.Sprintf("account %d: BROKEN", accountID)) {
		t.Fatalf("head removed: %d %s", code, out)
	}
}
