package bounce

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"slices"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/tidings/tidings/internal/send"
)

// Server is the inbound SMTP server for Tidings' own addresses: point the MX of the
// sending domains (or a relay's forwarding) at it. It accepts mail only for return
// paths (bounces+TOKEN@) and List-Unsubscribe addresses (unsub+TOKEN@) whose
// token is valid, so it is no open relay and no mailbox; everything else is refused at
// RCPT.
type Server struct {
	srv *smtp.Server
	p   *Processor
}

// NewServer returns a server for p, answering as hostname.
func NewServer(p *Processor, hostname string) *Server {
	s := &Server{p: p}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &session{s: s}, nil
	}))
	s.srv.Domain = hostname
	s.srv.MaxMessageBytes = MaxMessageBytes
	s.srv.MaxRecipients = 50
	s.srv.ReadTimeout = time.Minute
	s.srv.WriteTimeout = time.Minute
	s.srv.ErrorLog = log.New(io.Discard, "", 0) // connection errors from the internet are not news
	return s
}

// Serve accepts connections on l until Close.
func (s *Server) Serve(l net.Listener) error {
	err := s.srv.Serve(l)
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops the server and its connections.
func (s *Server) Close() error { return s.srv.Close() }

type session struct {
	s     *Server
	rcpts []string
}

func (x *session) Mail(string, *smtp.MailOptions) error { return nil }

func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	_, tok := AddressToken(to)
	if tok == "" {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox: this server takes bounces and unsubscribe requests only"}
	}
	if _, _, _, ok := send.ParseRecipientToken(x.s.p.Keys, tok); !ok {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such address"}
	}
	x.rcpts = append(x.rcpts, to)
	return nil
}

// Data applies the message once per recipient: an unsubscribe request for each
// List-Unsubscribe address, the report (parsed once) for each return path. Reports that
// are not bounces are accepted and dropped (refusing them would only make the sender
// retry); a store failure is a temporary error, so the sender keeps the message and
// tries again.
func (x *session) Data(r io.Reader) error {
	body, err := io.ReadAll(r) // go-smtp ends it with ErrDataTooLarge past MaxMessageBytes
	if err != nil {
		return err
	}
	var rep Report
	if slices.ContainsFunc(x.rcpts, func(rcpt string) bool { return TokenFromAddress(rcpt) != "" }) {
		if rep, err = Parse(bytes.NewReader(body)); err != nil {
			return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "not a mail message"}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, rcpt := range x.rcpts {
		role, tok := AddressToken(rcpt)
		if role == RoleUnsubscribe {
			err = x.s.p.Unsubscribe(ctx, tok)
		} else {
			_, err = x.s.p.Apply(ctx, rcpt, rep)
		}
		if err != nil {
			x.s.p.log().Warn("inbound mail: applying failed", "role", role, "err", err)
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
		}
	}
	return nil
}

func (x *session) Reset()        { x.rcpts = nil }
func (x *session) Logout() error { return nil }
