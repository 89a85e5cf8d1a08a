package sqlstore_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/tidings/tidings/internal/importer"
	"github.com/tidings/tidings/internal/sqlstore"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkDashboards generates TIDINGS_BENCH_PEOPLE subscribers (default 1,000,000) on
// one list and TIDINGS_BENCH_EVENTS tracking events (default 10,000,000) on one campaign,
// then times what dashboard and list pages read. Generation takes minutes; the figures
// are the milliseconds of each read.
//
//	go test -run=^$ -bench=Dashboards -benchtime=1x -timeout 60m ./internal/sqlstore/
func BenchmarkDashboards(b *testing.B) {
	people := envInt("TIDINGS_BENCH_PEOPLE", 1000000)
	events := envInt("TIDINGS_BENCH_EVENTS", 10000000)
	for _, engine := range testdb.Engines(b) {
		b.Run(string(engine), func(b *testing.B) {
			s := testdb.Open(b, engine)
			ctx := context.Background()
			acc := tidings.Account{PostalAddress: "1 Example Street, Exampletown", Name: "Big", ContactEmail: "dpo@big.example", TrackingEnabled: true}
			s.CreateAccount(ctx, &acc)
			l := tidings.NewList("Everyone")
			s.CreateList(ctx, acc.ID, &l)
			var csv bytes.Buffer
			csv.WriteString("email,name,city\n")
			for i := range people {
				fmt.Fprintf(&csv, "u%d@example%d.com,User %d,City %d\n", i, i%1000, i, i%50)
			}
			if _, err := importer.Run(ctx, s, nil, &csv, importer.Options{AccountID: acc.ID, ListID: l.ID, Mode: importer.Confirmed,
				Declaration: tidings.ImportDeclaration{Source: "bench", LawfulBasis: tidings.BasisConsent}}); err != nil {
				b.Fatal(err)
			}
			camp := tidings.Campaign{Name: "Big one", Subject: "s", FromAddress: "a@big.example", HTML: "x", Lists: []int64{l.ID}}
			s.CreateCampaign(ctx, acc.ID, &camp)
			generateEvents(b, s, acc.ID, camp.ID, people, events)

			reads := []struct {
				name string
				fn   func() error
			}{
				{"campaign-stats", func() error { _, err := s.CampaignStats(ctx, acc.ID, camp.ID); return err }},
				{"campaign-daily", func() error { _, err := s.CampaignDaily(ctx, acc.ID, camp.ID); return err }},
				{"list-stats", func() error { _, err := s.ListStats(ctx, acc.ID, l.ID); return err }},
				{"subscribers-first-page", func() error {
					_, err := s.ListSubscribers(ctx, acc.ID, tidings.SubscriberFilter{ListID: l.ID})
					return err
				}},
				{"subscribers-deep-page", func() error {
					_, err := s.ListSubscribers(ctx, acc.ID, tidings.SubscriberFilter{Page: tidings.Page{After: int64(people * 9 / 10)}})
					return err
				}},
				{"subscriber-by-address", func() error {
					_, err := s.ListSubscribers(ctx, acc.ID, tidings.SubscriberFilter{Email: tidings.MustParseAddress("u777@example777.com")})
					return err
				}},
			}
			worst := map[string]time.Duration{}
			for b.Loop() {
				for _, r := range reads {
					t0 := time.Now()
					if err := r.fn(); err != nil {
						b.Fatalf("%s: %v", r.name, err)
					}
					worst[r.name] = max(worst[r.name], time.Since(t0))
				}
			}
			for _, r := range reads {
				b.ReportMetric(float64(worst[r.name].Microseconds())/1000, r.name+"-ms")
			}
			// The hourly retention sweep of unconfirmed sign-ups, with none to delete: it
			// must not read the million confirmed subscriptions to find that out.
			cutoff := time.Now().Add(-7 * 24 * time.Hour)
			for _, dry := range []bool{true, false} {
				t0 := time.Now()
				if n, err := s.ExpireUnconfirmed(ctx, 0, cutoff, dry); err != nil || n != 0 {
					b.Fatalf("expire unconfirmed (dry run %v): %d, %v", dry, n, err)
				}
				b.ReportMetric(float64(time.Since(t0).Microseconds())/1000, fmt.Sprintf("expire-unconfirmed-dry-%v-ms", dry))
			}
			// Erasing a person deletes their events among the others: the slowest of four.
			// The first erasure is reported apart: its commit to the key store also
			// copies that store's log of the million keys just made into its file (about
			// 100 ms here, 1 ms for each erasure after it).
			var erase time.Duration
			for i := range 5 {
				addr := tidings.MustParseAddress(fmt.Sprintf("u%d@example%d.com", 1000+i, (1000+i)%1000))
				t0 := time.Now()
				if _, err := s.ErasePerson(ctx, addr, 0); err != nil {
					b.Fatalf("erase %s: %v", addr, err)
				}
				if i == 0 {
					b.ReportMetric(float64(time.Since(t0).Microseconds())/1000, "erase-person-first-ms")
					continue
				}
				erase = max(erase, time.Since(t0))
			}
			b.ReportMetric(float64(erase.Microseconds())/1000, "erase-person-ms")
		})
	}
}

// generateEvents writes n events straight into the database (a third personal opens, the
// rest clicks on three links, over 30 days) and fills the counters as the event writer
// would: generating 10M through the HTTP path would take longer than it proves.
func generateEvents(b *testing.B, s *sqlstore.Store, accountID, campaignID int64, people, n int) {
	db := s.DB()
	start := time.Now().Add(-30 * 24 * time.Hour).UnixMicro()
	cols := `(account_id, campaign_id, subscriber_id, kind, url, automated, created_at)`
	expr := fmt.Sprintf(`%d, %d, CASE WHEN n %% 4 = 0 THEN 0 ELSE 1 + n %% %d END,
		CASE WHEN n %% 3 = 0 THEN 'open' ELSE 'click' END,
		CASE WHEN n %% 3 = 0 THEN '' ELSE 'https://big.example/' || (n %% 3) END,
		FALSE, %d + (n %% 30) * 86400000000 + n %% 86400000000`, accountID, campaignID, people, start)
	var q string
	if s.Engine() == sqlstore.Postgres {
		q = `INSERT INTO events ` + cols + ` SELECT ` + expr + ` FROM generate_series(1, ` + strconv.Itoa(n) + `) AS g(n)`
	} else {
		q = `INSERT INTO events ` + cols + ` WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ` + strconv.Itoa(n) + `) SELECT ` + expr + ` FROM g`
	}
	if _, err := db.Exec(q); err != nil {
		b.Fatalf("generate events: %v", err)
	}
	// One delivery per subscriber, all sent, as after the campaign went out.
	if _, err := db.Exec(`INSERT INTO deliveries (campaign_id, subscriber_id, batch_no, status, sent_at)
		SELECT $1, id, 0, 'sent', $2 FROM subscribers WHERE account_id = $3`, campaignID, start, accountID); err != nil {
		b.Fatalf("generate deliveries: %v", err)
	}
	for _, q := range []string{
		`UPDATE campaigns SET status = 'sent', total = (SELECT COUNT(*) FROM deliveries), sent = (SELECT COUNT(*) FROM deliveries)`,
		`INSERT INTO event_uniques (campaign_id, subscriber_id, kind) SELECT DISTINCT campaign_id, subscriber_id, kind FROM events WHERE subscriber_id <> 0`,
		`INSERT INTO campaign_daily (campaign_id, day, kind, n) SELECT campaign_id, created_at / 86400000000, kind, COUNT(*) FROM events GROUP BY 1, 2, 3`,
		`INSERT INTO campaign_links (campaign_id, url, clicks) SELECT campaign_id, url, COUNT(*) FROM events WHERE kind = 'click' GROUP BY 1, 2`,
		`INSERT INTO campaign_stats (campaign_id, opens, anon_opens, clicks, anon_clicks)
			SELECT campaign_id, SUM(CASE WHEN kind = 'open' AND subscriber_id <> 0 THEN 1 ELSE 0 END), SUM(CASE WHEN kind = 'open' AND subscriber_id = 0 THEN 1 ELSE 0 END),
				SUM(CASE WHEN kind = 'click' AND subscriber_id <> 0 THEN 1 ELSE 0 END), SUM(CASE WHEN kind = 'click' AND subscriber_id = 0 THEN 1 ELSE 0 END)
			FROM events GROUP BY campaign_id`,
	} {
		if _, err := db.Exec(q); err != nil {
			b.Fatalf("counters: %v", err)
		}
	}
	if s.Engine() == sqlstore.Postgres {
		db.Exec(`ANALYZE`)
	}
}
