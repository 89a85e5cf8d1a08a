package mail_test

import (
	"bytes"
	"crypto"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/quotedprintable"
	netmail "net/mail"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset"
	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-msgauth/dkim"

	"github.com/tidings/tidings/internal/mail"
)

func sample() *mail.Message {
	return &mail.Message{
		From:      netmail.Address{Name: "Bücherei Müller", Address: "news@books.example"},
		To:        netmail.Address{Name: "Zoë", Address: "zoe@example.com"},
		ReplyTo:   &netmail.Address{Name: "Ask us", Address: "help@books.example"},
		Subject:   "Neue Bücher für Sie — 10 % Rabatt",
		Date:      time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC),
		MessageID: "abc123@books.example",
		Headers: []mail.Header{
			{Key: "List-Unsubscribe", Value: "<https://t.example/u/x>, <mailto:u@t.example>"},
			{Key: "List-Unsubscribe-Post", Value: "List-Unsubscribe=One-Click"},
			{Key: "List-Id", Value: "Bücher <news.books.example>"},
			{Key: "Feedback-ID", Value: "c1:a1:campaign:tidings"},
			{Key: "X-Evil", Value: "a\r\nBcc: victim@example.com"},
			{Key: "From", Value: "forged@evil.example"}, // dropped: a second From
			{Key: "Bad Key", Value: "x"},                // dropped: not a field name
		},
		Text: "Hallo Zoë,\nneue Bücher sind da. " + strings.Repeat("Lange Zeile ", 20) + "\n\n-- \nFooter\n",
		HTML: "<p>Hallo Zoë,</p><p class=\"x\">neue Bücher sind da.</p>",
	}
}

// checkLines asserts RFC 5322 line rules: CRLF only, at most 998 characters, 7-bit.
func checkLines(t *testing.T, raw []byte) {
	t.Helper()
	if !bytes.HasSuffix(raw, []byte("\r\n")) {
		t.Error("message does not end in CRLF")
	}
	for i, line := range bytes.Split(raw, []byte("\r\n")) {
		if len(line) > 998 {
			t.Errorf("line %d has %d characters", i, len(line))
		}
		if bytes.ContainsAny(line, "\r\n") {
			t.Errorf("line %d has a bare CR or LF", i)
		}
		for _, c := range line {
			if c >= 0x80 {
				t.Fatalf("line %d has 8-bit data: %q", i, line)
			}
		}
	}
}

type part struct{ ctype, charset, cte, body string }

func parse(t *testing.T, raw []byte) (*gomail.Reader, []part) {
	t.Helper()
	r, err := gomail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var parts []part
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		h := p.Header.(*gomail.InlineHeader)
		ct, params, _ := h.ContentType()
		b, _ := io.ReadAll(p.Body)
		parts = append(parts, part{ct, params["charset"], h.Get("Content-Transfer-Encoding"), string(b)})
	}
	return r, parts
}

func TestMessageParsesBack(t *testing.T) {
	raw := sample().Bytes()
	checkLines(t, raw)
	if bytes.Contains(raw, []byte("\nBcc:")) {
		t.Fatal("header injection: a CRLF in a header value started a new header")
	}
	if bytes.Contains(raw, []byte("forged@evil.example")) || bytes.Contains(raw, []byte("Bad Key")) {
		t.Fatal("a reserved or invalid extra header was written")
	}
	if !bytes.Contains(raw, []byte("Subject: =?utf-8?q?")) || !bytes.Contains(raw, []byte("MIME-Version: 1.0\r\n")) {
		t.Fatalf("subject not RFC 2047 encoded, or no MIME-Version:\n%s", raw)
	}
	r, parts := parse(t, raw)
	if subj, _ := r.Header.Subject(); subj != sample().Subject {
		t.Errorf("subject = %q", subj)
	}
	for field, want := range map[string]netmail.Address{"From": sample().From, "To": sample().To, "Reply-To": *sample().ReplyTo} {
		got, err := r.Header.AddressList(field)
		if err != nil || len(got) != 1 || got[0].Name != want.Name || got[0].Address != want.Address {
			t.Errorf("%s = %v %v, want %v", field, got, err, want)
		}
	}
	if id, _ := r.Header.MessageID(); id != "abc123@books.example" {
		t.Errorf("message-id = %q", id)
	}
	if d, _ := r.Header.Date(); !d.Equal(sample().Date) {
		t.Errorf("date = %v", d)
	}
	if r.Header.Get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click" || r.Header.Get("Feedback-ID") != "c1:a1:campaign:tidings" {
		t.Error("extra headers lost")
	}
	if id, _ := r.Header.Text("List-Id"); id != "Bücher <news.books.example>" {
		t.Errorf("List-Id = %q", id)
	}
	if ct, _, _ := r.Header.ContentType(); ct != "multipart/alternative" {
		t.Fatalf("content type %q", ct)
	}
	want := []part{
		{"text/plain", "utf-8", "quoted-printable", strings.ReplaceAll(sample().Text, "\n", "\r\n")},
		{"text/html", "utf-8", "quoted-printable", sample().HTML},
	}
	if fmt.Sprint(parts) != fmt.Sprint(want) {
		t.Errorf("parts:\n%q\nwant\n%q", parts, want)
	}
}

func TestSinglePart(t *testing.T) {
	for _, m := range []*mail.Message{
		{From: netmail.Address{Address: "a@b.example"}, To: netmail.Address{Address: "c@d.example"}, Subject: "Hi", Text: "plain é\r\n"},
		{From: netmail.Address{Address: "a@b.example"}, To: netmail.Address{Address: "c@d.example"}, Subject: "Hi", HTML: "<b>html é</b>"},
	} {
		raw := m.Bytes()
		checkLines(t, raw)
		e, err := message.Read(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		ct, params, _ := e.Header.ContentType()
		body, _ := io.ReadAll(e.Body)
		if want := map[bool]string{true: "text/plain", false: "text/html"}[m.Text != ""]; ct != want || params["charset"] != "utf-8" {
			t.Fatalf("content type %q %v, want %s", ct, params, want)
		}
		// The message ends in CRLF; a body ending in a line break gets no second one.
		if want := strings.TrimSuffix(m.Text+m.HTML, "\r\n") + "\r\n"; string(body) != want {
			t.Fatalf("body %q, want %q", body, want)
		}
		// No Message-ID given: one is made at From's domain.
		if id := e.Header.Get("Message-Id"); !strings.HasSuffix(id, "@b.example>") {
			t.Fatalf("default Message-ID %q", id)
		}
	}
}

func TestLongHeadersFold(t *testing.T) {
	m := sample()
	m.Subject = strings.Repeat("Grüße aus der Bücherei ", 30)
	m.To.Name = strings.TrimSpace(strings.Repeat("Zoë ", 40))
	long := strings.Repeat("x", 3000) // hostile: one word past the 998 limit
	m.Headers = []mail.Header{{Key: "X-Long", Value: long}}
	raw := m.Bytes()
	checkLines(t, raw)
	header, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	for _, line := range bytes.Split(header, []byte("\r\n")) {
		if len(line) > 90 && !bytes.HasPrefix(line, []byte("X-Long")) && line[0] != ' ' {
			t.Errorf("encoded header not folded: %d characters: %.60s…", len(line), line)
		}
	}
	r, _ := parse(t, raw)
	if s, _ := r.Header.Subject(); s != m.Subject {
		t.Errorf("folded subject = %q", s)
	}
	if to, _ := r.Header.AddressList("To"); len(to) != 1 || to[0].Name != m.To.Name {
		t.Errorf("folded To = %v", to)
	}
	if v := strings.ReplaceAll(r.Header.Get("X-Long"), " ", ""); v != long {
		t.Error("an over-long word was lost, not just broken")
	}
}

// FuzzHeaderFolding: any extra header value comes out within the line limits and
// unfolds to itself (line breaks become spaces; an over-long word gains a space).
func FuzzHeaderFolding(f *testing.F) {
	f.Add("<https://t.example/u/x>, <mailto:u@t.example>", 80)
	f.Add("a  b   c ", 300)
	f.Add("x", 2000)
	f.Fuzz(func(t *testing.T, word string, repeat int) {
		if repeat < 0 || repeat > 3000 || len(word)*repeat > 50000 {
			return
		}
		for _, c := range []byte(word) {
			if c < ' ' || c > '~' {
				return // CR, LF and 8-bit text are handled by sanitizing and RFC 2047
			}
		}
		v := strings.Repeat(word, repeat)
		m := &mail.Message{From: netmail.Address{Address: "a@b.example"}, To: netmail.Address{Address: "c@d.example"},
			Headers: []mail.Header{{Key: "X-Test", Value: v}}}
		raw := m.Bytes()
		checkLines(t, raw)
		i := bytes.Index(raw, []byte("\r\nX-Test:"))
		if i < 0 {
			t.Fatal("header missing")
		}
		field := raw[i+len("\r\nX-Test:"):]
		end := 0
		for end < len(field) && !(field[end] == '\r' && (end+2 >= len(field) || field[end+2] != ' ' && field[end+2] != '\t')) {
			end++
		}
		got := strings.TrimPrefix(strings.ReplaceAll(string(field[:end]), "\r\n", ""), " ")
		longWord := slices.ContainsFunc(strings.Split(v, " "), func(w string) bool { return len(w) > 900 })
		if got != v && (!longWord || strings.ReplaceAll(got, " ", "") != strings.ReplaceAll(v, " ", "")) {
			t.Fatalf("value changed:\n%q\n%q", got, v)
		}
	})
}

func TestNewMessageIDUnique(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := mail.NewMessageID("books.example")
		if seen[id] || !strings.HasSuffix(id, "@books.example") || strings.ContainsAny(id, "<> ") {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
	}
}

// lookupFor serves the DKIM TXT records of keys, as DNS would: an independent verifier.
func lookupFor(t testing.TB, keys ...mail.DKIMKey) *dkim.VerifyOptions {
	records := map[string]string{}
	for _, k := range keys {
		name, value, err := mail.DNSRecord(k.Selector, k.Domain, k.Signer.Public())
		if err != nil {
			t.Fatal(err)
		}
		records[name] = value
	}
	return &dkim.VerifyOptions{LookupTXT: func(domain string) ([]string, error) {
		if v, ok := records[domain]; ok {
			return []string{v}, nil
		}
		return nil, fmt.Errorf("no record %s", domain)
	}}
}

var (
	keyOnce sync.Once
	keyRSA  mail.DKIMKey
	keyEd   mail.DKIMKey
)

// testKeys generates one key of each kind per test binary: RSA generation is slow.
func testKeys(t testing.TB) (rsaKey, edKey mail.DKIMKey) {
	keyOnce.Do(func() {
		for _, k := range []struct {
			alg, sel string
			dst      *mail.DKIMKey
		}{{"rsa", "r2026", &keyRSA}, {"ed25519", "e2026", &keyEd}} {
			s, err := mail.GenerateKey(k.alg)
			if err != nil {
				panic(err)
			}
			*k.dst = mail.DKIMKey{Domain: "books.example", Selector: k.sel, Signer: s}
		}
	})
	return keyRSA, keyEd
}

func TestDKIMVerifies(t *testing.T) {
	rsaKey, edKey := testKeys(t)
	for name, keys := range map[string][]mail.DKIMKey{"rsa": {rsaKey}, "ed25519": {edKey}, "both": {rsaKey, edKey}} {
		t.Run(name, func(t *testing.T) {
			s, err := mail.NewSigner(keys...)
			if err != nil {
				t.Fatal(err)
			}
			signed, err := s.Sign(sample().Bytes())
			if err != nil {
				t.Fatal(err)
			}
			checkLines(t, signed)
			verifs, err := dkim.VerifyWithOptions(bytes.NewReader(signed), lookupFor(t, keys...))
			if err != nil {
				t.Fatal(err)
			}
			if len(verifs) != len(keys) {
				t.Fatalf("%d signatures, want %d", len(verifs), len(keys))
			}
			for _, v := range verifs {
				if v.Err != nil {
					t.Fatalf("signature by %s did not verify: %v", v.Domain, v.Err)
				}
				covered := strings.ToLower(strings.Join(v.HeaderKeys, ":"))
				if covered != "from:from:to:subject:date:message-id:reply-to:mime-version:content-type:list-unsubscribe:list-unsubscribe-post:list-id:feedback-id" {
					t.Errorf("h= %s", covered)
				}
			}
			// Neither swapping the unsubscribe link nor adding a second From survives.
			for _, tampered := range [][]byte{
				bytes.Replace(signed, []byte("https://t.example/u/x"), []byte("https://evil.example/u"), 1),
				bytes.Replace(signed, []byte("\r\nFrom:"), []byte("\r\nFrom: <ceo@books.example>\r\nFrom:"), 1),
			} {
				verifs, _ = dkim.VerifyWithOptions(bytes.NewReader(tampered), lookupFor(t, keys...))
				for _, v := range verifs {
					if v.Err == nil {
						t.Fatal("a tampered message still verifies")
					}
				}
			}
		})
	}
}

func TestNewSignerRejects(t *testing.T) {
	rsaKey, _ := testKeys(t)
	for _, keys := range [][]mail.DKIMKey{nil, {{Domain: "x.example", Signer: rsaKey.Signer}}, {{Selector: "s", Domain: "x.example"}}} {
		if _, err := mail.NewSigner(keys...); err == nil {
			t.Errorf("NewSigner(%v) accepted", keys)
		}
	}
}

func TestKeyEncodingAndRecords(t *testing.T) {
	rsaKey, edKey := testKeys(t)
	for alg, k := range map[string]mail.DKIMKey{"rsa": rsaKey, "ed25519": edKey} {
		pemBytes, err := mail.MarshalPrivateKey(k.Signer)
		if err != nil || !bytes.HasPrefix(pemBytes, []byte("-----BEGIN PRIVATE KEY-----")) {
			t.Fatalf("%s: %v %.40s", alg, err, pemBytes)
		}
		back, err := mail.ParsePrivateKey(pemBytes)
		if err != nil {
			t.Fatal(err)
		}
		if !back.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(k.Signer.Public()) {
			t.Fatalf("%s key did not round-trip", alg)
		}
		name, value, _ := mail.DNSRecord("s", "books.example", k.Signer.Public())
		if name != "s._domainkey.books.example" || !strings.HasPrefix(value, "v=DKIM1; k="+alg+"; p=") {
			t.Fatalf("record %s %s", name, value)
		}
		zone := mail.ZoneValue(value)
		var joined string
		for _, part := range strings.Split(zone, `" "`) {
			part = strings.Trim(part, `"`)
			if len(part) > 255 {
				t.Fatal("zone string over 255")
			}
			joined += part
		}
		if joined != value || (alg == "rsa" && !strings.Contains(zone, `" "`)) {
			t.Fatalf("zone value %s does not rejoin to the record", zone)
		}
	}
	if _, err := mail.ParsePrivateKey([]byte("junk")); err == nil {
		t.Fatal("junk key parsed")
	}
	if _, err := mail.GenerateKey("dsa"); err == nil {
		t.Fatal("unknown algorithm accepted")
	}
}

// bigMessage is a realistic campaign message: ~5 KB of HTML and its text version.
func bigMessage() *mail.Message {
	m := sample()
	m.HTML = "<html><body>" + strings.Repeat("<p>Ein persönlicher Absatz mit einem <a href=\"https://books.example/x?id=42\">Link</a> für Sie.</p>\n", 55) + "</body></html>"
	m.Text = strings.Repeat("Ein persönlicher Absatz mit einem Link (https://books.example/x?id=42) für Sie.\n", 30)
	return m
}

func BenchmarkBuildMessage(b *testing.B) {
	m := bigMessage()
	b.SetBytes(int64(len(m.Bytes())))
	b.ReportAllocs()
	for b.Loop() {
		m.WriteTo(io.Discard)
	}
}

func BenchmarkBuildMessageBytes(b *testing.B) {
	m := bigMessage()
	b.ReportAllocs()
	for b.Loop() {
		_ = m.Bytes()
	}
}

// BenchmarkBuildMessageGoMessage builds the same message with go-message's writer, the
// alternative to message.go's hand-written layout, for comparison.
func BenchmarkBuildMessageGoMessage(b *testing.B) {
	m := bigMessage()
	b.ReportAllocs()
	for b.Loop() {
		var h gomail.Header
		h.SetAddressList("From", []*gomail.Address{{Name: m.From.Name, Address: m.From.Address}})
		h.SetAddressList("To", []*gomail.Address{{Name: m.To.Name, Address: m.To.Address}})
		h.SetAddressList("Reply-To", []*gomail.Address{{Name: m.ReplyTo.Name, Address: m.ReplyTo.Address}})
		h.SetSubject(m.Subject)
		h.SetDate(m.Date)
		h.SetMessageID(m.MessageID)
		for _, x := range m.Headers[:4] {
			h.SetText(x.Key, x.Value)
		}
		w, err := gomail.CreateInlineWriter(io.Discard, h)
		if err != nil {
			b.Fatal(err)
		}
		for _, p := range []struct{ ctype, body string }{{"text/plain", m.Text}, {"text/html", m.HTML}} {
			var ph gomail.InlineHeader
			ph.SetContentType(p.ctype, map[string]string{"charset": "utf-8"})
			ph.Set("Content-Transfer-Encoding", "quoted-printable")
			pw, err := w.CreatePart(ph)
			if err != nil {
				b.Fatal(err)
			}
			io.WriteString(pw, p.body)
			pw.Close()
		}
		w.Close()
	}
}

func benchSign(b *testing.B, algs ...string) {
	rsaKey, edKey := testKeys(b)
	var keys []mail.DKIMKey
	for _, a := range algs {
		keys = append(keys, map[string]mail.DKIMKey{"rsa": rsaKey, "ed25519": edKey}[a])
	}
	s, _ := mail.NewSigner(keys...)
	msg := bigMessage().Bytes()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Sign(msg); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkSignRSA(b *testing.B)     { benchSign(b, "rsa") }
func BenchmarkSignEd25519(b *testing.B) { benchSign(b, "ed25519") }
func BenchmarkSignBoth(b *testing.B)    { benchSign(b, "rsa", "ed25519") }

// The message's own quoted-printable encoder writes what the standard library's does.
func TestQPMatchesStandardLibrary(t *testing.T) {
	alphabet := []byte("ab =.\t\r\n\x00~\x7f\xc3\xbc<>\"")
	rnd := rand.New(rand.NewPCG(1, 2))
	inputs := []string{"", " ", "\t\n", "a \r\n", "x\r", "\r\r\n\n", "=", strings.Repeat("a", 75) + "=", strings.Repeat("a", 74) + " \n", strings.Repeat("é", 40)}
	for range 20000 {
		n := rnd.IntN(300)
		b := make([]byte, n)
		for i := range b {
			if rnd.IntN(3) == 0 {
				b[i] = alphabet[rnd.IntN(len(alphabet))]
			} else {
				b[i] = 'a' + byte(rnd.IntN(26))
			}
		}
		inputs = append(inputs, string(b))
	}
	for _, in := range inputs {
		var want bytes.Buffer
		w := quotedprintable.NewWriter(&want)
		w.Write([]byte(in))
		w.Close()
		var got bytes.Buffer
		got.WriteString("prefix") // appendQP works at the end of a message being built
		mail.AppendQP(&got, in)
		if got.String()[6:] != want.String() {
			t.Fatalf("%q:\ngot  %q\nwant %q", in, got.String()[6:], want.String())
		}
	}
}
