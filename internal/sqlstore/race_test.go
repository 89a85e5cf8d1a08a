package sqlstore_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tidings/tidings/internal/postman"
	"github.com/tidings/tidings/internal/sqlstore"
	"github.com/tidings/tidings/internal/storetest"
	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
)

// The tests here put two store methods in the order that used to go wrong on
// PostgreSQL (READ COMMITTED, row locks): a test transaction holds a row lock that one
// method needs after it has taken its own, the other method starts, and the lock is let
// go once both are waiting (or the second has finished). SQLite runs one write
// transaction at a time, so these orders cannot happen there.

// holder is a transaction of the test's holding a row lock, and its backend's PID.
type holder struct {
	tx  *sql.Tx
	pid int64
}

func hold(t *testing.T, db *sql.DB, query string, args ...any) *holder {
	t.Helper()
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback() })
	h := &holder{tx: tx}
	if err := tx.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&h.pid); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, query, args...); err != nil {
		t.Fatal(err)
	}
	return h
}

// waiting counts the backends that wait for the holder, directly or behind one that
// does.
func (h *holder) waiting(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	err := db.QueryRowContext(context.Background(), `
		WITH w AS (SELECT pid, pg_blocking_pids(pid) AS by FROM pg_stat_activity WHERE cardinality(pg_blocking_pids(pid)) > 0)
		SELECT COUNT(*) FROM w WHERE $1 = ANY(w.by)
			OR EXISTS (SELECT 1 FROM w w2 WHERE w2.pid = ANY(w.by) AND $1 = ANY(w2.by))`, h.pid).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// await waits until n backends wait for the holder, or done is closed; false after a
// few seconds of neither.
func (h *holder) await(t *testing.T, db *sql.DB, n int, done <-chan struct{}) bool {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		select {
		case <-done:
			return true
		default:
		}
		if h.waiting(t, db) >= n {
			return true
		}
	}
	return false
}

// editHead plays the rest of an edit whose first lock, a subscriber's row, the holder
// took: once the method (done, err) waits for the holder, it takes the account's ledger
// head, the edit's second lock, and commits; the method must then end without error,
// neither finishing before the holder let go nor deadlocking with it.
func (h *holder) editHead(t *testing.T, db *sql.DB, accountID int64, method string, done <-chan struct{}, err *error) {
	t.Helper()
	if !h.await(t, db, 1, done) {
		t.Fatalf("%s neither finished nor waited", method)
	}
	if _, err := h.tx.ExecContext(context.Background(), `UPDATE ledger_heads SET seq = seq WHERE account_id = $1`, accountID); err != nil {
		t.Fatalf("the edit could not take the ledger head: %v", err)
	}
	if err := h.tx.Commit(); err != nil {
		t.Fatal(err)
	}
	<-done
	if *err != nil {
		t.Fatalf("%s: %v", method, *err)
	}
}

// atOnce starts the jobs together and returns their errors, in order, once all end.
func atOnce(jobs []func() error) []error {
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, job := range jobs {
		wg.Go(func() {
			<-start
			errs[i] = job()
		})
	}
	close(start)
	wg.Wait()
	return errs
}

func run(f func() error) (<-chan struct{}, *error) {
	done := make(chan struct{})
	var err error
	go func() {
		defer close(done)
		err = f()
	}()
	return done, &err
}

// sentCampaign makes an account with tracking on, subscribers who consent to it, and a
// campaign sent to them.
func sentCampaign(t *testing.T, s *sqlstore.Store, emails ...string) (tidings.Account, tidings.Campaign, []tidings.Subscriber) {
	t.Helper()
	ctx := context.Background()
	a := tidings.Account{PostalAddress: "1 Example Street, Exampletown", Name: "Club", ContactEmail: "dpo@club.example", TrackingEnabled: true}
	if err := s.CreateAccount(ctx, &a); err != nil {
		t.Fatal(err)
	}
	l := tidings.NewList("news")
	if err := s.CreateList(ctx, a.ID, &l); err != nil {
		t.Fatal(err)
	}
	subs := make([]tidings.Subscriber, len(emails))
	for i, e := range emails {
		subs[i] = tidings.Subscriber{Email: tidings.MustParseAddress(e), TrackingConsent: true}
		if err := s.CreateSubscriber(ctx, a.ID, &subs[i], []int64{l.ID}, tidings.SubConfirmed, &tidings.TrackingGrant{Source: tidings.SourceAdmin, Evidence: tidings.Evidence{Note: "recorded by the test"}}); err != nil {
			t.Fatal(err)
		}
	}
	c := tidings.Campaign{Name: "c", Subject: "s", FromAddress: "a@club.example", HTML: "x", Lists: []int64{l.ID}}
	if err := s.CreateCampaign(ctx, a.ID, &c); err != nil {
		t.Fatal(err)
	}
	if err := s.SetCampaignStatus(ctx, a.ID, c.ID, tidings.CampaignSending, ""); err != nil {
		t.Fatal(err)
	}
	storetest.SendAll(t, s, c.ID)
	return a, c, subs
}

func count(t *testing.T, s *sqlstore.Store, query string, args ...any) int {
	t.Helper()
	var n int
	if err := s.DB().QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestErasureWaitsForEventGroup: an event group found the person's tracking consent and
// is about to write their open when they are erased. The erasure must then delete
// what the group writes (or the group write the open anonymously): no event or
// event_uniques row may name an erased subscriber. The group is held after its consent
// check by a lock on the campaign's counter row.
func TestErasureWaitsForEventGroup(t *testing.T) {
	for _, how := range []string{"erasure", "staff deletion", "inactivity sweep"} {
		t.Run(how, func(t *testing.T) {
			if !postgres(t) {
				return
			}
			s := testdb.Open(t, sqlstore.Postgres)
			ctx := context.Background()
			a, c, subs := sentCampaign(t, s, "gone@club.example", "stays@club.example")
			gone, stays := subs[0], subs[1]
			// The counter row exists, so the group updates it.
			if err := s.RecordEvents(ctx, []tidings.Event{{AccountID: a.ID, CampaignID: c.ID, SubscriberID: stays.ID,
				Kind: tidings.EventOpen, Time: time.Now()}}); err != nil {
				t.Fatal(err)
			}
			if how == "inactivity sweep" {
				// Long quiet, as the sweep wants; the open above is the other person's.
				old := time.Now().AddDate(-2, 0, 0).UnixMicro()
				for _, q := range []string{`UPDATE subscribers SET created_at = $1, updated_at = $1 WHERE id = $2`,
					`UPDATE subscriptions SET created_at = $1, confirmed_at = $1 WHERE subscriber_id = $2`,
					`UPDATE deliveries SET sent_at = $1 WHERE subscriber_id = $2`} {
					if _, err := s.DB().ExecContext(ctx, q, old, gone.ID); err != nil {
						t.Fatal(err)
					}
				}
			}
			h := hold(t, s.DB(), `SELECT 1 FROM campaign_stats WHERE campaign_id = $1 FOR UPDATE`, c.ID)
			groupDone, groupErr := run(func() error {
				return s.RecordEvents(ctx, []tidings.Event{
					{AccountID: a.ID, CampaignID: c.ID, SubscriberID: gone.ID, Kind: tidings.EventOpen, Time: time.Now()},
					{AccountID: a.ID, CampaignID: c.ID, SubscriberID: gone.ID, Kind: tidings.EventClick, URL: "https://club.example/", Time: time.Now()},
				})
			})
			if !h.await(t, s.DB(), 1, groupDone) {
				t.Fatal("the event group never waited for the counter row")
			}
			eraseDone, eraseErr := run(func() error {
				switch how {
				case "erasure":
					_, err := s.ErasePerson(ctx, gone.Email, a.ID)
					return err
				case "staff deletion":
					return s.DeleteSubscriber(ctx, a.ID, gone.ID)
				default:
					n, err := s.DeleteInactive(ctx, a.ID, time.Now().AddDate(-1, 0, 0), false)
					if err == nil && n != 1 {
						err = fmt.Errorf("the sweep deleted %d subscribers, want 1", n)
					}
					return err
				}
			})
			// Either the deletion finishes at once (the group holds nothing it needs) or
			// it waits for the group.
			if !h.await(t, s.DB(), 2, eraseDone) {
				t.Fatal("the deletion neither finished nor waited")
			}
			if err := h.tx.Commit(); err != nil {
				t.Fatal(err)
			}
			<-groupDone
			<-eraseDone
			if *groupErr != nil || *eraseErr != nil {
				t.Fatalf("event group: %v; %s: %v", *groupErr, how, *eraseErr)
			}
			if n := count(t, s, `SELECT COUNT(*) FROM events WHERE subscriber_id = $1`, gone.ID); n != 0 {
				t.Errorf("%d events name the deleted subscriber", n)
			}
			if n := count(t, s, `SELECT COUNT(*) FROM event_uniques WHERE subscriber_id = $1`, gone.ID); n != 0 {
				t.Errorf("%d event_uniques rows name the deleted subscriber", n)
			}
			st, err := s.CampaignStats(ctx, a.ID, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if st.Opens+st.AnonOpens != 2 || st.Clicks+st.AnonClicks != 1 {
				t.Errorf("counters: %d+%d opens, %d+%d clicks; want 2 opens and 1 click", st.Opens, st.AnonOpens, st.Clicks, st.AnonClicks)
			}
		})
	}
}

// TestCampaignDeletedUnderItsRecords: a bounce (or a send's record) arrives for a
// delivery still queued while the campaign is being deleted. Both used to lock the
// delivery, then wait for the campaign row, which the deletion had locked before it
// waited for the delivery: a deadlock (40P01). The campaign is held by a lock of the
// test's (as by another writer of its counters), the deletion queues for it first.
func TestCampaignDeletedUnderItsRecords(t *testing.T) {
	for _, what := range []string{"hard bounce", "complaint", "send record"} {
		t.Run(what, func(t *testing.T) {
			if !postgres(t) {
				return
			}
			s := testdb.Open(t, sqlstore.Postgres)
			ctx := context.Background()
			a, c, subs := sentCampaign(t, s, "bounce@club.example")
			sub := subs[0]
			// The report came before the engine recorded the send.
			if _, err := s.DB().ExecContext(ctx, `UPDATE deliveries SET status = 'queued', sent_at = NULL WHERE campaign_id = $1`, c.ID); err != nil {
				t.Fatal(err)
			}
			batch := count(t, s, `SELECT batch_no FROM deliveries WHERE campaign_id = $1`, c.ID)
			h := hold(t, s.DB(), `SELECT 1 FROM campaigns WHERE id = $1 FOR NO KEY UPDATE`, c.ID)
			delDone, delErr := run(func() error { return s.DeleteCampaign(ctx, a.ID, c.ID) })
			if !h.await(t, s.DB(), 1, delDone) {
				t.Fatal("the deletion never waited for the campaign")
			}
			var res tidings.FeedbackResult
			recDone, recErr := run(func() error {
				var err error
				switch what {
				case "hard bounce":
					res, err = s.RecordFeedback(ctx, tidings.Feedback{AccountID: a.ID, CampaignID: c.ID, SubscriberID: sub.ID,
						Kind: tidings.FeedbackHard, Status: "5.1.1"})
				case "complaint":
					res, err = s.RecordFeedback(ctx, tidings.Feedback{AccountID: a.ID, CampaignID: c.ID, SubscriberID: sub.ID,
						Kind: tidings.FeedbackComplaint})
				default:
					err = s.RecordDeliveries(ctx, c.ID, batch, "n1", []tidings.DeliveryResult{{SubscriberID: sub.ID,
						Status: tidings.DeliverySent, Attempts: 1}}, true)
				}
				return err
			})
			if !h.await(t, s.DB(), 2, recDone) {
				t.Fatal("the record neither finished nor waited")
			}
			if err := h.tx.Commit(); err != nil {
				t.Fatal(err)
			}
			<-delDone
			<-recDone
			if *delErr != nil || (*recErr != nil && !errors.Is(*recErr, tidings.ErrNotFound)) {
				t.Fatalf("DeleteCampaign: %v; %s: %v", *delErr, what, *recErr)
			}
			if _, err := s.GetCampaign(ctx, a.ID, c.ID); !errors.Is(err, tidings.ErrNotFound) {
				t.Fatalf("the campaign is still there: %v", err)
			}
			for _, table := range []string{"deliveries", "campaign_stats", "campaign_batches"} {
				if n := count(t, s, `SELECT COUNT(*) FROM `+table+` WHERE campaign_id = $1`, c.ID); n != 0 {
					t.Errorf("%d %s rows outlive their campaign", n, table)
				}
			}
			if what == "send record" {
				return
			}
			// The report went first (the deletion waited for it): its suppression stays.
			if *recErr != nil || !res.Suppressed {
				t.Fatalf("%s: %+v, %v; want it recorded and the address suppressed", what, res, *recErr)
			}
			if ok, _, err := s.Suppressed(ctx, a.ID, sub.Email); err != nil || !ok {
				t.Fatalf("after a %s the address is not suppressed: %v", what, err)
			}
		})
	}
}

func postgres(t *testing.T) bool {
	t.Helper()
	for _, e := range testdb.Engines(t) {
		if e == sqlstore.Postgres {
			return true
		}
	}
	t.Skip("needs PostgreSQL (" + testdb.PostgresEnv + "); SQLite runs one write transaction at a time")
	return false
}

// TestConcurrentCampaignWriters runs, many times over, everything that writes a sent
// campaign's rows at once: its deletion, a hard bounce, a complaint, an event group and
// an erasure of one of its readers. Nothing may fail (a deadlock is SQLSTATE 40P01)
// but a report finding its campaign deleted; a report that was recorded leaves its
// suppression; nothing names the erased person.
func TestConcurrentCampaignWriters(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			s := testdb.Open(t, engine)
			ctx := context.Background()
			for round := range 15 {
				emails := make([]string, 4)
				for i := range emails {
					emails[i] = fmt.Sprintf("p%d-%d@club.example", round, i)
				}
				a, c, subs := sentCampaign(t, s, emails...)
				bounce, angry, reader, erased := subs[0], subs[1], subs[2], subs[3]
				var results [2]tidings.FeedbackResult
				now := time.Now()
				jobs := []func() error{
					func() error { return s.DeleteCampaign(ctx, a.ID, c.ID) },
					func() (err error) {
						results[0], err = s.RecordFeedback(ctx, tidings.Feedback{AccountID: a.ID, CampaignID: c.ID, SubscriberID: bounce.ID,
							Kind: tidings.FeedbackHard, Status: "5.1.1"})
						return err
					},
					func() (err error) {
						results[1], err = s.RecordFeedback(ctx, tidings.Feedback{AccountID: a.ID, CampaignID: c.ID, SubscriberID: angry.ID,
							Kind: tidings.FeedbackComplaint})
						return err
					},
					func() error {
						return s.RecordEvents(ctx, []tidings.Event{
							{AccountID: a.ID, CampaignID: c.ID, SubscriberID: erased.ID, Kind: tidings.EventOpen, Time: now},
							{AccountID: a.ID, CampaignID: c.ID, SubscriberID: reader.ID, Kind: tidings.EventOpen, Time: now},
							{AccountID: a.ID, CampaignID: c.ID, SubscriberID: erased.ID, Kind: tidings.EventClick, URL: "https://club.example/", Time: now},
						})
					},
					func() error {
						_, err := s.ErasePerson(ctx, erased.Email, 0)
						return err
					},
				}
				errs := atOnce(jobs)
				for i, err := range errs {
					// Reports and events of a campaign deleted first are ErrNotFound (the
					// event writer then stores its group's other events one by one).
					if err != nil && (i == 0 || i == 4 || !errors.Is(err, tidings.ErrNotFound)) {
						t.Fatalf("round %d, job %d: %v", round, i, err)
					}
				}
				for i, sub := range []tidings.Subscriber{bounce, angry} {
					if errs[i+1] != nil {
						continue // the campaign went first
					}
					if ok, _, err := s.Suppressed(ctx, a.ID, sub.Email); err != nil || !ok || !results[i].Suppressed {
						t.Fatalf("round %d: a recorded report (%+v) left no suppression (%v)", round, results[i], err)
					}
				}
				for _, table := range []string{"events", "event_uniques", "deliveries"} {
					if n := count(t, s, `SELECT COUNT(*) FROM `+table+` WHERE subscriber_id = $1`, erased.ID); n != 0 {
						t.Fatalf("round %d: %d %s rows name the erased subscriber", round, n, table)
					}
				}
				for _, table := range []string{"deliveries", "campaign_stats", "campaign_batches"} {
					if n := count(t, s, `SELECT COUNT(*) FROM `+table+` WHERE campaign_id = $1`, c.ID); n != 0 {
						t.Fatalf("round %d: %d %s rows outlive their campaign", round, n, table)
					}
				}
			}
		})
	}
}

// accountLeftovers counts, table by table, the rows of a deleted account (its lists and
// campaigns by ID) that are still stored; empty when nothing is.
func accountLeftovers(t *testing.T, s *sqlstore.Store, accountID int64, lists, campaigns []int64) map[string]int {
	t.Helper()
	left := map[string]int{}
	add := func(table, column string, ids ...int64) {
		for _, id := range ids {
			if n := count(t, s, `SELECT COUNT(*) FROM `+table+` WHERE `+column+` = $1`, id); n > 0 {
				left[table] += n
			}
		}
	}
	for _, table := range []string{"campaigns", "subscribers", "lists", "events", "ledger", "suppressions"} {
		add(table, "account_id", accountID)
	}
	for _, table := range []string{"deliveries", "campaign_batches", "campaign_stats", "event_uniques", "campaign_daily", "campaign_links"} {
		add(table, "campaign_id", campaigns...)
	}
	for _, table := range []string{"subscriptions", "list_counts", "list_daily"} {
		add(table, "list_id", lists...)
	}
	return left
}

// TestAccountDeletedUnderItsWriters: an account is deleted while an event group or a
// bounce or complaint report of one of its campaigns is under way. The deletion used
// to lock the account row first and its campaigns and subscribers (by cascade) after,
// and the writer, holding those, then read the account row for its inserts: a
// deadlock (40P01). Now one waits for the other: a writer that went first is recorded
// and then deleted with the account; one that came second finds the campaign gone.
// The writer (writer first) or the deletion (deletion first) is held by a lock of the
// test's on a row it needs after it has taken its own.
func TestAccountDeletedUnderItsWriters(t *testing.T) {
	for _, first := range []string{"writer", "deletion"} {
		for _, what := range []string{"event group", "hard bounce", "complaint"} {
			t.Run(first+" first/"+what, func(t *testing.T) {
				if !postgres(t) {
					return
				}
				s := testdb.Open(t, sqlstore.Postgres)
				ctx := context.Background()
				a, c, subs := sentCampaign(t, s, "reader@club.example", "other@club.example")
				reader, other := subs[0], subs[1]
				// Counters, uniques and a ledger to delete; the stats row exists for the
				// test to hold.
				if err := s.RecordEvents(ctx, []tidings.Event{
					{AccountID: a.ID, CampaignID: c.ID, SubscriberID: other.ID, Kind: tidings.EventOpen, Time: time.Now()},
					{AccountID: a.ID, CampaignID: c.ID, SubscriberID: other.ID, Kind: tidings.EventClick, URL: "https://club.example/", Time: time.Now()},
				}); err != nil {
					t.Fatal(err)
				}
				write := func() error {
					switch what {
					case "event group":
						return s.RecordEvents(ctx, []tidings.Event{
							{AccountID: a.ID, CampaignID: c.ID, SubscriberID: reader.ID, Kind: tidings.EventOpen, Time: time.Now()},
							{AccountID: a.ID, CampaignID: c.ID, SubscriberID: reader.ID, Kind: tidings.EventClick, URL: "https://club.example/a", Time: time.Now()},
						})
					case "hard bounce":
						_, err := s.RecordFeedback(ctx, tidings.Feedback{AccountID: a.ID, CampaignID: c.ID, SubscriberID: reader.ID,
							Kind: tidings.FeedbackHard, Status: "5.1.1"})
						return err
					default:
						_, err := s.RecordFeedback(ctx, tidings.Feedback{AccountID: a.ID, CampaignID: c.ID, SubscriberID: reader.ID,
							Kind: tidings.FeedbackComplaint})
						return err
					}
				}
				deleteAccount := func() error { return s.DeleteAccount(ctx, a.ID) }
				// Writer first: held at the campaign's counter row, which it writes after
				// its campaign, delivery and subscriber locks. Deletion first: held at a
				// subscriber, which it locks after its campaigns.
				var h *holder
				firstJob, secondJob := write, deleteAccount
				if first == "writer" {
					h = hold(t, s.DB(), `SELECT 1 FROM campaign_stats WHERE campaign_id = $1 FOR UPDATE`, c.ID)
				} else {
					h = hold(t, s.DB(), `SELECT 1 FROM subscribers WHERE id = $1 FOR KEY SHARE`, other.ID)
					firstJob, secondJob = deleteAccount, write
				}
				firstDone, firstErr := run(firstJob)
				if !h.await(t, s.DB(), 1, firstDone) {
					t.Fatalf("the %s never waited for the test's lock", first)
				}
				secondDone, secondErr := run(secondJob)
				if !h.await(t, s.DB(), 2, secondDone) {
					t.Fatal("the second neither finished nor waited")
				}
				if err := h.tx.Commit(); err != nil {
					t.Fatal(err)
				}
				<-firstDone
				<-secondDone
				writeErr, deleteErr := *firstErr, *secondErr
				if first == "deletion" {
					writeErr, deleteErr = *secondErr, *firstErr
				}
				if deleteErr != nil {
					t.Fatalf("DeleteAccount: %v (%s: %v)", deleteErr, what, writeErr)
				}
				if first == "writer" && writeErr != nil || first == "deletion" && writeErr != nil && !errors.Is(writeErr, tidings.ErrNotFound) {
					t.Fatalf("%s: %v", what, writeErr)
				}
				if left := accountLeftovers(t, s, a.ID, c.Lists, []int64{c.ID}); len(left) > 0 {
					t.Fatalf("rows of the deleted account left: %v", left)
				}
			})
		}
	}
}

// TestConcurrentAccountWriters runs, many times over, an account's deletion at once
// with the writers of its campaign and people: a hard bounce, a complaint, an event
// group and an erasure. Nothing may fail (a deadlock is SQLSTATE 40P01) but a report
// or event group finding its campaign deleted, and nothing of the account may remain.
func TestConcurrentAccountWriters(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			s := testdb.Open(t, engine)
			ctx := context.Background()
			for round := range 12 {
				emails := make([]string, 4)
				for i := range emails {
					emails[i] = fmt.Sprintf("q%d-%d@club.example", round, i)
				}
				a, c, subs := sentCampaign(t, s, emails...)
				bounce, angry, reader, erased := subs[0], subs[1], subs[2], subs[3]
				now := time.Now()
				jobs := []func() error{
					func() error { return s.DeleteAccount(ctx, a.ID) },
					func() error {
						_, err := s.RecordFeedback(ctx, tidings.Feedback{AccountID: a.ID, CampaignID: c.ID, SubscriberID: bounce.ID,
							Kind: tidings.FeedbackHard, Status: "5.1.1"})
						return err
					},
					func() error {
						_, err := s.RecordFeedback(ctx, tidings.Feedback{AccountID: a.ID, CampaignID: c.ID, SubscriberID: angry.ID,
							Kind: tidings.FeedbackComplaint})
						return err
					},
					func() error {
						return s.RecordEvents(ctx, []tidings.Event{
							{AccountID: a.ID, CampaignID: c.ID, SubscriberID: reader.ID, Kind: tidings.EventOpen, Time: now},
							{AccountID: a.ID, CampaignID: c.ID, SubscriberID: erased.ID, Kind: tidings.EventOpen, Time: now},
							{AccountID: a.ID, CampaignID: c.ID, SubscriberID: reader.ID, Kind: tidings.EventClick, URL: "https://club.example/", Time: now},
						})
					},
					func() error {
						_, err := s.ErasePerson(ctx, erased.Email, 0)
						return err
					},
				}
				errs := atOnce(jobs)
				for i, err := range errs {
					if err != nil && (i == 0 || i == 4 || !errors.Is(err, tidings.ErrNotFound)) {
						t.Fatalf("round %d, job %d: %v", round, i, err)
					}
				}
				// Nothing, not even the suppression of an erasure that read the person's
				// subscriber before the deletion and waited for it (addSuppression).
				left := accountLeftovers(t, s, a.ID, c.Lists, []int64{c.ID})
				if len(left) > 0 {
					t.Fatalf("round %d: rows of the deleted account left: %v", round, left)
				}
			}
		})
	}
}

// TestConfirmationQueuesBehindAnEdit: the account holder edits a subscriber (which locks
// the subscriber's row, then the ledger head) while the person confirms a request that
// changes the same subscriber. The confirmation must wait for the subscriber's row
// before it takes the ledger head; taking the head first, it deadlocked with the edit,
// and PostgreSQL failed one of the two.
func TestConfirmationQueuesBehindAnEdit(t *testing.T) {
	if !postgres(t) {
		return
	}
	s := testdb.Open(t, sqlstore.Postgres)
	ctx := context.Background()
	a, _, subs := sentCampaign(t, s, "known@club.example")
	l := tidings.NewList("events")
	if err := s.CreateList(ctx, a.ID, &l); err != nil {
		t.Fatal(err)
	}
	token := sha256.Sum256([]byte("confirm-token"))
	if _, err := s.RequestSubscription(ctx, a.ID, tidings.SubscriptionRequest{Email: subs[0].Email, Name: "New Name",
		Lists: []int64{l.ID}, Source: tidings.SourceForm, Kind: tidings.LedgerRequested,
		TokenHash: token[:], ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	// The edit's first lock.
	h := hold(t, s.DB(), `SELECT 1 FROM subscribers WHERE id = $1 FOR UPDATE`, subs[0].ID)
	confirmDone, confirmErr := run(func() error {
		_, err := s.ConfirmSubscription(ctx, token[:], tidings.Evidence{}, false)
		return err
	})
	h.editHead(t, s.DB(), a.ID, "ConfirmSubscription", confirmDone, confirmErr)
	got, err := s.GetSubscriber(ctx, a.ID, subs[0].ID)
	if err != nil || got.Name != "New Name" {
		t.Fatalf("after the confirmation: %+v, %v", got, err)
	}
}

// domainAccount makes an account that sends from one domain (an Ed25519 key, quick to
// make), with a list, and returns the domain's ID.
func domainAccount(t *testing.T, s *sqlstore.Store, domain string) (tidings.Account, tidings.List, int64) {
	t.Helper()
	ctx := context.Background()
	a := tidings.Account{PostalAddress: "1 Example Street, Exampletown", Name: "Shop", ContactEmail: "dpo@shop.example"}
	if err := s.CreateAccount(ctx, &a); err != nil {
		t.Fatal(err)
	}
	k, err := postman.NewDKIMKey("ed25519", "s1")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddDKIMKeys(ctx, a.ID, domain, &k); err != nil {
		t.Fatal(err)
	}
	l := tidings.NewList("news")
	if err := s.CreateList(ctx, a.ID, &l); err != nil {
		t.Fatal(err)
	}
	ds, err := s.SendingDomains(ctx, a.ID)
	if err != nil || len(ds) != 1 {
		t.Fatalf("sending domains: %+v, %v", ds, err)
	}
	return a, l, ds[0].ID
}

// TestDomainRemovalRacesCampaignWrite: a campaign is stored with its From address on a
// sending domain while the domain is removed (or moved to another account). The removal
// looked for campaigns sending from the domain without a lock that a campaign's write
// took, so a campaign stored just after that look kept a domain that was gone (its
// mail unsigned, or signed as another account's). Now the one that comes second waits:
// a removal that went first leaves the campaign refused (domain_removed), a campaign
// that went first leaves the removal refused (domain_in_use). The first is held by a
// lock of the test's on a row it needs after it has taken the domain's: the removal at
// the domain's keys (which it retires after its look), the new campaign at its account
// row (which its insert reads).
func TestDomainRemovalRacesCampaignWrite(t *testing.T) {
	const dom = "news.shop.example"
	for _, tc := range []struct{ first, removal, write string }{
		{"removal", "remove", "create"},
		{"removal", "remove", "update"},
		{"removal", "move", "create"},
		{"removal", "move", "update"},
		{"campaign", "remove", "create"},
		{"campaign", "move", "create"},
	} {
		t.Run(tc.first+" first/"+tc.removal+"/"+tc.write, func(t *testing.T) {
			if !postgres(t) {
				return
			}
			s := testdb.Open(t, sqlstore.Postgres)
			ctx := context.Background()
			a, l, domainID := domainAccount(t, s, dom)
			b := tidings.Account{PostalAddress: "2 Example Street, Exampletown", Name: "Other", ContactEmail: "dpo@other.example"}
			if err := s.CreateAccount(ctx, &b); err != nil {
				t.Fatal(err)
			}
			c := tidings.Campaign{Name: "Weekly", Subject: "S", FromAddress: "news@elsewhere.example", HTML: "<p>x</p>", Lists: []int64{l.ID}}
			if tc.write == "update" {
				if err := s.CreateCampaign(ctx, a.ID, &c); err != nil {
					t.Fatal(err)
				}
			}
			c.FromAddress = "news@" + dom
			write := func() error {
				if tc.write == "update" {
					return s.UpdateCampaign(ctx, a.ID, &c)
				}
				return s.CreateCampaign(ctx, a.ID, &c)
			}
			remove := func() error {
				if tc.removal == "move" {
					k, err := postman.NewDKIMKey("ed25519", "s2")
					if err != nil {
						return err
					}
					_, err = s.MoveSendingDomain(ctx, dom, b.ID, &k)
					return err
				}
				return s.RemoveSendingDomain(ctx, a.ID, domainID)
			}
			var h *holder
			firstJob, secondJob := remove, write
			if tc.first == "removal" {
				h = hold(t, s.DB(), `SELECT 1 FROM dkim_keys WHERE domain_id = $1 FOR SHARE`, domainID)
			} else {
				h = hold(t, s.DB(), `SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE`, a.ID)
				firstJob, secondJob = write, remove
			}
			firstDone, firstErr := run(firstJob)
			if !h.await(t, s.DB(), 1, firstDone) {
				t.Fatalf("the %s never waited for the test's lock", tc.first)
			}
			secondDone, secondErr := run(secondJob)
			if !h.await(t, s.DB(), 2, secondDone) {
				t.Fatal("the second neither finished nor waited")
			}
			if err := h.tx.Commit(); err != nil {
				t.Fatal(err)
			}
			<-firstDone
			<-secondDone
			if *firstErr != nil {
				t.Fatalf("the %s, first: %v", tc.first, *firstErr)
			}
			want := "domain_removed"
			if tc.first == "campaign" {
				want = "domain_in_use"
			}
			if v, ok := tidings.AsValidation(*secondErr); !ok || v.Code != want {
				t.Fatalf("the second: %v, want %s", *secondErr, want)
			}
			removed := count(t, s, `SELECT COUNT(*) FROM sending_domains WHERE id = $1 AND removed_at IS NOT NULL`, domainID)
			sending := count(t, s, `SELECT COUNT(*) FROM campaigns WHERE account_id = $1 AND from_address = $2`, a.ID, "news@"+dom)
			if removed+sending != 1 {
				t.Fatalf("domain removed: %d; campaigns sending from it: %d; want one or the other", removed, sending)
			}
		})
	}
}

// TestAccountDeletedUnderCampaignWrite: a campaign being stored holds its From domain
// (FOR SHARE) and then reads its account row (the insert's foreign key) while the
// account is deleted. The deletion used to delete the account row first and the
// domain by cascade after: each waited for the other (40P01). Now it locks the domain
// before the account row and waits. The test's transaction is the campaign's write.
func TestAccountDeletedUnderCampaignWrite(t *testing.T) {
	if !postgres(t) {
		return
	}
	s := testdb.Open(t, sqlstore.Postgres)
	ctx := context.Background()
	a, l, domainID := domainAccount(t, s, "news.shop.example")
	h := hold(t, s.DB(), `SELECT 1 FROM sending_domains WHERE id = $1 FOR SHARE`, domainID)
	delDone, delErr := run(func() error { return s.DeleteAccount(ctx, a.ID) })
	if !h.await(t, s.DB(), 1, delDone) {
		t.Fatal("the deletion neither finished nor waited")
	}
	if _, err := h.tx.ExecContext(ctx, `INSERT INTO campaigns (account_id, name, subject, from_address, lists, status, created_at, updated_at)
		VALUES ($1, 'c', 's', 'news@news.shop.example', $2, 'draft', 1, 1)`, a.ID, fmt.Sprint(l.ID)); err != nil {
		t.Fatalf("the campaign's insert: %v", err)
	}
	if err := h.tx.Commit(); err != nil {
		t.Fatal(err)
	}
	<-delDone
	if *delErr != nil {
		t.Fatalf("DeleteAccount: %v", *delErr)
	}
	if left := accountLeftovers(t, s, a.ID, []int64{l.ID}, nil); len(left) > 0 {
		t.Fatalf("rows of the deleted account left: %v", left)
	}
}

// TestExpirySweepQueuesBehindAnEdit: the account holder edits a subscriber (the
// subscriber's row, then the ledger head) while the hourly sweep drops two lapsed
// requests of the same account, that subscriber's second. The sweep must lock both
// subscribers before it appends to the ledger; dropping the first request took the head
// while the edit held the second subscriber, and the two deadlocked.
func TestExpirySweepQueuesBehindAnEdit(t *testing.T) {
	if !postgres(t) {
		return
	}
	s := testdb.Open(t, sqlstore.Postgres)
	ctx := context.Background()
	a := tidings.Account{PostalAddress: "1 Example Street, Exampletown", Name: "Club", ContactEmail: "dpo@club.example"}
	if err := s.CreateAccount(ctx, &a); err != nil {
		t.Fatal(err)
	}
	l := tidings.NewList("events")
	if err := s.CreateList(ctx, a.ID, &l); err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for i, email := range []string{"first@club.example", "second@club.example"} {
		token := sha256.Sum256([]byte(email))
		// Both lapsed, the first one earlier: the sweep takes it first.
		r, err := s.RequestSubscription(ctx, a.ID, tidings.SubscriptionRequest{Email: tidings.MustParseAddress(email),
			Lists: []int64{l.ID}, Source: tidings.SourceForm, Kind: tidings.LedgerRequested,
			TokenHash: token[:], ExpiresAt: time.Now().Add(time.Duration(i-2) * time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.Subscriber.ID)
	}
	// The edit's first lock, on the second subscriber.
	h := hold(t, s.DB(), `SELECT 1 FROM subscribers WHERE id = $1 FOR UPDATE`, ids[1])
	sweepDone, sweepErr := run(func() error {
		_, err := s.ExpireUnconfirmed(ctx, a.ID, time.Now().Add(-time.Hour), false)
		return err
	})
	h.editHead(t, s.DB(), a.ID, "ExpireUnconfirmed", sweepDone, sweepErr)
	if n := count(t, s, `SELECT COUNT(*) FROM pending_confirmations WHERE account_id = $1`, a.ID); n != 0 {
		t.Fatalf("%d requests left after the sweep", n)
	}
}
