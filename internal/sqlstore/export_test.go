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

// SetDeferIndexAfter changes the import size from which the persons' email index is
// built again at the end (deferIndex), until the test ends.
func SetDeferIndexAfter(t interface{ Cleanup(func()) }, n int64) {
	old := deferIndexAfter
	deferIndexAfter = n
	t.Cleanup(func() { deferIndexAfter = old })
}

// SchemaSQL returns the CREATE statement of a table or index as the writer connection
// sees it ("" if there is none), and whether that connection checks foreign keys.
func (s *Store) SchemaSQL(ctx context.Context, name string) (sql string, foreignKeys bool, err error) {
	err = s.w.QueryRowContext(ctx, `SELECT COALESCE((SELECT sql FROM sqlite_master WHERE name = $1), ''), foreign_keys FROM pragma_foreign_keys`, name).
		Scan(&sql, &foreignKeys)
	return sql, foreignKeys, err
}

// DuplicatePerson inserts a person with the lookup hash of addr, as no code path would
// for a known address: the unique index's own test.
func (s *Store) DuplicatePerson(ctx context.Context, addr string) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO persons (email_hash, created_at) VALUES ($1, 0)`, s.keys.Lookup(addr))
	return translate(err)
}
