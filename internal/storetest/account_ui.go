package storetest

import (
	"sync"
	"testing"

	"github.com/tidings/tidings/internal/tidings"
)

func testUpdateMembership(t *testing.T, s tidings.Store) {
	a, b := mustAccount(t, s), mustAccount(t, s)
	o1, o2, ed := mustUser(t, s), mustUser(t, s), mustUser(t, s)
	noErr(t, "SetMembership", s.SetMembership(ctx, a.ID, o1.ID, tidings.RoleOwner))
	noErr(t, "SetMembership", s.SetMembership(ctx, a.ID, ed.ID, tidings.RoleEditor))

	role := func(acc, user int64) tidings.Role {
		t.Helper()
		ms, err := s.Members(ctx, acc)
		noErr(t, "Members", err)
		for _, m := range ms {
			if m.ID == user {
				return m.Role
			}
		}
		return ""
	}
	lastOwner := func(what string, err error) {
		t.Helper()
		v, ok := tidings.AsValidation(err)
		if !ok || v.Field != "role" || v.Code != "last_owner" {
			t.Fatalf("%s: got %v, want the last-owner validation error", what, err)
		}
	}
	lastOwner("demote the only owner", s.UpdateMembership(ctx, a.ID, o1.ID, tidings.RoleAdmin))
	lastOwner("remove the only owner", s.UpdateMembership(ctx, a.ID, o1.ID, ""))
	if role(a.ID, o1.ID) != tidings.RoleOwner {
		t.Fatal("the only owner lost the role")
	}
	wantValidation(t, "bad role", s.UpdateMembership(ctx, a.ID, ed.ID, "boss"), "role")
	noErr(t, "promote", s.UpdateMembership(ctx, a.ID, ed.ID, tidings.RoleAdmin))
	if role(a.ID, ed.ID) != tidings.RoleAdmin {
		t.Fatal("role not changed")
	}
	// Another account, or a non-member: not found, nothing changed.
	wantErr(t, "other account", s.UpdateMembership(ctx, b.ID, ed.ID, tidings.RoleViewer), tidings.ErrNotFound)
	wantErr(t, "non-member", s.UpdateMembership(ctx, a.ID, o2.ID, tidings.RoleViewer), tidings.ErrNotFound)
	wantErr(t, "no account", s.UpdateMembership(ctx, 1<<40, ed.ID, tidings.RoleViewer), tidings.ErrNotFound)
	if role(a.ID, o2.ID) != "" || role(b.ID, ed.ID) != "" {
		t.Fatal("a membership appeared")
	}
	noErr(t, "remove", s.UpdateMembership(ctx, a.ID, ed.ID, ""))
	if role(a.ID, ed.ID) != "" {
		t.Fatal("member not removed")
	}

	// Two owners demoting each other at the same time: one of them stays owner.
	noErr(t, "SetMembership", s.SetMembership(ctx, a.ID, o2.ID, tidings.RoleOwner))
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, u := range []int64{o1.ID, o2.ID} {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = s.UpdateMembership(ctx, a.ID, u, tidings.RoleEditor) }()
	}
	wg.Wait()
	owners := 0
	for _, u := range []int64{o1.ID, o2.ID} {
		if role(a.ID, u) == tidings.RoleOwner {
			owners++
		}
	}
	if owners != 1 || (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("concurrent demotions: %d owners left, errors %v", owners, errs)
	}
}
