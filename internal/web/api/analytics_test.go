package api_test

import (
	"fmt"
	"strings"
	"testing"
)

func TestListStatsAndCharts(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		list := id(t, e.must(201, e.do("POST", "/api/v1/lists", e.tokA, map[string]any{"name": "Growth", "double_opt_in": false})))
		for i := range 3 {
			e.must(201, e.do("POST", "/api/v1/subscribers", e.tokA, map[string]any{"email": fmt.Sprintf("g%d@example.com", i), "lists": []int64{list},
				"source": "test", "lawful_basis": "consent"}))
		}
		st := e.must(200, e.do("GET", fmt.Sprintf("/api/v1/lists/%d/stats", list), e.tokA, nil)).json(t)
		daily := st["daily"].(map[string]any)
		if st["confirmed"] != 3.0 || len(daily["subscribed"].([]any)) != 1 || daily["subscribed"].([]any)[0].(map[string]any)["count"] != 3.0 {
			t.Fatalf("list stats: %v", st)
		}
		r := e.must(200, e.do("GET", fmt.Sprintf("/api/v1/lists/%d/chart.svg", list), e.tokA, nil))
		if r.header.Get("Content-Type") != "image/svg+xml" || !strings.HasPrefix(string(r.body), "<svg") {
			t.Fatalf("chart: %s", r.body)
		}
		e.must(404, e.do("GET", fmt.Sprintf("/api/v1/lists/%d/stats", list), e.tokB, nil))
		e.must(404, e.do("GET", fmt.Sprintf("/api/v1/lists/%d/chart.svg", list), e.tokB, nil))
		e.must(404, e.do("GET", "/api/v1/campaigns/999999/chart.svg", e.tokA, nil))
	})
}
