package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidings/tidings/internal/keys"
	"github.com/tidings/tidings/internal/tidings"
)

// importer is a bulk import inside one write transaction. Each Add works on a whole
// batch with a handful of statements (look-ups of many keys, multi-row inserts) instead
// of several statements per row: that is what makes a million rows take seconds.
type importer struct {
	s              *Store
	conn           *sql.Conn // the connection of tx, held so that its session settings can be restored
	restore        []string  // SQLite: statements that undo the session settings (sqliteSession)
	tx             *sql.Tx
	accountID      int64
	listID         int64
	evidence       []byte // the declaration as JSON: every entry's evidence, stored once (shared_evidence)
	evidenceSHA256 []byte
	now            time.Time
	seq            int64  // ledger head
	head           []byte // ledger head hash
	mu             sync.Mutex
	stmts          map[stmtKey]*sql.Stmt
	driverStmts    map[stmtKey]driver.Stmt // the transaction's writes, on its driver connection (exec)
	values         []driver.NamedValue     // exec's arguments, reused
	rows           int                     // rows handed to Add, for the statistics refresh after a big import

	// The writer (see Add): prepared batches wait in queue, in order, for the goroutine
	// that writes them; it closes written when it stops. writeErr is the first write
	// that failed: set before failed is closed, and nothing more is written after it.
	queue     chan batch
	written   chan struct{}
	failed    chan struct{}
	writeErr  error
	abandoned atomic.Bool // Rollback: the queued batches are not to be written
	stopOnce  sync.Once

	counted    bool            // SQLite: IDs are numbered from nextID, not taken from sequences
	numbered   map[string]bool // SQLite: tables whose first imported row is written (insertNumbered)
	keyCommits sync.WaitGroup  // key store commits under way (newKeys)
	nextID     [2]int64        // SQLite: the next person and subscriber IDs (after MAX(id) at the start)

	// SQLite: the per-row trigger that counts new subscriptions is dropped inside the
	// import's transaction and created again at Commit; the importer counts instead.
	countTrigger string // the trigger's CREATE statement
	inserted     int64  // subscriptions inserted (all confirmed, at now)

	// SQLite: a big import builds the persons' email index once, at Commit (deferIndex).
	personsBefore int64  // persons before the import, by their largest ID
	newPersons    int64  // persons the import has written so far
	emailIndex    string // the index's CREATE statement, once dropped
}

// prepared returns the statement name for n rows, built and prepared once per import:
// full batches repeat the same shapes, and building or parsing a statement with
// thousands of parameters costs more than running it. Names ending in "?" are look-ups,
// prepared on the readers' pool (see Add); in "#", writes to the key store (newKeys).
// The transaction's writes have statements of their own (exec).
func (im *importer) prepared(ctx context.Context, name string, n int, build func() string) (*sql.Stmt, error) {
	im.mu.Lock() // the batch being written and the one being prepared share the statements
	defer im.mu.Unlock()
	key := stmtKey{name, n}
	if st, ok := im.stmts[key]; ok {
		return st, nil
	}
	var on preparer = im.s.r
	if strings.HasSuffix(name, "#") {
		on = im.s.kw
	}
	st, err := on.PrepareContext(ctx, build())
	if err != nil {
		return nil, err
	}
	im.stmts[key] = st
	return st, nil
}

type stmtKey struct {
	name string
	rows int
}

// preparer prepares statements: a transaction, or a pool.
type preparer interface {
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

func (im *importer) query(ctx context.Context, name string, n int, build func() string, args ...any) (*sql.Rows, error) {
	st, err := im.prepared(ctx, name, n, build)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// exec runs a write of the import on its transaction's own driver connection
// (sql.Conn.Raw), past database/sql, which would check each of a statement's thousands
// of arguments and copy them all into a new []driver.NamedValue, every time: 4% of the
// writer's time (the import's critical path) and 8% of the import's allocations. The
// importer's arguments are int64 and []byte, values every driver takes as they are.
// Only the writing goroutine uses the transaction (Add), so the connection is free
// whenever exec runs.
func (im *importer) exec(ctx context.Context, name string, n int, build func() string, args ...any) (driver.Result, error) {
	var res driver.Result
	err := im.conn.Raw(func(dc any) error {
		key := stmtKey{name, n}
		st, ok := im.driverStmts[key]
		if !ok {
			var err error
			if st, err = dc.(driver.ConnPrepareContext).PrepareContext(ctx, build()); err != nil {
				return err
			}
			im.driverStmts[key] = st
		}
		im.values = im.values[:0]
		for i, a := range args {
			im.values = append(im.values, driver.NamedValue{Ordinal: i + 1, Value: a})
		}
		var err error
		res, err = st.(driver.StmtExecContext).ExecContext(ctx, im.values)
		return err
	})
	return res, translate(err)
}

func (s *Store) BeginImport(ctx context.Context, accountID, listID int64, d tidings.ImportDeclaration) (tidings.Importer, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	now := s.stamp()
	ev, _ := json.Marshal(tidings.Evidence{Time: now, Note: fmt.Sprintf("import; source: %s; lawful basis: %s", d.Source, d.LawfulBasis)})
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(ev)
	im := &importer{s: s, conn: conn, accountID: accountID, listID: listID, evidence: ev, evidenceSHA256: sum[:], now: now,
		stmts: map[stmtKey]*sql.Stmt{}, driverStmts: map[stmtKey]driver.Stmt{}, numbered: map[string]bool{}}
	if err := im.begin(ctx); err != nil {
		if im.tx != nil {
			im.tx.Rollback()
		}
		im.end()
		return nil, err
	}
	im.queue, im.written, im.failed = make(chan batch, writeAhead), make(chan struct{}), make(chan struct{})
	go im.writeQueued()
	return im, nil
}

func (im *importer) begin(ctx context.Context) error {
	if im.s.engine == SQLite {
		if err := im.sqliteSession(ctx); err != nil {
			return err
		}
	}
	tx, err := im.conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	im.tx = tx
	if q := im.s.engine.bulkSession(); q != "" {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	if err := tx.QueryRowContext(ctx, `SELECT 1 FROM lists WHERE account_id = $1 AND id = $2`, im.accountID, im.listID).Scan(new(int)); err != nil {
		return translate(err)
	}
	if im.s.engine == SQLite {
		// A trigger on subscriptions keeps the list's counters, four statements per row;
		// the import counts its rows and updates the counters once, at Commit. Dropped
		// and re-created in this transaction, the trigger is never missing for anyone
		// else, and a rolled-back import restores it with everything else.
		if err := tx.QueryRowContext(ctx, `SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'subscriptions_counts_insert'`).
			Scan(&im.countTrigger); err != nil {
			return fmt.Errorf("import: the list counter trigger: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DROP TRIGGER subscriptions_counts_insert`); err != nil {
			return err
		}
	}
	if im.s.engine == SQLite {
		// The import is the only writer until it ends: IDs are numbered here, as an
		// insert would (Engine.newID), so that rows are sealed, chained and written
		// without asking back.
		im.counted = true
		if err := tx.QueryRowContext(ctx, `SELECT `+im.s.engine.newID("persons")+`, `+im.s.engine.newID("subscribers")).
			Scan(&im.nextID[0], &im.nextID[1]); err != nil {
			return err
		}
		im.personsBefore = im.nextID[0] - 1
	}
	// The declaration is every entry's evidence, and says nothing about any one person:
	// stored once, not sealed a million times under a million keys (migration 35).
	if _, err := tx.ExecContext(ctx, `INSERT INTO shared_evidence (account_id, sha256, body, created_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (account_id, sha256) DO NOTHING`, im.accountID, im.evidenceSHA256, im.evidence, toDB(im.now)); err != nil {
		return err
	}
	// Take the ledger head for the whole import: the row stays locked until the end.
	if _, err := tx.ExecContext(ctx, `INSERT INTO ledger_heads (account_id, seq, hash) VALUES ($1, 0, $2) ON CONFLICT (account_id) DO NOTHING`,
		im.accountID, genesis); err != nil {
		return err
	}
	return tx.QueryRowContext(ctx, `UPDATE ledger_heads SET seq = seq WHERE account_id = $1 RETURNING seq, hash`, im.accountID).
		Scan(&im.seq, &im.head)
}

// sqliteSession sets the SQLite writer connection up for one big transaction, before it
// begins; end restores the settings. Durability is untouched (same journal, same
// synchronous setting): these change how much work each row costs, not what a commit
// promises.
//
//   - foreign_keys off: every reference the import writes is to a row it checked or
//     created itself in the same transaction (the list and its account at the start,
//     persons and subscribers as it goes), and no one else can write meanwhile. The
//     checks cost six index lookups per row, and they make SQLite keep a statement
//     journal for every multi-row insert (Engine.bulkInsert).
//   - cache_size importCacheKiB: the persons' lookup index takes its entries in random
//     order, so a big import touches every one of its pages again and again; with the
//     writer's usual 16 MB cache, most of them are read back and spilled to the WAL
//     again. The pages are only taken as they are used: a small import costs nothing.
//     A million rows: 16 MB 20k rows/s (peak RSS 194 MB), 64 MB 29k (285 MB), 256 MB
//     30k (653 MB).
//   - wal_autocheckpoint off: the commit of a big import would copy the whole WAL (the
//     import's every page, a million rows 2.5 s) into the database before returning.
//     The Store's checkpointLoop does the same a moment later, off the import's path
//     and without holding the write lock.
//   - threads 2: a big import builds the persons' email index again at its end
//     (deferIndex), and SQLite then sorts the hashes' runs on two threads, not one
//     (see finish).
func (im *importer) sqliteSession(ctx context.Context) error {
	set := []struct{ pragma, value string }{
		{"foreign_keys", "OFF"},
		{"cache_size", "-" + lit(importCacheKiB)},
		{"wal_autocheckpoint", "0"},
		{"threads", "2"},
	}
	for _, p := range set {
		var was string
		if err := im.conn.QueryRowContext(ctx, `PRAGMA `+p.pragma).Scan(&was); err != nil {
			return err
		}
		im.restore = append(im.restore, `PRAGMA `+p.pragma+` = `+was)
		if _, err := im.conn.ExecContext(ctx, `PRAGMA `+p.pragma+` = `+p.value); err != nil {
			return err
		}
	}
	return nil
}

// importCacheKiB is the SQLite page cache of an import's connection, in KiB.
const importCacheKiB = 64 << 10

// indexSortKiB is the page cache, in KiB, while a big import builds the persons' email
// index at its end (finish): the size of SQLite's sort runs.
const indexSortKiB = 16 << 10

// end restores the connection's settings and returns it to the pool; a connection whose
// settings cannot be restored is closed instead (the pool opens a fresh one).
func (im *importer) end() {
	im.keyCommits.Wait()
	for _, st := range im.stmts {
		st.Close()
	}
	im.stmts = nil
	if im.conn == nil {
		return
	}
	im.conn.Raw(func(any) error {
		for _, st := range im.driverStmts {
			st.Close()
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, q := range im.restore {
		if _, err := im.conn.ExecContext(ctx, q); err != nil {
			im.conn.Raw(func(any) error { return driver.ErrBadConn })
			break
		}
	}
	im.conn.Close()
	im.conn = nil
}

func (im *importer) Commit() error {
	defer im.end()
	if err := im.stopWriter(); err != nil {
		im.tx.Rollback()
		return err
	}
	if err := im.finish(); err != nil {
		im.tx.Rollback()
		return err
	}
	if err := im.tx.Commit(); err != nil {
		return err
	}
	// A big import changes the tables faster than PostgreSQL's autovacuum re-reads their
	// statistics; until it does, the planner takes a million-row list for a small one
	// and hash-joins it whole (seconds for a page of subscribers). Refresh them now.
	if im.s.engine == Postgres && im.rows >= analyzeAfterRows {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		im.s.w.ExecContext(ctx, `ANALYZE subscribers, subscriptions, persons`)
	}
	return nil
}

// finish writes what the import kept to the end: the ledger head and, on SQLite, the
// list's counters (what the dropped trigger would have added row by row) and the
// trigger itself.
func (im *importer) finish() error {
	if _, err := im.tx.Exec(`UPDATE ledger_heads SET seq = $2, hash = $3 WHERE account_id = $1`, im.accountID, im.seq, im.head); err != nil {
		return err
	}
	if im.emailIndex != "" {
		// SQLite sorts in runs as big as the page cache, each on a thread of its own
		// (PRAGMA threads), and then merges them: with the import's 64 MB a million
		// hashes were one run, sorted on one core in 2.5 s; in runs of 16 MB both cores
		// sort, 1.9 s (8 MB: no better). end restores the cache size.
		if _, err := im.tx.Exec(`PRAGMA cache_size = -` + lit(indexSortKiB)); err != nil {
			return err
		}
		if _, err := im.tx.Exec(im.emailIndex); err != nil {
			return fmt.Errorf("import: build the persons' email index again: %w", translate(err))
		}
	}
	if im.countTrigger == "" {
		return nil
	}
	if im.inserted > 0 {
		if _, err := im.tx.Exec(`INSERT INTO list_counts (list_id, confirmed) VALUES ($1, $2)
			ON CONFLICT (list_id) DO UPDATE SET confirmed = confirmed + excluded.confirmed`, im.listID, im.inserted); err != nil {
			return err
		}
		if _, err := im.tx.Exec(`INSERT INTO list_daily (list_id, day, kind, n) VALUES ($1, $2 / 86400000000, 'subscribed', $3), ($1, $2 / 86400000000, 'confirmed', $3)
			ON CONFLICT (list_id, day, kind) DO UPDATE SET n = n + excluded.n`, im.listID, toDB(im.now), im.inserted); err != nil {
			return err
		}
	}
	_, err := im.tx.Exec(im.countTrigger)
	return err
}

// analyzeAfterRows is the import size after which table statistics are refreshed.
const analyzeAfterRows = 10000

func (im *importer) Rollback() error {
	defer im.end()
	im.abandoned.Store(true)
	im.stopWriter()
	return im.tx.Rollback()
}

// importRow is one import row on its way through the batch.
type importRow struct {
	tidings.ImportRow
	lookup, suppress []byte
	personID         int64
	dk               *keys.DataKey
	subscriberID     int64
	newPerson        bool // created by this batch: has no subscriber yet
	newSubscriber    bool // created by this batch: has no subscription yet
	result           tidings.ImportResult
}

// writes is a prepared batch: the rows to write, every value computed (IDs, sealed
// fields, ledger links), in the order of the statements' columns.
type writes struct {
	keys        <-chan error // the commit of the batch's new keys (newKeys)
	persons     []any        // id, email_hash, key_id
	subscribers []any        // id, person_id, email_enc, name_enc, attributes_enc
	subscribe   []any        // subscriber_id (new subscriptions)
	confirm     []any        // subscriber_id (unconfirmed subscriptions made confirmed)
	ledger      []any        // seq, person_id, prev_hash, hash
}

// Add prepares the batch — look-ups, IDs, keys, sealing, ledger links — and queues it
// for the writer, a goroutine that runs the batches' inserts on the transaction's
// connection, in order, while the next batches are prepared: the connection then runs
// nothing but inserts, while the other core looks up, encrypts and hashes. The queue
// holds writeAhead batches, so that neither side waits for the other's slowest batch.
// The rows' results are known once the batch is prepared; an error in writing it ends
// the import at the next call, like any error. The keys of a batch's new persons are
// committed while the rest of it is prepared, and write waits for that commit: a key is
// stored before any person that points at it.
//
// The look-ups run on the readers' pool, beside the transaction, and see what was
// committed: each address comes once per import (the importer drops duplicates before
// the store sees them), so nothing this import writes is looked up again. On SQLite no
// one else can commit while the import holds the write lock, so the readers see what
// the transaction would. On PostgreSQL, under READ COMMITTED, a look-up inside the
// transaction would see the same committed rows; a row another transaction writes
// meanwhile (a person, a subscriber) makes the import fail on a unique index either way.
func (im *importer) Add(ctx context.Context, in []tidings.ImportRow) ([]tidings.ImportResult, error) {
	select {
	case <-im.failed:
		return nil, im.writeErr
	default:
	}
	im.rows += len(in)
	out, w, err := im.prepare(ctx, in)
	if err != nil {
		return nil, err
	}
	select {
	case im.queue <- batch{ctx, w}:
		return out, nil
	case <-im.failed:
		return nil, im.writeErr
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// writeAhead is how many prepared batches may wait for the writer. With the writer and
// the preparation in lockstep (one batch each, the faster waiting for the slower), a
// million rows took 10.6 s of which the writer wrote for 8.7.
const writeAhead = 2

// batch is a prepared batch in the writer's queue, with the context of the Add that
// prepared it.
type batch struct {
	ctx context.Context
	w   *writes
}

// writeQueued is the writer: it writes the queued batches in order until the queue is
// closed. After a failed write, or once the import is abandoned, it only empties the
// queue.
func (im *importer) writeQueued() {
	defer close(im.written)
	for b := range im.queue {
		if im.writeErr != nil || im.abandoned.Load() {
			continue
		}
		if err := im.write(b.ctx, b.w); err != nil {
			im.writeErr = err
			close(im.failed)
		}
	}
}

// stopWriter closes the queue, waits until every batch in it is written, and returns
// the first write's error.
func (im *importer) stopWriter() error {
	if im.queue == nil {
		return nil
	}
	im.stopOnce.Do(func() { close(im.queue) })
	<-im.written
	return im.writeErr
}

func (im *importer) prepare(ctx context.Context, in []tidings.ImportRow) ([]tidings.ImportResult, *writes, error) {
	rows := make([]*importRow, len(in))
	for i, r := range in {
		addr := r.Email.String()
		rows[i] = &importRow{ImportRow: r, lookup: im.s.keys.Lookup(addr), suppress: im.s.keys.SuppressionHash(addr),
			result: tidings.ImportResult{Row: r.Row}}
	}
	w := &writes{}
	steps := []func(context.Context, []*importRow, *writes) ([]*importRow, error){
		im.dropSuppressed, im.resolvePersons, im.resolveSubscribers, im.subscribe,
	}
	live := rows
	for _, step := range steps {
		var err error
		if live, err = step(ctx, live, w); err != nil {
			return nil, nil, err
		}
	}
	out := make([]tidings.ImportResult, len(rows))
	for i, r := range rows {
		out[i] = r.result
	}
	return out, w, nil
}

// newIDs numbers n new rows of persons (table 0) or subscribers (table 1).
func (im *importer) newIDs(ctx context.Context, table int, n int) ([]int64, error) {
	ids := make([]int64, 0, n)
	if im.counted {
		for range n {
			ids = append(ids, im.nextID[table])
			im.nextID[table]++
		}
		return ids, nil
	}
	name := [...]string{"persons", "subscribers"}[table]
	q, err := im.s.r.QueryContext(ctx, `SELECT nextval(pg_get_serial_sequence('`+name+`', 'id')) FROM generate_series(1, $1)`, n)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	for q.Next() {
		var id int64
		if err := q.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	if err := q.Err(); err != nil {
		return nil, err
	}
	if len(ids) != n {
		return nil, fmt.Errorf("import: %d new %s IDs for %d rows", len(ids), name, n)
	}
	return ids, nil
}

// write runs a prepared batch's inserts and updates, in chunks of up to writeChunk rows.
func (im *importer) write(ctx context.Context, w *writes) error {
	if w.keys != nil {
		if err := <-w.keys; err != nil {
			return fmt.Errorf("commit key store: %w", err)
		}
	}
	if err := im.deferIndex(ctx, len(w.persons)/3); err != nil {
		return err
	}
	now := lit(toDB(im.now))
	e := im.s.engine
	steps := []struct {
		name     string
		cols     int
		numbered bool // the first column is the row's ID: see insertNumbered
		args     []any
		build    func(n int, id bool) string
	}{
		{"persons+", 3, true, w.persons, func(n int, id bool) string {
			return e.bulkInsert() + ` persons (` + idColumn(id) + `email_hash, key_id, created_at) VALUES ` + e.values(n, idValue(id, "?", "?", now)...)
		}},
		{"subscribers+", 5, true, w.subscribers, func(n int, id bool) string {
			return e.bulkInsert() + ` subscribers (` + idColumn(id) + `account_id, person_id, email_enc, name_enc, attributes_enc, status,
			tracking_consent, created_at, updated_at) VALUES ` + e.values(n, idValue(id, lit(im.accountID), "?", "?", "?", "?",
				quote(string(tidings.StatusActive)), "FALSE", now, now)...)
		}},
		{"subscriptions+", 1, false, w.subscribe, func(n int, _ bool) string {
			return e.bulkInsert() + ` subscriptions (list_id, subscriber_id, account_id, status, created_at, confirmed_at) VALUES ` +
				e.values(n, lit(im.listID), "?", lit(im.accountID), quote(string(tidings.SubConfirmed)), now, now)
		}},
		{"subscriptions=", 1, false, w.confirm, func(n int, _ bool) string {
			return `UPDATE subscriptions SET status = 'confirmed', confirmed_at = ` + now + ` WHERE list_id = ` + lit(im.listID) +
				` AND subscriber_id IN (` + e.inList(n, 1) + `)`
		}},
		{"ledger+", 4, false, w.ledger, func(n int, _ bool) string {
			return e.bulkInsert() + ` ledger (account_id, seq, created_at, kind, person_id, list_id, source, text_version,
			text_sha256, evidence_sha256, evidence_sealed, prev_hash, hash) VALUES ` + e.values(n, lit(im.accountID), "?", now,
				quote(string(tidings.LedgerImported)), "?", lit(im.listID), quote(string(tidings.SourceImport)), "0", "NULL",
				e.bytesLit(im.evidenceSHA256), "NULL", "?", "?")
		}},
	}
	for _, st := range steps {
		if st.numbered && im.counted {
			if err := im.insertNumbered(ctx, st.name, st.cols, st.args, st.build); err != nil {
				return err
			}
			continue
		}
		for args := st.args; len(args) > 0; {
			n := min(len(args)/st.cols, writeChunk)
			chunk := args[:n*st.cols]
			args = args[n*st.cols:]
			if _, err := im.exec(ctx, st.name, n, func() string { return st.build(n, true) }, chunk...); err != nil {
				return err
			}
		}
	}
	im.inserted += int64(len(w.subscribe))
	return nil
}

// deferIndex drops the persons' unique email index (SQLite) once the import has written
// n more persons and, with them, as many as there were before it, and at least
// deferIndexAfter; finish builds it again. Keyed hashes come in random order, so each
// one inserted lands on a page of its own in the index: at a million persons that cost
// 3.3 µs a row, more than all the import's other indexes together, where building the
// index from the sorted hashes costs 1.4 µs per person in the table, the import's and
// those from before. Past the threshold the build is the cheaper, and the more so the
// bigger the import.
//
// Nothing needs the index meanwhile. The import's look-ups run on the readers' pool,
// which sees the committed schema, index included; no one else writes until the import
// ends, and the importer gives each new address one person. The build checks the
// uniqueness again: a duplicate would fail the import as a whole, and a rollback puts
// the index back as it was.
func (im *importer) deferIndex(ctx context.Context, n int) error {
	im.newPersons += int64(n)
	if im.s.engine != SQLite || im.emailIndex != "" || im.newPersons < max(im.personsBefore, deferIndexAfter) {
		return nil
	}
	if err := im.tx.QueryRowContext(ctx, `SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'persons_email_hash'`).
		Scan(&im.emailIndex); err != nil {
		return fmt.Errorf("import: the persons' email index: %w", err)
	}
	_, err := im.tx.ExecContext(ctx, `DROP INDEX persons_email_hash`)
	return err
}

// deferIndexAfter is the fewest new persons for which an import builds the persons'
// email index again rather than inserting into it (deferIndex). Below it the index is
// small, or the import is: either way it takes a fraction of a second.
var deferIndexAfter int64 = 50_000

// insertNumbered inserts rows whose IDs the importer numbered (SQLite), letting SQLite
// number them instead, and checks that it numbered them alike.
//
// An INSERT of many rows that names an INTEGER PRIMARY KEY makes SQLite keep a statement
// journal, in case a value is not an integer: a copy of every page the statement
// changes, which for the persons' randomly ordered lookup index is a thousand pages per
// batch, a third of the import's time. Without the column SQLite numbers each row one
// past the table's largest ID, which is the importer's numbering from the second row
// on; the first row of the import is written with its ID, alone, because the importer
// starts past IDs once used and since deleted (Engine.newID), which SQLite would reuse.
func (im *importer) insertNumbered(ctx context.Context, name string, cols int, args []any, build func(n int, id bool) string) error {
	if len(args) == 0 {
		return nil
	}
	if !im.numbered[name] {
		if _, err := im.exec(ctx, name+"1", 1, func() string { return build(1, true) }, args[:cols]...); err != nil {
			return err
		}
		im.numbered[name] = true
		args = args[cols:]
	}
	for len(args) > 0 {
		n := min(len(args)/cols, writeChunk)
		values := make([]any, 0, n*(cols-1))
		for r := range n {
			values = append(values, args[r*cols+1:(r+1)*cols]...)
		}
		last := args[(n-1)*cols].(int64)
		args = args[n*cols:]
		res, err := im.exec(ctx, name, n, func() string { return build(n, false) }, values...)
		if err != nil {
			return err
		}
		if id, err := res.LastInsertId(); err != nil || id != last {
			return fmt.Errorf("import: %s: SQLite numbered the last row %d, the importer %d (%v)", strings.TrimSuffix(name, "+"), id, last, err)
		}
	}
	return nil
}

// idColumn and idValue put the ID column first in an insert's columns and values, or leave it out.
func idColumn(id bool) string {
	if id {
		return "id, "
	}
	return ""
}

func idValue(id bool, values ...string) []string {
	if id {
		return append([]string{"?"}, values...)
	}
	return values
}

// writeChunk is the most rows one statement writes: under both engines' parameter limits.
const writeChunk = 1000

func lit(n int64) string { return strconv.FormatInt(n, 10) }

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func (im *importer) dropSuppressed(ctx context.Context, rows []*importRow, _ *writes) ([]*importRow, error) {
	args := make([]any, 0, len(rows))
	for _, r := range rows {
		args = append(args, r.suppress)
	}
	q, err := im.query(ctx, "suppressions?", len(rows), func() string {
		from, cond := im.s.engine.matchAny("s.hash", len(rows))
		return `SELECT s.hash, s.reason FROM ` + from + `suppressions s WHERE s.account_id IN (` + lit(im.accountID) + `, 0) AND ` + cond
	}, args...)
	if err != nil {
		return nil, err
	}
	held := map[string]string{}
	for q.Next() {
		var h []byte
		var reason string
		if err := q.Scan(&h, &reason); err != nil {
			q.Close()
			return nil, err
		}
		held[string(h)] = reason
	}
	q.Close()
	if err := q.Err(); err != nil {
		return nil, err
	}
	var live []*importRow
	for _, r := range rows {
		if reason, ok := held[string(r.suppress)]; ok {
			r.result.Status = tidings.ImportSuppressed
			r.result.Reason = "the address is suppressed (" + reason + "); only the person can subscribe again"
			continue
		}
		live = append(live, r)
	}
	return live, nil
}

// resolvePersons finds or numbers each row's person, and their data key.
func (im *importer) resolvePersons(ctx context.Context, rows []*importRow, w *writes) ([]*importRow, error) {
	if len(rows) == 0 {
		return rows, nil
	}
	byHash := make(map[string][]*importRow, len(rows))
	args := make([]any, 0, len(rows))
	for _, r := range rows {
		if _, seen := byHash[string(r.lookup)]; !seen {
			args = append(args, r.lookup)
		}
		byHash[string(r.lookup)] = append(byHash[string(r.lookup)], r)
	}
	found := func(hash []byte, id int64, dk *keys.DataKey, created bool) {
		for _, r := range byHash[string(hash)] {
			r.personID, r.dk, r.newPerson = id, dk, created
		}
	}
	// Known people, and their keys (read from the pool: see readKeys).
	q, err := im.query(ctx, "persons?", len(args), func() string {
		from, cond := im.s.engine.matchAny("p.email_hash", len(args))
		return `SELECT p.email_hash, p.id, p.key_id FROM ` + from + `persons p WHERE ` + cond
	}, args...)
	if err != nil {
		return nil, err
	}
	type known struct {
		hash      []byte
		id, keyID int64
	}
	var knowns []known
	var keyIDs []int64
	for q.Next() {
		var k known
		if err := q.Scan(&k.hash, &k.id, &k.keyID); err != nil {
			q.Close()
			return nil, err
		}
		knowns, keyIDs = append(knowns, k), append(keyIDs, k.keyID)
	}
	q.Close()
	if err := q.Err(); err != nil {
		return nil, err
	}
	dks, err := im.s.readKeys(ctx, im.s.r, keyIDs)
	if err != nil {
		return nil, err
	}
	for _, k := range knowns {
		if dks[k.keyID] == nil {
			return nil, errKeyGone
		}
		found(k.hash, k.id, dks[k.keyID], false)
	}
	// New people: their keys first, committed on their own (keystore.go), before the
	// batch is written.
	var missing [][]byte
	for _, a := range args {
		if h := a.([]byte); byHash[string(h)][0].personID == 0 {
			missing = append(missing, h)
		}
	}
	if len(missing) == 0 {
		return rows, nil
	}
	ids, err := im.newIDs(ctx, 0, len(missing))
	if err != nil {
		return nil, err
	}
	keyIDs, newDKs, err := im.newKeys(ctx, len(missing), w)
	if err != nil {
		return nil, err
	}
	w.persons = make([]any, 0, 3*len(missing))
	for i, h := range missing {
		w.persons = append(w.persons, ids[i], h, keyIDs[i])
		found(h, ids[i], newDKs[i], true)
	}
	return rows, nil
}

// newKeys makes n data keys for the batch's new persons, like Store.newKeys, but
// commits them beside the rest of the batch's preparation: write waits for w.keys
// before it inserts the persons that point at them. The commit waits for the disk
// (the key store is synchronous=FULL), a millisecond or more per batch.
func (im *importer) newKeys(ctx context.Context, n int, w *writes) ([]int64, []*keys.DataKey, error) {
	// The statements are prepared before the transaction takes SQLite's one key store
	// connection.
	stmt := func(m int) (*sql.Stmt, error) {
		return im.prepared(ctx, "keys#", m, func() string { return im.s.insertKeysSQL(m) })
	}
	for _, m := range []int{min(n, keyChunk), n % keyChunk} {
		if m == 0 {
			continue
		}
		if _, err := stmt(m); err != nil {
			return nil, nil, err
		}
	}
	tx, err := im.s.kw.BeginTx(ctx, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("begin key store: %w", err)
	}
	ids, dks, err := im.s.insertKeys(ctx, tx, n, stmt)
	if err != nil {
		tx.Rollback()
		return nil, nil, err
	}
	done := make(chan error, 1)
	im.keyCommits.Add(1)
	go func() {
		defer im.keyCommits.Done()
		done <- tx.Commit()
	}()
	w.keys = done
	return ids, dks, nil
}

// resolveSubscribers finds the account's existing subscribers and makes the rest,
// sealed.
func (im *importer) resolveSubscribers(ctx context.Context, rows []*importRow, w *writes) ([]*importRow, error) {
	if len(rows) == 0 {
		return rows, nil
	}
	// Only people who existed before this batch can already be subscribers: asking
	// about the others would make the statement grow with nothing to find.
	byPerson := make(map[int64]*importRow, len(rows))
	var args []any
	for _, r := range rows {
		byPerson[r.personID] = r
		if !r.newPerson {
			args = append(args, r.personID)
		}
	}
	if len(args) > 0 {
		q, err := im.query(ctx, "subscribers?", len(args), func() string {
			from, cond := im.s.engine.matchAny("s.person_id", len(args))
			return `SELECT s.person_id, s.id FROM ` + from + `subscribers s WHERE s.account_id = ` + lit(im.accountID) + ` AND ` + cond
		}, args...)
		if err != nil {
			return nil, err
		}
		for q.Next() {
			var pid, id int64
			if err := q.Scan(&pid, &id); err != nil {
				q.Close()
				return nil, err
			}
			byPerson[pid].subscriberID = id
		}
		q.Close()
		if err := q.Err(); err != nil {
			return nil, err
		}
	}
	var fresh []*importRow
	for _, r := range rows {
		if r.subscriberID == 0 {
			fresh = append(fresh, r)
		}
	}
	if len(fresh) == 0 {
		return rows, nil
	}
	ids, err := im.newIDs(ctx, 1, len(fresh))
	if err != nil {
		return nil, err
	}
	w.subscribers = make([]any, 0, 5*len(fresh))
	for i, r := range fresh {
		sub := tidings.Subscriber{AccountID: im.accountID, PersonID: r.personID, Email: r.Email, Name: r.Name, Attributes: r.Attributes}
		sub.Normalize()
		enc, err := seal(r.dk, &sub)
		if err != nil {
			return nil, err
		}
		r.subscriberID, r.newSubscriber = ids[i], true
		w.subscribers = append(w.subscribers, ids[i], r.personID, enc.email, enc.name, enc.attrs)
	}
	return rows, nil
}

// subscribe confirms each row's subscription to the list under the declaration, and
// records it in the ledger. Existing confirmed subscriptions are left alone; people who
// left this list are not put back.
func (im *importer) subscribe(ctx context.Context, rows []*importRow, w *writes) ([]*importRow, error) {
	if len(rows) == 0 {
		return rows, nil
	}
	var args []any
	for _, r := range rows {
		if !r.newSubscriber {
			args = append(args, r.subscriberID)
		}
	}
	existing := map[int64]string{}
	if len(args) > 0 {
		q, err := im.query(ctx, "subscriptions?", len(args), func() string {
			from, cond := im.s.engine.matchAny("s.subscriber_id", len(args))
			return `SELECT s.subscriber_id, s.status FROM ` + from + `subscriptions s WHERE s.list_id = ` + lit(im.listID) + ` AND ` + cond
		}, args...)
		if err != nil {
			return nil, err
		}
		for q.Next() {
			var id int64
			var st string
			if err := q.Scan(&id, &st); err != nil {
				q.Close()
				return nil, err
			}
			existing[id] = st
		}
		q.Close()
		if err := q.Err(); err != nil {
			return nil, err
		}
	}
	added := make([]*importRow, 0, len(rows))
	w.subscribe = make([]any, 0, len(rows))
	for _, r := range rows {
		switch existing[r.subscriberID] {
		case "confirmed":
			r.result.Status, r.result.Reason = tidings.ImportExisting, "already subscribed to this list"
			continue
		case "unsubscribed":
			r.result.Status, r.result.Reason = tidings.ImportUnsubscribed, "unsubscribed from this list earlier; only the person can subscribe again"
			continue
		case "unconfirmed":
			w.confirm = append(w.confirm, r.subscriberID)
		default:
			w.subscribe = append(w.subscribe, r.subscriberID)
		}
		r.result.Status = tidings.ImportAdded
		added = append(added, r)
	}
	im.chain(added, w)
	return added, nil
}

// chain makes one "imported" ledger entry per added subscription, linked in row order,
// each with the import's declaration as its (shared) evidence.
func (im *importer) chain(rows []*importRow, w *writes) {
	w.ledger = make([]any, 0, 4*len(rows))
	for _, r := range rows {
		e := tidings.LedgerEntry{AccountID: im.accountID, Seq: im.seq + 1, Time: im.now, Kind: tidings.LedgerImported,
			PersonID: r.personID, ListID: im.listID, Source: tidings.SourceImport, EvidenceSHA256: im.evidenceSHA256, PrevHash: im.head}
		e.Hash = e.ComputeHash()
		im.seq, im.head = e.Seq, e.Hash
		w.ledger = append(w.ledger, e.Seq, e.PersonID, e.PrevHash, e.Hash)
	}
}
