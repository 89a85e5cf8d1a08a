package sqlstore_test

import (
	"context"
	"fmt"
	"testing"

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
			acc := tidings.Account{Name: "Bench", ContactEmail: "b@bench.example"}
			s.CreateAccount(ctx, &acc)
			l := tidings.NewList("bench")
			s.CreateList(ctx, acc.ID, &l)
			i := 0
			for b.Loop() {
				sub := tidings.Subscriber{Email: tidings.MustParseAddress(fmt.Sprintf("user%d@bench.example", i)), Name: "Bench User",
					Attributes: tidings.Attributes{"plan": "pro"}}
				if err := s.CreateSubscriber(ctx, acc.ID, &sub, []int64{l.ID}, tidings.SubConfirmed); err != nil {
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
			acc := tidings.Account{Name: "Bench", ContactEmail: "b@bench.example"}
			s.CreateAccount(ctx, &acc)
			for i := range n {
				sub := tidings.Subscriber{Email: tidings.MustParseAddress(fmt.Sprintf("user%d@bench.example", i))}
				if err := s.CreateSubscriber(ctx, acc.ID, &sub, nil, ""); err != nil {
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
