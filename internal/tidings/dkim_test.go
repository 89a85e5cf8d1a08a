package tidings

import (
	"strings"
	"testing"
	"time"
)

// TestDKIMSelectors: one rule for a key generation's selectors, the admin's and the
// CLI's: the typed prefix normalised, or the day's default; each selector a DNS label.
func TestDKIMSelectors(t *testing.T) {
	now := time.Date(2026, 11, 30, 23, 59, 0, 0, time.FixedZone("x", 3600)) // 22:59 UTC
	algs := []string{"rsa", "ed25519"}
	for _, tc := range []struct {
		typed, prefix, selectors string // selectors "" when refused
	}{
		{"", "tidings20261130", "tidings20261130-rsa tidings20261130-ed25519"},
		{"  ", "tidings20261130", "tidings20261130-rsa tidings20261130-ed25519"},
		{" Rot1 ", "rot1", "rot1-rsa rot1-ed25519"},
		{"a-b", "a-b", "a-b-rsa a-b-ed25519"},
		{strings.Repeat("a", 55), strings.Repeat("a", 55), strings.Repeat("a", 55) + "-rsa " + strings.Repeat("a", 55) + "-ed25519"},
		{strings.Repeat("a", 56), "", ""}, // 56 + len("-ed25519") > 63
		{"rot_1", "", ""},
		{"-rot", "", ""},
		{"rot.1", "", ""},
		{"röt", "", ""},
	} {
		prefix, sels, err := DKIMSelectors(tc.typed, algs, now)
		if tc.selectors == "" {
			if v, ok := AsValidation(err); !ok || v.Field != "selector" || v.Code != "bad_selector" {
				t.Errorf("%q: %q %v, %v; want a bad_selector error", tc.typed, prefix, sels, err)
			}
			continue
		}
		if err != nil || prefix != tc.prefix || strings.Join(sels, " ") != tc.selectors {
			t.Errorf("%q: %q %v, %v; want %q %s", tc.typed, prefix, sels, err, tc.prefix, tc.selectors)
		}
	}
	if DefaultSelectorPrefix(now) != "tidings20261130" {
		t.Errorf("default prefix %q", DefaultSelectorPrefix(now))
	}
}
