package tenant_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/internal/pgtest"
	"github.com/cloacina-go/cloacina/tenant"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// newPGManager opens a PostgresManager on dbURL with the pipeline workflow
// (unless extra brings workflows of its own, added to it), a short poll
// interval, a discarding logger and extra, closing it when the test ends.
func newPGManager(t *testing.T, dbURL string, extra ...cloacina.Option) *tenant.PostgresManager {
	t.Helper()
	ctx := testCtx(t, 60*time.Second)
	opts := append([]cloacina.Option{
		cloacina.WithWorkflows(pipeline(t)),
		cloacina.WithPollInterval(50 * time.Millisecond),
		cloacina.WithLogger(discardLogger),
	}, extra...)
	m, err := tenant.NewPostgresManager(ctx, dbURL, opts...)
	if err != nil {
		t.Fatalf("NewPostgresManager: %v", err)
	}
	t.Cleanup(func() { closeManager(t, m) })
	return m
}

// postgresFactory is the managerFactory of PostgresManager: each manager
// gets a fresh database of the shared test server.
func postgresFactory(t *testing.T, extra ...cloacina.Option) tenant.Manager {
	return newPGManager(t, pgtest.Shared(t).NewDatabase(t), extra...)
}

func TestPostgresManagerConformance(t *testing.T) { testManager(t, postgresFactory) }

// query runs a query returning one text column on dbURL, or statements
// returning nothing.
func query(t *testing.T, dbURL, sql string, args ...any) []string {
	t.Helper()
	ctx := testCtx(t, 30*time.Second)
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if len(args) == 0 && !strings.HasPrefix(strings.TrimSpace(sql), "SELECT") {
		// A statement (or several) returning nothing: the simple protocol.
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return nil
	}
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

// userSchemas lists the schemas of the database other than PostgreSQL's
// own and public, from information_schema.
func userSchemas(t *testing.T, dbURL string) []string {
	t.Helper()
	return query(t, dbURL, `SELECT schema_name::text FROM information_schema.schemata
WHERE schema_name NOT LIKE 'pg\_%' AND schema_name NOT IN ('information_schema', 'public') ORDER BY schema_name COLLATE "C"`)
}

func TestNewPostgresManagerRefusesBadArguments(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	for _, u := range []string{"", "sqlite://data/acme.db", "mysql://root:s3cr3t@db/app", "mysql://db/app?password=s3cr3t%zz", "host=db password=s3cr3t", "postgres:/x"} {
		m, err := tenant.NewPostgresManager(ctx, u, cloacina.WithLogger(discardLogger))
		if m != nil {
			closeManager(t, m)
		}
		if !errors.Is(err, cloacina.ErrUnsupportedDatabase) {
			t.Errorf("NewPostgresManager(%q) = %v, want ErrUnsupportedDatabase", u, err)
		}
		if err != nil && strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
	// Refused before connecting: nothing listens on port 1.
	m, err := tenant.NewPostgresManager(ctx, "postgres://u:s3cr3t@127.0.0.1:1/db", cloacina.WithSchema("acme"))
	if m != nil {
		closeManager(t, m)
	}
	if !errors.Is(err, cloacina.ErrInvalidOption) {
		t.Errorf("NewPostgresManager(WithSchema) = %v, want ErrInvalidOption", err)
	}
	// A server that does not answer: the error, not a manager.
	m, err = tenant.NewPostgresManager(ctx, "postgres://u:s3cr3t@127.0.0.1:1/db?connect_timeout=2", cloacina.WithLogger(discardLogger))
	if m != nil {
		closeManager(t, m)
	}
	if err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("NewPostgresManager(no server) = %v; want an error without the password", err)
	}
}

// signalWorkflow is a one-task workflow "signal" whose task sends the
// input's "tenant" to ran.
func signalWorkflow(ran chan<- string) *cloacina.Workflow {
	return cloacina.NewWorkflow("signal").Task("ping", func(ctx context.Context, c *cloacina.Context) error {
		v, _ := c.Get("tenant")
		select {
		case ran <- fmt.Sprint(v):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}).MustBuild()
}

// TestPostgresDataSurvivesRestart checks that a new manager on the
// database of an earlier one finds its tenants and data, and attaches every
// tenant schema at once: work a producer (an enqueue-only engine, as in
// another process) left pending runs without any call for the tenant.
func TestPostgresDataSurvivesRestart(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	dbURL := pgtest.Shared(t).NewDatabase(t)

	// The first process runs one execution for acme and stops.
	first := newPGManager(t, dbURL)
	done, err := first.Execute(ctx, "acme", "pipeline", map[string]any{"tenant": "acme"})
	if err != nil || done.Status != cloacina.ExecutionCompleted {
		t.Fatalf("Execute: %v, %v", done, err)
	}
	if err := first.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}

	// A producer records work for acme and for globex, a tenant no manager
	// has seen, and stops.
	ran := make(chan string, 10)
	producer, err := cloacina.NewEngine(ctx, dbURL, cloacina.WithWorkflows(signalWorkflow(ran)),
		cloacina.WithEnqueueOnly(), cloacina.WithoutListen(), cloacina.WithLogger(discardLogger))
	if err != nil {
		t.Fatal(err)
	}
	pending := map[string]uuid.UUID{}
	for _, id := range []string{"acme", "globex"} {
		r, err := producer.Runner(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		h, err := r.ExecuteAsync(ctx, "signal", map[string]any{"tenant": id})
		if err != nil {
			t.Fatal(err)
		}
		pending[id] = h.ID()
	}
	if err := producer.Shutdown(ctx); err != nil {
		t.Fatalf("producer Shutdown: %v", err)
	}
	select {
	case v := <-ran:
		t.Fatalf("the enqueue-only producer ran a task for %s", v)
	default:
	}

	// The new process attaches both tenants on construction: their tasks
	// run before anything asks for them.
	second := newPGManager(t, dbURL, cloacina.WithWorkflows(signalWorkflow(ran)))
	var got []string
	timeout := time.After(15 * time.Second)
	for len(got) < 2 {
		select {
		case v := <-ran:
			got = append(got, v)
		case <-timeout:
			t.Fatalf("pending tasks ran for %q only: the new manager did not attach every tenant", got)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"acme", "globex"}) {
		t.Errorf("tasks ran for %q, want acme and globex once each", got)
	}
	if ids, err := second.Tenants(ctx); err != nil || !slices.Equal(ids, []string{"acme", "globex"}) {
		t.Errorf("Tenants() = %q, %v; want [acme globex]", ids, err)
	}
	for id, execID := range pending {
		r, err := second.Runner(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		res, err := r.Wait(ctx, execID)
		if err != nil || res.Status != cloacina.ExecutionCompleted {
			t.Errorf("%s's pending execution: %v, %v; want Completed", id, res, err)
		}
	}
	// The first process's execution is still there, complete.
	r, err := second.Runner(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.ExecutionResult(ctx, done.ExecutionID)
	if err != nil || res.Status != cloacina.ExecutionCompleted {
		t.Fatalf("the first process's execution: %v, %v; want Completed", res, err)
	}
	if v, _ := res.Context.Get("seen_by_first"); v != "acme" {
		t.Errorf("its context lost seen_by_first: %v", v)
	}
	if mt, err := second.Metrics(ctx, "acme"); err != nil || mt.TotalExecutions != 2 {
		t.Errorf("Metrics(acme) = %+v, %v; want 2 executions", mt, err)
	}
	select {
	case v := <-ran:
		t.Errorf("a task ran again for %s", v)
	default:
	}
}

// TestPostgresRemoveDropsSchema checks that Remove drops the tenant's
// schema and nothing else, and that invalid ids create no schema.
func TestPostgresRemoveDropsSchema(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	dbURL := pgtest.Shared(t).NewDatabase(t)
	m := newPGManager(t, dbURL)
	for _, id := range invalidIDs {
		if _, err := m.Execute(ctx, id, "pipeline", nil); !errors.Is(err, cloacina.ErrInvalidTenantID) {
			t.Errorf("Execute(%q) = %v, want ErrInvalidTenantID", id, err)
		}
	}
	if got := userSchemas(t, dbURL); len(got) != 0 {
		t.Fatalf("schemas after invalid ids: %q, want none", got)
	}
	for _, id := range []string{"acme", "globex"} {
		if _, err := m.Execute(ctx, id, "pipeline", nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := userSchemas(t, dbURL); !slices.Equal(got, []string{"acme", "globex"}) {
		t.Fatalf("schemas: %q, want [acme globex]", got)
	}
	if n := query(t, dbURL, `SELECT count(*)::text FROM information_schema.tables WHERE table_schema = 'acme'`); n[0] == "0" {
		t.Fatal("the acme schema has no tables")
	}
	if err := m.Remove(ctx, "acme"); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if got := userSchemas(t, dbURL); !slices.Equal(got, []string{"globex"}) {
		t.Errorf("schemas after Remove(acme): %q, want [globex]", got)
	}
	if n := query(t, dbURL, `SELECT count(*)::text FROM information_schema.tables WHERE table_schema = 'acme'`); n[0] != "0" {
		t.Errorf("%s tables of acme left after Remove", n[0])
	}
	if mt, err := m.Metrics(ctx, "globex"); err != nil || mt.TotalExecutions != 1 {
		t.Errorf("Metrics(globex) after removing acme = %+v, %v; want 1 execution", mt, err)
	}
	if err := m.Remove(ctx, "acme"); !errors.Is(err, tenant.ErrTenantNotFound) {
		t.Errorf("second Remove = %v, want ErrTenantNotFound", err)
	}
	// A schema that is no tenant (no cloacina tables) is not one.
	if got := query(t, dbURL, `CREATE SCHEMA plain; CREATE TABLE plain.executions (id text)`); len(got) != 0 {
		t.Fatalf("creating a plain schema: %q", got)
	}
	if ok, err := m.Exists(ctx, "plain"); err != nil || ok {
		t.Errorf("Exists(plain) = %v, %v; want false", ok, err)
	}
	if ids, err := m.Tenants(ctx); err != nil || !slices.Equal(ids, []string{"globex"}) {
		t.Errorf("Tenants() = %q, %v; want [globex]", ids, err)
	}
}

// TestPostgresTwoManagersRunEachTaskOnce runs two managers on one database,
// as two processes would, both serving tenant acme: every task body of 30
// executions, started through both, runs exactly once.
func TestPostgresTwoManagersRunEachTaskOnce(t *testing.T) {
	ctx := testCtx(t, 90*time.Second)
	dbURL := pgtest.Shared(t).NewDatabase(t)
	const perManager = 15

	var mu sync.Mutex
	runs := map[string]int{}      // "n/task" -> runs
	byManager := map[string]int{} // manager -> task runs
	counting := func(name string) *cloacina.Workflow {
		body := func(task string) cloacina.TaskFunc {
			return func(ctx context.Context, c *cloacina.Context) error {
				n, _ := c.Get("n")
				mu.Lock()
				runs[fmt.Sprintf("%v/%s", n, task)]++
				byManager[name]++
				mu.Unlock()
				select {
				case <-time.After(5 * time.Millisecond):
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
		return cloacina.NewWorkflow("count").
			Task("a", body("a")).
			Task("b", body("b"), cloacina.DependsOn("a")).
			MustBuild()
	}
	managers := []*tenant.PostgresManager{
		newPGManager(t, dbURL, cloacina.WithWorkflows(counting("one")), cloacina.WithMaxConcurrentTasks(2)),
		newPGManager(t, dbURL, cloacina.WithWorkflows(counting("two")), cloacina.WithMaxConcurrentTasks(2)),
	}
	if managers[0].Engine().WorkerID() == managers[1].Engine().WorkerID() {
		t.Fatal("both engines claim under one worker id")
	}
	handles := make([]*cloacina.ExecutionHandle, 2*perManager)
	var wg sync.WaitGroup
	for i := range handles {
		wg.Go(func() {
			h, err := managers[i%2].ExecuteAsync(ctx, "acme", "count", map[string]any{"n": i})
			if err != nil {
				t.Errorf("ExecuteAsync %d: %v", i, err)
				return
			}
			handles[i] = h
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for i, h := range handles {
		res, err := h.Wait(ctx)
		if err != nil || res.Status != cloacina.ExecutionCompleted {
			t.Fatalf("execution %d: %v, %v; want Completed", i, res, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range handles {
		for _, task := range []string{"a", "b"} {
			if n := runs[fmt.Sprintf("%d/%s", i, task)]; n != 1 {
				t.Errorf("task %s of execution %d ran %d times, want once", task, i, n)
			}
		}
	}
	if len(runs) != 2*len(handles) {
		t.Errorf("%d distinct task runs, want %d", len(runs), 2*len(handles))
	}
	t.Logf("task runs by manager: %v", byManager)
	for _, m := range managers {
		if mt, err := m.Metrics(ctx, "acme"); err != nil || mt.TotalExecutions != 2*perManager || mt.ByStatus[cloacina.ExecutionCompleted] != 2*perManager {
			t.Errorf("Metrics(acme) = %+v, %v; want %d executions, all completed", mt, err, 2*perManager)
		}
	}
}

// TestPostgresThroughPgBouncer runs a PostgresManager whose pool goes
// through PgBouncer in transaction mode (pgx in exec mode, LISTEN on a
// direct connection): three tenants run workflows at once and complete,
// and keep apart. It proves that the engine needs no session state: first
// every server connection PgBouncer has is left with search_path set to
// another tenant's schema (a session setting PgBouncer hands on to the next
// client), so that an unqualified table name or a reliance on SET would
// read or write the decoy tenant's tables, or fail.
func TestPostgresThroughPgBouncer(t *testing.T) {
	ctx := testCtx(t, 120*time.Second)
	srv := pgtest.Shared(t)
	bouncer := pgtest.StartPgBouncer(t, srv)
	direct := srv.NewDatabase(t)
	u, err := url.Parse(direct)
	if err != nil {
		t.Fatal(err)
	}
	viaBouncer := bouncer.URL(strings.TrimPrefix(u.Path, "/")) + "&default_query_exec_mode=exec"

	// The decoy tenant, with tables where the poisoned search_path points.
	decoy := newPGManager(t, direct)
	if _, err := decoy.Runner(ctx, "decoy"); err != nil {
		t.Fatal(err)
	}
	closeManager(t, decoy)

	// Poison every server connection: hold as many transactions open at
	// once as PgBouncer has server connections per pool (5), so that each
	// runs on its own one, and set search_path for the session in each (a
	// SET without LOCAL outlives the transaction on the server connection).
	const holders = 5
	setPath := func(conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, "SET search_path TO decoy")
		return err
	}
	conns := make([]*pgx.Conn, holders)
	txs := make([]pgx.Tx, holders)
	for i := range holders {
		conn, err := pgx.Connect(ctx, viaBouncer)
		if err != nil {
			t.Fatalf("connecting through the bouncer: %v", err)
		}
		defer conn.Close(context.WithoutCancel(ctx))
		conns[i] = conn
		if txs[i], err = conn.Begin(ctx); err != nil {
			t.Fatal(err)
		}
		if err := setPath(conn); err != nil {
			t.Fatal(err)
		}
	}
	for _, tx := range txs {
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// searchPaths reads search_path on as many server connections as the
	// pool has, at once.
	searchPaths := func() []string {
		paths := make([]string, holders)
		for i, conn := range conns {
			tx, err := conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read-only
			if err := tx.QueryRow(ctx, "SHOW search_path").Scan(&paths[i]); err != nil {
				t.Fatal(err)
			}
		}
		return paths
	}
	for i, p := range searchPaths() {
		if p != "decoy" {
			t.Fatalf("server connection %d has search_path %q, want decoy: the poisoning failed", i, p)
		}
	}

	m := newPGManager(t, viaBouncer, cloacina.WithListenURL(direct), cloacina.WithDBPoolSize(12), cloacina.WithMaxConcurrentTasks(6))
	tenants := []string{"alpha", "bravo", "charlie"}
	const perTenant = 4
	var mu sync.Mutex
	ids := map[string][]uuid.UUID{}
	var wg sync.WaitGroup
	for _, tn := range tenants {
		for i := range perTenant {
			wg.Go(func() {
				res, err := m.Execute(ctx, tn, "pipeline", map[string]any{"tenant": tn, "n": i})
				if err != nil {
					t.Errorf("Execute(%s): %v", tn, err)
					return
				}
				if res.Status != cloacina.ExecutionCompleted {
					t.Errorf("Execute(%s) = %s (%s), want Completed", tn, res.Status, res.Error)
				}
				if v, _ := res.Context.Get("seen_by_first"); v != tn {
					t.Errorf("tenant %s: first task saw tenant %v", tn, v)
				}
				mu.Lock()
				ids[tn] = append(ids[tn], res.ExecutionID)
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	checkIsolation(ctx, t, m, ids)
	if got, err := m.Tenants(ctx); err != nil || !slices.Equal(got, []string{"alpha", "bravo", "charlie", "decoy"}) {
		t.Errorf("Tenants() = %q, %v", got, err)
	}
	// Nothing went to the decoy's tables.
	if n := query(t, direct, `SELECT count(*)::text FROM decoy.executions`); n[0] != "0" {
		t.Errorf("the decoy tenant has %s executions, want 0: a query followed search_path", n[0])
	}
	// The server connections the engine used still carry the decoy
	// search_path: the engine ran on them as they were.
	for i, p := range searchPaths() {
		if p != "decoy" {
			t.Errorf("after the run, server connection %d has search_path %q, want decoy", i, p)
		}
	}
	if err := m.Remove(ctx, "bravo"); err != nil {
		t.Errorf("Remove through the bouncer: %v", err)
	}
	if got := userSchemas(t, direct); !slices.Equal(got, []string{"alpha", "charlie", "decoy"}) {
		t.Errorf("schemas after Remove(bravo): %q", got)
	}
}

// TestPostgresBrokenTenantDoesNotBlockStart checks attachExisting's
// failure rule on real PostgreSQL: a tenant whose schema cannot be
// attached (here a migration that fails on it) is logged and skipped, the
// manager starts and serves the others; only when every tenant fails does
// the start fail.
func TestPostgresBrokenTenantDoesNotBlockStart(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	dbURL := pgtest.Shared(t).NewDatabase(t)

	first := newPGManager(t, dbURL)
	for _, id := range []string{"acme", "broken"} {
		if _, err := first.Runner(ctx, id); err != nil {
			t.Fatalf("Runner(%s): %v", id, err)
		}
	}
	if err := first.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Forgetting that migration 6 was applied makes the next attach apply
	// it again, and ALTER TABLE ... ADD COLUMN started_by fails: the
	// tenant's runner cannot open.
	query(t, dbURL, `DELETE FROM broken.cloacina_migrations WHERE version = 6`)

	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	second := newPGManager(t, dbURL, cloacina.WithLogger(logger))
	if got := second.OpenTenants(); !slices.Equal(got, []string{"acme"}) {
		t.Errorf("OpenTenants() after start = %q, want [acme]", got)
	}
	res, err := second.Execute(ctx, "acme", "pipeline", map[string]any{"tenant": "acme"})
	if err != nil || res.Status != cloacina.ExecutionCompleted {
		t.Fatalf("Execute(acme): %v, %v; want Completed", res, err)
	}
	if _, err := second.Runner(ctx, "broken"); err == nil || !strings.Contains(err.Error(), "started_by") {
		t.Errorf("Runner(broken) = %v, want the failing migration's error", err)
	}
	logged := logs.String()
	if !strings.Contains(logged, "level=WARN") || !strings.Contains(logged, "tenant=broken") ||
		!strings.Contains(logged, "started_by") || !strings.Contains(logged, "failed=1") {
		t.Errorf("the start did not log the broken tenant with its error and the count:\n%s", logged)
	}
	for line := range strings.Lines(logged) {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, "tenant=acme") {
			t.Errorf("acme was logged as failing: %s", line)
		}
	}
	if err := second.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}

	// Every tenant broken is a systematic fault: the start fails, naming
	// the first tenant and its error.
	query(t, dbURL, `DELETE FROM acme.cloacina_migrations WHERE version = 6`)
	m, err := tenant.NewPostgresManager(ctx, dbURL, cloacina.WithWorkflows(pipeline(t)), cloacina.WithLogger(discardLogger))
	if err == nil {
		closeManager(t, m)
		t.Fatal("NewPostgresManager started with every tenant broken")
	}
	if msg := err.Error(); !strings.Contains(msg, "all 2 failed") || !strings.Contains(msg, `tenant "acme"`) ||
		!strings.Contains(msg, "started_by") {
		t.Errorf("NewPostgresManager's error = %q, want all 2 failed, naming acme and the migration", msg)
	}
}
