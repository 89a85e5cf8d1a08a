package admin

// operator: being written.
func operatorRoutes() []Route { return nil }
