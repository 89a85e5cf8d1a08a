package tidings

import (
	"context"
	"fmt"
	"time"
)

// EventKind names a tracking event.
type EventKind string

const (
	EventOpen  EventKind = "open"
	EventClick EventKind = "click"
	// EventUnsubscribe counts one-click unsubscribes per campaign (never personal:
	// the ledger holds the person's withdrawal).
	EventUnsubscribe EventKind = "unsubscribe"
)

// TrackingLevel is what may be recorded about one recipient's reading.
type TrackingLevel int

const (
	TrackNone      TrackingLevel = iota // nothing: the account does not track, or counts nothing without consent
	TrackAnonymous                      // counted, with no link to the person
	TrackPersonal                       // the account tracks and the subscriber consented
)

// TrackingFor decides, at send time, from the account's settings and the subscriber's
// stored consent. At request time, Do Not Track or Global Privacy Control lower a
// personal event to an anonymous one.
func TrackingFor(a Account, s Subscriber) TrackingLevel {
	switch {
	case !a.TrackingEnabled:
		return TrackNone
	case s.TrackingConsent:
		return TrackPersonal
	case a.AnonymousCounts:
		return TrackAnonymous
	}
	return TrackNone
}

// Event is one open or click. SubscriberID 0 makes it anonymous.
type Event struct {
	AccountID    int64
	CampaignID   int64
	SubscriberID int64
	Kind         EventKind
	URL          string
	Time         time.Time
}

// LinkCount is one link's clicks.
type LinkCount struct {
	URL    string `json:"url"`
	Clicks int64  `json:"clicks"`
}

// CampaignStats are a campaign's results, from counters kept with every event.
type CampaignStats struct {
	Total        int64       `json:"total"`
	Delivered    int64       `json:"delivered"`
	Failed       int64       `json:"failed"`
	Opens        int64       `json:"opens"`
	UniqueOpens  int64       `json:"unique_opens"`
	AnonOpens    int64       `json:"anonymous_opens"`
	Clicks       int64       `json:"clicks"`
	UniqueClicks int64       `json:"unique_clicks"`
	AnonClicks   int64       `json:"anonymous_clicks"`
	Automated    int64       `json:"automated_clicks"` // flagged as link scanners, still counted
	Unsubscribes int64       `json:"unsubscribes"`
	Bounced      int64       `json:"bounced"`      // hard bounces
	SoftBounced  int64       `json:"soft_bounced"` // soft bounces (the first per recipient)
	Complaints   int64       `json:"complaints"`
	TopLinks     []LinkCount `json:"top_links"`
}

// TrackingStore records events and reads results.
type TrackingStore interface {
	// RecordEvents stores events in one transaction and updates the counters. A click
	// within ScannerWindow of the delivery, from someone with no recorded open, is
	// flagged as automated (a link scanner) but kept. Events whose campaign is not (or
	// no longer) the event's account's are left out and the rest is written: the error
	// is then a *DroppedEventsError naming them.
	RecordEvents(ctx context.Context, events []Event) error
	CampaignStats(ctx context.Context, accountID, campaignID int64) (CampaignStats, error)
}

// DroppedEventsError reports the events of a group that RecordEvents left out because
// their campaign is gone (deleted since its mail went out); the rest of the group was
// committed. It matches ErrNotFound.
type DroppedEventsError struct {
	Indexes []int // positions in the group, ascending
}

func (e *DroppedEventsError) Error() string {
	return fmt.Sprintf("%d event(s) not stored: their campaign no longer exists", len(e.Indexes))
}

func (e *DroppedEventsError) Unwrap() error { return ErrNotFound }

// ScannerWindow is how soon after delivery a click without an open looks automated.
const ScannerWindow = 10 * time.Second

// EventRetention is how long events are kept before only daily aggregates remain.
const EventRetention = 183 * 24 * time.Hour

// EventTotals counts events by kind, personal and anonymous, whether still held as
// events or already rolled into daily aggregates.
type EventTotals map[EventKind][2]int64

// EventRetentionStore rolls old events into aggregates.
type EventRetentionStore interface {
	// RollUpEvents aggregates events older than cutoff into daily counts and deletes
	// them; it returns how many events it removed (or would, with dryRun). accountID 0
	// sweeps every account; otherwise only that one (for shorter per-account rules).
	RollUpEvents(ctx context.Context, accountID int64, cutoff time.Time, dryRun bool) (int64, error)
	// AccountsWithShorterRetention lists accounts that set EventDays or UnconfirmedDays.
	AccountsWithShorterRetention(ctx context.Context) ([]Account, error)
	// EventTotals sums events and aggregates of one campaign.
	EventTotals(ctx context.Context, accountID, campaignID int64) (EventTotals, error)
}

// DayCount is one day's count in a series.
type DayCount struct {
	Day   time.Time `json:"day"`
	Count int64     `json:"count"`
}

// Series are named daily counts ("opens", "clicks"; "subscribed", "confirmed", "unsubscribed").
type Series map[string][]DayCount

// ListStats are a list's totals and its daily growth.
type ListStats struct {
	Confirmed    int64  `json:"confirmed"`
	Unconfirmed  int64  `json:"unconfirmed"`
	Unsubscribed int64  `json:"unsubscribed"`
	Daily        Series `json:"daily"`
}

// AnalyticsStore reads time series for charts.
type AnalyticsStore interface {
	// CampaignDaily counts opens and clicks per day (events and rolled-up aggregates).
	CampaignDaily(ctx context.Context, accountID, campaignID int64) (Series, error)
	// ListStats counts a list's subscriptions by status, and sign-ups, confirmations and
	// unsubscribes per day.
	ListStats(ctx context.Context, accountID, listID int64) (ListStats, error)
}
