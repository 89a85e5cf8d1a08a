// Package ratelimit keeps one token bucket per key (a client IP, an address hash), and
// forgets keys that have been idle for a while so memory stays bounded.
package ratelimit

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter limits events per key.
type Limiter struct {
	every time.Duration
	burst int
	mu    sync.Mutex
	keys  map[string]*entry
	swept time.Time
}

type entry struct {
	l    *rate.Limiter
	seen time.Time
}

// New allows burst events at once per key, refilled at one per every.
func New(every time.Duration, burst int) *Limiter {
	return &Limiter{every: every, burst: burst, keys: map[string]*entry{}, swept: time.Now()}
}

// Allow reports whether an event for key may happen now.
func (l *Limiter) Allow(key string) bool {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > time.Minute {
		idle := l.every * time.Duration(l.burst)
		for k, e := range l.keys {
			if now.Sub(e.seen) > idle {
				delete(l.keys, k) // a full bucket again: forgetting it changes nothing
			}
		}
		l.swept = now
	}
	e, ok := l.keys[key]
	if !ok {
		e = &entry{l: rate.NewLimiter(rate.Every(l.every), l.burst)}
		l.keys[key] = e
	}
	e.seen = now
	return e.l.AllowN(now, 1)
}
