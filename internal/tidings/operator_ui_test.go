package tidings

import "testing"

func TestPlatformValidate(t *testing.T) {
	ok := Platform{Name: "Host Ltd", ContactEmail: "Privacy@Host.example ", Country: "Germany",
		SubProcessors: []SubProcessor{{Name: " Relay ", Purpose: "mail", Location: "EU"}}}
	ok.Normalize()
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	if ok.ContactEmail != "privacy@host.example" || ok.SubProcessors[0].Name != "Relay" {
		t.Fatalf("normalised: %+v", ok)
	}
	if ok.Hosting() != "Germany" {
		t.Fatalf("hosting %q", ok.Hosting())
	}
	for name, mod := range map[string]func(*Platform){
		"name":          func(p *Platform) { p.Name = "" },
		"contact_email": func(p *Platform) { p.ContactEmail = "nope" },
		"country":       func(p *Platform) { p.Country = "" },
		"control":       func(p *Platform) { p.Region = "a\x00b" },
		"sub name":      func(p *Platform) { p.SubProcessors = []SubProcessor{{Purpose: "x", Location: "y"}} },
		"sub location":  func(p *Platform) { p.SubProcessors = []SubProcessor{{Name: "x", Purpose: "y"}} },
		"too many":      func(p *Platform) { p.SubProcessors = make([]SubProcessor, MaxSubProcessors+1) },
	} {
		p := ok
		mod(&p)
		if err := p.Validate(); err == nil {
			t.Errorf("%s: accepted %+v", name, p)
		}
	}
}
