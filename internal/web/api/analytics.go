package api

import (
	"net/http"

	"github.com/tidings/tidings/internal/web/chart"
)

func (a *api) campaignDaily(w http.ResponseWriter, r *http.Request, c caller) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	s, err := a.Store.CampaignDaily(r.Context(), c.AccountID, id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, s)
}

func (a *api) campaignChart(w http.ResponseWriter, r *http.Request, c caller) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	s, err := a.Store.CampaignDaily(r.Context(), c.AccountID, id)
	if err != nil {
		return err
	}
	return writeSVG(w, chart.Lines("Opens and clicks per day", s, []string{"open", "click"}))
}

func (a *api) listStats(w http.ResponseWriter, r *http.Request, c caller) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	st, err := a.Store.ListStats(r.Context(), c.AccountID, id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, st)
}

func (a *api) listChart(w http.ResponseWriter, r *http.Request, c caller) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	st, err := a.Store.ListStats(r.Context(), c.AccountID, id)
	if err != nil {
		return err
	}
	return writeSVG(w, chart.Lines("Sign-ups, confirmations and unsubscribes per day", st.Daily, []string{"subscribed", "confirmed", "unsubscribed"}))
}

func writeSVG(w http.ResponseWriter, svg []byte) error {
	w.Header().Set("Content-Type", "image/svg+xml")
	_, err := w.Write(svg)
	return err
}
