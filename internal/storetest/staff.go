package storetest

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/tidings/tidings/internal/tidings"
)

func mustUser(t *testing.T, s tidings.Store) tidings.User {
	t.Helper()
	u := tidings.User{Email: unique("staff") + "@example.org", Name: "Staff", PasswordHash: "$argon2id$stub"}
	noErr(t, "CreateUser", s.CreateUser(ctx, &u))
	return u
}

func testStaffLogin(t *testing.T, s tidings.Store) {
	u := mustUser(t, s)
	now := time.Now().UTC().Truncate(time.Microsecond)
	fail := tidings.LoginAttempt{UserID: u.ID, IP: "192.0.2.1", UserAgent: "test", Result: tidings.LoginBadPassword, At: now}
	lockUntil := now.Add(15 * time.Minute)
	for i := 0; i < 2; i++ {
		noErr(t, "RecordLogin", s.RecordLogin(ctx, fail, 3, lockUntil))
	}
	sec, err := s.UserSecurity(ctx, u.ID)
	noErr(t, "UserSecurity", err)
	if sec.FailedLogins != 2 || !sec.LockedUntil.IsZero() {
		t.Fatalf("after 2 failures: %+v, want 2 failures and no lock", sec)
	}
	noErr(t, "RecordLogin", s.RecordLogin(ctx, fail, 3, lockUntil))
	sec, _ = s.UserSecurity(ctx, u.ID)
	if !sec.LockedUntil.Equal(lockUntil) {
		t.Fatalf("after 3 failures locked until %v, want %v", sec.LockedUntil, lockUntil)
	}
	// An unknown address is logged without a user and changes nobody's state.
	noErr(t, "RecordLogin unknown", s.RecordLogin(ctx, tidings.LoginAttempt{IP: "192.0.2.9", Result: tidings.LoginUnknownUser, At: now}, 3, lockUntil))
	ok := fail
	ok.Result = tidings.LoginOK
	noErr(t, "RecordLogin ok", s.RecordLogin(ctx, ok, 3, lockUntil))
	sec, _ = s.UserSecurity(ctx, u.ID)
	if sec.FailedLogins != 0 || !sec.LockedUntil.IsZero() {
		t.Fatalf("a success must clear the lock: %+v", sec)
	}
	log, err := s.LoginAttempts(ctx, u.ID, tidings.Page{})
	noErr(t, "LoginAttempts", err)
	if len(log) != 4 || log[0].Result != tidings.LoginOK || log[0].IP != "192.0.2.1" || log[3].Result != tidings.LoginBadPassword {
		t.Fatalf("login log newest first: %+v", log)
	}
	page, _ := s.LoginAttempts(ctx, u.ID, tidings.Page{After: log[1].ID, Limit: 10})
	if len(page) != 2 || page[0].ID != log[2].ID {
		t.Fatalf("second page: %+v", page)
	}
	all, _ := s.LoginAttempts(ctx, 0, tidings.Page{})
	if len(all) < 5 {
		t.Fatalf("everyone's log has %d entries, want the unknown address too", len(all))
	}
	old := fail
	old.At = now.Add(-200 * 24 * time.Hour)
	noErr(t, "RecordLogin old", s.RecordLogin(ctx, old, 3, lockUntil))
	n, err := s.PruneLoginAttempts(ctx, now.Add(-tidings.LoginLogRetention))
	if err != nil || n != 1 {
		t.Fatalf("pruned %d (%v), want the one old attempt", n, err)
	}
	if log, _ := s.LoginAttempts(ctx, u.ID, tidings.Page{}); len(log) != 4 {
		t.Fatalf("after pruning %d attempts, want the 4 recent ones", len(log))
	}
}

func testStaffSessions(t *testing.T, s tidings.Store) {
	u := mustUser(t, s)
	now := time.Now().UTC().Truncate(time.Microsecond)
	h1, h2 := []byte("session-one-hash-................"), []byte("session-two-hash-................")
	for _, h := range [][]byte{h1, h2} {
		noErr(t, "CreateStaffSession", s.CreateStaffSession(ctx, h, tidings.StaffSession{UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}))
	}
	ss, err := s.StaffSession(ctx, h1, now.Add(time.Second), now.Add(-time.Minute))
	noErr(t, "StaffSession", err)
	if ss.UserID != u.ID {
		t.Fatalf("session of user %d, want %d", ss.UserID, u.ID)
	}
	// Idle: last seen before the idle limit.
	_, err = s.StaffSession(ctx, h1, now.Add(time.Second), now.Add(time.Minute))
	wantErr(t, "idle session", err, tidings.ErrNotFound)
	_, err = s.StaffSession(ctx, h1, now, now.Add(-time.Hour))
	wantErr(t, "idle session is gone for good", err, tidings.ErrNotFound)
	// Past the absolute end.
	_, err = s.StaffSession(ctx, h2, now.Add(2*time.Hour), now.Add(-3*time.Hour))
	wantErr(t, "expired session", err, tidings.ErrNotFound)

	// A password change ends every session of that user, and only theirs.
	other := mustUser(t, s)
	h3, h4 := []byte("session-three-hash..............."), []byte("session-four-hash................")
	noErr(t, "create", s.CreateStaffSession(ctx, h3, tidings.StaffSession{UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}))
	noErr(t, "create", s.CreateStaffSession(ctx, h4, tidings.StaffSession{UserID: other.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}))
	noErr(t, "SetPassword", s.SetPassword(ctx, u.ID, "$argon2id$new"))
	_, err = s.StaffSession(ctx, h3, now, now.Add(-time.Minute))
	wantErr(t, "session after password change", err, tidings.ErrNotFound)
	_, err = s.StaffSession(ctx, h4, now, now.Add(-time.Minute))
	noErr(t, "other user's session survives", err)
	got, _ := s.GetUser(ctx, u.ID)
	if got.PasswordHash != "$argon2id$new" {
		t.Fatalf("password hash not replaced")
	}
	noErr(t, "DeleteStaffSession", s.DeleteStaffSession(ctx, h4))
	_, err = s.StaffSession(ctx, h4, now, now.Add(-time.Minute))
	wantErr(t, "logged-out session", err, tidings.ErrNotFound)

	// Password resets are single-use and expire.
	noErr(t, "CreatePasswordReset", s.CreatePasswordReset(ctx, u.ID, []byte("reset-a"), now.Add(time.Hour)))
	id, err := s.ConsumePasswordReset(ctx, []byte("reset-a"), now)
	noErr(t, "ConsumePasswordReset", err)
	if id != u.ID {
		t.Fatalf("reset for user %d, want %d", id, u.ID)
	}
	_, err = s.ConsumePasswordReset(ctx, []byte("reset-a"), now)
	wantErr(t, "reused reset", err, tidings.ErrNotFound)
	noErr(t, "CreatePasswordReset", s.CreatePasswordReset(ctx, u.ID, []byte("reset-b"), now.Add(time.Hour)))
	_, err = s.ConsumePasswordReset(ctx, []byte("reset-b"), now.Add(2*time.Hour))
	wantErr(t, "expired reset", err, tidings.ErrNotFound)
}

func testStaffTOTP(t *testing.T, s tidings.Store) {
	u := mustUser(t, s)
	codes := [][]byte{[]byte("code-1"), []byte("code-2")}
	noErr(t, "SetTOTP", s.SetTOTP(ctx, u.ID, []byte("sealed"), true, codes))
	sec, _ := s.UserSecurity(ctx, u.ID)
	if !sec.TOTPEnabled || !bytes.Equal(sec.TOTPSecret, []byte("sealed")) {
		t.Fatalf("security after SetTOTP: %+v", sec)
	}
	noErr(t, "UseRecoveryCode", s.UseRecoveryCode(ctx, u.ID, []byte("code-1")))
	wantErr(t, "reused recovery code", s.UseRecoveryCode(ctx, u.ID, []byte("code-1")), tidings.ErrNotFound)
	other := mustUser(t, s)
	wantErr(t, "another user's code", s.UseRecoveryCode(ctx, other.ID, []byte("code-2")), tidings.ErrNotFound)
	if n, _ := s.RecoveryCodesLeft(ctx, u.ID); n != 1 {
		t.Fatalf("%d recovery codes left, want 1", n)
	}
	noErr(t, "SetTOTP off", s.SetTOTP(ctx, u.ID, nil, true, codes))
	sec, _ = s.UserSecurity(ctx, u.ID)
	if sec.TOTPEnabled || sec.TOTPSecret != nil {
		t.Fatalf("two-factor still on: %+v", sec)
	}
	if n, _ := s.RecoveryCodesLeft(ctx, u.ID); n != 0 {
		t.Fatalf("%d recovery codes left after turning two-factor off", n)
	}
}

func testTermsAndMembers(t *testing.T, s tidings.Store) {
	_, err := s.PublishTerms(ctx, "  ")
	wantValidation(t, "empty terms", err, "text")
	v1, err := s.PublishTerms(ctx, "Version one")
	noErr(t, "PublishTerms", err)
	v2, _ := s.PublishTerms(ctx, "Version two")
	if v2.Version != v1.Version+1 {
		t.Fatalf("versions %d then %d", v1.Version, v2.Version)
	}
	latest, _ := s.LatestTerms(ctx)
	if latest.Version != v2.Version || latest.Text != "Version two" {
		t.Fatalf("latest terms %+v", latest)
	}
	u := mustUser(t, s)
	if v, _ := s.AcceptedTerms(ctx, u.ID); v != 0 {
		t.Fatalf("new user accepted version %d", v)
	}
	noErr(t, "AcceptTerms", s.AcceptTerms(ctx, u.ID, v1.Version, "192.0.2.4"))
	noErr(t, "AcceptTerms again", s.AcceptTerms(ctx, u.ID, v1.Version, "192.0.2.4"))
	if v, _ := s.AcceptedTerms(ctx, u.ID); v != v1.Version {
		t.Fatalf("accepted %d, want %d", v, v1.Version)
	}
	acc, _ := s.TermsAcceptances(ctx, tidings.Page{})
	found := false
	for _, a := range acc {
		found = found || a.UserID == u.ID && a.Email == u.Email && a.IP == "192.0.2.4"
	}
	if !found {
		t.Fatalf("acceptance not listed: %+v", acc)
	}

	a, b := mustAccount(t, s), mustAccount(t, s)
	noErr(t, "SetMembership", s.SetMembership(ctx, a.ID, u.ID, tidings.RoleEditor))
	members, _ := s.Members(ctx, a.ID)
	if len(members) != 1 || members[0].ID != u.ID || members[0].Role != tidings.RoleEditor {
		t.Fatalf("members of a: %+v", members)
	}
	if m, _ := s.Members(ctx, b.ID); len(m) != 0 {
		t.Fatalf("members leak to another account: %+v", m)
	}
	wantErr(t, "remove from the wrong account", s.RemoveMembership(ctx, b.ID, u.ID), tidings.ErrNotFound)
	noErr(t, "RemoveMembership", s.RemoveMembership(ctx, a.ID, u.ID))
	if m, _ := s.Members(ctx, a.ID); len(m) != 0 {
		t.Fatalf("member not removed: %+v", m)
	}
}

func testAuditLog(t *testing.T, s tidings.Store) {
	a, b := mustAccount(t, s), mustAccount(t, s)
	u := mustUser(t, s)
	wantValidation(t, "no action", s.Audit(ctx, tidings.AuditEntry{AccountID: a.ID, UserID: u.ID}), "action")
	for _, acc := range []int64{a.ID, b.ID, a.ID, 0} {
		noErr(t, "Audit", s.Audit(ctx, tidings.AuditEntry{AccountID: acc, UserID: u.ID, Action: "subscriber.view", Target: unique("subscriber"), IP: "192.0.2.7"}))
	}
	log, err := s.AuditLog(ctx, a.ID, 0, 10)
	noErr(t, "AuditLog", err)
	if len(log) != 2 || log[0].ID < log[1].ID || log[0].UserEmail != u.Email {
		t.Fatalf("account a's log: %+v", log)
	}
	for _, e := range log {
		if e.AccountID != a.ID {
			t.Fatalf("another account's entry in a's log: %+v", e)
		}
	}
	older, _ := s.AuditLog(ctx, a.ID, log[0].ID, 10)
	if len(older) != 1 || older[0].ID != log[1].ID {
		t.Fatalf("older page: %+v", older)
	}
	if all, _ := s.AuditLog(ctx, 0, 0, 10); len(all) < 4 {
		t.Fatalf("the operator sees %d entries, want all 4", len(all))
	}
}

func testBreaches(t *testing.T, s tidings.Store) {
	a := mustAccount(t, s)
	discovered := time.Now().UTC().Truncate(time.Microsecond)
	bad := tidings.Breach{Title: "Lost laptop", Description: "x", DiscoveredAt: discovered}
	wantValidation(t, "no categories", s.CreateBreach(ctx, &bad), "data_categories")
	bad.DataCategories = []string{"email addresses"}
	bad.Accounts = []tidings.BreachAccount{{AccountID: 1 << 40}}
	wantValidation(t, "unknown account", s.CreateBreach(ctx, &bad), "accounts")
	if list, _ := s.ListBreaches(ctx); len(list) != 0 {
		t.Fatalf("a refused breach was half-written: %+v", list)
	}
	br := tidings.Breach{Title: "Lost laptop", Description: "An unencrypted export was on it.", DataCategories: []string{"email addresses", "names"},
		DiscoveredAt: discovered, OccurredAt: discovered.Add(-time.Hour), Accounts: []tidings.BreachAccount{{AccountID: a.ID}}}
	noErr(t, "CreateBreach", s.CreateBreach(ctx, &br))
	got, err := s.GetBreach(ctx, br.ID)
	noErr(t, "GetBreach", err)
	if got.Title != br.Title || len(got.DataCategories) != 2 || !got.Deadline().Equal(discovered.Add(72*time.Hour)) ||
		len(got.Accounts) != 1 || got.Accounts[0].Name != a.Name || got.Accounts[0].NotifiedAt != nil {
		t.Fatalf("stored breach: %+v", got)
	}
	noErr(t, "MarkBreachNotified", s.MarkBreachNotified(ctx, br.ID, a.ID, discovered.Add(time.Hour)))
	closed := discovered.Add(48 * time.Hour)
	got.ClosedAt, got.Measures = &closed, "Remote wipe; passwords rotated."
	noErr(t, "UpdateBreach", s.UpdateBreach(ctx, &got))
	got, _ = s.GetBreach(ctx, br.ID)
	if got.Accounts[0].NotifiedAt == nil || got.ClosedAt == nil || !got.ClosedAt.Equal(closed) || got.Measures == "" {
		t.Fatalf("updated breach: %+v", got)
	}
	// The register outlives the account.
	noErr(t, "DeleteAccount", s.DeleteAccount(ctx, a.ID))
	got, _ = s.GetBreach(ctx, br.ID)
	if len(got.Accounts) != 1 || got.Accounts[0].Name != a.Name {
		t.Fatalf("breach lost its account after deletion: %+v", got.Accounts)
	}
}

// A campaign that matches nobody is sent at once: no batch exists that could close it.
func testEmptyCampaignIsSent(t *testing.T, s tidings.Store) {
	a := mustAccount(t, s)
	l := mustList(t, s, a.ID)
	c := tidings.Campaign{Name: "Nobody", Subject: "s", FromAddress: "news@tidings.example", HTML: "<p>x</p>", Lists: []int64{l.ID}}
	noErr(t, "CreateCampaign", s.CreateCampaign(ctx, a.ID, &c))
	noErr(t, "send", s.SetCampaignStatus(ctx, a.ID, c.ID, tidings.CampaignSending, ""))
	got, _ := s.GetCampaign(ctx, a.ID, c.ID)
	if got.Status != tidings.CampaignSent || got.FinishedAt == nil {
		t.Fatalf("an empty campaign is %s (finished %v), want sent", got.Status, got.FinishedAt)
	}
}

// A campaign is scheduled only for a time still to come; the life's other rules hold.
func testScheduleRules(t *testing.T, s tidings.Store) {
	a := mustAccount(t, s)
	l := mustList(t, s, a.ID)
	past := time.Now().Add(-time.Hour)
	c := tidings.Campaign{Name: "Late", Subject: "s", FromAddress: "news@tidings.example", HTML: "<p>x</p>", Lists: []int64{l.ID}, ScheduledAt: &past}
	noErr(t, "CreateCampaign", s.CreateCampaign(ctx, a.ID, &c))
	wantValidation(t, "schedule in the past", s.SetCampaignStatus(ctx, a.ID, c.ID, tidings.CampaignScheduled, ""), "scheduled_at")
	wantValidation(t, "pause a draft", s.SetCampaignStatus(ctx, a.ID, c.ID, tidings.CampaignPaused, ""), "status")
	future := time.Now().Add(time.Hour)
	c.ScheduledAt = &future
	noErr(t, "UpdateCampaign", s.UpdateCampaign(ctx, a.ID, &c))
	noErr(t, "schedule", s.SetCampaignStatus(ctx, a.ID, c.ID, tidings.CampaignScheduled, ""))
	if got, _ := s.GetCampaign(ctx, a.ID, c.ID); got.Status != tidings.CampaignScheduled {
		t.Fatalf("status %s, want scheduled", got.Status)
	}
}

// CreateMember makes the user and the role together, or neither.
func testCreateMember(t *testing.T, s tidings.Store) {
	a := mustAccount(t, s)
	u := tidings.User{Email: unique("invitee") + "@example.org", PasswordHash: "$argon2id$stub"}
	wantValidation(t, "bad role", s.CreateMember(ctx, a.ID, &u, "boss"), "role")
	_, err := s.UserByEmail(ctx, u.Email)
	wantErr(t, "user after a refused role", err, tidings.ErrNotFound)
	wantErr(t, "unknown account", s.CreateMember(ctx, 1<<40, &u, tidings.RoleEditor), tidings.ErrNotFound)
	if _, err := s.UserByEmail(ctx, u.Email); err == nil {
		t.Fatal("a user was left without the membership")
	}
	noErr(t, "CreateMember", s.CreateMember(ctx, a.ID, &u, tidings.RoleEditor))
	members, _ := s.Members(ctx, a.ID)
	if len(members) != 1 || members[0].ID != u.ID || members[0].Role != tidings.RoleEditor {
		t.Fatalf("members: %+v", members)
	}
}

// People who unsubscribe, or whose address is suppressed, after a campaign planned them
// get nothing from it: the batch that holds them is claimed later (paused campaigns,
// planning steps) and consent withdrawn meanwhile must be honoured.
func testWithdrawnAfterPlanningGetsNothing(t *testing.T, s tidings.Store) {
	a := mustAccount(t, s)
	l := mustList(t, s, a.ID)
	stay := mustSubscriber(t, s, a.ID, "stay@withdraw.example", l.ID)
	leave := mustSubscriber(t, s, a.ID, "leave@withdraw.example", l.ID)
	held := mustSubscriber(t, s, a.ID, "held@withdraw.example", l.ID)
	c := tidings.Campaign{Name: "Later", Subject: "s", FromAddress: "news@tidings.example", HTML: "<p>x</p>", Lists: []int64{l.ID}}
	noErr(t, "CreateCampaign", s.CreateCampaign(ctx, a.ID, &c))
	noErr(t, "send", s.SetCampaignStatus(ctx, a.ID, c.ID, tidings.CampaignSending, ""))
	noErr(t, "Unsubscribe", errOf(s.Unsubscribe(ctx, a.ID, leave.ID, []int64{l.ID}, tidings.SourceMail, tidings.Evidence{})))
	noErr(t, "AddSuppression", s.AddSuppression(ctx, tidings.InstanceWide, held.Email, tidings.SuppressComplaint))
	now := time.Now()
	b, err := s.ClaimBatch(ctx, c.ID, "n1", now, now.Add(time.Minute))
	noErr(t, "ClaimBatch", err)
	var got []int64
	for _, r := range b.Recipients {
		got = append(got, r.Subscriber.ID)
	}
	if len(got) != 1 || got[0] != stay.ID {
		t.Fatalf("claimed recipients %v; want only %d (%d unsubscribed, %d suppressed since planning)", got, stay.ID, leave.ID, held.ID)
	}
	noErr(t, "RecordDeliveries", s.RecordDeliveries(ctx, c.ID, b.No, "n1",
		[]tidings.DeliveryResult{{SubscriberID: stay.ID, Status: tidings.DeliverySent, Attempts: 1}}, true))
	got2, _ := s.GetCampaign(ctx, a.ID, c.ID)
	p, _ := s.CampaignProgress(ctx, a.ID, c.ID)
	if got2.Status != tidings.CampaignSent || p.Remaining != 0 || p.Sent != 1 {
		t.Fatalf("after the batch: %s, %+v; want sent with nothing remaining", got2.Status, p)
	}
}

// Editing a scheduled campaign keeps it schedulable: its time stays set and to come, as
// scheduling it required; otherwise a cleared time left it scheduled for ever (never
// due), and a past one started it without anyone choosing to send.
func testScheduledEditKeepsTime(t *testing.T, s tidings.Store) {
	a := mustAccount(t, s)
	l := mustList(t, s, a.ID)
	future := time.Now().Add(time.Hour)
	c := tidings.Campaign{Name: "Soon", Subject: "s", FromAddress: "news@tidings.example", HTML: "<p>x</p>", Lists: []int64{l.ID}, ScheduledAt: &future}
	noErr(t, "CreateCampaign", s.CreateCampaign(ctx, a.ID, &c))
	noErr(t, "schedule", s.SetCampaignStatus(ctx, a.ID, c.ID, tidings.CampaignScheduled, ""))
	past := time.Now().Add(-time.Hour)
	edit := c
	edit.ScheduledAt = &past
	wantValidation(t, "move a scheduled campaign into the past", s.UpdateCampaign(ctx, a.ID, &edit), "scheduled_at")
	edit.ScheduledAt = nil
	wantValidation(t, "clear a scheduled campaign's time", s.UpdateCampaign(ctx, a.ID, &edit), "scheduled_at")
	got, _ := s.GetCampaign(ctx, a.ID, c.ID)
	if got.Status != tidings.CampaignScheduled || got.ScheduledAt == nil || !got.ScheduledAt.After(time.Now()) {
		t.Fatalf("after refused edits: %s at %v; want scheduled at %v", got.Status, got.ScheduledAt, future)
	}
	later := future.Add(time.Hour)
	edit.ScheduledAt, edit.Subject = &later, "s2"
	noErr(t, "UpdateCampaign(later)", s.UpdateCampaign(ctx, a.ID, &edit))
	// A draft may keep any time (or none): it is checked when scheduled.
	d := tidings.Campaign{Name: "Draft", Subject: "s", FromAddress: "news@tidings.example", HTML: "<p>x</p>", Lists: []int64{l.ID}}
	noErr(t, "CreateCampaign(draft)", s.CreateCampaign(ctx, a.ID, &d))
	d.ScheduledAt = &past
	noErr(t, "UpdateCampaign(draft, past)", s.UpdateCampaign(ctx, a.ID, &d))
}

// Two nodes starting the same campaign at once: one starts it, the other is told it
// cannot (a validation error, which the engine takes for "another node started it"),
// and the recipients are planned once.
func testConcurrentStart(t *testing.T, s tidings.Store) {
	a := mustAccount(t, s)
	l := mustList(t, s, a.ID)
	for i := range 3 {
		mustSubscriber(t, s, a.ID, fmt.Sprintf("start%d-%s@example.com", i, unique("x")), l.ID)
	}
	for round := range 10 {
		c := tidings.Campaign{Name: "Race", Subject: "s", FromAddress: "news@tidings.example", HTML: "<p>x</p>", Lists: []int64{l.ID}}
		noErr(t, "CreateCampaign", s.CreateCampaign(ctx, a.ID, &c))
		errs := make(chan error, 2)
		for range 2 {
			go func() { errs <- s.SetCampaignStatus(ctx, a.ID, c.ID, tidings.CampaignSending, "") }()
		}
		var started int
		for range 2 {
			err := <-errs
			if err == nil {
				started++
			} else if _, ok := tidings.AsValidation(err); !ok {
				t.Fatalf("round %d: the second start failed with %v; want a validation error", round, err)
			}
		}
		p, _ := s.CampaignProgress(ctx, a.ID, c.ID)
		if started != 1 || p.Total != 3 {
			t.Fatalf("round %d: %d starts, %d planned; want 1 start and 3 planned", round, started, p.Total)
		}
	}
}

// A campaign that starts sending while it is being deleted is either deleted before it
// started (the start finds nothing) or started and kept (the delete is refused): never
// both, which deleted a sending campaign.
func testDeleteWhileStarting(t *testing.T, s tidings.Store) {
	a := mustAccount(t, s)
	l := mustList(t, s, a.ID)
	mustSubscriber(t, s, a.ID, unique("del")+"@example.com", l.ID)
	for round := range 30 {
		c := tidings.Campaign{Name: "Race", Subject: "s", FromAddress: "news@tidings.example", HTML: "<p>x</p>", Lists: []int64{l.ID}}
		noErr(t, "CreateCampaign", s.CreateCampaign(ctx, a.ID, &c))
		started, deleted := make(chan error, 1), make(chan error, 1)
		go func() { started <- s.SetCampaignStatus(ctx, a.ID, c.ID, tidings.CampaignSending, "") }()
		go func() { deleted <- s.DeleteCampaign(ctx, a.ID, c.ID) }()
		errStart, errDelete := <-started, <-deleted
		if errStart == nil && errDelete == nil {
			t.Fatalf("round %d: the campaign both started sending and was deleted", round)
		}
	}
}

// A campaign that is not sending (paused, cancelled) has no ETA: nothing is on its way.
func testNoETAUnlessSending(t *testing.T, s tidings.Store) {
	a := mustAccount(t, s)
	l := mustList(t, s, a.ID)
	first := mustSubscriber(t, s, a.ID, unique("eta")+"@example.com", l.ID)
	mustSubscriber(t, s, a.ID, unique("eta")+"@example.com", l.ID)
	c := tidings.Campaign{Name: "Eta", Subject: "s", FromAddress: "news@tidings.example", HTML: "<p>x</p>", Lists: []int64{l.ID}}
	noErr(t, "CreateCampaign", s.CreateCampaign(ctx, a.ID, &c))
	noErr(t, "send", s.SetCampaignStatus(ctx, a.ID, c.ID, tidings.CampaignSending, ""))
	now := time.Now()
	b, err := s.ClaimBatch(ctx, c.ID, "n1", now, now.Add(time.Minute))
	noErr(t, "ClaimBatch", err)
	noErr(t, "RecordDeliveries", s.RecordDeliveries(ctx, c.ID, b.No, "n1",
		[]tidings.DeliveryResult{{SubscriberID: first.ID, Status: tidings.DeliverySent, Attempts: 1}}, false))
	time.Sleep(5 * time.Millisecond)
	if p, _ := s.CampaignProgress(ctx, a.ID, c.ID); p.ETA == "" {
		t.Fatalf("sending: %+v; want an ETA", p)
	}
	for _, to := range []tidings.CampaignStatus{tidings.CampaignPaused, tidings.CampaignCancelled} {
		noErr(t, string(to), s.SetCampaignStatus(ctx, a.ID, c.ID, to, ""))
		if p, _ := s.CampaignProgress(ctx, a.ID, c.ID); p.ETA != "" {
			t.Fatalf("%s: %+v; want no ETA", to, p)
		}
	}
}

// A campaign paused while its last batch was being recorded (the error-rate pause on the
// last messages, or a person pressing pause then) is sent once resumed: nothing is left
// for a worker to claim, so nothing else would close it.
func testResumeFinishedCampaign(t *testing.T, s tidings.Store) {
	a := mustAccount(t, s)
	l := mustList(t, s, a.ID)
	sub := mustSubscriber(t, s, a.ID, unique("last")+"@example.com", l.ID)
	c := tidings.Campaign{Name: "Last", Subject: "s", FromAddress: "news@tidings.example", HTML: "<p>x</p>", Lists: []int64{l.ID}}
	noErr(t, "CreateCampaign", s.CreateCampaign(ctx, a.ID, &c))
	noErr(t, "send", s.SetCampaignStatus(ctx, a.ID, c.ID, tidings.CampaignSending, ""))
	now := time.Now()
	b, err := s.ClaimBatch(ctx, c.ID, "n1", now, now.Add(time.Minute))
	noErr(t, "ClaimBatch", err)
	noErr(t, "pause", s.SetCampaignStatus(ctx, a.ID, c.ID, tidings.CampaignPaused, "too many failures"))
	noErr(t, "RecordDeliveries", s.RecordDeliveries(ctx, c.ID, b.No, "n1",
		[]tidings.DeliveryResult{{SubscriberID: sub.ID, Status: tidings.DeliveryFailed, Attempts: 1}}, true))
	noErr(t, "resume", s.SetCampaignStatus(ctx, a.ID, c.ID, tidings.CampaignSending, ""))
	_, err = s.ClaimBatch(ctx, c.ID, "n1", now, now.Add(time.Minute))
	wantErr(t, "ClaimBatch(nothing left)", err, tidings.ErrNotFound)
	got, _ := s.GetCampaign(ctx, a.ID, c.ID)
	if got.Status != tidings.CampaignSent || got.FinishedAt == nil {
		t.Fatalf("resumed with nothing left: %s (finished %v), want sent", got.Status, got.FinishedAt)
	}
}
