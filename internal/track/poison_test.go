package track

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tidings/tidings/internal/testdb"
	"github.com/tidings/tidings/internal/tidings"
)

// TestStaleEventDoesNotSinkItsGroup: an open for a campaign deleted since its mail went
// out cannot be stored, but the events committed in the same group still are, and each
// request hears its own outcome.
func TestStaleEventDoesNotSinkItsGroup(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			s := testdb.Open(t, engine)
			ctx := context.Background()
			acc := tidings.Account{PostalAddress: "1 Example Street, Exampletown", Name: "Shop", ContactEmail: "dpo@shop.example"}
			s.CreateAccount(ctx, &acc)
			l := tidings.NewList("News")
			s.CreateList(ctx, acc.ID, &l)
			var live, gone tidings.Campaign
			for _, c := range []*tidings.Campaign{&live, &gone} {
				*c = tidings.Campaign{Name: "c", Subject: "s", FromAddress: "a@shop.example", HTML: "x", Lists: []int64{l.ID}}
				if err := s.CreateCampaign(ctx, acc.ID, c); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.DeleteCampaign(ctx, acc.ID, gone.ID); err != nil {
				t.Fatal(err)
			}
			w := NewWriterInterval(ctx, s, 200*time.Millisecond) // long enough to gather everyone below into one group
			const n = 20
			errs := make([]error, n+1)
			var wg sync.WaitGroup
			for i := range n + 1 {
				c := live.ID
				if i == n {
					c = gone.ID
				}
				wg.Go(func() {
					errs[i] = w.Record(ctx, tidings.Event{AccountID: acc.ID, CampaignID: c, Kind: tidings.EventOpen, Time: time.Now()})
				})
			}
			wg.Wait()
			for i, err := range errs[:n] {
				if err != nil {
					t.Fatalf("open %d of the live campaign: %v", i, err)
				}
			}
			if errs[n] == nil {
				t.Fatal("the deleted campaign's open was reported stored")
			}
			st, err := s.CampaignStats(ctx, acc.ID, live.ID)
			if err != nil || st.AnonOpens != n {
				t.Fatalf("live campaign: %d anonymous opens (%v), want %d", st.AnonOpens, err, n)
			}
		})
	}
}

// countingStore counts RecordEvents calls and holds the first until release is closed.
type countingStore struct {
	tidings.TrackingStore
	mu      sync.Mutex
	calls   [][]tidings.Event
	entered chan struct{}
	release chan struct{}
}

func (s *countingStore) RecordEvents(ctx context.Context, events []tidings.Event) error {
	s.mu.Lock()
	s.calls = append(s.calls, slices.Clone(events))
	first := len(s.calls) == 1
	s.mu.Unlock()
	if first {
		close(s.entered)
		<-s.release
	}
	return s.TrackingStore.RecordEvents(ctx, events)
}

// TestStaleEventIsAnsweredWithoutRetry: a group holding an open of a deleted campaign
// is written in one store call; that open's request hears the error at once, and no
// event is written again one by one.
func TestStaleEventIsAnsweredWithoutRetry(t *testing.T) {
	for _, engine := range testdb.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			s := testdb.Open(t, engine)
			ctx := context.Background()
			acc := tidings.Account{PostalAddress: "1 Example Street, Exampletown", Name: "Shop", ContactEmail: "dpo@shop.example"}
			if err := s.CreateAccount(ctx, &acc); err != nil {
				t.Fatal(err)
			}
			l := tidings.NewList("News")
			if err := s.CreateList(ctx, acc.ID, &l); err != nil {
				t.Fatal(err)
			}
			var live, gone tidings.Campaign
			for _, c := range []*tidings.Campaign{&live, &gone} {
				*c = tidings.Campaign{Name: "c", Subject: "s", FromAddress: "a@shop.example", HTML: "x", Lists: []int64{l.ID}}
				if err := s.CreateCampaign(ctx, acc.ID, c); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.DeleteCampaign(ctx, acc.ID, gone.ID); err != nil {
				t.Fatal(err)
			}
			st := &countingStore{TrackingStore: s, entered: make(chan struct{}), release: make(chan struct{})}
			w := NewWriterInterval(ctx, st, 0)
			open := func(c int64) tidings.Event {
				return tidings.Event{AccountID: acc.ID, CampaignID: c, Kind: tidings.EventOpen, Time: time.Now()}
			}
			// A first open holds the writer, so that everything below queues into one group.
			first := make(chan error, 1)
			go func() { first <- w.Record(ctx, open(live.ID)) }()
			<-st.entered
			const n = 20
			errs := make([]error, n+1)
			var wg sync.WaitGroup
			for i := range n + 1 {
				c := live.ID
				if i == n/2 {
					c = gone.ID
				}
				wg.Go(func() { errs[i] = w.Record(ctx, open(c)) })
			}
			for len(w.in) < n+1 {
				runtime.Gosched()
			}
			close(st.release)
			wg.Wait()
			if err := <-first; err != nil {
				t.Fatalf("the first open: %v", err)
			}
			for i, err := range errs {
				if i == n/2 {
					if !errors.Is(err, tidings.ErrNotFound) {
						t.Fatalf("the deleted campaign's open: %v, want ErrNotFound", err)
					}
				} else if err != nil {
					t.Fatalf("open %d of the live campaign: %v", i, err)
				}
			}
			st.mu.Lock()
			defer st.mu.Unlock()
			if len(st.calls) != 2 || len(st.calls[1]) != n+1 {
				sizes := make([]int, len(st.calls))
				for i, c := range st.calls {
					sizes[i] = len(c)
				}
				t.Fatalf("store calls with %v events; want the first open, then one group of %d", sizes, n+1)
			}
			if stats, err := s.CampaignStats(ctx, acc.ID, live.ID); err != nil || stats.AnonOpens != n+1 {
				t.Fatalf("live campaign: %d anonymous opens (%v), want %d", stats.AnonOpens, err, n+1)
			}
		})
	}
}
