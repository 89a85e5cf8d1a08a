package send

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	netmail "net/mail"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/tidings/tidings/internal/keys"
	"github.com/tidings/tidings/internal/mail"
	"github.com/tidings/tidings/internal/postman"
	"github.com/tidings/tidings/internal/tidings"
	"github.com/tidings/tidings/internal/track"
)

// Engine sends campaigns. Several engines (one per node) may share a PostgreSQL
// database: batches are leased, so each recipient is claimed by one node at a time, and
// a dead node's batches are taken over once their lease expires.
type Engine struct {
	Store   tidings.Store
	Keys    *keys.Keyring
	Sender  mail.Sender
	BaseURL string
	Log     *slog.Logger

	Node      string        // this node's name in leases
	Workers   int           // batches sent at once (default 8)
	Rate      float64       // messages per second across the node; 0 = unlimited
	PerDomain float64       // messages per second per recipient domain; 0 = unlimited
	Lease     time.Duration // how long a claimed batch is ours (default 1 minute)
	// Retries of a temporary failure, waiting Backoff, then 2×, 4×… before giving up.
	Retries int
	Backoff time.Duration
	// ErrorThreshold pauses a campaign when more than this share of at least
	// ErrorMinimum attempts failed (default 0.5 of 100).
	ErrorThreshold float64
	ErrorMinimum   int64
	// FlushEvery and FlushSize shape the group commit of delivery records.
	FlushEvery time.Duration
	FlushSize  int
	// Now is the clock for leases (tests move it forward); default time.Now.
	Now func() time.Time

	once    sync.Once
	limiter *rate.Limiter
	domMu   sync.Mutex
	domains map[string]*rate.Limiter
}

func (e *Engine) init() {
	e.once.Do(func() {
		if e.Workers <= 0 {
			e.Workers = 8
		}
		if e.Lease <= 0 {
			e.Lease = time.Minute
		}
		if e.Retries <= 0 {
			e.Retries = 3
		}
		if e.Backoff <= 0 {
			e.Backoff = time.Second
		}
		if e.ErrorThreshold <= 0 {
			e.ErrorThreshold = 0.5
		}
		if e.ErrorMinimum <= 0 {
			e.ErrorMinimum = 100
		}
		if e.FlushEvery <= 0 {
			e.FlushEvery = 50 * time.Millisecond
		}
		if e.FlushSize <= 0 {
			e.FlushSize = 500
		}
		if e.Node == "" {
			e.Node = fmt.Sprintf("node-%x", randomBytes(4))
		}
		if e.Log == nil {
			e.Log = slog.New(slog.DiscardHandler)
		}
		if e.Now == nil {
			e.Now = time.Now
		}
		if e.Rate > 0 {
			e.limiter = rate.NewLimiter(rate.Limit(e.Rate), max(1, int(e.Rate/10)))
		}
		e.domains = map[string]*rate.Limiter{}
	})
}

// Run sends due campaigns until ctx ends, polling for new work every poll.
func (e *Engine) Run(ctx context.Context, poll time.Duration) {
	e.init()
	for {
		if err := e.RunOnce(ctx); err != nil && ctx.Err() == nil {
			e.Log.Error("campaign engine", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(poll):
		}
	}
}

// RunOnce starts scheduled campaigns that are due and sends every sending campaign
// until no batch is left to claim.
func (e *Engine) RunOnce(ctx context.Context) error {
	e.init()
	due, err := e.Store.DueCampaigns(ctx, time.Now())
	if err != nil {
		return err
	}
	// One campaign's failure does not hold back the campaigns due after it.
	var errs []error
	for _, c := range due {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if c.Status == tidings.CampaignScheduled {
			if err := e.Store.SetCampaignStatus(ctx, c.AccountID, c.ID, tidings.CampaignSending, ""); err != nil {
				var v *tidings.ValidationError
				if !errors.As(err, &v) { // another node started it first
					errs = append(errs, fmt.Errorf("campaign %d: %w", c.ID, err))
					continue
				}
			}
		}
		err := e.Send(ctx, c.AccountID, c.ID)
		if _, invalid := tidings.AsValidation(err); invalid {
			// Its content cannot be sent (a template the sandbox now refuses): pause it
			// with the reason rather than fail every poll.
			reason := "paused: the campaign cannot be sent: " + err.Error()
			if perr := e.Store.SetCampaignStatus(ctx, c.AccountID, c.ID, tidings.CampaignPaused, reason); perr != nil {
				errs = append(errs, fmt.Errorf("campaign %d: %w", c.ID, perr))
			}
			e.Log.Warn("campaign paused: it cannot be sent", "campaign_id", c.ID)
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("campaign %d: %w", c.ID, err))
		}
	}
	return errors.Join(errs...)
}

// job is one campaign's prepared sending context, shared by the workers.
type job struct {
	campaign tidings.Campaign
	account  tidings.Account
	tmpl     *Template
	signer   *mail.Signer
	domain   string
	listID   string
	footer   [2]string
	attempts atomic.Int64
	failures atomic.Int64
	paused   atomic.Bool
}

// Send sends one campaign with the node's workers until no batch is left to claim (or
// the campaign is paused or cancelled, or ctx ends).
func (e *Engine) Send(ctx context.Context, accountID, campaignID int64) error {
	e.init()
	j, err := e.prepare(ctx, accountID, campaignID)
	if err != nil {
		return err
	}
	rec := newRecorder(e, campaignID)
	stopWatch := e.watchStatus(ctx, j)
	defer stopWatch()
	var wg sync.WaitGroup
	errs := make(chan error, e.Workers)
	for range e.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.work(ctx, j, rec); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := rec.close(); err != nil {
		return err
	}
	return <-errs
}

func (e *Engine) prepare(ctx context.Context, accountID, campaignID int64) (*job, error) {
	c, err := e.Store.GetCampaign(ctx, accountID, campaignID)
	if err != nil {
		return nil, err
	}
	acc, err := e.Store.GetAccount(ctx, accountID)
	if err != nil {
		return nil, err
	}
	tmpl, err := Compile(c)
	if err != nil {
		return nil, err
	}
	from := tidings.MustParseAddress(c.FromAddress)
	j := &job{campaign: c, account: acc, tmpl: tmpl, domain: from.Domain}
	domains, err := e.Store.SendingDomains(ctx, accountID)
	if err != nil {
		return nil, err
	}
	for _, d := range domains {
		if d.Domain != from.Domain {
			continue
		}
		var ks []mail.DKIMKey
		for _, k := range d.Keys {
			if k.RetiredAt != nil {
				continue
			}
			signer, err := mail.ParsePrivateKey(k.PrivateKey)
			if err != nil {
				return nil, err
			}
			ks = append(ks, mail.DKIMKey{Domain: d.Domain, Selector: k.Selector, Signer: signer})
		}
		if len(ks) > 0 {
			if j.signer, err = mail.NewSigner(ks...); err != nil {
				return nil, err
			}
		}
	}
	j.listID = fmt.Sprintf("<list-%d.account-%d.%s>", c.Lists[0], accountID, from.Domain)
	j.footer[0], j.footer[1] = postman.Footer(acc)
	return j, nil
}

// statusPoll is how often a sending node looks at its campaign's status: a pause or a
// cancellation stops the workers within it, not only at their next batch (which, with
// rate limits, could be minutes away).
const statusPoll = time.Second

// watchStatus stops the job's workers (as a pause does) once the campaign is no longer
// sending; the returned function ends the watch.
func (e *Engine) watchStatus(ctx context.Context, j *job) func() {
	return repeat(ctx, statusPoll, func() bool {
		c, err := e.Store.GetCampaign(ctx, j.campaign.AccountID, j.campaign.ID)
		if errors.Is(err, tidings.ErrNotFound) || err == nil && c.Status != tidings.CampaignSending {
			j.paused.Store(true)
			return false
		}
		return true
	})
}

// repeat calls f every interval, in a goroutine, until f returns false, ctx ends, or the
// returned stop is called; stop returns once no call of f is under way or to come.
func repeat(ctx context.Context, interval time.Duration, f func() bool) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if !f() {
				return
			}
		}
	}()
	return func() { close(done); <-finished }
}

// work claims batches until none is left.
func (e *Engine) work(ctx context.Context, j *job, rec *recorder) error {
	for {
		if ctx.Err() != nil || j.paused.Load() {
			return nil
		}
		now := e.Now()
		b, err := e.Store.ClaimBatch(ctx, j.campaign.ID, e.Node, now, now.Add(e.Lease))
		if errors.Is(err, tidings.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		lost, stopRenew := e.keepLease(ctx, j.campaign.ID, b.No, now.Add(e.Lease))
		complete := true
		for _, r := range b.Recipients {
			if ctx.Err() != nil || j.paused.Load() || lost.Load() {
				complete = false // the lease expires and whoever resumes sends the rest
				break
			}
			res := e.deliver(ctx, j, r)
			if res.Status == tidings.DeliveryQueued { // stopped, or a retry could not be checked
				complete = false
				break
			}
			rec.add(b.No, res)
			if res.Error != noLongerEligible { // a skip says nothing of the relay
				e.watchErrors(ctx, j, res)
			}
		}
		stopRenew()
		rec.finish(b.No, complete)
	}
}

// keepLease renews the lease of a claimed batch (held until held) every third of the
// lease while the worker sends it, since a batch can take longer than the lease (a rate
// limit, per-domain throttles, retries): otherwise another worker or node claims it
// when the lease runs out and sends its queued recipients a second time. lost is set
// when the lease could not be renewed; the worker then stops. stop ends the renewals.
func (e *Engine) keepLease(ctx context.Context, campaignID int64, batchNo int, held time.Time) (lost *atomic.Bool, stop func()) {
	lost = new(atomic.Bool)
	stop = repeat(ctx, e.Lease/3, func() bool {
		until := e.Now().Add(e.Lease)
		if err := e.Store.RenewLease(context.WithoutCancel(ctx), campaignID, batchNo, e.Node, held, until); err != nil {
			e.Log.Warn("batch lease lost", "campaign_id", campaignID, "batch", batchNo, "err", err)
			lost.Store(true)
			return false
		}
		held = until
		return true
	})
	return lost, stop
}

// deliver renders, signs and sends one message, retrying temporary failures.
func (e *Engine) deliver(ctx context.Context, j *job, r tidings.Recipient) tidings.DeliveryResult {
	sub := r.Subscriber
	res := tidings.DeliveryResult{SubscriberID: sub.ID, Attempts: r.Attempts}
	msg, env, id, err := e.compose(j, sub)
	if err != nil {
		res.Status, res.Error = tidings.DeliveryFailed, "render: "+err.Error()
		return res
	}
	res.MessageID = id
	wait := e.Backoff
	for {
		if err := e.throttle(ctx, sub.Email.Domain); err != nil {
			res.Status = tidings.DeliveryQueued
			return res
		}
		res.Attempts++
		err = e.Sender.Send(ctx, env, msg)
		if err == nil {
			res.Status, res.Error = tidings.DeliverySent, ""
			return res
		}
		res.Error = err.Error()
		if !mail.IsTemporary(err) || res.Attempts >= e.Retries {
			res.Status = tidings.DeliveryFailed
			return res
		}
		select {
		case <-ctx.Done():
			res.Status = tidings.DeliveryQueued
			return res
		case <-time.After(wait):
			wait *= 2
		}
		// A bounce, complaint or unsubscription may have come in during the wait (of
		// an earlier campaign's mail, say): the retry must not mail them again.
		ok, err := e.stillEligible(ctx, j, sub)
		if err != nil {
			// Left queued, the batch unfinished: whoever claims it next checks again.
			e.Log.Warn("recipient check before a retry failed", "campaign_id", j.campaign.ID, "subscriber_id", sub.ID, "err", err)
			res.Status = tidings.DeliveryQueued
			return res
		}
		if !ok {
			res.Status, res.Error = tidings.DeliveryFailed, noLongerEligible
			return res
		}
	}
}

// noLongerEligible is the error of a recipient skipped because they may no longer be
// mailed, as ClaimBatch records it for those it drops.
const noLongerEligible = "recipient no longer eligible"

// stillEligible checks again, before a retry, what claiming the batch checked: the
// address is not suppressed (a hard bounce, a complaint, an erasure), the subscriber is
// still active (not erased, restricted or objecting) and confirmed on one of the
// campaign's lists. Three reads, paid only by retries.
func (e *Engine) stillEligible(ctx context.Context, j *job, sub tidings.Subscriber) (bool, error) {
	account := j.campaign.AccountID
	suppressed, _, err := e.Store.Suppressed(ctx, account, sub.Email)
	if err != nil || suppressed {
		return false, err
	}
	current, err := e.Store.GetSubscriber(ctx, account, sub.ID)
	if errors.Is(err, tidings.ErrNotFound) {
		return false, nil
	}
	if err != nil || current.Status != tidings.StatusActive {
		return false, err
	}
	subs, err := e.Store.Subscriptions(ctx, account, sub.ID)
	if err != nil {
		return false, err
	}
	for _, x := range subs {
		if x.Status == tidings.SubConfirmed && slices.Contains(j.campaign.Lists, x.ListID) {
			return true, nil
		}
	}
	return false, nil
}

func (e *Engine) throttle(ctx context.Context, domain string) error {
	if e.limiter != nil {
		if err := e.limiter.Wait(ctx); err != nil {
			return err
		}
	}
	if e.PerDomain > 0 {
		e.domMu.Lock()
		l, ok := e.domains[domain]
		if !ok {
			l = rate.NewLimiter(rate.Limit(e.PerDomain), 1)
			e.domains[domain] = l
		}
		e.domMu.Unlock()
		return l.Wait(ctx)
	}
	return nil
}

// watchErrors pauses the campaign when too many attempts fail: a broken template, a
// relay that refuses the sender, a blocked IP — better to stop and say why.
func (e *Engine) watchErrors(ctx context.Context, j *job, res tidings.DeliveryResult) {
	n := j.attempts.Add(1)
	f := j.failures.Load()
	if res.Status == tidings.DeliveryFailed {
		f = j.failures.Add(1)
	}
	if n < e.ErrorMinimum || float64(f)/float64(n) <= e.ErrorThreshold || j.paused.Swap(true) {
		return
	}
	reason := fmt.Sprintf("paused automatically: %d of the last %d messages failed (last error: %s)", f, n, res.Error)
	if err := e.Store.SetCampaignStatus(context.WithoutCancel(ctx), j.campaign.AccountID, j.campaign.ID, tidings.CampaignPaused, reason); err != nil {
		e.Log.Error("pausing campaign failed", "campaign_id", j.campaign.ID, "err", err)
	}
	e.Log.Warn("campaign paused: error rate over threshold", "campaign_id", j.campaign.ID, "failed", f, "attempts", n)
}

// compose builds one recipient's signed message and envelope.
func (e *Engine) compose(j *job, sub tidings.Subscriber) ([]byte, mail.Envelope, string, error) {
	c := j.campaign
	token := e.recipientToken(c.AccountID, c.ID, sub.ID)
	unsub := e.BaseURL + "/u/" + token
	d := Data{
		Subscriber:     SubscriberData{Email: sub.Email.String(), Name: sub.Name, Attributes: sub.Attributes},
		Account:        AccountData{Name: j.account.Name, PostalAddress: j.account.PostalAddress, ContactEmail: j.account.ContactEmail, PrivacyPolicyURL: j.account.PrivacyPolicyURL},
		Campaign:       CampaignData{Name: c.Name, Subject: c.Subject},
		UnsubscribeURL: unsub, PortalURL: e.BaseURL + "/portal", PreferencesURL: e.BaseURL + "/portal",
	}
	r, err := j.tmpl.Render(d)
	if err != nil {
		return nil, mail.Envelope{}, "", err
	}
	id := mail.NewMessageID(j.domain)
	m := &mail.Message{
		From:      netmail.Address{Name: c.FromName, Address: c.FromAddress},
		To:        netmail.Address{Name: sub.Name, Address: sub.Email.String()},
		Subject:   r.Subject,
		Date:      time.Now(),
		MessageID: id,
		Headers: []mail.Header{
			// "unsub+": with the 54-character token, the local part stays within
			// RFC 5321's 64 octets ("unsubscribe+" made it 66).
			{Key: "List-Unsubscribe", Value: "<" + unsub + ">, <mailto:unsub+" + token + "@" + j.domain + ">"},
			{Key: "List-Unsubscribe-Post", Value: "List-Unsubscribe=One-Click"},
			{Key: "List-Id", Value: j.listID},
			{Key: "Feedback-ID", Value: fmt.Sprintf("c%d:a%d:campaign:tidings", c.ID, c.AccountID)},
		},
	}
	if c.ReplyTo != "" {
		m.ReplyTo = &netmail.Address{Address: c.ReplyTo}
	}
	footerText := "\n\n-- \n" + j.footer[0] + "\nUnsubscribe: " + unsub + "\n"
	footerHTML := j.footer[1] + `<p style="font-size:12px"><a href="` + htmlEscape(unsub) + `">Unsubscribe</a></p>`
	if r.Text != "" {
		m.Text = r.Text + footerText
	}
	if r.HTML != "" {
		level := tidings.TrackingFor(j.account, sub)
		html := track.AddUTM(r.HTML, c.UTM)
		// The unsubscribe link, where the body places it, stays as it is: its token names
		// the person, and must not end up in the click's stored URL.
		html = track.Instrument(e.Keys, e.BaseURL, html, track.Link{AccountID: c.AccountID, CampaignID: c.ID, SubscriberID: sub.ID}, level,
			e.BaseURL+"/u/")
		m.HTML = insertBeforeBodyEnd(html, footerHTML)
	}
	raw := m.Bytes()
	if j.signer != nil {
		if raw, err = j.signer.Sign(raw); err != nil {
			return nil, mail.Envelope{}, "", err
		}
	}
	return raw, mail.Envelope{From: "bounces+" + token + "@" + j.domain, To: []string{sub.Email.String()}, Account: c.AccountID}, id, nil
}

// recipientToken identifies (account, campaign, subscriber) in unsubscribe links and the
// VERP return path; it is signed, so it cannot be guessed or altered.
func (e *Engine) recipientToken(accountID, campaignID, subscriberID int64) string {
	return RecipientToken(e.Keys, accountID, campaignID, subscriberID)
}

// RecipientToken is the signed token of one campaign recipient.
func RecipientToken(k *keys.Keyring, accountID, campaignID, subscriberID int64) string {
	var b [24]byte
	binary.BigEndian.PutUint64(b[0:], uint64(accountID))
	binary.BigEndian.PutUint64(b[8:], uint64(campaignID))
	binary.BigEndian.PutUint64(b[16:], uint64(subscriberID))
	return k.Sign("recipient", b[:])
}

// ParseRecipientToken reverses RecipientToken; ok is false for forged tokens.
func ParseRecipientToken(k *keys.Keyring, token string) (accountID, campaignID, subscriberID int64, ok bool) {
	p, err := k.Verify("recipient", token)
	if err != nil || len(p) != 24 {
		return 0, 0, 0, false
	}
	return int64(binary.BigEndian.Uint64(p[0:])), int64(binary.BigEndian.Uint64(p[8:])), int64(binary.BigEndian.Uint64(p[16:])), true
}

func insertBeforeBodyEnd(html, footer string) string {
	if i := lastBodyEnd(html); i >= 0 {
		return html[:i] + footer + html[i:]
	}
	return html + footer
}

// lastBodyEnd finds the last "</body>" in any letter case. It compares ASCII letters
// only, rather than lowering a copy of the whole body per recipient (which also cost a
// 5 KB allocation, and whose offsets could drift from the original's when lowering a
// non-ASCII letter changes its length in UTF-8).
func lastBodyEnd(html string) int {
	const tag = "</body>"
	for i := strings.LastIndexByte(html, '<'); i >= 0; i = strings.LastIndexByte(html[:i], '<') {
		if len(html)-i >= len(tag) && asciiEqualFold(html[i:i+len(tag)], tag) {
			return i
		}
	}
	return -1
}

// asciiEqualFold compares s with a lower-case ASCII t, ignoring ASCII case in s.
func asciiEqualFold(s, t string) bool {
	for i := 0; i < len(t); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != t[i] {
			return false
		}
	}
	return true
}

var htmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;")

func htmlEscape(s string) string { return htmlEscaper.Replace(s) }

// SendTest sends the campaign to the given addresses, rendered for a sample subscriber
// named after each address; no delivery is recorded and the unsubscribe link is inert.
// An address the account may not mail (it unsubscribed, complained, bounced, asked to
// be erased or objected) gets no test either: a *ValidationError on "to", and no test
// goes to anyone.
func (e *Engine) SendTest(ctx context.Context, accountID, campaignID int64, to []tidings.Address) error {
	e.init()
	for _, addr := range to {
		suppressed, reason, err := e.Store.Suppressed(ctx, accountID, addr)
		if err != nil {
			return err
		}
		if suppressed {
			return tidings.Invalid("to", "suppressed", "%s gets no mail from this account, tests included (%s)", addr, reason)
		}
	}
	j, err := e.prepare(ctx, accountID, campaignID)
	if err != nil {
		return err
	}
	j.campaign.Subject = "[Test] " + j.campaign.Subject
	if j.tmpl, err = Compile(j.campaign); err != nil {
		return err
	}
	for _, addr := range to {
		sub := tidings.Subscriber{Email: addr, Name: "Test Recipient", Attributes: tidings.Attributes{}}
		msg, env, _, err := e.compose(j, sub)
		if err != nil {
			return err
		}
		if err := e.Sender.Send(ctx, env, msg); err != nil {
			return err
		}
	}
	return nil
}

// Preview renders the campaign for one of the account's subscribers.
func (e *Engine) Preview(ctx context.Context, accountID, campaignID, subscriberID int64) (Rendered, error) {
	e.init()
	j, err := e.prepare(ctx, accountID, campaignID)
	if err != nil {
		return Rendered{}, err
	}
	sub, err := e.Store.GetSubscriber(ctx, accountID, subscriberID)
	if err != nil {
		return Rendered{}, err
	}
	return j.tmpl.Render(Data{
		Subscriber:     SubscriberData{Email: sub.Email.String(), Name: sub.Name, Attributes: sub.Attributes},
		Account:        AccountData{Name: j.account.Name, PostalAddress: j.account.PostalAddress, ContactEmail: j.account.ContactEmail, PrivacyPolicyURL: j.account.PrivacyPolicyURL},
		Campaign:       CampaignData{Name: j.campaign.Name, Subject: j.campaign.Subject},
		UnsubscribeURL: e.BaseURL + "/u/preview", PortalURL: e.BaseURL + "/portal", PreferencesURL: e.BaseURL + "/portal",
	})
}
