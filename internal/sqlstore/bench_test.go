package sqlstore_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
)

// Run with:
//
//	TIDINGS_TEST_POSTGRES_URL=postgres://… go test -run=^$ -bench=Subscriber -benchmem ./internal/sqlstore/
//
// Each CreateSubscriber is one transaction (person lookup or creation with a fresh data
// key, sealed fields, subscriptions); bulk import has its own batched path.
func BenchmarkSubscriberInsert(b *testing.B) {
	for _, engine := range testdb.Engines(b) {
		b.Run(string(engine), func(b *testing.B) {
			s := testdb.Open(b, engine)
			ctx := context.Background()
			acc := tidings.Account{PostalAddress: "1 Example Street, Exampletown", Name: "Bench", ContactEmail: "b@bench.example"}
			s.CreateAccount(ctx, &acc)
			l := tidings.NewList("bench")
			s.CreateList(ctx, acc.ID, &l)
			i := 0
			for b.Loop() {
				sub := tidings.Subscriber{Email: tidings.MustParseAddress(fmt.Sprintf("user%d@bench.example", i)), Name: "Bench User",
					Attributes: tidings.Attributes{"plan": "pro"}}
				if err := s.CreateSubscriber(ctx, acc.ID, &sub, []int64{l.ID}, tidings.SubConfirmed, nil); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "inserts/s")
		})
	}
}

// BenchmarkSubscriberLookup finds one subscriber by address (keyed hash → index) among
// 20,000 and decrypts it.
func BenchmarkSubscriberLookup(b *testing.B) {
	const n = 20000
	for _, engine := range testdb.Engines(b) {
		b.Run(string(engine), func(b *testing.B) {
			s := testdb.Open(b, engine)
			ctx := context.Background()
			acc := tidings.Account{PostalAddress: "1 Example Street, Exampletown", Name: "Bench", ContactEmail: "b@bench.example"}
			s.CreateAccount(ctx, &acc)
			for i := range n {
				sub := tidings.Subscriber{Email: tidings.MustParseAddress(fmt.Sprintf("user%d@bench.example", i))}
				if err := s.CreateSubscriber(ctx, acc.ID, &sub, nil, "", nil); err != nil {
					b.Fatal(err)
				}
			}
			i := 0
			for b.Loop() {
				addr := tidings.MustParseAddress(fmt.Sprintf("user%d@bench.example", (i*7919)%n))
				got, err := s.ListSubscribers(ctx, acc.ID, tidings.SubscriberFilter{Email: addr})
				if err != nil || len(got) != 1 {
					b.Fatalf("lookup %s: %v %d", addr, err, len(got))
				}
				i++
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
		})
	}
}

// BenchmarkRecordEvents records groups of opens and clicks the way the tracking writer
// does (one transaction per group) and reports events per second.
//
//	go test -run=^$ -bench=RecordEvents ./internal/sqlstore/
func BenchmarkRecordEvents(b *testing.B) {
	for _, engine := range testdb.Engines(b) {
		for _, size := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("%s/%d", engine, size), func(b *testing.B) {
				s := testdb.Open(b, engine)
				ctx := context.Background()
				acc := tidings.Account{PostalAddress: "1 Example Street, Exampletown", Name: "Bench", ContactEmail: "b@bench.example", TrackingEnabled: true}
				s.CreateAccount(ctx, &acc)
				l := tidings.NewList("bench")
				s.CreateList(ctx, acc.ID, &l)
				camp := tidings.Campaign{Name: "c", Subject: "s", FromAddress: "a@bench.example", HTML: "x", Lists: []int64{l.ID}}
				s.CreateCampaign(ctx, acc.ID, &camp)
				group := make([]tidings.Event, size)
				i := 0
				for b.Loop() {
					for j := range group {
						kind := tidings.EventOpen
						if i%2 == 1 {
							kind = tidings.EventClick
						}
						group[j] = tidings.Event{AccountID: acc.ID, CampaignID: camp.ID, SubscriberID: int64(i%1000 + 1), Kind: kind,
							URL: fmt.Sprintf("https://bench.example/%d", i%3), Time: time.Now()}
						i++
					}
					if err := s.RecordEvents(ctx, group); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}

// BenchmarkImportWrites measures the floor under the bulk import: its inserts alone,
// with every batch prepared beforehand (sqlstore.ImportWrites), for rows like
// BenchmarkImport's in internal/importer. rows/s is the most an import can reach on this
// engine and machine however cheap its preparation gets. TIDINGS_BENCH_ROWS sets the
// count (100,000 by default; 1000000 for the target).
//
//	TIDINGS_BENCH_ROWS=1000000 go test -run=^$ -bench=ImportWrites -benchtime=1x -timeout 30m ./internal/sqlstore/
func BenchmarkImportWrites(b *testing.B) {
	rows := 100000
	if n, err := strconv.Atoi(os.Getenv("TIDINGS_BENCH_ROWS")); err == nil && n > 0 {
		rows = n
	}
	var batches [][]tidings.ImportRow
	for i := 0; i < rows; i += 1000 {
		var batch []tidings.ImportRow
		for j := i; j < min(i+1000, rows); j++ {
			batch = append(batch, tidings.ImportRow{Row: j + 2, Email: tidings.MustParseAddress(fmt.Sprintf("user%d@example%d.com", j, j%1000)),
				Name: fmt.Sprintf("User %d", j), Attributes: tidings.Attributes{"city": fmt.Sprintf("City %d", j%50), "plan": "pro"}})
		}
		batches = append(batches, batch)
	}
	decl := tidings.ImportDeclaration{Source: "benchmark", LawfulBasis: tidings.BasisConsent}
	for _, engine := range testdb.Engines(b) {
		b.Run(string(engine), func(b *testing.B) {
			s := testdb.Open(b, engine)
			ctx := context.Background()
			acc := tidings.Account{PostalAddress: "1 Example Street, Exampletown", Name: "Bench", ContactEmail: "b@bench.example"}
			if err := s.CreateAccount(ctx, &acc); err != nil {
				b.Fatal(err)
			}
			var spent time.Duration
			for b.Loop() {
				l := tidings.NewList(fmt.Sprint("bench ", b.N))
				if err := s.CreateList(ctx, acc.ID, &l); err != nil {
					b.Fatal(err)
				}
				d, err := s.ImportWrites(ctx, acc.ID, l.ID, decl, batches)
				if err != nil {
					b.Fatal(err)
				}
				spent += d
			}
			b.ReportMetric(float64(rows*b.N)/spent.Seconds(), "rows/s")
		})
	}
}
