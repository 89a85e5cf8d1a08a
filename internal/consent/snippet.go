package consent

import (
	"fmt"
	"html"
	"strings"

	"github.com/tidings/tidings/internal/tidings"
)

// AlsoList is a further list of the account that a sign-up form (the embedded snippet
// or the hosted page) offers as an unticked checkbox: its form token (ListToken) and
// what the person needs to choose it.
type AlsoList struct{ Token, Name, Description, Purpose string }

// AlsoLists names further lists for EmbedSnippet, SubscribeURL and the hosted page.
func (s *Service) AlsoLists(lists []tidings.List) []AlsoList {
	out := make([]AlsoList, 0, len(lists))
	for _, l := range lists {
		out = append(out, AlsoList{Token: s.ListToken(l.AccountID, l.ID), Name: l.Name, Description: l.Description, Purpose: l.Purpose})
	}
	return out
}

// AlsoQuery is the query that makes the hosted page offer further lists:
// "?also=token,token", or "" for none. Form tokens, never IDs: a shared link must not
// reveal anything guessable. SplitAlso reads it back.
func AlsoQuery(also []AlsoList) string {
	if len(also) == 0 {
		return ""
	}
	tokens := make([]string, len(also))
	for i, a := range also {
		tokens[i] = a.Token
	}
	// Tokens are base64url: no comma, nothing to escape.
	return "?also=" + strings.Join(tokens, ",")
}

// SplitAlso returns the form tokens of "also" query values, each a token or a
// comma-separated list of them (AlsoQuery), empty items left out.
func SplitAlso(values []string) []string {
	var out []string
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				out = append(out, t)
			}
		}
	}
	return out
}

// EmbedSnippet is the HTML form an account holder pastes into their own site: it posts
// cross-origin to the subscribe endpoint, with the honeypot field and the consent text
// of the given version. Further lists of the account are offered as unticked
// checkboxes ("also"): the person chooses.
func EmbedSnippet(action string, l tidings.List, a tidings.Account, t tidings.ConsentText, also ...AlsoList) string {
	e := html.EscapeString
	var b strings.Builder
	fmt.Fprintf(&b, "<form method=\"post\" action=\"%s\">\n", e(action))
	b.WriteString("  <label>Email address <input type=\"email\" name=\"email\" required></label>\n")
	b.WriteString("  <label>Name (optional) <input name=\"name\"></label>\n")
	b.WriteString("  <input name=\"website\" tabindex=\"-1\" autocomplete=\"off\" style=\"position:absolute;left:-10000px\" aria-hidden=\"true\">\n")
	if a.TrackingEnabled {
		b.WriteString("  <label><input type=\"checkbox\" name=\"tracking_consent\" value=\"yes\"> Let us see whether I open the emails and which links I click (optional)</label>\n")
	}
	for _, o := range also {
		fmt.Fprintf(&b, "  <label><input type=\"checkbox\" name=\"also\" value=\"%s\"> Also subscribe to %s</label>\n", e(o.Token), e(o.Name))
	}
	fmt.Fprintf(&b, "  <input type=\"hidden\" name=\"consent_version\" value=\"%d\">\n", t.Version)
	fmt.Fprintf(&b, "  <p>%s</p>\n", e(t.Body))
	fmt.Fprintf(&b, "  <button type=\"submit\">Subscribe to %s</button>\n</form>\n", e(l.Name))
	return b.String()
}
