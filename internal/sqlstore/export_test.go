package sqlstore

import "context"

// MigrateUpTo applies the migrations up to version (tests of a migration).
func (s *Store) MigrateUpTo(ctx context.Context, version int64) error {
	_, err := s.goose.UpTo(ctx, version)
	return err
}

// SetPlanStepSize changes how many subscribers a planning step examines, until the
// test ends.
func SetPlanStepSize(t interface{ Cleanup(func()) }, n int) {
	old := planStepSize
	planStepSize = n
	t.Cleanup(func() { planStepSize = old })
}

// MigrateDownTo undoes the migrations after version (tests of a migration's down step).
func (s *Store) MigrateDownTo(ctx context.Context, version int64) error {
	_, err := s.goose.DownTo(ctx, version)
	return err
}
