package send

import (
	"strings"
	"testing"
)

func TestInsertBeforeBodyEnd(t *testing.T) {
	for _, c := range []struct{ html, want string }{
		{"<html><body>hi</body></html>", "<html><body>hi[F]</body></html>"},
		{"<BODY>x</Body >y</BODY></HTML>", "<BODY>x</Body >y[F]</BODY></HTML>"},
		{"<p>a</body> b </body>", "<p>a</body> b [F]</body>"},
		{"no end tag", "no end tag[F]"},
		{"</bod", "</bod[F]"},
		{"<p>Ⱥȿ</body>", "<p>Ⱥȿ[F]</body>"}, // letters whose lower case is longer in UTF-8
	} {
		if got := insertBeforeBodyEnd(c.html, "[F]"); got != c.want {
			t.Errorf("%q: got %q, want %q", c.html, got, c.want)
		}
		if i := strings.LastIndex(strings.ToLower(c.html), "</body>"); strings.ToLower(c.html) == c.html && i != lastBodyEnd(c.html) {
			t.Errorf("%q: %d, strings.LastIndex says %d", c.html, lastBodyEnd(c.html), i)
		}
	}
}
