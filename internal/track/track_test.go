package track

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tidings/tidings/internal/tidings"
)

func TestAddUTM(t *testing.T) {
	body := `<a href="https://shop.example/a?x=1&amp;utm_source=own">a</a> <a href="mailto:x@shop.example">m</a>`
	got := AddUTM(body, &tidings.UTM{Source: "tidings", Medium: "email", Campaign: "november"})
	if !strings.Contains(got, `utm_campaign=november`) || !strings.Contains(got, `utm_medium=email`) ||
		!strings.Contains(got, `utm_source=own`) || strings.Contains(got, "utm_source=tidings") || !strings.Contains(got, "mailto:x@shop.example") {
		t.Fatalf("AddUTM: %s", got)
	}
	if AddUTM(body, nil) != body {
		t.Fatal("no UTM: unchanged")
	}
}

// blockingStore holds every commit until release is closed.
type blockingStore struct {
	tidings.TrackingStore
	entered chan struct{}
	release chan struct{}
}

func (s *blockingStore) RecordEvents(ctx context.Context, events []tidings.Event) error {
	s.entered <- struct{}{}
	<-s.release
	return nil
}

// TestWriterStopAnswersEveryone: an event queued behind a commit when the writer stops
// is answered (committed or refused), never left waiting.
func TestWriterStopAnswersEveryone(t *testing.T) {
	for range 20 {
		st := &blockingStore{entered: make(chan struct{}, 10), release: make(chan struct{})}
		ctx, stop := context.WithCancel(context.Background())
		w := NewWriterInterval(ctx, st, 0)
		first := make(chan error, 1)
		go func() { first <- w.Record(context.Background(), tidings.Event{Kind: tidings.EventOpen}) }()
		<-st.entered // the first event's commit is running
		queued := make(chan error, 1)
		go func() { queued <- w.Record(context.Background(), tidings.Event{Kind: tidings.EventOpen}) }()
		for len(w.in) == 0 {
			time.Sleep(time.Millisecond)
		}
		stop()
		close(st.release)
		if err := <-first; err != nil {
			t.Fatalf("the running commit: %v", err)
		}
		select {
		case err := <-queued:
			if err != nil && !errors.Is(err, ErrStopped) {
				t.Fatalf("queued event: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("an event queued when the writer stopped was never answered")
		}
	}
}

func TestCommitTimes(t *testing.T) {
	w := &Writer{}
	if q := w.CommitTimes(0.5); q[0] != 0 {
		t.Fatalf("no commits: %v", q)
	}
	for range 98 {
		w.observe(3 * time.Microsecond) // < 4 µs
	}
	w.observe(1500 * time.Microsecond) // < 2048 µs
	w.observe(time.Hour)               // the last bucket
	q := w.CommitTimes(0.5, 0.99, 1)
	if q[0] != 4*time.Microsecond || q[1] != 2048*time.Microsecond || q[2] != time.Duration(1<<(commitBuckets-1))*time.Microsecond {
		t.Fatalf("quantiles %v", q)
	}
}
