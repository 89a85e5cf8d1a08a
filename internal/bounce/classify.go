package bounce

import (
	"regexp"
	"strings"

	"github.com/tidings/tidings/internal/tidings"
)

// Classify decides whether a failure is hard (the address will never work: suppress it)
// or soft (it may work later: count it). The RFC 3463 status decides where it is clear;
// the diagnostic text decides where servers use a vague code, such as 5.7.1 or 5.0.0
// for "user unknown" or 4.x.x for things that are final in practice.
func Classify(status, diagnostic string) tidings.FeedbackKind {
	class, subject, _ := strings.Cut(status, ".")
	switch {
	case class == "4": // persistent transient failure, by definition
		return tidings.FeedbackSoft
	case hardPattern.MatchString(diagnostic):
		return tidings.FeedbackHard
	case softPattern.MatchString(diagnostic):
		return tidings.FeedbackSoft
	}
	switch class {
	case "5":
		switch subject {
		case "1.1", "1.2", "1.3", "1.6", "1.10", // bad mailbox, bad domain, bad syntax, moved, null MX
			"2.1", // mailbox disabled
			"4.4": // no route to the domain
			return tidings.FeedbackHard
		}
		// 5.2.2 full, 5.3.4 too big, 5.7.x policy and the rest say nothing final about
		// the address: the next message may pass.
		return tidings.FeedbackSoft
	}
	return tidings.FeedbackSoft
}

// The pattern table: phrases receiving servers use, with or without a status code.
var (
	hardPattern = regexp.MustCompile(`(?i)(user unknown|unknown user|no such (user|mailbox|recipient|address)|` +
		`(mailbox|address|recipient|account|user) (does not exist|doesn't exist|not found|unknown|is disabled|has been disabled|is inactive)|` +
		`invalid (recipient|mailbox|address)|recipient address rejected: (user unknown|undeliverable|access denied)|` +
		`no mailbox here|mailbox unavailable|address rejected|unrouteable address|no mx (record|host)|host or domain name not found|domain (not found|does not exist))`)
	softPattern = regexp.MustCompile(`(?i)(mailbox (is )?full|over ?quota|quota exceeded|insufficient (storage|space)|` +
		`try again later|temporar(il)?y|too many (connections|messages)|rate limit|greylist|message (too large|size exceeds))`)
)
