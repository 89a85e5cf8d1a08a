// Package mailtest provides an in-process SMTP sink for tests and benchmarks: a real
// go-smtp server on loopback that records (or just counts) what it receives.
package mailtest

import (
	"bytes"
	"crypto/tls"
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Received is one accepted message.
type Received struct {
	From string
	To   []string
	Data []byte
	User string // the AUTH user, if the client logged in
}

// Options configure a sink. The zero value records every message, in plain text.
type Options struct {
	Addr      string      // listen address; default 127.0.0.1:0
	CountOnly bool        // keep no message data: for benchmarks and load commands
	TLSConfig *tls.Config // offer STARTTLS with this certificate
	// ImplicitTLS makes the listener speak TLS from the first byte (port 465 style).
	ImplicitTLS bool
	// Username and Password, when set, make the sink offer AUTH PLAIN and refuse mail
	// from clients that have not logged in with them.
	Username, Password string
}

// Sink is a loopback SMTP server.
type Sink struct {
	opts        Options
	srv         *smtp.Server
	ln          net.Listener
	mu          sync.Mutex
	msgs        []Received
	refuse      map[string]int
	count       atomic.Int64
	connections atomic.Int64
	// Reject, when set, decides per recipient: return an *smtp.SMTPError to refuse it.
	// Set it before mail arrives.
	Reject func(rcpt string) error
	// Delay slows every accepted message (to stretch a campaign for crash tests).
	Delay time.Duration
}

// NewSink starts a recording sink on loopback that stops when the test ends. An
// optional Options configures it.
func NewSink(t testing.TB, opts ...Options) *Sink {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	s, err := Listen(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// New is NewSink without options.
func New(t testing.TB) *Sink { return NewSink(t) }

// Start starts a sink outside a test; with countOnly it keeps no message data. The
// caller closes it.
func Start(countOnly bool) (*Sink, error) { return Listen(Options{CountOnly: countOnly}) }

// Listen starts a sink outside a test. The caller closes it.
func Listen(o Options) (*Sink, error) {
	s := &Sink{opts: o, refuse: map[string]int{}}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{sink: s}, nil
	}))
	s.srv.Domain = "sink.test"
	s.srv.ErrorLog = log.New(io.Discard, "", 0) // clients killed mid-session are expected here
	s.srv.AllowInsecureAuth = o.TLSConfig == nil
	s.srv.MaxMessageBytes = 32 << 20
	s.srv.MaxRecipients = 1000
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, err
	}
	// Connections are counted at accept: go-smtp starts a new session after STARTTLS.
	ln = countingListener{ln, &s.connections}
	if o.TLSConfig != nil {
		if o.ImplicitTLS {
			ln = tls.NewListener(ln, o.TLSConfig)
		} else {
			s.srv.TLSConfig = o.TLSConfig
		}
	}
	s.ln = ln
	go s.srv.Serve(ln)
	return s, nil
}

type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// Addr is host:port.
func (s *Sink) Addr() string { return s.ln.Addr().String() }

// Port is the listening port.
func (s *Sink) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Messages returns a copy of what was received (nothing in count-only mode).
func (s *Sink) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.msgs...)
}

// Count is the number of accepted messages.
func (s *Sink) Count() int64 { return s.count.Load() }

// Connections is the number of connections accepted.
func (s *Sink) Connections() int64 { return s.connections.Load() }

// Refuse makes the sink answer RCPT TO:<rcpt> with code: 4xx tells the client to try
// again later, 5xx that the address will never work. Code 0 accepts it again.
func (s *Sink) Refuse(rcpt string, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if code == 0 {
		delete(s.refuse, strings.ToLower(rcpt))
	} else {
		s.refuse[strings.ToLower(rcpt)] = code
	}
}

// Close stops the server and drops its connections.
func (s *Sink) Close() error { return s.srv.Close() }

// Find returns the messages whose recipients include addr.
func (s *Sink) Find(addr string) []Received {
	var out []Received
	for _, m := range s.Messages() {
		for _, to := range m.To {
			if strings.EqualFold(to, addr) {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

type session struct {
	sink *Sink
	user string
	from string
	to   []string
}

func (x *session) AuthMechanisms() []string {
	if x.sink.opts.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (x *session) Auth(mech string) (sasl.Server, error) {
	if x.sink.opts.Username == "" || mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != x.sink.opts.Username || pass != x.sink.opts.Password {
			return smtp.ErrAuthFailed
		}
		x.user = user
		return nil
	}), nil
}

func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	if x.sink.opts.Username != "" && x.user == "" {
		return smtp.ErrAuthRequired
	}
	x.from = from
	return nil
}

func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.sink.mu.Lock()
	code := x.sink.refuse[strings.ToLower(to)]
	x.sink.mu.Unlock()
	if code != 0 {
		return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{code / 100, 0, 0}, Message: "refused by the test sink"}
	}
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
	if x.sink.opts.CountOnly {
		_, err := io.Copy(io.Discard, r)
		if err == nil {
			x.sink.count.Add(1)
		}
		return err
	}
	var b bytes.Buffer
	if _, err := io.Copy(&b, r); err != nil {
		return err
	}
	x.sink.mu.Lock()
	x.sink.msgs = append(x.sink.msgs, Received{From: x.from, To: append([]string(nil), x.to...), Data: b.Bytes(), User: x.user})
	x.sink.mu.Unlock()
	x.sink.count.Add(1)
	return nil
}

func (x *session) Reset()        { x.from, x.to = "", nil }
func (x *session) Logout() error { return nil }

// NewsletterHTML is the campaign body the sending benchmarks send: about 5 KB of HTML,
// personalised with the subscriber's name and city, with three links.
func NewsletterHTML() string {
	para := `<p>Dear {{.Subscriber.Name}}, here is what is new in {{.Subscriber.Attributes.city}} this week. ` +
		strings.Repeat("Our booksellers picked the season's best novels, essays and poetry for you. ", 4) + "</p>\n"
	return "<html><body><h1>Hello {{.Subscriber.Name}}</h1>\n" + strings.Repeat(para, 10) +
		`<p><a href="https://shop.example/new">New</a> · <a href="https://shop.example/offers">Offers</a> · <a href="https://shop.example/events?city={{.Subscriber.Attributes.city}}">Events</a></p></body></html>`
}
