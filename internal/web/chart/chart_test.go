package chart

import (
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"github.com/tidings/tidings/internal/tidings"
)

func TestLinesIsWellFormedSVG(t *testing.T) {
	d := func(n int) time.Time { return time.Date(2026, 11, n, 0, 0, 0, 0, time.UTC) }
	s := tidings.Series{"opens": {{Day: d(1), Count: 5}, {Day: d(3), Count: 12}}, "<clicks>": {{Day: d(2), Count: 3}}}
	out := string(Lines("Opens & clicks", s, []string{"opens", "<clicks>"}))
	if err := xml.Unmarshal([]byte(out), new(struct{})); err != nil {
		t.Fatalf("not well-formed: %v\n%s", err, out)
	}
	for _, want := range []string{"Opens &amp; clicks", "&lt;clicks&gt;", ">12<", "1 Nov 2026", "3 Nov 2026", "<path d=\"M"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q", want)
		}
	}
	if strings.Contains(out, "<script") || strings.Contains(out, "href") {
		t.Error("charts carry no scripts or links")
	}
	empty := string(Lines("Nothing", tidings.Series{}, []string{"opens"}))
	if !strings.Contains(empty, "No data yet") {
		t.Error("an empty chart says so")
	}
}
