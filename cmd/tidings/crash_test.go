package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tidings/tidings/internal/mail/mailtest"
	"github.com/tidings/tidings/internal/tidings"
)

// buildBinary builds tidings once per test binary run.
func buildBinary(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tidings")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// TestCrashResumesCampaign kills `tidings campaign send` with SIGKILL in the middle of a
// campaign, starts it again, and checks at the SMTP sink that every recipient got the
// campaign, and that the only duplicates are messages that were in flight (sent but not
// yet recorded) when the process died.
func TestCrashResumesCampaign(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and sends a campaign twice")
	}
	const n = 3000
	sink, err := mailtest.Start(false)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	sink.Delay = 2 * time.Millisecond

	c := newCLI(t, "TIDINGS_SMTP_HOST=127.0.0.1", fmt.Sprintf("TIDINGS_SMTP_PORT=%d", sink.Port()), "TIDINGS_SMTP_TLS=none",
		"TIDINGS_SMTP_POOL_SIZE=4", "TIDINGS_TEST_LEASE=1s")
	accountID, listID, _ := setupImport(t, c)
	var csv bytes.Buffer
	csv.WriteString("email\n")
	want := map[string]bool{}
	for i := range n {
		addr := fmt.Sprintf("crash%04d@example.com", i)
		fmt.Fprintln(&csv, addr)
		want[addr] = true
	}
	file := filepath.Join(t.TempDir(), "many.csv")
	os.WriteFile(file, csv.Bytes(), 0o600)
	if code, _, errs := c.run("import", file, "--account", fmt.Sprint(accountID), "--list", fmt.Sprint(listID), "--source", "test", "--basis", "consent"); code != 0 {
		t.Fatal(errs)
	}
	if code, _, errs := c.run("dkim", "generate", "--account", fmt.Sprint(accountID), "--domain", "news.shop.example", "--algorithms", "ed25519"); code != 0 {
		t.Fatal(errs)
	}
	a := openTestApp(t, c)
	camp := tidings.Campaign{Name: "crash", Subject: "Hi", FromAddress: "news@news.shop.example", HTML: "<p>Hello {{.Subscriber.Email}}</p>", Lists: []int64{listID}}
	if err := a.store.CreateCampaign(context.Background(), accountID, &camp); err != nil {
		t.Fatal(err)
	}
	a.Close()

	bin := buildBinary(t)
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "campaign", "send", "--account", fmt.Sprint(accountID), "--id", fmt.Sprint(camp.ID))
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, c.environ...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	first := start()
	deadline := time.Now().Add(30 * time.Second)
	for sink.Count() < n/3 {
		if time.Now().After(deadline) {
			t.Fatal("the campaign did not get going")
		}
		time.Sleep(5 * time.Millisecond)
	}
	first.Process.Signal(syscall.SIGKILL)
	first.Wait()
	atKill := sink.Count()

	second := start()
	done := make(chan error, 1)
	go func() { done <- second.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("resumed send failed: %v", err)
		}
	case <-time.After(90 * time.Second):
		second.Process.Kill()
		t.Fatal("the resumed campaign did not finish")
	}

	got := map[string]int{}
	for _, m := range sink.Messages() {
		for _, to := range m.To {
			got[to]++
		}
	}
	dups := 0
	for addr := range want {
		switch got[addr] {
		case 0:
			t.Errorf("%s was skipped", addr)
		case 1:
		default:
			dups += got[addr] - 1
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d distinct recipients, want %d", len(got), len(want))
	}
	// In flight at the kill: what the workers were sending plus what the recorder had
	// not yet committed (it commits every 50 ms or 500 results).
	t.Logf("killed after %d messages; %d recipients received the campaign twice", atKill, dups)
	if dups > 500+8 {
		t.Errorf("%d duplicates: more than could have been in flight", dups)
	}
	a = openTestApp(t, c)
	defer a.Close()
	p, _ := a.store.CampaignProgress(context.Background(), accountID, camp.ID)
	cc, _ := a.store.GetCampaign(context.Background(), accountID, camp.ID)
	if cc.Status != tidings.CampaignSent || p.Sent != int64(len(want)) || p.Remaining != 0 {
		t.Errorf("after resuming: %s %+v", cc.Status, p)
	}
	if strings.Contains(fmt.Sprint(p), "@") {
		t.Error("progress leaks addresses")
	}
}
