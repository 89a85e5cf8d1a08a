// Package mailtest provides an in-process SMTP sink for tests and benchmarks: a real
// go-smtp server on loopback that records (or just counts) what it receives.
package mailtest

import (
	"bytes"
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Received is one accepted message.
type Received struct {
	From string
	To   []string
	Data []byte
}

// Sink is a loopback SMTP server.
type Sink struct {
	srv         *smtp.Server
	ln          net.Listener
	countOnly   bool
	mu          sync.Mutex
	msgs        []Received
	count       atomic.Int64
	connections atomic.Int64
	// Reject, when set, decides per recipient: return an *smtp.SMTPError to refuse it.
	Reject func(rcpt string) error
	// Delay slows every accepted message (to stretch a campaign for crash tests).
	Delay time.Duration
}

// Start starts a sink on 127.0.0.1:0. With countOnly it keeps no message data (for
// benchmarks).
func Start(countOnly bool) (*Sink, error) {
	s := &Sink{countOnly: countOnly}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		s.connections.Add(1)
		return &session{sink: s}, nil
	}))
	s.srv.Domain = "sink.test"
	s.srv.ErrorLog = log.New(io.Discard, "", 0) // clients killed mid-session are expected here
	s.srv.AllowInsecureAuth = true
	s.srv.MaxMessageBytes = 32 << 20
	s.srv.MaxRecipients = 1000
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.ln = ln
	go s.srv.Serve(ln)
	return s, nil
}

// New starts a recording sink that stops when the test ends.
func New(t testing.TB) *Sink {
	t.Helper()
	s, err := Start(false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Addr is host:port.
func (s *Sink) Addr() string { return s.ln.Addr().String() }

// Port is the listening port.
func (s *Sink) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Messages returns a copy of what was received.
func (s *Sink) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.msgs...)
}

// Count is the number of accepted messages.
func (s *Sink) Count() int64 { return s.count.Load() }

// Connections is the number of SMTP sessions opened.
func (s *Sink) Connections() int64 { return s.connections.Load() }

// Close stops the server.
func (s *Sink) Close() error { return s.srv.Close() }

type session struct {
	sink *Sink
	from string
	to   []string
}

func (x *session) Mail(from string, _ *smtp.MailOptions) error { x.from = from; return nil }

func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if x.sink.Reject != nil {
		if err := x.sink.Reject(to); err != nil {
			return err
		}
	}
	x.to = append(x.to, to)
	return nil
}

func (x *session) Data(r io.Reader) error {
	if x.sink.Delay > 0 {
		time.Sleep(x.sink.Delay)
	}
	if x.sink.countOnly {
		io.Copy(io.Discard, r)
		x.sink.count.Add(1)
		return nil
	}
	var b bytes.Buffer
	if _, err := io.Copy(&b, r); err != nil {
		return err
	}
	x.sink.mu.Lock()
	x.sink.msgs = append(x.sink.msgs, Received{From: x.from, To: append([]string(nil), x.to...), Data: b.Bytes()})
	x.sink.mu.Unlock()
	x.sink.count.Add(1)
	return nil
}

func (x *session) Reset()        { x.from, x.to = "", nil }
func (x *session) Logout() error { return nil }

// Find returns the messages whose recipients include addr.
func (s *Sink) Find(addr string) []Received {
	var out []Received
	for _, m := range s.Messages() {
		for _, to := range m.To {
			if strings.EqualFold(to, addr) {
				out = append(out, m)
			}
		}
	}
	return out
}
