package api_test

import (
	"strings"
	"testing"
)

func TestStaffDSAR(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		e.must(201, e.do("POST", "/api/v1/subscribers", e.tokA, map[string]any{"email": "asks@example.com", "name": "Asker"}))
		e.must(201, e.do("POST", "/api/v1/subscribers", e.tokB, map[string]any{"email": "asks@example.com", "name": "Other account"}))
		r := e.must(200, e.do("POST", "/api/v1/dsar", e.tokA, map[string]any{"email": "asks@example.com", "kind": "access"}))
		if !strings.Contains(string(r.body), "Asker") || strings.Contains(string(r.body), "Other account") {
			t.Fatalf("access answers with another account's data: %s", r.body)
		}
		e.must(200, e.do("POST", "/api/v1/dsar", e.tokA, map[string]any{"email": "asks@example.com", "kind": "erasure"}))
		if data := e.must(200, e.do("GET", "/api/v1/subscribers?email=asks@example.com", e.tokA, nil)).json(t)["data"].([]any); len(data) != 0 {
			t.Fatal("erasure left the subscriber")
		}
		if data := e.must(200, e.do("GET", "/api/v1/subscribers?email=asks@example.com", e.tokB, nil)).json(t)["data"].([]any); len(data) != 1 {
			t.Fatal("erasure in A touched B")
		}
		log := e.must(200, e.do("GET", "/api/v1/dsar", e.tokA, nil)).json(t)["data"].([]any)
		if len(log) != 2 || log[1].(map[string]any)["kind"] != "erasure" || log[1].(map[string]any)["completed_at"] == nil {
			t.Fatalf("DSAR log: %v", log)
		}
		if other := e.must(200, e.do("GET", "/api/v1/dsar", e.tokB, nil)).json(t)["data"].([]any); len(other) != 0 {
			t.Fatalf("B sees A's DSAR log: %v", other)
		}
		e.must(409, e.do("POST", "/api/v1/subscribers", e.tokA, map[string]any{"email": "asks@example.com"}))
		r = e.must(422, e.do("POST", "/api/v1/dsar", e.tokA, map[string]any{"email": "asks@example.com", "kind": "telepathy"}))
		if _, field := r.errCode(t); field != "kind" {
			t.Fatalf("bad kind: %s", r.body)
		}
	})
}
