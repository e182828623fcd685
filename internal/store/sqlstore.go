package store

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"weak"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// sqlStore implements Store over database/sql for both backends.
type sqlStore struct {
	d      dialect
	schema string
	role   string // PostgreSQL role every transaction switches to, or ""
	// w serves writes; r serves reads. On SQLite w has one connection (the
	// single writer, so writers queue in Go rather than in SQLite's busy
	// handler) and r several; on PostgreSQL they are the same pool.
	w, r  *sql.DB
	q     queries
	close func() error
	// stmts caches prepared statements by *sql.DB and text (SQLite only:
	// parsing dominates a small statement's cost there, while pgx already
	// caches statements per connection).
	stmts sync.Map // stmtKey -> *sql.Stmt
	// begin opens a PostgreSQL write transaction (see pgBegin).
	begin string
	// prepared: the statements a role store prepared on each connection
	// (see roleQuery).
	prepared *connStatements
}

type stmtKey struct {
	db   *sql.DB
	text string
}

// prepareAll prepares the fixed statements on both pools (SQLite only:
// parsing dominates a small statement's cost there, while pgx caches
// statements per connection by itself). It runs before any transaction:
// the SQLite writer has a single connection, which a transaction holds.
func (s *sqlStore) prepareAll(ctx context.Context) error {
	if s.d.name != "sqlite" {
		return nil
	}
	for _, text := range s.q.all() {
		for _, db := range []*sql.DB{s.w, s.r} {
			st, err := db.PrepareContext(ctx, text)
			if err != nil {
				return fmt.Errorf("store: prepare: %w", err)
			}
			s.stmts.Store(stmtKey{db, text}, st)
		}
	}
	return nil
}

// stmt returns the prepared statement for text on db, or nil.
func (s *sqlStore) stmt(db *sql.DB, text string) *sql.Stmt {
	if v, ok := s.stmts.Load(stmtKey{db, text}); ok {
		return v.(*sql.Stmt)
	}
	return nil
}

// rowSet is what the scanners read: *sql.Rows, or the rows of a role
// store's batched read.
type rowSet interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close() error
}

// reader runs read statements: on the read pool (with SQLite's prepared
// statements), or, for a store that acts as a role, each in its own
// read-only transaction that first switches to the role (see roleQuery).
type reader struct {
	s  *sqlStore
	pg *pgx.Conn // role stores only
}

func (r reader) query(ctx context.Context, text string, args ...any) (rowSet, error) {
	if r.pg != nil {
		return r.s.roleQuery(ctx, r.pg, text, args)
	}
	if st := r.s.stmt(r.s.r, text); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return r.s.r.QueryContext(ctx, text, args...)
}

// oneRow is the result of reader.queryRow.
type oneRow struct {
	rows rowSet
	err  error
}

// Scan reads the first row into dest; no row is sql.ErrNoRows.
func (o oneRow) Scan(dest ...any) error {
	if o.err != nil {
		return o.err
	}
	defer o.rows.Close()
	if !o.rows.Next() {
		if err := o.rows.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	if err := o.rows.Scan(dest...); err != nil {
		return err
	}
	return o.rows.Close()
}

func (r reader) queryRow(ctx context.Context, text string, args ...any) oneRow {
	rows, err := r.query(ctx, text, args...)
	return oneRow{rows, err}
}

// read runs fn with a reader.
func read[T any](ctx context.Context, s *sqlStore, fn func(reader) (T, error)) (T, error) {
	// A connection the server ended fails once; the pool then drops it.
	for try := 0; ; try++ {
		out, err := readOnce(ctx, s, fn)
		if err == nil || try == 2 || !retryable(err) || ctx.Err() != nil {
			return out, poolerHint(err)
		}
		s.dropIdleIfBroken(err)
	}
}

func readOnce[T any](ctx context.Context, s *sqlStore, fn func(reader) (T, error)) (T, error) {
	if s.role == "" {
		return fn(reader{s: s})
	}
	var out T
	var fnErr error
	conn, err := s.r.Conn(ctx)
	if err != nil {
		return out, fmt.Errorf("store: connection: %w", err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		pc, err := pgxConn(dc)
		if err != nil {
			return err
		}
		out, fnErr = fn(reader{s: s, pg: pc})
		if !settle(ctx, pc) {
			return driver.ErrBadConn // not idle: the pool must not reuse it
		}
		return nil
	})
	if fnErr != nil {
		return out, fnErr
	}
	if err != nil && !errors.Is(err, driver.ErrBadConn) {
		return out, err
	}
	return out, nil
}

// pgxConn returns the pgx connection under a database/sql driver
// connection.
func pgxConn(dc any) (*pgx.Conn, error) {
	c, ok := dc.(*stdlib.Conn)
	if !ok {
		return nil, fmt.Errorf("store: a role store needs the pgx driver, not %T", dc)
	}
	return c.Conn(), nil
}

// settle makes sure pc is outside any transaction before it goes back to
// the pool, rolling back what an error left open. It reports false when
// the connection cannot be trusted and must be discarded.
func settle(ctx context.Context, pc *pgx.Conn) bool {
	if pc.IsClosed() {
		return false
	}
	if pc.PgConn().TxStatus() == 'I' {
		return true
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_, err := pc.Exec(rctx, "ROLLBACK")
	return err == nil && pc.PgConn().TxStatus() == 'I'
}

// roleQuery runs one read statement as the store's role, in a single
// round trip: BEGIN READ ONLY, SET LOCAL ROLE, the statement and COMMIT go
// to the server as one batch. The statement runs prepared, under a name
// derived from its text (unless the URL turns pgx's prepared statements
// off, for PgBouncer): prepared once per connection inside a transaction
// that has switched to the role (a statement is parsed by the role that
// prepares it, and the pool's own role may not see the tenant's schema),
// then executed under the role each time (privileges are checked at every
// execution). Under READ COMMITTED every statement sees its own snapshot
// anyway, so one transaction per statement reads what one transaction for
// several would.
func (s *sqlStore) roleQuery(ctx context.Context, pc *pgx.Conn, text string, args []any) (rowSet, error) {
	conn := pc.PgConn()
	rows, err := s.roleBatch(ctx, pc, text, args)
	if err != nil {
		s.forgetIfGone(conn, err)
		return nil, err
	}
	rows.onErr = func(err error) { s.forgetIfGone(conn, err) }
	return rows, nil
}

// forgetIfGone forgets the statements prepared on conn when err says one
// is gone from the server (DEALLOCATE or DISCARD ALL, a pooler that
// switched server connections): they are prepared again next time, and
// the read, whose error is retryable, runs again.
func (s *sqlStore) forgetIfGone(conn *pgconn.PgConn, err error) {
	var pe *pgconn.PgError
	if s.prepared != nil && errors.As(err, &pe) && pe.Code == "26000" {
		s.prepared.forget(conn)
	}
}

// roleBatch sends roleQuery's batch.
func (s *sqlStore) roleBatch(ctx context.Context, pc *pgx.Conn, text string, args []any) (*batchRows, error) {
	params, err := textParams(args)
	if err != nil {
		return nil, err
	}
	b := &pgconn.Batch{}
	b.ExecParams("BEGIN READ ONLY", nil, nil, nil, nil)
	b.ExecParams("SET LOCAL ROLE "+quoteIdent(s.role), nil, nil, nil, nil)
	if s.prepared != nil {
		name := stmtName(text)
		if !s.prepared.has(pc.PgConn(), text) {
			if err := s.prepareAsRole(ctx, pc, name, text); err != nil {
				return nil, err
			}
		}
		b.ExecPrepared(name, params, nil, nil)
	} else {
		// No named statements (PgBouncer): an unnamed one, parsed after
		// the switch, since the server reads the batch in order.
		b.ExecParams(text, params, nil, nil, nil)
	}
	b.ExecParams("COMMIT", nil, nil, nil, nil)
	mrr := pc.PgConn().ExecBatch(ctx, b)
	for _, what := range []string{"begin", "switching to the tenant role"} {
		if !mrr.NextResult() {
			return nil, fmt.Errorf("store: %s: %w", what, errors.Join(mrr.Close(), errBatchShort))
		}
		if _, err := mrr.ResultReader().Close(); err != nil {
			_ = mrr.Close()
			return nil, fmt.Errorf("store: %s: %w", what, err)
		}
	}
	if !mrr.NextResult() {
		return nil, errors.Join(mrr.Close(), errBatchShort)
	}
	return &batchRows{mrr: mrr, rr: mrr.ResultReader()}, nil
}

// prepareAsRole prepares a statement on pc as the store's role.
func (s *sqlStore) prepareAsRole(ctx context.Context, pc *pgx.Conn, name, text string) error {
	if _, err := pc.Exec(ctx, "BEGIN READ ONLY; SET LOCAL ROLE "+quoteIdent(s.role)); err != nil {
		return fmt.Errorf("store: switching to the tenant role: %w", err)
	}
	_, err := pc.PgConn().Prepare(ctx, name, text, nil)
	if err != nil {
		return fmt.Errorf("store: preparing a statement: %w", err)
	}
	if _, err := pc.Exec(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	s.prepared.add(pc.PgConn(), text)
	return nil
}

// stmtName names the prepared statement of a query text.
func stmtName(text string) string {
	h := fnv.New64a()
	h.Write([]byte(text))
	return "cloacina_" + strconv.FormatUint(h.Sum64(), 36)
}

// connStatements remembers which statement texts are prepared on which
// connection (keyed by text, not by name: two texts whose names collided
// would make the second Prepare fail, never run the wrong statement). A
// connection's entry goes when the connection is garbage collected (it is
// held weakly), so closed connections leave nothing.
type connStatements struct {
	mu sync.Mutex
	m  map[weak.Pointer[pgconn.PgConn]]map[string]bool
}

func (c *connStatements) has(conn *pgconn.PgConn, text string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[weak.Make(conn)][text]
}

// forget drops what is known of conn's statements.
func (c *connStatements) forget(conn *pgconn.PgConn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, weak.Make(conn))
}

func (c *connStatements) add(conn *pgconn.PgConn, text string) {
	key := weak.Make(conn)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[weak.Pointer[pgconn.PgConn]]map[string]bool{}
	}
	names := c.m[key]
	if names == nil {
		names = map[string]bool{}
		c.m[key] = names
		runtime.AddCleanup(conn, func(k weak.Pointer[pgconn.PgConn]) {
			c.mu.Lock()
			defer c.mu.Unlock()
			delete(c.m, k)
		}, key)
	}
	names[text] = true
}

var errBatchShort = errors.New("store: the server answered fewer statements than were sent")

// textParams encodes statement parameters in PostgreSQL's text format.
func textParams(args []any) ([][]byte, error) {
	params := make([][]byte, len(args))
	for i, a := range args {
		v, err := textParam(a)
		if err != nil {
			return nil, err
		}
		params[i] = v
	}
	return params, nil
}

// textParam encodes a statement parameter in PostgreSQL's text format.
func textParam(a any) ([]byte, error) {
	switch v := a.(type) {
	case nil:
		return nil, nil
	case string:
		return []byte(v), nil
	case []byte:
		return v, nil
	case int:
		return strconv.AppendInt(nil, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(nil, v, 10), nil
	case bool:
		return []byte(strconv.FormatBool(v)), nil
	}
	return nil, fmt.Errorf("store: unsupported parameter type %T", a)
}

// batchRows are the text-format rows of a statement sent through pgconn:
// roleQuery's, or a write transaction's. Once the rows are read (or
// closed), the rest of roleQuery's batch (the COMMIT) is read and Err
// reports the statement's error, if any.
type batchRows struct {
	mrr   *pgconn.MultiResultReader // nil: a lone statement
	rr    *pgconn.ResultReader
	err   error
	done  bool
	onErr func(error) // told of the statement's error, if any
	strs  map[string]string
}

func (b *batchRows) Next() bool {
	if b.done {
		return false
	}
	if b.rr.NextRow() {
		return true
	}
	b.finish()
	return false
}

func (b *batchRows) Err() error { return b.err }

func (b *batchRows) Close() error {
	b.finish()
	return b.err
}

// finish reads the rest of the statement's result and the COMMIT.
func (b *batchRows) finish() {
	if b.done {
		return
	}
	b.done = true
	if _, err := b.rr.Close(); err != nil {
		b.err = err
		if b.onErr != nil {
			b.onErr(err)
		}
	}
	if b.mrr == nil {
		return
	}
	if b.err == nil && b.mrr.NextResult() {
		if _, err := b.mrr.ResultReader().Close(); err != nil {
			b.err = fmt.Errorf("store: commit: %w", err)
		}
	}
	if err := b.mrr.Close(); err != nil && b.err == nil {
		b.err = err
	}
}

// Scan converts the current row's text values into dest.
func (b *batchRows) Scan(dest ...any) error {
	vals := b.rr.Values()
	if len(vals) != len(dest) {
		return fmt.Errorf("store: scan: %d columns into %d destinations", len(vals), len(dest))
	}
	for i, d := range dest {
		if sd, ok := d.(*string); ok && vals[i] != nil && len(vals[i]) <= maxInterned {
			*sd = b.intern(vals[i])
			continue
		}
		if err := scanText(vals[i], d); err != nil {
			return fmt.Errorf("store: scan column %d: %w", i, err)
		}
	}
	return nil
}

// maxInterned is the longest text that batchRows.intern keeps: statuses,
// workflow, task and worker names, which repeat from row to row; not ids.
const maxInterned = 32

// intern returns v as a string, the same string for the same text within
// one result: a claim's thousand rows share a few statuses and names.
func (b *batchRows) intern(v []byte) string {
	if s, ok := b.strs[string(v)]; ok {
		return s
	}
	if b.strs == nil {
		b.strs = map[string]string{}
	}
	s := string(v)
	b.strs[s] = s
	return s
}

// scanText stores a text-format column value (nil: NULL) in dest.
func scanText(v []byte, dest any) error {
	if sc, ok := dest.(sql.Scanner); ok {
		if v == nil {
			return sc.Scan(nil)
		}
		return sc.Scan(string(v))
	}
	if v == nil {
		if d, ok := dest.(*[]byte); ok { // as database/sql scans NULL
			*d = nil
			return nil
		}
		return fmt.Errorf("NULL into %T", dest)
	}
	switch d := dest.(type) {
	case *string:
		*d = string(v)
	case *[]byte:
		*d = bytes.Clone(v)
	case *int64:
		n, err := parseInt(v)
		*d = n
		return err
	case *int:
		n, err := parseInt(v)
		*d = int(n)
		return err
	case *bool:
		*d = len(v) > 0 && (v[0] == 't' || v[0] == 'T')
	default:
		return fmt.Errorf("unsupported destination %T", dest)
	}
	return nil
}

// parseInt parses an integer column; a numeric one (an aggregate) may
// carry a fraction, which is dropped.
func parseInt(v []byte) (int64, error) {
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err == nil {
		return n, nil
	}
	f, ferr := strconv.ParseFloat(string(v), 64)
	if ferr != nil {
		return 0, err
	}
	return int64(f), nil
}

// setRole switches the transaction to the store's role.
func (s *sqlStore) setRole(ctx context.Context, tx *sql.Tx) error {
	if s.role == "" {
		return nil
	}
	if _, err := tx.ExecContext(ctx, "SET LOCAL ROLE "+quoteIdent(s.role)); err != nil {
		return fmt.Errorf("store: switching to the tenant role: %w", err)
	}
	return nil
}

// query runs a statement inside the transaction.
func (t *sqlTx) query(ctx context.Context, text string, args ...any) (rowSet, error) {
	if t.pg != nil {
		return t.pgStatement(ctx, text, args)
	}
	if st := t.s.stmt(t.s.w, text); st != nil {
		return t.tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, text, args...)
}

func (t *sqlTx) exec(ctx context.Context, text string, args ...any) error {
	if t.pg != nil {
		rows, err := t.pgStatement(ctx, text, args)
		if err != nil {
			return err
		}
		return rows.Close()
	}
	if st := t.s.stmt(t.s.w, text); st != nil {
		_, err := t.tx.StmtContext(ctx, st).ExecContext(ctx, args...)
		return err
	}
	_, err := t.tx.ExecContext(ctx, text, args...)
	return err
}

// pgStatement runs a statement of a PostgreSQL write transaction through
// pgconn, below pgx's and database/sql's layers: a round's batches (the
// byte slices of rowArgs, a few hundred kilobytes) go to the wire as they
// are, where the layers above would copy each twice, and its rows come
// back as text, scanned without reflection. It runs
// prepared, as roleQuery's reads do (once per connection, under a name
// derived from its text), or unnamed where the URL turns prepared
// statements off (PgBouncer).
func (t *sqlTx) pgStatement(ctx context.Context, text string, args []any) (*batchRows, error) {
	params, err := textParams(args)
	if err != nil {
		return nil, err
	}
	conn := t.pg.PgConn()
	if t.s.prepared == nil {
		return &batchRows{rr: conn.ExecParams(ctx, text, params, nil, nil, nil)}, nil
	}
	name := stmtName(text)
	if !t.s.prepared.has(conn, text) {
		if _, err := conn.Prepare(ctx, name, text, nil); err != nil {
			t.s.forgetIfGone(conn, err)
			return nil, fmt.Errorf("store: preparing a statement: %w", err)
		}
		t.s.prepared.add(conn, text)
	}
	rows := &batchRows{rr: conn.ExecPrepared(ctx, name, params, nil, nil)}
	rows.onErr = func(err error) { t.s.forgetIfGone(conn, err) }
	return rows, nil
}

// queries holds the dialect-specific text of every statement, built once.
type queries struct {
	insertExecutions, insertTasks, insertEvents string
	claim, updateTasks, updateExecutions        string
	startExecutions                             string
	taskStates, completedContexts               string
	getExecution, listTasks, listEvents         string
	executionTasks                              string
	execInputs, taskOutcomes                    string
	nextReadyAt, runningTasks                   string
	heartbeat, cancelledTasks                   string
	metricsExec, metricsTasks                   string
}

const execCols = "id, workflow_name, workflow_version, status, input, output, error, created_at, started_at, completed_at, updated_at, started_by"

const taskCols = "id, execution_id, workflow_name, name, deps, status, attempt, ready_at, context, error, claimed_by, heartbeat_at, recovery_count, started_at, completed_at"

// claimCols are the columns a claim returns: those it does not set. The
// others it sets to what ClaimTasks knows (see scanClaimRows), or, for a
// Ready task, they hold nothing (no context, no completion).
const claimCols = "id, execution_id, workflow_name, name, deps, attempt, ready_at, recovery_count"

func buildQueries(d dialect) queries {
	var q queries
	q.insertExecutions = d.sql(`INSERT INTO {t}executions (id, workflow_name, workflow_version, status, input, created_at, updated_at)
SELECT id, workflow_name, workflow_version, status, input, created_at, created_at FROM ` + d.rows(1, execRow{}) + ` AS x`)
	q.insertTasks = d.sql(`INSERT INTO {t}tasks (execution_id, workflow_name, name, deps, status, ready_at)
SELECT execution_id, workflow_name, name, deps, status, ready_at FROM ` + d.rows(1, taskRow{}) + ` AS x`)
	q.insertEvents = d.sql(`INSERT INTO {t}events (execution_id, task_name, type, attempt, message, worker, created_at, more)
SELECT execution_id, task_name, type, attempt, message, worker, created_at, more FROM ` + d.rows(1, eventRow{}) + ` AS x`)
	// A root task's execution input and workflow version come back with
	// it (unqualified names: SQLite takes no table names in RETURNING), so
	// that starting it reads nothing more.
	//
	// The candidates are picked (and, on PostgreSQL, locked, skipping rows
	// other workers hold) in a CTE and joined by primary key, so the update
	// touches exactly those rows through the index. The update does not
	// test their status again: a picked row is locked by this transaction
	// (PostgreSQL rechecks the CTE's conditions on the row it locks) or,
	// on SQLite, by the one writer. A status test there would let the
	// planner, when its statistics lag, scan the ready-task index for the
	// update's rows and compare each with every picked id: 1,000 claims
	// took 330 ms that way instead of a few.
	//
	// The pick reads the execution's row anyway, to test its status, and
	// takes a root task's input and version from it; PostgreSQL returns
	// them from there. SQLite's RETURNING may not name the FROM items, so
	// there two subqueries read them again.
	rootCols := `picked.input, picked.version`
	if d.name == "sqlite" {
		rootCols = `CASE WHEN deps = '[]' THEN (SELECT e.input FROM {t}executions AS e WHERE e.id = execution_id) END,
  CASE WHEN deps = '[]' THEN (SELECT e.workflow_version FROM {t}executions AS e WHERE e.id = execution_id) ELSE '' END`
	}
	q.claim = d.sql(`WITH picked AS MATERIALIZED (
  SELECT c.id, CASE WHEN c.deps = '[]' THEN e.input END AS input,
    CASE WHEN c.deps = '[]' THEN e.workflow_version ELSE '' END AS version
  FROM {t}tasks AS c JOIN {t}executions AS e ON e.id = c.execution_id
  WHERE c.status = 'Ready' AND c.ready_at <= $2 AND e.status IN ('Pending', 'Running')
    AND c.workflow_name IN ` + d.list(4, "text") + `
  ORDER BY c.ready_at, c.id LIMIT $3 {lockskip})
UPDATE {t}tasks AS t SET status = 'Running', attempt = t.attempt + 1, claimed_by = $1,
  heartbeat_at = $2, started_at = $2, error = ''
FROM picked WHERE t.id = picked.id
RETURNING ` + d.returning("t.", claimCols) + `, ` + rootCols)
	q.updateTasks = d.sql(`UPDATE {t}tasks AS t SET
  status = u.to_status,
  context = COALESCE(u.context, t.context),
  error = u.error,
  ready_at = CASE WHEN u.ready_at > 0 THEN u.ready_at ELSE t.ready_at END,
  completed_at = CASE WHEN u.completed_at > 0 THEN u.completed_at ELSE t.completed_at END,
  claimed_by = CASE WHEN u.release THEN '' ELSE t.claimed_by END,
  heartbeat_at = CASE WHEN u.release THEN 0 ELSE t.heartbeat_at END,
  recovery_count = t.recovery_count + CASE WHEN u.recovered THEN 1 ELSE 0 END,
  attempt = t.attempt - CASE WHEN u.undo_attempt THEN 1 ELSE 0 END
FROM ` + d.rows(1, taskUpdateRow{}) + ` AS u
WHERE t.id = u.tid AND t.status = u.from_status
  AND (u.attempt = 0 OR t.attempt = u.attempt)
  AND (u.claimed_by = '' OR t.claimed_by = u.claimed_by)
  AND (u.claimed_at = 0 OR t.started_at = u.claimed_at)
RETURNING id`)
	q.updateExecutions = d.sql(`UPDATE {t}executions AS e SET
  status = u.to_status,
  output = COALESCE(u.output, e.output),
  error = CASE WHEN u.error <> '' THEN u.error ELSE e.error END,
  started_at = CASE WHEN e.started_at = 0 THEN u.started_at ELSE e.started_at END,
  started_by = CASE WHEN e.started_at = 0 AND u.started_at > 0 THEN u.started_by ELSE e.started_by END,
  completed_at = CASE WHEN u.completed_at > 0 THEN u.completed_at ELSE e.completed_at END,
  updated_at = $1
FROM ` + d.rows(2, execUpdateRow{}) + ` AS u
WHERE e.id = u.eid AND e.status IN (u.f1, u.f2, u.f3, u.f4)
RETURNING ` + d.returning("e.", "id, started_at, started_by"))
	// started_by is set with started_at, by the same test of the old
	// started_at (every SET expression reads the row as it was).
	q.startExecutions = d.sql(`UPDATE {t}executions SET status = 'Running',
  started_at = CASE WHEN started_at = 0 THEN $1 ELSE started_at END,
  started_by = CASE WHEN started_at = 0 THEN $4 ELSE started_by END, updated_at = $2
WHERE id IN ` + d.list(3, "uuid") + ` AND status = 'Pending'
RETURNING id`)
	// Sorted by id in Go, not in SQL: an ORDER BY id invites the planner,
	// when its statistics lag, to walk the whole primary key in order
	// rather than look the few executions up.
	q.taskStates = d.sql(`SELECT id, execution_id, workflow_name, name, deps, status, attempt, error FROM {t}tasks
WHERE execution_id IN ` + d.list(1, "uuid"))
	q.completedContexts = d.sql(`SELECT execution_id, name, context FROM {t}tasks
WHERE execution_id IN ` + d.list(1, "uuid") + ` AND status = 'Completed'`)
	q.getExecution = d.sql(`SELECT ` + execCols + ` FROM {t}executions WHERE id = $1`)
	q.listTasks = d.sql(`SELECT ` + taskCols + ` FROM {t}tasks WHERE execution_id = $1 ORDER BY id`)
	// One round trip for an execution and its tasks (what a result needs:
	// not the tasks' saved contexts): the execution's row (kind 0), then
	// its tasks' (kind 1), each a keyed lookup. Unordered (the tasks are
	// sorted in Go), so that no plan walks a whole table in order.
	q.executionTasks = d.sql(`SELECT 0, e.id, e.workflow_name, e.workflow_version, e.status, e.input, e.output,
 e.error, e.created_at, e.started_at, e.completed_at, e.updated_at, e.started_by,
 0, e.id, '', '', '[]', '', 0, 0, NULL, '', '', 0, 0, 0, 0
FROM {t}executions AS e WHERE e.id = $1
UNION ALL
SELECT 1, t.execution_id, '', '', '', '{}', NULL, '', 0, 0, 0, 0, NULL,
 t.id, t.execution_id, t.workflow_name, t.name, t.deps, t.status, t.attempt, t.ready_at, NULL, t.error,
 t.claimed_by, t.heartbeat_at, t.recovery_count, t.started_at, t.completed_at
FROM {t}tasks AS t WHERE t.execution_id = $1`)
	q.listEvents = d.sql(`SELECT id, task_name, type, attempt, message, worker, created_at, more
FROM {t}events WHERE execution_id = $1 AND id >= $2 ORDER BY id LIMIT $3`)
	q.execInputs = d.sql(`SELECT id, input FROM {t}executions WHERE id IN ` + d.list(1, "uuid"))
	q.taskOutcomes = d.sql(`SELECT t.execution_id, t.name, t.status, t.context FROM {t}tasks AS t
JOIN ` + d.rows(1, refRow{}) + ` AS u ON t.execution_id = u.eid AND t.name = u.tname`)
	q.nextReadyAt = d.sql(`SELECT c.ready_at FROM {t}tasks AS c JOIN {t}executions AS e ON e.id = c.execution_id
WHERE c.status = 'Ready' AND e.status IN ('Pending', 'Running') AND c.workflow_name IN ` + d.list(1, "text") + `
ORDER BY c.ready_at LIMIT 1`)
	q.runningTasks = d.sql(`SELECT ` + taskCols + ` FROM {t}tasks
WHERE status = 'Running' AND ($1 = '' OR claimed_by = $1) AND (CAST($2 AS BIGINT) = 0 OR heartbeat_at < $2)
ORDER BY heartbeat_at, id LIMIT $3`)
	q.heartbeat = d.sql(`UPDATE {t}tasks SET heartbeat_at = $2
WHERE id IN ` + d.list(3, "bigint") + ` AND claimed_by = $1 AND status = 'Running'
RETURNING id`)
	q.cancelledTasks = d.sql(`SELECT t.id FROM {t}tasks AS t JOIN {t}executions AS e ON e.id = t.execution_id
WHERE t.id IN ` + d.list(1, "bigint") + ` AND e.status = 'Cancelled'`)
	q.metricsExec = d.sql(`SELECT status, COUNT(*),
  COALESCE(SUM(CASE WHEN completed_at > 0 AND started_at > 0 THEN completed_at - started_at ELSE 0 END), 0),
  COALESCE(SUM(CASE WHEN completed_at > 0 AND started_at > 0 THEN 1 ELSE 0 END), 0)
FROM {t}executions GROUP BY status`)
	// One row: the Ready and Running tasks, each counted on its own
	// partial index (tasks_ready_idx, tasks_running_idx: one count over
	// both statuses matches neither index's predicate, and read the whole
	// table), and the oldest ready_at of a runnable task: due ($1 is now),
	// of an execution that may run (a paused execution's Ready task is
	// not lag). The oldest walks tasks_ready_idx in order, as a claim
	// does, and stops at the first task whose execution, looked up by
	// primary key, is Pending or Running.
	q.metricsTasks = d.sql(`SELECT
  (SELECT COUNT(*) FROM {t}tasks WHERE status = 'Ready'),
  (SELECT COUNT(*) FROM {t}tasks WHERE status = 'Running'),
  COALESCE((SELECT c.ready_at FROM {t}tasks AS c JOIN {t}executions AS e ON e.id = c.execution_id
    WHERE c.status = 'Ready' AND c.ready_at <= $1 AND e.status IN ('Pending', 'Running')
    ORDER BY c.ready_at, c.id LIMIT 1), 0)`)
	return q
}

func (q queries) all() []string {
	return []string{q.insertExecutions, q.insertTasks, q.insertEvents, q.claim, q.updateTasks, q.updateExecutions, q.startExecutions,
		q.taskStates, q.completedContexts, q.getExecution, q.listTasks, q.executionTasks, q.listEvents, q.execInputs, q.taskOutcomes,
		q.nextReadyAt, q.runningTasks, q.heartbeat, q.cancelledTasks, q.metricsExec, q.metricsTasks}
}

func (s *sqlStore) Backend() string { return s.d.name }

func (s *sqlStore) Close() error { return s.close() }

func (s *sqlStore) closeStmts() error {
	var errs []error
	s.stmts.Range(func(k, v any) bool {
		errs = append(errs, v.(*sql.Stmt).Close())
		s.stmts.Delete(k)
		return true
	})
	return errors.Join(errs...)
}

// micros stores times as microseconds since the Unix epoch; zero is unset.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

// docParam passes a stored JSON document through the JSON rows parameter
// as a JSON string, so both databases hand back its text exactly (a
// document inlined as JSON would be decoded, and PostgreSQL cannot hold an
// escaped NUL in text); nil becomes null.
func docParam(b []byte) *string {
	if b == nil {
		return nil
	}
	s := string(b)
	return &s
}

func jsonParam(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("store: encoding parameters: %w", err)
	}
	return string(b), nil
}

// Write runs fn in a transaction, retrying on PostgreSQL serialization
// failures and deadlocks.
func (s *sqlStore) Write(ctx context.Context, fn func(Tx) error) error {
	const maxTries = 5
	var err error
	for try := 0; try < maxTries; try++ {
		err = s.writeOnce(ctx, fn)
		if err == nil || !retryable(err) || ctx.Err() != nil {
			return poolerHint(err)
		}
		s.dropIdleIfBroken(err)
		time.Sleep(time.Duration(try+1) * 5 * time.Millisecond)
	}
	return poolerHint(err)
}

// dropIdleIfBroken closes the pool's idle connections after an error that
// says the server ended a connection (a restart, pg_terminate_backend): the
// others are most likely dead too, and would each fail one more attempt.
func (s *sqlStore) dropIdleIfBroken(err error) {
	if !connectionLost(err) {
		return
	}
	for _, db := range []*sql.DB{s.w, s.r} {
		n := db.Stats().MaxOpenConnections
		db.SetMaxIdleConns(-1)
		db.SetMaxIdleConns(n)
	}
}

func (s *sqlStore) writeOnce(ctx context.Context, fn func(Tx) error) error {
	if s.d.name == "postgres" {
		return s.writePostgres(ctx, fn)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	if err := fn(&sqlTx{s: s, tx: tx}); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// errCommitRolledBack: COMMIT answered ROLLBACK (the transaction had
// failed).
var errCommitRolledBack = errors.New("store: commit: the transaction was rolled back")

// pgBegin is the statement that opens a PostgreSQL write transaction: its settings, and the
// role switch of a store that acts as a role, go to the server with BEGIN
// in one round trip (simple-protocol statements).
//
// The settings steer the planner to the indexes every statement of a write
// transaction is built for: keyed lookups and updates, joined to their
// parameter rows by nested loops (the planner takes a JSON parameter for
// 100 rows, and would otherwise hash-join it with a read of the whole
// table); ClaimTasks adds its own. A queue's statistics
// lag behind it: after a burst of new executions, ANALYZE has not yet seen
// them and the planner, expecting a few rows, would read and sort or hash
// whole tables instead, at a cost growing with the backlog on every round
// (it made a 200,000-execution burn-down several times slower). SET LOCAL
// holds for the transaction only, so it works through PgBouncer.
func pgBegin(role string) string {
	b := "BEGIN; SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off"
	if role != "" {
		b += "; SET LOCAL ROLE " + quoteIdent(role)
	}
	return b
}

// writePostgres is writeOnce on PostgreSQL, over a connection of the pool
// rather than a *sql.Tx, so that BEGIN carries the transaction's settings
// (see pgBegin).
func (s *sqlStore) writePostgres(ctx context.Context, fn func(Tx) error) error {
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return fmt.Errorf("store: connection: %w", err)
	}
	defer conn.Close()
	var fnErr, commitErr error
	err = conn.Raw(func(dc any) error {
		pc, err := pgxConn(dc)
		if err != nil {
			return err
		}
		if _, err := pc.Exec(ctx, s.begin); err != nil {
			fnErr = fmt.Errorf("store: begin: %w", err)
		} else {
			fnErr = fn(&sqlTx{s: s, pg: pc})
		}
		if fnErr == nil {
			tag, err := pc.Exec(ctx, "COMMIT")
			switch {
			case err != nil:
				commitErr = fmt.Errorf("store: commit: %w", err)
			case tag.String() == "ROLLBACK":
				commitErr = errCommitRolledBack
			}
		}
		if !settle(ctx, pc) {
			return driver.ErrBadConn // not idle: the pool must not reuse it
		}
		return nil
	})
	if err != nil && !errors.Is(err, driver.ErrBadConn) && fnErr == nil && commitErr == nil {
		return err
	}
	return errors.Join(fnErr, commitErr)
}

// sqlTx is a write transaction: a *sql.Tx on SQLite; on PostgreSQL, the
// pgx connection that runs it, used through pgconn (see pgStatement).
type sqlTx struct {
	s  *sqlStore
	tx *sql.Tx   // SQLite
	pg *pgx.Conn // PostgreSQL
}

// The row types below are the batches of set-based statements (see
// dialect.rows): json tags name the columns, pg tags type them.

type execRow struct {
	ID              string `json:"id" pg:"uuid"`
	WorkflowName    string `json:"workflow_name" pg:"text"`
	WorkflowVersion string `json:"workflow_version" pg:"text"`
	Status          string `json:"status" pg:"text"`
	Input           string `json:"input" pg:"text"`
	CreatedAt       int64  `json:"created_at" pg:"bigint"`
}

type taskRow struct {
	ExecutionID  string `json:"execution_id" pg:"uuid"`
	WorkflowName string `json:"workflow_name" pg:"text"`
	Name         string `json:"name" pg:"text"`
	Deps         string `json:"deps" pg:"text"` // the text of a JSON array
	Status       string `json:"status" pg:"text"`
	ReadyAt      int64  `json:"ready_at" pg:"bigint"`
}

func (t *sqlTx) InsertExecutions(ctx context.Context, execs []*Execution, tasks []*Task) error {
	if len(execs) > 0 {
		rows := make([]execRow, len(execs))
		for i, e := range execs {
			input := e.Input
			if len(input) == 0 {
				input = []byte("{}")
			}
			rows[i] = execRow{e.ID, e.WorkflowName, e.WorkflowVersion, e.Status, string(input), micros(e.CreatedAt)}
		}
		args, err := t.s.d.rowArgs(rows)
		if err != nil {
			return err
		}
		if err := t.exec(ctx, t.s.q.insertExecutions, args...); err != nil {
			return fmt.Errorf("store: insert executions: %w", err)
		}
	}
	if len(tasks) > 0 {
		rows := make([]taskRow, len(tasks))
		for i, tk := range tasks {
			deps, err := json.Marshal(nonNil(tk.Deps))
			if err != nil {
				return fmt.Errorf("store: task %s deps: %w", tk.Name, err)
			}
			rows[i] = taskRow{tk.ExecutionID, tk.WorkflowName, tk.Name, string(deps), tk.Status, micros(tk.ReadyAt)}
		}
		args, err := t.s.d.rowArgs(rows)
		if err != nil {
			return err
		}
		if err := t.exec(ctx, t.s.q.insertTasks, args...); err != nil {
			return fmt.Errorf("store: insert tasks: %w", err)
		}
	}
	return nil
}

// decodeDeps reads a task's stored dependencies (the text of a JSON
// array); a root task's, the most common, costs no decoding.
func decodeDeps(s string) ([]string, error) {
	if s == "[]" {
		return nil, nil
	}
	var deps []string
	err := json.Unmarshal([]byte(s), &deps)
	return deps, err
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (t *sqlTx) ClaimTasks(ctx context.Context, p ClaimParams) ([]*Task, error) {
	if p.Limit <= 0 || len(p.Workflows) == 0 {
		return nil, nil
	}
	wfs, err := t.s.d.listArg(p.Workflows)
	if err != nil {
		return nil, err
	}
	if t.s.d.name == "postgres" {
		// A claim walks the ready-task index in order and stops at its
		// limit; with stale statistics (see pgBegin) the planner would
		// rather read all ready tasks and sort them. The setting holds for
		// the rest of the transaction, whose later statements (in a round:
		// starting executions, loading inputs, events) sort nothing.
		if err := t.exec(ctx, "SET LOCAL enable_sort = off"); err != nil {
			return nil, fmt.Errorf("store: claim tasks: %w", err)
		}
	}
	rows, err := t.query(ctx, t.s.q.claim, p.Worker, micros(p.Now), p.Limit, wfs)
	if err != nil {
		return nil, fmt.Errorf("store: claim tasks: %w", err)
	}
	return scanClaimRows(rows, p)
}

// scanClaimRows reads a claim's rows (claimCols, then the execution's
// input, NULL but for a root task, and workflow version), and fills in
// what the claim set.
func scanClaimRows(rows rowSet, p ClaimParams) ([]*Task, error) {
	defer rows.Close()
	var out []*Task
	var id int64
	var execID, workflow, name, deps, version string
	var attempt, recoveries int
	var ready int64
	var input sql.NullString
	dest := []any{&id, &execID, &workflow, &name, &deps, &attempt, &ready, &recoveries, &input, &version}
	now := fromMicros(micros(p.Now))
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("store: scan claimed task: %w", err)
		}
		t := &Task{ID: id, ExecutionID: execID, WorkflowName: workflow, Name: name, Status: "Running", Attempt: attempt,
			ReadyAt: fromMicros(ready), ClaimedBy: p.Worker, HeartbeatAt: now, RecoveryCount: recoveries, StartedAt: now,
			WorkflowVersion: version}
		var err error
		if t.Deps, err = decodeDeps(deps); err != nil {
			return nil, fmt.Errorf("store: task %d deps: %w", id, err)
		}
		if input.Valid {
			t.Input = []byte(input.String)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: scan claimed task: %w", err)
	}
	return out, nil
}

type taskUpdateRow struct {
	ID          int64   `json:"tid" pg:"bigint"`
	From        string  `json:"from_status" pg:"text"`
	To          string  `json:"to_status" pg:"text"`
	Attempt     int     `json:"attempt" pg:"integer"`
	ClaimedBy   string  `json:"claimed_by" pg:"text"`
	Context     *string `json:"context" pg:"text"`
	Error       string  `json:"error" pg:"text"`
	ReadyAt     int64   `json:"ready_at" pg:"bigint"`
	CompletedAt int64   `json:"completed_at" pg:"bigint"`
	Release     bool    `json:"release" pg:"boolean"`
	Recovered   bool    `json:"recovered" pg:"boolean"`
	UndoAttempt bool    `json:"undo_attempt" pg:"boolean"`
	ClaimedAt   int64   `json:"claimed_at" pg:"bigint"`
}

func (t *sqlTx) UpdateTasks(ctx context.Context, ups []TaskUpdate) (map[int64]bool, error) {
	if len(ups) == 0 {
		return map[int64]bool{}, nil
	}
	rows := make([]taskUpdateRow, len(ups))
	for i, u := range ups {
		rows[i] = taskUpdateRow{u.ID, u.From, u.To, u.Attempt, u.ClaimedBy, docParam(u.Context), u.Error,
			micros(u.ReadyAt), micros(u.CompletedAt), u.Release, u.Recovered, u.UndoAttempt, micros(u.ClaimedAt)}
	}
	args, err := t.s.d.rowArgs(rows)
	if err != nil {
		return nil, err
	}
	changed := make(map[int64]bool, len(ups))
	if err := collectIDs(ctx, t, changed, t.s.q.updateTasks, args...); err != nil {
		return nil, fmt.Errorf("store: update tasks: %w", err)
	}
	return changed, nil
}

type execUpdateRow struct {
	ID          string  `json:"eid" pg:"uuid"`
	F1          string  `json:"f1" pg:"text"`
	F2          string  `json:"f2" pg:"text"`
	F3          string  `json:"f3" pg:"text"`
	F4          string  `json:"f4" pg:"text"`
	To          string  `json:"to_status" pg:"text"`
	Output      *string `json:"output" pg:"text"`
	Error       string  `json:"error" pg:"text"`
	StartedAt   int64   `json:"started_at" pg:"bigint"`
	CompletedAt int64   `json:"completed_at" pg:"bigint"`
	StartedBy   string  `json:"started_by" pg:"text"`
}

func (t *sqlTx) UpdateExecutions(ctx context.Context, ups []ExecutionUpdate) (map[string]ExecutionStart, error) {
	if len(ups) == 0 {
		return map[string]ExecutionStart{}, nil
	}
	rows := make([]execUpdateRow, len(ups))
	for i, u := range ups {
		if len(u.From) > 4 {
			return nil, fmt.Errorf("store: update execution %s: %d From states (at most 4)", u.ID, len(u.From))
		}
		var f [4]string // empty entries match no status
		copy(f[:], u.From)
		rows[i] = execUpdateRow{u.ID, f[0], f[1], f[2], f[3], u.To, docParam(u.Output), u.Error,
			micros(u.StartedAt), micros(u.CompletedAt), u.StartedBy}
	}
	args, err := t.s.d.rowArgs(rows)
	if err != nil {
		return nil, err
	}
	rs, err := t.query(ctx, t.s.q.updateExecutions, append([]any{micros(time.Now())}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("store: update executions: %w", err)
	}
	defer rs.Close()
	changed := make(map[string]ExecutionStart, len(ups))
	for rs.Next() {
		var id string
		var started int64
		var by sql.NullString
		if err := rs.Scan(&id, &started, &by); err != nil {
			return nil, fmt.Errorf("store: update executions: %w", err)
		}
		changed[id] = ExecutionStart{At: fromMicros(started), By: by.String}
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("store: update executions: %w", err)
	}
	return changed, nil
}

func (t *sqlTx) StartExecutions(ctx context.Context, ids []string, at time.Time, worker string) (map[string]bool, error) {
	changed := make(map[string]bool, len(ids))
	if len(ids) == 0 {
		return changed, nil
	}
	p, err := t.s.d.listArg(ids)
	if err != nil {
		return nil, err
	}
	if err := collectIDs(ctx, t, changed, t.s.q.startExecutions, micros(at), micros(time.Now()), p, worker); err != nil {
		return nil, fmt.Errorf("store: start executions: %w", err)
	}
	return changed, nil
}

func (t *sqlTx) TaskStates(ctx context.Context, executionIDs []string) ([]*Task, error) {
	if len(executionIDs) == 0 {
		return nil, nil
	}
	p, err := t.s.d.listArg(executionIDs)
	if err != nil {
		return nil, err
	}
	rows, err := t.query(ctx, t.s.q.taskStates, p)
	if err != nil {
		return nil, fmt.Errorf("store: task states: %w", err)
	}
	defer rows.Close()
	var out []*Task
	for rows.Next() {
		var tk Task
		var deps string
		if err := rows.Scan(&tk.ID, &tk.ExecutionID, &tk.WorkflowName, &tk.Name, &deps, &tk.Status, &tk.Attempt, &tk.Error); err != nil {
			return nil, fmt.Errorf("store: task states: %w", err)
		}
		if tk.Deps, err = decodeDeps(deps); err != nil {
			return nil, fmt.Errorf("store: task %d deps: %w", tk.ID, err)
		}
		out = append(out, &tk)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: task states: %w", err)
	}
	slices.SortFunc(out, func(a, b *Task) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

func (t *sqlTx) CompletedContexts(ctx context.Context, executionIDs []string) (map[string]map[string][]byte, error) {
	out := map[string]map[string][]byte{}
	if len(executionIDs) == 0 {
		return out, nil
	}
	p, err := t.s.d.listArg(executionIDs)
	if err != nil {
		return nil, err
	}
	rows, err := t.query(ctx, t.s.q.completedContexts, p)
	if err != nil {
		return nil, fmt.Errorf("store: completed contexts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, name string
		var c []byte
		if err := rows.Scan(&id, &name, &c); err != nil {
			return nil, fmt.Errorf("store: completed contexts: %w", err)
		}
		if out[id] == nil {
			out[id] = map[string][]byte{}
		}
		out[id][name] = c
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: completed contexts: %w", err)
	}
	return out, nil
}

func (t *sqlTx) RunningTasks(ctx context.Context, f RunningFilter) ([]*Task, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	rows, err := t.query(ctx, t.s.q.runningTasks, f.ClaimedBy, micros(f.HeartbeatBefore), limit)
	if err != nil {
		return nil, fmt.Errorf("store: running tasks: %w", err)
	}
	return scanTasks(rows)
}

func (t *sqlTx) Heartbeat(ctx context.Context, worker string, ids []int64, now time.Time) (map[int64]bool, map[int64]bool, error) {
	alive, cancelled := map[int64]bool{}, map[int64]bool{}
	if len(ids) == 0 {
		return alive, cancelled, nil
	}
	p, err := t.s.d.listArg(ids)
	if err != nil {
		return nil, nil, err
	}
	if err := collectIDs(ctx, t, alive, t.s.q.heartbeat, worker, micros(now), p); err != nil {
		return nil, nil, fmt.Errorf("store: heartbeat: %w", err)
	}
	if err := collectIDs(ctx, t, cancelled, t.s.q.cancelledTasks, p); err != nil {
		return nil, nil, fmt.Errorf("store: heartbeat: %w", err)
	}
	return alive, cancelled, nil
}

// collectIDs runs a statement returning row ids (of tasks or executions)
// into set.
func collectIDs[K int64 | string](ctx context.Context, t *sqlTx, set map[K]bool, q string, args ...any) error {
	rows, err := t.query(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id K
		if err := rows.Scan(&id); err != nil {
			return err
		}
		set[id] = true
	}
	return rows.Err()
}

func (t *sqlTx) GetExecution(ctx context.Context, id string) (*Execution, error) {
	rows, err := t.query(ctx, t.s.q.getExecution, id)
	return oneExecution(rows, err)
}

func (s *sqlStore) GetExecution(ctx context.Context, id string) (*Execution, error) {
	return read(ctx, s, func(r reader) (*Execution, error) {
		rows, err := r.query(ctx, s.q.getExecution, id)
		return oneExecution(rows, err)
	})
}

type execTasks struct {
	e     *Execution
	tasks []*Task
}

func (s *sqlStore) GetExecutionTasks(ctx context.Context, id string) (*Execution, []*Task, error) {
	et, err := read(ctx, s, func(r reader) (execTasks, error) {
		rows, err := r.query(ctx, s.q.executionTasks, id)
		if err != nil {
			return execTasks{}, fmt.Errorf("store: get execution: %w", err)
		}
		e, tasks, err := scanExecutionTasks(rows)
		return execTasks{e, tasks}, err
	})
	return et.e, et.tasks, err
}

func oneExecution(rows rowSet, err error) (*Execution, error) {
	if err != nil {
		return nil, fmt.Errorf("store: get execution: %w", err)
	}
	execs, err := scanExecutions(rows)
	if err != nil {
		return nil, err
	}
	if len(execs) == 0 {
		return nil, ErrNotFound
	}
	return execs[0], nil
}

// execScan holds the scan targets of one execution row (execCols).
type execScan struct {
	e                                   Execution
	created, started, completed, update int64
	input                               string
	output, startedBy                   sql.NullString
}

func (x *execScan) dest() []any {
	return []any{&x.e.ID, &x.e.WorkflowName, &x.e.WorkflowVersion, &x.e.Status, &x.input, &x.output, &x.e.Error,
		&x.created, &x.started, &x.completed, &x.update, &x.startedBy}
}

func (x *execScan) execution() *Execution {
	e := x.e
	e.Input = []byte(x.input)
	if x.output.Valid {
		e.Output = []byte(x.output.String)
	}
	e.CreatedAt, e.StartedAt, e.CompletedAt, e.UpdatedAt = fromMicros(x.created), fromMicros(x.started), fromMicros(x.completed), fromMicros(x.update)
	e.StartedBy = x.startedBy.String
	return &e
}

// taskScan holds the scan targets of one task row (taskCols).
type taskScan struct {
	t                             Task
	deps                          string
	c                             sql.NullString
	ready, hb, started, completed int64
}

func (x *taskScan) dest() []any {
	return []any{&x.t.ID, &x.t.ExecutionID, &x.t.WorkflowName, &x.t.Name, &x.deps, &x.t.Status, &x.t.Attempt, &x.ready,
		&x.c, &x.t.Error, &x.t.ClaimedBy, &x.hb, &x.t.RecoveryCount, &x.started, &x.completed}
}

func (x *taskScan) task() (*Task, error) {
	t := x.t
	var err error
	if t.Deps, err = decodeDeps(x.deps); err != nil {
		return nil, fmt.Errorf("store: task %d deps: %w", t.ID, err)
	}
	if x.c.Valid {
		t.Context = []byte(x.c.String)
	}
	t.ReadyAt, t.HeartbeatAt, t.StartedAt, t.CompletedAt = fromMicros(x.ready), fromMicros(x.hb), fromMicros(x.started), fromMicros(x.completed)
	return &t, nil
}

func scanExecutions(rows rowSet) ([]*Execution, error) {
	defer rows.Close()
	var out []*Execution
	for rows.Next() {
		var x execScan
		if err := rows.Scan(x.dest()...); err != nil {
			return nil, fmt.Errorf("store: scan execution: %w", err)
		}
		out = append(out, x.execution())
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: scan execution: %w", err)
	}
	return out, nil
}

// scanTasks reads task rows (taskCols).
func scanTasks(rows rowSet) ([]*Task, error) {
	defer rows.Close()
	var out []*Task
	// One set of destinations for every row: each row's scan overwrites
	// them all, and task copies what it keeps.
	var x taskScan
	dest := x.dest()
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("store: scan task: %w", err)
		}
		t, err := x.task()
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: scan task: %w", err)
	}
	return out, nil
}

// scanExecutionTasks reads the rows of executionTasks: the execution's
// (kind 0) and its tasks' (kind 1).
func scanExecutionTasks(rows rowSet) (*Execution, []*Task, error) {
	defer rows.Close()
	var e *Execution
	var tasks []*Task
	for rows.Next() {
		var kind int
		var x execScan
		var y taskScan
		dest := append(append([]any{&kind}, x.dest()...), y.dest()...)
		if err := rows.Scan(dest...); err != nil {
			return nil, nil, fmt.Errorf("store: scan execution: %w", err)
		}
		if kind == 0 {
			e = x.execution()
			continue
		}
		t, err := y.task()
		if err != nil {
			return nil, nil, err
		}
		tasks = append(tasks, t)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("store: scan execution: %w", err)
	}
	if e == nil {
		return nil, nil, ErrNotFound
	}
	slices.SortFunc(tasks, func(a, b *Task) int { return cmp.Compare(a.ID, b.ID) })
	return e, tasks, nil
}

// exceptionalStatus reports whether a status is one of the PostgreSQL
// column exceptional (migration 0002).
func exceptionalStatus(status string) bool {
	switch status {
	case "Failed", "Cancelled", "Paused":
		return true
	}
	return false
}

func (s *sqlStore) ListExecutions(ctx context.Context, f ExecutionFilter) ([]*Execution, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if len(f.Statuses) > 0 {
		p, err := s.d.listArg(f.Statuses)
		if err != nil {
			return nil, err
		}
		args = append(args, p)
		where = append(where, "status IN "+s.d.list(len(args), "text"))
		if s.d.name == "postgres" && !slices.ContainsFunc(f.Statuses, func(st string) bool { return !exceptionalStatus(st) }) {
			// Executions in these statuses have an index of their own
			// (migration 0002): the table has none on status.
			where = append(where, "exceptional")
		}
	}
	if f.Workflow != "" {
		where = append(where, "workflow_name = "+arg(f.Workflow))
	}
	if f.Before != "" {
		where = append(where, "id < "+arg(f.Before))
	}
	q := "SELECT " + execCols + " FROM {t}executions"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	q += " ORDER BY id DESC LIMIT " + arg(limit)
	return read(ctx, s, func(r reader) ([]*Execution, error) {
		rows, err := r.query(ctx, s.d.sql(q), args...)
		if err != nil {
			return nil, fmt.Errorf("store: list executions: %w", err)
		}
		return scanExecutions(rows)
	})
}

func (s *sqlStore) ListTasks(ctx context.Context, executionID string) ([]*Task, error) {
	return read(ctx, s, func(r reader) ([]*Task, error) {
		rows, err := r.query(ctx, s.q.listTasks, executionID)
		if err != nil {
			return nil, fmt.Errorf("store: list tasks: %w", err)
		}
		return scanTasks(rows)
	})
}

type refRow struct {
	EID   string `json:"eid" pg:"uuid"`
	TName string `json:"tname" pg:"text"`
}

func (t *sqlTx) LoadInputs(ctx context.Context, executionIDs []string, tasks []TaskRef) (map[string][]byte, map[TaskRef]TaskOutcome, error) {
	inputs := make(map[string][]byte, len(executionIDs))
	outs := make(map[TaskRef]TaskOutcome, len(tasks))
	if len(executionIDs) > 0 {
		p, err := t.s.d.listArg(executionIDs)
		if err != nil {
			return nil, nil, err
		}
		rows, err := t.query(ctx, t.s.q.execInputs, p)
		if err != nil {
			return nil, nil, fmt.Errorf("store: load inputs: %w", err)
		}
		for rows.Next() {
			var id, in string
			if err := rows.Scan(&id, &in); err != nil {
				rows.Close()
				return nil, nil, fmt.Errorf("store: load inputs: %w", err)
			}
			inputs[id] = []byte(in)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, nil, fmt.Errorf("store: load inputs: %w", err)
		}
	}
	if len(tasks) > 0 {
		refs := make([]refRow, len(tasks))
		for i, r := range tasks {
			refs[i] = refRow{r.ExecutionID, r.Name}
		}
		args, err := t.s.d.rowArgs(refs)
		if err != nil {
			return nil, nil, err
		}
		rows, err := t.query(ctx, t.s.q.taskOutcomes, args...)
		if err != nil {
			return nil, nil, fmt.Errorf("store: load inputs: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var o TaskOutcome
			var eid string
			var c sql.NullString
			if err := rows.Scan(&eid, &o.Name, &o.Status, &c); err != nil {
				return nil, nil, fmt.Errorf("store: load inputs: %w", err)
			}
			if c.Valid {
				o.Context = []byte(c.String)
			}
			outs[TaskRef{eid, o.Name}] = o
		}
		if err := rows.Err(); err != nil {
			return nil, nil, fmt.Errorf("store: load inputs: %w", err)
		}
	}
	return inputs, outs, nil
}

func (s *sqlStore) NextReadyAt(ctx context.Context, workflows []string) (time.Time, bool, error) {
	if len(workflows) == 0 {
		return time.Time{}, false, nil
	}
	p, err := s.d.listArg(workflows)
	if err != nil {
		return time.Time{}, false, err
	}
	v, err := read(ctx, s, func(r reader) (int64, error) {
		var v int64
		err := r.queryRow(ctx, s.q.nextReadyAt, p).Scan(&v)
		return v, err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("store: next ready: %w", err)
	}
	return fromMicros(v), true, nil
}

func (s *sqlStore) Analyze(ctx context.Context) error {
	if s.d.name != "postgres" {
		return nil
	}
	q := "ANALYZE " + s.d.prefix + "executions, " + s.d.prefix + "tasks"
	if _, err := s.w.ExecContext(ctx, q); err != nil {
		return poolerHint(fmt.Errorf("store: analyze: %w", err))
	}
	return nil
}

func (s *sqlStore) Metrics(ctx context.Context) (*Metrics, error) {
	return read(ctx, s, func(r reader) (*Metrics, error) { return s.metrics(ctx, r) })
}

func (s *sqlStore) metrics(ctx context.Context, r reader) (*Metrics, error) {
	m := &Metrics{ByStatus: map[string]int64{}}
	rows, err := r.query(ctx, s.q.metricsExec)
	if err != nil {
		return nil, fmt.Errorf("store: metrics: %w", err)
	}
	var sum, n int64
	for rows.Next() {
		var status string
		var count, s1, n1 int64
		if err := rows.Scan(&status, &count, &s1, &n1); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: metrics: %w", err)
		}
		m.ByStatus[status] = count
		m.Total += count
		sum += s1
		n += n1
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: metrics: %w", err)
	}
	if n > 0 {
		m.AvgDuration = time.Duration(sum/n) * time.Microsecond
	}
	var oldest int64
	if err := r.queryRow(ctx, s.q.metricsTasks, micros(time.Now())).Scan(&m.ReadyTasks, &m.RunningTasks, &oldest); err != nil {
		return nil, fmt.Errorf("store: metrics: %w", err)
	}
	m.OldestReadyTask = fromMicros(oldest)
	return m, nil
}
