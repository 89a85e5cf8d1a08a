package postman_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tidings/tidings/internal/dnstest"
	"github.com/tidings/tidings/internal/postman"
	"github.com/tidings/tidings/internal/tidings"
)

// TestCheckDomain reads a domain's records from a DNS server, through the resolver the
// instance uses: each DKIM key published as made, folded or not; missing; replaced by
// another key; revoked; unreadable (a server failure); and SPF and DMARC found or not.
// Only signing keys decide whether the domain is ready: a retired key's record is
// reported, not required, and a domain with no signing key is not ready.
func TestCheckDomain(t *testing.T) {
	dns := dnstest.Start(t)
	r := postman.NewResolver(dns.Addr)
	ctx := context.Background()
	var keys []tidings.DKIMKey
	for i, alg := range postman.DKIMAlgorithms {
		k, err := postman.NewDKIMKey(alg, "t1")
		if err != nil {
			t.Fatal(err)
		}
		k.ID = int64(i + 1)
		keys = append(keys, k)
	}
	other, err := postman.NewDKIMKey("ed25519", "t1")
	if err != nil {
		t.Fatal(err)
	}
	sd := tidings.SendingDomain{Domain: "news.shop.example", Keys: keys}
	record := func(k tidings.DKIMKey) (string, string) {
		t.Helper()
		name, value, _, err := postman.DKIMRecord(sd.Domain, k)
		if err != nil {
			t.Fatal(err)
		}
		return name, value
	}
	rsaName, rsaValue := record(keys[0])
	edName, edValue := record(keys[1])
	_, otherValue := record(other)
	states := func(c postman.DomainCheck) string {
		var s []string
		for _, k := range c.Keys {
			s = append(s, string(k.State))
		}
		return strings.Join(append(s, string(c.SPF.State), string(c.DMARC.State)), " ")
	}

	// Nothing published yet.
	c := postman.CheckDomain(ctx, r, sd)
	if got := states(c); got != "missing missing missing missing" || c.Ready(keys) {
		t.Fatalf("empty zone: %s, ready %v", got, c.Ready(keys))
	}
	if c.Keys[0].Name != rsaName || c.DMARC.Name != "_dmarc.news.shop.example" {
		t.Fatalf("names looked up: %+v", c)
	}

	// Published: the RSA key as shown (over 255 bytes, so in several strings), the
	// Ed25519 key folded with white space and its tags in another order (v= stays
	// first); SPF beside another TXT record of the domain.
	dns.SetTXT(rsaName, rsaValue)
	p := edValue[strings.Index(edValue, "p=")+2:]
	dns.SetTXT(edName, "google-site-verification=abc", "v=DKIM1 ;p="+p[:10]+" \t"+p[10:]+"; k = ed25519;")
	dns.SetTXT(sd.Domain, "google-site-verification=abc", "v=spf1 include:relay.example ~all")
	dns.SetTXT("_dmarc."+sd.Domain, "v=DMARC1; p=none")
	c = postman.CheckDomain(ctx, r, sd)
	if got := states(c); got != "published published published published" || !c.Ready(keys) {
		t.Fatalf("published: %s %+v", got, c)
	}
	if c.SPF.Found != "v=spf1 include:relay.example ~all" || c.DMARC.Found != "v=DMARC1; p=none" {
		t.Fatalf("policies found: %q, %q", c.SPF.Found, c.DMARC.Found)
	}

	// Another key at the name, a revoked one, a v= tag not first (not a DKIM record).
	for value, want := range map[string]postman.DNSState{
		otherValue:                     postman.DNSDifferent,
		"v=DKIM1; k=ed25519; p=":       postman.DNSRevoked,
		"k=ed25519; v=DKIM1; p=" + p:   postman.DNSMissing,
		"v=DKIM1; k=rsa; p=" + p:       postman.DNSDifferent, // the right bytes under the wrong algorithm
		"v=DKIM2; k=ed25519; p=" + p:   postman.DNSMissing,
		"v=DKIM1; p=" + p + "; p=" + p: postman.DNSMissing, // a tag twice: invalid
	} {
		dns.SetTXT(edName, value)
		c = postman.CheckDomain(ctx, r, sd)
		if c.Keys[1].State != want || c.Ready(keys) {
			t.Errorf("record %q: %s (%s); want %s, not ready", value, c.Keys[1].State, c.Keys[1].Detail, want)
		}
	}

	// A lookup that fails is unknown, not missing: the record may well be there.
	dns.Fail(edName)
	c = postman.CheckDomain(ctx, r, sd)
	if c.Keys[1].State != postman.DNSUnknown || c.Keys[1].Detail == "" || c.Keys[0].State != postman.DNSPublished {
		t.Fatalf("failing server: %+v", c.Keys)
	}

	// A retired key's record is reported, and no longer needed.
	retired := time.Now()
	keys[1].RetiredAt = &retired
	sd.Keys = keys
	dns.SetTXT(edName)
	c = postman.CheckDomain(ctx, r, sd)
	if c.Keys[1].State != postman.DNSMissing || !c.Ready(keys) {
		t.Fatalf("retired key unpublished: %+v, ready %v", c.Keys, c.Ready(keys))
	}
	// With every key retired, nothing signs: not ready, published or not.
	keys[0].RetiredAt = &retired
	if c.Ready(keys) {
		t.Fatal("a domain with no signing key is ready")
	}
}
