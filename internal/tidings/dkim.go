package tidings

import (
	"regexp"
	"strings"
	"time"
)

// DKIM selectors. A key generation makes one key per algorithm, each named
// PREFIX-ALGORITHM (tidings20261130-rsa, tidings20261130-ed25519); the prefix names the
// generation. The one rule for a new generation, the same in the admin and the CLI:
//
//   - every selector it makes must be a DNS label (DKIMSelectors);
//   - none of them may ever have been used on the domain on this instance, by a signing
//     key, a retired one, or one of a removed domain (the store refuses that with
//     SelectorTaken, in the transaction that adds the keys). A domain and a selector
//     name one public key for good: the one that verifies mail signed with it, such as
//     stored proof messages.
//
// Other selectors sharing the prefix do not matter: only the names made are checked.

var selectorRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidSelector reports whether s is a DKIM selector the store accepts: one lower-case
// DNS label.
func ValidSelector(s string) bool { return selectorRE.MatchString(s) }

// DefaultSelectorPrefix is the prefix of a generation made at now when none is chosen:
// tidings and the UTC day, e.g. tidings20261130. A second generation on the same day
// (on the same domain) needs a chosen prefix.
func DefaultSelectorPrefix(now time.Time) string { return "tidings" + now.UTC().Format("20060102") }

// DKIMSelectors returns the prefix of a key generation (typed, trimmed and lower-cased;
// the default when empty) and its selectors, one per algorithm, in order. A
// *ValidationError on "selector" when a selector would not be a DNS label.
func DKIMSelectors(typed string, algorithms []string, now time.Time) (prefix string, selectors []string, err error) {
	prefix = strings.ToLower(strings.TrimSpace(typed))
	if prefix == "" {
		prefix = DefaultSelectorPrefix(now)
	}
	for _, alg := range algorithms {
		sel := prefix + "-" + alg
		if !ValidSelector(sel) {
			return "", nil, Invalid("selector", "bad_selector",
				"must be a DNS label: letters, digits and hyphens, at most 63 characters with -%s", alg)
		}
		selectors = append(selectors, sel)
	}
	return prefix, selectors, nil
}

// SelectorTaken is the store's refusal of a key whose selector was used on the domain
// before (see DKIMSelectors).
func SelectorTaken(selector, domain string) *ValidationError {
	return Invalid("selector", "selector_taken", "%s is already used on %s, by a signing or a retired key (a selector names one key for good)", selector, domain)
}
