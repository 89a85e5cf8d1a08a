// Package sqlstore implements tidings.Store on database/sql for two engines: SQLite
// (modernc, pure Go, the embedded default) and PostgreSQL (pgx). The SQL is shared;
// dialect.go holds the few differences. Personal fields are sealed with the person's
// data key before they reach the database, and found by keyed hash, never by plaintext.
package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	_ "modernc.org/sqlite" // registers "sqlite"

	"github.com/tidings/tidings/internal/keys"
	"github.com/tidings/tidings/internal/tidings"
)

//go:embed migrations
var migrations embed.FS

// Store is the SQL implementation of tidings.Store.
type Store struct {
	engine Engine
	r      *sql.DB // reads
	w      *sql.DB // writes; for SQLite a single connection, for PostgreSQL the same pool as r
	kw     *sql.DB // writes to the key store (keystore.go): SQLite's key file alone; PostgreSQL's pool
	keys   *keys.Keyring
	log    *slog.Logger
	goose  *goose.Provider
	now    func() time.Time

	pgKeySchema string // PostgreSQL: the key store's schema

	eventMu    sync.Mutex
	eventStmts map[string]*sql.Stmt // RecordEvents' statements on SQLite, prepared on first use

	stopCheckpoints chan struct{} // SQLite: ends checkpointLoop, which then closes checkpointsDone
	checkpointsDone chan struct{}
}

var _ tidings.Store = (*Store)(nil)

// Option adjusts a Store.
type Option func(*Store)

// WithClock injects the clock (tests).
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// Open connects to the database named by url, applies pending migrations and returns the
// store. On PostgreSQL, migrations run under an advisory lock, so several nodes may start
// at once.
func Open(ctx context.Context, url string, kr *keys.Keyring, log *slog.Logger, opts ...Option) (*Store, error) {
	s, err := Connect(ctx, url, kr, log, opts...)
	if err != nil {
		return nil, err
	}
	if err := s.Migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Connect opens the database without migrating it.
func Connect(ctx context.Context, url string, kr *keys.Keyring, log *slog.Logger, opts ...Option) (*Store, error) {
	if kr == nil {
		return nil, errors.New("sqlstore: a keyring is required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	engine, dsn, err := parseURL(url)
	if err != nil {
		return nil, err
	}
	s := &Store{engine: engine, keys: kr, log: log, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	switch engine {
	case SQLite:
		if err := os.MkdirAll(filepath.Dir(dsn), 0o700); err != nil {
			return nil, fmt.Errorf("sqlstore: create data folder: %w", err)
		}
		// The database and its key file hold personal data (encrypted, but still):
		// owner-only, like the folder.
		for _, f := range []string{dsn, sqliteKeysPath(dsn)} {
			if f, err := os.OpenFile(f, os.O_RDWR|os.O_CREATE, 0o600); err == nil {
				f.Close()
			}
		}
		// The key file first: it is put in WAL mode before the pools attach it.
		if s.kw, err = openSQLiteKeys(dsn); err != nil {
			return nil, err
		}
		if err := s.kw.PingContext(ctx); err != nil {
			s.Close()
			return nil, fmt.Errorf("sqlstore: open the key store: %w", err)
		}
		if s.r, err = openSQLite(dsn, false); err != nil {
			s.Close()
			return nil, err
		}
		if s.w, err = openSQLite(dsn, true); err != nil {
			s.Close()
			return nil, err
		}
		// One writer: SQLite serialises writes anyway, and queueing in Go is cheaper
		// than contending on the file lock.
		s.w.SetMaxOpenConns(1)
		s.r.SetMaxOpenConns(8)
	case Postgres:
		if s.r, s.pgKeySchema, err = openPostgres(dsn); err != nil {
			return nil, err
		}
		s.r.SetMaxOpenConns(20)
		s.r.SetMaxIdleConns(20)
		s.w, s.kw = s.r, s.r
	}
	if err := s.w.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlstore: connect to %s: %w", engine, err)
	}
	if err := s.createKeyStore(ctx); err != nil {
		s.Close()
		return nil, err
	}
	sub, err := fs.Sub(migrations, "migrations/"+string(engine))
	if err != nil {
		s.Close()
		return nil, err
	}
	gopts := []goose.ProviderOption{s.goMigrations()}
	if engine == Postgres {
		// Nodes starting together poll for the lock every second (goose waits 5 s by
		// default), for up to five minutes of someone else migrating.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
		if err != nil {
			s.Close()
			return nil, err
		}
		gopts = append(gopts, goose.WithSessionLocker(locker))
	}
	if s.goose, err = goose.NewProvider(engine.gooseDialect(), s.w, sub, gopts...); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlstore: migrations: %w", err)
	}
	if engine == SQLite {
		s.stopCheckpoints, s.checkpointsDone = make(chan struct{}), make(chan struct{})
		go s.checkpointLoop()
	}
	return s, nil
}

// checkpointInterval is how often checkpointLoop copies the WAL into the database.
const checkpointInterval = 200 * time.Millisecond

// checkpointLoop checkpoints the WAL from a reader connection, beside the writer.
// SQLite's automatic checkpoint runs inside the commit that crosses its threshold:
// under tracking load that was a dozen times a second, each commit copying up to 1000
// pages and waiting for two fsyncs while the next group of requests waited behind it.
// A passive checkpoint never blocks the writer; but under constant writes it never
// quite catches up either, and the WAL starts over only after a checkpoint that did.
// So the writer keeps a higher threshold of its own (sqliteDSN), which then finds
// nearly everything copied already.
func (s *Store) checkpointLoop() {
	defer close(s.checkpointsDone)
	t := time.NewTicker(checkpointInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopCheckpoints:
			return
		case <-t.C:
		}
		// Errors are not worth a log line here: the writer's own checkpoint is the backstop.
		s.r.Exec(`PRAGMA main.wal_checkpoint(PASSIVE)`) // the key file checkpoints itself on its own connection
	}
}

// Checkpoint copies all of SQLite's write-ahead log into the database file now, the
// work checkpointLoop otherwise does in the background; on PostgreSQL it does nothing.
// Benchmarks use it to count that work in.
func (s *Store) Checkpoint(ctx context.Context) error {
	if s.engine != SQLite {
		return nil
	}
	_, err := s.r.ExecContext(ctx, `PRAGMA main.wal_checkpoint(FULL)`)
	return err
}

// Engine reports which engine the store runs on.
func (s *Store) Engine() Engine { return s.engine }

// Migrate applies pending migrations and returns how many ran.
func (s *Store) Migrate(ctx context.Context) error {
	if err := s.migrateKeyStore(ctx); err != nil {
		return err
	}
	res, err := s.goose.Up(ctx)
	if err != nil {
		return fmt.Errorf("sqlstore: migrate: %w", err)
	}
	for _, r := range res {
		s.log.Info("migration applied", "engine", s.engine, "version", r.Source.Version, "duration", r.Duration)
	}
	return nil
}

// Ping checks that the database answers and that no migration is pending.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.r.PingContext(ctx); err != nil {
		return fmt.Errorf("database unreachable: %w", err)
	}
	pending, err := s.goose.HasPending(ctx)
	if err != nil {
		return fmt.Errorf("migration state: %w", err)
	}
	if pending {
		return errors.New("migrations pending")
	}
	return nil
}

// Close releases the connections.
func (s *Store) Close() error {
	var errs []error
	if s.stopCheckpoints != nil {
		close(s.stopCheckpoints)
		<-s.checkpointsDone
		s.stopCheckpoints = nil
	}
	s.eventMu.Lock()
	for _, st := range s.eventStmts {
		errs = append(errs, st.Close())
	}
	s.eventStmts = nil
	s.eventMu.Unlock()
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	if s.w != nil && s.w != s.r {
		errs = append(errs, s.w.Close())
	}
	if s.kw != nil && s.kw != s.r {
		errs = append(errs, s.kw.Close())
	}
	return errors.Join(errs...)
}

// DB exposes the read pool for tools (benchmarks, tests that inspect raw rows).
func (s *Store) DB() *sql.DB { return s.r }

// tx runs fn in one write transaction: one store method, one transaction.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// Times are stored as microseconds since the epoch in both engines.
func toDB(t time.Time) int64 { return t.UnixMicro() }

func fromDB(us int64) time.Time { return time.UnixMicro(us).UTC() }

func fromDBPtr(us sql.NullInt64) *time.Time {
	if !us.Valid {
		return nil
	}
	t := fromDB(us.Int64)
	return &t
}

func (s *Store) stamp() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// rowsAffected turns "updated nothing" into ErrNotFound.
func rowsAffected(res sql.Result, err error) error {
	if err != nil {
		return translate(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return tidings.ErrNotFound
	}
	return nil
}
