package storetest

import (
	"strings"
	"testing"

	"github.com/tidings/tidings/internal/tidings"
)

func testLists(t *testing.T, s tidings.Store) {
	a := mustAccount(t, s)
	l := tidings.NewList("Weekly")
	l.Purpose = "Our weekly news"
	noErr(t, "CreateList", s.CreateList(ctx, a.ID, &l))
	if l.AccountID != a.ID || !l.DoubleOptIn || l.LawfulBasis != tidings.BasisConsent {
		t.Fatalf("created list %+v: want the account, double opt-in and consent by default", l)
	}
	dup := tidings.NewList("Weekly")
	wantErr(t, "CreateList(duplicate name)", s.CreateList(ctx, a.ID, &dup), tidings.ErrConflict)
	bad := tidings.NewList("x")
	bad.LawfulBasis = "because"
	wantValidation(t, "CreateList(bad basis)", s.CreateList(ctx, a.ID, &bad), "lawful_basis")
	long := tidings.NewList(strings.Repeat("n", 201))
	wantValidation(t, "CreateList(long name)", s.CreateList(ctx, a.ID, &long), "name")

	got, err := s.GetList(ctx, a.ID, l.ID)
	noErr(t, "GetList", err)
	if got.Name != "Weekly" || got.Purpose != "Our weekly news" {
		t.Fatalf("GetList = %+v", got)
	}
	got.DoubleOptIn = false
	got.Description = "single opt-in, recorded"
	noErr(t, "UpdateList", s.UpdateList(ctx, a.ID, &got))
	again, _ := s.GetList(ctx, a.ID, l.ID)
	if again.DoubleOptIn || again.Description != "single opt-in, recorded" || !again.CreatedAt.Equal(l.CreatedAt) {
		t.Fatalf("after update: %+v", again)
	}
	second := mustList(t, s, a.ID)
	all, err := s.ListLists(ctx, a.ID, tidings.Page{})
	noErr(t, "ListLists", err)
	if len(all) != 2 || all[0].ID != l.ID || all[1].ID != second.ID {
		t.Fatalf("ListLists = %+v", all)
	}
	// Several at once: in ID order, each once, unknown IDs left out.
	some, err := s.GetLists(ctx, a.ID, []int64{second.ID, 999999, l.ID, second.ID})
	noErr(t, "GetLists", err)
	if len(some) != 2 || some[0].ID != l.ID || some[1].ID != second.ID || some[0].Purpose != "Our weekly news" || some[1].AccountID != a.ID {
		t.Fatalf("GetLists = %+v", some)
	}
	none, err := s.GetLists(ctx, a.ID, nil)
	noErr(t, "GetLists(none)", err)
	if none == nil || len(none) != 0 {
		t.Fatalf("GetLists(none) = %#v, want an empty slice", none)
	}
	_, err = s.GetLists(ctx, a.ID, make([]int64, tidings.MaxPageSize+1))
	wantValidation(t, "GetLists(too many)", err, "ids")
	noErr(t, "DeleteList", s.DeleteList(ctx, a.ID, l.ID))
	_, err = s.GetList(ctx, a.ID, l.ID)
	wantErr(t, "GetList(deleted)", err, tidings.ErrNotFound)
	if some, _ := s.GetLists(ctx, a.ID, []int64{l.ID, second.ID}); len(some) != 1 || some[0].ID != second.ID {
		t.Fatalf("GetLists after a deletion = %+v", some)
	}
}

func testListsIsolation(t *testing.T, s tidings.Store) {
	a, b := mustAccount(t, s), mustAccount(t, s)
	l := mustList(t, s, a.ID)
	_, err := s.GetList(ctx, b.ID, l.ID)
	wantErr(t, "GetList(b, a's list)", err, tidings.ErrNotFound)
	lists, err := s.ListLists(ctx, b.ID, tidings.Page{})
	noErr(t, "ListLists(b)", err)
	if len(lists) != 0 {
		t.Fatalf("account B lists %+v", lists)
	}
	bl := mustList(t, s, b.ID)
	lists, err = s.GetLists(ctx, b.ID, []int64{l.ID, bl.ID})
	noErr(t, "GetLists(b, a's and b's)", err)
	if len(lists) != 1 || lists[0].ID != bl.ID {
		t.Fatalf("GetLists(b, a's and b's list) = %+v, want b's alone", lists)
	}
	if lists, _ := s.GetLists(ctx, a.ID, []int64{bl.ID}); len(lists) != 0 {
		t.Fatalf("GetLists(a, b's list) = %+v", lists)
	}
	hijack := l
	hijack.Name = "hijacked"
	wantErr(t, "UpdateList(b, a's list)", s.UpdateList(ctx, b.ID, &hijack), tidings.ErrNotFound)
	wantErr(t, "DeleteList(b, a's list)", s.DeleteList(ctx, b.ID, l.ID), tidings.ErrNotFound)
	got, err := s.GetList(ctx, a.ID, l.ID)
	noErr(t, "GetList(a)", err)
	if got.Name != l.Name {
		t.Fatalf("account B renamed A's list to %q", got.Name)
	}
	// The same name is free in another account.
	same := tidings.NewList(l.Name)
	noErr(t, "CreateList(b, same name)", s.CreateList(ctx, b.ID, &same))
}
