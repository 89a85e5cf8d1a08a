package admin

import (
	"context"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tidings/tidings/internal/send"
	"github.com/tidings/tidings/internal/tidings"
	"github.com/tidings/tidings/internal/web/chart"
)

func campaignRoutes() []Route {
	return []Route{
		{"GET /admin/a/{account}/campaigns", Viewer, (*request).campaigns},
		{"GET /admin/a/{account}/campaigns/new", Editor, (*request).newCampaign},
		{"POST /admin/a/{account}/campaigns", Editor, (*request).createCampaign},
		{"GET /admin/a/{account}/campaigns/{id}", Viewer, (*request).campaign},
		{"POST /admin/a/{account}/campaigns/{id}", Editor, (*request).updateCampaign},
		{"GET /admin/a/{account}/campaigns/{id}/chart.svg", Viewer, (*request).campaignChart},
		{"POST /admin/a/{account}/campaigns/{id}/preview", Editor, (*request).previewCampaign},
		{"POST /admin/a/{account}/campaigns/{id}/test", Editor, (*request).testCampaign},
		{"POST /admin/a/{account}/campaigns/{id}/send", Editor, campaignMove(tidings.CampaignSending, "send", "queued")},
		{"POST /admin/a/{account}/campaigns/{id}/schedule", Editor, campaignMove(tidings.CampaignScheduled, "schedule", "scheduled")},
		{"POST /admin/a/{account}/campaigns/{id}/unschedule", Editor, campaignMove(tidings.CampaignDraft, "unschedule", "saved")},
		{"POST /admin/a/{account}/campaigns/{id}/pause", Editor, campaignMove(tidings.CampaignPaused, "pause", "paused")},
		{"POST /admin/a/{account}/campaigns/{id}/resume", Editor, campaignMove(tidings.CampaignSending, "resume", "resumed")},
		{"POST /admin/a/{account}/campaigns/{id}/cancel", Editor, campaignMove(tidings.CampaignCancelled, "cancel", "cancelled")},
		{"POST /admin/a/{account}/campaigns/{id}/delete", AccountAdmin, (*request).deleteCampaign},
	}
}

const campaignPageSize = 50

// maxTestRecipients bounds a test send from the UI.
const maxTestRecipients = 5

type campaignRow struct {
	tidings.Campaign
	Progress tidings.Progress
}

type campaignsData struct {
	Campaigns []campaignRow
	Next      int64 // the ?after= of the next page; 0 when this is the last
}

// campaigns lists the account's campaigns a page at a time; progress comes from the
// counters kept on each campaign, so a row costs one indexed read.
func (rq *request) campaigns() error {
	ctx := rq.r.Context()
	p := rq.page(campaignPageSize)
	camps, err := rq.Store.ListCampaigns(ctx, rq.Account.ID, p)
	if err != nil {
		return err
	}
	d := campaignsData{Campaigns: make([]campaignRow, len(camps))}
	for i, c := range camps {
		pr, err := rq.Store.CampaignProgress(ctx, rq.Account.ID, c.ID)
		if err != nil {
			return err
		}
		d.Campaigns[i] = campaignRow{Campaign: c, Progress: pr}
	}
	if len(camps) == campaignPageSize {
		d.Next = camps[len(camps)-1].ID
	}
	rq.renderView(http.StatusOK, "campaigns", view{Title: "Campaigns", Nav: "campaigns", Data: d})
	return nil
}

// campaignForm is the compose form as typed, so that a form with a mistake comes back
// exactly as it was.
type campaignForm struct {
	Name, Subject, FromName     string
	FromLocal, FromDomain       string
	ReplyTo, HTML, Text         string
	Lists                       map[int64]bool
	Segment                     string // one attribute=value per line
	UTMSource, UTMMedium, UTMCp string
	ScheduledAt                 string // YYYY-MM-DDTHH:MM, UTC
}

const scheduleLayout = "2006-01-02T15:04"

func formFromCampaign(c tidings.Campaign) campaignForm {
	f := campaignForm{Name: c.Name, Subject: c.Subject, FromName: c.FromName, ReplyTo: c.ReplyTo, HTML: c.HTML, Text: c.Text,
		Lists: map[int64]bool{}}
	if i := strings.LastIndex(c.FromAddress, "@"); i >= 0 {
		f.FromLocal, f.FromDomain = c.FromAddress[:i], c.FromAddress[i+1:]
	}
	for _, id := range c.Lists {
		f.Lists[id] = true
	}
	var seg []string
	for _, cond := range c.Segment {
		seg = append(seg, cond.Attribute+"="+cond.Equals)
	}
	f.Segment = strings.Join(seg, "\n")
	if c.UTM != nil {
		f.UTMSource, f.UTMMedium, f.UTMCp = c.UTM.Source, c.UTM.Medium, c.UTM.Campaign
	}
	if c.ScheduledAt != nil {
		f.ScheduledAt = c.ScheduledAt.UTC().Format(scheduleLayout)
	}
	return f
}

// readCampaignForm reads the posted form.
func (rq *request) readCampaignForm() campaignForm {
	f := campaignForm{
		Name: rq.value("name"), Subject: rq.value("subject"), FromName: rq.value("from_name"),
		FromLocal: rq.value("from_local"), FromDomain: rq.value("from_domain"), ReplyTo: rq.value("reply_to"),
		// Bodies keep their whitespace: it can matter in a text mail.
		HTML: rq.r.PostForm.Get("html"), Text: rq.r.PostForm.Get("text"),
		Lists:   map[int64]bool{},
		Segment: rq.value("segment"), UTMSource: rq.value("utm_source"), UTMMedium: rq.value("utm_medium"),
		UTMCp: rq.value("utm_campaign"), ScheduledAt: rq.value("scheduled_at"),
	}
	for _, s := range rq.r.PostForm["lists"] {
		if id, err := strconv.ParseInt(s, 10, 64); err == nil && id > 0 {
			f.Lists[id] = true
		}
	}
	return f
}

// apply copies the form into c; what the form itself cannot express is a validation
// error. The campaign's own rules are checked afterwards by Validate and the store.
func (f campaignForm) apply(c *tidings.Campaign) error {
	c.Name, c.Subject, c.FromName, c.ReplyTo = f.Name, f.Subject, f.FromName, f.ReplyTo
	c.HTML, c.Text = f.HTML, f.Text
	if strings.TrimSpace(c.Text) == "" {
		c.Text = "" // generated from the HTML when sending
	}
	c.FromAddress = ""
	if f.FromLocal != "" || f.FromDomain != "" {
		c.FromAddress = f.FromLocal + "@" + f.FromDomain
	}
	c.Lists = c.Lists[:0]
	for id := range f.Lists {
		c.Lists = append(c.Lists, id)
	}
	sort.Slice(c.Lists, func(i, j int) bool { return c.Lists[i] < c.Lists[j] })
	c.Segment = nil
	for i, line := range strings.Split(f.Segment, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return tidings.Invalid("segment", "bad_condition", "line %d: write one condition per line as attribute=value", i+1)
		}
		c.Segment = append(c.Segment, tidings.Condition{Attribute: strings.TrimSpace(k), Equals: strings.TrimSpace(v)})
	}
	c.UTM = nil
	if f.UTMSource != "" || f.UTMMedium != "" || f.UTMCp != "" {
		c.UTM = &tidings.UTM{Source: f.UTMSource, Medium: f.UTMMedium, Campaign: f.UTMCp}
	}
	c.ScheduledAt = nil
	if f.ScheduledAt != "" {
		t, err := time.ParseInLocation(scheduleLayout, f.ScheduledAt, time.UTC)
		if err != nil {
			if t, err = time.ParseInLocation(scheduleLayout+":05", f.ScheduledAt, time.UTC); err != nil {
				return tidings.Invalid("scheduled_at", "bad_time", "write the time as YYYY-MM-DDTHH:MM (UTC)")
			}
		}
		c.ScheduledAt = &t
	} else if c.Status == tidings.CampaignScheduled {
		return tidings.Invalid("scheduled_at", "required", "a scheduled campaign needs a time; unschedule it first to keep it as a draft")
	}
	return nil
}

// checkCampaign validates what the store cannot, as the API does: the templates compile
// in the sandbox (errors name the line), and the From address is on one of the account's
// sending domains.
// campaignData is the campaign page in all its states.
type campaignData struct {
	Campaign  tidings.Campaign
	A         string // the account's URL prefix (for the form partial)
	New       bool
	Editable  bool // draft or scheduled
	Form      campaignForm
	Lists     []tidings.List
	ListNames map[int64]string
	Domains   []string
	Progress  tidings.Progress
	Stats     *tidings.CampaignStats
	Refresh   bool // sending: the page reloads itself
	TestTo    string
	MaxTest   int
	Actions   []campaignAction
	CanDelete bool
}

type campaignAction struct{ Path, Label, Class string }

// actionsFor lists the moves a campaign's status allows (the store has the final word).
func actionsFor(c tidings.Campaign) []campaignAction {
	switch c.Status {
	case tidings.CampaignDraft:
		return []campaignAction{{"send", "Send now", ""}, {"schedule", "Schedule", ""}, {"cancel", "Cancel", "danger"}}
	case tidings.CampaignScheduled:
		return []campaignAction{{"send", "Send now", ""}, {"unschedule", "Unschedule (back to draft)", ""}, {"cancel", "Cancel", "danger"}}
	case tidings.CampaignSending:
		return []campaignAction{{"pause", "Pause", ""}, {"cancel", "Cancel", "danger"}}
	case tidings.CampaignPaused:
		return []campaignAction{{"resume", "Resume", ""}, {"cancel", "Cancel", "danger"}}
	}
	return nil
}

func editable(c tidings.Campaign) bool {
	return c.Status == tidings.CampaignDraft || c.Status == tidings.CampaignScheduled
}

// composeData fills in the choices of the compose form.
func (rq *request) composeData(ctx context.Context, d *campaignData) ([]tidings.SendingDomain, error) {
	lists, err := rq.Store.ListLists(ctx, rq.Account.ID, tidings.Page{Limit: tidings.MaxPageSize})
	if err != nil {
		return nil, err
	}
	d.Lists = lists
	d.ListNames = map[int64]string{}
	for _, l := range lists {
		d.ListNames[l.ID] = l.Name
	}
	domains, err := rq.Store.SendingDomains(ctx, rq.Account.ID)
	if err != nil {
		return nil, err
	}
	for _, dm := range domains {
		d.Domains = append(d.Domains, dm.Domain)
	}
	d.MaxTest = maxTestRecipients
	d.A = rq.a("")
	return domains, nil
}

func (rq *request) newCampaign() error {
	d := campaignData{New: true, Editable: true, Form: campaignForm{Lists: map[int64]bool{}}}
	if _, err := rq.composeData(rq.r.Context(), &d); err != nil {
		return err
	}
	if len(d.Domains) > 0 {
		d.Form.FromDomain = d.Domains[0]
	}
	// ?from=ID starts from an earlier campaign of the account: its content, sender,
	// lists and segment become the new draft's (any campaign serves as a template).
	if from := rq.r.URL.Query().Get("from"); from != "" {
		id, err := strconv.ParseInt(from, 10, 64)
		if err != nil {
			return tidings.ErrNotFound
		}
		src, err := rq.Store.GetCampaign(rq.r.Context(), rq.Account.ID, id)
		if err != nil {
			return err
		}
		d.Form = formFromCampaign(src)
		d.Form.Name = "Copy of " + src.Name
		d.Form.ScheduledAt = ""
	}
	rq.renderView(http.StatusOK, "campaign", view{Title: "New campaign", Nav: "campaigns", Data: d})
	return nil
}

func (rq *request) createCampaign() error {
	if err := rq.form(); err != nil {
		return err
	}
	ctx := rq.r.Context()
	d := campaignData{New: true, Editable: true}
	domains, err := rq.composeData(ctx, &d)
	if err != nil {
		return err
	}
	d.Form = rq.readCampaignForm()
	var c tidings.Campaign
	err = d.Form.apply(&c)
	if err == nil {
		err = send.Check(&c, domains)
	}
	if err == nil {
		err = rq.Store.CreateCampaign(ctx, rq.Account.ID, &c)
	}
	if msg := formError(err); msg != "" {
		rq.renderView(http.StatusUnprocessableEntity, "campaign", view{Title: "New campaign", Nav: "campaigns", Error: msg, Data: d})
		return nil
	}
	if err != nil {
		return err
	}
	if err := rq.audit("campaign.create", "campaign "+itoa(c.ID)); err != nil {
		return err
	}
	return rq.redirect(rq.a("/campaigns/"+itoa(c.ID)), "created")
}

func (rq *request) campaign() error {
	return rq.renderCampaign(http.StatusOK, nil, "", "")
}

// renderCampaign shows the campaign in its state: the form (or a read-only view) before
// sending, progress while sending, results after. form, when set, is what was typed.
func (rq *request) renderCampaign(status int, form *campaignForm, errText, testTo string) error {
	ctx := rq.r.Context()
	c, err := rq.pathCampaign()
	if err != nil {
		return err
	}
	id := c.ID
	d := campaignData{Campaign: c, Editable: editable(c), Form: formFromCampaign(c), TestTo: testTo, CanDelete: c.Status == tidings.CampaignDraft}
	if form != nil {
		d.Form = *form
	}
	if _, err := rq.composeData(ctx, &d); err != nil {
		return err
	}
	if rank[rq.Role] >= Editor {
		d.Actions = actionsFor(c)
	}
	if d.Progress, err = rq.Store.CampaignProgress(ctx, rq.Account.ID, id); err != nil {
		return err
	}
	d.Refresh = c.Status == tidings.CampaignSending
	if c.StartedAt != nil && (c.Status == tidings.CampaignSent || c.Status == tidings.CampaignCancelled || c.Status == tidings.CampaignPaused) {
		st, err := rq.Store.CampaignStats(ctx, rq.Account.ID, id)
		if err != nil {
			return err
		}
		d.Stats = &st
	}
	rq.renderView(status, "campaign", view{Title: c.Name, Nav: "campaigns", Error: errText, Data: d})
	return nil
}

func (rq *request) updateCampaign() error {
	if err := rq.form(); err != nil {
		return err
	}
	ctx := rq.r.Context()
	c, err := rq.pathCampaign()
	if err != nil {
		return err
	}
	id := c.ID
	if !editable(c) {
		return rq.renderCampaign(http.StatusConflict, nil, "A "+string(c.Status)+" campaign can no longer be changed.", "")
	}
	domains, err := rq.Store.SendingDomains(ctx, rq.Account.ID)
	if err != nil {
		return err
	}
	f := rq.readCampaignForm()
	err = f.apply(&c)
	if err == nil {
		err = send.Check(&c, domains)
	}
	if err == nil {
		err = rq.Store.UpdateCampaign(ctx, rq.Account.ID, &c)
	}
	if msg := formError(err); msg != "" {
		return rq.renderCampaign(http.StatusUnprocessableEntity, &f, msg, "")
	}
	if err != nil {
		return err
	}
	if err := rq.audit("campaign.update", "campaign "+itoa(id)); err != nil {
		return err
	}
	return rq.redirect(rq.a("/campaigns/"+itoa(id)), "saved")
}

// campaignMove is a route that moves a campaign along its life, as the API's actions do;
// the store refuses moves the life does not allow, and the page says why.
func campaignMove(to tidings.CampaignStatus, action, notice string) func(*request) error {
	return func(rq *request) error {
		ctx := rq.r.Context()
		c, err := rq.pathCampaign()
		if err != nil {
			return err
		}
		id := c.ID
		if action == "resume" && c.Status != tidings.CampaignPaused {
			return rq.renderCampaign(http.StatusUnprocessableEntity, nil, "Only a paused campaign can be resumed; this one is "+string(c.Status)+".", "")
		}
		err = rq.Store.SetCampaignStatus(ctx, rq.Account.ID, id, to, "")
		if msg := formError(err); msg != "" {
			return rq.renderCampaign(http.StatusUnprocessableEntity, nil, "This cannot be done now: "+msg, "")
		}
		if err != nil {
			return err
		}
		if err := rq.audit("campaign."+action, "campaign "+itoa(id)); err != nil {
			return err
		}
		return rq.redirect(rq.a("/campaigns/"+itoa(id)), notice)
	}
}

// pathCampaign loads the account's campaign named by the URL.
func (rq *request) pathCampaign() (tidings.Campaign, error) {
	id, err := rq.id("id")
	if err != nil {
		return tidings.Campaign{}, err
	}
	return rq.Store.GetCampaign(rq.r.Context(), rq.Account.ID, id)
}

func (rq *request) deleteCampaign() error {
	ctx := rq.r.Context()
	c, err := rq.pathCampaign()
	if err != nil {
		return err
	}
	id := c.ID
	if c.Status != tidings.CampaignDraft {
		return rq.renderCampaign(http.StatusConflict, nil, "Only drafts can be deleted; this campaign is "+string(c.Status)+" and its results stay.", "")
	}
	if err := rq.Store.DeleteCampaign(ctx, rq.Account.ID, id); err != nil {
		return err
	}
	if err := rq.audit("campaign.delete", "campaign "+itoa(id)); err != nil {
		return err
	}
	return rq.redirect(rq.a("/campaigns"), "deleted")
}

func (rq *request) campaignChart() error {
	id, err := rq.id("id")
	if err != nil {
		return err
	}
	s, err := rq.Store.CampaignDaily(rq.r.Context(), rq.Account.ID, id)
	if err != nil {
		return err
	}
	rq.w.Header().Set("Content-Type", "image/svg+xml")
	_, err = rq.w.Write(chart.Lines("Opens and clicks per day", s, []string{"open", "click"}))
	return err
}

type previewData struct {
	Campaign tidings.Campaign
	Sample   string // who it was rendered for
	Rendered send.Rendered
}

// previewCampaign renders the saved campaign for the first confirmed subscriber of its
// lists, or for a made-up sample when there is none. The HTML is shown as source: the
// page's CSP allows no frames, and mail HTML must never run in the admin's origin.
func (rq *request) previewCampaign() error {
	ctx := rq.r.Context()
	c, err := rq.pathCampaign()
	if err != nil {
		return err
	}
	id := c.ID
	d := previewData{Campaign: c}
	sub, found, err := rq.sampleSubscriber(ctx, c)
	if err != nil {
		return err
	}
	personal := found && rq.Engine != nil
	if personal {
		d.Sample = "subscriber " + itoa(sub.ID)
		d.Rendered, err = rq.Engine.Preview(ctx, rq.Account.ID, id, sub.ID)
	} else {
		d.Sample = "a made-up sample subscriber"
		d.Rendered, err = rq.renderSample(c)
	}
	if msg := formError(err); msg != "" {
		return rq.renderCampaign(http.StatusUnprocessableEntity, nil, "The preview failed: "+msg, "")
	}
	if err != nil {
		return err
	}
	if personal { // a subscriber's data was shown
		if err := rq.audit("campaign.preview", "campaign "+itoa(id)); err != nil {
			return err
		}
	}
	rq.renderView(http.StatusOK, "campaign_preview", view{Title: "Preview: " + c.Name, Nav: "campaigns", Data: d})
	return nil
}

// sampleSubscriber finds the first active subscriber with a confirmed subscription on
// one of the campaign's lists, looking at a bounded number of candidates.
func (rq *request) sampleSubscriber(ctx context.Context, c tidings.Campaign) (tidings.Subscriber, bool, error) {
	for _, listID := range c.Lists {
		subs, err := rq.Store.ListSubscribers(ctx, rq.Account.ID, tidings.SubscriberFilter{ListID: listID, Status: tidings.StatusActive, Page: tidings.Page{Limit: 20}})
		if err != nil {
			return tidings.Subscriber{}, false, err
		}
		for _, s := range subs {
			subsc, err := rq.Store.Subscriptions(ctx, rq.Account.ID, s.ID)
			if err != nil {
				return tidings.Subscriber{}, false, err
			}
			for _, x := range subsc {
				if x.ListID == listID && x.Status == tidings.SubConfirmed && c.Segment.Matches(s.Attributes) {
					return s, true, nil
				}
			}
		}
	}
	return tidings.Subscriber{}, false, nil
}

// renderSample renders the campaign with the send package's sandbox for a made-up
// recipient.
func (rq *request) renderSample(c tidings.Campaign) (send.Rendered, error) {
	t, err := send.Compile(c)
	if err != nil {
		return send.Rendered{}, err
	}
	attrs := map[string]any{}
	for _, cond := range c.Segment {
		attrs[cond.Attribute] = cond.Equals
	}
	a := rq.Account
	return t.Render(send.Data{
		Subscriber:     send.SubscriberData{Email: "sample@example.com", Name: "Sample Person", Attributes: attrs},
		Account:        send.AccountData{Name: a.Name, PostalAddress: a.PostalAddress, ContactEmail: a.ContactEmail, PrivacyPolicyURL: a.PrivacyPolicyURL},
		Campaign:       send.CampaignData{Name: c.Name, Subject: c.Subject},
		UnsubscribeURL: rq.BaseURL + "/u/preview", PortalURL: rq.BaseURL + "/portal", PreferencesURL: rq.BaseURL + "/portal",
	})
}

// addressRE finds mail addresses in relay errors, which must not reach the log.
var addressRE = regexp.MustCompile(`[^\s<>"'(),;:]+@[^\s<>"'(),;:]+`)

// testCampaign sends the campaign to a few addresses, marked [Test].
func (rq *request) testCampaign() error {
	if err := rq.form(); err != nil {
		return err
	}
	ctx := rq.r.Context()
	id, err := rq.id("id")
	if err != nil {
		return err
	}
	if _, err := rq.Store.GetCampaign(ctx, rq.Account.ID, id); err != nil {
		return err
	}
	typed := rq.value("to")
	var to []tidings.Address
	for _, s := range strings.FieldsFunc(typed, func(r rune) bool { return r == ',' || r == ';' || r == '\n' || r == '\r' || r == ' ' || r == '\t' }) {
		addr, err := tidings.ParseAddress(s)
		if err != nil {
			v, _ := tidings.AsValidation(err)
			return rq.renderCampaign(http.StatusUnprocessableEntity, nil, "Test recipients: \""+s+"\" "+v.Message+".", typed)
		}
		to = append(to, addr)
	}
	if len(to) == 0 || len(to) > maxTestRecipients {
		return rq.renderCampaign(http.StatusUnprocessableEntity, nil, "Test recipients: give 1 to "+strconv.Itoa(maxTestRecipients)+" addresses.", typed)
	}
	if rq.Engine == nil {
		return rq.renderCampaign(http.StatusServiceUnavailable, nil, "Sending is not enabled on this server, so no test can be sent.", typed)
	}
	err = rq.Engine.SendTest(ctx, rq.Account.ID, id, to)
	if msg := formError(err); msg != "" {
		return rq.renderCampaign(http.StatusUnprocessableEntity, nil, "The test was not sent: "+msg, typed)
	}
	if err != nil {
		rq.Log.Error("campaign test send failed", "campaign_id", id, "err", addressRE.ReplaceAllString(err.Error(), "[address]"))
		return rq.renderCampaign(http.StatusBadGateway, nil, "The test could not be sent; the server log has the details.", typed)
	}
	if err := rq.audit("campaign.test", "campaign "+itoa(id)); err != nil {
		return err
	}
	return rq.redirect(rq.a("/campaigns/"+itoa(id)), "test-sent")
}
