package storetest

import (
	"fmt"
	"testing"

	"github.com/tidings/tidings/internal/consent"
	"github.com/tidings/tidings/internal/tidings"
)

func testSubscribers(t *testing.T, s tidings.Store) {
	a := mustAccount(t, s)
	l1, l2 := mustList(t, s, a.ID), mustList(t, s, a.ID)
	sub := tidings.Subscriber{
		Email:      tidings.MustParseAddress("Zoë.Müller@Bücher.Example"),
		Name:       "  Zoë Müller ",
		Attributes: tidings.Attributes{"plan": "pro", "seats": 3.0, "tags": []any{"a", "b"}},
	}
	noErr(t, "CreateSubscriber", s.CreateSubscriber(ctx, a.ID, &sub, []int64{l1.ID, l2.ID}, tidings.SubUnconfirmed, nil))
	if sub.ID == 0 || sub.AccountID != a.ID || sub.Status != tidings.StatusActive {
		t.Fatalf("created %+v", sub)
	}
	got, err := s.GetSubscriber(ctx, a.ID, sub.ID)
	noErr(t, "GetSubscriber", err)
	if got.Email != sub.Email || got.Name != "Zoë Müller" || got.Attributes["plan"] != "pro" || got.Attributes["seats"] != 3.0 {
		t.Fatalf("GetSubscriber = %+v, want the stored fields back", got)
	}
	subs, err := s.Subscriptions(ctx, a.ID, sub.ID)
	noErr(t, "Subscriptions", err)
	if len(subs) != 2 || subs[0].Status != tidings.SubUnconfirmed || subs[0].ConfirmedAt != nil {
		t.Fatalf("Subscriptions = %+v", subs)
	}

	dup := tidings.Subscriber{Email: tidings.MustParseAddress("zoë.müller@xn--bcher-kva.example")}
	wantErr(t, "CreateSubscriber(same address)", s.CreateSubscriber(ctx, a.ID, &dup, nil, "", nil), tidings.ErrConflict)

	badAttrs := tidings.Subscriber{Email: tidings.MustParseAddress("x@y.example"), Attributes: tidings.Attributes{"bad key": 1}}
	wantValidation(t, "CreateSubscriber(bad attribute)", s.CreateSubscriber(ctx, a.ID, &badAttrs, nil, "", nil), "attributes.bad key")

	got.Name = "Zoë M."
	got.Attributes = tidings.Attributes{"plan": "free"}
	got.Status = tidings.StatusRestricted
	got.TrackingConsent = true // not written: it changes only with its ledger entry
	noErr(t, "UpdateSubscriber", s.UpdateSubscriber(ctx, a.ID, &got))
	again, _ := s.GetSubscriber(ctx, a.ID, sub.ID)
	if again.Name != "Zoë M." || again.Attributes["plan"] != "free" || len(again.Attributes) != 1 ||
		again.Status != tidings.StatusRestricted || again.TrackingConsent || got.TrackingConsent || again.Email != sub.Email {
		t.Fatalf("after update: %+v (returned tracking consent %v)", again, got.TrackingConsent)
	}
	// A caller holding a copy read before a consent change does not undo the change.
	noErr(t, "SetTrackingConsent", s.SetTrackingConsent(ctx, a.ID, sub.ID, true, tidings.SourceAPI, tidings.Evidence{Note: "recorded through the API with token 1"}))
	noErr(t, "UpdateSubscriber(stale copy)", s.UpdateSubscriber(ctx, a.ID, &got))
	if again, _ = s.GetSubscriber(ctx, a.ID, sub.ID); !again.TrackingConsent || !got.TrackingConsent {
		t.Fatalf("a stale copy wrote the tracking consent back: stored %v, returned %v", again.TrackingConsent, got.TrackingConsent)
	}
	bad := again
	bad.Status = "gone"
	wantValidation(t, "UpdateSubscriber(bad status)", s.UpdateSubscriber(ctx, a.ID, &bad), "status")

	noErr(t, "SetSubscription(confirm)", s.SetSubscription(ctx, a.ID, sub.ID, l1.ID, tidings.SubConfirmed))
	noErr(t, "SetSubscription(unsubscribe)", s.SetSubscription(ctx, a.ID, sub.ID, l2.ID, tidings.SubUnsubscribed))
	subs, _ = s.Subscriptions(ctx, a.ID, sub.ID)
	if subs[0].Status != tidings.SubConfirmed || subs[0].ConfirmedAt == nil || subs[1].UnsubscribedAt == nil {
		t.Fatalf("after SetSubscription: %+v", subs)
	}

	noErr(t, "DeleteSubscriber", s.DeleteSubscriber(ctx, a.ID, sub.ID))
	_, err = s.GetSubscriber(ctx, a.ID, sub.ID)
	wantErr(t, "GetSubscriber(deleted)", err, tidings.ErrNotFound)
	_, err = s.Subscriptions(ctx, a.ID, sub.ID)
	wantErr(t, "Subscriptions(deleted)", err, tidings.ErrNotFound)
	// The address is free again.
	noErr(t, "CreateSubscriber(again)", s.CreateSubscriber(ctx, a.ID, &dup, nil, "", nil))
}

func testSubscriberFilters(t *testing.T, s tidings.Store) {
	a := mustAccount(t, s)
	l := mustList(t, s, a.ID)
	in := mustSubscriber(t, s, a.ID, "in@list.example", l.ID)
	out := mustSubscriber(t, s, a.ID, "out@list.example")
	out.Status = tidings.StatusObjected
	noErr(t, "UpdateSubscriber", s.UpdateSubscriber(ctx, a.ID, &out))

	byList, err := s.ListSubscribers(ctx, a.ID, tidings.SubscriberFilter{ListID: l.ID})
	noErr(t, "ListSubscribers(list)", err)
	if len(byList) != 1 || byList[0].ID != in.ID {
		t.Fatalf("by list = %+v", byList)
	}
	byEmail, err := s.ListSubscribers(ctx, a.ID, tidings.SubscriberFilter{Email: tidings.MustParseAddress("OUT@list.example")})
	noErr(t, "ListSubscribers(email)", err)
	if len(byEmail) != 1 || byEmail[0].ID != out.ID {
		t.Fatalf("by email = %+v", byEmail)
	}
	byStatus, err := s.ListSubscribers(ctx, a.ID, tidings.SubscriberFilter{Status: tidings.StatusObjected})
	noErr(t, "ListSubscribers(status)", err)
	if len(byStatus) != 1 || byStatus[0].ID != out.ID {
		t.Fatalf("by status = %+v", byStatus)
	}
	none, err := s.ListSubscribers(ctx, a.ID, tidings.SubscriberFilter{Email: tidings.MustParseAddress("nobody@list.example")})
	noErr(t, "ListSubscribers(unknown email)", err)
	if len(none) != 0 {
		t.Fatalf("unknown email found %+v", none)
	}
}

func testSubscribersPagination(t *testing.T, s tidings.Store) {
	a := mustAccount(t, s)
	want := map[int64]bool{}
	for i := range 23 {
		sub := mustSubscriber(t, s, a.ID, fmt.Sprintf("page%d@example.com", i))
		want[sub.ID] = true
	}
	seen := map[int64]bool{}
	after := int64(0)
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
		page, err := s.ListSubscribers(ctx, a.ID, tidings.SubscriberFilter{Page: tidings.Page{After: after, Limit: 5}})
		noErr(t, "ListSubscribers", err)
		if len(page) == 0 {
			break
		}
		for _, sub := range page {
			if seen[sub.ID] || !want[sub.ID] {
				t.Fatalf("page after %d returned %d twice or from elsewhere", after, sub.ID)
			}
			seen[sub.ID] = true
		}
		after = page[len(page)-1].ID
	}
	if len(seen) != len(want) {
		t.Fatalf("pagination saw %d of %d subscribers", len(seen), len(want))
	}
}

func testSubscribersIsolation(t *testing.T, s tidings.Store) {
	a, b := mustAccount(t, s), mustAccount(t, s)
	la, lb := mustList(t, s, a.ID), mustList(t, s, b.ID)
	sub := mustSubscriber(t, s, a.ID, "private@a.example", la.ID)

	_, err := s.GetSubscriber(ctx, b.ID, sub.ID)
	wantErr(t, "GetSubscriber(b, a's subscriber)", err, tidings.ErrNotFound)
	for _, f := range []tidings.SubscriberFilter{{}, {Email: sub.Email}, {ListID: la.ID}, {Status: tidings.StatusActive}} {
		got, err := s.ListSubscribers(ctx, b.ID, f)
		noErr(t, "ListSubscribers(b)", err)
		if len(got) != 0 {
			t.Fatalf("account B lists A's subscribers with filter %+v: %+v", f, got)
		}
	}
	hijack := sub
	hijack.Name = "hijacked"
	wantErr(t, "UpdateSubscriber(b, a's)", s.UpdateSubscriber(ctx, b.ID, &hijack), tidings.ErrNotFound)
	wantErr(t, "DeleteSubscriber(b, a's)", s.DeleteSubscriber(ctx, b.ID, sub.ID), tidings.ErrNotFound)

	// A subscriber of B cannot be put on A's list, and nothing is half-written.
	intruder := tidings.Subscriber{Email: tidings.MustParseAddress("intruder@b.example")}
	err = s.CreateSubscriber(ctx, b.ID, &intruder, []int64{lb.ID, la.ID}, tidings.SubConfirmed, nil)
	wantValidation(t, "CreateSubscriber(b, onto a's list)", err, "lists")
	found, _ := s.ListSubscribers(ctx, b.ID, tidings.SubscriberFilter{Email: intruder.Email})
	if len(found) != 0 {
		t.Fatalf("a failed CreateSubscriber left %+v behind", found)
	}

	got, err := s.GetSubscriber(ctx, a.ID, sub.ID)
	noErr(t, "GetSubscriber(a)", err)
	if got.Name != sub.Name {
		t.Fatalf("account B changed A's subscriber: %+v", got)
	}
}

func testSubscriptionsIsolation(t *testing.T, s tidings.Store) {
	a, b := mustAccount(t, s), mustAccount(t, s)
	la, lb := mustList(t, s, a.ID), mustList(t, s, b.ID)
	sa := mustSubscriber(t, s, a.ID, "subs@a.example", la.ID)
	sb := mustSubscriber(t, s, b.ID, "subs@b.example", lb.ID)

	_, err := s.Subscriptions(ctx, b.ID, sa.ID)
	wantErr(t, "Subscriptions(b, a's subscriber)", err, tidings.ErrNotFound)
	wantErr(t, "SetSubscription(b, a's subscriber)", s.SetSubscription(ctx, b.ID, sa.ID, lb.ID, tidings.SubUnsubscribed), tidings.ErrNotFound)
	wantErr(t, "SetSubscription(b's subscriber onto a's list)", s.SetSubscription(ctx, b.ID, sb.ID, la.ID, tidings.SubConfirmed), tidings.ErrNotFound)
	wantErr(t, "SetSubscription(a's subscriber via a's list from b)", s.SetSubscription(ctx, b.ID, sa.ID, la.ID, tidings.SubUnsubscribed), tidings.ErrNotFound)
	subs, _ := s.Subscriptions(ctx, a.ID, sa.ID)
	if len(subs) != 1 || subs[0].Status != tidings.SubConfirmed {
		t.Fatalf("A's subscriptions changed: %+v", subs)
	}
	onA, _ := s.ListSubscribers(ctx, a.ID, tidings.SubscriberFilter{ListID: la.ID})
	if len(onA) != 1 {
		t.Fatalf("A's list holds %d subscribers, want 1", len(onA))
	}
}

func testSamePersonTwoAccounts(t *testing.T, s tidings.Store) {
	a, b := mustAccount(t, s), mustAccount(t, s)
	sa := mustSubscriber(t, s, a.ID, "shared@person.example")
	sb := mustSubscriber(t, s, b.ID, "Shared@Person.example")
	if sa.PersonID == 0 || sa.PersonID != sb.PersonID {
		t.Fatalf("one address in two accounts should be one person: %d vs %d", sa.PersonID, sb.PersonID)
	}
	noErr(t, "DeleteSubscriber(a)", s.DeleteSubscriber(ctx, a.ID, sa.ID))
	got, err := s.GetSubscriber(ctx, b.ID, sb.ID)
	noErr(t, "GetSubscriber(b) after A deleted theirs", err)
	if got.Email.String() != "shared@person.example" {
		t.Fatalf("B's subscriber = %+v", got)
	}
}

func testDeleteAccountCascades(t *testing.T, s tidings.Store) {
	a := mustAccount(t, s)
	l := mustList(t, s, a.ID)
	sub := mustSubscriber(t, s, a.ID, "cascade@a.example", l.ID)
	noErr(t, "DeleteAccount", s.DeleteAccount(ctx, a.ID))
	_, err := s.GetList(ctx, a.ID, l.ID)
	wantErr(t, "GetList after account deletion", err, tidings.ErrNotFound)
	_, err = s.GetSubscriber(ctx, a.ID, sub.ID)
	wantErr(t, "GetSubscriber after account deletion", err, tidings.ErrNotFound)
}

// testEditSubscriber: an edit and the tracking consent change it makes are one write.
// A refused consent, or a refused field, leaves the rest of the edit unwritten; a
// changed consent is a tracking-change ledger entry, an unchanged one none; another
// account's subscriber is not found.
func testEditSubscriber(t *testing.T, s tidings.Store) {
	a, b := mustAccount(t, s), mustAccount(t, s)
	sub := tidings.Subscriber{Email: tidings.MustParseAddress("edit@example.com"), Name: "Ada"}
	noErr(t, "CreateSubscriber", s.CreateSubscriber(ctx, a.ID, &sub, nil, "", nil))
	a.TrackingEnabled = false
	noErr(t, "UpdateAccount", s.UpdateAccount(ctx, &a))
	trackingEntries := func() []tidings.LedgerEntry {
		t.Helper()
		hist, err := s.SubscriberLedger(ctx, a.ID, sub.ID, tidings.Page{})
		noErr(t, "SubscriberLedger", err)
		var out []tidings.LedgerEntry
		for _, e := range hist {
			if e.Kind == tidings.LedgerTrackingChange {
				out = append(out, e)
			}
		}
		return out
	}
	unchanged := func(what string) {
		t.Helper()
		got, err := s.GetSubscriber(ctx, a.ID, sub.ID)
		noErr(t, "GetSubscriber", err)
		if got.Name != "Ada" || got.Status != tidings.StatusActive || len(got.Attributes) != 0 || got.TrackingConsent {
			t.Fatalf("%s: the edit was written (%+v)", what, got)
		}
		if n := len(trackingEntries()); n != 0 {
			t.Fatalf("%s: %d tracking entries in the ledger", what, n)
		}
	}
	edit := func(accountID int64, name string, status tidings.SubscriberStatus, tracking bool) error {
		e := sub
		e.Name, e.Attributes, e.Status, e.TrackingConsent = name, tidings.Attributes{"city": "Lyon"}, status, tracking
		return s.EditSubscriber(ctx, accountID, &e, tidings.SourceAdmin, tidings.Evidence{Note: "by staff"})
	}

	v, ok := tidings.AsValidation(edit(a.ID, "Ada L.", tidings.StatusRestricted, true))
	if !ok || v.Field != "tracking_consent" || v.Code != "tracking_off" {
		t.Fatalf("consent where the account does not track: %v, want tracking_off on tracking_consent", v)
	}
	unchanged("consent refused")
	a.TrackingEnabled = true
	noErr(t, "UpdateAccount", s.UpdateAccount(ctx, &a))
	wantValidation(t, "EditSubscriber(bad status)", edit(a.ID, "Ada L.", "gone", true), "status")
	unchanged("bad status")
	wantErr(t, "EditSubscriber(b, a's)", edit(b.ID, "Hijack", tidings.StatusRestricted, true), tidings.ErrNotFound)
	unchanged("another account's edit")

	noErr(t, "EditSubscriber", edit(a.ID, "Ada L.", tidings.StatusRestricted, true))
	got, _ := s.GetSubscriber(ctx, a.ID, sub.ID)
	if got.Name != "Ada L." || got.Attributes["city"] != "Lyon" || got.Status != tidings.StatusRestricted || !got.TrackingConsent {
		t.Fatalf("after the edit: %+v", got)
	}
	entries := trackingEntries()
	if len(entries) != 1 || entries[0].Source != tidings.SourceAdmin {
		t.Fatalf("tracking entries after consent given: %+v", entries)
	}
	// The note names the change, then who made it (the caller's note).
	if ev, err := s.OpenEvidence(ctx, entries[0]); err != nil || ev.Note != "tracking consent given; by staff" {
		t.Fatalf("evidence %+v, %v", ev, err)
	}
	noErr(t, "EditSubscriber(same consent)", edit(a.ID, "Ada M.", tidings.StatusActive, true))
	if n := len(trackingEntries()); n != 1 {
		t.Fatalf("an edit that kept the consent wrote %d tracking entries, want the 1 from before", n)
	}
	// Withdrawing needs no tracking to be on.
	a.TrackingEnabled = false
	noErr(t, "UpdateAccount", s.UpdateAccount(ctx, &a))
	noErr(t, "EditSubscriber(withdraw)", edit(a.ID, "Ada M.", tidings.StatusActive, false))
	if got, _ := s.GetSubscriber(ctx, a.ID, sub.ID); got.TrackingConsent || len(trackingEntries()) != 2 {
		t.Fatalf("after withdrawing: %+v, %d tracking entries", got, len(trackingEntries()))
	}
	if rep, err := consent.VerifyLedger(ctx, s, a.ID); err != nil || !rep.OK || rep.Entries != 2 {
		t.Fatalf("ledger after the edits: %+v, %v", rep, err)
	}
}

// testCreateSubscriberTrackingGrant: every stored tracking consent is in the ledger. A
// new subscriber gets consent only with its grant, recorded in the same transaction
// with a note that says who recorded it; consent without a grant (or a grant without
// consent) is refused and nothing is stored. A tracking change names who made it:
// staff and API changes that do not are refused; the person's own says so.
func testCreateSubscriberTrackingGrant(t *testing.T, s tidings.Store) {
	a := mustAccount(t, s)
	l := mustList(t, s, a.ID)
	addr := tidings.MustParseAddress(unique("grant") + "@grant.example")
	nothing := func(what string) {
		t.Helper()
		found, err := s.ListSubscribers(ctx, a.ID, tidings.SubscriberFilter{Email: addr})
		noErr(t, "ListSubscribers", err)
		if len(found) != 0 {
			t.Fatalf("%s: %+v stored", what, found)
		}
		if rep, err := consent.VerifyLedger(ctx, s, a.ID); err != nil || rep.Entries != 0 {
			t.Fatalf("%s: ledger %+v, %v; want empty", what, rep, err)
		}
	}
	create := func(tracking bool, grant *tidings.TrackingGrant) (tidings.Subscriber, error) {
		sub := tidings.Subscriber{Email: addr, TrackingConsent: tracking}
		return sub, s.CreateSubscriber(ctx, a.ID, &sub, []int64{l.ID}, tidings.SubConfirmed, grant)
	}
	grant := &tidings.TrackingGrant{Source: tidings.SourceAPI, Evidence: tidings.Evidence{IP: "198.51.100.7", Note: "recorded through the API with token 9"}}

	_, err := create(true, nil)
	if v, ok := tidings.AsValidation(err); !ok || v.Field != "tracking_consent" || v.Code != "grant_required" {
		t.Fatalf("consent without a grant: %v, want grant_required on tracking_consent", err)
	}
	nothing("consent without a grant")
	_, err = create(false, grant)
	wantValidation(t, "a grant without consent", err, "tracking_consent")
	nothing("a grant without consent")

	sub, err := create(true, grant)
	noErr(t, "CreateSubscriber(granted)", err)
	got, err := s.GetSubscriber(ctx, a.ID, sub.ID)
	noErr(t, "GetSubscriber", err)
	hist, err := s.SubscriberLedger(ctx, a.ID, sub.ID, tidings.Page{})
	noErr(t, "SubscriberLedger", err)
	if !got.TrackingConsent || !sub.TrackingConsent || len(hist) != 1 || hist[0].Kind != tidings.LedgerTrackingChange || hist[0].Source != tidings.SourceAPI {
		t.Fatalf("granted: stored %+v, ledger %+v", got, hist)
	}
	ev, err := s.OpenEvidence(ctx, hist[0])
	if err != nil || ev.Note != "tracking consent given; recorded through the API with token 9" || ev.IP != "198.51.100.7" {
		t.Fatalf("the grant's evidence: %+v, %v", ev, err)
	}

	// Who made a change: the caller says; the person's own change says "the person".
	err = s.SetTrackingConsent(ctx, a.ID, sub.ID, false, tidings.SourceAdmin, tidings.Evidence{})
	if err == nil {
		t.Fatal("a staff change that does not say who made it was recorded")
	}
	if got, _ := s.GetSubscriber(ctx, a.ID, sub.ID); !got.TrackingConsent {
		t.Fatal("a refused change was written")
	}
	noErr(t, "SetTrackingConsent(portal)", s.SetTrackingConsent(ctx, a.ID, sub.ID, false, tidings.SourcePortal, tidings.Evidence{}))
	hist, err = s.SubscriberLedger(ctx, a.ID, sub.ID, tidings.Page{})
	noErr(t, "SubscriberLedger", err)
	if len(hist) != 2 {
		t.Fatalf("ledger after the person's withdrawal: %+v", hist)
	}
	if ev, err := s.OpenEvidence(ctx, hist[1]); err != nil || ev.Note != "tracking consent withdrawn; by the person" {
		t.Fatalf("the person's withdrawal: %+v, %v", ev, err)
	}
	if rep, err := consent.VerifyLedger(ctx, s, a.ID); err != nil || !rep.OK || rep.Entries != 2 {
		t.Fatalf("ledger: %+v, %v", rep, err)
	}
}
