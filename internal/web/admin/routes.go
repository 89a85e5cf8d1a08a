package admin

// routes is the whole UI. Each area keeps its rows next to its handlers; the access
// column is what the role/tenant matrix test checks.
func (u *ui) routes() []Route {
	var all []Route
	for _, area := range [][]Route{
		signinRoutes(), homeRoutes(), listRoutes(), subscriberRoutes(), campaignRoutes(),
		accountRoutes(), outboxRoutes(), operatorRoutes(),
	} {
		all = append(all, area...)
	}
	return all
}

func signinRoutes() []Route {
	return []Route{
		{"GET /admin/login", Public, (*request).loginPage},
		{"POST /admin/login", Public, (*request).login},
		{"POST /admin/login/code", Public, (*request).secondFactor},
		{"GET /admin/reset", Public, (*request).resetPage},
		{"POST /admin/reset", Public, (*request).requestReset},
		{"POST /admin/reset/password", Public, (*request).reset},
		{"POST /admin/logout", SignedIn, (*request).logout},
		{"GET /admin/terms", SignedIn, (*request).termsPage},
		{"POST /admin/terms", SignedIn, (*request).acceptTerms},
		{"GET /admin/me", SignedIn, (*request).me},
		{"POST /admin/me/password", SignedIn, (*request).changePassword},
		{"GET /admin/me/2fa", SignedIn, (*request).twoFactorPage},
		{"POST /admin/me/2fa", SignedIn, (*request).enableTwoFactor},
		{"POST /admin/me/2fa/off", SignedIn, (*request).disableTwoFactor},
		{"GET /admin/me/2fa.png", SignedIn, (*request).totpQR},
	}
}
