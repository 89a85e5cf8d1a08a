package sqlstore

import (
	"context"
	"time"

	"github.com/tidings/tidings/internal/tidings"
)

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

// ImportWrites times an import's writing alone: every batch is prepared first (look-ups,
// IDs, keys, sealing, ledger links), then all are written and committed, timed. It is
// what the import's own statements cost on this engine, with preparation free.
func (s *Store) ImportWrites(ctx context.Context, accountID, listID int64, d tidings.ImportDeclaration, batches [][]tidings.ImportRow) (time.Duration, error) {
	imp, err := s.BeginImport(ctx, accountID, listID, d)
	if err != nil {
		return 0, err
	}
	im := imp.(*importer)
	var ws []*writes
	for _, batch := range batches {
		im.rows += len(batch)
		_, w, err := im.prepare(ctx, batch)
		if err != nil {
			im.Rollback()
			return 0, err
		}
		if w.keys != nil {
			if err := <-w.keys; err != nil {
				im.Rollback()
				return 0, err
			}
			w.keys = nil
		}
		ws = append(ws, w)
	}
	start := time.Now()
	for _, w := range ws {
		if err := im.write(ctx, w); err != nil {
			im.Rollback()
			return 0, err
		}
	}
	if err := im.Commit(); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}
