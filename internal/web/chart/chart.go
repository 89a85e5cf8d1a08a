// Package chart draws small server-side SVG charts: no scripts, no fonts or assets from
// anywhere, so they fit the pages' strict Content-Security-Policy.
package chart

import (
	"fmt"
	"html"
	"strings"
	"time"

	"github.com/tidings/tidings/internal/tidings"
)

const (
	width, height = 640, 240
	left, right   = 48, 12
	top, bottom   = 28, 36
)

var palette = []string{"#2456a6", "#1e7d32", "#b3261e", "#8a5a00"}

// Lines draws the named series (in order) as lines over their days, with a legend,
// the largest value on the y-axis and the first and last day on the x-axis.
func Lines(title string, s tidings.Series, order []string) []byte {
	var first, last time.Time
	var maxV int64 = 1
	for _, name := range order {
		for _, p := range s[name] {
			if first.IsZero() || p.Day.Before(first) {
				first = p.Day
			}
			if p.Day.After(last) {
				last = p.Day
			}
			maxV = max(maxV, p.Count)
		}
	}
	span := last.Sub(first).Hours() / 24
	if span < 1 {
		span = 1
	}
	x := func(d time.Time) float64 {
		return left + (d.Sub(first).Hours()/24)/span*float64(width-left-right)
	}
	y := func(v int64) float64 {
		return float64(height-bottom) - float64(v)/float64(maxV)*float64(height-top-bottom)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`,
		width, height, width, height, html.EscapeString(title))
	fmt.Fprintf(&b, `<title>%s</title><rect width="100%%" height="100%%" fill="#fff"/>`, html.EscapeString(title))
	fmt.Fprintf(&b, `<text x="%d" y="18" font-family="sans-serif" font-size="14" font-weight="bold">%s</text>`, left, html.EscapeString(title))
	// Axes, the maximum, and the date range.
	fmt.Fprintf(&b, `<path d="M%d %d V%d H%d" stroke="#888" fill="none"/>`, left, top, height-bottom, width-right)
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-family="sans-serif" font-size="11" text-anchor="end">%d</text>`, left-4, top+4, maxV)
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-family="sans-serif" font-size="11" text-anchor="end">0</text>`, left-4, height-bottom)
	if !first.IsZero() {
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-family="sans-serif" font-size="11">%s</text>`, left, height-bottom+16, first.Format("2 Jan 2006"))
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-family="sans-serif" font-size="11" text-anchor="end">%s</text>`, width-right, height-bottom+16, last.Format("2 Jan 2006"))
	} else {
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-family="sans-serif" font-size="12">No data yet</text>`, width/2-30, height/2)
	}
	for i, name := range order {
		color := palette[i%len(palette)]
		pts := s[name]
		if len(pts) > 0 {
			var path strings.Builder
			for j, p := range pts {
				cmd := "L"
				if j == 0 {
					cmd = "M"
				}
				fmt.Fprintf(&path, "%s%.1f %.1f ", cmd, x(p.Day), y(p.Count))
			}
			fmt.Fprintf(&b, `<path d="%s" stroke="%s" stroke-width="2" fill="none"/>`, strings.TrimSpace(path.String()), color)
			for _, p := range pts {
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2.5" fill="%s"><title>%s %s: %d</title></circle>`,
					x(p.Day), y(p.Count), color, html.EscapeString(name), p.Day.Format("2 Jan"), p.Count)
			}
		}
		lx := width - right - 110*(len(order)-i)
		fmt.Fprintf(&b, `<rect x="%d" y="8" width="10" height="10" fill="%s"/><text x="%d" y="17" font-family="sans-serif" font-size="11">%s</text>`,
			lx, color, lx+14, html.EscapeString(name))
	}
	b.WriteString(`</svg>`)
	return []byte(b.String())
}
