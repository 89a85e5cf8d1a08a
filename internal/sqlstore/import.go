package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/tidings/tidings/internal/keys"
	"github.com/tidings/tidings/internal/tidings"
)

// importer is a bulk import inside one write transaction. Each Add works on a whole
// batch with a handful of statements (IN lists and multi-row inserts) instead of
// several statements per row: that is what makes a million rows take seconds.
type importer struct {
	s         *Store
	tx        *sql.Tx
	accountID int64
	listID    int64
	evidence  []byte // the declaration as JSON, sealed per person
	now       time.Time
	seq       int64  // ledger head
	head      []byte // ledger head hash
	stmts     map[string]*sql.Stmt
	rows      int // rows handed to Add, for the statistics refresh after a big import
}

// prepared returns the statement for query, prepared once per import: full batches
// repeat the same shapes, and parsing a statement with thousands of parameters costs
// more than running it.
func (im *importer) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := im.stmts[query]; ok {
		return st, nil
	}
	st, err := im.tx.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	im.stmts[query] = st
	return st, nil
}

func (im *importer) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := im.prepared(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (im *importer) exec(ctx context.Context, q string, args ...any) error {
	st, err := im.prepared(ctx, q)
	if err != nil {
		return err
	}
	_, err = st.ExecContext(ctx, args...)
	return translate(err)
}

func (s *Store) BeginImport(ctx context.Context, accountID, listID int64, d tidings.ImportDeclaration) (tidings.Importer, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	ev, _ := json.Marshal(tidings.Evidence{Note: fmt.Sprintf("import; source: %s; lawful basis: %s", d.Source, d.LawfulBasis)})
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	im := &importer{s: s, tx: tx, accountID: accountID, listID: listID, evidence: ev, now: s.stamp(), stmts: map[string]*sql.Stmt{}}
	if q := s.engine.bulkSession(); q != "" {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			tx.Rollback()
			return nil, err
		}
	}
	if err := tx.QueryRowContext(ctx, `SELECT 1 FROM lists WHERE account_id = $1 AND id = $2`, accountID, listID).Scan(new(int)); err != nil {
		tx.Rollback()
		return nil, translate(err)
	}
	// Take the ledger head for the whole import: the row stays locked until the end.
	if _, err := tx.ExecContext(ctx, `INSERT INTO ledger_heads (account_id, seq, hash) VALUES ($1, 0, $2) ON CONFLICT (account_id) DO NOTHING`,
		accountID, genesis); err != nil {
		tx.Rollback()
		return nil, err
	}
	if err := tx.QueryRowContext(ctx, `UPDATE ledger_heads SET seq = seq WHERE account_id = $1 RETURNING seq, hash`, accountID).
		Scan(&im.seq, &im.head); err != nil {
		tx.Rollback()
		return nil, err
	}
	return im, nil
}

func (im *importer) Commit() error {
	if _, err := im.tx.Exec(`UPDATE ledger_heads SET seq = $2, hash = $3 WHERE account_id = $1`, im.accountID, im.seq, im.head); err != nil {
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

// analyzeAfterRows is the import size after which table statistics are refreshed.
const analyzeAfterRows = 10000

func (im *importer) Rollback() error { return im.tx.Rollback() }

// row is one import row on its way through the batch.
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

func (im *importer) Add(ctx context.Context, in []tidings.ImportRow) ([]tidings.ImportResult, error) {
	im.rows += len(in)
	rows := make([]*importRow, len(in))
	for i, r := range in {
		addr := r.Email.String()
		rows[i] = &importRow{ImportRow: r, lookup: im.s.keys.Lookup(addr), suppress: im.s.keys.SuppressionHash(addr),
			result: tidings.ImportResult{Row: r.Row}}
	}
	steps := []func(context.Context, []*importRow) ([]*importRow, error){
		im.dropSuppressed, im.resolvePersons, im.resolveSubscribers, im.subscribe,
	}
	live := rows
	for _, step := range steps {
		var err error
		if live, err = step(ctx, live); err != nil {
			return nil, err
		}
	}
	out := make([]tidings.ImportResult, len(rows))
	for i, r := range rows {
		out[i] = r.result
	}
	return out, nil
}

func (im *importer) placeholders(rows, cols, start int) string {
	return im.s.engine.placeholders(rows, cols, start)
}

func (im *importer) inList(n, start int) string { return im.s.engine.inList(n, start) }

func (im *importer) dropSuppressed(ctx context.Context, rows []*importRow) ([]*importRow, error) {
	args := []any{im.accountID}
	for _, r := range rows {
		args = append(args, r.suppress)
	}
	q, err := im.query(ctx, `SELECT hash, reason FROM suppressions WHERE account_id IN (`+im.s.engine.param(1)+`, 0) AND hash IN (`+im.inList(len(rows), 2)+`)`, args...)
	if err != nil {
		return nil, err
	}
	held := map[string]string{}
	for q.Next() {
		var h []byte
		var reason string
		q.Scan(&h, &reason)
		held[string(h)] = reason
	}
	q.Close()
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

// resolvePersons finds or creates each row's person and data key.
func (im *importer) resolvePersons(ctx context.Context, rows []*importRow) ([]*importRow, error) {
	if len(rows) == 0 {
		return rows, nil
	}
	byHash := map[string][]*importRow{}
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
	q, err := im.query(ctx, `SELECT email_hash, id, key_id FROM persons WHERE email_hash IN (`+im.inList(len(args), 1)+`)`, args...)
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
	// New people: their keys first, committed on their own (keystore.go), then the persons.
	var missing [][]byte
	for _, a := range args {
		if h := a.([]byte); byHash[string(h)][0].personID == 0 {
			missing = append(missing, h)
		}
	}
	if len(missing) == 0 {
		return rows, nil
	}
	ids, newDKs, err := im.s.newKeys(ctx, len(missing))
	if err != nil {
		return nil, err
	}
	ins := make([]any, 0, 3*len(missing))
	keyOf := make(map[string]*keys.DataKey, len(missing))
	for i, h := range missing {
		ins = append(ins, h, ids[i], toDB(im.now))
		keyOf[string(h)] = newDKs[i]
	}
	q, err = im.query(ctx, `INSERT INTO persons (email_hash, key_id, created_at) VALUES `+im.placeholders(len(missing), 3, 1)+
		` RETURNING email_hash, id`, ins...)
	if err != nil {
		return nil, translate(err)
	}
	for q.Next() {
		var h []byte
		var id int64
		if err := q.Scan(&h, &id); err != nil {
			q.Close()
			return nil, err
		}
		found(h, id, keyOf[string(h)], true)
	}
	q.Close()
	if err := q.Err(); err != nil {
		return nil, translate(err)
	}
	return rows, nil
}

// resolveSubscribers finds the account's existing subscribers and creates the rest.
func (im *importer) resolveSubscribers(ctx context.Context, rows []*importRow) ([]*importRow, error) {
	if len(rows) == 0 {
		return rows, nil
	}
	// Only people who existed before this batch can already be subscribers: asking
	// about the others would make the statement grow with nothing to find.
	byPerson := map[int64]*importRow{}
	args := []any{im.accountID}
	for _, r := range rows {
		byPerson[r.personID] = r
		if !r.newPerson {
			args = append(args, r.personID)
		}
	}
	if len(args) > 1 {
		q, err := im.query(ctx, `SELECT person_id, id FROM subscribers WHERE account_id = `+im.s.engine.param(1)+` AND person_id IN (`+im.inList(len(args)-1, 2)+`)`, args...)
		if err != nil {
			return nil, err
		}
		for q.Next() {
			var pid, id int64
			q.Scan(&pid, &id)
			byPerson[pid].subscriberID = id
		}
		q.Close()
	}
	var ins []any
	for _, r := range rows {
		if r.subscriberID != 0 {
			continue
		}
		sub := tidings.Subscriber{AccountID: im.accountID, PersonID: r.personID, Email: r.Email, Name: r.Name, Attributes: r.Attributes}
		sub.Normalize()
		enc, err := seal(r.dk, &sub)
		if err != nil {
			return nil, err
		}
		ins = append(ins, im.accountID, r.personID, enc.email, enc.name, enc.attrs, string(tidings.StatusActive), false, toDB(im.now), toDB(im.now))
	}
	if len(ins) > 0 {
		q, err := im.query(ctx, `INSERT INTO subscribers (account_id, person_id, email_enc, name_enc, attributes_enc, status,
			tracking_consent, created_at, updated_at) VALUES `+im.placeholders(len(ins)/9, 9, 1)+` RETURNING person_id, id`, ins...)
		if err != nil {
			return nil, translate(err)
		}
		for q.Next() {
			var pid, id int64
			q.Scan(&pid, &id)
			byPerson[pid].subscriberID, byPerson[pid].newSubscriber = id, true
		}
		q.Close()
		if err := q.Err(); err != nil {
			return nil, translate(err)
		}
	}
	return rows, nil
}

// subscribe confirms each row's subscription to the list under the declaration, and
// records it in the ledger. Existing confirmed subscriptions are left alone; people who
// left this list are not put back.
func (im *importer) subscribe(ctx context.Context, rows []*importRow) ([]*importRow, error) {
	if len(rows) == 0 {
		return rows, nil
	}
	args := []any{im.listID}
	for _, r := range rows {
		if !r.newSubscriber {
			args = append(args, r.subscriberID)
		}
	}
	existing := map[int64]string{}
	if len(args) > 1 {
		q, err := im.query(ctx, `SELECT subscriber_id, status FROM subscriptions WHERE list_id = `+im.s.engine.param(1)+` AND subscriber_id IN (`+im.inList(len(args)-1, 2)+`)`, args...)
		if err != nil {
			return nil, err
		}
		for q.Next() {
			var id int64
			var st string
			q.Scan(&id, &st)
			existing[id] = st
		}
		q.Close()
	}
	var ins, upd []any
	var added []*importRow
	for _, r := range rows {
		switch existing[r.subscriberID] {
		case "confirmed":
			r.result.Status, r.result.Reason = tidings.ImportExisting, "already subscribed to this list"
			continue
		case "unsubscribed":
			r.result.Status, r.result.Reason = tidings.ImportUnsubscribed, "unsubscribed from this list earlier; only the person can subscribe again"
			continue
		case "unconfirmed":
			upd = append(upd, r.subscriberID)
		default:
			ins = append(ins, im.listID, r.subscriberID, im.accountID, "confirmed", toDB(im.now), toDB(im.now))
		}
		r.result.Status = tidings.ImportAdded
		added = append(added, r)
	}
	if len(ins) > 0 {
		if err := im.exec(ctx, `INSERT INTO subscriptions (list_id, subscriber_id, account_id, status, created_at, confirmed_at) VALUES `+
			im.placeholders(len(ins)/6, 6, 1), ins...); err != nil {
			return nil, translate(err)
		}
	}
	if len(upd) > 0 {
		if _, err := im.tx.ExecContext(ctx, `UPDATE subscriptions SET status = 'confirmed', confirmed_at = `+im.s.engine.param(1)+` WHERE list_id = `+im.s.engine.param(2)+` AND subscriber_id IN (`+
			im.inList(len(upd), 3)+`)`, append([]any{toDB(im.now), im.listID}, upd...)...); err != nil {
			return nil, err
		}
	}
	return added, im.ledger(ctx, added)
}

// ledger appends one "imported" entry per added subscription, chained in row order.
func (im *importer) ledger(ctx context.Context, rows []*importRow) error {
	const cols = 13
	var args []any
	for _, r := range rows {
		e := tidings.LedgerEntry{AccountID: im.accountID, Seq: im.seq + 1, Time: im.now, Kind: tidings.LedgerImported,
			PersonID: r.personID, ListID: im.listID, Source: tidings.SourceImport, PrevHash: im.head}
		e.EvidenceSealed = r.dk.Seal(im.evidence, evidenceAAD(im.accountID, r.personID))
		sum := sha256.Sum256(e.EvidenceSealed)
		e.EvidenceSHA256 = sum[:]
		e.Hash = e.ComputeHash()
		im.seq, im.head = e.Seq, e.Hash
		args = append(args, e.AccountID, e.Seq, toDB(e.Time), string(e.Kind), e.PersonID, e.ListID, string(e.Source), 0, nil,
			e.EvidenceSHA256, e.EvidenceSealed, e.PrevHash, e.Hash)
	}
	for len(args) > 0 {
		n := min(len(args)/cols, 500)
		batch := args[:n*cols]
		args = args[n*cols:]
		if err := im.exec(ctx, `INSERT INTO ledger (account_id, seq, created_at, kind, person_id, list_id, source, text_version,
			text_sha256, evidence_sha256, evidence_sealed, prev_hash, hash) VALUES `+im.placeholders(n, cols, 1), batch...); err != nil {
			return translate(err)
		}
	}
	return nil
}
