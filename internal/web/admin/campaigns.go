package admin

// campaigns: being written.
func campaignRoutes() []Route { return nil }
