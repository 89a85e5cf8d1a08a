package mail

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
)

// pipeline writes whole transactions on a connection whose relay offers PIPELINING
// (RFC 2920): MAIL, RCPT and DATA go out in one write and their replies are read
// together, and with CHUNKING (RFC 3030) the message itself follows as BDAT … LAST in
// that same write. go-smtp's client sends one command per round trip and writes DATA
// through a byte-at-a-time dot-stuffer; for a 6 KB campaign message on loopback those
// were the largest costs after rendering (4 round trips and ~8 write syscalls per
// message, against 1-2 and 1-2 here).
//
// go-smtp still greets, says EHLO, logs in and quits: pipeline only takes over between
// transactions, when the relay has answered everything and go-smtp's reader holds
// nothing unread. It needs the connection go-smtp talks over, which go-smtp keeps to
// itself after its own STARTTLS, so the pool does STARTTLS itself (startTLS).
type pipeline struct {
	conn     net.Conn // what go-smtp talks over (the TLS connection, if any)
	r        *textproto.Reader
	cmds     bytes.Buffer // the commands of one transaction
	body     bytes.Buffer // a dot-stuffed copy, for DATA, when the message needs one
	chunking bool
	eightBit bool // go-smtp adds BODY=8BITMIME when offered; so do we, to change nothing else
	timeout  time.Duration
}

func newPipeline(c *smtp.Client, nc net.Conn, timeout time.Duration) *pipeline {
	if ok, _ := c.Extension("PIPELINING"); !ok {
		return nil
	}
	p := &pipeline{conn: nc, r: textproto.NewReader(bufio.NewReader(&lineLimit{r: nc})), timeout: timeout}
	p.chunking, _ = c.Extension("CHUNKING")
	p.eightBit, _ = c.Extension("8BITMIME")
	return p
}

// cleanLines reports whether every line of msg ends in CRLF, including the last: then
// BDAT may carry it as is, and DATA needs at most its leading dots doubled. Anything
// else goes through go-smtp's writer, which also mends bare line feeds.
func cleanLines(msg []byte) bool {
	if len(msg) < 2 || msg[len(msg)-2] != '\r' || msg[len(msg)-1] != '\n' {
		return false
	}
	for i := 0; ; {
		j := bytes.IndexByte(msg[i:], '\n')
		if j < 0 {
			return true
		}
		if i+j == 0 || msg[i+j-1] != '\r' {
			return false
		}
		i += j + 1
	}
}

// deliver runs one transaction for one recipient (campaign mail is one envelope per
// person; with several, a partial refusal would need the all-or-nothing handling of the
// command-by-command path). Stage and error mean what they do for SMTPPool.deliver. The
// caller has checked cleanLines(msg).
func (p *pipeline) deliver(ctx context.Context, env Envelope, msg []byte) (stage, error) {
	if err := p.arm(ctx); err != nil {
		return stageMail, err
	}
	p.cmds.Reset()
	p.cmds.WriteString("MAIL FROM:<")
	p.cmds.WriteString(env.From)
	p.cmds.WriteString(">")
	if p.eightBit {
		p.cmds.WriteString(" BODY=8BITMIME")
	}
	p.cmds.WriteString("\r\nRCPT TO:<")
	p.cmds.WriteString(env.To[0])
	p.cmds.WriteString(">\r\n")
	if p.chunking {
		// The chunk follows its command even when MAIL or RCPT fail: the relay reads
		// and drops it (RFC 3030 §2), so the stream stays in step either way.
		p.cmds.WriteString("BDAT ")
		p.cmds.WriteString(strconv.Itoa(len(msg)))
		p.cmds.WriteString(" LAST\r\n")
		bufs := net.Buffers{p.cmds.Bytes(), msg} // one writev on TCP
		if _, err := bufs.WriteTo(p.conn); err != nil {
			return stageMail, err
		}
	} else {
		p.cmds.WriteString("DATA\r\n")
		if _, err := p.conn.Write(p.cmds.Bytes()); err != nil {
			return stageMail, err
		}
	}
	// Every reply is read, even after a refusal, so the next transaction starts in step;
	// the first refusal is the one reported.
	st, first := stageMail, p.reply(250)
	if first == nil {
		st = stageRcpt
		first = p.reply(25)
	} else if isSMTPReply(first) {
		p.reply(25)
	}
	if first != nil && !isSMTPReply(first) {
		return st, first // the connection broke: nothing more will come
	}
	if p.chunking {
		if err := p.arm(ctx); err != nil {
			return stageData, err
		}
		err := p.reply(250)
		if first != nil {
			return st, first
		}
		return stageData, err
	}
	err := p.reply(354)
	if err != nil {
		if first != nil {
			return st, first
		}
		return stageRcpt, err
	}
	if first != nil {
		// 354 with no recipient should not happen (RFC 2920 §3.1). Ending the DATA
		// would deliver an empty message; dropping the connection aborts it instead
		// (the failed RSET that follows makes the pool discard the connection).
		p.conn.Close()
		return st, first
	}
	var werr error
	switch {
	case bytes.HasPrefix(msg, []byte(".")) || bytes.Contains(msg, []byte("\n.")):
		p.body.Reset()
		w := textproto.NewWriter(bufio.NewWriter(&p.body)).DotWriter()
		w.Write(msg)
		w.Close() // adds the final ".\r\n"
		_, werr = p.conn.Write(p.body.Bytes())
	default: // nothing to stuff: the message goes out as it is
		bufs := net.Buffers{msg, []byte(".\r\n")}
		_, werr = bufs.WriteTo(p.conn)
	}
	if werr != nil {
		return stageData, werr
	}
	if err := p.arm(ctx); err != nil {
		return stageData, err
	}
	return stageData, p.reply(250)
}

// arm gives the next exchange a fresh deadline, then checks the context: its
// cancellation works by expiring the deadline, which the line before may just have
// overwritten.
func (p *pipeline) arm(ctx context.Context) error {
	p.conn.SetDeadline(time.Now().Add(p.timeout))
	return ctx.Err()
}

// reset sends RSET after a refused transaction. Unlike go-smtp's Reset it does not say
// EHLO again: RSET keeps the session (RFC 5321 §4.1.1.5).
func (p *pipeline) reset() error {
	p.conn.SetDeadline(time.Now().Add(p.timeout))
	if _, err := p.conn.Write([]byte("RSET\r\n")); err != nil {
		return err
	}
	return p.reply(250)
}

// reply reads one reply; a refusal comes back as *smtp.SMTPError, as go-smtp makes it.
func (p *pipeline) reply(expect int) error {
	_, _, err := p.r.ReadResponse(expect)
	var te *textproto.Error
	if errors.As(err, &te) {
		return toSMTPError(te)
	}
	return err
}

func isSMTPReply(err error) bool {
	var se *smtp.SMTPError
	return errors.As(err, &se)
}

// toSMTPError does what go-smtp's (unexported) toSMTPErr does: split off an enhanced
// status code if the text starts with one.
func toSMTPError(te *textproto.Error) *smtp.SMTPError {
	se := &smtp.SMTPError{Code: te.Code, Message: te.Msg}
	code, msg, ok := strings.Cut(te.Msg, " ")
	if !ok {
		return se
	}
	parts := strings.Split(code, ".")
	if len(parts) != 3 {
		return se
	}
	var ec smtp.EnhancedCode
	for i, part := range parts {
		n, err := strconv.Atoi(part)
		if err != nil {
			return se
		}
		ec[i] = n
	}
	se.EnhancedCode = ec
	// RFC 2034: the enhanced code starts every line of a multi-line reply.
	se.Message = strings.ReplaceAll(msg, "\n"+code+" ", "\n")
	return se
}

// startTLS does what smtp.NewClientStartTLS does (greeting, EHLO, STARTTLS, handshake)
// but hands back the TLS connection, for the pipeline to write on. It returns the
// relay's greeting line, which go-smtp expects to read first on a new client: see
// replayConn.
func (p *SMTPPool) startTLS(ctx context.Context, nc net.Conn) (*tls.Conn, string, error) {
	nc.SetDeadline(time.Now().Add(p.cfg.Timeout))
	defer nc.SetDeadline(time.Time{})
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	// Nothing comes after the 220 to STARTTLS until the handshake, so this reader is
	// left empty.
	r := textproto.NewReader(bufio.NewReader(&lineLimit{r: nc}))
	cmd := func(line string, expect int) (string, error) {
		if line != "" {
			if _, err := nc.Write([]byte(line + "\r\n")); err != nil {
				return "", err
			}
		}
		_, msg, err := r.ReadResponse(expect)
		var te *textproto.Error
		if errors.As(err, &te) {
			return "", toSMTPError(te)
		}
		return msg, err
	}
	greeting, err := cmd("", 220)
	if err != nil {
		return nil, "", err
	}
	ehlo, err := cmd("EHLO "+p.cfg.HelloName, 250)
	if err != nil {
		return nil, "", err
	}
	offered := false
	for _, line := range strings.Split(ehlo, "\n")[1:] { // the first line is the relay's name
		if kw, _, _ := strings.Cut(line, " "); strings.EqualFold(kw, "STARTTLS") {
			offered = true
		}
	}
	if !offered {
		return nil, "", errors.New("smtp: server doesn't support STARTTLS")
	}
	if _, err := cmd("STARTTLS", 220); err != nil {
		return nil, "", err
	}
	tc := tls.Client(nc, p.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, "", err
	}
	greeting, _, _ = strings.Cut(greeting, "\n")
	return tc, greeting, nil
}

// replayConn gives go-smtp the relay's greeting again before the connection's own
// bytes: a new go-smtp client reads one first, and after STARTTLS none comes.
type replayConn struct {
	net.Conn
	pending []byte
}

func (c *replayConn) Read(b []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(b, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// maxReplyLine bounds one reply line from the relay (RFC 5321 allows 512 bytes; go-smtp
// accepts 2,000), so a broken or hostile relay cannot make the reader grow without end.
const maxReplyLine = 4096

var errReplyTooLong = errors.New("smtp: reply line from the relay is too long")

// lineLimit fails a read once more than maxReplyLine bytes arrive without a line feed.
type lineLimit struct {
	r   io.Reader
	run int // bytes since the last line feed
}

func (l *lineLimit) Read(b []byte) (int, error) {
	n, err := l.r.Read(b)
	for _, c := range b[:n] {
		if c == '\n' {
			l.run = 0
		} else if l.run++; l.run > maxReplyLine {
			return 0, errReplyTooLong
		}
	}
	return n, err
}
