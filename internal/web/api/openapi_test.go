package api_test

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/tidings/tidings/internal/web/api"
)

type openAPIDoc struct {
	OpenAPI    string                                `json:"openapi"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas map[string]struct {
			Required   []string                   `json:"required"`
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"schemas"`
	} `json:"components"`
}

func loadDoc(t *testing.T) openAPIDoc {
	t.Helper()
	var d openAPIDoc
	if err := json.Unmarshal(api.OpenAPI(), &d); err != nil {
		t.Fatalf("openapi.json is not valid JSON: %v", err)
	}
	if !strings.HasPrefix(d.OpenAPI, "3.") {
		t.Fatalf("openapi version %q", d.OpenAPI)
	}
	return d
}

// TestOpenAPIMatchesRoutes keeps the document true: every registered route is
// documented, and every documented operation is registered.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	d := loadDoc(t)
	registered := map[string]bool{}
	for _, r := range api.RouteTable() {
		registered[r.Method+" "+r.Path] = true
	}
	documented := map[string]bool{}
	for path, ops := range d.Paths {
		for method := range ops {
			if method == "parameters" {
				continue
			}
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	var missing, extra []string
	for k := range registered {
		if !documented[k] {
			missing = append(missing, k)
		}
	}
	for k := range documented {
		if !registered[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Fatalf("openapi.json out of date:\n  undocumented routes: %v\n  documented but not served: %v", missing, extra)
	}
}

// TestOpenAPIResponsesMatchSchemas checks real responses against the documented
// schemas: every required property is present, and no undocumented property appears.
func TestOpenAPIResponsesMatchSchemas(t *testing.T) {
	d := loadDoc(t)
	forEachEngine(t, func(t *testing.T, e *env) {
		check := func(schema string, obj map[string]any) {
			t.Helper()
			s, ok := d.Components.Schemas[schema]
			if !ok {
				t.Fatalf("schema %s not documented", schema)
			}
			for _, req := range s.Required {
				if _, ok := obj[req]; !ok {
					t.Errorf("%s response lacks required %q: %v", schema, req, obj)
				}
			}
			for k := range obj {
				if _, ok := s.Properties[k]; !ok {
					t.Errorf("%s response has undocumented property %q", schema, k)
				}
			}
		}
		acc := e.must(201, e.do("POST", "/api/v1/accounts", e.operator, map[string]any{"name": "Doc", "postal_address": "1 Doc Street", "contact_email": "d@doc.example"})).json(t)
		check("Account", acc)
		list := e.must(201, e.do("POST", "/api/v1/lists", e.tokA, map[string]any{"name": "Doc"})).json(t)
		check("List", list)
		sub := e.must(201, e.do("POST", "/api/v1/subscribers", e.tokA, map[string]any{"email": "doc@example.com", "lists": []any{list["id"]}, "source": "test", "lawful_basis": "consent"})).json(t)
		check("Subscriber", sub)
		subs := e.must(200, e.do("GET", fmt.Sprintf("/api/v1/subscribers/%v/subscriptions", sub["id"]), e.tokA, nil)).json(t)
		check("Subscription", subs["data"].([]any)[0].(map[string]any))
		errResp := e.must(404, e.do("GET", "/api/v1/lists/999999", e.tokA, nil)).json(t)
		check("Error", errResp)
	})
}
