package send_test

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tidings/tidings/internal/importer"
	"github.com/tidings/tidings/internal/mail"
	"github.com/tidings/tidings/internal/mail/mailtest"
	"github.com/tidings/tidings/internal/send"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
)

// BenchmarkCampaign sends one campaign to N recipients (TIDINGS_BENCH_RECIPIENTS,
// default 100,000) into an in-process SMTP sink on loopback: a ~5 KB personalised HTML
// body with 3 links, without DKIM and with RSA-2048 + Ed25519. It reports the sustained
// send rate (with all planning but the first step, which starting the campaign does and
// is reported as plan-s), the process's CPU time per message while sending, and its peak
// RSS while planning and sending (the in-process sink included in both; see the note at
// resetPeakRSS). RSA signs with libcrypto where it loads (TIDINGS_DKIM_LIBCRYPTO=off:
// crypto/rsa); TIDINGS_BENCH_SMTP=host:port sends to an external sink instead.
//
//	TIDINGS_TEST_POSTGRES_URL=… go test -run=^$ -bench=Campaign -benchtime=1x ./internal/send/
func BenchmarkCampaign(b *testing.B) {
	n := 100000
	if v, err := strconv.Atoi(os.Getenv("TIDINGS_BENCH_RECIPIENTS")); err == nil && v > 0 {
		n = v
	}
	var csv bytes.Buffer
	csv.WriteString("email,name,city\n")
	for i := range n {
		fmt.Fprintf(&csv, "reader%d@example%d.com,Reader %d,City %d\n", i, i%500, i, i%40)
	}
	html := mailtest.NewsletterHTML()
	// RSA signs as the server's would: TIDINGS_DKIM_LIBCRYPTO=off for crypto/rsa.
	if lib := os.Getenv("TIDINGS_DKIM_LIBCRYPTO"); lib != "" {
		mail.UseLibcrypto(lib)
	}
	backend, err := mail.RSABackend()
	b.Logf("RSA DKIM: %s (%v); sink: %s", backend, err, cmp.Or(os.Getenv("TIDINGS_BENCH_SMTP"), "in-process go-smtp"))
	for _, engine := range testdb.Engines(b) {
		for _, signed := range []bool{false, true} {
			name := string(engine) + "/no-dkim"
			if signed {
				name = string(engine) + "/rsa+ed25519"
			}
			b.Run(name, func(b *testing.B) {
				store := testdb.Open(b, engine)
				ctx := context.Background()
				f := newFixture(b, store)
				if !signed {
					// A second domain without keys: mail from it goes out unsigned.
					f.campaign.FromAddress = "news@unsigned.shop.example"
				}
				rep, err := importer.Run(ctx, store, nil, bytes.NewReader(csv.Bytes()), importer.Options{AccountID: f.acc.ID, ListID: f.l1.ID,
					Declaration: tidings.ImportDeclaration{Source: "bench", LawfulBasis: tidings.BasisConsent}, Mode: importer.Confirmed})
				if err != nil || rep.Counts[tidings.ImportAdded] != n {
					b.Fatalf("import: %v %v", rep.Counts, err)
				}
				f.campaign.HTML = html
				if err := store.UpdateCampaign(ctx, f.acc.ID, &f.campaign); err != nil {
					b.Fatal(err)
				}
				// The sink: in-process by default; TIDINGS_BENCH_SMTP=host:port points at an
				// external one, e.g. Postfix's `smtp-sink -u nobody 127.0.0.1:2525 1000`.
				host, port := "127.0.0.1", 0
				var sink *mailtest.Sink
				if ext := os.Getenv("TIDINGS_BENCH_SMTP"); ext != "" {
					h, p, _ := strings.Cut(ext, ":")
					host, port = h, atoi(p)
				} else {
					sink, _ = mailtest.Start(true)
					defer sink.Close()
					port = sink.Port()
				}
				pool, _ := mail.NewSMTPPool(mail.SMTPConfig{Host: host, Port: port, TLS: "none", PoolSize: 16})
				defer pool.Close()
				eng := &send.Engine{Store: store, Keys: testdb.Keyring(b), Sender: pool, BaseURL: "https://tidings.example", Workers: 16}
				// Measure the sending, not the data generation and import: the Go heap
				// they left is handed back to the system first. SQLite's memory from the
				// import stays counted (at a million recipients, most of the figure);
				// BenchmarkCampaignProcess in cmd/tidings measures a sending process alone.
				runtime.GC()
				debug.FreeOSMemory()
				resetPeakRSS()
				for b.Loop() {
					planStart := time.Now()
					if err := store.SetCampaignStatus(ctx, f.acc.ID, f.campaign.ID, tidings.CampaignSending, ""); err != nil {
						b.Fatal(err)
					}
					plan := time.Since(planStart)
					start, cpu0 := time.Now(), cpuTime()
					if err := eng.Send(ctx, f.acc.ID, f.campaign.ID); err != nil {
						b.Fatal(err)
					}
					el, cpu := time.Since(start), cpuTime()-cpu0
					if p, _ := store.CampaignProgress(ctx, f.acc.ID, f.campaign.ID); p.Sent != int64(n) || (sink != nil && sink.Count() != int64(n)) {
						b.Fatalf("sent %d of %d", p.Sent, n)
					}
					b.ReportMetric(float64(n)/el.Seconds(), "msgs/s")
					// CPU per message (this process: engine, drivers, in-process sink; not the
					// PostgreSQL server or an external sink) varies far less than the rate
					// when other work shares the machine.
					b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/msg")
					b.ReportMetric(plan.Seconds(), "plan-s")
				}
				b.ReportMetric(float64(peakRSS())/(1<<20), "peakRSS-MB")
			})
		}
	}
}

// resetPeakRSS restarts the kernel's high-water mark of resident memory (Linux).
func resetPeakRSS() { os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS reads the process's high-water resident set size (Linux).
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }
