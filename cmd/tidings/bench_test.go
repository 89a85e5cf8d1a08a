package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tidings/tidings/internal/mail/mailtest"
	"github.com/tidings/tidings/internal/tidings"
)

// BenchmarkCampaignProcess sends a campaign to N recipients (TIDINGS_BENCH_RECIPIENTS,
// default 100,000; the ~5 KB personalised body of internal/send's benchmark, unsigned)
// with `tidings campaign send`, a process of its own that sends as the server does, into
// an SMTP sink in this process. It reports that process's peak resident memory and its
// send rate, start-up and planning included. The recipients are imported beforehand by
// this process, so nothing of the import counts.
//
//	TIDINGS_BENCH_RECIPIENTS=1000000 go test -run=^$ -bench=CampaignProcess -benchtime=1x -timeout 30m ./cmd/tidings/
func BenchmarkCampaignProcess(b *testing.B) {
	n := 100000
	if v, err := strconv.Atoi(os.Getenv("TIDINGS_BENCH_RECIPIENTS")); err == nil && v > 0 {
		n = v
	}
	sink, err := mailtest.Start(true)
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	c := newCLI(b, "TIDINGS_SMTP_HOST=127.0.0.1", fmt.Sprintf("TIDINGS_SMTP_PORT=%d", sink.Port()), "TIDINGS_SMTP_TLS=none",
		"TIDINGS_SMTP_POOL_SIZE=16", "TIDINGS_SEND_WORKERS=16")
	accountID, listID, _ := setupImport(b, c)
	file := filepath.Join(b.TempDir(), "recipients.csv")
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	w.WriteString("email,name,city\n")
	for i := range n {
		fmt.Fprintf(w, "reader%d@example%d.com,Reader %d,City %d\n", i, i%500, i, i%40)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	if code, _, errs := c.run("import", file, "--account", fmt.Sprint(accountID), "--list", fmt.Sprint(listID), "--source", "bench", "--basis", "consent"); code != 0 {
		b.Fatal(errs)
	}
	a := openTestApp(b, c)
	camp := tidings.Campaign{Name: "bench", Subject: "News for {{.Subscriber.Name}}", FromAddress: "news@shop.example",
		HTML: mailtest.NewsletterHTML(), Lists: []int64{listID}}
	if err := a.store.CreateCampaign(context.Background(), accountID, &camp); err != nil {
		b.Fatal(err)
	}
	a.Close()
	bin := buildBinary(b)

	var peakKiB int64
	for b.Loop() {
		cmd := exec.Command(bin, "campaign", "send", "--account", fmt.Sprint(accountID), "--id", fmt.Sprint(camp.ID))
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, c.environ...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		start := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		// The kernel's own peak for the child (rusage) also counts this process, whose
		// memory the child shared until its exec; the child's VmHWM does not, and it
		// only grows, so its last reading is the peak up to the last 20 ms.
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
	wait:
		for {
			select {
			case err := <-done:
				if err != nil {
					b.Fatalf("campaign send: %v\n%s", err, out.String())
				}
				break wait
			case <-time.After(20 * time.Millisecond):
				if kib := vmHWM(status); kib > peakKiB {
					peakKiB = kib
				}
			}
		}
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "msgs/s")
	}
	if got := sink.Count(); got != int64(n) {
		b.Fatalf("the sink received %d messages, want %d", got, n)
	}
	b.ReportMetric(float64(peakKiB)/1024, "peakRSS-MB")
}

// vmHWM reads a process's peak resident memory in KiB from its /proc status file, or 0.
func vmHWM(status string) int64 {
	st, err := os.ReadFile(status)
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(st)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kib, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kib
		}
	}
	return 0
}
