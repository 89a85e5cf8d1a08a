package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
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
// Either way the SQL names the table unqualified, person_keys, as if it were local.
//
// Keys are found by the person's lookup hash, not by person ID, so that a key can be
// written before the person row that needs it. Writes follow one rule that survives a
// crash at any moment: a key is committed before the rows sealed with it, in its own
// transaction (ensureKeys), and deleted in the transaction that deletes its person, which
// on SQLite commits the data file first. A crash in between leaves at most a key with no
// person, which the retention sweep removes (SweepOrphanKeys); never data without its key.

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
	if _, err := ex.ExecContext(ctx, `ATTACH DATABASE ? AS `+keySchema, []driver.NamedValue{{Ordinal: 1, Value: "file:" + c.keysPath + "?mode=ro"}}); err != nil {
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
	schema, keySchema := "public", "tidings_keys"
	if path != "" {
		if strings.ContainsAny(path, `,"`) {
			return nil, "", errors.New(`database URL: search_path must name one schema (the key store goes beside it as <schema>_keys)`)
		}
		schema, keySchema = path, path+"_keys"
	}
	cfg.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize() + ", " + pgx.Identifier{keySchema}.Sanitize()
	return stdlib.OpenDB(*cfg), keySchema, nil
}

// createKeyStore makes the key table if it is not there yet. It is not a migration: the
// migrations run in the data's schema and move existing keys into this table (00019).
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
	// claimed_at: when a writer last created or found the key to seal with it; the
	// orphan sweep leaves recently claimed keys alone.
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+table+` (
		email_hash  `+s.engine.blob()+` PRIMARY KEY,
		wrapped_key `+s.engine.blob()+` NOT NULL,
		claimed_at  BIGINT NOT NULL)`+s.engine.withoutRowid()); err != nil {
		return fmt.Errorf("sqlstore: create the key store: %w", err)
	}
	return tx.Commit()
}

// ensureKeys returns the data key of every lookup hash, creating the missing ones, in a
// transaction of its own that commits before the caller writes anything sealed with them.
func (s *Store) ensureKeys(ctx context.Context, hashes [][]byte) (map[string]*keys.DataKey, error) {
	out := make(map[string]*keys.DataKey, len(hashes))
	if len(hashes) == 0 {
		return out, nil
	}
	tx, err := s.kw.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin key store: %w", err)
	}
	defer tx.Rollback()
	// Chunks keep each statement under both engines' parameter limits.
	const chunk = 500
	for start := 0; start < len(hashes); start += chunk {
		part := hashes[start:min(start+chunk, len(hashes))]
		if err := s.readKeys(ctx, tx, part, out); err != nil {
			return nil, err
		}
		if err := s.claimKeys(ctx, tx, part); err != nil {
			return nil, err
		}
		var ins []any
		made := map[string]*keys.DataKey{}
		for _, h := range part {
			if _, ok := out[string(h)]; ok || made[string(h)] != nil {
				continue
			}
			dk, wrapped, err := s.keys.NewDataKey()
			if err != nil {
				return nil, err
			}
			made[string(h)] = dk
			ins = append(ins, h, wrapped, toDB(s.stamp()))
		}
		if len(ins) == 0 {
			continue
		}
		rows, err := tx.QueryContext(ctx, `INSERT INTO person_keys (email_hash, wrapped_key, claimed_at) VALUES `+
			s.engine.placeholders(len(ins)/3, 3, 1)+` ON CONFLICT (email_hash) DO NOTHING RETURNING email_hash`, ins...)
		if err != nil {
			return nil, translate(err)
		}
		for rows.Next() {
			var h []byte
			if err := rows.Scan(&h); err != nil {
				rows.Close()
				return nil, err
			}
			out[string(h)] = made[string(h)]
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, translate(err)
		}
		// Another node made some of them meanwhile (PostgreSQL): theirs count.
		var lost [][]byte
		for _, h := range part {
			if out[string(h)] == nil {
				lost = append(lost, h)
			}
		}
		if err := s.readKeys(ctx, tx, lost, out); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit key store: %w", err)
	}
	return out, nil
}

// claimKeys marks found keys as in use, so that the orphan sweep, which deletes keys
// long unclaimed and without a person, cannot delete one that a writer is about to
// seal with. Only keys not claimed for an hour are written, to spare bulk imports.
func (s *Store) claimKeys(ctx context.Context, tx *sql.Tx, hashes [][]byte) error {
	args := make([]any, 0, len(hashes)+2)
	now := s.stamp()
	args = append(args, toDB(now), toDB(now.Add(-time.Hour)))
	for _, h := range hashes {
		args = append(args, h)
	}
	_, err := tx.ExecContext(ctx, `UPDATE person_keys SET claimed_at = `+s.engine.param(1)+` WHERE claimed_at < `+s.engine.param(2)+
		` AND email_hash IN (`+s.engine.inList(len(hashes), 3)+`)`, args...)
	return err
}

// readKeys adds the stored keys of hashes to out.
func (s *Store) readKeys(ctx context.Context, tx *sql.Tx, hashes [][]byte, out map[string]*keys.DataKey) error {
	if len(hashes) == 0 {
		return nil
	}
	args := make([]any, len(hashes))
	for i, h := range hashes {
		args[i] = h
	}
	rows, err := tx.QueryContext(ctx, `SELECT email_hash, wrapped_key FROM person_keys WHERE email_hash IN (`+
		s.engine.inList(len(hashes), 1)+`)`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var h, wrapped []byte
		if err := rows.Scan(&h, &wrapped); err != nil {
			return err
		}
		dk, err := s.keys.UnwrapDataKey(wrapped)
		if err != nil {
			return err
		}
		out[string(h)] = dk
	}
	return rows.Err()
}

// ensureKey is ensureKeys for one address.
func (s *Store) ensureKey(ctx context.Context, addr tidings.Address) (*keys.DataKey, error) {
	h := s.keys.Lookup(addr.String())
	m, err := s.ensureKeys(ctx, [][]byte{h})
	if err != nil {
		return nil, err
	}
	return m[string(h)], nil
}

// errKeyGone: the person was erased between ensureKey and the transaction that needed
// their key. Nothing was written; asking again creates a new key.
var errKeyGone = fmt.Errorf("%w: the address was erased at this very moment; please try again", tidings.ErrConflict)

// orphanKeyAge is how old a key with no person must be before the sweep deletes it: far
// longer than any transaction that may still be about to create its person.
const orphanKeyAge = 24 * time.Hour

// SweepOrphanKeys deletes keys whose person does not exist and that nobody claimed for a
// day: left by a crash between an erasure's two commits, or by a sign-up refused after
// its key was made.
func (s *Store) SweepOrphanKeys(ctx context.Context) (int64, error) {
	cutoff := toDB(s.stamp().Add(-orphanKeyAge))
	rows, err := s.r.QueryContext(ctx, `SELECT k.email_hash FROM person_keys k WHERE k.claimed_at < $1
		AND NOT EXISTS (SELECT 1 FROM persons p WHERE p.email_hash = k.email_hash)`, cutoff)
	if err != nil {
		return 0, err
	}
	var orphans [][]byte
	for rows.Next() {
		var h []byte
		if err := rows.Scan(&h); err != nil {
			rows.Close()
			return 0, err
		}
		orphans = append(orphans, h)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	var n int64
	for _, h := range orphans {
		// Still unclaimed: a writer that found the key since has claimed it.
		res, err := s.kw.ExecContext(ctx, `DELETE FROM person_keys WHERE email_hash = $1 AND claimed_at < $2`, h, cutoff)
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
// while tx still holds the data's write lock, so no sign-up can claim the key in
// between; if tx then fails, the person's rows stay behind without their key, unreadable
// as the erasure wanted, and a repeated erasure removes them.
func (s *Store) deleteKey(ctx context.Context, tx *sql.Tx, emailHash []byte) error {
	q := `DELETE FROM person_keys WHERE email_hash = $1`
	var err error
	if s.engine.keysInDataTx() {
		_, err = tx.ExecContext(ctx, q, emailHash)
	} else {
		_, err = s.kw.ExecContext(ctx, q, emailHash)
	}
	return err
}

// keyStoreMigration is the migration that drops persons.wrapped_key.
const keyStoreMigration = 19

// moveKeysToKeyStore copies the wrapped keys of a database from before the key store into
// it, in transactions of the key store alone, so that migration 19 can drop them from
// persons. Copying again is harmless.
func (s *Store) moveKeysToKeyStore(ctx context.Context) error {
	v, err := s.goose.GetDBVersion(ctx)
	if err != nil {
		return fmt.Errorf("sqlstore: migration state: %w", err)
	}
	if v == 0 || v >= keyStoreMigration {
		return nil
	}
	rows, err := s.r.QueryContext(ctx, `SELECT email_hash, wrapped_key, created_at FROM persons`)
	if err != nil {
		return fmt.Errorf("sqlstore: read keys to move: %w", err)
	}
	defer rows.Close()
	var batch []any
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		_, err := s.kw.ExecContext(ctx, `INSERT INTO person_keys (email_hash, wrapped_key, claimed_at) VALUES `+
			s.engine.placeholders(len(batch)/3, 3, 1)+` ON CONFLICT (email_hash) DO NOTHING`, batch...)
		batch = batch[:0]
		return err
	}
	for rows.Next() {
		var h, wrapped []byte
		var created int64
		if err := rows.Scan(&h, &wrapped, &created); err != nil {
			return err
		}
		if batch = append(batch, h, wrapped, created); len(batch) == 3*500 {
			if err := flush(); err != nil {
				return fmt.Errorf("sqlstore: move keys: %w", err)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if err := flush(); err != nil {
		return fmt.Errorf("sqlstore: move keys: %w", err)
	}
	return nil
}
