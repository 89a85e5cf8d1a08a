package importer_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/tidings/tidings/internal/importer"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
)

// BenchmarkPersonRights measures access (everything about one person, across accounts)
// and erasure among TIDINGS_BENCH_PEOPLE subscribers (default 1,000,000) spread over 10
// accounts, the person being in 3 of them. Setup imports them, which takes a while.
//
//	go test -run=^$ -bench=PersonRights -benchtime=1x -timeout 30m ./internal/importer/
func BenchmarkPersonRights(b *testing.B) {
	n := 1000000
	if v, err := strconv.Atoi(os.Getenv("TIDINGS_BENCH_PEOPLE")); err == nil && v > 0 {
		n = v
	}
	for _, engine := range testdb.Engines(b) {
		b.Run(string(engine), func(b *testing.B) {
			s := testdb.Open(b, engine)
			ctx := context.Background()
			const accounts = 10
			per := n / accounts
			for a := range accounts {
				acc, l := setup(b, s)
				var csv bytes.Buffer
				csv.WriteString("email,name\n")
				for i := range per {
					fmt.Fprintf(&csv, "p%d-%d@example%d.com,Person %d\n", a, i, i%100, i)
				}
				if a < 3 {
					csv.WriteString("target@example.com,Target\n")
				}
				if _, err := importer.Run(ctx, s, nil, &csv, importer.Options{AccountID: acc.ID, ListID: l.ID, Declaration: decl, Mode: importer.Confirmed}); err != nil {
					b.Fatal(err)
				}
			}
			target := tidings.MustParseAddress("target@example.com")
			var access, erase time.Duration
			for b.Loop() {
				t0 := time.Now()
				recs, err := s.PersonData(ctx, target)
				access = time.Since(t0)
				if err != nil || len(recs) != 3 {
					b.Fatalf("access: %d records, %v", len(recs), err)
				}
				t0 = time.Now()
				er, err := s.ErasePerson(ctx, target, 0)
				erase = time.Since(t0)
				if err != nil || len(er.Accounts) != 3 || !er.KeyDestroyed {
					b.Fatalf("erase: %+v %v", er, err)
				}
			}
			b.ReportMetric(float64(access.Microseconds())/1000, "access-ms")
			b.ReportMetric(float64(erase.Microseconds())/1000, "erase-ms")
			b.ReportMetric(float64(n), "subscribers")
		})
	}
}
