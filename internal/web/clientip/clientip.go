// Package clientip finds the address of the client behind a request: the connection's
// peer, or — only when that peer is a configured trusted proxy — the nearest untrusted
// address in X-Forwarded-For.
package clientip

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Resolver knows which proxies to believe.
type Resolver struct{ Trusted []netip.Prefix }

func (r Resolver) trusted(a netip.Addr) bool {
	for _, p := range r.Trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// IP returns the client address of req (the zero Addr if it cannot be parsed).
func (r Resolver) IP(req *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		host = req.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	peer = peer.Unmap()
	if !r.trusted(peer) {
		return peer
	}
	// Walk X-Forwarded-For from the right: each hop was added by the proxy before it.
	// The first address not belonging to a trusted proxy is the client.
	hops := strings.Split(strings.Join(req.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return peer // a malformed header: trust nothing in it
		}
		a = a.Unmap()
		if !r.trusted(a) {
			return a
		}
		peer = a
	}
	return peer
}

// Key is what per-client limits count by: the address for IPv4, its /64 for IPv6, which
// is what one subscriber line or host is given (one address each would be a limit
// anyone can step around).
func Key(a netip.Addr) string {
	if a.Is6() {
		return netip.PrefixFrom(a, 64).Masked().String()
	}
	return a.String()
}
