package mail

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Outbox is the embedded default when no relay is configured: every message is written
// to a maildir (tmp/ then renamed into new/), so a new user sees exactly what Tidings
// would have sent. The envelope is recorded in X-Tidings-Envelope-* headers added at
// the top of the stored file, outside the signed message.
type Outbox struct {
	dir string
	seq atomic.Uint64
}

// OutboxEntry describes one stored message.
type OutboxEntry struct {
	ID      string    `json:"id"`
	Time    time.Time `json:"time"`
	From    string    `json:"envelope_from"`
	To      []string  `json:"envelope_to"`
	Subject string    `json:"subject"`
	Size    int64     `json:"size"`
}

// NewOutbox opens (creating) the maildir at dir.
func NewOutbox(dir string) (*Outbox, error) {
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("outbox: %w", err)
		}
	}
	return &Outbox{dir: dir}, nil
}

// Dir is the maildir's path.
func (o *Outbox) Dir() string { return o.dir }

// Send stores the message.
func (o *Outbox) Send(_ context.Context, env Envelope, msg []byte) error {
	now := time.Now()
	id := fmt.Sprintf("%d.%d_%d.tidings", now.UnixNano(), os.Getpid(), o.seq.Add(1))
	var buf bytes.Buffer
	buf.Grow(len(msg) + 256)
	fmt.Fprintf(&buf, "X-Tidings-Envelope-From: <%s>\r\n", env.From)
	for _, to := range env.To {
		fmt.Fprintf(&buf, "X-Tidings-Envelope-To: <%s>\r\n", to)
	}
	buf.Write(msg)
	tmp := filepath.Join(o.dir, "tmp", id)
	if err := os.WriteFile(tmp, buf.Bytes(), 0o600); err != nil {
		return &SendError{Message: "outbox: " + err.Error(), Temporary: true}
	}
	if err := os.Rename(tmp, filepath.Join(o.dir, "new", id)); err != nil {
		return &SendError{Message: "outbox: " + err.Error(), Temporary: true}
	}
	return nil
}

// Close does nothing: the outbox holds no connections.
func (o *Outbox) Close() error { return nil }

var validID = regexp.MustCompile(`^[0-9]+\.[0-9]+_[0-9]+\.tidings$`)

// ErrNoMessage: no stored message has that ID.
var ErrNoMessage = errors.New("outbox: no such message")

func (o *Outbox) path(id string) (string, error) {
	if !validID.MatchString(id) {
		return "", ErrNoMessage
	}
	return filepath.Join(o.dir, "new", id), nil
}

// List returns up to limit entries, newest first.
func (o *Outbox) List(limit int) ([]OutboxEntry, error) {
	files, err := os.ReadDir(filepath.Join(o.dir, "new"))
	if err != nil {
		return nil, err
	}
	sort.Slice(files, func(i, j int) bool { return idTime(files[i].Name()) > idTime(files[j].Name()) })
	var out []OutboxEntry
	for _, f := range files {
		if len(out) >= limit {
			break
		}
		if !validID.MatchString(f.Name()) {
			continue
		}
		e, err := o.entry(f.Name())
		if err != nil {
			continue // removed meanwhile
		}
		out = append(out, e)
	}
	return out, nil
}

func idTime(id string) int64 {
	n, _ := strconv.ParseInt(strings.SplitN(id, ".", 2)[0], 10, 64)
	return n
}

func (o *Outbox) entry(id string) (OutboxEntry, error) {
	p, _ := o.path(id)
	f, err := os.Open(p)
	if err != nil {
		return OutboxEntry{}, err
	}
	defer f.Close()
	st, _ := f.Stat()
	h, err := textproto.NewReader(bufio.NewReader(f)).ReadMIMEHeader()
	if err != nil && len(h) == 0 {
		return OutboxEntry{}, err
	}
	trim := func(s string) string { return strings.Trim(s, "<>") }
	e := OutboxEntry{ID: id, Time: time.Unix(0, idTime(id)), From: trim(h.Get("X-Tidings-Envelope-From")), Subject: decodeHeader(h.Get("Subject")), Size: st.Size()}
	for _, to := range h.Values("X-Tidings-Envelope-To") {
		e.To = append(e.To, trim(to))
	}
	return e, nil
}

// Read returns the stored message as sent (without the envelope headers).
func (o *Outbox) Read(id string) ([]byte, error) {
	p, err := o.path(id)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoMessage
	}
	if err != nil {
		return nil, err
	}
	for bytes.HasPrefix(b, []byte("X-Tidings-Envelope-")) {
		i := bytes.Index(b, []byte("\r\n"))
		if i < 0 {
			break
		}
		b = b[i+2:]
	}
	return b, nil
}

// Delete removes a stored message.
func (o *Outbox) Delete(id string) error {
	p, err := o.path(id)
	if err != nil {
		return err
	}
	if err := os.Remove(p); errors.Is(err, os.ErrNotExist) {
		return ErrNoMessage
	} else {
		return err
	}
}

// Purge deletes every stored message whose envelope recipients include addr (erasure:
// the outbox holds mail in clear). It returns how many it deleted.
func (o *Outbox) Purge(addr string) (int, error) {
	files, err := os.ReadDir(filepath.Join(o.dir, "new"))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, f := range files {
		if !validID.MatchString(f.Name()) {
			continue
		}
		e, err := o.entry(f.Name())
		if err != nil {
			continue
		}
		for _, to := range e.To {
			if strings.EqualFold(to, addr) {
				if err := o.Delete(f.Name()); err == nil {
					n++
				}
				break
			}
		}
	}
	return n, nil
}
