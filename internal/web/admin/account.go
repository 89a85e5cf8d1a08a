package admin

// account: being written.
func accountRoutes() []Route { return nil }
