// Package bounce reads what receiving mail systems send back about campaign messages:
// delivery status notifications (RFC 3464), spam complaints (RFC 5965 feedback reports)
// and the non-standard bounces some servers still write, and classifies them as hard or
// soft bounces (RFC 3463 status codes plus a pattern table) or complaints. It takes them
// by inbound SMTP on the return path's domain (Server) or by an API upload, and applies
// them to their delivery through the store (Processor). The same server takes mail to
// the List-Unsubscribe mailto address, which unsubscribes the recipient.
package bounce

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"

	"github.com/tidings/tidings/internal/tidings"
)

// MaxMessageBytes is the largest report read; a report quotes at most the original
// message, and Tidings' own messages are far smaller.
const MaxMessageBytes = 1 << 20

// Report is what one inbound message says about the message it answers.
type Report struct {
	Kind   tidings.FeedbackKind // empty: not a bounce or complaint (a delay notice, an auto-reply)
	Status string               // RFC 3463 status such as "5.1.1", when given
	Detail string               // the diagnostic or feedback type, for people to read
	// Token is the recipient token found in the quoted original message's return path,
	// used when the report did not arrive at that return path (feedback loops, uploads).
	Token string
}

// ErrNotMail is returned for input that is not a mail message at all.
var ErrNotMail = errors.New("bounce: not a mail message")

// Parse reads one inbound message.
func Parse(r io.Reader) (Report, error) {
	e, err := message.Read(bufio.NewReader(io.LimitReader(r, MaxMessageBytes)))
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		return Report{}, fmt.Errorf("%w: %v", ErrNotMail, err)
	}
	if e.Header.Len() == 0 {
		return Report{}, ErrNotMail
	}
	mt, params, _ := e.Header.ContentType()
	if mt == "multipart/report" {
		switch strings.ToLower(params["report-type"]) {
		case "delivery-status":
			return parseDSN(e)
		case "feedback-report":
			return parseARF(e)
		}
	}
	return parseFreeForm(e)
}

// parseDSN reads an RFC 3464 report: the first recipient whose action is "failed"
// decides; "delayed", "delivered", "relayed" and "expanded" are not bounces.
func parseDSN(e *message.Entity) (Report, error) {
	var rep Report
	failed := false
	err := eachPart(e, func(mt string, body []byte) {
		switch mt {
		case "message/delivery-status", "message/global-delivery-status":
			blocks := statusBlocks(body)
			if len(blocks) > 0 {
				blocks = blocks[1:] // the per-message fields; recipients follow
			}
			for _, f := range blocks {
				if failed || !strings.EqualFold(firstWord(f.Get("Action")), "failed") {
					continue
				}
				failed = true
				rep.Status = statusCode(f.Get("Status"))
				rep.Detail = oneLine(f.Get("Diagnostic-Code"))
			}
		case "message/rfc822", "text/rfc822-headers", "message/rfc822-headers", "message/global", "message/global-headers":
			rep.Token = findToken(body)
		}
	})
	if err != nil {
		return Report{}, err
	}
	if failed {
		rep.Kind = Classify(rep.Status, rep.Detail)
	}
	return rep, nil
}

// parseARF reads an RFC 5965 feedback report. "abuse", "fraud", "virus" and "other"
// are complaints; "not-spam" and "auth-failure" are not about the person's wishes.
func parseARF(e *message.Entity) (Report, error) {
	var rep Report
	err := eachPart(e, func(mt string, body []byte) {
		switch mt {
		case "message/feedback-report":
			blocks := statusBlocks(body)
			if len(blocks) == 0 {
				return
			}
			ft := strings.ToLower(firstWord(blocks[0].Get("Feedback-Type")))
			rep.Detail = oneLine("feedback type " + ft)
			switch ft {
			case "abuse", "fraud", "virus", "other":
				rep.Kind = tidings.FeedbackComplaint
			}
		case "message/rfc822", "text/rfc822-headers", "message/rfc822-headers", "message/global", "message/global-headers":
			rep.Token = findToken(body)
		}
	})
	return rep, err
}

// parseFreeForm reads a bounce written as plain text (qmail, old Exchange and friends).
// Only a message from a mailer daemon, or with a bounce's subject, is taken for one;
// the status and kind come from its text, and the token from anywhere in it.
func parseFreeForm(e *message.Entity) (Report, error) {
	from := strings.ToLower(e.Header.Get("From"))
	subject := strings.ToLower(e.Header.Get("Subject"))
	daemon := strings.Contains(from, "mailer-daemon") || strings.Contains(from, "postmaster")
	bounceSubject := false
	for _, s := range []string{"undeliver", "delivery status notification", "delivery failure", "failure notice", "returned mail", "mail delivery failed", "delivery has failed"} {
		bounceSubject = bounceSubject || strings.Contains(subject, s)
	}
	var text bytes.Buffer
	err := eachPart(e, func(mt string, body []byte) {
		if strings.HasPrefix(mt, "text/") || strings.HasPrefix(mt, "message/") {
			text.Write(body)
			text.WriteByte('\n')
		}
	})
	if err != nil {
		return Report{}, err
	}
	rep := Report{Token: findToken(text.Bytes())}
	if !daemon && !bounceSubject {
		return rep, nil
	}
	body := text.String()
	if m := statusInText.FindStringSubmatch(body); m != nil {
		rep.Status = m[1]
	}
	rep.Detail = oneLine(firstMatchLine(body))
	rep.Kind = Classify(rep.Status, body)
	if rep.Status == "" && rep.Kind == tidings.FeedbackSoft && !softPattern.MatchString(body) {
		rep.Kind = "" // nothing in it says what went wrong: an auto-reply, not a bounce
	}
	return rep, nil
}

// eachPart walks the message's leaves, giving each one's media type and decoded body.
func eachPart(e *message.Entity, fn func(mt string, body []byte)) error {
	return e.Walk(func(_ []int, part *message.Entity, err error) error {
		if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
			return fmt.Errorf("%w: %v", ErrNotMail, err)
		}
		mt, _, _ := part.Header.ContentType()
		if strings.HasPrefix(mt, "multipart/") {
			return nil
		}
		if mt == "" {
			mt = "text/plain"
		}
		body, rerr := io.ReadAll(part.Body)
		if rerr != nil && !message.IsUnknownCharset(rerr) {
			return fmt.Errorf("%w: %v", ErrNotMail, rerr)
		}
		fn(mt, body)
		return nil
	})
}

// statusBlocks splits a delivery-status or feedback-report body into its header blocks
// (the per-message fields, then one block per recipient).
func statusBlocks(body []byte) []textproto.Header {
	var blocks []textproto.Header
	r := bufio.NewReader(bytes.NewReader(body))
	for {
		for { // blank lines between blocks
			b, err := r.Peek(1)
			if err != nil {
				return blocks
			}
			if b[0] != '\r' && b[0] != '\n' {
				break
			}
			r.ReadByte()
		}
		h, err := textproto.ReadHeader(r)
		if h.Len() > 0 {
			blocks = append(blocks, h)
		}
		if err != nil {
			return blocks
		}
	}
}

// tokenPattern finds a recipient token in quoted headers: in the return path
// (bounces+TOKEN@), or in the List-Unsubscribe mailto address (unsub+TOKEN@, formerly
// unsubscribe+TOKEN@), which survives feedback loops that drop or redact the return path.
var tokenPattern = regexp.MustCompile(`(?:bounces|unsub|unsubscribe)\+([A-Za-z0-9_-]{16,200})@`)

func findToken(b []byte) string {
	if m := tokenPattern.FindSubmatch(b); m != nil {
		return string(m[1])
	}
	return ""
}

// The roles of Tidings' own addresses, the local part's prefix before "+TOKEN".
const (
	RoleReturnPath  = "bounces" // the VERP return path: reports about the message
	RoleUnsubscribe = "unsub"   // the List-Unsubscribe mailto address (RFC 2369)
	// legacyUnsubscribe is the mailto prefix of messages sent before "unsub", whose
	// local part passed RFC 5321's 64 octets; their addresses keep working.
	legacyUnsubscribe = "unsubscribe"
)

// AddressToken splits one of Tidings' addresses (ROLE+TOKEN@domain) into its role and
// recipient token; both are empty for any other address.
func AddressToken(addr string) (role, token string) {
	local, _, ok := strings.Cut(strings.Trim(addr, "<> "), "@")
	if !ok {
		return "", ""
	}
	role, tok, ok := strings.Cut(local, "+")
	if role == legacyUnsubscribe {
		role = RoleUnsubscribe
	}
	if !ok || (role != RoleReturnPath && role != RoleUnsubscribe) || !tokenChars.MatchString(tok) {
		return "", ""
	}
	return role, tok
}

// TokenFromAddress returns the recipient token of a return path
// (bounces+TOKEN@domain), or "".
func TokenFromAddress(addr string) string {
	if role, tok := AddressToken(addr); role == RoleReturnPath {
		return tok
	}
	return ""
}

var tokenChars = regexp.MustCompile(`^[A-Za-z0-9_-]{16,200}$`)

var statusInText = regexp.MustCompile(`\b([245]\.\d{1,3}\.\d{1,3})\b`)

// statusCode takes the RFC 3463 code out of a Status field ("5.1.1 (bad mailbox)").
func statusCode(s string) string {
	if m := statusInText.FindStringSubmatch(s); m != nil {
		return m[1]
	}
	return ""
}

func firstWord(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return strings.TrimSuffix(f[0], ";")
}

// oneLine folds a field from a remote server to one line of clean text, at most 300
// bytes: control characters (NUL among them) become spaces and bytes that are not UTF-8
// go, since a database's text column refuses both.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, ""))
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = strings.ToValidUTF8(s[:300], "")
	}
	return s
}

// firstMatchLine is the first line of a free-form bounce that says what went wrong.
func firstMatchLine(body string) string {
	for _, line := range strings.Split(body, "\n") {
		if hardPattern.MatchString(line) || softPattern.MatchString(line) || statusInText.MatchString(line) {
			return line
		}
	}
	return ""
}
