package clientip

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestIP(t *testing.T) {
	r := Resolver{Trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}}
	cases := []struct{ remote, xff, want string }{
		{"203.0.113.5:1234", "", "203.0.113.5"},
		{"203.0.113.5:1234", "1.2.3.4", "203.0.113.5"},                     // untrusted peer: header ignored
		{"10.0.0.2:80", "198.51.100.7", "198.51.100.7"},                    // one trusted proxy
		{"10.0.0.2:80", "6.6.6.6, 198.51.100.7, 10.0.0.9", "198.51.100.7"}, // spoofed left part ignored
		{"10.0.0.2:80", "", "10.0.0.2"},
		{"10.0.0.2:80", "garbage", "10.0.0.2"},
		{"[::1]:80", "2001:db8::1", "2001:db8::1"},
		{"[::ffff:203.0.113.9]:5", "", "203.0.113.9"},
	}
	for _, c := range cases {
		req := httptest.NewRequest("GET", "/", nil)
		req.RemoteAddr = c.remote
		if c.xff != "" {
			req.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := r.IP(req); got.String() != c.want {
			t.Errorf("remote %s xff %q: got %s, want %s", c.remote, c.xff, got, c.want)
		}
	}
}

// Limits count an IPv6 client by its /64: one host or line holds a whole /64, and a
// limit per address would be one it can step around.
func TestKey(t *testing.T) {
	same := []string{"2001:db8:1:2::1", "2001:db8:1:2:ffff::9"}
	if a, b := Key(netip.MustParseAddr(same[0])), Key(netip.MustParseAddr(same[1])); a != b || a != "2001:db8:1:2::/64" {
		t.Fatalf("one /64: %q and %q", a, b)
	}
	if Key(netip.MustParseAddr("2001:db8:1:3::1")) == Key(netip.MustParseAddr(same[0])) {
		t.Fatal("two /64s share a key")
	}
	if a, b := Key(netip.MustParseAddr("192.0.2.1")), Key(netip.MustParseAddr("192.0.2.2")); a == b || a != "192.0.2.1" {
		t.Fatalf("IPv4 clients: %q and %q", a, b)
	}
}
