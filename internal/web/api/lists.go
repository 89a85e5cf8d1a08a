package api

import (
	"net/http"

	"github.com/tidings/tidings/internal/tidings"
)

type listInput struct {
	Name        *string              `json:"name"`
	Description *string              `json:"description"`
	Purpose     *string              `json:"purpose"`
	LawfulBasis *tidings.LawfulBasis `json:"lawful_basis"`
	DoubleOptIn *bool                `json:"double_opt_in"`
}

func (in listInput) apply(l *tidings.List) {
	set(&l.Name, in.Name)
	set(&l.Description, in.Description)
	set(&l.Purpose, in.Purpose)
	set(&l.LawfulBasis, in.LawfulBasis)
	set(&l.DoubleOptIn, in.DoubleOptIn)
}

func (a *api) listLists(w http.ResponseWriter, r *http.Request, c caller) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	rows, err := a.Store.ListLists(r.Context(), c.AccountID, p)
	if err != nil {
		return err
	}
	return respondPage(w, rows, p, func(x tidings.List) int64 { return x.ID })
}

func (a *api) createList(w http.ResponseWriter, r *http.Request, c caller) error {
	var in listInput
	if err := a.decode(w, r, &in); err != nil {
		return err
	}
	l := tidings.NewList("")
	in.apply(&l)
	if err := a.Store.CreateList(r.Context(), c.AccountID, &l); err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, l)
}

func (a *api) getList(w http.ResponseWriter, r *http.Request, c caller) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	l, err := a.Store.GetList(r.Context(), c.AccountID, id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, l)
}

func (a *api) patchList(w http.ResponseWriter, r *http.Request, c caller) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var in listInput
	if err := a.decode(w, r, &in); err != nil {
		return err
	}
	l, err := a.Store.GetList(r.Context(), c.AccountID, id)
	if err != nil {
		return err
	}
	in.apply(&l)
	if err := a.Store.UpdateList(r.Context(), c.AccountID, &l); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, l)
}

func (a *api) deleteList(w http.ResponseWriter, r *http.Request, c caller) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := a.Store.DeleteList(r.Context(), c.AccountID, id); err != nil {
		return err
	}
	return noContent(w)
}
