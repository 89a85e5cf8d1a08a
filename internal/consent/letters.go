package consent

import (
	"fmt"
	"html"
	"strings"

	"github.com/tidings/tidings/internal/postman"
	"github.com/tidings/tidings/internal/tidings"
)

// confirmationLetter asks the person to confirm, through the links of token under
// base. A request that asks for tracking consent says so plainly, and offers a second
// link that confirms without it (the confirm page's "tracking" choice): consent is
// given by whoever was told what they agree to.
func confirmationLetter(a tidings.Account, lists []string, text tidings.ConsentText, to tidings.Address, name, base, token string, days int, tracking bool) postman.Letter {
	listNames := strings.Join(lists, ", ")
	confirmURL, declineURL := base+"/confirm/"+token, base+"/decline/"+token
	withoutURL := confirmURL + "?tracking=no"
	var plainTracking, htmlTracking string
	e := html.EscapeString
	if tracking {
		confirmURL += "?tracking=asked"
		plainTracking = fmt.Sprintf(`
The request also asks for your consent to tracking: by confirming, you also agree that %s sees whether you open its emails and click their links. You can say no: confirm with this link instead, and %s will not see what you open or click, even if you agreed to it before:
%s
`, a.Name, a.Name, withoutURL)
		htmlTracking = fmt.Sprintf(`<p>The request also asks for your consent to tracking: by confirming, you also agree that %s sees whether you open its emails and click their links. You can say no: <a href="%s">confirm without tracking</a>, and %s will not see what you open or click, even if you agreed to it before.</p>
`, e(a.Name), e(withoutURL), e(a.Name))
	}
	plain := fmt.Sprintf(`%s

someone, hopefully you, asked to receive "%s" from %s at this address.

To confirm, open this link (it works for %d days):
%s

You agreed to: %s
%s
If this wasn't you, open this link and the request is deleted; you will hear nothing more:
%s
`, greeting(name), listNames, a.Name, days, confirmURL, text.Body, plainTracking, declineURL)
	htm := fmt.Sprintf(`<p>%s</p>
<p>Someone, hopefully you, asked to receive <strong>%s</strong> from %s at this address.</p>
<p><a href="%s">Confirm my subscription</a> (this link works for %d days)</p>
<p>You agreed to: <em>%s</em></p>
%s<p>If this wasn't you, <a href="%s">delete this request</a>; you will hear nothing more.</p>
`, e(greeting(name)), e(listNames), e(a.Name), e(confirmURL), days, e(text.Body), htmlTracking, e(declineURL))
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
