package tidings

import (
	"context"
	"time"
)

// FeedbackKind is what a receiving mail system reported about a delivered message.
type FeedbackKind string

const (
	// FeedbackHard is a permanent failure (RFC 3463 class 5 with a final subject, such
	// as 5.1.1 "no such user"): the address is suppressed at once.
	FeedbackHard FeedbackKind = "hard_bounce"
	// FeedbackSoft is a failure that may pass (a full mailbox, a 4.x.x status): counted,
	// and the address is suppressed after SoftBounceLimit of them.
	FeedbackSoft FeedbackKind = "soft_bounce"
	// FeedbackComplaint is a spam report (an RFC 5965 feedback report): the person is
	// unsubscribed from the account's lists and suppressed on the whole instance.
	FeedbackComplaint FeedbackKind = "complaint"
)

// SoftBounceLimit is how many soft bounces, from different campaigns within
// SoftBounceWindow of the first, make an address undeliverable. A mailbox that was full
// once a season is not dead: a soft bounce after the window starts the count again.
const (
	SoftBounceLimit  = 3
	SoftBounceWindow = 30 * 24 * time.Hour
)

// More delivery states, set by feedback after the message was accepted by the relay.
const (
	DeliveryBounced     DeliveryStatus = "bounced"
	DeliverySoftBounced DeliveryStatus = "soft_bounced"
	DeliveryComplained  DeliveryStatus = "complained"
)

// SourceFeedback is a bounce or complaint report from a receiving mail system.
const SourceFeedback Source = "feedback"

// Feedback is one report about one campaign recipient's message, matched by the
// recipient token of its return path.
type Feedback struct {
	AccountID, CampaignID, SubscriberID int64
	Kind                                FeedbackKind
	Status                              string    // RFC 3463 status, such as "5.1.1"; may be empty
	Detail                              string    // the diagnostic, for the delivery's error column
	Time                                time.Time // when the report arrived; zero means now
}

// FeedbackResult says what RecordFeedback did.
type FeedbackResult struct {
	Counted    bool // the first report of its kind for this delivery (repeats change nothing)
	Suppressed bool // the address may no longer be mailed
}

// FeedbackStore records bounces and complaints.
type FeedbackStore interface {
	// RecordFeedback applies one report to its delivery: the delivery's state and the
	// campaign's counters, and the suppression and unsubscription the kind calls for.
	// A report may come before its send is recorded (the delivery is still queued): it
	// then counts the send too, and recording the send later changes no count.
	// ErrNotFound when the account has no such delivery (erased since, or never sent).
	RecordFeedback(ctx context.Context, f Feedback) (FeedbackResult, error)
}
