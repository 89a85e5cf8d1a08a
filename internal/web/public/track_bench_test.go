package public_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tidings/tidings/internal/consent"
	"github.com/tidings/tidings/internal/importer"
	"github.com/tidings/tidings/internal/storetest"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
	"github.com/tidings/tidings/internal/track"
	"github.com/tidings/tidings/internal/web"
)

// BenchmarkTracking drives the open pixel and the click redirect with 64 concurrent
// keep-alive connections over loopback (client and server share the machine), each
// request recording an event in a group commit before it is answered. It reports
// requests per second and the 99th-percentile latency. The load comes from Go's HTTP
// client in the same process, or from wrk with TIDINGS_BENCH_WRK=/usr/bin/wrk.
//
//	go test -run=^$ -bench=Tracking -benchtime=1x ./internal/web/public/
func BenchmarkTracking(b *testing.B) {
	dur := 5 * time.Second
	if v, err := time.ParseDuration(os.Getenv("TIDINGS_BENCH_DURATION")); err == nil {
		dur = v
	}
	for _, engine := range testdb.Engines(b) {
		for _, kind := range []string{"open", "click"} {
			b.Run(string(engine)+"/"+kind, func(b *testing.B) {
				store := testdb.Open(b, engine)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				kr := testdb.Keyring(b)
				acc := tidings.Account{PostalAddress: "1 Example Street, Exampletown", Name: "Bench", ContactEmail: "b@bench.example", TrackingEnabled: true}
				store.CreateAccount(ctx, &acc)
				l := tidings.NewList("l")
				store.CreateList(ctx, acc.ID, &l)
				// A thousand subscribers who received the campaign: a click looks up its
				// delivery (for scanner flags) as it would in production.
				const people = 1000
				var csv strings.Builder
				csv.WriteString("email\n")
				for i := range people {
					fmt.Fprintf(&csv, "reader%d@bench.example\n", i)
				}
				if _, err := importer.Run(ctx, store, nil, strings.NewReader(csv.String()), importer.Options{AccountID: acc.ID, ListID: l.ID,
					Mode: importer.Confirmed, Declaration: tidings.ImportDeclaration{Source: "bench", LawfulBasis: tidings.BasisConsent}}); err != nil {
					b.Fatal(err)
				}
				subs, err := store.ListSubscribers(ctx, acc.ID, tidings.SubscriberFilter{Page: tidings.Page{Limit: people}})
				if err != nil || len(subs) != people {
					b.Fatalf("%d subscribers, %v", len(subs), err)
				}
				// They consented to tracking: events stay personal only for those who did.
				for _, sub := range subs {
					if err := store.SetTrackingConsent(ctx, acc.ID, sub.ID, true, tidings.SourceAdmin, tidings.Evidence{Note: "recorded by the test"}); err != nil {
						b.Fatal(err)
					}
				}
				camp := tidings.Campaign{Name: "c", Subject: "s", FromAddress: "a@bench.example", HTML: "x", Lists: []int64{l.ID}}
				store.CreateCampaign(ctx, acc.ID, &camp)
				if err := store.SetCampaignStatus(ctx, acc.ID, camp.ID, tidings.CampaignSending, ""); err != nil {
					b.Fatal(err)
				}
				storetest.SendAll(b, store, camp.ID)
				paths := make([]string, people)
				for i, sub := range subs {
					link := track.Link{AccountID: acc.ID, CampaignID: camp.ID, SubscriberID: sub.ID, URL: "https://bench.example/article?id=" + strconv.Itoa(i%3)}
					if kind == "open" {
						paths[i] = "/o/" + track.OpenToken(kr, link)
					} else {
						paths[i] = "/c/" + track.ClickToken(kr, link)
					}
				}
				interval := track.DefaultCommitInterval
				if v, err := time.ParseDuration(os.Getenv("TIDINGS_BENCH_COMMIT_INTERVAL")); err == nil {
					interval = v
				}
				events := track.NewWriterInterval(ctx, store, interval)
				// The access log is formatted as in production (tidings serve buffers it
				// before stderr); here the lines are dropped once formatted.
				log := slog.New(slog.NewTextHandler(io.Discard, nil))
				h := web.NewHandler(web.Deps{Store: store, Keys: kr, Consent: &consent.Service{Store: store, Keys: kr}, Events: events, Log: log})
				ln, _ := net.Listen("tcp", "127.0.0.1:0")
				srv := &http.Server{Handler: h}
				go srv.Serve(ln)
				defer srv.Close()
				base := "http://" + ln.Addr().String()
				if wrk := os.Getenv("TIDINGS_BENCH_WRK"); wrk != "" {
					// An external load generator (e.g. /usr/bin/wrk from Debian) costs far
					// less CPU than Go's client, which shares the machine with the server.
					cpu0 := processCPU()
					n := runWrk(b, wrk, base, paths, dur)
					reportServer(b, events, processCPU()-cpu0, n)
					// wrk counts the requests it saw answered; each was committed first.
					if st, _ := store.CampaignStats(ctx, acc.ID, camp.ID); float64(st.Opens+st.Clicks) < n {
						b.Fatalf("%.0f requests answered, %d events stored", n, st.Opens+st.Clicks)
					}
					return
				}
				tr := &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}
				client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
				var mu sync.Mutex
				var lat []time.Duration
				var wg sync.WaitGroup
				b.ResetTimer()
				cpu0 := processCPU()
				stop := time.Now().Add(dur)
				for g := range 64 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						var mine []time.Duration
						for i := g; time.Now().Before(stop); i += 64 {
							t0 := time.Now()
							res, err := client.Get(base + paths[i%people])
							if err != nil {
								b.Error(err)
								return
							}
							io.Copy(io.Discard, res.Body)
							res.Body.Close()
							mine = append(mine, time.Since(t0))
						}
						mu.Lock()
						lat = append(lat, mine...)
						mu.Unlock()
					}()
				}
				wg.Wait()
				b.StopTimer()
				reportServer(b, events, processCPU()-cpu0, float64(len(lat)))
				sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
				b.ReportMetric(float64(len(lat))/dur.Seconds(), "req/s")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
				st, _ := store.CampaignStats(ctx, acc.ID, camp.ID)
				if st.Opens+st.Clicks != int64(len(lat)) {
					b.Fatalf("%d requests answered, %d events stored", len(lat), st.Opens+st.Clicks)
				}
			})
		}
	}
}

// processCPU is the CPU time this process (the server, and Go's client when wrk is not
// used) has used so far. Per request it is a steadier figure than requests per second
// on a machine that others use at the same time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportServer reports the process's CPU time per request and the events per commit.
func reportServer(b *testing.B, w *track.Writer, cpu time.Duration, requests float64) {
	if requests > 0 {
		b.ReportMetric(float64(cpu.Microseconds())/requests, "cpu-us/req")
	}
	if commits, events := w.Stats(); commits > 0 {
		b.ReportMetric(float64(events)/float64(commits), "events/commit")
		q := w.CommitTimes(0.5, 0.99)
		b.ReportMetric(float64(q[0].Microseconds())/1000, "commit-p50-ms")
		b.ReportMetric(float64(q[1].Microseconds())/1000, "commit-p99-ms")
	}
}

// runWrk drives the server with wrk (64 connections; 2 threads, or
// TIDINGS_BENCH_WRK_THREADS), cycling through paths, and reports its requests per second
// and 99th-percentile latency. It returns the number of requests.
func runWrk(b *testing.B, wrk, base string, paths []string, dur time.Duration) float64 {
	script := filepath.Join(b.TempDir(), "paths.lua")
	var lua strings.Builder
	lua.WriteString("local paths = {\n")
	for _, p := range paths {
		fmt.Fprintf(&lua, "  %q,\n", p)
	}
	lua.WriteString("}\nlocal i = 0\nrequest = function()\n  i = i + 1\n  return wrk.format(\"GET\", paths[(i % #paths) + 1])\nend\n")
	os.WriteFile(script, []byte(lua.String()), 0o644)
	threads := "2"
	if v := os.Getenv("TIDINGS_BENCH_WRK_THREADS"); v != "" {
		threads = v
	}
	out, err := exec.Command(wrk, "-t"+threads, "-c64", "-d"+dur.String(), "--latency", "-s", script, base).CombinedOutput()
	if err != nil {
		b.Fatalf("wrk: %v\n%s", err, out)
	}
	rps := regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`).FindSubmatch(out)
	p99 := regexp.MustCompile(`99%\s+([0-9.]+)(us|ms|s)`).FindSubmatch(out)
	if rps == nil || p99 == nil {
		b.Fatalf("cannot read wrk's output:\n%s", out)
	}
	r, _ := strconv.ParseFloat(string(rps[1]), 64)
	l, _ := strconv.ParseFloat(string(p99[1]), 64)
	switch string(p99[2]) {
	case "us":
		l /= 1000
	case "s":
		l *= 1000
	}
	if bytes.Contains(out, []byte("Non-2xx")) {
		b.Fatalf("wrk saw errors:\n%s", out)
	}
	b.ReportMetric(r, "req/s")
	b.ReportMetric(l, "p99-ms")
	n := regexp.MustCompile(`([0-9]+) requests in`).FindSubmatch(out)
	if n == nil {
		b.Fatalf("cannot read wrk's output:\n%s", out)
	}
	total, _ := strconv.ParseFloat(string(n[1]), 64)
	return total
}
