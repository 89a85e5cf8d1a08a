package tidings

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// addressCase is one row of the ParseAddress table. Exactly one of want and code is set:
// want is the normalised String() of an accepted address, code the ValidationError.Code
// of a rejected one.
type addressCase struct {
	name string
	in   string
	want string // accepted: normalised local@domain
	code string // rejected: expected Code
	msg  string // rejected, optional: substring the Message must contain
	bug  string // non-empty: a known defect in address.go; the row is skipped, not hidden
}

func rep(s string, n int) string { return strings.Repeat(s, n) }

// Lengths used below (octets):
//
//	dom189 = 63 + 1 + 63 + 1 + 57 + 4 (".com")   → 64 + 1 + 189 = 254, the maximum address
//	dom190 = the same with a 58-octet label      → 64 + 1 + 190 = 255, one too many
//	dom253 = 63 + 1 + 63 + 1 + 63 + 1 + 61       → the maximum domain
//	dom254 = 63 + 1 + 63 + 1 + 63 + 1 + 62       → one octet too many for a domain
var (
	dom189 = rep("a", 63) + "." + rep("b", 63) + "." + rep("c", 57) + ".com"
	dom190 = rep("a", 63) + "." + rep("b", 63) + "." + rep("c", 58) + ".com"
	dom253 = rep("a", 63) + "." + rep("b", 63) + "." + rep("c", 63) + "." + rep("d", 61)
	dom254 = rep("a", 63) + "." + rep("b", 63) + "." + rep("c", 63) + "." + rep("d", 62)
)

func addressCases() []addressCase {
	cases := []addressCase{
		// ---- accepted: plain ASCII and case folding ----
		{name: "simple", in: "user@example.com", want: "user@example.com"},
		{name: "mixed case", in: "User@Example.COM", want: "user@example.com"},
		{name: "upper case", in: "USER@EXAMPLE.COM", want: "user@example.com"},
		{name: "dotted local", in: "first.last@example.com", want: "first.last@example.com"},
		{name: "many dots", in: "a.b.c.d@example.com", want: "a.b.c.d@example.com"},
		{name: "digits local", in: "1234@example.com", want: "1234@example.com"},
		{name: "single chars", in: "a@b.co", want: "a@b.co"},
		{name: "one-letter tld", in: "a@b.c", want: "a@b.c"},
		{name: "subdomains", in: "x@mail.sub.Example.co.uk", want: "x@mail.sub.example.co.uk"},
		{name: "digit label", in: "a@123.example", want: "a@123.example"},
		{name: "digit in tld", in: "a@example.c0m", want: "a@example.c0m"},
		{name: "hyphen in labels", in: "u@my-domain.ex-ample", want: "u@my-domain.ex-ample"},
		{name: "double hyphen at 2-3", in: "u@a--b.com", want: "u@a--b.com"},

		// ---- accepted: trimming and trailing dot ----
		{name: "spaces around", in: "  user@example.com  ", want: "user@example.com"},
		{name: "tabs and newlines around", in: "\tUser@Example.com\r\n", want: "user@example.com"},
		{name: "unicode spaces around", in: "\u00a0user@example.com\u3000", want: "user@example.com"},
		{name: "NEL around", in: "\u0085user@example.com\u0085", want: "user@example.com"},
		{name: "trailing dot", in: "user@example.com.", want: "user@example.com"},
		{name: "trailing dot, upper", in: "user@EXAMPLE.COM.", want: "user@example.com"},
		{name: "trailing dot, idn", in: "a@Bücher.Example.", want: "a@xn--bcher-kva.example"},
		{name: "trailing dot, a-label", in: "a@xn--bcher-kva.example.", want: "a@xn--bcher-kva.example"},

		// ---- accepted: plus addressing and atext specials ----
		{name: "plus tag", in: "user+tag@example.com", want: "user+tag@example.com"},
		{name: "plus tag, case", in: "User+News@Example.com", want: "user+news@example.com"},
		{name: "two plus tags", in: "user+a+b@example.com", want: "user+a+b@example.com"},
		{name: "empty plus tag", in: "user+@example.com", want: "user+@example.com"},
		{name: "plus only", in: "+@example.com", want: "+@example.com"},
		{name: "all specials", in: "!#$%&'*+-/=?^_`{|}~@example.com", want: "!#$%&'*+-/=?^_`{|}~@example.com"},
		{name: "apostrophe", in: "O'Brien@example.ie", want: "o'brien@example.ie"},
		{name: "leading underscore", in: "_under@example.com", want: "_under@example.com"},

		// ---- accepted: IDNA domains ----
		{name: "idn upper", in: "a@Bücher.Example", want: "a@xn--bcher-kva.example"},
		{name: "idn all upper", in: "a@BÜCHER.EXAMPLE", want: "a@xn--bcher-kva.example"},
		{name: "idn nfd", in: "a@bu\u0308cher.example", want: "a@xn--bcher-kva.example"},
		{name: "a-label upper", in: "a@XN--BCHER-KVA.EXAMPLE", want: "a@xn--bcher-kva.example"},
		{name: "idn münchen", in: "a@münchen.de", want: "a@xn--mnchen-3ya.de"},
		{name: "idn eszett nontransitional", in: "a@faß.de", want: "a@xn--fa-hia.de"},
		{name: "idn japanese", in: "a@例え.テスト", want: "a@xn--r8jz45g.xn--zckzah"},
		{name: "idn cyrillic", in: "a@пример.испытание", want: "a@xn--e1afmkfd.xn--80akhbyknj4f"},
		{name: "idn tld only", in: "a@example.テスト", want: "a@example.xn--zckzah"},
		{name: "fullwidth domain", in: "a@ＥＸＡＭＰＬＥ.com", want: "a@example.com"},
		{name: "ideographic full stop", in: "a@example。com", want: "a@example.com"},
		{name: "fullwidth full stop", in: "a@example．com", want: "a@example.com"},

		// ---- accepted: UTF-8 local parts (RFC 6531), NFC + lowercase ----
		{name: "utf8 local", in: "Zoë@example.com", want: "zoë@example.com"},
		{name: "utf8 local nfd", in: "Zoe\u0308@example.com", want: "zo\u00eb@example.com"},
		{name: "utf8 local upper", in: "JOSÉ@example.com", want: "josé@example.com"},
		{name: "utf8 local upper nfd", in: "JOSE\u0301@example.com", want: "jos\u00e9@example.com"},
		{name: "kelvin sign", in: "\u212a@example.com", want: "k@example.com"},
		{name: "angstrom sign", in: "\u212b@example.com", want: "\u00e5@example.com"},
		{name: "eszett kept", in: "ß@example.com", want: "ß@example.com"},
		{name: "chinese EAI", in: "用户@例子.广告", want: "用户@xn--fsqu00a.xn--4rr70v"},
		{name: "greek EAI", in: "ΔΟΚΙΜΉ@παράδειγμα.δοκιμή", want: "δοκιμή@xn--hxajbheg2az3al.xn--jxalpdlp"},
		{name: "utf8 local idn domain", in: "Zoë@Bücher.Example", want: "zoë@xn--bcher-kva.example"},
		{name: "nfd local lowered", in: "J\u030C@example.com", want: "\u01f0@example.com"},
		{name: "nfd local lowered w ring", in: "W\u030A@example.com", want: "\u1e98@example.com"},
		{name: "zwnj in local", in: "\u0645\u06cc\u200c\u062e\u0648\u0627\u0645@example.com", want: "\u0645\u06cc\u200c\u062e\u0648\u0627\u0645@example.com"},

		// ---- accepted: length limits ----
		{name: "64-octet local", in: rep("a", 64) + "@example.com", want: rep("a", 64) + "@example.com"},
		{name: "64-octet utf8 local", in: rep("é", 32) + "@example.com", want: rep("é", 32) + "@example.com"},
		{name: "64-octet local after nfc", in: rep("E\u0301", 32) + "@example.com", want: rep("é", 32) + "@example.com"},
		{name: "63-octet label", in: "u@" + rep("a", 63) + ".com", want: "u@" + rep("a", 63) + ".com"},
		{name: "63-octet tld", in: "u@example." + rep("a", 63), want: "u@example." + rep("a", 63)},
		{name: "254-octet address", in: rep("x", 64) + "@" + dom189, want: rep("x", 64) + "@" + dom189},
		{name: "254-octet address upper", in: rep("X", 64) + "@" + strings.ToUpper(dom189), want: rep("x", 64) + "@" + dom189},
		{name: "254 octets with trailing dot", in: rep("x", 64) + "@" + dom189 + ".", want: rep("x", 64) + "@" + dom189},

		// ---- rejected: required ----
		{name: "empty", in: "", code: "required"},
		{name: "blank", in: "   ", code: "required"},
		{name: "whitespace only", in: "\t\r\n", code: "required"},

		// ---- rejected: display names, angle brackets ----
		{name: "display name", in: "Bob <bob@example.com>", code: "display_name"},
		{name: "quoted display name", in: `"Bob" <bob@example.com>`, code: "display_name"},
		{name: "angle brackets", in: "<bob@example.com>", code: "display_name"},
		{name: "closing bracket", in: "bob@example.com>", code: "display_name"},
		{name: "opening bracket", in: "<bob@example.com", code: "display_name"},

		// ---- rejected: comments ----
		{name: "comment in local", in: "bob(comment)@example.com", code: "comment"},
		{name: "comment after", in: "bob@example.com (Bob)", code: "comment"},
		{name: "comment before", in: "(Bob)bob@example.com", code: "comment"},
		{name: "comment in domain", in: "bob@(c)example.com", code: "comment"},

		// ---- rejected: quoted local parts ----
		{name: "quoted with space", in: `"bob smith"@example.com`, code: "quoted_local"},
		{name: "quoted plain", in: `"bob"@example.com`, code: "quoted_local"},
		{name: "quoted empty", in: `""@example.com`, code: "quoted_local"},
		{name: "quoted part", in: `bob."smith"@example.com`, code: "quoted_local"},
		{name: "quoted at", in: `"a@b"@example.com`, code: "quoted_local"},
		{name: "stray quote", in: `bo"b@example.com`, code: "bad_local"},

		// ---- rejected: @ count ----
		{name: "no at", in: "bobexample.com", code: "missing_at"},
		{name: "word", in: "bob", code: "missing_at"},
		{name: "fullwidth at", in: "bob＠example.com", code: "missing_at"},
		{name: "two at", in: "a@b@example.com", code: "missing_at", msg: "exactly one"},
		{name: "double at", in: "bob@@example.com", code: "missing_at"},
		{name: "at at", in: "@@", code: "missing_at"},
		{name: "two addresses", in: "bob@example.com,carol@example.com", code: "missing_at"},

		// ---- rejected: empty parts ----
		{name: "empty local", in: "@example.com", code: "missing_local"},
		{name: "empty local after trim", in: "  @example.com", code: "missing_local"},
		{name: "empty domain", in: "bob@", code: "missing_domain"},
		{name: "empty domain after trim", in: "bob@  ", code: "missing_domain"},
		{name: "at only", in: "@", code: "missing_local"},

		// ---- rejected: local part dots, spaces, characters ----
		{name: "leading dot", in: ".bob@example.com", code: "bad_local"},
		{name: "trailing dot local", in: "bob.@example.com", code: "bad_local"},
		{name: "double dot local", in: "bo..b@example.com", code: "bad_local"},
		{name: "dot only local", in: ".@example.com", code: "bad_local"},
		{name: "space in local", in: "bo b@example.com", code: "bad_local", msg: "spaces"},
		{name: "space before at", in: "bob @example.com", code: "bad_local", msg: "spaces"},
		{name: "name and address", in: "Bob bob@example.com", code: "bad_local", msg: "spaces"},
		{name: "tab in local", in: "bo\tb@example.com", code: "bad_local", msg: "spaces"},
		{name: "comma", in: "bob,x@example.com", code: "bad_local"},
		{name: "semicolon", in: "bob;x@example.com", code: "bad_local"},
		{name: "colon", in: "bob:x@example.com", code: "bad_local"},
		{name: "backslash", in: `bob\x@example.com`, code: "bad_local"},
		{name: "square brackets", in: "bo[b]@example.com", code: "bad_local"},

		// ---- rejected: control characters and invalid UTF-8 ----
		{name: "NUL", in: "bob\x00@example.com", code: "bad_local"},
		{name: "unit separator", in: "bob\x1f@example.com", code: "bad_local"},
		{name: "DEL", in: "bob\x7f@example.com", code: "bad_local"},
		{name: "C1 NEL inside", in: "a\u0085b@example.com", code: "bad_local"},
		{name: "C1 CSI", in: "a\u009bb@example.com", code: "bad_local"},
		{name: "line separator", in: "a\u2028b@example.com", code: "bad_local"},
		{name: "paragraph separator", in: "a\u2029b@example.com", code: "bad_local"},
		{name: "control in domain", in: "bob@exa\x01mple.com", code: "bad_domain"},
		{name: "NUL in domain", in: "bob@example.com\x00", code: "bad_domain"},
		{name: "invalid utf8", in: "\xff\xfe@example.com", code: "bad_local"},
		{name: "truncated utf8", in: "bo\xc3@example.com", code: "bad_local"},
		{name: "surrogate utf8", in: "a\xed\xa0\x80@example.com", code: "bad_local"},
		{name: "replacement char", in: "a\ufffd@example.com", code: "bad_local"},
		{name: "NBSP inside", in: "a\u00a0b@example.com", code: "bad_local", msg: "spaces"},
		{name: "em space inside", in: "a\u2003b@example.com", code: "bad_local", msg: "spaces"},
		{name: "ideographic space inside", in: "用\u3000户@example.com", code: "bad_local", msg: "spaces"},
		{name: "zero-width space", in: "a\u200bb@example.com", code: "bad_local", msg: "invisible"},
		{name: "bidi override", in: "a\u202eb@example.com", code: "bad_local", msg: "invisible"},
		{name: "BOM", in: "\ufeffa@example.com", code: "bad_local", msg: "invisible"},
		{name: "soft hyphen", in: "a\u00adb@example.com", code: "bad_local", msg: "invisible"},
		{name: "NUL names control", in: "a\x00b@example.com", code: "bad_local", msg: "control"},
		{name: "invalid utf8 in domain", in: "a@exa\xffmple.com", code: "bad_domain"},

		// ---- rejected: IP literals ----
		{name: "ipv4 literal", in: "bob@[192.168.0.1]", code: "ip_literal"},
		{name: "ipv6 literal", in: "bob@[IPv6:2001:db8::1]", code: "ip_literal"},
		{name: "unterminated literal", in: "bob@[1.2.3.4", code: "ip_literal"},
		{name: "bare ipv4", in: "bob@192.168.0.1", code: "bad_domain", msg: "number"},

		// ---- rejected: domain shape ----
		{name: "no dot", in: "bob@localhost", code: "bad_domain", msg: "dot"},
		{name: "no dot idn", in: "bob@bücher", code: "bad_domain", msg: "dot"},
		{name: "trailing dot only tld", in: "bob@com.", code: "bad_domain"},
		{name: "numeric tld", in: "bob@example.123", code: "bad_domain", msg: "number"},
		{name: "numeric tld 1", in: "bob@example.1", code: "bad_domain", msg: "number"},
		{name: "leading hyphen", in: "bob@-example.com", code: "bad_domain"},
		{name: "trailing hyphen", in: "bob@example-.com", code: "bad_domain"},
		{name: "tld leading hyphen", in: "bob@example.-com", code: "bad_domain"},
		{name: "tld trailing hyphen", in: "bob@example.com-", code: "bad_domain"},
		{name: "hyphens at 3-4", in: "bob@ab--cd.com", code: "bad_domain"},
		{name: "underscore", in: "bob@exa_mple.com", code: "bad_domain"},
		{name: "underscore label", in: "bob@_dmarc.example.com", code: "bad_domain"},
		{name: "empty label", in: "bob@example..com", code: "bad_domain"},
		{name: "leading dot domain", in: "bob@.example.com", code: "bad_domain"},
		{name: "two trailing dots", in: "bob@example.com..", code: "bad_domain"},
		{name: "dot only domain", in: "bob@.", code: "bad_domain"},
		{name: "space in domain", in: "bob@exa mple.com", code: "bad_domain"},
		{name: "space after at", in: "bob@ example.com", code: "bad_domain"},
		{name: "bang in domain", in: "bob@exam!ple.com", code: "bad_domain"},
		{name: "plus in domain", in: "bob@exam+ple.com", code: "bad_domain"},
		{name: "slash in domain", in: "bob@example.com/x", code: "bad_domain"},
		{name: "bidi mixed label", in: "bob@a\u05d0.com", code: "bad_domain"},
		{name: "trailing ideographic full stop", in: "a@example.com\u3002", want: "a@example.com"},
		{name: "trailing fullwidth full stop", in: "a@example.com\uff0e", want: "a@example.com"},

		// ---- rejected: invalid punycode ----
		{name: "invalid punycode", in: "a@xn--zz.example", code: "bad_domain"},
		{name: "empty punycode", in: "a@xn--.com", code: "bad_domain"},
		{name: "ascii-only punycode", in: "a@xn--abc-.example", code: "bad_domain"},
		{name: "punycode short", in: "a@xn--a.com", code: "bad_domain"},

		// ---- rejected: lengths ----
		{name: "65-octet local", in: rep("a", 65) + "@example.com", code: "too_long", msg: "before the @"},
		{name: "65-octet utf8 local", in: rep("é", 32) + "a@example.com", code: "too_long", msg: "before the @"},
		{name: "local over after nfc", in: rep("a", 63) + "E\u0301@example.com", code: "too_long", msg: "before the @"},
		{name: "64-octet label", in: "u@" + rep("a", 64) + ".com", code: "too_long", msg: "each part"},
		{name: "64-octet tld", in: "u@example." + rep("a", 64), code: "too_long", msg: "each part"},
		{name: "a-label over 63", in: "u@ü" + rep("a", 60) + ".com", code: "too_long", msg: "each part"},
		{name: "254-octet domain", in: "u@" + dom254, code: "too_long", msg: "at most 253"},
		{name: "253-octet domain, 255 total", in: "u@" + dom253, code: "too_long", msg: "at most 254"},
		{name: "255-octet address", in: rep("x", 64) + "@" + dom190, code: "too_long", msg: "at most 254"},
		{name: "huge local", in: rep("a", 10000) + "@example.com", code: "too_long", msg: "before the @"},
		{name: "huge domain", in: "a@" + rep("a.", 5000) + "com", code: "too_long", msg: "at most 253"},
		{name: "huge idn domain", in: "a@" + rep("ü", 2000) + ".com", code: "too_long", msg: "at most 253"},
		{name: "255 octets after idna", in: rep("x", 64) + "@" + rep("a", 63) + "." + rep("b", 63) + "." + rep("c", 56) + ".テスト", code: "too_long", msg: "at most 254"},
	}

	// Every atext special on its own and between letters.
	for _, c := range "!#$%&'*+-/=?^_`{|}~" {
		s := string(c)
		cases = append(cases,
			addressCase{name: "special alone " + s, in: s + "@example.com", want: s + "@example.com"},
			addressCase{name: "special inside " + s, in: "A" + s + "B@Example.com", want: "a" + s + "b@example.com"},
		)
	}
	return cases
}

// checkParseError reports what is wrong with err as a ParseAddress rejection.
func checkParseError(a Address, err error) string {
	if !a.IsZero() {
		return fmt.Sprintf("non-zero Address %+v returned with error", a)
	}
	var v *ValidationError
	if !errors.As(err, &v) {
		return fmt.Sprintf("error %v (%T) is not a *ValidationError", err, err)
	}
	if v.Field != "email" {
		return fmt.Sprintf("Field = %q, want \"email\"", v.Field)
	}
	if v.Message == "" {
		return "empty Message"
	}
	if !documentedCodes[v.Code] {
		return fmt.Sprintf("undocumented Code %q", v.Code)
	}
	return ""
}

var documentedCodes = map[string]bool{
	"required": true, "display_name": true, "comment": true, "quoted_local": true,
	"missing_at": true, "missing_local": true, "missing_domain": true, "bad_local": true,
	"bad_domain": true, "ip_literal": true, "too_long": true,
}

// checkAddress reports invariants every successfully parsed Address must hold.
func checkAddress(a Address) []string {
	var p []string
	s := a.String()
	if len(s) > maxAddress {
		p = append(p, fmt.Sprintf("String() is %d octets, more than %d", len(s), maxAddress))
	}
	if a.Local == "" || a.Domain == "" {
		p = append(p, "empty local or domain")
		return p
	}
	if len(a.Local) > maxLocal {
		p = append(p, fmt.Sprintf("local part is %d octets", len(a.Local)))
	}
	if len(a.Domain) > maxDomain {
		p = append(p, fmt.Sprintf("domain is %d octets", len(a.Domain)))
	}
	if !utf8.ValidString(a.Local) {
		p = append(p, "local part is not valid UTF-8")
	}
	if strings.HasPrefix(a.Local, ".") || strings.HasSuffix(a.Local, ".") || strings.Contains(a.Local, "..") {
		p = append(p, "local part has a leading, trailing or double dot")
	}
	if strings.ToLower(a.Local) != a.Local {
		p = append(p, "local part is not lowercase")
	}
	if i := strings.IndexFunc(a.Local, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) && r != '\u200c' && r != '\u200d'
	}); i >= 0 {
		p = append(p, fmt.Sprintf("local part %+q has a space, control or invisible character", a.Local))
	}
	for i := 0; i < len(a.Domain); i++ {
		c := a.Domain[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			p = append(p, fmt.Sprintf("domain %q is not lowercase ASCII (byte %#x)", a.Domain, c))
			break
		}
	}
	labels := strings.Split(a.Domain, ".")
	if len(labels) < 2 {
		p = append(p, "domain has no dot")
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			p = append(p, fmt.Sprintf("bad label %q", l))
		}
	}
	return p
}

// checkReparse reports whether String() parses back to the identical Address.
func checkReparse(a Address) string {
	b, err := ParseAddress(a.String())
	if err != nil {
		return fmt.Sprintf("String() %+q does not re-parse: %v", a.String(), err)
	}
	if b != a {
		return fmt.Sprintf("String() re-parses to %+q, not %+q", b.String(), a.String())
	}
	return ""
}

// checkCase runs one table row and returns the problems found.
func checkCase(c addressCase) []string {
	a, err := ParseAddress(c.in)
	if c.code == "" {
		if err != nil {
			return []string{fmt.Sprintf("ParseAddress(%+q) = %v, want %+q", c.in, err, c.want)}
		}
		var p []string
		if got := a.String(); got != c.want {
			p = append(p, fmt.Sprintf("ParseAddress(%+q) = %+q, want %+q", c.in, got, c.want))
		}
		at := strings.LastIndexByte(c.want, '@')
		if a.Local != c.want[:at] || a.Domain != c.want[at+1:] {
			p = append(p, fmt.Sprintf("split = %+q / %+q, want %+q / %+q", a.Local, a.Domain, c.want[:at], c.want[at+1:]))
		}
		if !norm.NFC.IsNormalString(a.Local) {
			p = append(p, fmt.Sprintf("local part %+q is not NFC", a.Local))
		}
		p = append(p, checkAddress(a)...)
		if r := checkReparse(a); r != "" {
			p = append(p, r)
		}
		return p
	}
	if err == nil {
		return []string{fmt.Sprintf("ParseAddress(%+q) = %+q, want error %s", c.in, a.String(), c.code)}
	}
	if r := checkParseError(a, err); r != "" {
		return []string{fmt.Sprintf("ParseAddress(%+q): %s", c.in, r)}
	}
	v, _ := AsValidation(err)
	var p []string
	if v.Code != c.code {
		p = append(p, fmt.Sprintf("ParseAddress(%+q) code = %s (%q), want %s", c.in, v.Code, v.Message, c.code))
	}
	if c.msg != "" && !strings.Contains(v.Message, c.msg) {
		p = append(p, fmt.Sprintf("ParseAddress(%+q) message %q does not contain %q", c.in, v.Message, c.msg))
	}
	return p
}

func TestParseAddress(t *testing.T) {
	cases := addressCases()
	var accepted, rejected, bugs int
	names := map[string]bool{}
	for _, c := range cases {
		if names[c.name] {
			t.Fatalf("duplicate case name %q", c.name)
		}
		names[c.name] = true
		if (c.want == "") == (c.code == "") {
			t.Fatalf("case %q: set exactly one of want and code", c.name)
		}
		switch {
		case c.bug != "":
			bugs++
		case c.code == "":
			accepted++
		default:
			rejected++
		}
	}
	t.Logf("%d cases: %d accepted, %d rejected, %d skipped as known bugs", len(cases), accepted, rejected, bugs)

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			problems := checkCase(c)
			if c.bug != "" {
				state := "still fails: " + strings.Join(problems, "; ")
				if len(problems) == 0 {
					state = "now passes: remove the bug marker"
				}
				t.Skipf("BUG: %s (%s)", c.bug, state)
			}
			for _, p := range problems {
				t.Error(p)
			}
		})
	}
}

func TestParseAddressSurroundingSpaceIsIrrelevant(t *testing.T) {
	for _, c := range addressCases() {
		if c.bug != "" {
			continue
		}
		a1, err1 := ParseAddress(c.in)
		a2, err2 := ParseAddress(" \t" + c.in + "\n ")
		if a1 != a2 || (err1 == nil) != (err2 == nil) {
			t.Errorf("%s: padding changes the result: %+q %v vs %+q %v", c.name, a1.String(), err1, a2.String(), err2)
		}
	}
}

// TestParseAddressLongIDNInput checks that an over-long internationalised domain is
// rejected cheaply.
//
// IDNA conversion (punycode) is quadratic in the distinct code points of a label, so the
// raw input is capped before any Unicode work.
func TestParseAddressLongIDNInput(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 4000; i++ { // 12 KB of distinct code points in one label
		b.WriteRune(rune(0x4e00 + i))
	}
	in := "a@" + b.String() + ".com"
	start := time.Now()
	_, err := ParseAddress(in)
	took := time.Since(start)
	if v, ok := AsValidation(err); !ok || v.Code != "too_long" {
		t.Errorf("ParseAddress(12 KB IDN) = %v, want too_long", err)
	}
	// Not a timing assertion: a parse that reached IDNA would take ~100 ms; logged for
	// whoever reads the output.
	t.Logf("rejected %d octets in %v", len(in), took)
}

func TestMustParseAddress(t *testing.T) {
	if got := MustParseAddress("Ann@Example.com").String(); got != "ann@example.com" {
		t.Errorf("MustParseAddress = %q", got)
	}
	defer func() {
		r := recover()
		if _, ok := r.(*ValidationError); !ok {
			t.Errorf("MustParseAddress(invalid) panicked with %v (%T), want *ValidationError", r, r)
		}
	}()
	MustParseAddress("not an address")
}

func TestAddressZeroAndUnicodeDomain(t *testing.T) {
	var z Address
	if !z.IsZero() || z.String() != "" {
		t.Errorf("zero Address: IsZero %v, String %q", z.IsZero(), z.String())
	}
	if MustParseAddress("a@b.co").IsZero() {
		t.Error("parsed address IsZero")
	}
	for in, want := range map[string]string{
		"a@Bücher.Example":   "bücher.example",
		"a@例え.テスト":           "例え.テスト",
		"a@example.com":      "example.com",
		"a@xn--fa-hia.de":    "faß.de",
		"a@пример.испытание": "пример.испытание",
	} {
		if got := MustParseAddress(in).UnicodeDomain(); got != want {
			t.Errorf("UnicodeDomain(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAddressJSONRoundTrip(t *testing.T) {
	t.Run("table", func(t *testing.T) {
		for _, c := range addressCases() {
			if c.code != "" || c.bug != "" {
				continue
			}
			a := MustParseAddress(c.in)
			b, err := json.Marshal(a)
			if err != nil {
				t.Fatalf("%s: Marshal: %v", c.name, err)
			}
			var s string
			if err := json.Unmarshal(b, &s); err != nil || s != c.want {
				t.Errorf("%s: Marshal = %s, want the JSON string %q (%v)", c.name, b, c.want, err)
			}
			var back Address
			if err := json.Unmarshal(b, &back); err != nil || back != a {
				t.Errorf("%s: Unmarshal(%s) = %+q, %v; want %+q", c.name, b, back.String(), err, a.String())
			}
		}
	})

	t.Run("normalises on unmarshal", func(t *testing.T) {
		var a Address
		if err := json.Unmarshal([]byte(`" Zoe\u0308@B\u00fccher.Example. "`), &a); err != nil {
			t.Fatal(err)
		}
		if want := MustParseAddress("zoë@xn--bcher-kva.example"); a != want {
			t.Errorf("got %+q, want %+q", a.String(), want.String())
		}
	})

	t.Run("struct and slice", func(t *testing.T) {
		type rec struct {
			Email Address   `json:"email"`
			CC    []Address `json:"cc"`
			Ptr   *Address  `json:"ptr"`
		}
		in := rec{
			Email: MustParseAddress("A&B@Example.com"),
			CC:    []Address{MustParseAddress("x+y@example.com"), MustParseAddress("用户@例子.广告")},
		}
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		var out rec
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("Unmarshal(%s): %v", b, err)
		}
		if out.Email != in.Email || len(out.CC) != 2 || out.CC[0] != in.CC[0] || out.CC[1] != in.CC[1] || out.Ptr != nil {
			t.Errorf("round trip: %s → %+v", b, out)
		}
		if err := json.Unmarshal([]byte(`{"email":"a@b.co","cc":["ok@example.com","bad@@example.com"]}`), &out); err == nil {
			t.Error("invalid slice element accepted")
		} else if v, ok := AsValidation(err); !ok || v.Code != "missing_at" {
			t.Errorf("invalid slice element: %v", err)
		}
	})

	t.Run("invalid addresses", func(t *testing.T) {
		for _, c := range addressCases() {
			if c.code == "" || c.bug != "" || !utf8.ValidString(c.in) {
				continue // invalid UTF-8 cannot travel as a JSON string unchanged
			}
			j, _ := json.Marshal(c.in)
			prev := MustParseAddress("keep@example.com")
			a := prev
			err := json.Unmarshal(j, &a)
			var v *ValidationError
			if !errors.As(err, &v) {
				t.Errorf("%s: Unmarshal(%s) = %v (%T), want *ValidationError", c.name, j, err, err)
				continue
			}
			if v.Field != "email" || v.Code != c.code || v.Message == "" {
				t.Errorf("%s: Unmarshal(%s) = %s/%s %q, want email/%s", c.name, j, v.Field, v.Code, v.Message, c.code)
			}
			if a != prev {
				t.Errorf("%s: failed Unmarshal changed the value to %+q", c.name, a.String())
			}
		}
	})

	t.Run("not a string", func(t *testing.T) {
		for _, j := range []string{`42`, `true`, `{}`, `["a@b.co"]`} {
			var a Address
			err := json.Unmarshal([]byte(j), &a)
			v, ok := AsValidation(err)
			if !ok || v.Field != "email" || v.Code != "invalid_email" || v.Message == "" {
				t.Errorf("Unmarshal(%s) = %v, want email/invalid_email", j, err)
			}
		}
	})

	t.Run("zero value", func(t *testing.T) {
		b, err := json.Marshal(Address{})
		if err != nil || string(b) != `""` {
			t.Fatalf("Marshal(Address{}) = %s, %v", b, err)
		}
		// A zero Address marshals to "" but "" is not an address: unmarshalling it is
		// rejected as required (Subscriber.Validate treats a missing email the same way).
		var a Address
		if v, ok := AsValidation(json.Unmarshal(b, &a)); !ok || v.Code != "required" {
			t.Errorf(`Unmarshal("") = %v, want required`, v)
		}
		// Current behaviour: JSON null is also "required" (encoding/json's convention is
		// for null to be a no-op; optional emails in the API use *Address instead).
		if v, ok := AsValidation(json.Unmarshal([]byte(`null`), &a)); !ok || v.Code != "required" {
			t.Errorf("Unmarshal(null) = %v, want required", v)
		}
	})
}

func FuzzParseAddress(f *testing.F) {
	for _, c := range addressCases() {
		f.Add(c.in)
	}
	for _, s := range []string{"a@b", "x@[1.2.3.4]", "a\u00a0b@example.com", "a\u200bb@example.com", "\u0301a@example.com", "İ@example.com", "a@☃.com", "a@xn--ls8h.la"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddress(s)
		if err != nil {
			if r := checkParseError(a, err); r != "" {
				t.Fatalf("ParseAddress(%+q): %s", s, r)
			}
			return
		}
		for _, p := range checkAddress(a) {
			t.Errorf("ParseAddress(%+q) = %+q: %s", s, a.String(), p)
		}
		if !norm.NFC.IsNormalString(a.Local) {
			t.Fatalf("local part %+q is not NFC", a.Local)
		}
		if r := checkReparse(a); r != "" {
			t.Fatalf("ParseAddress(%+q): %s", s, r)
		}
	})
}

func BenchmarkParseAddress(b *testing.B) {
	for _, bc := range []struct{ name, in string }{
		{"ascii", "user@example.com"},
		{"ascii-mixed-case-plus", "  Some.Person+news@Example.COM. "},
		{"idn-domain", "a@Bücher.Example"},
		{"utf8-local", "Zoe\u0308@例子.广告"},
		{"max-length", rep("x", 64) + "@" + dom189},
		{"reject-display-name", "Bob <bob@example.com>"},
		{"reject-bad-domain", "bob@exa_mple.com"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = ParseAddress(bc.in)
			}
		})
	}
}

func TestParseDomain(t *testing.T) {
	for in, want := range map[string]string{" News.Example.COM ": "news.example.com", "bücher.example": "xn--bcher-kva.example"} {
		if got, err := ParseDomain(in); err != nil || got != want {
			t.Errorf("ParseDomain(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "a@b.example", "no domain", "-x-.example"} {
		if _, err := ParseDomain(bad); err == nil {
			t.Errorf("ParseDomain(%q) accepted", bad)
		}
	}
}
