package sqlstore

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/tidings/tidings/internal/tidings"
)

// TestMarshalAttributes: attributes encoded without reflection read back as json.Marshal's
// encoding does, whatever the strings hold; values that are not all strings go to
// json.Marshal itself.
func TestMarshalAttributes(t *testing.T) {
	for _, attrs := range []tidings.Attributes{
		nil,
		{},
		{"city": "Zürich", "plan": "pro"},
		{"quote": `say "hi"`, "slash": `C:\path\`, "tags": "<b>&amp;</b>"},
		{"ctrl": "a\x00b\x01c\td\ne\rf\x1f", "del": "\x7f", "seps": "\u2028\u2029", "emoji": "🙂"},
		{"bad utf-8": "a\xffb\xc3", "": "empty key"},
		{"n": 3.5, "s": "mixed"},
		{"nested": map[string]any{"a": []any{"x", true}}},
	} {
		ours, err := marshalAttributes(attrs)
		if err != nil {
			t.Fatalf("%q: %v", attrs, err)
		}
		theirs, _ := json.Marshal(attrs)
		var got, want tidings.Attributes
		if err := json.Unmarshal(ours, &got); err != nil {
			t.Fatalf("%q encoded as %s: does not decode: %v", attrs, ours, err)
		}
		json.Unmarshal(theirs, &want)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q encoded as %s reads back as %q; json.Marshal's %s as %q", attrs, ours, got, theirs, want)
		}
	}
}
