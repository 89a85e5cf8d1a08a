package mail

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Outbox is the embedded default when no relay is configured: every message is written
// to a maildir (tmp/ then renamed into new/), so a new user sees exactly what Tidings
// would have sent, in the web UI or in any mail client pointed at the folder.
//
// The envelope is recorded in X-Tidings-Envelope-From, X-Tidings-Envelope-Account (when
// the mail is an account's) and X-Tidings-Envelope-To header fields added at the top of
// the stored file, rather than in a sidecar: one file per
// message keeps the rename atomic and the maildir readable by mail clients. They sit
// above the DKIM signature, outside what it covers, and Read strips them.
type Outbox struct {
	dir  string
	seq  atomic.Uint64
	salt string // tells apart processes that share the folder and a pid (containers)
}

// OutboxEntry describes one stored message.
type OutboxEntry struct {
	ID      string    `json:"id"`
	Time    time.Time `json:"time"`
	From    string    `json:"envelope_from"`
	To      []string  `json:"envelope_to"`
	Subject string    `json:"subject"`
	Size    int64     `json:"size"` // of the message as sent, without the envelope fields
	// Account is the account the mail was sent for; 0 for the instance's own mail and
	// for mail stored by versions that did not record it.
	Account int64 `json:"account_id,omitempty"`
}

// ErrNoMessage: no stored message has that ID.
var ErrNoMessage = errors.New("outbox: no such message")

const (
	envFrom    = "X-Tidings-Envelope-From: "
	envAccount = "X-Tidings-Envelope-Account: "
	envTo      = "X-Tidings-Envelope-To: "
)

// NewOutbox opens (creating) the maildir at dir.
func NewOutbox(dir string) (*Outbox, error) {
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("outbox: %w", err)
		}
	}
	var salt [4]byte
	rand.Read(salt[:])
	return &Outbox{dir: dir, salt: hex.EncodeToString(salt[:])}, nil
}

// Dir is the maildir's path.
func (o *Outbox) Dir() string { return o.dir }

// Send stores the message. It does not fsync: the outbox is a preview of what would
// have been sent, and a sync per message would cap a campaign at the disk's flush rate.
func (o *Outbox) Send(ctx context.Context, env Envelope, msg []byte) error {
	if err := ctx.Err(); err != nil {
		return &SendError{Message: "outbox: " + err.Error(), Temporary: true, err: err}
	}
	if err := env.check(); err != nil { // a line break would also forge envelope fields
		return err
	}
	// Maildir names: time.unique.host; the nanosecond time first makes List's order cheap.
	id := fmt.Sprintf("%d.%d_%d_%s.tidings", time.Now().UnixNano(), os.Getpid(), o.seq.Add(1), o.salt)
	var b bytes.Buffer
	b.Grow(len(msg) + 64*(1+len(env.To)))
	b.WriteString(envFrom + "<" + env.From + ">\r\n")
	if env.Account > 0 {
		b.WriteString(envAccount + strconv.FormatInt(env.Account, 10) + "\r\n")
	}
	for _, to := range env.To {
		b.WriteString(envTo + "<" + to + ">\r\n")
	}
	b.Write(msg)
	tmp := filepath.Join(o.dir, "tmp", id)
	if err := os.WriteFile(tmp, b.Bytes(), 0o600); err != nil {
		return &SendError{Message: "outbox: " + err.Error(), Temporary: true, err: err}
	}
	if err := os.Rename(tmp, filepath.Join(o.dir, "new", id)); err != nil {
		os.Remove(tmp)
		return &SendError{Message: "outbox: " + err.Error(), Temporary: true, err: err}
	}
	return nil
}

// Close does nothing: the outbox holds no connections.
func (o *Outbox) Close() error { return nil }

// validID matches the names Send makes (the salt-less form is from earlier versions).
// Nothing else reaches the file system, so an ID cannot name a path outside the maildir.
var validID = regexp.MustCompile(`^[0-9]{1,19}\.[0-9]{1,10}_[0-9]{1,20}(_[0-9a-f]{8})?\.tidings$`)

// path finds the message's file: in new/, or in cur/ once a mail client has read it
// (maildir appends ":2,flags" there).
func (o *Outbox) path(id string) (string, error) {
	if !validID.MatchString(id) {
		return "", ErrNoMessage
	}
	p := filepath.Join(o.dir, "new", id)
	if _, err := os.Lstat(p); err == nil {
		return p, nil
	}
	// The ID holds no glob metacharacters, as validID guarantees.
	if m, _ := filepath.Glob(filepath.Join(o.dir, "cur", id+":*")); len(m) > 0 {
		return m[0], nil
	}
	return "", ErrNoMessage
}

// files lists stored messages as ID → path, from new/ and cur/.
func (o *Outbox) files() (map[string]string, error) {
	out := map[string]string{}
	for _, sub := range []string{"new", "cur"} {
		des, err := os.ReadDir(filepath.Join(o.dir, sub))
		if err != nil {
			return nil, err
		}
		for _, de := range des {
			id, _, _ := strings.Cut(de.Name(), ":")
			if de.Type().IsRegular() && validID.MatchString(id) {
				out[id] = filepath.Join(o.dir, sub, de.Name())
			}
		}
	}
	return out, nil
}

// List returns up to limit entries (all when limit <= 0), newest first.
func (o *Outbox) List(limit int) ([]OutboxEntry, error) {
	files, err := o.files()
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(files))
	for id := range files {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int {
		if c := cmp.Compare(idTime(b), idTime(a)); c != 0 {
			return c
		}
		return strings.Compare(b, a)
	})
	var out []OutboxEntry
	for _, id := range ids {
		if limit > 0 && len(out) >= limit {
			break
		}
		e, err := readEntry(id, files[id])
		if err != nil {
			continue // removed meanwhile
		}
		out = append(out, e)
	}
	return out, nil
}

func idTime(id string) int64 {
	s, _, _ := strings.Cut(id, ".")
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// readEntry reads only the header of the stored file.
func readEntry(id, path string) (OutboxEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return OutboxEntry{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return OutboxEntry{}, err
	}
	h, err := textproto.NewReader(bufio.NewReader(f)).ReadMIMEHeader()
	if err != nil && len(h) == 0 {
		return OutboxEntry{}, err
	}
	trim := func(s string) string { return strings.TrimSuffix(strings.TrimPrefix(s, "<"), ">") }
	from := h.Get(strings.TrimSuffix(envFrom, ": "))
	e := OutboxEntry{ID: id, Time: time.Unix(0, idTime(id)), From: trim(from), Subject: decodeHeader(h.Get("Subject"))}
	size := st.Size() - int64(len(envFrom)+len(from)+2)
	if acc := h.Get(strings.TrimSuffix(envAccount, ": ")); acc != "" {
		e.Account, _ = strconv.ParseInt(acc, 10, 64)
		size -= int64(len(envAccount) + len(acc) + 2)
	}
	for _, to := range h.Values(strings.TrimSuffix(envTo, ": ")) {
		e.To = append(e.To, trim(to))
		size -= int64(len(envTo) + len(to) + 2)
	}
	e.Size = size
	return e, nil
}

// Read returns the stored message as sent (without the envelope fields).
func (o *Outbox) Read(id string) ([]byte, error) {
	p, err := o.path(id)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoMessage
	}
	if err != nil {
		return nil, err
	}
	for bytes.HasPrefix(b, []byte(envFrom)) || bytes.HasPrefix(b, []byte(envAccount)) || bytes.HasPrefix(b, []byte(envTo)) {
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
	if err := os.Remove(p); errors.Is(err, fs.ErrNotExist) {
		return ErrNoMessage
	} else {
		return err
	}
}

// Purge deletes every stored message whose envelope recipients include addr (erasure:
// the outbox holds mail in clear). It returns how many it deleted.
func (o *Outbox) Purge(addr string) (int, error) {
	files, err := o.files()
	if err != nil {
		return 0, err
	}
	n := 0
	for id, path := range files {
		e, err := readEntry(id, path)
		if err != nil {
			continue
		}
		if slices.ContainsFunc(e.To, func(to string) bool { return strings.EqualFold(to, addr) }) {
			if os.Remove(path) == nil {
				n++
			}
		}
	}
	return n, nil
}
