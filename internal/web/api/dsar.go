package api

import (
	"net/http"

	"github.com/tidings/tidings/internal/tidings"
)

func (a *api) listDSARs(w http.ResponseWriter, r *http.Request, c caller) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	rows, err := a.Store.ListDSARs(r.Context(), c.AccountID, p)
	if err != nil {
		return err
	}
	return respondPage(w, rows, p, func(x tidings.DSAR) int64 { return x.ID })
}

// createDSAR carries out a request that reached the account by other means (letter,
// phone, email to staff), within this account only, and logs it.
func (a *api) createDSAR(w http.ResponseWriter, r *http.Request, c caller) error {
	var in struct {
		Email string           `json:"email"`
		Kind  tidings.DSARKind `json:"kind"`
	}
	if err := a.decode(w, r, &in); err != nil {
		return err
	}
	addr, err := tidings.ParseAddress(in.Email)
	if err != nil {
		return err
	}
	ctx := r.Context()
	find := func() (*tidings.PersonRecord, error) {
		recs, err := a.Store.PersonData(ctx, addr)
		if err != nil {
			return nil, err
		}
		for i := range recs {
			if recs[i].Account.ID == c.AccountID {
				return &recs[i], nil
			}
		}
		return nil, nil
	}
	var result any = map[string]string{"status": "done"}
	switch in.Kind {
	case tidings.DSARAccess, tidings.DSARPortability:
		rec, err := find()
		if err != nil {
			return err
		}
		records := []tidings.PersonRecord{}
		if rec != nil {
			records = append(records, *rec)
		}
		result = map[string]any{"format": "tidings-person-export/1", "email": addr.String(), "accounts": records}
	case tidings.DSARErasure:
		if _, err := a.Store.ErasePerson(ctx, addr, c.AccountID); err != nil {
			return err
		}
	case tidings.DSARRestriction, tidings.DSARObjection:
		rec, err := find()
		if err != nil {
			return err
		}
		// An objection suppresses the address first: should the status change then fail,
		// the person is already not mailed, and a retry completes it.
		if in.Kind == tidings.DSARObjection {
			if err := a.Store.AddSuppression(ctx, c.AccountID, addr, tidings.SuppressObjection); err != nil {
				return err
			}
		}
		if rec != nil {
			rec.Subscriber.Status = tidings.StatusRestricted
			if in.Kind == tidings.DSARObjection {
				rec.Subscriber.Status = tidings.StatusObjected
			}
			if err := a.Store.UpdateSubscriber(ctx, c.AccountID, &rec.Subscriber); err != nil {
				return err
			}
		}
	default:
		return &tidings.ValidationError{Field: "kind", Code: "invalid_choice", Message: "must be one of access, portability, erasure, restriction, objection"}
	}
	if err := a.Store.LogDSAR(ctx, c.AccountID, addr, in.Kind, tidings.SourceAdmin, true); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, result)
}
