package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"

	"github.com/tidings/tidings/internal/keys"
	"github.com/tidings/tidings/internal/tidings"
)

// The key store holds each person's wrapped data key, apart from the data it opens.
// Erasing a person deletes their key; if the key lived beside the data, a backup of the
// database taken before the erasure would still hold it, and the instance secret would
// open it. Kept apart (and backed up on a short rotation), an old backup of the data
// restored with today's key store opens everyone's fields except the erased people's.
//
//   - SQLite: a second file beside the database (tidings.db → tidings.keys.db), attached
//     to every connection as the schema "keystore".
//   - PostgreSQL: a schema of its own beside the data's (public → tidings_keys, S → S_keys),
//     on the connections' search_path; back up the data with pg_dump --exclude-schema.
//
// Either way the SQL names the table unqualified, person_keys, as if it were local. A key
// row is an ID and a wrapped key, nothing else; persons.key_id points at it.
//
// SQLite commits the files of one transaction one after the other, not atomically, so
// writes follow one rule that survives a crash at any moment: a key is committed, in a
// transaction of its own (newKeys), before the person row that points at it, and deleted
// with its person (deleteKey). A crash in between leaves at most a key that no person
// points at, which the retention sweep removes (SweepOrphanKeys); never a person whose
// key is gone.

const keySchema = "keystore" // SQLite: the name the key file is attached under

// sqliteKeysPath is the key file that belongs to the database file at path.
func sqliteKeysPath(path string) string {
	return strings.TrimSuffix(path, filepath.Ext(path)) + ".keys.db"
}

// attachingConnector opens SQLite connections with the key file attached.
type attachingConnector struct {
	driver.Connector
	keysPath string
}

func (c attachingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	ex, ok := conn.(driver.ExecerContext)
	if !ok {
		conn.Close()
		return nil, errors.New("sqlstore: the SQLite driver cannot execute statements")
	}
	// Read-only: a writer's BEGIN IMMEDIATE would otherwise lock the key file for as long
	// as its transaction lasts (a whole import), and keys are written on a connection of
	// their own (openSQLiteKeys) in transactions that must commit first.
	uri := (&url.URL{Scheme: "file", Path: c.keysPath, RawQuery: "mode=ro"}).String()
	if _, err := ex.ExecContext(ctx, `ATTACH DATABASE ? AS `+keySchema, []driver.NamedValue{{Ordinal: 1, Value: uri}}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("sqlstore: attach the key store: %w", err)
	}
	// Every connection caches the key file's pages apart (2 MB by default, 18 MB over the
	// pools); keys are read in person order, so a small cache serves as well.
	if _, err := ex.ExecContext(ctx, `PRAGMA `+keySchema+`.cache_size = -256`, nil); err != nil {
		conn.Close()
		return nil, fmt.Errorf("sqlstore: attach the key store: %w", err)
	}
	return conn, nil
}

// openSQLite opens one pool on the database file with the key file attached.
func openSQLite(path string, writer bool) (*sql.DB, error) {
	c, err := sqlite.NewConnector(sqliteDSN(path, writer))
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(sqliteKeysPath(path))
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(attachingConnector{c, abs}), nil
}

// openSQLiteKeys opens the connection that writes keys: the key file alone, one
// connection, in WAL mode (which the attached copies then share), and synchronous=FULL:
// a key must be on disk before the data sealed with it, even across a power cut (the
// data file runs NORMAL, which may lose its last commits).
func openSQLiteKeys(path string) (*sql.DB, error) {
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "busy_timeout(10000)", "synchronous(FULL)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	abs, err := filepath.Abs(sqliteKeysPath(path))
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", "file:"+abs+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// openPostgres opens the pool with the key schema on the search path, and returns the
// key schema's name.
func openPostgres(dsn string) (*sql.DB, string, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, "", fmt.Errorf("database URL: %w", err)
	}
	path := strings.TrimSpace(cfg.RuntimeParams["search_path"])
	data, keys := "public", "tidings_keys"
	if path != "" {
		if strings.ContainsAny(path, `,"`) {
			return nil, "", errors.New(`database URL: search_path must name one schema (the key store goes beside it as <schema>_keys)`)
		}
		data, keys = path, path+"_keys"
	}
	cfg.RuntimeParams["search_path"] = pgx.Identifier{data}.Sanitize() + ", " + pgx.Identifier{keys}.Sanitize()
	return stdlib.OpenDB(*cfg), keys, nil
}

// createKeyStore makes the key table if it is not there yet. It is not a migration: the
// migrations run in the data's schema, and move existing keys into this table (19, 20).
func (s *Store) createKeyStore(ctx context.Context) error {
	tx, err := s.kw.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	table := "person_keys" // SQLite: the key writer's own file
	if s.engine == Postgres {
		// Nodes starting together would race on the catalogue: one at a time.
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext('tidings key store'))`); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{s.pgKeySchema}.Sanitize()); err != nil {
			return fmt.Errorf("sqlstore: create the key store schema: %w", err)
		}
		table = pgx.Identifier{s.pgKeySchema, "person_keys"}.Sanitize()
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+table+` (
		id          `+s.engine.serialKey()+`,
		wrapped_key `+s.engine.blob()+` NOT NULL,
		created_at  BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("sqlstore: create the key store: %w", err)
	}
	return tx.Commit()
}

// newKeys makes n data keys and commits them, in a transaction of the key store alone,
// before the caller writes the persons that will point at them. It returns their IDs.
func (s *Store) newKeys(ctx context.Context, n int) ([]int64, []*keys.DataKey, error) {
	tx, err := s.kw.BeginTx(ctx, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("begin key store: %w", err)
	}
	defer tx.Rollback()
	ids, dks, err := s.insertKeys(ctx, tx, n, nil)
	if err != nil {
		return nil, nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, nil, fmt.Errorf("commit key store: %w", err)
	}
	return ids, dks, nil
}

// keyChunk is the most keys one statement inserts: under both engines' parameter limits.
const keyChunk = 500

// insertKeysSQL inserts m keys. On SQLite the caller numbers them (insertKeys); on
// PostgreSQL the sequence does, and the statement returns the IDs with the keys.
func (s *Store) insertKeysSQL(m int) string {
	if s.engine == SQLite {
		return `INSERT INTO person_keys (id, wrapped_key, created_at) VALUES ` + s.engine.values(m, "?", "?", "?")
	}
	return `INSERT INTO person_keys (wrapped_key, created_at) VALUES ` + s.engine.values(m, "?", "?") + ` RETURNING id, wrapped_key`
}

// insertKeys makes n data keys and inserts them in tx, a transaction of the key store.
// prepared, if not nil, returns the statement of insertKeysSQL(m), prepared on s.kw.
//
// On SQLite the transaction is the key store's one writer, so the keys are numbered
// here, from the largest ID on, as SQLite itself would: reading the IDs back with
// RETURNING cost an import of a million new people a second.
func (s *Store) insertKeys(ctx context.Context, tx *sql.Tx, n int, prepared func(m int) (*sql.Stmt, error)) ([]int64, []*keys.DataKey, error) {
	ids, dks := make([]int64, 0, n), make([]*keys.DataKey, 0, n)
	now := toDB(s.stamp())
	var next int64 // SQLite: the next key's ID
	if s.engine == SQLite {
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) + 1 FROM person_keys`).Scan(&next); err != nil {
			return nil, nil, err
		}
	}
	for done := 0; done < n; done += keyChunk {
		m := min(keyChunk, n-done)
		var made map[string]*keys.DataKey // PostgreSQL: by wrapped key, to match what RETURNING returns
		if next == 0 {
			made = make(map[string]*keys.DataKey, m)
		}
		args := make([]any, 0, 3*m)
		for range m {
			dk, wrapped, err := s.keys.NewDataKey()
			if err != nil {
				return nil, nil, err
			}
			if next > 0 {
				ids, dks = append(ids, next), append(dks, dk)
				args = append(args, next)
				next++
			} else {
				made[string(wrapped)] = dk
			}
			args = append(args, wrapped, now)
		}
		var rows *sql.Rows
		var err error
		if prepared != nil {
			var st *sql.Stmt
			if st, err = prepared(m); err != nil {
				return nil, nil, err
			}
			rows, err = tx.StmtContext(ctx, st).QueryContext(ctx, args...)
		} else {
			rows, err = tx.QueryContext(ctx, s.insertKeysSQL(m), args...)
		}
		if err != nil {
			return nil, nil, translate(err)
		}
		// PostgreSQL: RETURNING does not promise the order of the VALUES, hence the
		// match by the wrapped key. SQLite's statement returns no rows.
		for rows.Next() {
			var id int64
			var wrapped []byte
			if err := rows.Scan(&id, &wrapped); err != nil {
				rows.Close()
				return nil, nil, err
			}
			ids, dks = append(ids, id), append(dks, made[string(wrapped)])
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, nil, err
		}
	}
	if len(ids) != n {
		return nil, nil, fmt.Errorf("sqlstore: %d keys stored for %d made", len(ids), n)
	}
	return ids, dks, nil
}

// newKeyFor makes a key for addr if no person has the address yet, ahead of the
// transaction that will create the person (person). It returns 0 for a known address.
func (s *Store) newKeyFor(ctx context.Context, addr tidings.Address) (int64, error) {
	err := s.r.QueryRowContext(ctx, `SELECT 1 FROM persons WHERE email_hash = $1`, s.keys.Lookup(addr.String())).Scan(new(int))
	if err == nil {
		return 0, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, err
	}
	ids, _, err := s.newKeys(ctx, 1)
	if err != nil {
		return 0, err
	}
	return ids[0], nil
}

// rowsQuerier is a transaction or a pool.
type rowsQuerier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// readKeys returns the data keys with the given IDs. Read in a transaction on
// PostgreSQL, the rows stay locked against an erasure until it ends. On SQLite a
// transaction sees the key file as it was when the transaction first read it: keys
// committed since (an import's earlier batches) are read from the pool instead.
func (s *Store) readKeys(ctx context.Context, tx rowsQuerier, ids []int64) (map[int64]*keys.DataKey, error) {
	out := make(map[int64]*keys.DataKey, len(ids))
	const chunk = 500
	for start := 0; start < len(ids); start += chunk {
		part := ids[start:min(start+chunk, len(ids))]
		args := make([]any, len(part))
		for i, id := range part {
			args[i] = id
		}
		rows, err := tx.QueryContext(ctx, `SELECT id, wrapped_key FROM person_keys WHERE id IN (`+
			s.engine.inList(len(part), 1)+`)`+s.engine.forShare(), args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id int64
			var wrapped []byte
			if err := rows.Scan(&id, &wrapped); err != nil {
				rows.Close()
				return nil, err
			}
			dk, err := s.keys.UnwrapDataKey(wrapped)
			if err != nil {
				rows.Close()
				return nil, err
			}
			out[id] = dk
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// errKeyGone: the person was erased between newKeyFor and the transaction that needed
// their key. Nothing was written; asking again makes a new key.
var errKeyGone = fmt.Errorf("%w: the address was erased at this very moment; please try again", tidings.ErrConflict)

// orphanKeyAge is how old a key that no person points at must be before the sweep
// deletes it: far longer than any transaction that may still be about to point at it.
const orphanKeyAge = 24 * time.Hour

// SweepOrphanKeys deletes day-old keys that no person points at: left by a crash
// between an erasure's two commits, or by a sign-up refused after its key was made.
// Nothing ever points at such a key later: keys are found only through their person.
func (s *Store) SweepOrphanKeys(ctx context.Context) (int64, error) {
	cutoff := toDB(s.stamp().Add(-orphanKeyAge))
	rows, err := s.r.QueryContext(ctx, `SELECT k.id FROM person_keys k WHERE k.created_at < $1
		AND NOT EXISTS (SELECT 1 FROM persons p WHERE p.key_id = k.id)`, cutoff)
	if err != nil {
		return 0, err
	}
	var orphans []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, err
		}
		orphans = append(orphans, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	var n int64
	for _, id := range orphans {
		res, err := s.kw.ExecContext(ctx, `DELETE FROM person_keys WHERE id = $1`, id)
		if err != nil {
			return n, err
		}
		d, _ := res.RowsAffected()
		n += d
	}
	return n, nil
}

// deleteKey deletes a person's key inside tx, the transaction that deletes the person.
// On PostgreSQL the key store is in the same database and the transaction covers it. On
// SQLite it is another file, which tx only reads: the key goes on the key connection
// while tx still holds the data's write lock, so no sign-up can reach the person in
// between; if tx then fails, the person's rows stay behind without their key, unreadable
// as the erasure wanted, and a repeated erasure removes them.
func (s *Store) deleteKey(ctx context.Context, tx *sql.Tx, keyID int64) error {
	return s.deleteKeys(ctx, tx, []int64{keyID})
}

// deleteKeys is deleteKey for many keys, a few hundred per statement.
func (s *Store) deleteKeys(ctx context.Context, tx *sql.Tx, keyIDs []int64) error {
	exec := s.kw.ExecContext
	if s.engine.keysInDataTx() {
		exec = tx.ExecContext
	}
	for ids := range slices.Chunk(keyIDs, 500) {
		args := make([]any, len(ids))
		for i, v := range ids {
			args[i] = v
		}
		if _, err := exec(ctx, `DELETE FROM person_keys WHERE id IN (`+s.engine.inList(len(ids), 1)+`)`, args...); err != nil {
			return err
		}
	}
	return nil
}

// Migrations 19 and 20 move the keys out of persons: 19 adds persons.key_id, then
// moveKeysToKeyStore copies each wrapped key to the key store under its person's ID and
// points the person at it, and 20 drops persons.wrapped_key (refusing while any person
// has no key).
const (
	keyIDMigration    = 19
	dropKeysMigration = 20
)

// migrateKeyStore runs the migrations up to 20 with the copy in the middle; a database
// past 20, or new, only migrates.
func (s *Store) migrateKeyStore(ctx context.Context) error {
	v, err := s.goose.GetDBVersion(ctx)
	if err != nil {
		return fmt.Errorf("sqlstore: migration state: %w", err)
	}
	if v >= dropKeysMigration {
		return nil
	}
	if _, err := s.goose.UpTo(ctx, keyIDMigration); err != nil {
		return fmt.Errorf("sqlstore: migrate: %w", err)
	}
	err = s.moveKeysToKeyStore(ctx)
	if err != nil {
		// Another node starting at the same time may have finished the move and dropped
		// the column under our feet: then there is nothing left to do.
		if v, verr := s.goose.GetDBVersion(ctx); verr == nil && v >= dropKeysMigration {
			return nil
		}
	}
	return err
}

// moveKeysToKeyStore copies the wrapped keys still in persons to the key store (first,
// committed on their own) and then points the persons at them. Running it again is
// harmless.
func (s *Store) moveKeysToKeyStore(ctx context.Context) error {
	rows, err := s.r.QueryContext(ctx, `SELECT id, wrapped_key, created_at FROM persons WHERE key_id IS NULL`)
	if err != nil {
		return fmt.Errorf("sqlstore: read keys to move: %w", err)
	}
	defer rows.Close()
	var batch []any
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		_, err := s.kw.ExecContext(ctx, `INSERT INTO person_keys (id, wrapped_key, created_at) VALUES `+
			s.engine.values(len(batch)/3, "?", "?", "?")+` ON CONFLICT (id) DO NOTHING`, batch...)
		batch = batch[:0]
		return err
	}
	moved := 0
	for rows.Next() {
		var id, created int64
		var wrapped []byte
		if err := rows.Scan(&id, &wrapped, &created); err != nil {
			return err
		}
		moved++
		if batch = append(batch, id, wrapped, created); len(batch) == 3*500 {
			if err := flush(); err != nil {
				return fmt.Errorf("sqlstore: move keys: %w", err)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	rows.Close()
	if err := flush(); err != nil {
		return fmt.Errorf("sqlstore: move keys: %w", err)
	}
	if moved == 0 {
		return nil
	}
	if q := s.engine.resetKeySequence(); q != "" {
		if _, err := s.kw.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("sqlstore: move keys: %w", err)
		}
	}
	if _, err := s.w.ExecContext(ctx, `UPDATE persons SET key_id = id WHERE key_id IS NULL`); err != nil {
		return fmt.Errorf("sqlstore: move keys: %w", err)
	}
	return nil
}

// Backup writes a consistent copy of the data (without keys) or of the key store
// (without data) to path, a new file, while the store is in use. On PostgreSQL it
// returns the pg_dump command that does the same, since the copy belongs to the
// database's own tools there.
func (s *Store) Backup(ctx context.Context, keyStore bool, path string) error {
	if s.engine == Postgres {
		flag := "--exclude-schema="
		if keyStore {
			flag = "--schema="
		}
		return fmt.Errorf("sqlstore: on PostgreSQL, back up with pg_dump %s%s", flag, s.pgKeySchema)
	}
	db := s.r // the data file; its pools attach the keys read-only
	if keyStore {
		db = s.kw // the key file alone
	}
	if _, err := db.ExecContext(ctx, `VACUUM main INTO ?`, path); err != nil {
		return fmt.Errorf("sqlstore: backup: %w", err)
	}
	return os.Chmod(path, 0o600)
}
