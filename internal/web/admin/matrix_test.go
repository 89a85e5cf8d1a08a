package admin_test

import (
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/tidings/tidings/internal/keys"
	"github.com/tidings/tidings/internal/tidings"
	"github.com/tidings/tidings/internal/web/admin"
)

// TestRoleTenantMatrix sends every admin route, as every kind of user, and checks that
// each gets what its rule says and nothing more: the anonymous are sent to sign in;
// staff of another account, and operators without a role, get 404 on account pages
// (never a hint that the ID exists); a role below the route's rule gets 403; the rest
// get their page. Viewers never see a subscriber's address.
func TestRoleTenantMatrix(t *testing.T) {
	actors := []struct {
		name string
		role tidings.Role // in account A
		inB  bool         // owner of account B instead
		op   bool
	}{
		{name: "anonymous"},
		{name: "viewer", role: tidings.RoleViewer},
		{name: "editor", role: tidings.RoleEditor},
		{name: "admin", role: tidings.RoleAdmin},
		{name: "owner", role: tidings.RoleOwner},
		{name: "other-account-owner", inB: true},
		{name: "operator-without-role", op: true},
	}
	routes := orderedRoutes()
	for _, actor := range actors {
		t.Run(actor.name, func(t *testing.T) {
			e := newEnv(t)
			f := e.fixture()
			var b *browser
			switch {
			case actor.name == "anonymous":
				b = e.browser()
			case actor.inB:
				b = e.login(e.user(e.b.ID, tidings.RoleOwner, false))
			default:
				b = e.login(e.user(e.a.ID, actor.role, actor.op))
			}
			for _, rt := range routes {
				if rt.Access == admin.Public {
					continue
				}
				method, path, _ := strings.Cut(rt.Pattern, " ")
				target, filled := f.fill(path)
				var p page
				if method == "GET" {
					p = b.get(target)
				} else {
					p = b.post(target, url.Values{})
				}
				want := expect(actor.name, actor.role, actor.inB, actor.op, rt)
				what := actor.name + " " + method + " " + target
				switch want {
				case "login":
					if p.status != http.StatusSeeOther || !strings.HasPrefix(p.location, "/admin/login") {
						t.Errorf("%s: %d %q, want a redirect to sign in", what, p.status, p.location)
					}
				case "404":
					if p.status != http.StatusNotFound {
						t.Errorf("%s: %d, want 404", what, p.status)
					}
					if strings.Contains(p.body, e.a.Name) || strings.Contains(p.body, f.email) {
						t.Errorf("%s: the 404 page shows account A's data", what)
					}
				case "403":
					if p.status != http.StatusForbidden {
						t.Errorf("%s: %d, want 403", what, p.status)
					}
				case "logout":
					if p.status != http.StatusSeeOther || p.location != "/admin/login" {
						t.Errorf("%s: %d %q, want signed out", what, p.status, p.location)
					}
				case "allowed":
					bad := p.status == http.StatusForbidden || p.status >= 500 || p.status == http.StatusNotFound && filled ||
						p.status == http.StatusSeeOther && strings.HasPrefix(p.location, "/admin/login")
					if bad {
						t.Errorf("%s: %d %q, want the page\n%.600s", what, p.status, p.location, p.body)
					}
				}
				if actor.role == tidings.RoleViewer && strings.Contains(p.body, f.email) {
					t.Errorf("%s: a viewer sees a subscriber's address", what)
				}
			}
		})
	}
}

// expect says what an actor should get from a route.
func expect(name string, role tidings.Role, inB, op bool, rt admin.Route) string {
	if name == "anonymous" {
		return "login"
	}
	if strings.HasSuffix(rt.Pattern, " /admin/logout") {
		return "logout"
	}
	switch rt.Access {
	case admin.SignedIn:
		return "allowed"
	case admin.Operator:
		if op {
			return "allowed"
		}
		return "404"
	}
	if !strings.Contains(rt.Pattern, "{account}") {
		return "allowed"
	}
	if inB || role == "" {
		return "404"
	}
	if roleRank[role] < rt.Access {
		return "403"
	}
	return "allowed"
}

var roleRank = map[tidings.Role]admin.Access{tidings.RoleViewer: admin.Viewer, tidings.RoleEditor: admin.Editor,
	tidings.RoleAdmin: admin.AccountAdmin, tidings.RoleOwner: admin.Owner}

// orderedRoutes puts reads first and destructive posts last, so that one fixture serves
// the whole walk; signing out comes at the very end.
func orderedRoutes() []admin.Route {
	routes := admin.RouteTable()
	weight := func(r admin.Route) int {
		switch {
		case strings.HasSuffix(r.Pattern, "/logout"):
			return 3
		case strings.HasPrefix(r.Pattern, "POST") && regexp.MustCompile(`/(delete|remove|erase|retire|off)$`).MatchString(r.Pattern):
			return 2
		case strings.HasPrefix(r.Pattern, "POST"):
			return 1
		}
		return 0
	}
	sort.SliceStable(routes, func(i, j int) bool { return weight(routes[i]) < weight(routes[j]) })
	return routes
}

// fixture is one of each kind of object in account A.
type fixture struct {
	email string
	ids   map[string]int64 // by the path segment before the ID
}

func (e *env) fixture() fixture {
	e.t.Helper()
	l := tidings.NewList("Matrix list")
	must(e.t, e.store.CreateList(ctx, e.a.ID, &l))
	sub := tidings.Subscriber{Email: tidings.MustParseAddress("matrix.person@example.net"), Name: "Matrix Person"}
	must(e.t, e.store.CreateSubscriber(ctx, e.a.ID, &sub, []int64{l.ID}, tidings.SubConfirmed, nil))
	c := tidings.Campaign{Name: "Matrix campaign", Subject: "Hello", FromName: "A", FromAddress: "news@tidings.example",
		HTML: "<p>Hi</p>", Lists: []int64{l.ID}}
	must(e.t, e.store.CreateCampaign(ctx, e.a.ID, &c))
	_, hash := keys.NewSecretToken("tid_")
	tok := tidings.APIToken{AccountID: e.a.ID, Name: "matrix", Prefix: "tid_matr"}
	must(e.t, e.store.CreateToken(ctx, &tok, hash))
	member := e.user(e.a.ID, tidings.RoleViewer, false)
	return fixture{email: sub.Email.String(), ids: map[string]int64{
		"account": e.a.ID, "accounts": e.a.ID, "lists": l.ID, "subscribers": sub.ID, "campaigns": c.ID,
		"tokens": tok.ID, "users": member.ID,
	}}
}

var param = regexp.MustCompile(`\{([a-z]+)\}`)

// fill puts fixture IDs into a route's path; filled is false when some parameter had
// no fixture (then a 404 is a fair answer).
func (f fixture) fill(path string) (string, bool) {
	filled := true
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if s == "{$}" {
			segs[i] = ""
			continue
		}
		m := param.FindStringSubmatch(s)
		if m == nil {
			continue
		}
		key := m[1]
		if key == "id" && i > 0 {
			key = segs[i-1]
		}
		if id, ok := f.ids[key]; ok {
			segs[i] = itoa(id)
		} else {
			segs[i] = "999999"
			filled = false
		}
	}
	// The QR image needs an enrollment in its query: without one, 404 is right.
	if strings.HasSuffix(path, "/2fa.png") {
		filled = false
	}
	return strings.Join(segs, "/"), filled
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
