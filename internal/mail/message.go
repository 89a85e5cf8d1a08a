// Package mail builds, signs and delivers outbound mail: MIME messages, DKIM signatures
// (rsa-sha256 and ed25519-sha256), a pooled SMTP relay client, and the outbox — a
// maildir in the data folder that stands in for a relay on the embedded default.
package mail

import (
	"bufio"
	"crypto/rand"
	"encoding/base32"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"time"
)

// Header is one extra header field, written in order after the standard ones.
type Header struct{ Key, Value string }

// Message is an outbound message. Text and HTML may each be empty; with both, the
// message is multipart/alternative.
type Message struct {
	From, To  mail.Address
	ReplyTo   *mail.Address
	Subject   string
	Date      time.Time
	MessageID string // without angle brackets
	Headers   []Header
	Text      string
	HTML      string
}

// The layout is fixed (one or two text parts), so it is written directly with the
// standard library's RFC 2047 and quoted-printable encoders rather than through a
// general MIME tree: it is the hot path of campaign sending. Parsing (tests, bounces)
// uses go-message.

// WriteTo writes the message in RFC 5322 form with CRLF line endings.
func (m *Message) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: bufio.NewWriterSize(w, 8<<10)}
	h := func(k, v string) {
		cw.WriteString(k)
		cw.WriteString(": ")
		cw.WriteString(v)
		cw.WriteString("\r\n")
	}
	h("From", formatAddress(m.From))
	h("To", formatAddress(m.To))
	if m.ReplyTo != nil {
		h("Reply-To", formatAddress(*m.ReplyTo))
	}
	h("Subject", encodeHeader(m.Subject))
	date := m.Date
	if date.IsZero() {
		date = time.Now()
	}
	h("Date", date.Format(time.RFC1123Z))
	if m.MessageID != "" {
		h("Message-ID", "<"+m.MessageID+">")
	}
	for _, x := range m.Headers {
		h(x.Key, sanitizeHeader(x.Value))
	}
	h("MIME-Version", "1.0")
	switch {
	case m.Text != "" && m.HTML != "":
		boundary := "=_" + randomToken(18)
		h("Content-Type", `multipart/alternative; boundary="`+boundary+`"`)
		cw.WriteString("\r\n")
		writePart(cw, boundary, "text/plain; charset=utf-8", m.Text)
		writePart(cw, boundary, "text/html; charset=utf-8", m.HTML)
		cw.WriteString("--" + boundary + "--\r\n")
	case m.HTML != "":
		writeSinglePart(cw, h, "text/html; charset=utf-8", m.HTML)
	default:
		writeSinglePart(cw, h, "text/plain; charset=utf-8", m.Text)
	}
	if err := cw.w.(*bufio.Writer).Flush(); err != nil {
		return cw.n, err
	}
	return cw.n, cw.err
}

// Bytes renders the message.
func (m *Message) Bytes() []byte {
	var b strings.Builder
	m.WriteTo(&b)
	return []byte(b.String())
}

func writeSinglePart(cw *countWriter, h func(k, v string), ctype, body string) {
	h("Content-Type", ctype)
	h("Content-Transfer-Encoding", "quoted-printable")
	cw.WriteString("\r\n")
	writeQP(cw, body)
}

func writePart(cw *countWriter, boundary, ctype, body string) {
	cw.WriteString("--" + boundary + "\r\nContent-Type: " + ctype + "\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	writeQP(cw, body)
}

// writeQP writes body quoted-printable with CRLF line breaks, ending in CRLF.
func writeQP(cw *countWriter, body string) {
	body = strings.ReplaceAll(body, "\r\n", "\n")
	qp := quotedprintable.NewWriter(crlfWriter{cw})
	io.WriteString(qp, body)
	qp.Close()
	cw.WriteString("\r\n")
}

// crlfWriter turns the quoted-printable writer's bare LF into CRLF.
type crlfWriter struct{ w *countWriter }

func (c crlfWriter) Write(p []byte) (int, error) {
	start := 0
	for i, b := range p {
		if b == '\n' && (i == 0 || p[i-1] != '\r') {
			c.w.Write(p[start:i])
			c.w.WriteString("\r\n")
			start = i + 1
		}
	}
	c.w.Write(p[start:])
	return len(p), nil
}

type countWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}

func (c *countWriter) WriteString(s string) { io.WriteString(c, s) }

// formatAddress encodes a display name with RFC 2047 when needed.
func formatAddress(a mail.Address) string {
	if a.Name == "" {
		return "<" + a.Address + ">"
	}
	return a.String()
}

func encodeHeader(s string) string {
	return mime.QEncoding.Encode("utf-8", sanitizeHeader(s))
}

// sanitizeHeader removes line breaks: a header value can never start a new header.
func sanitizeHeader(s string) string {
	if strings.ContainsAny(s, "\r\n") {
		s = strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ").Replace(s)
	}
	return s
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return strings.ToLower(b32.EncodeToString(b))
}

// NewMessageID returns a globally unique Message-ID (without brackets) at domain.
func NewMessageID(domain string) string {
	return randomToken(15) + "@" + domain
}

var wordDecoder = new(mime.WordDecoder)

func decodeHeader(s string) string {
	d, err := wordDecoder.DecodeHeader(s)
	if err != nil {
		return s
	}
	return d
}
