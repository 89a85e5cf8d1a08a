package tidings

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestParseAddressTable runs every case through ParseAddress and through one
// AddressParser, twice (the second time from the domains it remembers): all three
// answer alike.
func TestParseAddressTable(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	var p AddressParser
	parsers := []func(string) (Address, error){ParseAddress, p.Parse, p.Parse}
	accept := []struct{ in, want string }{
		{"user@example.com", "user@example.com"},
		{"  User@Example.COM \n", "user@example.com"},
		{"first.last@example.com", "first.last@example.com"},
		{"user+tag@example.com", "user+tag@example.com"},
		{"x@example.co.uk", "x@example.co.uk"},
		{"a@b.io", "a@b.io"},
		{"1234@example.com", "1234@example.com"},
		{"!#$%&'*+-/=?^_`{|}~@example.com", "!#$%&'*+-/=?^_`{|}~@example.com"},
		{"o'brien@example.ie", "o'brien@example.ie"},
		{"user@sub.domain.example.org", "user@sub.domain.example.org"},
		{"user@example.com.", "user@example.com"},
		{"user@my-domain.example", "user@my-domain.example"},
		{"user@123.example", "user@123.example"},
		{"user@xn--bcher-kva.example", "user@xn--bcher-kva.example"},
		{"user@Bücher.Example", "user@xn--bcher-kva.example"},
		{"user@例え.テスト", "user@xn--r8jz45g.xn--zckzah"},
		{"user@ＥＸＡＭＰＬＥ.com", "user@example.com"},
		{"Zoë@example.com", "zoë@example.com"},
		{"Zoe\u0308@example.com", "zoë@example.com"}, // NFD → NFC
		{"用户@例子.广告", "用户@xn--fsqu00a.xn--4rr70v"},
		{"δοκιμή@παράδειγμα.δοκιμή", "δοκιμή@xn--hxajbheg2az3al.xn--jxalpdlp"},
		{long(64) + "@example.com", long(64) + "@example.com"},
		{"u@" + long(63) + ".com", "u@" + long(63) + ".com"},
		{"u@a-b.c-d.example", "u@a-b.c-d.example"},
		{"_under@example.com", "_under@example.com"},
		{"a.b.c.d@example.com", "a.b.c.d@example.com"},
	}
	for _, c := range accept {
		for i, parse := range parsers {
			a, err := parse(c.in)
			if err != nil {
				t.Errorf("parser %d (%q) = %v, want %q", i, c.in, err, c.want)
				continue
			}
			if a.String() != c.want {
				t.Errorf("parser %d (%q) = %q, want %q", i, c.in, a.String(), c.want)
			}
		}
	}
	// 254 octets exactly is accepted; 255 is not.
	domain := long(63) + "." + long(63) + "." + long(63) + "." + long(47) + ".com" // 243
	if _, err := ParseAddress(long(10) + "@" + domain); err != nil {
		t.Errorf("254-octet address rejected: %v", err)
	}

	reject := []struct{ in, code string }{
		{"", "required"},
		{"   ", "required"},
		{"Bob <bob@example.com>", "display_name"},
		{"<bob@example.com>", "display_name"},
		{"bob@example.com>", "display_name"},
		{"bob(comment)@example.com", "comment"},
		{"bob@example.com (Bob)", "comment"},
		{`"bob smith"@example.com`, "quoted_local"},
		{`bob."smith"@example.com`, "quoted_local"},
		{"bobexample.com", "missing_at"},
		{"bob@@example.com", "missing_at"},
		{"a@b@example.com", "missing_at"},
		{"@example.com", "missing_local"},
		{"bob@", "missing_domain"},
		{".bob@example.com", "bad_local"},
		{"bob.@example.com", "bad_local"},
		{"bo..b@example.com", "bad_local"},
		{"bo b@example.com", "bad_local"},
		{"bob\t@example.com", "bad_local"},
		{"bob\x00@example.com", "bad_local"},
		{"bob\x7f@example.com", "bad_local"},
		{"bob,x@example.com", "bad_local"},
		{"bob;x@example.com", "bad_local"},
		{"bob:x@example.com", "bad_local"},
		{"bob\\x@example.com", "bad_local"},
		{"bo[b]@example.com", "bad_local"},
		{"\xff\xfe@example.com", "bad_local"},
		{"bob@[192.168.0.1]", "ip_literal"},
		{"bob@[IPv6:::1]", "ip_literal"},
		{"bob@localhost", "bad_domain"},
		{"bob@example", "bad_domain"},
		{"bob@example.123", "bad_domain"},
		{"bob@192.168.0.1", "bad_domain"},
		{"bob@-example.com", "bad_domain"},
		{"bob@example-.com", "bad_domain"},
		{"bob@exa_mple.com", "bad_domain"},
		{"bob@example..com", "bad_domain"},
		{"bob@.example.com", "bad_domain"},
		{"bob@exa mple.com", "bad_domain"},
		{"bob@example.com..", "bad_domain"},
		{"bob@exam!ple.com", "bad_domain"},
		{"bob@xn--zz.example", "bad_domain"},
		{long(65) + "@example.com", "too_long"},
		{"u@" + long(64) + ".com", "too_long"},
		{"u@" + strings.Repeat(long(60)+".", 5) + "com", "too_long"},
		{long(11) + "@" + domain, "too_long"},
	}
	for _, c := range reject {
		for i, parse := range parsers {
			_, err := parse(c.in)
			v, ok := AsValidation(err)
			if !ok {
				t.Errorf("parser %d (%q) = %v, want a validation error %s", i, c.in, err, c.code)
				continue
			}
			if v.Code != c.code || v.Field != "email" || v.Message == "" {
				t.Errorf("parser %d (%q) = %s/%s %q, want code %s", i, c.in, v.Field, v.Code, v.Message, c.code)
			}
		}
	}
}

func TestAddressJSON(t *testing.T) {
	var v struct{ E Address }
	if err := json.Unmarshal([]byte(`{"E":"Ann@Example.com"}`), &v); err != nil || v.E.String() != "ann@example.com" {
		t.Fatalf("unmarshal: %v %v", v.E, err)
	}
	b, _ := json.Marshal(v)
	if string(b) != `{"E":"ann@example.com"}` {
		t.Fatalf("marshal: %s", b)
	}
	err := json.Unmarshal([]byte(`{"E":"not an address"}`), &v)
	if _, ok := AsValidation(err); !ok {
		t.Fatalf("invalid address unmarshalled: %v", err)
	}
	if MustParseAddress("a@xn--bcher-kva.example").UnicodeDomain() != "bücher.example" {
		t.Fatal("UnicodeDomain")
	}
}

func FuzzAddress(f *testing.F) {
	for _, s := range []string{"user@example.com", "Zoë@Bücher.example", "a@b", "\"x\"@y.z", "a..b@c.d", "x@[1.2.3.4]", "用户@例子.广告"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddress(s)
		if err != nil {
			if _, ok := AsValidation(err); !ok {
				t.Fatalf("non-validation error %v", err)
			}
			return
		}
		if len(a.String()) > 254 {
			t.Fatalf("%q too long", a)
		}
		again, err := ParseAddress(a.String())
		if err != nil || again != a {
			t.Fatalf("%q does not re-parse to itself: %q %v", a, again, err)
		}
		for i := 0; i < len(a.Domain); i++ {
			if c := a.Domain[i]; c >= 0x80 || 'A' <= c && c <= 'Z' {
				t.Fatalf("domain %q not lowercase ASCII", a.Domain)
			}
		}
	})
}

func BenchmarkParseAddressASCII(b *testing.B) {
	for b.Loop() {
		ParseAddress("Some.Person+news@Example.com")
	}
}
