package admin

import (
	"bytes"
	"fmt"
	"net/http"
	"time"

	"github.com/tidings/tidings/internal/privacy"
	"github.com/tidings/tidings/internal/tidings"
)

func dsarRoutes() []Route {
	return []Route{
		{"GET /admin/a/{account}/dsar", Editor, (*request).dsars},
		{"POST /admin/a/{account}/dsar", Editor, (*request).actOnDSAR},
	}
}

const dsarPageSize = 50

// dsarRow is a logged request, with whether it is late.
type dsarRow struct {
	tidings.DSAR
	Overdue bool
}

type dsarForm struct {
	Email, Kind string
}

type dsarData struct {
	Rows []dsarRow
	Next string
	Form dsarForm
}

func (rq *request) dsars() error {
	return rq.renderDSARs(http.StatusOK, dsarForm{Kind: string(tidings.DSARAccess)}, "")
}

func (rq *request) renderDSARs(status int, form dsarForm, errText string) error {
	p := rq.page(dsarPageSize)
	rows, err := rq.Store.ListDSARs(rq.r.Context(), rq.Account.ID, p)
	if err != nil {
		return err
	}
	d := dsarData{Form: form}
	now := time.Now()
	for _, r := range rows {
		d.Rows = append(d.Rows, dsarRow{DSAR: r, Overdue: r.CompletedAt == nil && now.After(r.DueAt)})
	}
	if len(rows) == p.Clamp().Limit {
		d.Next = rq.a("/dsar") + query("after", itoa(rows[len(rows)-1].ID))
	}
	rq.renderView(status, "dsar", view{Title: "Data requests", Nav: "dsar", Error: errText, Data: d})
	return nil
}

// actOnDSAR carries out a request that reached the account by other means (letter,
// phone, email to staff), in this account only, with the same store calls as the API:
// an access request downloads the person's data as JSON; an erasure deletes it and
// keeps the address from being added again. Each is logged as a DSAR and audited.
func (rq *request) actOnDSAR() error {
	if err := rq.form(); err != nil {
		return err
	}
	ctx := rq.r.Context()
	form := dsarForm{Email: rq.value("email"), Kind: rq.value("kind")}
	addr, err := tidings.ParseAddress(form.Email)
	if err != nil {
		return rq.renderDSARs(http.StatusUnprocessableEntity, form, formError(err))
	}
	// The person's subscriber in this account names the audit target (never the address).
	target := "person without subscriber"
	if subs, err := rq.Store.ListSubscribers(ctx, rq.Account.ID, tidings.SubscriberFilter{Email: addr, Page: tidings.Page{Limit: 1}}); err != nil {
		return err
	} else if len(subs) == 1 {
		target = "subscriber " + itoa(subs[0].ID)
	}
	switch tidings.DSARKind(form.Kind) {
	case tidings.DSARAccess:
		recs, err := rq.Store.PersonData(ctx, addr)
		if err != nil {
			return err
		}
		mine := []tidings.PersonRecord{}
		for _, r := range recs {
			if r.Account.ID == rq.Account.ID {
				mine = append(mine, r)
			}
		}
		var buf bytes.Buffer
		if err := privacy.WriteJSON(&buf, addr, mine); err != nil {
			return err
		}
		// Logged and audited before anything leaves: an unaudited export must not happen.
		if err := rq.Store.LogDSAR(ctx, rq.Account.ID, addr, tidings.DSARAccess, tidings.SourceAdmin, true); err != nil {
			return err
		}
		if err := rq.audit("dsar.export", target); err != nil {
			return err
		}
		h := rq.w.Header()
		h.Set("Content-Type", "application/json; charset=utf-8")
		h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="tidings-export-%d-%s.json"`, rq.Account.ID, time.Now().UTC().Format("20060102-150405")))
		h.Set("X-Content-Type-Options", "nosniff")
		rq.w.WriteHeader(http.StatusOK)
		_, err = rq.w.Write(buf.Bytes())
		return err
	case tidings.DSARErasure:
		if rq.value("confirm") != "on" {
			return rq.renderDSARs(http.StatusUnprocessableEntity, form, "Confirm: tick the box to confirm that this person's data in this account is to be erased.")
		}
		if _, err := rq.Store.ErasePerson(ctx, addr, rq.Account.ID); err != nil {
			return err
		}
		if err := rq.Store.LogDSAR(ctx, rq.Account.ID, addr, tidings.DSARErasure, tidings.SourceAdmin, true); err != nil {
			return err
		}
		if err := rq.audit("dsar.erase", target); err != nil {
			return err
		}
		return rq.redirect(rq.a("/dsar"), "erased")
	default:
		return rq.renderDSARs(http.StatusUnprocessableEntity, form, "Request: choose access or erasure.")
	}
}
