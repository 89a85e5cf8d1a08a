package tidings

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestAttributeNames(t *testing.T) {
	good := []string{"a", "_", "plan", "Customer_ID", "x9", strings.Repeat("a", 64)}
	bad := []string{"", "9lives", "has space", "dash-ed", "dot.ted", "ümlaut", strings.Repeat("a", 65), "a\x00"}
	for _, k := range good {
		if err := (Attributes{k: "v"}).Validate(); err != nil {
			t.Errorf("%q refused: %v", k, err)
		}
	}
	for _, k := range bad {
		if err := (Attributes{k: "v"}).Validate(); err == nil {
			t.Errorf("%q accepted", k)
		}
	}
}

// TestAttributesSize: the encoded size is the limit, whether Validate takes the quick
// bound or encodes. Values near the limit, escapes that grow six-fold, and values that
// are not strings all land on the right side of it.
func TestAttributesSize(t *testing.T) {
	fill := func(n int, s string) string { return strings.Repeat(s, n) }
	cases := []Attributes{
		{"a": "short", "b": "text"},
		{"a": fill(MaxAttributesBytes-8, "x")},                        // exactly at the limit: {"a":"…"}
		{"a": fill(MaxAttributesBytes-7, "x")},                        // one byte over
		{"a": fill(MaxAttributesBytes/6, "<")},                        // each < encodes as \u003c
		{"a": fill(MaxAttributesBytes/6-2, "<")},                      // just under with escapes
		{"a": fill(MaxAttributesBytes/2, "\n")},                       // \n: two bytes each
		{"n": 12.5, "b": true, "s": fill(MaxAttributesBytes-30, "y")}, // not all strings: measured
		{"n": 12.5, "b": true, "s": fill(MaxAttributesBytes-20, "y")}, // not all strings, over
		{"x": fill(MaxAttributesBytes/7, "é")},                        // two bytes each, not escaped
	}
	for i, a := range cases {
		b, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		fits := len(b) <= MaxAttributesBytes
		if err := a.Validate(); (err == nil) != fits {
			t.Errorf("case %d: %d bytes of JSON, Validate: %v", i, len(b), err)
		}
		if a.surelyFits() && !fits {
			t.Errorf("case %d: the quick bound passed %d bytes", i, len(b))
		}
	}
	if !(Attributes{"city": "Oslo", "plan": "pro"}).surelyFits() {
		t.Error("small string attributes take the slow path")
	}
}
