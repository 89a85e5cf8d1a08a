package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidings/tidings/internal/consent"
	"github.com/tidings/tidings/internal/tidings"
)

// TestBackupAfterErasure: a data backup taken before an erasure, restored beside the key
// store as it is after the erasure, holds the erased person's rows but cannot open them;
// everyone else's data comes back whole.
func TestBackupAfterErasure(t *testing.T) {
	dir := t.TempDir()
	c := newCLI(t, "TIDINGS_DATA_DIR="+dir)
	a := openTestApp(t, c)
	ctx := context.Background()
	acc := tidings.Account{PostalAddress: "1 Example Street, Exampletown", Name: "Club", ContactEmail: "dpo@club.example"}
	if err := a.store.CreateAccount(ctx, &acc); err != nil {
		t.Fatal(err)
	}
	l := tidings.NewList("News")
	a.store.CreateList(ctx, acc.ID, &l)
	text, _ := a.consent.CurrentText(ctx, acc)
	for _, who := range []string{"erased@backup.example", "kept@backup.example"} {
		if _, err := a.consent.Subscribe(ctx, consent.SubscribeRequest{AccountID: acc.ID, Lists: []int64{l.ID}, Email: who,
			Name: "Name of " + who, TextVersion: text.Version, Source: tidings.SourceForm, Evidence: tidings.Evidence{IP: "198.51.100.9"}}); err != nil {
			t.Fatal(err)
		}
	}
	a.Close()

	backup := filepath.Join(t.TempDir(), "data.db")
	if code, out, errs := c.run("backup", "--data", backup); code != 0 || !strings.Contains(out, "written") {
		t.Fatalf("backup: %d %s %s", code, out, errs)
	}
	if code, _, _ := c.run("backup"); code != 2 {
		t.Fatal("backup without --data or --keys must be a usage error")
	}
	if code, out, _ := c.run("dsar", "erase", "--email", "erased@backup.example"); code != 0 || !strings.Contains(out, "data key destroyed: true") {
		t.Fatalf("erase: %s", out)
	}
	keys := filepath.Join(t.TempDir(), "keys.db")
	if code, _, errs := c.run("backup", "--keys", keys); code != 0 {
		t.Fatalf("key backup: %s", errs)
	}

	// Restore: the old data, today's keys, the instance secret.
	restored := t.TempDir()
	for from, to := range map[string]string{backup: "tidings.db", keys: "tidings.keys.db", filepath.Join(dir, "secret.key"): "secret.key"} {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(restored, to), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r := newCLI(t, "TIDINGS_DATA_DIR="+restored)
	code, out, errs := r.run("dsar", "export", "--email", "erased@backup.example")
	if code != 0 || strings.Contains(out, "Name of") || strings.Contains(out, "198.51.100.9") {
		t.Fatalf("the erased person from the old backup: %d\n%s\n%s", code, out, errs)
	}
	code, out, _ = r.run("dsar", "export", "--email", "kept@backup.example")
	if code != 0 || !strings.Contains(out, "Name of kept@backup.example") || !strings.Contains(out, "198.51.100.9") {
		t.Fatalf("the bystander from the old backup:\n%s", out)
	}
}
