package track

import (
	"strings"
	"testing"

	"github.com/tidings/tidings/internal/tidings"
)

func TestAddUTM(t *testing.T) {
	body := `<a href="https://shop.example/a?x=1&amp;utm_source=own">a</a> <a href="mailto:x@shop.example">m</a>`
	got := AddUTM(body, &tidings.UTM{Source: "tidings", Medium: "email", Campaign: "november"})
	if !strings.Contains(got, `utm_campaign=november`) || !strings.Contains(got, `utm_medium=email`) ||
		!strings.Contains(got, `utm_source=own`) || strings.Contains(got, "utm_source=tidings") || !strings.Contains(got, "mailto:x@shop.example") {
		t.Fatalf("AddUTM: %s", got)
	}
	if AddUTM(body, nil) != body {
		t.Fatal("no UTM: unchanged")
	}
}
