package tidings

import (
	"slices"
	"strings"
	"time"
)

// LawfulBasis is the GDPR Art. 6(1) basis the controller relies on for a list.
type LawfulBasis string

const (
	BasisConsent             LawfulBasis = "consent"
	BasisContract            LawfulBasis = "contract"
	BasisLegalObligation     LawfulBasis = "legal_obligation"
	BasisVitalInterests      LawfulBasis = "vital_interests"
	BasisPublicTask          LawfulBasis = "public_task"
	BasisLegitimateInterests LawfulBasis = "legitimate_interests"
)

// LawfulBases lists every basis, in the order of Art. 6(1).
var LawfulBases = []LawfulBasis{BasisConsent, BasisContract, BasisLegalObligation,
	BasisVitalInterests, BasisPublicTask, BasisLegitimateInterests}

// Valid reports whether b is one of the six bases.
func (b LawfulBasis) Valid() bool {
	for _, v := range LawfulBases {
		if b == v {
			return true
		}
	}
	return false
}

// List is a mailing list of one account.
type List struct {
	ID          int64       `json:"id"`
	AccountID   int64       `json:"account_id"`
	Name        string      `json:"name"`
	Description string      `json:"description"`
	Purpose     string      `json:"purpose"` // why the data is processed, shown on forms and in the portal
	LawfulBasis LawfulBasis `json:"lawful_basis"`
	DoubleOptIn bool        `json:"double_opt_in"` // on by default; single opt-in is recorded as such
	CreatedAt   time.Time   `json:"created_at"`
	UpdatedAt   time.Time   `json:"updated_at"`
}

// NewList returns a list with the project's defaults: consent, double opt-in.
func NewList(name string) List {
	return List{Name: name, LawfulBasis: BasisConsent, DoubleOptIn: true}
}

// Normalize trims the free-text fields.
func (l *List) Normalize() {
	l.Name = strings.TrimSpace(l.Name)
	l.Description = strings.TrimSpace(l.Description)
	l.Purpose = strings.TrimSpace(l.Purpose)
}

// Validate reports the first field that breaks the rules.
func (l *List) Validate() error {
	if err := requireText("name", l.Name, 200); err != nil {
		return err
	}
	if err := optionalText("description", l.Description, 2000); err != nil {
		return err
	}
	if err := optionalText("purpose", l.Purpose, 2000); err != nil {
		return err
	}
	if !l.LawfulBasis.Valid() {
		return Invalid("lawful_basis", "invalid_choice",
			"must be one of consent, contract, legal_obligation, vital_interests, public_task, legitimate_interests")
	}
	return nil
}

// DistinctIDs returns ids without repeats, in the order they first appear: a list named
// twice in a request is one subscription, one ledger entry, one line of a mail.
func DistinctIDs(ids []int64) []int64 {
	out := make([]int64, 0, len(ids))
	for _, id := range ids {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}
