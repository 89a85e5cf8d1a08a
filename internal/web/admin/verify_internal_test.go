package admin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestFetchPageRules(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	defer srv.Close()
	ctx := context.Background()
	// Production: plain HTTP is refused before dialling, and private or loopback
	// addresses are never dialled (no requests into the operator's network).
	for raw, want := range map[string]string{
		"http://127.0.0.1/":     "HTTPS",
		"http://example.com/":   "HTTPS",
		"ftp://example.com/":    "HTTPS",
		srv.URL + "/":           "not public",
		"https://10.0.0.1:1/":   "not public",
		"https://[::1]:1/page":  "not public",
		"https://169.254.1.1/x": "not public",
	} {
		if _, _, err := fetchPage(ctx, raw, true); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("production fetch of %s: %v, want %q", raw, err, want)
		}
	}
	// Outside production, plain HTTP only to loopback.
	if _, _, err := fetchPage(ctx, "http://example.com/", false); err == nil || !strings.Contains(err.Error(), "HTTPS") {
		t.Errorf("http to a remote host: %v", err)
	}
}

func TestLinksTo(t *testing.T) {
	base, _ := url.Parse("https://shop.example/about/news")
	target := "https://tidings.example/verify/7"
	for page, want := range map[string]bool{
		`<a href="https://tidings.example/verify/7">us</a>`:          true,
		`<a class=x href="https://TIDINGS.example/verify/7/">us</a>`: true,
		`<link rel="me" href="https://tidings.example/verify/7">`:    true,
		`<a href="https://tidings.example/verify/70">no</a>`:         false,
		`<a href="/verify/7">relative to the shop</a>`:               false,
		`<p>https://tidings.example/verify/7</p>`:                    false,
		`<img src="https://tidings.example/verify/7">`:               false,
		`<a href="http://tidings.example/verify/7">http</a>`:         false,
	} {
		if got := linksTo([]byte(page), base, target); got != want {
			t.Errorf("linksTo(%s) = %v, want %v", page, got, want)
		}
	}
}
