package postman

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/tidings/tidings/internal/tidings"
)

// The DNS check: are a sending domain's DKIM keys published as Tidings made them, and
// has the domain SPF and DMARC records? Receivers verify signatures against the DNS, so
// a key that is not published there signs mail nobody can verify, and proofs kept with
// it convince no one outside the instance. The check reads the DNS and changes nothing.

// TXTResolver looks up TXT records; *net.Resolver is one.
type TXTResolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// NewResolver returns the resolver the DNS check uses: the system's for an empty addr,
// else the DNS server at addr (host:port), asked over UDP (TCP for long answers).
func NewResolver(addr string) *net.Resolver {
	if addr == "" {
		return net.DefaultResolver
	}
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
}

// DNSState is what the DNS says of one record.
type DNSState string

const (
	DNSPublished DNSState = "published" // DKIM: the record holds this key; SPF, DMARC: a record is there
	DNSMissing   DNSState = "missing"   // no such record
	DNSDifferent DNSState = "different" // DKIM: a record with another key
	DNSRevoked   DNSState = "revoked"   // DKIM: a record with an empty key (RFC 6376 3.6.1)
	DNSUnknown   DNSState = "unknown"   // the lookup failed: try again later
)

// RecordCheck is the outcome of looking up one record.
type RecordCheck struct {
	Name   string // the DNS name looked up
	State  DNSState
	Found  string // SPF, DMARC: the record found
	Detail string // why the state is unknown or different, for people
}

// KeyCheck is one DKIM key's record.
type KeyCheck struct {
	KeyID int64
	RecordCheck
}

// DomainCheck is a sending domain's records.
type DomainCheck struct {
	Domain     string
	Keys       []KeyCheck
	SPF, DMARC RecordCheck
	At         time.Time
}

// Ready says whether the domain has signing keys (not retired), all of them published.
func (c DomainCheck) Ready(keys []tidings.DKIMKey) bool {
	state := map[int64]DNSState{}
	for _, k := range c.Keys {
		state[k.KeyID] = k.State
	}
	signing := 0
	for _, k := range keys {
		if k.RetiredAt != nil {
			continue
		}
		if state[k.ID] != DNSPublished {
			return false
		}
		signing++
	}
	return signing > 0
}

// dnsTimeout bounds one domain's lookups.
const dnsTimeout = 10 * time.Second

// CheckDomain looks up the records of sd: each key's DKIM record, retired keys too (they
// stay published so that what they signed stays verifiable), and SPF and DMARC.
func CheckDomain(ctx context.Context, r TXTResolver, sd tidings.SendingDomain) DomainCheck {
	ctx, cancel := context.WithTimeout(ctx, dnsTimeout)
	defer cancel()
	c := DomainCheck{Domain: sd.Domain, At: time.Now()}
	for _, k := range sd.Keys {
		c.Keys = append(c.Keys, KeyCheck{KeyID: k.ID, RecordCheck: checkKey(ctx, r, sd.Domain, k)})
	}
	c.SPF = checkPolicy(ctx, r, sd.Domain, "v=spf1")
	c.DMARC = checkPolicy(ctx, r, "_dmarc."+sd.Domain, "v=DMARC1")
	return c
}

func checkKey(ctx context.Context, r TXTResolver, domain string, k tidings.DKIMKey) RecordCheck {
	name, value, _, err := DKIMRecord(domain, k)
	if err != nil {
		return RecordCheck{Name: k.Selector + "._domainkey." + domain, State: DNSUnknown, Detail: err.Error()}
	}
	want, _ := dkimTags(value)
	records, c := lookup(ctx, r, name)
	for _, txt := range records {
		tags, ok := dkimTags(txt)
		if !ok {
			continue // another kind of TXT record at the name
		}
		sameAlgorithm := tags["k"] == want["k"] || tags["k"] == "" && want["k"] == "rsa" // k= is rsa by default
		switch {
		case tags["p"] == "":
			c.State, c.Detail = DNSRevoked, "the record's key (p=) is empty: the key is revoked"
		case sameAlgorithm && samePublicKey(tags["p"], want["p"]):
			return RecordCheck{Name: name, State: DNSPublished}
		case c.State != DNSRevoked:
			c.State, c.Detail = DNSDifferent, "the record holds another key; publish the value shown"
		}
	}
	return c
}

// checkPolicy finds the TXT record at name that starts with prefix (SPF, DMARC).
func checkPolicy(ctx context.Context, r TXTResolver, name, prefix string) RecordCheck {
	records, c := lookup(ctx, r, name)
	for _, txt := range records {
		if v := strings.TrimSpace(txt); len(v) >= len(prefix) && strings.EqualFold(v[:len(prefix)], prefix) &&
			(len(v) == len(prefix) || v[len(prefix)] == ' ' || v[len(prefix)] == ';') {
			c.State, c.Found = DNSPublished, v
		}
	}
	return c
}

// lookup returns the TXT records at name, and the check of name as far as the lookup
// tells: missing, until the caller finds its record among them; or no records, and
// missing or unknown (the lookup failed).
func lookup(ctx context.Context, r TXTResolver, name string) ([]string, RecordCheck) {
	c := RecordCheck{Name: name, State: DNSMissing}
	records, err := r.LookupTXT(ctx, name)
	var dnsErr *net.DNSError
	switch {
	case err == nil:
		return records, c
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return nil, c
	case errors.As(err, &dnsErr):
		c.State, c.Detail = DNSUnknown, "the DNS lookup failed: "+dnsErr.Err
	default:
		c.State, c.Detail = DNSUnknown, "the DNS lookup failed: "+err.Error()
	}
	return nil, c
}

// dkimTags parses a DKIM key record's tag list (RFC 6376 3.6.1, 3.2): "v=DKIM1; k=rsa;
// p=…", whitespace allowed around tags and inside values. It is a DKIM record if it
// has a p= tag, and its v= tag, if any, is DKIM1 and comes first.
func dkimTags(txt string) (map[string]string, bool) {
	tags := map[string]string{}
	for i, part := range strings.Split(txt, ";") {
		name, value, ok := strings.Cut(part, "=")
		name = strings.TrimSpace(name)
		if !ok {
			if name == "" {
				continue // a trailing ';'
			}
			return nil, false
		}
		value = strings.Join(strings.Fields(value), "")
		if name == "v" && (i != 0 || value != "DKIM1") {
			return nil, false
		}
		if _, dup := tags[name]; dup {
			return nil, false // a tag twice makes the record invalid
		}
		tags[name] = value
	}
	_, ok := tags["p"]
	return tags, ok
}

// samePublicKey compares two p= values by the bytes they encode.
func samePublicKey(a, b string) bool {
	x, errX := base64.StdEncoding.DecodeString(a)
	y, errY := base64.StdEncoding.DecodeString(b)
	return errX == nil && errY == nil && len(x) > 0 && bytes.Equal(x, y)
}
