package admin

// Areas still being written; each fills its own file.
func subscriberRoutes() []Route { return nil }
func campaignRoutes() []Route   { return nil }
func accountRoutes() []Route    { return nil }
func operatorRoutes() []Route   { return nil }
