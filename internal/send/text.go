package send

import (
	"strings"

	"golang.org/x/net/html"
)

// HTMLToText makes the plain-text alternative of an HTML body: paragraphs and line
// breaks become newlines, links keep their address, scripts and styles disappear.
// Template actions ({{…}}) pass through untouched, so the result is still a template.
func HTMLToText(src string) string {
	z := html.NewTokenizer(strings.NewReader(src))
	var b strings.Builder
	var href []string
	skip := 0
	newline := func() {
		s := b.String()
		if len(s) > 0 && !strings.HasSuffix(s, "\n\n") {
			if strings.HasSuffix(s, "\n") {
				b.WriteString("\n")
			} else {
				b.WriteString("\n\n")
			}
		}
	}
	for {
		switch z.Next() {
		case html.ErrorToken:
			return strings.TrimSpace(collapse(b.String())) + "\n"
		case html.TextToken:
			if skip == 0 {
				b.WriteString(html.UnescapeString(string(z.Text())))
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			switch string(name) {
			case "script", "style", "head", "title":
				skip++
			case "br":
				b.WriteString("\n")
			case "p", "div", "h1", "h2", "h3", "h4", "table", "tr", "ul", "ol", "hr":
				newline()
			case "li":
				b.WriteString("\n- ")
			case "a":
				link := ""
				for hasAttr {
					var k, v []byte
					k, v, hasAttr = z.TagAttr()
					if string(k) == "href" {
						link = string(v)
					}
				}
				href = append(href, link)
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			switch string(name) {
			case "script", "style", "head", "title":
				if skip > 0 {
					skip--
				}
			case "p", "div", "h1", "h2", "h3", "h4", "table", "tr", "ul", "ol":
				newline()
			case "a":
				if n := len(href); n > 0 {
					if l := href[n-1]; l != "" && !strings.HasPrefix(l, "mailto:") {
						b.WriteString(" (" + l + ")")
					}
					href = href[:n-1]
				}
			}
		}
	}
}

// collapse squeezes runs of spaces within lines and of blank lines.
func collapse(s string) string {
	lines := strings.Split(s, "\n")
	var out []string
	blank := 0
	for _, l := range lines {
		l = strings.Join(strings.Fields(l), " ")
		if l == "" {
			blank++
			if blank > 1 {
				continue
			}
		} else {
			blank = 0
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}
