package admin

// subscribers: being written.
func subscriberRoutes() []Route { return nil }
