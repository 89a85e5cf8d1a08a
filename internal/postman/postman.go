// Package postman sends an account's mail: it puts the controller's identity on every
// message (From, footer), signs with the account's DKIM keys, and hands the result to
// the configured sender (SMTP relay pool or outbox). It returns the bytes exactly as
// sent, so callers can keep them as proof.
package postman

import (
	"context"
	"fmt"
	"html"
	netmail "net/mail"
	"strings"
	"sync"
	"time"

	"github.com/tidings/tidings/internal/mail"
	"github.com/tidings/tidings/internal/tidings"
)

// Store is what the postman reads.
type Store interface {
	GetAccount(ctx context.Context, id int64) (tidings.Account, error)
	SendingDomains(ctx context.Context, accountID int64) ([]tidings.SendingDomain, error)
}

// Postman sends mail on behalf of accounts.
type Postman struct {
	store Store
	send  mail.Sender
	// fallbackDomain is used for accounts without a sending domain (unsigned mail from
	// the instance's own host).
	fallbackDomain string

	mu    sync.Mutex
	cache map[int64]identity
}

// identity is an account's sending identity, cached briefly: parsing RSA keys for every
// message would cost more than signing.
type identity struct {
	account tidings.Account
	domain  string
	signer  *mail.Signer
	loaded  time.Time
}

const identityTTL = time.Minute

// New returns a postman.
func New(store Store, sender mail.Sender, fallbackDomain string) *Postman {
	return &Postman{store: store, send: sender, fallbackDomain: fallbackDomain, cache: map[int64]identity{}}
}

// Letter is what callers compose; the postman adds From, the footer and signatures.
type Letter struct {
	To         tidings.Address
	ToName     string
	LocalPart  string // of the From address, e.g. "confirm"; default "no-reply"
	Subject    string
	Text, HTML string
	Headers    []mail.Header
	ReturnPath string // envelope sender; default the From address
}

// Send composes, signs and sends the letter for the account and returns the message
// exactly as handed to the sender.
func (p *Postman) Send(ctx context.Context, accountID int64, l Letter) ([]byte, error) {
	id, err := p.identity(ctx, accountID)
	if err != nil {
		return nil, err
	}
	local := l.LocalPart
	if local == "" {
		local = "no-reply"
	}
	from := local + "@" + id.domain
	footerText, footerHTML := Footer(id.account)
	m := &mail.Message{
		From:      netmail.Address{Name: id.account.Name, Address: from},
		To:        netmail.Address{Name: l.ToName, Address: l.To.String()},
		Subject:   l.Subject,
		Date:      time.Now(),
		MessageID: mail.NewMessageID(id.domain),
		Headers:   l.Headers,
	}
	if l.Text != "" {
		m.Text = l.Text + "\n\n-- \n" + footerText
	}
	if l.HTML != "" {
		m.HTML = l.HTML + footerHTML
	}
	raw := m.Bytes()
	if id.signer != nil {
		if raw, err = id.signer.Sign(raw); err != nil {
			return nil, fmt.Errorf("dkim: %w", err)
		}
	}
	rp := l.ReturnPath
	if rp == "" {
		rp = from
	}
	if err := p.send.Send(ctx, mail.Envelope{From: rp, To: []string{l.To.String()}, Account: accountID}, raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// Forget drops the cached identity of an account (after its settings or keys change).
func (p *Postman) Forget(accountID int64) {
	p.mu.Lock()
	delete(p.cache, accountID)
	p.mu.Unlock()
}

func (p *Postman) identity(ctx context.Context, accountID int64) (identity, error) {
	p.mu.Lock()
	id, ok := p.cache[accountID]
	p.mu.Unlock()
	if ok && time.Since(id.loaded) < identityTTL {
		return id, nil
	}
	acc, err := p.store.GetAccount(ctx, accountID)
	if err != nil {
		return id, err
	}
	domains, err := p.store.SendingDomains(ctx, accountID)
	if err != nil {
		return id, err
	}
	id = identity{account: acc, domain: p.fallbackDomain, loaded: time.Now()}
	for _, d := range domains {
		var keys []mail.DKIMKey
		for _, k := range d.Keys {
			if k.RetiredAt != nil {
				continue
			}
			signer, err := mail.ParsePrivateKey(k.PrivateKey)
			if err != nil {
				return id, fmt.Errorf("dkim key %d: %w", k.ID, err)
			}
			keys = append(keys, mail.DKIMKey{Domain: d.Domain, Selector: k.Selector, Signer: signer})
		}
		if len(keys) > 0 {
			if id.signer, err = mail.NewSigner(keys...); err != nil {
				return id, err
			}
			id.domain = d.Domain
			break
		}
	}
	p.mu.Lock()
	p.cache[accountID] = id
	p.mu.Unlock()
	return id, nil
}

// Footer is the controller's identity as every mail carries it.
func Footer(a tidings.Account) (text, htmlPart string) {
	var lines []string
	lines = append(lines, "Sent by "+a.Name)
	if a.PostalAddress != "" {
		lines = append(lines, strings.ReplaceAll(a.PostalAddress, "\n", ", "))
	}
	lines = append(lines, "Contact: "+a.ContactEmail)
	if a.PrivacyPolicyURL != "" {
		lines = append(lines, "Privacy policy: "+a.PrivacyPolicyURL)
	}
	text = strings.Join(lines, "\n")
	var b strings.Builder
	b.WriteString(`<hr><p style="font-size:12px;color:#555">`)
	for i, l := range lines {
		if i > 0 {
			b.WriteString("<br>")
		}
		b.WriteString(html.EscapeString(l))
	}
	b.WriteString("</p>")
	return text, b.String()
}
