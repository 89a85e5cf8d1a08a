package send

import (
	"context"
	"crypto/rand"
	"sync"
	"time"

	"github.com/tidings/tidings/internal/tidings"
)

// recorder group-commits delivery results: many messages per transaction, flushed by
// size or time. A batch is closed only in the same transaction as its last results, so
// after a crash every batch is either done with all its records, or still open.
type recorder struct {
	e        *Engine
	campaign int64
	mu       sync.Mutex
	pending  map[int][]tidings.DeliveryResult // batch → results not yet stored
	closed   map[int]bool                     // batches whose last result has been added
	count    int
	kick     chan struct{}
	done     chan struct{}
	stopped  chan struct{}
	err      error
}

func newRecorder(e *Engine, campaignID int64) *recorder {
	r := &recorder{e: e, campaign: campaignID, pending: map[int][]tidings.DeliveryResult{}, closed: map[int]bool{},
		kick: make(chan struct{}, 1), done: make(chan struct{}), stopped: make(chan struct{})}
	go r.loop()
	return r
}

func (r *recorder) add(batch int, res tidings.DeliveryResult) {
	r.mu.Lock()
	if res.Status != tidings.DeliveryQueued {
		r.pending[batch] = append(r.pending[batch], res)
		r.count++
	}
	full := r.count >= r.e.FlushSize
	r.mu.Unlock()
	if full {
		r.poke()
	}
}

// finish marks the batch's results complete (or, when complete is false, abandoned:
// stored but left open for whoever claims it next).
func (r *recorder) finish(batch int, complete bool) {
	r.mu.Lock()
	if _, ok := r.pending[batch]; !ok {
		r.pending[batch] = nil
	}
	r.closed[batch] = complete
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) poke() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

func (r *recorder) loop() {
	defer close(r.stopped)
	t := time.NewTicker(r.e.FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-r.kick:
		case <-r.done:
			r.flush()
			return
		}
		r.flush()
	}
}

func (r *recorder) flush() {
	r.mu.Lock()
	pending, closed := r.pending, r.closed
	r.pending, r.closed, r.count = map[int][]tidings.DeliveryResult{}, map[int]bool{}, 0
	r.mu.Unlock()
	// Records must land even while the node shuts down: they describe mail already sent.
	ctx := context.Background()
	for batch, results := range pending {
		complete, finished := closed[batch]
		if err := r.e.Store.RecordDeliveries(ctx, r.campaign, batch, r.e.Node, results, finished && complete); err != nil {
			r.e.Log.Error("recording deliveries failed", "campaign_id", r.campaign, "batch", batch, "err", err)
			r.mu.Lock()
			if r.err == nil {
				r.err = err
			}
			r.mu.Unlock()
		}
	}
}

func (r *recorder) close() error {
	close(r.done)
	<-r.stopped
	return r.err
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}
