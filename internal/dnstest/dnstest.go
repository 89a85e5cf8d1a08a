// Package dnstest serves TXT records over UDP on the loopback, for tests of code that
// reads the DNS through a net.Resolver (postman.NewResolver with the server's Addr).
package dnstest

import (
	"net"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// Server answers TXT questions from its records: the records of a name it holds, no
// such name (NXDOMAIN) for the others, and a server failure for names set to fail.
type Server struct {
	Addr string // host:port

	mu      sync.Mutex
	records map[string][]string // by lower-case name, without the final dot
	failing map[string]bool
}

// Start serves until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: conn.LocalAddr().String(), records: map[string][]string{}, failing: map[string]bool{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return // closed
			}
			if answer, ok := s.answer(buf[:n]); ok {
				conn.WriteTo(answer, from)
			}
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return s
}

// SetTXT replaces the TXT records of name; none removes the name.
func (s *Server) SetTXT(name string, records ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name = key(name)
	delete(s.failing, name)
	if len(records) == 0 {
		delete(s.records, name)
		return
	}
	s.records[name] = records
}

// Fail makes lookups of name fail with a server failure (SERVFAIL).
func (s *Server) Fail(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failing[key(name)] = true
}

func key(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) }

func (s *Server) answer(query []byte) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	s.mu.Lock()
	records, found := s.records[key(q.Name.String())]
	fail := s.failing[key(q.Name.String())]
	s.mu.Unlock()
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true}
	switch {
	case fail:
		rh.RCode = dnsmessage.RCodeServerFailure
	case !found:
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	if b.StartQuestions() != nil || b.Question(q) != nil || b.StartAnswers() != nil {
		return nil, false
	}
	if q.Type == dnsmessage.TypeTXT && !fail {
		for _, r := range records {
			txt := dnsmessage.TXTResource{TXT: split(r)}
			if b.TXTResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}, txt) != nil {
				return nil, false
			}
		}
	}
	msg, err := b.Finish()
	return msg, err == nil
}

// split cuts a record into the strings of at most 255 bytes a TXT record is made of.
func split(r string) []string {
	var parts []string
	for len(r) > 255 {
		parts, r = append(parts, r[:255]), r[255:]
	}
	return append(parts, r)
}
