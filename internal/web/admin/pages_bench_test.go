package admin_test

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/tidings/tidings/internal/importer"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
)

// BenchmarkAdminPages fills account A with TIDINGS_BENCH_PEOPLE subscribers (default
// 1,000,000) on one list, signs an owner in, and times every admin page a person opens
// all day, through HTTP like a browser. It reports the median and slowest of 5 loads of
// each page in milliseconds, on standard output (benchmark logs are cut after ten lines) (target: < 200 ms at a million subscribers). Generation
// takes about a minute on SQLite.
//
//	go test -run=^$ -bench=AdminPages -benchtime=1x -timeout 30m ./internal/web/admin/
func BenchmarkAdminPages(b *testing.B) {
	people := 1000000
	if v, err := strconv.Atoi(os.Getenv("TIDINGS_BENCH_PEOPLE")); err == nil && v > 0 {
		people = v
	}
	for _, engine := range testdb.Engines(b) {
		b.Run(string(engine), func(b *testing.B) {
			store := testdb.Open(b, engine)
			e := newEnvWith(b, store)
			l := tidings.NewList("Everyone")
			if err := store.CreateList(ctx, e.a.ID, &l); err != nil {
				b.Fatal(err)
			}
			var csv bytes.Buffer
			csv.WriteString("email,name,city\n")
			for i := range people {
				fmt.Fprintf(&csv, "u%d@example%d.com,User %d,City %d\n", i, i%1000, i, i%50)
			}
			start := time.Now()
			if _, err := importer.Run(ctx, store, nil, &csv, importer.Options{AccountID: e.a.ID, ListID: l.ID, Mode: importer.Confirmed,
				Declaration: tidings.ImportDeclaration{Source: "bench", LawfulBasis: tidings.BasisConsent}}); err != nil {
				b.Fatal(err)
			}
			fmt.Printf("%s: %d subscribers generated in %v\n", engine, people, time.Since(start).Round(time.Second))
			c := tidings.Campaign{Name: "Big one", Subject: "s", FromAddress: "news@tidings.example", HTML: "<p>x</p>", Lists: []int64{l.ID}}
			store.CreateCampaign(ctx, e.a.ID, &c)
			subs, _ := store.ListSubscribers(ctx, e.a.ID, tidings.SubscriberFilter{Page: tidings.Page{After: int64(people / 2), Limit: 1}})
			owner := e.login(e.user(e.a.ID, tidings.RoleOwner, false))
			a := "/admin/a/" + itoa(e.a.ID)
			pages := []string{
				a + "/", a + "/lists", a + "/lists/" + itoa(l.ID),
				a + "/subscribers", a + "/subscribers?status=active", a + "/subscribers?list=" + itoa(l.ID),
				a + "/subscribers?after=" + itoa(int64(people-100)), a + "/subscribers?email=u123456%40example456.com",
				a + "/campaigns", a + "/campaigns/" + itoa(c.ID), a + "/dsar", a + "/audit",
			}
			if len(subs) == 1 {
				pages = append(pages, a+"/subscribers/"+itoa(subs[0].ID))
			}
			b.ResetTimer()
			for _, p := range pages {
				var took []time.Duration
				status := 0
				for range 5 {
					t0 := time.Now()
					res := owner.get(p)
					took = append(took, time.Since(t0))
					status = res.status
				}
				sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
				if status != http.StatusOK {
					fmt.Printf("%-8s %-60s status %d (not measured)\n", engine, p, status)
					continue
				}
				fmt.Printf("%-8s %-60s median %6.1f ms   max %6.1f ms\n", engine, p, ms(took[2]), ms(took[4]))
			}
		})
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
