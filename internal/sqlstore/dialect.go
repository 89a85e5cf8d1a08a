package sqlstore

import (
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/tidings/tidings/internal/tidings"
)

// This file is the only one that knows which engine is underneath. Everything else is
// plain SQL with $1 placeholders that both SQLite and PostgreSQL understand.

// Engine names a database engine.
type Engine string

const (
	SQLite   Engine = "sqlite"
	Postgres Engine = "postgres"
)

// parseURL splits a Tidings database URL into the engine and the driver's DSN.
// Forms: "sqlite:PATH", "sqlite://PATH", "postgres://…", "postgresql://…".
func parseURL(u string) (Engine, string, error) {
	switch {
	case strings.HasPrefix(u, "postgres://"), strings.HasPrefix(u, "postgresql://"):
		return Postgres, u, nil
	case strings.HasPrefix(u, "sqlite:"):
		path := strings.TrimPrefix(strings.TrimPrefix(u, "sqlite:"), "//")
		if path == "" {
			return "", "", errors.New("database URL: sqlite: needs a file path, like sqlite:./tidings-data/tidings.db")
		}
		return SQLite, path, nil
	}
	return "", "", fmt.Errorf("database URL: must start with sqlite: or postgres://")
}

// sqliteDSN builds the DSN for one pool. WAL lets readers run beside the writer;
// synchronous=NORMAL is durable across application crashes in WAL mode (an OS crash may
// lose the last transactions, never corrupt); busy_timeout waits instead of failing.
// The write pool begins transactions IMMEDIATE, so a transaction never has to upgrade
// its read lock (which SQLite answers with SQLITE_BUSY, not with waiting).
func sqliteDSN(path string, writer bool) string {
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "busy_timeout(10000)", "foreign_keys(1)", "synchronous(NORMAL)"} {
		q.Add("_pragma", p)
	}
	if writer {
		q.Set("_txlock", "immediate")
		// A 16 MB page cache for the one writer (default 2 MB) spares bulk imports most
		// mid-transaction spills; 64 MB imported ~20% faster but cost the server its
		// memory budget (peak RSS 187 MB instead of 93 MB sending to 100,000).
		q.Add("_pragma", "cache_size(-16384)")
		// The Store checkpoints from a reader connection (checkpointLoop); the writer's
		// own checkpoint, at 10,000 pages (40 MB) instead of 1000, is the backstop that
		// lets the WAL start over under constant writes.
		q.Add("_pragma", "wal_autocheckpoint(10000)")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	return "file:" + abs + "?" + q.Encode()
}

func (e Engine) gooseDialect() goose.Dialect {
	if e == Postgres {
		return goose.DialectPostgres
	}
	return goose.DialectSQLite3
}

func (e Engine) driver() string {
	if e == Postgres {
		return "pgx"
	}
	return "sqlite"
}

// translate maps engine errors to the domain's sentinels by error code, never by text.
func translate(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return tidings.ErrNotFound
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%w: %v", tidings.ErrConflict, err)
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return fmt.Errorf("%w: %v", tidings.ErrNotFound, err)
		}
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505": // unique_violation
			return fmt.Errorf("%w: %v", tidings.ErrConflict, err)
		case "23503": // foreign_key_violation
			return fmt.Errorf("%w: %v", tidings.ErrNotFound, err)
		}
	}
	return err
}

// param is the n-th (1-based) bind parameter. Most statements write $n, which both
// engines accept; but SQLite keeps $n (and ?n) in a list of *named* parameters that
// the driver searches linearly for every bind, which turns a bulk insert with
// thousands of parameters quadratic. Bulk statements therefore use anonymous ? on
// SQLite, and must list their arguments in the order the parameters appear.
func (e Engine) param(n int) string {
	if e == SQLite {
		return "?"
	}
	return "$" + strconv.Itoa(n)
}

// values returns rows tuples of cols for a multi-row INSERT. Each "?" in cols is the
// next parameter; the other cols are SQL literals (lit, quote), for what every row
// shares: written into a statement prepared once, instead of bound again on every row.
func (e Engine) values(rows int, cols ...string) string {
	var b strings.Builder
	n := 1
	for r := 0; r < rows; r++ {
		if r > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for c, col := range cols {
			if c > 0 {
				b.WriteByte(',')
			}
			if col == "?" {
				b.WriteString(e.param(n))
				n++
			} else {
				b.WriteString(col)
			}
		}
		b.WriteByte(')')
	}
	return b.String()
}

// inList returns "$start,…" for n parameters, for IN (…).
func (e Engine) inList(n, start int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(e.param(start + i))
	}
	return b.String()
}

// matchAny returns a FROM item and a condition that pick the rows whose column col
// equals one of n bound values. The FROM item goes just before the table's name: it is
// empty on PostgreSQL, whose condition is an IN list. On SQLite the values are a table
// of their own, joined to the indexed column: SQLite sorts an IN list into a temporary
// B-tree before looking its values up, which for an import's look-ups of 2,000 keys
// cost as much as the look-ups did, while a VALUES table is stored as it comes.
func (e Engine) matchAny(col string, n int) (from, cond string) {
	if e == SQLite {
		return `(VALUES ` + e.values(n, "?") + `) AS bound JOIN `, col + ` = bound.column1`
	}
	return "", col + ` IN (` + e.inList(n, 1) + `)`
}

// bytesLit is b as an SQL literal of bytes.
func (e Engine) bytesLit(b []byte) string {
	if e == Postgres {
		return `'\x` + hex.EncodeToString(b) + `'::bytea`
	}
	return `X'` + hex.EncodeToString(b) + `'`
}

// blob is the column type of bytes.
func (e Engine) blob() string {
	if e == Postgres {
		return "BYTEA"
	}
	return "BLOB"
}

// serialKey is the column definition of an integer primary key numbered by the engine.
func (e Engine) serialKey() string {
	if e == Postgres {
		return "BIGSERIAL PRIMARY KEY"
	}
	return "INTEGER PRIMARY KEY"
}

// resetKeySequence moves PostgreSQL's key numbering past keys inserted with their own
// IDs (moved from persons); SQLite numbers after the largest ID by itself.
func (e Engine) resetKeySequence() string {
	if e == Postgres {
		return `SELECT setval(pg_get_serial_sequence('person_keys', 'id'), (SELECT MAX(id) FROM person_keys))`
	}
	return ""
}

// keysInDataTx tells whether the data's transactions can write the key store: on
// PostgreSQL it is a schema of the same database; on SQLite another file, attached
// read-only (keystore.go).
func (e Engine) keysInDataTx() bool { return e == Postgres }

// ledgerOfPerson names the ledger for a query of one person's entries in one account
// (person_id and account_id): on SQLite, with the index that finds them. Without
// statistics SQLite's planner rates the primary key's account_id as good a start as
// ledger_person's (person_id, account_id) and walks the account's whole ledger; an
// erasure at a million entries took 150 ms a statement. PostgreSQL plans from its
// statistics.
func (e Engine) ledgerOfPerson() string {
	if e == SQLite {
		return "ledger INDEXED BY ledger_person"
	}
	return "ledger"
}

// forShare keeps a row read inside a transaction from being deleted before it ends, on
// PostgreSQL; SQLite's single writer already excludes that.
func (e Engine) forShare() string {
	if e == Postgres {
		return " FOR SHARE"
	}
	return ""
}

// forKeyShare keeps the rows a SELECT reads from being deleted (or their key changed)
// until the transaction ends, on PostgreSQL, without holding up updates of their other
// columns: a DELETE, and a SELECT … FOR UPDATE before one, waits for it. SQLite's single
// writer already excludes that.
func (e Engine) forKeyShare() string {
	if e == Postgres {
		return " FOR KEY SHARE"
	}
	return ""
}

// newID is the ID of a new persons or subscribers row, for INSERT … (id, …) VALUES. On
// PostgreSQL the identity sequence, which never repeats an ID. SQLite would give the
// largest ID again after that row was deleted, and an erased person's old links and
// ledger rows would then name someone else: IDs count on from the largest ever deleted
// (id_floors, kept by triggers).
func (e Engine) newID(table string) string {
	if e == Postgres {
		return "DEFAULT"
	}
	return `(SELECT max(floor, COALESCE((SELECT MAX(id) FROM ` + table + `), 0)) + 1 FROM id_floors WHERE name = '` + table + `')`
}

// forUpdate locks the rows a SELECT reads until the transaction ends. On SQLite the one
// writer already excludes everyone else.
func (e Engine) forUpdate() string {
	if e == Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// bulkInsert begins the importer's multi-row inserts. SQLite keeps a statement journal
// for an insert of many rows that may fail halfway, so that it can undo that statement
// alone: for the persons' randomly ordered lookup index, a copy of a thousand pages per
// batch. OR FAIL stops at the failing row and keeps the statement's earlier rows, which
// needs no journal; the importer never goes on after an error, its whole transaction is
// rolled back.
func (e Engine) bulkInsert() string {
	if e == SQLite {
		return "INSERT OR FAIL INTO"
	}
	return "INSERT INTO"
}

// batchedUpdates tells whether many rows are best changed by one UPDATE … FROM
// (VALUES …) per few hundred rows, or by a prepared UPDATE per row. On PostgreSQL each
// statement is a round trip and a parse/plan on the server, so a group commit of 500
// delivery records went from 500 statements to 3 (campaign benchmark ~3,400 -> ~5,200
// msgs/s). SQLite runs in process, where a statement is cheap, and its planner walks the
// whole target table for an UPDATE … FROM, so it keeps one statement per row.
func (e Engine) batchedUpdates() bool { return e == Postgres }

// skipLocked makes a claiming subquery pass over rows another transaction holds, so that
// nodes sharing a PostgreSQL database claim different batches without waiting on each
// other. SQLite has one writer at a time and no row locks.
func (e Engine) skipLocked() string {
	if e == Postgres {
		return " FOR UPDATE SKIP LOCKED"
	}
	return ""
}

// bulkSession prepares a long bulk transaction. On PostgreSQL the tables an import fills
// grow inside one transaction, where autovacuum cannot refresh their statistics: the
// planner keeps believing they are empty and scans them whole for every batch, which
// makes a large import quadratic. Index lookups are always right for these statements.
func (e Engine) bulkSession() string {
	if e == Postgres {
		return "SET LOCAL enable_seqscan = off"
	}
	return ""
}
