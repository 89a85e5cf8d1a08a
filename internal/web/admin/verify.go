package admin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/net/html"

	"github.com/tidings/tidings/internal/tidings"
)

// Phishing defence. An account names a page on its own website that links to this
// instance's verification page for the account; Tidings checks the link is there. The
// verification page (public) then shows which public page, sending domains and hosted
// pages really belong to the account, so a person can tell a genuine page from a copy.

// Limits of the public page fetch.
const (
	fetchTimeout  = 5 * time.Second
	fetchMaxBytes = 1 << 20
)

// fetchPublicPage fetches a public page for the check and returns its body and final
// URL. A variable so tests can replace it.
var fetchPublicPage = fetchPage

// verifyURL is this instance's verification page of an account.
func (u *ui) verifyURL(accountID int64) string {
	return strings.TrimRight(u.BaseURL, "/") + "/verify/" + strconv.FormatInt(accountID, 10)
}

// fetchPage gets raw over HTTPS, following redirects only on the same host, within
// fetchTimeout and fetchMaxBytes. In production (production true) only public addresses
// are dialled; otherwise (tests, development) plain HTTP is allowed to loopback hosts only.
func fetchPage(ctx context.Context, raw string, production bool) ([]byte, *url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, nil, errors.New("the address is not a valid URL")
	}
	if err := fetchAllowed(u, production); err != nil {
		return nil, nil, err
	}
	dialer := &net.Dialer{Timeout: fetchTimeout, Control: func(_, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return err
		}
		ip := net.ParseIP(host)
		if ip == nil {
			return errors.New("unexpected address")
		}
		if production && !publicIP(ip) {
			return errors.New("the address is not public")
		}
		return nil
	}}
	client := &http.Client{
		Timeout:   fetchTimeout,
		Transport: &http.Transport{DialContext: dialer.DialContext, TLSHandshakeTimeout: fetchTimeout, ResponseHeaderTimeout: fetchTimeout, DisableKeepAlives: true},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("too many redirects")
			}
			if !strings.EqualFold(req.URL.Host, via[0].URL.Host) {
				return errors.New("the page redirects to another host")
			}
			return fetchAllowed(req.URL, production)
		},
	}
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, nil, errors.New("the address is not a valid URL")
	}
	req.Header.Set("User-Agent", "Tidings public page check")
	req.Header.Set("Accept", "text/html")
	res, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, nil, fmt.Errorf("the page could not be fetched (%v)", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("the page answered with status %d", res.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, fetchMaxBytes+1))
	if err != nil {
		return nil, nil, errors.New("the page could not be read")
	}
	if len(body) > fetchMaxBytes {
		return nil, nil, errors.New("the page is larger than 1 MB")
	}
	return body, res.Request.URL, nil
}

// fetchAllowed applies the scheme rules: HTTPS, or in tests and development plain HTTP
// to a loopback host.
func fetchAllowed(u *url.URL, production bool) error {
	switch {
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && !production && loopbackHost(u.Hostname()):
		return nil
	}
	return errors.New("the page must be served over HTTPS")
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func publicIP(ip net.IP) bool {
	return !(ip.IsLoopback() || ip.IsPrivate() || ip.IsUnspecified() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast())
}

// linksTo reports whether the HTML page at base has a link (a or link element) to target.
func linksTo(page []byte, base *url.URL, target string) bool {
	want, err := url.Parse(target)
	if err != nil {
		return false
	}
	z := html.NewTokenizer(bytes.NewReader(page))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return false
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			if (string(name) != "a" && string(name) != "link") || !hasAttr {
				continue
			}
			for {
				key, val, more := z.TagAttr()
				if string(key) == "href" {
					if h, err := base.Parse(strings.TrimSpace(string(val))); err == nil && sameURL(h, want) {
						return true
					}
				}
				if !more {
					break
				}
			}
		}
	}
}

// sameURL compares scheme, host and path (ignoring a trailing slash, query and fragment).
func sameURL(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Host, b.Host) &&
		strings.TrimSuffix(a.Path, "/") == strings.TrimSuffix(b.Path, "/")
}

// verifyPublicPage checks the account's public page now.
func (rq *request) verifyPublicPage() error {
	page := rq.Account.PublicPageURL
	if page == "" {
		return rq.renderSettings(http.StatusUnprocessableEntity, formFromAccount(rq.Account), "",
			"Enter the address of your public page in the settings first.")
	}
	production := strings.HasPrefix(rq.BaseURL, "https://")
	body, final, err := fetchPublicPage(rq.r.Context(), page, production)
	if err == nil && !linksTo(body, final, rq.verifyURL(rq.Account.ID)) {
		err = errors.New("the page has no link to " + rq.verifyURL(rq.Account.ID))
	}
	if err != nil {
		return rq.renderSettings(http.StatusUnprocessableEntity, formFromAccount(rq.Account), "", "Not verified: "+err.Error()+".")
	}
	if err := rq.Store.MarkPublicPageVerified(rq.r.Context(), rq.Account.ID, page, time.Now()); err != nil {
		return err
	}
	if err := rq.audit("settings.verify", "account "+itoa(rq.Account.ID)); err != nil {
		return err
	}
	return rq.redirect(rq.a("/settings"), "verified")
}

// The public verification page.

type verifyData struct {
	Name          string
	PublicPageURL string // only when verified
	VerifiedAt    *time.Time
	Domains       []string
	Forms         []verifyForm
	PortalURL     string
}

type verifyForm struct{ Name, URL string }

// verifyFormsShown bounds the lists shown on the page.
const verifyFormsShown = 100

func (rq *request) verifyPage() error {
	ctx := rq.r.Context()
	id, err := rq.id("account")
	if err != nil {
		return err
	}
	acc, err := rq.Store.GetAccount(ctx, id)
	if err != nil {
		return err
	}
	d := verifyData{Name: acc.Name, PortalURL: strings.TrimRight(rq.BaseURL, "/") + "/portal"}
	if acc.PublicPageURL != "" && acc.PublicPageVerifiedAt != nil {
		d.PublicPageURL, d.VerifiedAt = acc.PublicPageURL, acc.PublicPageVerifiedAt
	}
	ds, err := rq.Store.SendingDomains(ctx, acc.ID)
	if err != nil {
		return err
	}
	for _, sd := range ds {
		for _, k := range sd.Keys {
			if k.RetiredAt == nil {
				d.Domains = append(d.Domains, sd.Domain)
				break
			}
		}
	}
	if rq.Consent != nil {
		lists, err := rq.Store.ListLists(ctx, acc.ID, tidings.Page{Limit: verifyFormsShown})
		if err != nil {
			return err
		}
		for _, l := range lists {
			d.Forms = append(d.Forms, verifyForm{Name: l.Name, URL: rq.Consent.SubscribeURL(acc.ID, l.ID)})
		}
	}
	rq.render(http.StatusOK, "verify", "Is this page really "+acc.Name+"'s?", d)
	return nil
}
