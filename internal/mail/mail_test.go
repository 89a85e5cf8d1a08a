package mail_test

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	netmail "net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset"
	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-smtp"

	"github.com/tidings/tidings/internal/mail"
	"github.com/tidings/tidings/internal/mail/mailtest"
)

func sample() *mail.Message {
	return &mail.Message{
		From:      netmail.Address{Name: "Bücherei Müller", Address: "news@books.example"},
		To:        netmail.Address{Name: "Zoë", Address: "zoe@example.com"},
		Subject:   "Neue Bücher für Sie — 10 % Rabatt",
		Date:      time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC),
		MessageID: "abc123@books.example",
		Headers: []mail.Header{
			{Key: "List-Unsubscribe", Value: "<https://t.example/u/x>, <mailto:u@t.example>"},
			{Key: "List-Unsubscribe-Post", Value: "List-Unsubscribe=One-Click"},
			{Key: "X-Evil", Value: "a\r\nBcc: victim@example.com"},
		},
		Text: "Hallo Zoë,\nneue Bücher sind da. " + strings.Repeat("Lange Zeile ", 20) + "\n",
		HTML: "<p>Hallo Zoë,</p><p>neue Bücher sind da.</p>",
	}
}

func TestMessageParsesBack(t *testing.T) {
	raw := sample().Bytes()
	for i, line := range bytes.Split(raw, []byte("\r\n")) {
		if len(line) > 998 || bytes.ContainsRune(line, '\n') {
			t.Fatalf("line %d too long or with bare LF", i)
		}
	}
	if bytes.Contains(raw, []byte("\nBcc:")) {
		t.Fatal("header injection: a CRLF in a header value started a new header")
	}
	r, err := gomail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	subj, _ := r.Header.Subject()
	if subj != "Neue Bücher für Sie — 10 % Rabatt" {
		t.Errorf("subject = %q", subj)
	}
	from, _ := r.Header.AddressList("From")
	if len(from) != 1 || from[0].Name != "Bücherei Müller" || from[0].Address != "news@books.example" {
		t.Errorf("from = %v", from)
	}
	if id, _ := r.Header.MessageID(); id != "abc123@books.example" {
		t.Errorf("message-id = %q", id)
	}
	if r.Header.Get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click" {
		t.Error("List-Unsubscribe-Post lost")
	}
	var types []string
	var texts []string
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := p.Header.(*gomail.InlineHeader).ContentType()
		b, _ := io.ReadAll(p.Body)
		types = append(types, ct)
		texts = append(texts, string(b))
	}
	if len(types) != 2 || types[0] != "text/plain" || types[1] != "text/html" {
		t.Fatalf("parts = %v", types)
	}
	if texts[0] != strings.ReplaceAll(sample().Text, "\n", "\r\n") || texts[1] != sample().HTML+"\r\n" && texts[1] != sample().HTML {
		t.Errorf("bodies did not round-trip:\n%q\n%q", texts[0], texts[1])
	}
}

func TestSinglePart(t *testing.T) {
	m := &mail.Message{From: netmail.Address{Address: "a@b.example"}, To: netmail.Address{Address: "c@d.example"}, Subject: "Hi", Text: "plain"}
	e, err := message.Read(bytes.NewReader(m.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if ct, _, _ := e.Header.ContentType(); ct != "text/plain" {
		t.Fatalf("content type %q", ct)
	}
}

// lookupFor serves the DKIM TXT records of keys, as DNS would: an independent verifier.
func lookupFor(t *testing.T, keys ...mail.DKIMKey) func(string) ([]string, error) {
	records := map[string]string{}
	for _, k := range keys {
		name, value, err := mail.DNSRecord(k.Selector, k.Domain, k.Signer.Public())
		if err != nil {
			t.Fatal(err)
		}
		records[name] = value
	}
	return func(domain string) ([]string, error) {
		if v, ok := records[domain]; ok {
			return []string{v}, nil
		}
		return nil, fmt.Errorf("no record %s", domain)
	}
}

func genKey(t testing.TB, alg, selector string) mail.DKIMKey {
	k, err := mail.GenerateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	return mail.DKIMKey{Domain: "books.example", Selector: selector, Signer: k}
}

func TestDKIMVerifies(t *testing.T) {
	rsaKey, edKey := genKey(t, "rsa", "r2026"), genKey(t, "ed25519", "e2026")
	for _, keys := range [][]mail.DKIMKey{{rsaKey}, {edKey}, {rsaKey, edKey}} {
		s, err := mail.NewSigner(keys...)
		if err != nil {
			t.Fatal(err)
		}
		signed, err := s.Sign(sample().Bytes())
		if err != nil {
			t.Fatal(err)
		}
		verifs, err := dkim.VerifyWithOptions(bytes.NewReader(signed), &dkim.VerifyOptions{LookupTXT: lookupFor(t, keys...)})
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
			for _, h := range []string{"list-unsubscribe", "list-unsubscribe-post", "from", "subject"} {
				if !contains(v.HeaderKeys, h) {
					t.Errorf("signature does not cover %s: %v", h, v.HeaderKeys)
				}
			}
		}
		// Swapping the unsubscribe link breaks every signature.
		tampered := bytes.Replace(signed, []byte("https://t.example/u/x"), []byte("https://evil.example/u"), 1)
		verifs, _ = dkim.VerifyWithOptions(bytes.NewReader(tampered), &dkim.VerifyOptions{LookupTXT: lookupFor(t, keys...)})
		for _, v := range verifs {
			if v.Err == nil {
				t.Fatal("a tampered List-Unsubscribe still verifies")
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func TestKeyEncodingAndRecords(t *testing.T) {
	for _, alg := range []string{"rsa", "ed25519"} {
		k := genKey(t, alg, "s")
		pemBytes, err := mail.MarshalPrivateKey(k.Signer)
		if err != nil {
			t.Fatal(err)
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
		for _, part := range strings.Split(mail.ZoneValue(value), `" "`) {
			if len(strings.Trim(part, `"`)) > 255 {
				t.Fatal("zone string over 255")
			}
		}
	}
	if _, err := mail.ParsePrivateKey([]byte("junk")); err == nil {
		t.Fatal("junk key parsed")
	}
	if _, err := mail.GenerateKey("dsa"); err == nil {
		t.Fatal("unknown algorithm accepted")
	}
}

func TestSMTPPoolReusesConnections(t *testing.T) {
	sink := mailtest.New(t)
	pool, err := mail.NewSMTPPool(mail.SMTPConfig{Host: "127.0.0.1", Port: sink.Port(), TLS: "none", PoolSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			to := fmt.Sprintf("r%d@example.com", i)
			if err := pool.Send(context.Background(), mail.Envelope{From: "bounce@books.example", To: []string{to}}, sample().Bytes()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if sink.Count() != 60 {
		t.Fatalf("sink got %d messages, want 60", sink.Count())
	}
	if c := sink.Connections(); c > 3 {
		t.Fatalf("%d connections for a pool of 3", c)
	}
}

func TestSMTPErrorsAreClassified(t *testing.T) {
	sink := mailtest.New(t)
	sink.Reject = func(rcpt string) error {
		switch {
		case strings.HasPrefix(rcpt, "full"):
			return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "mailbox full"}
		case strings.HasPrefix(rcpt, "gone"):
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "<" + rcpt + ">: no such user"}
		}
		return nil
	}
	pool, _ := mail.NewSMTPPool(mail.SMTPConfig{Host: "127.0.0.1", Port: sink.Port(), TLS: "none", PoolSize: 1})
	defer pool.Close()
	send := func(to string) error {
		return pool.Send(context.Background(), mail.Envelope{From: "b@books.example", To: []string{to}}, sample().Bytes())
	}
	err := send("full@example.com")
	var se *mail.SendError
	if !errors.As(err, &se) || !se.Temporary || se.Code != 452 || !mail.IsTemporary(err) {
		t.Fatalf("4xx: %v", err)
	}
	err = send("gone@example.com")
	if !errors.As(err, &se) || se.Temporary || se.Enhanced != "5.1.1" || mail.IsTemporary(err) {
		t.Fatalf("5xx: %v", err)
	}
	if strings.Contains(err.Error(), "gone@example.com") || !strings.Contains(err.Error(), "<address>") {
		t.Fatalf("the relay's reply kept the address: %v", err)
	}
	if err := send("ok@example.com"); err != nil {
		t.Fatalf("the connection is unusable after a rejection: %v", err)
	}
	sink.Close()
	if err := send("ok@example.com"); err == nil || !mail.IsTemporary(err) {
		t.Fatalf("a dead relay should be a temporary error: %v", err)
	}
	if _, err := mail.NewSMTPPool(mail.SMTPConfig{Host: "relay.example", Username: "u", Password: "p", TLS: "none"}); err == nil {
		t.Fatal("password over plaintext to a remote relay was allowed")
	}
}

func TestOutbox(t *testing.T) {
	o, err := mail.NewOutbox(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	msg := sample().Bytes()
	for i := range 3 {
		if err := o.Send(context.Background(), mail.Envelope{From: "b@books.example", To: []string{fmt.Sprintf("r%d@example.com", i)}}, msg); err != nil {
			t.Fatal(err)
		}
	}
	list, err := o.List(2)
	if err != nil || len(list) != 2 {
		t.Fatalf("List = %v %v", list, err)
	}
	if list[0].To[0] != "r2@example.com" || list[0].Subject != "Neue Bücher für Sie — 10 % Rabatt" || list[0].From != "b@books.example" {
		t.Fatalf("newest entry = %+v", list[0])
	}
	got, err := o.Read(list[0].ID)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("Read did not return the message as sent: %v", err)
	}
	for _, bad := range []string{"../../etc/passwd", "x", "", "1.2_3.tidings/../x"} {
		if _, err := o.Read(bad); !errors.Is(err, mail.ErrNoMessage) {
			t.Errorf("Read(%q) = %v", bad, err)
		}
	}
	if err := o.Delete(list[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Read(list[0].ID); !errors.Is(err, mail.ErrNoMessage) {
		t.Fatal("deleted message still readable")
	}
}

func BenchmarkBuildMessage(b *testing.B) {
	m := sample()
	m.HTML = strings.Repeat("<p>Some personalised paragraph with a <a href=\"https://example.com/x\">link</a>.</p>\n", 60)
	for b.Loop() {
		m.WriteTo(io.Discard)
	}
}

func benchSign(b *testing.B, algs ...string) {
	var keys []mail.DKIMKey
	for i, a := range algs {
		keys = append(keys, genKey(b, a, fmt.Sprint("s", i)))
	}
	s, _ := mail.NewSigner(keys...)
	msg := sample().Bytes()
	for b.Loop() {
		if _, err := s.Sign(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignRSA(b *testing.B)     { benchSign(b, "rsa") }
func BenchmarkSignEd25519(b *testing.B) { benchSign(b, "ed25519") }
func BenchmarkSignBoth(b *testing.B)    { benchSign(b, "rsa", "ed25519") }

func BenchmarkSMTPSend(b *testing.B) {
	sink, _ := mailtest.Start(true)
	defer sink.Close()
	pool, _ := mail.NewSMTPPool(mail.SMTPConfig{Host: "127.0.0.1", Port: sink.Port(), TLS: "none", PoolSize: 8})
	defer pool.Close()
	msg := sample().Bytes()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			pool.Send(context.Background(), mail.Envelope{From: "b@x.example", To: []string{"r@example.com"}}, msg)
		}
	})
}
