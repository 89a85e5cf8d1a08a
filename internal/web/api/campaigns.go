package api

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/tidings/tidings/internal/send"
	"github.com/tidings/tidings/internal/tidings"
)

type campaignInput struct {
	Name        *string          `json:"name"`
	Subject     *string          `json:"subject"`
	FromName    *string          `json:"from_name"`
	FromAddress *string          `json:"from_address"`
	ReplyTo     *string          `json:"reply_to"`
	HTML        *string          `json:"html"`
	Text        *string          `json:"text"`
	Lists       *[]int64         `json:"lists"`
	Segment     *tidings.Segment `json:"segment"`
	UTM         *tidings.UTM     `json:"utm"`
	ScheduledAt *time.Time       `json:"scheduled_at"`
}

func (in campaignInput) apply(c *tidings.Campaign) {
	set(&c.Name, in.Name)
	set(&c.Subject, in.Subject)
	set(&c.FromName, in.FromName)
	set(&c.FromAddress, in.FromAddress)
	set(&c.ReplyTo, in.ReplyTo)
	set(&c.HTML, in.HTML)
	set(&c.Text, in.Text)
	set(&c.Lists, in.Lists)
	set(&c.Segment, in.Segment)
	if in.UTM != nil {
		c.UTM = in.UTM
	}
	if in.ScheduledAt != nil {
		t := in.ScheduledAt.UTC()
		c.ScheduledAt = &t
	}
}

// checkCampaign validates what the store cannot: the templates compile in the sandbox
// (errors name the line), and the From address is on one of the account's sending
// domains (so the mail can be DKIM-signed as the account).
func (a *api) checkCampaign(r *http.Request, c caller, camp *tidings.Campaign) error {
	domains, err := a.Store.SendingDomains(r.Context(), c.AccountID)
	if err != nil {
		return err
	}
	return send.Check(camp, domains)
}

func (a *api) listCampaigns(w http.ResponseWriter, r *http.Request, c caller) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	rows, err := a.Store.ListCampaigns(r.Context(), c.AccountID, p)
	if err != nil {
		return err
	}
	return respondPage(w, rows, p, func(x tidings.Campaign) int64 { return x.ID })
}

func (a *api) createCampaign(w http.ResponseWriter, r *http.Request, c caller) error {
	var in campaignInput
	if err := a.decode(w, r, &in); err != nil {
		return err
	}
	var camp tidings.Campaign
	in.apply(&camp)
	if err := a.checkCampaign(r, c, &camp); err != nil {
		return err
	}
	if err := a.Store.CreateCampaign(r.Context(), c.AccountID, &camp); err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, camp)
}

func (a *api) getCampaign(w http.ResponseWriter, r *http.Request, c caller) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	camp, err := a.Store.GetCampaign(r.Context(), c.AccountID, id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, camp)
}

func (a *api) patchCampaign(w http.ResponseWriter, r *http.Request, c caller) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var in campaignInput
	if err := a.decode(w, r, &in); err != nil {
		return err
	}
	camp, err := a.Store.GetCampaign(r.Context(), c.AccountID, id)
	if err != nil {
		return err
	}
	in.apply(&camp)
	if err := a.checkCampaign(r, c, &camp); err != nil {
		return err
	}
	if err := a.Store.UpdateCampaign(r.Context(), c.AccountID, &camp); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, camp)
}

func (a *api) deleteCampaign(w http.ResponseWriter, r *http.Request, c caller) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := a.Store.DeleteCampaign(r.Context(), c.AccountID, id); err != nil {
		return err
	}
	return noContent(w)
}

// campaignAction moves a campaign along its life: send (now), schedule, pause, resume,
// cancel, unschedule.
func (a *api) campaignAction(w http.ResponseWriter, r *http.Request, c caller) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	to, ok := map[string]tidings.CampaignStatus{
		"send": tidings.CampaignSending, "resume": tidings.CampaignSending, "schedule": tidings.CampaignScheduled,
		"pause": tidings.CampaignPaused, "cancel": tidings.CampaignCancelled, "unschedule": tidings.CampaignDraft,
	}[r.PathValue("action")]
	if !ok {
		return fail(http.StatusNotFound, "not_found", "unknown action; use send, schedule, unschedule, pause, resume or cancel")
	}
	// Resuming and sending both lead to sending; resume means a paused campaign, and
	// must not start a draft.
	if r.PathValue("action") == "resume" {
		camp, err := a.Store.GetCampaign(r.Context(), c.AccountID, id)
		if err != nil {
			return err
		}
		if camp.Status != tidings.CampaignPaused {
			return tidings.Invalid("status", "bad_transition", "only a paused campaign can be resumed; this one is %s", camp.Status)
		}
	}
	if err := a.Store.SetCampaignStatus(r.Context(), c.AccountID, id, to, ""); err != nil {
		return err
	}
	camp, err := a.Store.GetCampaign(r.Context(), c.AccountID, id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, camp)
}

func (a *api) campaignProgress(w http.ResponseWriter, r *http.Request, c caller) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	p, err := a.Store.CampaignProgress(r.Context(), c.AccountID, id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, p)
}

func (a *api) testCampaign(w http.ResponseWriter, r *http.Request, c caller) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var in struct {
		To []string `json:"to"`
	}
	if err := a.decode(w, r, &in); err != nil {
		return err
	}
	if len(in.To) == 0 || len(in.To) > 10 {
		return tidings.Invalid("to", "out_of_range", "give 1 to 10 addresses")
	}
	var to []tidings.Address
	for i, s := range in.To {
		addr, err := tidings.ParseAddress(s)
		if err != nil {
			v, _ := tidings.AsValidation(err)
			return tidings.Invalid(fmt.Sprintf("to[%d]", i), v.Code, "%s", v.Message)
		}
		to = append(to, addr)
	}
	if a.Engine == nil {
		return fail(http.StatusServiceUnavailable, "unavailable", "sending is not enabled on this server")
	}
	if err := a.Engine.SendTest(r.Context(), c.AccountID, id, to); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"sent": len(to)})
}

func (a *api) previewCampaign(w http.ResponseWriter, r *http.Request, c caller) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	subID, err := strconv.ParseInt(r.URL.Query().Get("subscriber"), 10, 64)
	if err != nil || subID <= 0 {
		return tidings.Invalid("subscriber", "required", "give ?subscriber= with the ID of a subscriber to preview for")
	}
	if a.Engine == nil {
		return fail(http.StatusServiceUnavailable, "unavailable", "sending is not enabled on this server")
	}
	out, err := a.Engine.Preview(r.Context(), c.AccountID, id, subID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]string{"subject": out.Subject, "html": out.HTML, "text": out.Text})
}

func (a *api) campaignStats(w http.ResponseWriter, r *http.Request, c caller) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	st, err := a.Store.CampaignStats(r.Context(), c.AccountID, id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, st)
}
