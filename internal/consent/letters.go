package consent

import (
	"fmt"
	"html"
	"strings"

	"github.com/tidings/tidings/internal/postman"
	"github.com/tidings/tidings/internal/tidings"
)

func confirmationLetter(a tidings.Account, lists []string, text tidings.ConsentText, to tidings.Address, name, confirmURL, declineURL string, days int) postman.Letter {
	listNames := strings.Join(lists, ", ")
	plain := fmt.Sprintf(`%s

someone, hopefully you, asked to receive "%s" from %s at this address.

To confirm, open this link (it works for %d days):
%s

You agreed to: %s

If this wasn't you, open this link and the request is deleted; you will hear nothing more:
%s
`, greeting(name), listNames, a.Name, days, confirmURL, text.Body, declineURL)
	e := html.EscapeString
	htm := fmt.Sprintf(`<p>%s</p>
<p>Someone, hopefully you, asked to receive <strong>%s</strong> from %s at this address.</p>
<p><a href="%s">Confirm my subscription</a> (this link works for %d days)</p>
<p>You agreed to: <em>%s</em></p>
<p>If this wasn't you, <a href="%s">delete this request</a>; you will hear nothing more.</p>
`, e(greeting(name)), e(listNames), e(a.Name), e(confirmURL), days, e(text.Body), e(declineURL))
	return postman.Letter{To: to, ToName: name, LocalPart: "confirm", Subject: "Please confirm your subscription to " + listNames, Text: plain, HTML: htm}
}

func welcomeLetter(a tidings.Account, lists []string, to tidings.Address, name, receiptURL string) postman.Letter {
	listNames := strings.Join(lists, ", ")
	plain := fmt.Sprintf(`%s

you are now subscribed to "%s" from %s.

Your consent receipt (a signed record of what you agreed to, and when):
%s

You can unsubscribe with one click from every email we send.
`, greeting(name), listNames, a.Name, receiptURL)
	e := html.EscapeString
	htm := fmt.Sprintf(`<p>%s</p>
<p>You are now subscribed to <strong>%s</strong> from %s.</p>
<p><a href="%s">Download your consent receipt</a>: a signed record of what you agreed to, and when.</p>
<p>You can unsubscribe with one click from every email we send.</p>
`, e(greeting(name)), e(listNames), e(a.Name), e(receiptURL))
	return postman.Letter{To: to, ToName: name, LocalPart: "news", Subject: "Welcome to " + listNames, Text: plain, HTML: htm}
}
