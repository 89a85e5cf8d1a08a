package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// SMTPConfig describes a relay.
type SMTPConfig struct {
	Host               string
	Port               int // 0: 465 with TLS "tls" (implicit), else 587; see DefaultSMTPPort
	Username, Password string
	TLS                string // "starttls" (default), "tls" (implicit) or "none"
	PoolSize           int    // connections open at once; default 4
	HelloName          string // EHLO name; default "localhost"
	TLSConfig          *tls.Config
	Timeout            time.Duration // per SMTP command and for dialing; default 30s
}

// DefaultSMTPPort is the relay port for a TLS mode when none is configured: 465
// (submissions) for implicit TLS, else 587 (submission). It is the one place that
// decides; the configuration leaves the port 0 unless it is set.
func DefaultSMTPPort(tlsMode string) int {
	if tlsMode == "tls" {
		return 465
	}
	return 587
}

// SMTPPool delivers over up to PoolSize reused connections to one relay. It is safe
// for concurrent use: each Send holds one connection for its transaction.
type SMTPPool struct {
	cfg    SMTPConfig
	tls    *tls.Config
	slots  chan struct{} // one token per open (or opening) connection
	idle   chan *conn    // connections ready for the next message
	closed chan struct{}
	once   sync.Once
	dials  atomic.Int64
}

type conn struct {
	*smtp.Client
	net    net.Conn
	reused bool      // has carried a message before: may have been dropped by the relay while idle
	pipe   *pipeline // set when the relay offers PIPELINING (see pipeline.go)
}

// ErrPoolClosed is returned by Send after Close.
var ErrPoolClosed = errors.New("smtp: pool closed")

// NewSMTPPool returns a pool; connections are opened on demand. It refuses to send a
// password over an unencrypted connection to anything but loopback.
func NewSMTPPool(cfg SMTPConfig) (*SMTPPool, error) {
	if cfg.Host == "" {
		return nil, errors.New("smtp: no host")
	}
	if cfg.TLS == "" {
		cfg.TLS = "starttls"
	}
	switch cfg.TLS {
	case "starttls", "tls", "none":
	default:
		return nil, fmt.Errorf("smtp: TLS mode %q (want starttls, tls or none)", cfg.TLS)
	}
	if cfg.Port == 0 {
		cfg.Port = DefaultSMTPPort(cfg.TLS)
	}
	if cfg.PoolSize <= 0 {
		cfg.PoolSize = 4
	}
	if cfg.HelloName == "" {
		cfg.HelloName = "localhost"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Username != "" && cfg.TLS == "none" && !isLoopback(cfg.Host) {
		return nil, errors.New("smtp: refusing to send a password without TLS to a remote relay")
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLSConfig != nil {
		tc = cfg.TLSConfig.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = cfg.Host
	}
	return &SMTPPool{cfg: cfg, tls: tc, slots: make(chan struct{}, cfg.PoolSize),
		idle: make(chan *conn, cfg.PoolSize), closed: make(chan struct{})}, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Dials reports how many connections the pool has opened (reuse shows as few dials).
func (p *SMTPPool) Dials() int { return int(p.dials.Load()) }

// Send delivers one message. It reuses an idle connection when there is one; a reused
// connection that turns out to be dead before the relay took the message is replaced,
// so a relay's idle timeout never costs a message.
func (p *SMTPPool) Send(ctx context.Context, env Envelope, msg []byte) error {
	if err := env.check(); err != nil {
		return err
	}
	for {
		c, err := p.get(ctx)
		if err != nil {
			return err
		}
		// The context interrupts a transaction by expiring the connection's deadline.
		// go-smtp sets a fresh deadline per command, so deliver also checks the context
		// between commands.
		stop := context.AfterFunc(ctx, func() { c.net.SetDeadline(time.Unix(1, 0)) })
		stage, err := p.deliver(ctx, c, env, msg)
		healthy := stop() // false: the deadline may have been cut, so don't reuse
		if err == nil {
			// No RSET after success: the relay is back in its initial state after the
			// DATA reply (RFC 5321 §4.1.1.4), and with go-smtp a RSET also forces a new
			// EHLO: two round trips per message for nothing.
			p.release(c, healthy)
			return nil
		}
		var se *smtp.SMTPError
		isReply := errors.As(err, &se)
		if isReply && se.Code != 421 {
			// The relay answered: the connection is fine, the transaction is not.
			// RSET clears it before the connection carries another message.
			p.release(c, healthy && c.reset() == nil)
			return replyError(se)
		}
		p.discard(c) // broken, or the relay is closing it (421)
		if ctx.Err() != nil {
			return ctxError(ctx)
		}
		if c.reused && stage == stageMail {
			continue // stale pooled connection; nothing was accepted yet, so no duplicate
		}
		if isReply {
			return replyError(se)
		}
		return &SendError{Message: redact(err.Error()), Temporary: true, err: err}
	}
}

// replyError turns a relay's reply into a SendError: 4xx temporary, 5xx permanent.
func replyError(se *smtp.SMTPError) *SendError {
	// No cause kept: the reply's text may name addresses, which stay out of logs.
	e := &SendError{Code: se.Code, Message: redact(se.Message), Temporary: se.Code < 500}
	if se.EnhancedCode != (smtp.EnhancedCode{}) && se.EnhancedCode != smtp.NoEnhancedCode {
		e.Enhanced = fmt.Sprintf("%d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
	}
	return e
}

func ctxError(ctx context.Context) *SendError {
	return &SendError{Message: "smtp: " + ctx.Err().Error(), Temporary: true, err: ctx.Err()}
}

type stage int

const (
	stageMail stage = iota // nothing sent that the relay could have acted on
	stageRcpt
	stageData
)

// reset clears a refused transaction.
func (c *conn) reset() error {
	if c.pipe != nil {
		return c.pipe.reset()
	}
	return c.Reset()
}

// deliver runs one transaction: MAIL, RCPT for each recipient, DATA.
func (p *SMTPPool) deliver(ctx context.Context, c *conn, env Envelope, msg []byte) (stage, error) {
	if c.pipe != nil && len(env.To) == 1 && cleanLines(msg) {
		return c.pipe.deliver(ctx, env, msg)
	}
	if err := c.Mail(env.From, nil); err != nil {
		return stageMail, err
	}
	for _, to := range env.To {
		if err := ctx.Err(); err != nil {
			return stageRcpt, err
		}
		if err := c.Rcpt(to, nil); err != nil {
			return stageRcpt, err
		}
	}
	if err := ctx.Err(); err != nil {
		return stageRcpt, err
	}
	w, err := c.Data()
	if err != nil {
		return stageRcpt, err
	}
	if _, err := w.Write(msg); err != nil {
		w.Close()
		return stageData, err
	}
	return stageData, w.Close()
}

// get returns an idle connection, or dials one while fewer than PoolSize are open, or
// waits for one to come back.
func (p *SMTPPool) get(ctx context.Context) (*conn, error) {
	if ctx.Err() != nil {
		return nil, ctxError(ctx)
	}
	select {
	case <-p.closed:
		return nil, &SendError{Message: ErrPoolClosed.Error(), Temporary: true, err: ErrPoolClosed}
	default:
	}
	select {
	case c := <-p.idle:
		return c, nil
	default:
	}
	select {
	case c := <-p.idle:
		return c, nil
	case p.slots <- struct{}{}:
		c, err := p.dial(ctx)
		if err != nil {
			<-p.slots
			// Failing to connect or log in is the relay's or the configuration's
			// fault, never the message's: temporary, so a campaign pauses rather than
			// marking every recipient failed.
			var se *smtp.SMTPError
			if errors.As(err, &se) {
				e := replyError(se)
				e.Temporary = true
				return nil, e
			}
			return nil, &SendError{Message: redact(err.Error()), Temporary: true, err: err}
		}
		return c, nil
	case <-ctx.Done():
		return nil, ctxError(ctx)
	case <-p.closed:
		return nil, &SendError{Message: ErrPoolClosed.Error(), Temporary: true, err: ErrPoolClosed}
	}
}

// release hands a healthy connection back to the pool, or closes it if it is not
// healthy or the pool is closing.
func (p *SMTPPool) release(c *conn, healthy bool) {
	if !healthy {
		p.discard(c)
		return
	}
	c.reused = true
	select {
	case <-p.closed:
		c.Quit()
		p.discard(c)
	default:
		p.idle <- c // never blocks: at most PoolSize connections exist
	}
}

func (p *SMTPPool) discard(c *conn) {
	c.Close()
	<-p.slots
}

// Addr is the relay's host:port the pool connects to.
func (p *SMTPPool) Addr() string { return net.JoinHostPort(p.cfg.Host, strconv.Itoa(p.cfg.Port)) }

func (p *SMTPPool) dial(ctx context.Context) (*conn, error) {
	addr := p.Addr()
	d := net.Dialer{Timeout: p.cfg.Timeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	// The greeting, TLS handshake, EHLO and AUTH obey the context too.
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	var c *smtp.Client
	var top net.Conn // the connection go-smtp talks over, when we hold it
	switch p.cfg.TLS {
	case "tls":
		top = tls.Client(nc, p.tls)
		c = smtp.NewClient(top)
	case "starttls": // fails if the relay does not offer STARTTLS: no silent downgrade
		var tc *tls.Conn
		var greeting string
		if tc, greeting, err = p.startTLS(ctx, nc); err == nil {
			top = tc
			c = smtp.NewClient(&replayConn{Conn: tc, pending: []byte("220 " + greeting + "\r\n")})
		}
	default:
		top = nc
		c = smtp.NewClient(nc)
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	c.CommandTimeout = p.cfg.Timeout
	c.SubmissionTimeout = p.cfg.Timeout
	if err := c.Hello(p.cfg.HelloName); err != nil {
		c.Close()
		return nil, err
	}
	if p.cfg.Username != "" {
		if err := c.Auth(sasl.NewPlainClient("", p.cfg.Username, p.cfg.Password)); err != nil {
			c.Close()
			return nil, err
		}
	}
	if !stop() { // the context ended during the handshake
		c.Close()
		return nil, ctx.Err()
	}
	p.dials.Add(1)
	cn := &conn{Client: c, net: nc}
	cn.pipe = newPipeline(c, top, p.cfg.Timeout)
	return cn, nil
}

// Close stops new sends, waits for those under way to finish, and quits every
// connection. It is safe to call more than once.
func (p *SMTPPool) Close() error {
	p.once.Do(func() {
		close(p.closed)
		// Holding every slot means no connection is open or being opened; sends under
		// way return theirs (release sees closed and quits it), idle ones are quit here.
		for held := 0; held < cap(p.slots); {
			select {
			case c := <-p.idle:
				c.Quit()
				p.discard(c)
			case p.slots <- struct{}{}:
				held++
			}
		}
	})
	return nil
}
