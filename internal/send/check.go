package send

import (
	"strings"

	"github.com/tidings/tidings/internal/tidings"
)

// Check normalises and validates a campaign before it is saved: its fields, its templates
// (compiled in the sandbox, so errors carry line numbers), and its From address, which
// must be on one of the account's sending domains.
func Check(c *tidings.Campaign, domains []tidings.SendingDomain) error {
	c.Normalize()
	if err := c.Validate(); err != nil {
		return err
	}
	if _, err := Compile(*c); err != nil {
		return err
	}
	from := tidings.MustParseAddress(c.FromAddress)
	var names []string
	for _, d := range domains {
		if d.Domain == from.Domain {
			return nil
		}
		names = append(names, d.Domain)
	}
	if len(names) == 0 {
		return tidings.Invalid("from_address", "no_sending_domain", "the account has no sending domain yet; add one first (admin UI or tidings dkim generate)")
	}
	return tidings.Invalid("from_address", "unknown_domain", "must be on one of the account's sending domains: %s", strings.Join(names, ", "))
}
