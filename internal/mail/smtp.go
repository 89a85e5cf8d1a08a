package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// SMTPConfig describes a relay.
type SMTPConfig struct {
	Host               string
	Port               int
	Username, Password string
	TLS                string // "starttls" (default), "tls" (implicit) or "none"
	PoolSize           int
	HelloName          string      // EHLO name; default "localhost"
	TLSConfig          *tls.Config // optional (tests: custom roots)
	Timeout            time.Duration
}

// SMTPPool delivers over up to PoolSize reused connections to one relay.
type SMTPPool struct {
	cfg   SMTPConfig
	slots chan struct{}     // bounds open connections
	idle  chan *smtp.Client // connections ready for the next message
	mu    sync.Mutex
	dials int
}

// NewSMTPPool returns a pool; connections are opened on demand.
func NewSMTPPool(cfg SMTPConfig) (*SMTPPool, error) {
	if cfg.Host == "" {
		return nil, errors.New("smtp: no host")
	}
	if cfg.PoolSize <= 0 {
		cfg.PoolSize = 4
	}
	if cfg.Port == 0 {
		cfg.Port = 587
	}
	if cfg.TLS == "" {
		cfg.TLS = "starttls"
	}
	if cfg.HelloName == "" {
		cfg.HelloName = "localhost"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Username != "" && cfg.TLS == "none" && !isLoopback(cfg.Host) {
		return nil, errors.New("smtp: refusing to send a password without TLS to a remote relay")
	}
	return &SMTPPool{cfg: cfg, slots: make(chan struct{}, cfg.PoolSize), idle: make(chan *smtp.Client, cfg.PoolSize)}, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Dials reports how many connections the pool has opened (reuse shows as few dials).
func (p *SMTPPool) Dials() int { p.mu.Lock(); defer p.mu.Unlock(); return p.dials }

// Send delivers one message, reusing an idle connection when there is one. A broken
// connection is replaced once before the error is returned.
func (p *SMTPPool) Send(ctx context.Context, env Envelope, msg []byte) error {
	for attempt := 0; ; attempt++ {
		c, err := p.get(ctx)
		if err != nil {
			return err
		}
		err = p.deliver(c, env, msg)
		var se *smtp.SMTPError
		switch {
		case err == nil:
			p.put(c)
			return nil
		case errors.As(err, &se):
			// The relay answered: the connection is fine, the message is not (for now).
			if c.Reset() == nil {
				p.put(c)
			} else {
				p.discard(c)
			}
			return &SendError{Code: se.Code, Enhanced: fmt.Sprintf("%d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2]),
				Message: redact(se.Message), Temporary: se.Code >= 400 && se.Code < 500}
		default:
			p.discard(c)
			if attempt == 0 {
				continue // a stale pooled connection: try a fresh one once
			}
			return &SendError{Message: redact(err.Error()), Temporary: true}
		}
	}
}

func (p *SMTPPool) deliver(c *smtp.Client, env Envelope, msg []byte) error {
	if err := c.Mail(env.From, nil); err != nil {
		return err
	}
	for _, to := range env.To {
		if err := c.Rcpt(to, nil); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

func (p *SMTPPool) get(ctx context.Context) (*smtp.Client, error) {
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
			return nil, &SendError{Message: redact(err.Error()), Temporary: true}
		}
		return c, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (p *SMTPPool) put(c *smtp.Client) { p.idle <- c }

func (p *SMTPPool) discard(c *smtp.Client) {
	c.Close()
	<-p.slots
}

func (p *SMTPPool) dial(ctx context.Context) (*smtp.Client, error) {
	addr := net.JoinHostPort(p.cfg.Host, strconv.Itoa(p.cfg.Port))
	tlsCfg := p.cfg.TLSConfig
	if tlsCfg == nil {
		tlsCfg = &tls.Config{ServerName: p.cfg.Host, MinVersion: tls.VersionTLS12}
	}
	d := net.Dialer{Timeout: p.cfg.Timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	var c *smtp.Client
	switch p.cfg.TLS {
	case "tls":
		c = smtp.NewClient(tls.Client(conn, tlsCfg))
	case "starttls":
		c, err = smtp.NewClientStartTLS(conn, tlsCfg)
	default:
		c = smtp.NewClient(conn)
	}
	if err != nil {
		conn.Close()
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
	p.mu.Lock()
	p.dials++
	p.mu.Unlock()
	return c, nil
}

// Close quits every idle connection.
func (p *SMTPPool) Close() error {
	for {
		select {
		case c := <-p.idle:
			c.Quit()
			<-p.slots
		default:
			return nil
		}
	}
}
