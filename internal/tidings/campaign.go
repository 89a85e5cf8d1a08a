package tidings

import (
	"strings"
	"time"
)

// CampaignStatus is where a campaign is in its life:
// draft → scheduled → sending ⇄ paused → sent, or cancelled.
type CampaignStatus string

const (
	CampaignDraft     CampaignStatus = "draft"
	CampaignScheduled CampaignStatus = "scheduled"
	CampaignSending   CampaignStatus = "sending"
	CampaignPaused    CampaignStatus = "paused"
	CampaignSent      CampaignStatus = "sent"
	CampaignCancelled CampaignStatus = "cancelled"
)

// Campaign is one mailing of an account to one or more of its lists.
type Campaign struct {
	ID          int64          `json:"id"`
	AccountID   int64          `json:"account_id"`
	Name        string         `json:"name"`
	Subject     string         `json:"subject"`
	FromName    string         `json:"from_name"`
	FromAddress string         `json:"from_address"` // on a sending domain of the account
	ReplyTo     string         `json:"reply_to,omitempty"`
	HTML        string         `json:"html"`
	Text        string         `json:"text"` // generated from HTML when empty
	Lists       []int64        `json:"lists"`
	Segment     Segment        `json:"segment,omitempty"`
	UTM         *UTM           `json:"utm,omitempty"`
	Status      CampaignStatus `json:"status"`
	ScheduledAt *time.Time     `json:"scheduled_at,omitempty"`
	StartedAt   *time.Time     `json:"started_at,omitempty"`
	FinishedAt  *time.Time     `json:"finished_at,omitempty"`
	PauseReason string         `json:"pause_reason,omitempty"`
	CreatedAt   time.Time      `json:"created_at"`
	UpdatedAt   time.Time      `json:"updated_at"`
}

// UTM parameters are added to every http(s) link of a campaign. They name the campaign,
// never the person.
type UTM struct {
	Source   string `json:"source"`
	Medium   string `json:"medium"`
	Campaign string `json:"campaign"`
}

// Segment narrows recipients by attribute equality: every condition must hold.
type Segment []Condition

// Condition is one attribute test.
type Condition struct {
	Attribute string `json:"attribute"`
	Equals    string `json:"equals"`
}

// Matches reports whether the attributes satisfy every condition.
func (s Segment) Matches(a Attributes) bool {
	for _, c := range s {
		v, ok := a[c.Attribute]
		if !ok {
			return false
		}
		if str, isStr := v.(string); !isStr || str != c.Equals {
			return false
		}
	}
	return true
}

// Normalize trims fields.
func (c *Campaign) Normalize() {
	c.Name = strings.TrimSpace(c.Name)
	c.Subject = strings.TrimSpace(c.Subject)
	c.FromName = strings.TrimSpace(c.FromName)
	if a, err := ParseAddress(c.FromAddress); err == nil {
		c.FromAddress = a.String()
	}
	if c.Status == "" {
		c.Status = CampaignDraft
	}
}

// Validate checks the fields a campaign needs before it can be saved; templates are
// checked by the sending package, which owns the template language.
func (c *Campaign) Validate() error {
	if err := requireText("name", c.Name, 200); err != nil {
		return err
	}
	if err := requireText("subject", c.Subject, 998); err != nil {
		return err
	}
	if strings.ContainsAny(c.Subject, "\r\n") {
		return Invalid("subject", "bad_characters", "must be one line")
	}
	if err := optionalText("from_name", c.FromName, 200); err != nil {
		return err
	}
	if _, err := ParseAddress(c.FromAddress); err != nil {
		v, _ := AsValidation(err)
		return Invalid("from_address", v.Code, "%s", v.Message)
	}
	if c.ReplyTo != "" {
		if _, err := ParseAddress(c.ReplyTo); err != nil {
			v, _ := AsValidation(err)
			return Invalid("reply_to", v.Code, "%s", v.Message)
		}
	}
	if strings.TrimSpace(c.HTML) == "" && strings.TrimSpace(c.Text) == "" {
		return Invalid("html", "required", "give an HTML or a plain-text body")
	}
	if len(c.HTML) > 2<<20 || len(c.Text) > 2<<20 {
		return Invalid("html", "too_long", "bodies must be at most 2 MiB")
	}
	if len(c.Lists) == 0 {
		return Invalid("lists", "required", "choose at least one list")
	}
	if c.UTM != nil {
		for field, v := range map[string]string{"utm.source": c.UTM.Source, "utm.medium": c.UTM.Medium, "utm.campaign": c.UTM.Campaign} {
			if err := optionalText(field, v, 200); err != nil {
				return err
			}
		}
	}
	for i, cond := range c.Segment {
		if !validAttrKey(cond.Attribute) {
			return Invalid("segment", "bad_key", "condition %d: attribute names use letters, digits and underscores", i+1)
		}
	}
	return nil
}

// DeliveryStatus is the state of one recipient's message.
type DeliveryStatus string

const (
	DeliveryQueued DeliveryStatus = "queued"
	DeliverySent   DeliveryStatus = "sent"
	DeliveryFailed DeliveryStatus = "failed"
)

// Recipient is one planned delivery, with what rendering needs.
type Recipient struct {
	Subscriber Subscriber
	Attempts   int
}

// DeliveryResult is the outcome of one send attempt, recorded in groups.
type DeliveryResult struct {
	SubscriberID int64
	Status       DeliveryStatus // sent or failed (queued: retry later)
	MessageID    string
	Error        string
	Attempts     int
}

// Progress summarises a campaign's deliveries.
type Progress struct {
	Planning  bool      `json:"planning"` // recipients are still being planned: Total grows until then
	Total     int64     `json:"total"`
	Sent      int64     `json:"sent"`
	Failed    int64     `json:"failed"`
	Remaining int64     `json:"remaining"`
	StartedAt time.Time `json:"started_at,omitempty"`
	Rate      float64   `json:"rate_per_second"`
	ETA       string    `json:"eta,omitempty"`
}

// Batch is a claimed share of a campaign's recipients.
type Batch struct {
	CampaignID int64
	AccountID  int64
	No         int
	Recipients []Recipient
}
