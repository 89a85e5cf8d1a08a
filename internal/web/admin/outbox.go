package admin

import (
	"errors"
	"net/http"

	"github.com/tidings/tidings/internal/mail"
	"github.com/tidings/tidings/internal/tidings"
)

// The account's view of the embedded outbox: the mail Tidings would have sent for it.
// The outbox holds every account's mail, so a message is the account's only when the
// outbox recorded it as sent for the account (the envelope's Account, which the postman
// and the send engine set). The From domain is not used: accounts without a sending
// domain all send from the instance's, and a domain could once be added by two accounts.
// Mail without a recorded account (the instance's own, or stored by earlier versions)
// is shown to operators only, in their outbox.

func outboxRoutes() []Route {
	return []Route{
		{"GET /admin/a/{account}/outbox", Editor, (*request).accountOutbox},
		{"GET /admin/a/{account}/outbox/{msg}", Editor, (*request).accountOutboxMessage},
	}
}

// outboxScan is how many of the newest messages are searched for the account's.
const outboxScan = 2000

type accountOutboxData struct {
	Entries []mail.OutboxEntry
	ID, Raw string
	Max     int
}

// ownEntries returns the account's messages among the newest.
func (rq *request) ownEntries() ([]mail.OutboxEntry, error) {
	if rq.Outbox == nil {
		return nil, tidings.ErrNotFound
	}
	all, err := rq.Outbox.List(outboxScan)
	if err != nil {
		return nil, err
	}
	var mine []mail.OutboxEntry
	for _, e := range all {
		if e.Account == rq.Account.ID {
			mine = append(mine, e)
		}
	}
	return mine, nil
}

func (rq *request) accountOutbox() error {
	mine, err := rq.ownEntries()
	if err != nil {
		return err
	}
	if len(mine) > outboxShown {
		mine = mine[:outboxShown]
	}
	rq.renderView(http.StatusOK, "outbox", view{Title: "Outbox", Nav: "outbox",
		Data: accountOutboxData{Entries: mine, Max: outboxShown}})
	return nil
}

func (rq *request) accountOutboxMessage() error {
	mine, err := rq.ownEntries()
	if err != nil {
		return err
	}
	id := rq.r.PathValue("msg")
	found := false
	for _, e := range mine {
		found = found || e.ID == id
	}
	if !found {
		return tidings.ErrNotFound
	}
	raw, err := rq.Outbox.Read(id)
	if errors.Is(err, mail.ErrNoMessage) {
		return tidings.ErrNotFound
	}
	if err != nil {
		return err
	}
	if err := rq.audit("outbox.view", "message "+id); err != nil {
		return err
	}
	rq.renderView(http.StatusOK, "outbox", view{Title: "Outbox message", Nav: "outbox", Data: accountOutboxData{ID: id, Raw: string(raw)}})
	return nil
}
