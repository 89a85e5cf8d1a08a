package mail_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/tidings/tidings/internal/mail"
	"github.com/tidings/tidings/internal/mail/mailtest"
)

func plainPool(t testing.TB, sink *mailtest.Sink, size int) *mail.SMTPPool {
	pool, err := mail.NewSMTPPool(mail.SMTPConfig{Host: "127.0.0.1", Port: sink.Port(), TLS: "none", PoolSize: size, HelloName: "tidings.test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	return pool
}

func envTo(to string) mail.Envelope {
	return mail.Envelope{From: "bounces+x@books.example", To: []string{to}}
}

// TestSMTPPoolDefaultPort: an unset port follows the TLS mode.
func TestSMTPPoolDefaultPort(t *testing.T) {
	for mode, want := range map[string]string{"tls": "relay.example:465", "starttls": "relay.example:587", "none": "relay.example:587", "": "relay.example:587"} {
		pool, err := mail.NewSMTPPool(mail.SMTPConfig{Host: "relay.example", TLS: mode})
		if err != nil {
			t.Fatal(err)
		}
		if pool.Addr() != want {
			t.Errorf("TLS %q: %s, want %s", mode, pool.Addr(), want)
		}
		pool.Close()
	}
}

func TestSMTPPoolReusesConnections(t *testing.T) {
	sink := mailtest.NewSink(t)
	pool := plainPool(t, sink, 3)
	msg := sample().Bytes()
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			if err := pool.Send(context.Background(), envTo(fmt.Sprintf("r%d@example.com", i)), msg); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if sink.Count() != 200 || len(sink.Messages()) != 200 {
		t.Fatalf("sink got %d messages, want 200", sink.Count())
	}
	if c := sink.Connections(); c > 3 || pool.Dials() != int(c) {
		t.Fatalf("%d connections (%d dials) for a pool of 3", c, pool.Dials())
	}
	got := sink.Find("r7@example.com")
	if len(got) != 1 || got[0].From != "bounces+x@books.example" || string(got[0].Data) != string(msg) {
		t.Fatalf("r7 got %d messages, or not the one sent", len(got))
	}
}

func TestSMTPErrorsAreClassified(t *testing.T) {
	sink := mailtest.NewSink(t)
	sink.Refuse("full@example.com", 452)
	sink.Reject = func(rcpt string) error {
		if strings.HasPrefix(rcpt, "gone") {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "<" + rcpt + ">: no such user"}
		}
		return nil
	}
	pool := plainPool(t, sink, 1)
	send := func(to string) error { return pool.Send(context.Background(), envTo(to), sample().Bytes()) }

	err := send("full@example.com")
	var se *mail.SendError
	if !errors.As(err, &se) || !se.Temporary || se.Code != 452 || se.Enhanced != "4.0.0" || !mail.IsTemporary(err) {
		t.Fatalf("4xx: %#v", err)
	}
	err = send("gone@example.com")
	if !errors.As(err, &se) || se.Temporary || se.Code != 550 || se.Enhanced != "5.1.1" || mail.IsTemporary(err) {
		t.Fatalf("5xx: %#v", err)
	}
	if strings.Contains(err.Error(), "gone@example.com") || !strings.Contains(err.Error(), "<address>") {
		t.Fatalf("the relay's reply kept the address: %v", err)
	}
	if err := send("ok@example.com"); err != nil {
		t.Fatalf("the connection is unusable after a rejection: %v", err)
	}
	if sink.Connections() != 1 {
		t.Fatalf("rejections cost connections: %d", sink.Connections())
	}
	sink.Close()
	if err := send("ok@example.com"); err == nil || !mail.IsTemporary(err) {
		t.Fatalf("a dead relay should be a temporary error: %v", err)
	}
	if mail.IsTemporary(nil) {
		t.Fatal("nil is not a temporary error")
	}
	for _, env := range []mail.Envelope{{From: "b@books.example"}, envTo("a@example.com\r\nRSET"), {From: "x\r\nDATA", To: []string{"a@example.com"}}} {
		if err := pool.Send(context.Background(), env, nil); err == nil || mail.IsTemporary(err) {
			t.Errorf("envelope %q → %q: %v, want a permanent error", env.From, env.To, err)
		}
	}
}

func TestSinkCountOnly(t *testing.T) {
	sink, err := mailtest.Start(true)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	pool := plainPool(t, sink, 2)
	for range 5 {
		if err := pool.Send(context.Background(), envTo("a@example.com"), sample().Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	if sink.Count() != 5 || len(sink.Messages()) != 0 {
		t.Fatalf("count %d, stored %d", sink.Count(), len(sink.Messages()))
	}
}

// A relay that dropped an idle pooled connection costs a reconnect, not a message.
func TestSMTPReplacesStaleConnection(t *testing.T) {
	first := mailtest.NewSink(t)
	pool := plainPool(t, first, 2)
	if err := pool.Send(context.Background(), envTo("a@example.com"), sample().Bytes()); err != nil {
		t.Fatal(err)
	}
	first.Close() // drops the pooled connection
	second, err := mailtest.Listen(mailtest.Options{Addr: first.Addr()})
	if err != nil {
		t.Skipf("cannot listen again on %s: %v", first.Addr(), err)
	}
	defer second.Close()
	if err := pool.Send(context.Background(), envTo("b@example.com"), sample().Bytes()); err != nil {
		t.Fatalf("stale connection not replaced: %v", err)
	}
	if second.Count() != 1 || pool.Dials() != 2 {
		t.Fatalf("count %d, dials %d", second.Count(), pool.Dials())
	}
}

func TestSMTPContextDeadline(t *testing.T) {
	sink := mailtest.NewSink(t)
	sink.Delay = 400 * time.Millisecond
	pool := plainPool(t, sink, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	// Data is where the sink waits: the deadline strikes mid-transaction.
	defer cancel()
	start := time.Now()
	err := pool.Send(ctx, envTo("a@example.com"), sample().Bytes())
	if err == nil || !mail.IsTemporary(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 300*time.Millisecond {
		t.Fatalf("Send took %v past a 100ms deadline", d)
	}
	// The pool recovers: the interrupted connection was dropped, not reused.
	if err := pool.Send(context.Background(), envTo("b@example.com"), sample().Bytes()); err != nil {
		t.Fatal(err)
	}
}

func TestSMTPCloseDrains(t *testing.T) {
	sink := mailtest.NewSink(t)
	sink.Delay = 50 * time.Millisecond
	pool := plainPool(t, sink, 4)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			errs <- pool.Send(context.Background(), envTo(fmt.Sprint("r", i, "@example.com")), sample().Bytes())
		})
	}
	time.Sleep(20 * time.Millisecond) // let the first four start
	pool.Close()
	wg.Wait()
	close(errs)
	sent := 0
	for err := range errs {
		switch {
		case err == nil:
			sent++
		case !errors.Is(err, mail.ErrPoolClosed) || !mail.IsTemporary(err):
			t.Errorf("send during Close: %v", err)
		}
	}
	if sent < 4 || int64(sent) != sink.Count() {
		t.Fatalf("%d sent, sink has %d: sends under way must finish", sent, sink.Count())
	}
	if err := pool.Send(context.Background(), envTo("late@example.com"), nil); !errors.Is(err, mail.ErrPoolClosed) {
		t.Fatalf("send after Close: %v", err)
	}
	pool.Close() // twice is fine
}

// selfSigned returns a server certificate for 127.0.0.1 and a client config trusting it.
func selfSigned(t *testing.T) (server, client *tls.Config) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: priv}}}, &tls.Config{RootCAs: roots}
}

func TestSMTPTLSAndAuth(t *testing.T) {
	srvTLS, cliTLS := selfSigned(t)
	for _, mode := range []string{"starttls", "tls"} {
		t.Run(mode, func(t *testing.T) {
			sink := mailtest.NewSink(t, mailtest.Options{TLSConfig: srvTLS, ImplicitTLS: mode == "tls", Username: "u", Password: "secret"})
			cfg := mail.SMTPConfig{Host: "127.0.0.1", Port: sink.Port(), TLS: mode, Username: "u", Password: "secret", TLSConfig: cliTLS}
			pool, err := mail.NewSMTPPool(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			for range 3 {
				if err := pool.Send(context.Background(), envTo("a@example.com"), sample().Bytes()); err != nil {
					t.Fatal(err)
				}
			}
			if m := sink.Messages(); len(m) != 3 || m[0].User != "u" || sink.Connections() != 1 {
				t.Fatalf("%d messages, %d connections", len(m), sink.Connections())
			}
			cfg.Password = "wrong"
			bad, _ := mail.NewSMTPPool(cfg)
			defer bad.Close()
			err = bad.Send(context.Background(), envTo("a@example.com"), sample().Bytes())
			var se *mail.SendError
			if !errors.As(err, &se) || se.Code != 535 || !se.Temporary {
				t.Fatalf("bad password: %v (a configuration fault must not fail the message for good)", err)
			}
		})
	}
	// STARTTLS required but not offered: no silent downgrade.
	plain := mailtest.NewSink(t)
	pool, _ := mail.NewSMTPPool(mail.SMTPConfig{Host: "127.0.0.1", Port: plain.Port(), TLS: "starttls"})
	defer pool.Close()
	if err := pool.Send(context.Background(), envTo("a@example.com"), sample().Bytes()); err == nil || plain.Count() != 0 {
		t.Fatal("sent in clear to a relay without STARTTLS")
	}
	// A password never goes in clear, except over loopback.
	if _, err := mail.NewSMTPPool(mail.SMTPConfig{Host: "relay.example", Username: "u", Password: "p", TLS: "none"}); err == nil {
		t.Fatal("password over plaintext to a remote relay was allowed")
	}
	if _, err := mail.NewSMTPPool(mail.SMTPConfig{Host: "localhost", Username: "u", Password: "p", TLS: "none"}); err != nil {
		t.Fatal(err)
	}
	if _, err := mail.NewSMTPPool(mail.SMTPConfig{Host: "relay.example", TLS: "ssl"}); err == nil {
		t.Fatal("unknown TLS mode accepted")
	}
}

func BenchmarkSMTPSend(b *testing.B) {
	sink, err := mailtest.Start(true)
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	pool := plainPool(b, sink, 8)
	msg := bigMessage().Bytes()
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	b.SetParallelism(4) // several senders per core, as the campaign engine runs them
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := pool.Send(context.Background(), envTo("r@example.com"), msg); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkPipeline is one campaign message end to end: build, sign with both keys,
// send over the pool to the sink.
func BenchmarkPipeline(b *testing.B) {
	for _, signed := range []bool{false, true} {
		b.Run(map[bool]string{false: "plain", true: "rsa+ed25519"}[signed], func(b *testing.B) {
			sink, _ := mailtest.Start(true)
			defer sink.Close()
			pool := plainPool(b, sink, 8)
			rsaKey, edKey := testKeys(b)
			signer, _ := mail.NewSigner(rsaKey, edKey)
			b.ReportAllocs()
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				m := bigMessage()
				for pb.Next() {
					m.MessageID = mail.NewMessageID("books.example")
					raw := m.Bytes()
					if signed {
						raw, _ = signer.Sign(raw)
					}
					if err := pool.Send(context.Background(), envTo("r@example.com"), raw); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// pipelineRelay is a minimal relay offering PIPELINING but not CHUNKING (as Postfix's
// smtp-sink does), so the pool pipelines MAIL, RCPT and DATA and dot-stuffs the body
// itself. It reads commands one by one, as a relay must, whatever the client batches.
type pipelineRelay struct {
	ln    net.Listener
	mu    sync.Mutex
	got   [][]byte
	cmds  []string
	conns int
}

func newPipelineRelay(t *testing.T) *pipelineRelay {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &pipelineRelay{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.conns++
			r.mu.Unlock()
			go r.serve(c)
		}
	}()
	return r
}

func (r *pipelineRelay) serve(c net.Conn) {
	defer c.Close()
	tp := textproto.NewConn(c)
	tp.PrintfLine("220 relay.test ESMTP")
	rcpts := 0
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		r.mu.Lock()
		r.cmds = append(r.cmds, line)
		r.mu.Unlock()
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			tp.PrintfLine("250-relay.test\r\n250-PIPELINING\r\n250 8BITMIME")
		case "MAIL":
			rcpts = 0
			tp.PrintfLine("250 2.1.0 ok")
		case "RCPT":
			if strings.Contains(arg, "gone@") {
				tp.PrintfLine("550 5.1.1 %s: no such user", arg[3:])
				continue
			}
			rcpts++
			tp.PrintfLine("250 2.1.5 ok")
		case "DATA":
			if rcpts == 0 {
				tp.PrintfLine("554 5.5.1 no valid recipients")
				continue
			}
			tp.PrintfLine("354 go ahead")
			b, err := tp.ReadDotBytes()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.got = append(r.got, b)
			r.mu.Unlock()
			tp.PrintfLine("250 2.0.0 queued")
		case "RSET":
			rcpts = 0
			tp.PrintfLine("250 2.0.0 ok")
		case "QUIT":
			tp.PrintfLine("221 bye")
			return
		default:
			tp.PrintfLine("502 5.5.2 unknown command")
		}
	}
}

func TestSMTPPipelinedData(t *testing.T) {
	relay := newPipelineRelay(t)
	pool, err := mail.NewSMTPPool(mail.SMTPConfig{Host: "127.0.0.1", Port: relay.ln.Addr().(*net.TCPAddr).Port, TLS: "none", PoolSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	m := sample()
	m.Text = ".a line that starts with a dot\n..and two\nthe end"
	m.HTML = ""
	msgs := [][]byte{sample().Bytes(), m.Bytes(), []byte("Subject: bare line feeds\n\nare mended\n")}
	for _, msg := range msgs {
		if err := pool.Send(context.Background(), envTo("a@example.com"), msg); err != nil {
			t.Fatal(err)
		}
	}
	err = pool.Send(context.Background(), mail.Envelope{From: "b@books.example", To: []string{"gone@example.com"}}, msgs[0])
	var se *mail.SendError
	if !errors.As(err, &se) || se.Temporary || se.Code != 550 || se.Enhanced != "5.1.1" || strings.Contains(err.Error(), "gone@") {
		t.Fatalf("refused recipient: %#v", err)
	}
	// One good recipient of two: as command by command, nothing is sent and the refusal
	// is reported.
	err = pool.Send(context.Background(), mail.Envelope{From: "b@books.example", To: []string{"gone@example.com", "c@example.com"}}, msgs[0])
	if !errors.As(err, &se) || se.Code != 550 {
		t.Fatalf("partly refused: %v", err)
	}
	if err := pool.Send(context.Background(), envTo("d@example.com"), msgs[0]); err != nil {
		t.Fatalf("the connection is unusable after a refusal: %v", err)
	}
	relay.mu.Lock()
	defer relay.mu.Unlock()
	want := []string{string(msgs[0]), string(msgs[1]), "Subject: bare line feeds\r\n\r\nare mended\r\n", string(msgs[0])}
	if len(relay.got) != len(want) {
		t.Fatalf("relay got %d messages, want %d", len(relay.got), len(want))
	}
	for i := range want {
		// ReadDotBytes turns CRLF into LF.
		if got := strings.ReplaceAll(string(relay.got[i]), "\n", "\r\n"); got != want[i] {
			t.Errorf("message %d arrived as\n%q\nwant\n%q", i, got, want[i])
		}
	}
	if relay.conns != 1 || !slices.Contains(relay.cmds, "MAIL FROM:<b@books.example> BODY=8BITMIME") {
		t.Fatalf("%d connections; commands %q", relay.conns, relay.cmds)
	}
}
