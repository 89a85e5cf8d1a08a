package tidings

import (
	"encoding/json"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/unicode/norm"
)

// Address is a syntactically valid, normalised email address: the form used for every
// lookup, hash and comparison in Tidings.
//
// Normalisation lowercases the whole address, local part included. RFC 5321 lets a
// server treat local parts case-sensitively, but no mainstream mailbox provider does,
// and one person must have one lookup key, or suppression and erasure could miss them.
type Address struct {
	Local  string // dot-atom, lowercase, NFC for UTF-8 (RFC 6531)
	Domain string // lowercase ASCII; internationalised names in A-label (xn--) form
}

// Rejection codes of ParseAddress, each a *ValidationError on field "email":
//
//	required        empty input
//	display_name    "Name <addr>" or angle brackets
//	comment         parentheses (RFC 5322 comments)
//	quoted_local    a quoted local part ("a b"@x) — legal, but no list server should take it
//	missing_at      no @, or more than one outside quotes
//	missing_local   nothing before the @
//	missing_domain  nothing after the @
//	bad_local       characters or dots a local part may not contain
//	bad_domain      labels, characters, hyphens, TLD or IDNA that make no valid domain
//	ip_literal      [1.2.3.4] domains
//	too_long        local part > 64, domain > 253 or address > 254 octets
//
// UnmarshalJSON adds invalid_email for a JSON value that is not a string.
const (
	maxLocal   = 64
	maxDomain  = 253
	maxAddress = 254 // the RFC 5321 path limit (256) less the angle brackets
	// A UTF-8 part whose normalised form fits its limit is never four times longer: the
	// raw parts are capped at that before any Unicode work, because IDNA conversion of
	// a huge label is slow (quadratic in its distinct characters).
	rawFactor = 4
)

var idnaProfile = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.Transitional(false), idna.ValidateLabels(true))

// ParseDomain parses and normalises a mail domain (lower-case ASCII, A-labels), as the
// domain part of an address: a *ValidationError on "domain" otherwise.
func ParseDomain(s string) (string, error) {
	s = strings.TrimSpace(s)
	addr, err := ParseAddress("postmaster@" + s)
	if s == "" || strings.Contains(s, "@") || err != nil {
		return "", Invalid("domain", "bad_domain", "must be a domain name like news.example.com")
	}
	return addr.Domain, nil
}

// ParseAddress parses and normalises one bare address (no display name). Surrounding
// white space is trimmed; anything else that is not an address is rejected with a
// reason.
func ParseAddress(s string) (Address, error) { return parseAddress(s, parseDomain) }

// AddressParser parses addresses as ParseAddress does, remembering the domains it has
// normalised: a file of a million addresses names a few thousand domains, and
// normalising one (IDNA) costs more than the rest of its address. It remembers at most
// maxRemembered domains. Not for concurrent use; the zero value is ready.
type AddressParser struct{ domains map[string]string }

const maxRemembered = 100_000

// Parse is ParseAddress.
func (p *AddressParser) Parse(s string) (Address, error) { return parseAddress(s, p.domain) }

func (p *AddressParser) domain(raw string) (string, error) {
	if d, ok := p.domains[raw]; ok {
		return d, nil
	}
	d, err := parseDomain(raw)
	if err == nil && len(p.domains) < maxRemembered {
		if p.domains == nil {
			p.domains = map[string]string{}
		}
		p.domains[raw] = d
	}
	return d, err
}

func parseAddress(s string, parseDomain func(string) (string, error)) (Address, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return Address{}, addrErr("required", "is required")
	case strings.ContainsAny(s, "<>"):
		return Address{}, addrErr("display_name", "must be a bare address like name@example.com, without a display name or angle brackets")
	case strings.ContainsAny(s, "()"):
		return Address{}, addrErr("comment", "must not contain comments in parentheses")
	case strings.HasPrefix(s, `"`) || strings.Contains(s, `"@`):
		return Address{}, addrErr("quoted_local", "quoted local parts (\"…\"@example.com) are not accepted")
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return Address{}, addrErr("missing_at", "must contain an @, like name@example.com")
	}
	local, domain := s[:at], s[at+1:]
	if !utf8.ValidString(local) {
		return Address{}, addrErr("bad_local", "the part before the @ is not valid UTF-8 text")
	}
	if !utf8.ValidString(domain) {
		return Address{}, addrErr("bad_domain", "the part after the @ is not valid UTF-8 text")
	}
	if len(local) > rawFactor*maxLocal {
		return Address{}, addrErr("too_long", "the part before the @ must be at most %d characters", maxLocal)
	}
	if len(domain) > rawFactor*maxDomain {
		return Address{}, addrErr("too_long", "the domain must be at most %d characters", maxDomain)
	}
	if strings.Contains(local, "@") {
		return Address{}, addrErr("missing_at", "must contain exactly one @")
	}
	if local == "" {
		return Address{}, addrErr("missing_local", "needs a name before the @, like name@example.com")
	}
	if domain == "" {
		return Address{}, addrErr("missing_domain", "needs a domain after the @, like name@example.com")
	}
	local, err := parseLocal(local)
	if err != nil {
		return Address{}, err
	}
	domain, err = parseDomain(domain)
	if err != nil {
		return Address{}, err
	}
	if len(local)+1+len(domain) > maxAddress {
		return Address{}, addrErr("too_long", "must be at most %d characters long", maxAddress)
	}
	return Address{Local: local, Domain: domain}, nil
}

// parseLocal checks a dot-atom local part: atext characters (RFC 5322) or any non-ASCII
// UTF-8 (RFC 6531), in atoms separated by single dots.
func parseLocal(local string) (string, error) {
	// Lowercase first, then compose: lowercasing can turn a precomposable pair (J+◌̌)
	// into one with a precomposed form (ǰ), and the result must be NFC to be stable.
	local = norm.NFC.String(strings.ToLower(local))
	if len(local) > maxLocal {
		return "", addrErr("too_long", "the part before the @ must be at most %d characters", maxLocal)
	}
	if local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, "..") {
		return "", addrErr("bad_local", "the part before the @ must not start or end with a dot, or have two dots in a row")
	}
	for _, r := range local {
		switch {
		case r == '.' || r < 0x80 && isAtext(byte(r)):
		case unicode.IsSpace(r):
			return "", addrErr("bad_local", "must not contain spaces")
		case isInvisible(r):
			return "", addrErr("bad_local", "the part before the @ must not contain invisible or control characters")
		case r < 0x80 || r == utf8.RuneError:
			return "", addrErr("bad_local", "the part before the @ must not contain %q", r)
		}
	}
	return local, nil
}

func isAtext(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// isInvisible reports control and format characters (zero-width space, bidi overrides,
// BOM, soft hyphen…): they would give one visible address several lookup keys. ZWNJ and
// ZWJ stay allowed, as in IDNA, because some scripts need them to spell words.
func isInvisible(r rune) bool {
	return unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r) && r != '\u200c' && r != '\u200d'
}

// parseDomain converts to lowercase ASCII (A-labels) and checks every label.
func parseDomain(domain string) (string, error) {
	if strings.HasPrefix(domain, "[") {
		return "", addrErr("ip_literal", "must use a domain name after the @, not an IP address")
	}
	domain = trimRootDot(domain)
	ascii, err := idnaProfile.ToASCII(domain)
	if err != nil {
		return "", addrErr("bad_domain", "the part after the @ must be a domain like example.com")
	}
	ascii = strings.ToLower(ascii)
	if len(ascii) > maxDomain {
		return "", addrErr("too_long", "the domain must be at most %d characters", maxDomain)
	}
	labels := strings.Split(ascii, ".")
	if len(labels) < 2 {
		return "", addrErr("bad_domain", "the part after the @ must be a full domain with a dot, like example.com")
	}
	for _, l := range labels {
		switch {
		case l == "":
			return "", addrErr("bad_domain", "the domain must not have empty parts (two dots in a row)")
		case len(l) > 63:
			return "", addrErr("too_long", "each part of the domain must be at most 63 characters")
		case l[0] == '-' || l[len(l)-1] == '-':
			return "", addrErr("bad_domain", "parts of the domain must not start or end with a hyphen")
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return "", addrErr("bad_domain", "the domain must not contain %q", rune(c))
			}
		}
	}
	if tld := labels[len(labels)-1]; strings.Trim(tld, "0123456789") == "" {
		return "", addrErr("bad_domain", "the domain must end in a name like .com, not a number")
	}
	return ascii, nil
}

// trimRootDot drops one trailing full stop (the DNS root), in any of the forms IDNA
// treats as a dot: ".", "。", "．", "｡".
func trimRootDot(domain string) string {
	for _, dot := range []string{".", "\u3002", "\uff0e", "\uff61"} {
		if strings.HasSuffix(domain, dot) {
			return strings.TrimSuffix(domain, dot)
		}
	}
	return domain
}

func addrErr(code, format string, args ...any) error { return Invalid("email", code, format, args...) }

// MustParseAddress parses s or panics; for tests and constants.
func MustParseAddress(s string) Address {
	a, err := ParseAddress(s)
	if err != nil {
		panic(err)
	}
	return a
}

// String returns local@domain.
func (a Address) String() string {
	if a.IsZero() {
		return ""
	}
	return a.Local + "@" + a.Domain
}

// IsZero reports whether a is the zero Address.
func (a Address) IsZero() bool { return a.Local == "" && a.Domain == "" }

// UnicodeDomain returns the domain in its Unicode (U-label) form, for display.
func (a Address) UnicodeDomain() string {
	u, err := idna.ToUnicode(a.Domain)
	if err != nil {
		return a.Domain
	}
	return u
}

// MarshalJSON writes the address as a JSON string.
func (a Address) MarshalJSON() ([]byte, error) { return json.Marshal(a.String()) }

// UnmarshalJSON parses a JSON string with ParseAddress.
func (a *Address) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return Invalid("email", "invalid_email", "must be a string")
	}
	parsed, err := ParseAddress(s)
	if err != nil {
		return err
	}
	*a = parsed
	return nil
}
