package admin

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/tidings/tidings/internal/consent"
	"github.com/tidings/tidings/internal/tidings"
	"github.com/tidings/tidings/internal/web/chart"
)

func homeRoutes() []Route {
	return []Route{
		{"GET /admin/{$}", SignedIn, (*request).home},
		{"GET /admin/a/{account}/{$}", Viewer, (*request).overview},
	}
}

func listRoutes() []Route {
	return []Route{
		{"GET /admin/a/{account}/lists", Viewer, (*request).lists},
		{"POST /admin/a/{account}/lists", Editor, (*request).createList},
		{"GET /admin/a/{account}/lists/{id}", Viewer, (*request).list},
		{"POST /admin/a/{account}/lists/{id}", Editor, (*request).updateList},
		{"POST /admin/a/{account}/lists/{id}/delete", AccountAdmin, (*request).deleteList},
		{"GET /admin/a/{account}/lists/{id}/chart.svg", Viewer, (*request).listChart},
	}
}

// home sends a user with one account straight to it; others choose.
func (rq *request) home() error {
	if len(rq.Members) == 1 && !rq.User.Operator {
		http.Redirect(rq.w, rq.r, accountPath(rq.Members[0].ID), http.StatusSeeOther)
		return nil
	}
	rq.renderView(http.StatusOK, "home", view{Title: "Tidings", Nav: "home"})
	return nil
}

func accountPath(id int64) string { return fmt.Sprintf("/admin/a/%d/", id) }

type listRow struct {
	tidings.List
	Stats tidings.ListStats
}

type overviewData struct {
	Lists     []listRow
	Campaigns []tidings.Campaign
}

func (rq *request) overview() error {
	ctx := rq.r.Context()
	rows, err := rq.listRows()
	if err != nil {
		return err
	}
	camps, err := rq.Store.ListCampaigns(ctx, rq.Account.ID, tidings.Page{Limit: 1000})
	if err != nil {
		return err
	}
	// Newest five: campaigns come oldest first.
	if len(camps) > 5 {
		camps = camps[len(camps)-5:]
	}
	for i, j := 0, len(camps)-1; i < j; i, j = i+1, j-1 {
		camps[i], camps[j] = camps[j], camps[i]
	}
	rq.renderView(http.StatusOK, "overview", view{Title: rq.Account.Name, Nav: "overview", Data: overviewData{Lists: rows, Campaigns: camps}})
	return nil
}

// listRows reads the account's lists with their counters (kept by triggers, so this is
// one indexed read per list whatever the list size).
func (rq *request) listRows() ([]listRow, error) {
	ctx := rq.r.Context()
	lists, err := rq.Store.ListLists(ctx, rq.Account.ID, tidings.Page{Limit: tidings.MaxPageSize})
	if err != nil {
		return nil, err
	}
	rows := make([]listRow, len(lists))
	for i, l := range lists {
		st, err := rq.Store.ListStats(ctx, rq.Account.ID, l.ID)
		if err != nil {
			return nil, err
		}
		st.Daily = tidings.Series{}
		rows[i] = listRow{List: l, Stats: st}
	}
	return rows, nil
}

type listsData struct {
	Lists []listRow
	Form  tidings.List // the create form, refilled after an error
	Bases []tidings.LawfulBasis
}

var lawfulBases = []tidings.LawfulBasis{tidings.BasisConsent, tidings.BasisContract, tidings.BasisLegitimateInterests, tidings.BasisLegalObligation}

func (rq *request) lists() error {
	rows, err := rq.listRows()
	if err != nil {
		return err
	}
	rq.renderView(http.StatusOK, "lists", view{Title: "Lists", Nav: "lists", Data: listsData{Lists: rows, Form: tidings.NewList(""), Bases: lawfulBases}})
	return nil
}

// listFromForm reads the list form into l.
func (rq *request) listFromForm(l *tidings.List) {
	l.Name = rq.value("name")
	l.Description = rq.value("description")
	l.Purpose = rq.value("purpose")
	l.LawfulBasis = tidings.LawfulBasis(rq.value("lawful_basis"))
	l.DoubleOptIn = rq.value("double_opt_in") == "on"
}

func (rq *request) createList() error {
	if err := rq.form(); err != nil {
		return err
	}
	l := tidings.NewList("")
	rq.listFromForm(&l)
	err := rq.Store.CreateList(rq.r.Context(), rq.Account.ID, &l)
	if msg := formError(err); msg != "" {
		rows, lerr := rq.listRows()
		if lerr != nil {
			return lerr
		}
		rq.renderView(http.StatusUnprocessableEntity, "lists", view{Title: "Lists", Nav: "lists", Error: msg, Data: listsData{Lists: rows, Form: l, Bases: lawfulBases}})
		return nil
	}
	if err != nil {
		return err
	}
	if err := rq.audit("list.create", "list "+itoa(l.ID)); err != nil {
		return err
	}
	return rq.redirect(rq.a("/lists/"+itoa(l.ID)), "created")
}

// formError turns a validation error or a conflict into a sentence for the form, and
// anything else into "" (the caller returns it).
func formError(err error) string {
	if v, ok := tidings.AsValidation(err); ok {
		return strings.ReplaceAll(v.Field, "_", " ") + ": " + v.Message + "."
	}
	if err == tidings.ErrConflict {
		return "That name is taken already."
	}
	return ""
}

type listData struct {
	List    tidings.List
	Form    tidings.List // the edit form
	Stats   tidings.ListStats
	Bases   []tidings.LawfulBasis
	FormURL string // the hosted page, offering the lists chosen below too
	Snippet string
	Others  []otherList // the account's other lists, which the snippet can offer too
}

// otherList is a list the sign-up snippet and hosted page can offer beside the list's own.
type otherList struct {
	ID      int64
	Name    string
	Offered bool
}

func (rq *request) list() error {
	return rq.renderList(http.StatusOK, nil, "")
}

func (rq *request) renderList(status int, edited *tidings.List, errText string) error {
	ctx := rq.r.Context()
	id, err := rq.id("id")
	if err != nil {
		return err
	}
	l, err := rq.Store.GetList(ctx, rq.Account.ID, id)
	if err != nil {
		return err
	}
	st, err := rq.Store.ListStats(ctx, rq.Account.ID, id)
	if err != nil {
		return err
	}
	d := listData{List: l, Form: l, Stats: st, Bases: lawfulBases}
	if edited != nil {
		d.Form = *edited
	}
	if rq.Consent != nil {
		text, err := rq.Consent.CurrentText(ctx, rq.Account)
		if err != nil {
			return err
		}
		// ?also=ID&also=ID: the snippet and the hosted page offer those lists too, as
		// checkboxes; the page's link names them by form token, not ID.
		all, err := rq.Store.ListLists(ctx, rq.Account.ID, tidings.Page{Limit: 500})
		if err != nil {
			return err
		}
		offered := rq.r.URL.Query()["also"]
		var also []tidings.List
		for _, o := range all {
			if o.ID == l.ID {
				continue
			}
			chosen := slices.Contains(offered, itoa(o.ID))
			d.Others = append(d.Others, otherList{ID: o.ID, Name: o.Name, Offered: chosen})
			if chosen {
				also = append(also, o)
			}
		}
		offer := rq.Consent.AlsoLists(also)
		d.FormURL = rq.Consent.SubscribeURL(rq.Account.ID, l.ID, offer...)
		d.Snippet = consent.EmbedSnippet(rq.Consent.SubscribeURL(rq.Account.ID, l.ID), l, rq.Account, text, offer...)
	}
	rq.renderView(status, "list", view{Title: l.Name, Nav: "lists", Error: errText, Data: d})
	return nil
}

func (rq *request) updateList() error {
	if err := rq.form(); err != nil {
		return err
	}
	id, err := rq.id("id")
	if err != nil {
		return err
	}
	l, err := rq.Store.GetList(rq.r.Context(), rq.Account.ID, id)
	if err != nil {
		return err
	}
	rq.listFromForm(&l)
	err = rq.Store.UpdateList(rq.r.Context(), rq.Account.ID, &l)
	if msg := formError(err); msg != "" {
		return rq.renderList(http.StatusUnprocessableEntity, &l, msg)
	}
	if err != nil {
		return err
	}
	if err := rq.audit("list.update", "list "+itoa(id)); err != nil {
		return err
	}
	return rq.redirect(rq.a("/lists/"+itoa(id)), "saved")
}

func (rq *request) deleteList() error {
	id, err := rq.id("id")
	if err != nil {
		return err
	}
	if err := rq.Store.DeleteList(rq.r.Context(), rq.Account.ID, id); err != nil {
		return err
	}
	if err := rq.audit("list.delete", "list "+itoa(id)); err != nil {
		return err
	}
	return rq.redirect(rq.a("/lists"), "deleted")
}

func (rq *request) listChart() error {
	id, err := rq.id("id")
	if err != nil {
		return err
	}
	st, err := rq.Store.ListStats(rq.r.Context(), rq.Account.ID, id)
	if err != nil {
		return err
	}
	rq.w.Header().Set("Content-Type", "image/svg+xml")
	_, err = rq.w.Write(chart.Lines("Sign-ups, confirmations and unsubscribes per day", st.Daily, []string{"subscribed", "confirmed", "unsubscribed"}))
	return err
}
