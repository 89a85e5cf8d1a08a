// Package track records opens and clicks, only as far as consent allows: signed links
// (no open redirects), Do Not Track and Global Privacy Control honoured at request time,
// and group-committed writes whose callers wait for the commit, so an acknowledged
// event is never lost.
package track

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"html"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidings/tidings/internal/keys"
	"github.com/tidings/tidings/internal/tidings"
)

// Link is what a tracking token carries: whose message, which campaign, and (for
// clicks) where to go. SubscriberID 0 is an anonymous link.
type Link struct {
	AccountID, CampaignID, SubscriberID int64
	URL                                 string
}

func encode(l Link) []byte {
	b := make([]byte, 24, 24+len(l.URL))
	binary.BigEndian.PutUint64(b[0:], uint64(l.AccountID))
	binary.BigEndian.PutUint64(b[8:], uint64(l.CampaignID))
	binary.BigEndian.PutUint64(b[16:], uint64(l.SubscriberID))
	return append(b, l.URL...)
}

func decode(p []byte) (Link, bool) {
	if len(p) < 24 {
		return Link{}, false
	}
	return Link{AccountID: int64(binary.BigEndian.Uint64(p[0:])), CampaignID: int64(binary.BigEndian.Uint64(p[8:])),
		SubscriberID: int64(binary.BigEndian.Uint64(p[16:])), URL: string(p[24:])}, true
}

// ClickToken signs a click link; the target URL is inside the signature, so an altered
// token redirects nowhere.
func ClickToken(k *keys.Keyring, l Link) string { return k.Sign("click", encode(l)) }

// OpenToken signs an open pixel.
func OpenToken(k *keys.Keyring, l Link) string { l.URL = ""; return k.Sign("open", encode(l)) }

// ParseClick verifies a click token; only http(s) targets are accepted.
func ParseClick(k *keys.Keyring, token string) (Link, bool) {
	p, err := k.Verify("click", token)
	if err != nil {
		return Link{}, false
	}
	l, ok := decode(p)
	if !ok || !(strings.HasPrefix(l.URL, "https://") || strings.HasPrefix(l.URL, "http://")) {
		return Link{}, false
	}
	return l, true
}

// ParseOpen verifies an open token.
func ParseOpen(k *keys.Keyring, token string) (Link, bool) {
	p, err := k.Verify("open", token)
	if err != nil {
		return Link{}, false
	}
	return decode(p)
}

var hrefRE = regexp.MustCompile(`href="(https?://[^"]+)"`)

// Instrument rewrites the links of a rendered HTML body to signed click links and, for
// personal tracking, adds the open pixel. Links under skip (the unsubscribe link) stay.
func Instrument(k *keys.Keyring, baseURL, body string, l Link, level tidings.TrackingLevel, skip string) string {
	if level == tidings.TrackNone {
		return body
	}
	if level == tidings.TrackAnonymous {
		l.SubscriberID = 0
	}
	body = hrefRE.ReplaceAllStringFunc(body, func(m string) string {
		target := html.UnescapeString(m[len(`href="`) : len(m)-1])
		if skip != "" && strings.HasPrefix(target, skip) {
			return m
		}
		c := l
		c.URL = target
		return `href="` + baseURL + "/c/" + ClickToken(k, c) + `"`
	})
	if level == tidings.TrackPersonal {
		pixel := `<img src="` + baseURL + "/o/" + OpenToken(k, l) + `" width="1" height="1" alt="">`
		if i := strings.LastIndex(strings.ToLower(body), "</body>"); i >= 0 {
			body = body[:i] + pixel + body[i:]
		} else {
			body += pixel
		}
	}
	return body
}

// Writer group-commits events: requests that arrive together share one transaction,
// and each caller returns only after the commit that holds its event.
//
// Under load, commits are spaced at least minInterval apart: every commit has a fixed
// cost (locks, counter rows, WAL pages) that does not depend on its size, and without
// a pause the writer committed as soon as anything was queued — groups of about five
// events at 15,000 requests/s, so that fixed cost was paid thousands of times a second.
// An event that arrives after a quiet spell (longer than minInterval) commits at once.
type Writer struct {
	store       tidings.TrackingStore
	in          chan request
	maxBatch    int
	minInterval time.Duration

	commits, events atomic.Int64 // for Stats
	commitTimes     [commitBuckets]atomic.Int64
}

// commitBuckets are the buckets of CommitTimes: bucket i counts commits that took less
// than 2^i microseconds (the last one, any longer).
const commitBuckets = 24

// CommitTimes reports the distribution of the group commits' durations (RecordEvents,
// from begin to commit): the q-quantile for each q, rounded up to a power of two
// microseconds. Zero before the first commit.
func (w *Writer) CommitTimes(qs ...float64) []time.Duration {
	var counts [commitBuckets]int64
	var total int64
	for i := range counts {
		counts[i] = w.commitTimes[i].Load()
		total += counts[i]
	}
	out := make([]time.Duration, len(qs))
	for j, q := range qs {
		if total == 0 {
			continue
		}
		want := int64(q*float64(total) + 0.5)
		var seen int64
		for i, c := range counts {
			seen += c
			if seen >= want {
				out[j] = time.Duration(1<<i) * time.Microsecond
				break
			}
		}
	}
	return out
}

func (w *Writer) observe(d time.Duration) {
	i := 0
	for us := d.Microseconds(); us >= 1<<i && i < commitBuckets-1; {
		i++
	}
	w.commitTimes[i].Add(1)
}

type request struct {
	ev   tidings.Event
	done chan error
}

// DefaultCommitInterval is the least time between two commits under load. It bounds
// the extra wait of an event (the response waits for the commit) and keeps commits to
// at most 1000 a second.
const DefaultCommitInterval = time.Millisecond

// NewWriter starts a writer; it stops when ctx ends.
func NewWriter(ctx context.Context, store tidings.TrackingStore) *Writer {
	return NewWriterInterval(ctx, store, DefaultCommitInterval)
}

// NewWriterInterval starts a writer whose commits are at least interval apart under
// load (0: commit whatever is queued as soon as the previous commit ends).
func NewWriterInterval(ctx context.Context, store tidings.TrackingStore, interval time.Duration) *Writer {
	w := &Writer{store: store, in: make(chan request, 4096), maxBatch: 1000, minInterval: interval}
	go w.loop(ctx)
	return w
}

// Stats reports how many group commits the writer ran (failed ones too) and how many
// events they held.
func (w *Writer) Stats() (commits, events int64) { return w.commits.Load(), w.events.Load() }

// ErrStopped: the writer is shutting down.
var ErrStopped = errors.New("track: writer stopped")

// refuseQueued answers the requests still queued when the writer stops, so that none
// waits for a commit that will not come.
func (w *Writer) refuseQueued() {
	for {
		select {
		case r := <-w.in:
			r.done <- ErrStopped
		default:
			return
		}
	}
}

// doneChans recycles the channels on which Record waits: one per request otherwise.
var doneChans = sync.Pool{New: func() any { return make(chan error, 1) }}

// Record stores ev and returns after it is committed.
func (w *Writer) Record(ctx context.Context, ev tidings.Event) error {
	req := request{ev: ev, done: doneChans.Get().(chan error)}
	select {
	case w.in <- req:
	case <-ctx.Done():
		doneChans.Put(req.done) // never handed to the writer
		return ctx.Err()
	}
	select {
	case err := <-req.done:
		doneChans.Put(req.done) // drained, and the writer sends only once
		return err
	case <-ctx.Done():
		return ctx.Err() // the writer will still send: the channel is not reused
	}
}

func (w *Writer) loop(ctx context.Context) {
	batch := make([]request, 0, w.maxBatch)
	events := make([]tidings.Event, 0, w.maxBatch)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var last time.Time // when the previous commit started
	for {
		select {
		case <-ctx.Done():
			w.refuseQueued()
			return
		case r := <-w.in:
			batch = append(batch[:0], r)
		}
		// Under load, gather until minInterval has passed since the previous commit
		// began; after a quiet spell that time has passed already, and a lone event
		// commits at once.
		if wait := w.minInterval - time.Since(last); wait > 0 {
			timer.Reset(wait)
		linger:
			for len(batch) < w.maxBatch {
				select {
				case r := <-w.in:
					batch = append(batch, r)
				case <-timer.C:
					break linger
				}
			}
			timer.Stop()
		}
		// Take whatever else is queued.
	gather:
		for len(batch) < w.maxBatch {
			select {
			case r := <-w.in:
				batch = append(batch, r)
			default:
				break gather
			}
		}
		events = events[:0]
		for _, r := range batch {
			events = append(events, r.ev)
		}
		last = time.Now()
		err := w.store.RecordEvents(context.WithoutCancel(ctx), events)
		w.observe(time.Since(last))
		w.commits.Add(1)
		w.events.Add(int64(len(events)))
		var dropped *tidings.DroppedEventsError
		if errors.As(err, &dropped) {
			answerDropped(batch, dropped.Indexes)
			continue
		}
		for _, r := range batch {
			r.done <- err
		}
	}
}

// answerDropped answers a group that the store committed without some of its events
// (an open of a campaign deleted since its mail went out): those hear that their
// campaign is gone, the others that they are stored. One stale event does not sink
// its group, nor make the group be written again.
func answerDropped(batch []request, dropped []int) {
	for i, r := range batch {
		if len(dropped) > 0 && dropped[0] == i {
			dropped = dropped[1:]
			r.done <- fmt.Errorf("track: campaign %d: %w", r.ev.CampaignID, tidings.ErrNotFound)
			continue
		}
		r.done <- nil
	}
}

// AddUTM adds the campaign's UTM parameters to every http(s) link of an HTML body
// (parameters the link already has are left as they are).
func AddUTM(body string, u *tidings.UTM) string {
	if u == nil {
		return body
	}
	return hrefRE.ReplaceAllStringFunc(body, func(m string) string {
		raw := html.UnescapeString(m[len(`href="`) : len(m)-1])
		target, err := url.Parse(raw)
		if err != nil {
			return m
		}
		q := target.Query()
		for k, v := range map[string]string{"utm_source": u.Source, "utm_medium": u.Medium, "utm_campaign": u.Campaign} {
			if v != "" && q.Get(k) == "" {
				q.Set(k, v)
			}
		}
		target.RawQuery = q.Encode()
		return `href="` + html.EscapeString(target.String()) + `"`
	})
}
