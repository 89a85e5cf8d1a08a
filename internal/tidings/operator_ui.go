package tidings

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
)

// The platform's own details as a processor: who runs the instance, where it is hosted,
// and the sub-processors it uses. Operators edit them in the admin UI; they appear in the
// records of processing (Art. 30(2) GDPR) and on the public information pages.

// SettingPlatformDetails is the setting key of the platform details, sub-processors
// included: one JSON value, so a save is one write.
const SettingPlatformDetails = "platform.details"

// Platform describes the operator of the instance.
type Platform struct {
	Name          string `json:"name"`           // the processor's legal name
	ContactEmail  string `json:"contact_email"`  // where controllers and authorities reach it
	PostalAddress string `json:"postal_address"` // optional
	// Hosting location.
	Country  string `json:"country"`
	Region   string `json:"region"`   // optional, e.g. a data-centre region
	Provider string `json:"provider"` // optional, e.g. the hosting company

	SubProcessors []SubProcessor `json:"sub_processors"`
}

// SubProcessor is another processor the platform engages (Art. 28(2) GDPR).
type SubProcessor struct {
	Name     string `json:"name"`
	Purpose  string `json:"purpose"`
	Location string `json:"location"` // country or region where it processes the data
}

// MaxSubProcessors bounds the list.
const MaxSubProcessors = 100

// Configured reports whether the operator filled in the details.
func (p Platform) Configured() bool { return p.Name != "" }

// Hosting is the hosting location in one line ("" when unknown).
func (p Platform) Hosting() string {
	var parts []string
	for _, s := range []string{p.Provider, p.Region, p.Country} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, ", ")
}

// Normalize trims the fields and normalises the contact address.
func (p *Platform) Normalize() {
	for _, s := range []*string{&p.Name, &p.ContactEmail, &p.PostalAddress, &p.Country, &p.Region, &p.Provider} {
		*s = strings.TrimSpace(*s)
	}
	if a, err := ParseAddress(p.ContactEmail); err == nil {
		p.ContactEmail = a.String()
	}
	for i := range p.SubProcessors {
		sp := &p.SubProcessors[i]
		sp.Name, sp.Purpose, sp.Location = strings.TrimSpace(sp.Name), strings.TrimSpace(sp.Purpose), strings.TrimSpace(sp.Location)
	}
}

// Validate reports the first field that breaks the rules.
func (p *Platform) Validate() error {
	if err := requireText("name", p.Name, 200); err != nil {
		return err
	}
	if p.ContactEmail == "" {
		return Invalid("contact_email", "required", "is required")
	}
	if _, err := ParseAddress(p.ContactEmail); err != nil {
		v, _ := AsValidation(err)
		return Invalid("contact_email", v.Code, "%s", v.Message)
	}
	if err := optionalText("postal_address", p.PostalAddress, 500); err != nil {
		return err
	}
	if err := requireText("country", p.Country, 100); err != nil {
		return err
	}
	if err := optionalText("region", p.Region, 200); err != nil {
		return err
	}
	if err := optionalText("provider", p.Provider, 200); err != nil {
		return err
	}
	if len(p.SubProcessors) > MaxSubProcessors {
		return Invalid("subprocessors", "too_many", "at most %d sub-processors", MaxSubProcessors)
	}
	for _, sp := range p.SubProcessors {
		if err := requireText("subprocessors", sp.Name, 200); err != nil {
			return Invalid("subprocessors", "required", "every sub-processor needs a name")
		}
		if err := requireText("subprocessors", sp.Purpose, 500); err != nil {
			return Invalid("subprocessors", "required", "%s: the purpose is missing or too long", sp.Name)
		}
		if err := requireText("subprocessors", sp.Location, 200); err != nil {
			return Invalid("subprocessors", "required", "%s: the location is missing or too long", sp.Name)
		}
		for _, f := range []string{sp.Name, sp.Purpose, sp.Location} {
			if strings.ContainsAny(f, "\n\t") {
				return Invalid("subprocessors", "bad_characters", "%s: one line per field", sp.Name)
			}
		}
	}
	return nil
}

// LoadPlatform reads the platform details; unset settings give a zero Platform.
func LoadPlatform(ctx context.Context, s SettingStore) (Platform, error) {
	var p Platform
	v, err := s.GetSetting(ctx, SettingPlatformDetails)
	if errors.Is(err, ErrNotFound) {
		return p, nil
	}
	if err != nil {
		return p, err
	}
	return p, json.Unmarshal([]byte(v), &p)
}

// SavePlatform validates the details and stores them (nothing is stored if invalid).
func SavePlatform(ctx context.Context, s SettingStore, p Platform) error {
	p.Normalize()
	if err := p.Validate(); err != nil {
		return err
	}
	if p.SubProcessors == nil {
		p.SubProcessors = []SubProcessor{}
	}
	details, _ := json.Marshal(p)
	return s.PutSetting(ctx, SettingPlatformDetails, string(details))
}
