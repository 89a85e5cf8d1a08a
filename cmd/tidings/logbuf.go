package main

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// logBuffer batches the server's log lines: the access log writes a line per request,
// and writing each straight to stderr cost a write system call per request on the
// busiest routes. Lines collect in memory and go out when the buffer fills, every
// interval, and at Close, which the server calls on its way out (after the HTTP server
// and the event writer have stopped), so a clean shutdown loses no line. A crash loses
// at most the last interval's lines.
type logBuffer struct {
	mu   sync.Mutex
	w    *bufio.Writer
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

func newLogBuffer(w io.Writer, interval time.Duration) *logBuffer {
	b := &logBuffer{w: bufio.NewWriterSize(w, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go b.flushEvery(interval)
	return b
}

// Write takes one log line (slog writes a record with one call).
func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Write(p)
}

func (b *logBuffer) flushEvery(interval time.Duration) {
	defer close(b.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.Flush()
		}
	}
}

// Flush writes out what is buffered.
func (b *logBuffer) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Flush()
}

// Close stops the periodic flush and writes out the rest. Lines written after Close
// still reach the buffer; call Flush for them.
func (b *logBuffer) Close() error {
	b.once.Do(func() {
		close(b.stop)
		<-b.done
	})
	return b.Flush()
}
