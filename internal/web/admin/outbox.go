package admin

import (
	"errors"
	"net/http"
	"strings"

	"github.com/tidings/tidings/internal/mail"
	"github.com/tidings/tidings/internal/tidings"
)

// The account's view of the embedded outbox: the mail Tidings would have sent for it.
// The outbox holds every account's mail, so a message is the account's only when its
// return path is on one of the account's sending domains (campaign and consent mail use
// one); mail sent from the instance's fallback domain is shown to operators only.

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
	Domains []string
}

// ownEntries returns the account's messages among the newest, and its domains.
func (rq *request) ownEntries() ([]mail.OutboxEntry, []string, error) {
	if rq.Outbox == nil {
		return nil, nil, tidings.ErrNotFound
	}
	domains, err := rq.Store.SendingDomains(rq.r.Context(), rq.Account.ID)
	if err != nil {
		return nil, nil, err
	}
	own := map[string]bool{}
	var names []string
	for _, d := range domains {
		own[strings.ToLower(d.Domain)] = true
		names = append(names, d.Domain)
	}
	all, err := rq.Outbox.List(outboxScan)
	if err != nil {
		return nil, nil, err
	}
	var mine []mail.OutboxEntry
	for _, e := range all {
		if _, domain, ok := strings.Cut(e.From, "@"); ok && own[strings.ToLower(domain)] {
			mine = append(mine, e)
		}
	}
	return mine, names, nil
}

func (rq *request) accountOutbox() error {
	mine, domains, err := rq.ownEntries()
	if err != nil {
		return err
	}
	if len(mine) > outboxShown {
		mine = mine[:outboxShown]
	}
	rq.renderView(http.StatusOK, "outbox", view{Title: "Outbox", Nav: "outbox",
		Data: accountOutboxData{Entries: mine, Max: outboxShown, Domains: domains}})
	return nil
}

func (rq *request) accountOutboxMessage() error {
	mine, _, err := rq.ownEntries()
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
