// Package storetest is the conformance suite for tidings.Store: every engine runs the
// same tests. Each method that touches account data has a case proving that account A
// cannot read or change account B's rows.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/tidings/tidings/internal/tidings"
)

// Opener returns a fresh, migrated, empty store; it registers its own cleanup.
type Opener func(t *testing.T) tidings.Store

// Run runs the whole suite against stores made by open.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s tidings.Store)
	}{
		{"Ping", testPing},
		{"Settings", testSettings},
		{"Accounts", testAccounts},
		{"AccountValidationWritesNothing", testAccountValidation},
		{"FirstOperator", testFirstOperator},
		{"Users", testUsers},
		{"Tokens", testTokens},
		{"TokensIsolation", testTokensIsolation},
		{"Lists", testLists},
		{"ListsIsolation", testListsIsolation},
		{"Subscribers", testSubscribers},
		{"SubscriberFilters", testSubscriberFilters},
		{"SubscribersPagination", testSubscribersPagination},
		{"SubscribersIsolation", testSubscribersIsolation},
		{"EditSubscriber", testEditSubscriber},
		{"CreateSubscriberTrackingGrant", testCreateSubscriberTrackingGrant},
		{"SubscriptionsIsolation", testSubscriptionsIsolation},
		{"SamePersonTwoAccounts", testSamePersonTwoAccounts},
		{"DeleteAccountCascades", testDeleteAccountCascades},
		{"ConsentTexts", testConsentTexts},
		{"LedgerAppendOnly", testLedgerAppendOnly},
		{"ImportEvidenceShared", testImportEvidenceShared},
		{"DoubleOptIn", testDoubleOptIn},
		{"DeclineAndExpiry", testDeclineAndExpiry},
		{"UnconfirmedRequestKeepsSubscriber", testUnconfirmedRequestKeepsSubscriber},
		{"UnconfirmedRequestKeepsUnsubscription", testUnconfirmedRequestKeepsUnsubscription},
		{"ConfirmOnce", testConfirmOnce},
		{"TwoRequestsOneList", testTwoRequestsOneList},
		{"ConcurrentSignUps", testConcurrentSignUps},
		{"UnsubscribeOneListKeepsOtherRequest", testUnsubscribeOneListKeepsOtherRequest},
		{"TrackingConsentInLedger", testTrackingConsentInLedger},
		{"ConfirmationTracking", testConfirmationTracking},
		{"TrackingNoteOnChange", testTrackingNoteOnChange},
		{"ConfirmWithoutTracking", testConfirmWithoutTracking},
		{"ConfirmListsGone", testConfirmListsGone},
		{"UnsubscribeAndSuppression", testUnsubscribeAndSuppression},
		{"UnsubscribeLists", testUnsubscribeLists},
		{"DeletionRemembersUnsubscribe", testDeletionRemembersUnsubscribe},
		{"ExpireUnaskedUnconfirmed", testExpireUnaskedUnconfirmed},
		{"RequestNamesListTwice", testRequestNamesListTwice},
		{"ConcurrentUnsubscribes", testConcurrentUnsubscribes},
		{"ConsentIsolation", testConsentIsolation},
		{"Domains", testDomains},
		{"PersonDataAndErasure", testPersonDataAndErasure},
		{"PendingInExport", testPendingInExport},
		{"EventRetention", testEventRetention},
		{"DeleteInactive", testDeleteInactive},
		{"ListCounters", testListCounters},
		{"StaffLogin", testStaffLogin},
		{"StaffSessions", testStaffSessions},
		{"StaffTOTP", testStaffTOTP},
		{"TermsAndMembers", testTermsAndMembers},
		{"AuditLog", testAuditLog},
		{"Breaches", testBreaches},
		{"EmptyCampaignIsSent", testEmptyCampaignIsSent},
		{"WithdrawnAfterPlanningGetsNothing", testWithdrawnAfterPlanningGetsNothing},
		{"ScheduleRules", testScheduleRules},
		{"ScheduledEditKeepsTime", testScheduledEditKeepsTime},
		{"ConcurrentStart", testConcurrentStart},
		{"DeleteWhileStarting", testDeleteWhileStarting},
		{"NoETAUnlessSending", testNoETAUnlessSending},
		{"ResumeFinishedCampaign", testResumeFinishedCampaign},
		{"CreateMember", testCreateMember},
		{"UpdateMembership", testUpdateMembership},
		{"SubscriberLedger", testSubscriberLedger},
		{"EventBatches", testEventBatches},
		{"EventLargeBatch", testEventLargeBatch},
		{"TrackingConsentAtRecordTime", testTrackingConsentAtRecordTime},
		{"Feedback", testFeedback},
		{"SoftAfterHard", testSoftAfterHard},
		{"FeedbackBeforeSend", testFeedbackBeforeSend},
	}
	s := open(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, s) })
	}
}

var ctx = context.Background()

// seq makes names unique across the tests that share one store.
var seq int

func unique(prefix string) string { seq++; return fmt.Sprintf("%s-%d", prefix, seq) }

func mustAccount(t *testing.T, s tidings.Store) tidings.Account {
	t.Helper()
	a := tidings.Account{Name: unique("Controller"), ContactEmail: "dpo@example.org", PostalAddress: "1 Main St", TrackingEnabled: true}
	if err := s.CreateAccount(ctx, &a); err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	return a
}

func mustList(t *testing.T, s tidings.Store, accountID int64) tidings.List {
	t.Helper()
	l := tidings.NewList(unique("List"))
	if err := s.CreateList(ctx, accountID, &l); err != nil {
		t.Fatalf("CreateList: %v", err)
	}
	return l
}

// testGrant is the tracking grant of the subscribers the tests create with consent:
// every stored consent has its ledger entry.
var testGrant = &tidings.TrackingGrant{Source: tidings.SourceAdmin, Evidence: tidings.Evidence{Note: "recorded by the test"}}

func mustSubscriber(t *testing.T, s tidings.Store, accountID int64, email string, lists ...int64) tidings.Subscriber {
	t.Helper()
	// With tracking consent: RecordEvents keeps events personal only for those who gave it.
	sub := tidings.Subscriber{Email: tidings.MustParseAddress(email), Name: "Ada", Attributes: tidings.Attributes{"city": "Lyon"}, TrackingConsent: true}
	if err := s.CreateSubscriber(ctx, accountID, &sub, lists, tidings.SubConfirmed, testGrant); err != nil {
		t.Fatalf("CreateSubscriber(%s): %v", email, err)
	}
	return sub
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

func wantValidation(t *testing.T, what string, err error, field string) {
	t.Helper()
	v, ok := tidings.AsValidation(err)
	if !ok {
		t.Fatalf("%s: got %v, want a validation error on %q", what, err, field)
	}
	if v.Field != field {
		t.Fatalf("%s: validation error on %q (%v), want %q", what, v.Field, v, field)
	}
}

// errOf drops a count, for calls whose error alone is checked.
func errOf(_ int, err error) error { return err }

func noErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}
