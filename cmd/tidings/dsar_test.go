package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidings/tidings/internal/consent"
	"github.com/tidings/tidings/internal/tidings"
)

// TestDSARExportAndErase: a person subscribed to two accounts (confirmation mails in the
// outbox) is exported with exactly their data, erased in one account, then everywhere;
// afterwards neither the database files, nor the outbox, nor the logs contain the address.
func TestDSARExportAndErase(t *testing.T) {
	dir := t.TempDir()
	var logs bytes.Buffer
	c := newCLI(t, "TIDINGS_DATA_DIR="+dir, "TIDINGS_LOG_FORMAT=json")
	const person = "erase.me@rights.example"
	a := openTestApp(t, c)
	a.log = newLogger(a.cfg, &logs)
	a.consent.Log = a.log
	ctx := context.Background()
	var accounts []tidings.Account
	for _, name := range []string{"Club", "Shop"} {
		acc := tidings.Account{PostalAddress: "1 Example Street, Exampletown", Name: name, ContactEmail: "dpo@" + strings.ToLower(name) + ".example"}
		if err := a.store.CreateAccount(ctx, &acc); err != nil {
			t.Fatal(err)
		}
		l := tidings.NewList(name + " news")
		a.store.CreateList(ctx, acc.ID, &l)
		text, _ := a.consent.CurrentText(ctx, acc)
		for _, who := range []string{person, "bystander@rights.example"} {
			if _, err := a.consent.Subscribe(ctx, consent.SubscribeRequest{AccountID: acc.ID, Lists: []int64{l.ID}, Email: who,
				Name: "Erin", TextVersion: text.Version, Source: tidings.SourceForm, Evidence: tidings.Evidence{IP: "203.0.113.7", UserAgent: "UA"}}); err != nil {
				t.Fatal(err)
			}
		}
		accounts = append(accounts, acc)
	}
	a.Close()

	code, out, errs := c.run("dsar", "export", "--email", "Erase.Me@rights.example")
	if code != 0 {
		t.Fatal(errs)
	}
	var export struct {
		Accounts []tidings.PersonRecord
	}
	if err := json.Unmarshal([]byte(out), &export); err != nil || len(export.Accounts) != 2 {
		t.Fatalf("export: %v\n%s", err, out)
	}
	if strings.Contains(out, "bystander") || !strings.Contains(out, "203.0.113.7") || !strings.Contains(out, "Shop") {
		t.Fatalf("export holds someone else's data or misses evidence:\n%s", out)
	}
	code, out, _ = c.run("dsar", "export", "--email", person, "--format", "csv")
	if code != 0 || !strings.Contains(out, "Club,subscriber,email,erase.me@rights.example") || strings.Contains(out, "bystander") {
		t.Fatalf("csv export:\n%s", out)
	}

	code, out, _ = c.run("dsar", "erase", "--email", person, "--account", fmt.Sprint(accounts[0].ID))
	if code != 0 || !strings.Contains(out, "erased in 1 account(s); data key destroyed: false") {
		t.Fatalf("erase in one account: %s", out)
	}
	_, out, _ = c.run("dsar", "export", "--email", person)
	if strings.Contains(out, `"Club"`) || !strings.Contains(out, `"Shop"`) {
		t.Fatalf("after erasing in Club:\n%s", out)
	}
	code, out, errs = c.run("dsar", "erase", "--email", person)
	if code != 0 || !strings.Contains(out, "data key destroyed: true") || !strings.Contains(out, "outbox messages deleted: 2") {
		t.Fatalf("erase everywhere: %s %s", out, errs)
	}
	if code, out, _ := c.run("ledger", "verify"); code != 0 {
		t.Fatalf("ledger after erasure: %s", out)
	}

	// Nothing is left in clear: database, WAL, outbox, logs.
	needle := []byte("erase.me")
	filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, _ := os.ReadFile(path)
		if bytes.Contains(b, needle) {
			t.Errorf("%s still contains the address", path)
		}
		return nil
	})
	if bytes.Contains(logs.Bytes(), needle) {
		t.Error("the logs contain the address")
	}
	// The bystander is untouched.
	_, out, _ = c.run("dsar", "export", "--email", "bystander@rights.example")
	if strings.Count(out, `"subscriber"`) != 2 {
		t.Fatalf("the bystander lost data:\n%s", out)
	}
}
