package api

import "net/http"

// Route is one API endpoint. The table below both registers the handlers and is checked
// against openapi.json by a test, so the document cannot drift from the code.
type Route struct {
	Method, Path string
	Public       bool // no token needed
	access       access
	h            handler
}

func (a *api) routes() []Route {
	return []Route{
		{Method: "GET", Path: "/api/v1/openapi.json", Public: true, h: serveOpenAPI},

		{Method: "GET", Path: "/api/v1/account", access: accountOnly, h: a.ownAccount},
		{Method: "PATCH", Path: "/api/v1/account", access: accountOnly, h: a.patchOwnAccount},
		{Method: "GET", Path: "/api/v1/accounts", access: operatorOnly, h: a.listAccounts},
		{Method: "POST", Path: "/api/v1/accounts", access: operatorOnly, h: a.createAccount},
		{Method: "GET", Path: "/api/v1/accounts/{id}", access: operatorOnly, h: a.getAccount},
		{Method: "PATCH", Path: "/api/v1/accounts/{id}", access: operatorOnly, h: a.patchAccount},
		{Method: "DELETE", Path: "/api/v1/accounts/{id}", access: operatorOnly, h: a.deleteAccount},

		{Method: "GET", Path: "/api/v1/lists", access: accountOnly, h: a.listLists},
		{Method: "POST", Path: "/api/v1/lists", access: accountOnly, h: a.createList},
		{Method: "GET", Path: "/api/v1/lists/{id}", access: accountOnly, h: a.getList},
		{Method: "PATCH", Path: "/api/v1/lists/{id}", access: accountOnly, h: a.patchList},
		{Method: "DELETE", Path: "/api/v1/lists/{id}", access: accountOnly, h: a.deleteList},
		{Method: "GET", Path: "/api/v1/lists/{id}/form", access: accountOnly, h: a.listForm},
		{Method: "POST", Path: "/api/v1/lists/{id}/imports", access: accountOnly, h: a.importCSV},
		{Method: "GET", Path: "/api/v1/lists/{id}/stats", access: accountOnly, h: a.listStats},
		{Method: "GET", Path: "/api/v1/lists/{id}/chart.svg", access: accountOnly, h: a.listChart},

		{Method: "GET", Path: "/api/v1/consent-text", access: accountOnly, h: a.currentConsentText},
		{Method: "POST", Path: "/api/v1/consent-text", access: accountOnly, h: a.publishConsentText},

		{Method: "GET", Path: "/api/v1/subscribers", access: accountOnly, h: a.listSubscribers},
		{Method: "POST", Path: "/api/v1/subscribers", access: accountOnly, h: a.createSubscriber},
		{Method: "GET", Path: "/api/v1/subscribers/{id}", access: accountOnly, h: a.getSubscriber},
		{Method: "PATCH", Path: "/api/v1/subscribers/{id}", access: accountOnly, h: a.patchSubscriber},
		{Method: "DELETE", Path: "/api/v1/subscribers/{id}", access: accountOnly, h: a.deleteSubscriber},
		{Method: "GET", Path: "/api/v1/subscribers/{id}/subscriptions", access: accountOnly, h: a.subscriptions},

		{Method: "GET", Path: "/api/v1/campaigns", access: accountOnly, h: a.listCampaigns},
		{Method: "POST", Path: "/api/v1/campaigns", access: accountOnly, h: a.createCampaign},
		{Method: "GET", Path: "/api/v1/campaigns/{id}", access: accountOnly, h: a.getCampaign},
		{Method: "PATCH", Path: "/api/v1/campaigns/{id}", access: accountOnly, h: a.patchCampaign},
		{Method: "DELETE", Path: "/api/v1/campaigns/{id}", access: accountOnly, h: a.deleteCampaign},
		{Method: "POST", Path: "/api/v1/campaigns/{id}/{action}", access: accountOnly, h: a.campaignAction},
		{Method: "GET", Path: "/api/v1/campaigns/{id}/progress", access: accountOnly, h: a.campaignProgress},
		{Method: "GET", Path: "/api/v1/campaigns/{id}/stats", access: accountOnly, h: a.campaignStats},
		{Method: "GET", Path: "/api/v1/campaigns/{id}/daily", access: accountOnly, h: a.campaignDaily},
		{Method: "GET", Path: "/api/v1/campaigns/{id}/chart.svg", access: accountOnly, h: a.campaignChart},
		{Method: "GET", Path: "/api/v1/campaigns/{id}/preview", access: accountOnly, h: a.previewCampaign},
		{Method: "POST", Path: "/api/v1/campaigns/{id}/test", access: accountOnly, h: a.testCampaign},

		{Method: "GET", Path: "/api/v1/dsar", access: accountOnly, h: a.listDSARs},
		{Method: "POST", Path: "/api/v1/dsar", access: accountOnly, h: a.createDSAR},

		{Method: "GET", Path: "/api/v1/opendsr/discovery", access: accountOnly, h: a.openDSRDiscovery},
		{Method: "POST", Path: "/api/v1/opendsr", access: accountOnly, h: a.createOpenDSR},
		{Method: "GET", Path: "/api/v1/opendsr/{rid}", access: accountOnly, h: a.openDSRStatus},
		{Method: "DELETE", Path: "/api/v1/opendsr/{rid}", access: accountOnly, h: a.cancelOpenDSR},
		{Method: "GET", Path: "/api/v1/opendsr/{rid}/results", access: accountOnly, h: a.openDSRResults},

		{Method: "GET", Path: "/api/v1/outbox", access: operatorOnly, h: a.listOutbox},
		{Method: "GET", Path: "/api/v1/outbox/{msg}", access: operatorOnly, h: a.readOutbox},

		{Method: "POST", Path: "/api/v1/feedback", access: operatorOnly, h: a.postFeedback},
	}
}

// RouteTable lists the registered routes (for tests and documentation).
func RouteTable() []Route { return (&api{}).routes() }

func noContent(w http.ResponseWriter) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
}
