package tenant_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/tenant"
)

// newIdleManager opens a SQLite manager on dir with cfg, the pipeline
// workflow and extra, closing it when the test ends.
func newIdleManager(t testing.TB, dir string, cfg tenant.SQLiteConfig, extra ...cloacina.Option) *tenant.SQLiteManager {
	t.Helper()
	opts := append([]cloacina.Option{
		cloacina.WithWorkflows(pipeline(t)),
		cloacina.WithPollInterval(50 * time.Millisecond),
		cloacina.WithLogger(discardLogger),
	}, extra...)
	m, err := tenant.NewSQLiteManagerWithConfig(dir, cfg, opts...)
	if err != nil {
		t.Fatalf("NewSQLiteManagerWithConfig: %v", err)
	}
	t.Cleanup(func() { closeManager(t, m) })
	return m
}

// TestSQLiteIdleRunnersAreClosed: a tenant's runner is closed once idle
// with no unfinished work, a tenant with a running task stays open however
// long it runs, and the next use of a closed tenant reopens it.
func TestSQLiteIdleRunnersAreClosed(t *testing.T) {
	ctx := testCtx(t, time.Minute)
	release := make(chan struct{})
	block, started := blockWorkflow(release)
	dir := filepath.Join(t.TempDir(), "data")
	m := newIdleManager(t, dir, tenant.SQLiteConfig{IdleTimeout: 100 * time.Millisecond}, cloacina.WithWorkflows(block))

	if _, err := m.Execute(ctx, "quiet", "pipeline", nil); err != nil {
		t.Fatal(err)
	}
	h, err := m.ExecuteAsync(ctx, "busy", "block", nil)
	if err != nil {
		t.Fatal(err)
	}
	<-started
	waitFor(t, 10*time.Second, "the idle tenant's runner to close", func() bool {
		return slices.Equal(m.OpenTenants(), []string{"busy"})
	})
	// The busy tenant stays open for many idle periods.
	time.Sleep(500 * time.Millisecond)
	if got := m.OpenTenants(); !slices.Equal(got, []string{"busy"}) {
		t.Fatalf("OpenTenants = %q while busy's task runs; want [busy]", got)
	}
	close(release)
	if res, err := h.Wait(ctx); err != nil || res.Status != cloacina.ExecutionCompleted {
		t.Fatalf("Wait: %v, %v; want Completed", res, err)
	}
	waitFor(t, 10*time.Second, "every runner to close", func() bool { return len(m.OpenTenants()) == 0 })

	// Closed tenants keep their data and open again on use.
	if ids, err := m.Tenants(ctx); err != nil || !slices.Equal(ids, []string{"busy", "quiet"}) {
		t.Fatalf("Tenants = %q, %v; want [busy quiet]", ids, err)
	}
	r, err := m.ExistingRunner(ctx, "quiet")
	if err != nil {
		t.Fatal(err)
	}
	page, err := r.ListExecutions(ctx, cloacina.ListOptions{})
	if err != nil || len(page.Executions) != 1 {
		t.Fatalf("ListExecutions after reopening: %v, %v; want the one execution", page, err)
	}
	if mt, err := m.Metrics(ctx, "busy"); err != nil || mt.ByStatus[cloacina.ExecutionCompleted] != 1 {
		t.Fatalf("Metrics(busy) after reopening: %+v, %v", mt, err)
	}
}

// TestSQLiteMetricsDoNotKeepTenantsOpen: reading a tenant's metrics more
// often than the idle timeout (as a Prometheus scrape of every open tenant
// does) does not count as activity, so the idle tenant still closes.
func TestSQLiteMetricsDoNotKeepTenantsOpen(t *testing.T) {
	ctx := testCtx(t, time.Minute)
	dir := filepath.Join(t.TempDir(), "data")
	m := newIdleManager(t, dir, tenant.SQLiteConfig{IdleTimeout: 300 * time.Millisecond})
	if _, err := m.Execute(ctx, "watched", "pipeline", nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := m.OpenRunner("watched"); !ok {
			break // closed although read every 50ms
		}
		if time.Now().After(deadline) {
			t.Fatal("a tenant whose metrics are read every 50ms stayed open for 10s past its 300ms idle timeout")
		}
		if _, err := m.Metrics(ctx, "watched"); err != nil {
			t.Fatalf("Metrics: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSQLiteIdleClosingRacesWithCalls hammers tenants whose runners close
// after 1ms of idleness: every call of the manager must succeed (a runner
// is never closed under a call), and the manager must close cleanly.
func TestSQLiteIdleClosingRacesWithCalls(t *testing.T) {
	ctx := testCtx(t, 2*time.Minute)
	dir := filepath.Join(t.TempDir(), "data")
	m := newIdleManager(t, dir, tenant.SQLiteConfig{IdleTimeout: time.Millisecond})
	var wg sync.WaitGroup
	var failures atomic.Int64
	for w := range 6 {
		wg.Go(func() {
			id := []string{"a", "b", "c"}[w%3]
			for range 15 {
				var err error
				switch w % 2 {
				case 0:
					var res *cloacina.Result
					res, err = m.Execute(ctx, id, "pipeline", nil)
					if err == nil && res.Status != cloacina.ExecutionCompleted {
						err = errors.New(string(res.Status))
					}
				default:
					_, err = m.Metrics(ctx, id)
					if errors.Is(err, tenant.ErrTenantNotFound) {
						err = nil // not created yet
					}
				}
				if err != nil {
					failures.Add(1)
					t.Errorf("tenant %s: %v", id, err)
				}
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	if failures.Load() > 0 {
		t.Fatalf("%d calls failed", failures.Load())
	}
	for _, id := range []string{"a", "b", "c"} {
		// Workers 0, 2 and 4 execute, one per tenant (a, c, b).
		if mt, err := m.Metrics(ctx, id); err != nil || mt.ByStatus[cloacina.ExecutionCompleted] != 15 {
			t.Errorf("Metrics(%s) = %v, %v; want 15 completed", id, mt, err)
		}
	}
}

// enqueueOnly opens a manager whose runners record executions but run
// none, so that accepted work is left Pending, as after a kill -9.
func enqueueOnly(t *testing.T, dir string, wfs ...*cloacina.Workflow) *tenant.SQLiteManager {
	t.Helper()
	m, err := tenant.NewSQLiteManager(dir, cloacina.WithWorkflows(wfs...), cloacina.WithEnqueueOnly(),
		cloacina.WithLogger(discardLogger))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestSQLiteResumesUnfinishedWorkAtStart: work accepted but never run
// (Pending executions), and work released by a drain (a Running execution
// whose task went back to Ready), run after a restart without any call
// for their tenants; a tenant with only finished work is not opened.
func TestSQLiteResumesUnfinishedWorkAtStart(t *testing.T) {
	ctx := testCtx(t, 2*time.Minute)
	dir := filepath.Join(t.TempDir(), "data")

	// 1. Accepted work: five executions queued by an enqueue-only process.
	q := enqueueOnly(t, dir, pipeline(t))
	var queued []uuid.UUID
	for range 5 {
		h, err := q.ExecuteAsync(ctx, "queued", "pipeline", nil)
		if err != nil {
			t.Fatal(err)
		}
		queued = append(queued, h.ID())
	}
	closeManager(t, q)

	// 2. Drained work: a task interrupted by Close, and a finished tenant.
	var attempts atomic.Int64
	started := make(chan struct{}, 4)
	drainy := cloacina.NewWorkflow("drainy").Task("step", func(ctx context.Context, _ *cloacina.Context) error {
		if attempts.Add(1) == 1 {
			started <- struct{}{}
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}).MustBuild()
	m1 := newIdleManager(t, dir, tenant.SQLiteConfig{NoResume: true}, cloacina.WithWorkflows(drainy))
	if _, err := m1.Execute(ctx, "done", "pipeline", nil); err != nil {
		t.Fatal(err)
	}
	hd, err := m1.ExecuteAsync(ctx, "drained", "drainy", nil)
	if err != nil {
		t.Fatal(err)
	}
	<-started
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_ = m1.Close(cctx) // interrupts the task: it goes back to Ready
	cancel()

	// The restart: nobody calls the manager for these tenants.
	m2 := newIdleManager(t, dir, tenant.SQLiteConfig{}, cloacina.WithWorkflows(drainy))
	select {
	case <-m2.Resumed():
	case <-ctx.Done():
		t.Fatal("the start scan never ended")
	}
	if got := m2.OpenTenants(); !slices.Equal(got, []string{"drained", "queued"}) {
		t.Errorf("OpenTenants after the start scan = %q; want [drained queued] (not done, which has no unfinished work)", got)
	}
	status := func(id string, exec uuid.UUID) cloacina.ExecutionStatus {
		r, ok := m2.OpenRunner(id)
		if !ok {
			return ""
		}
		st, err := r.ExecutionStatus(ctx, exec)
		if err != nil {
			return ""
		}
		return st
	}
	waitFor(t, 30*time.Second, "the accepted and drained work to run", func() bool {
		for _, id := range queued {
			if status("queued", id) != cloacina.ExecutionCompleted {
				return false
			}
		}
		return status("drained", hd.ID()) == cloacina.ExecutionCompleted
	})
	if n := attempts.Load(); n != 2 {
		t.Errorf("the drained task ran %d times; want 2 (interrupted, then resumed)", n)
	}
}

// TestSQLiteResumeWithIdleClosing: with idle closing, a tenant that only
// submits work (and is never called again) still runs it: its runner
// stays open while it has unfinished work, and a restart opens it.
func TestSQLiteResumeWithIdleClosing(t *testing.T) {
	ctx := testCtx(t, time.Minute)
	dir := filepath.Join(t.TempDir(), "data")
	q := enqueueOnly(t, dir, pipeline(t))
	h, err := q.ExecuteAsync(ctx, "submitter", "pipeline", nil)
	if err != nil {
		t.Fatal(err)
	}
	closeManager(t, q)
	m := newIdleManager(t, dir, tenant.SQLiteConfig{IdleTimeout: 50 * time.Millisecond})
	<-m.Resumed()
	// Once the work is done, the runner closes; the result is on disk.
	waitFor(t, 20*time.Second, "the work to run and the runner to close", func() bool {
		return len(m.OpenTenants()) == 0
	})
	r, err := m.ExistingRunner(ctx, "submitter")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := r.ExecutionStatus(ctx, h.ID()); err != nil || st != cloacina.ExecutionCompleted {
		t.Fatalf("status = %v, %v; want Completed", st, err)
	}
}

// foreignDB writes a SQLite database of another application at path.
func foreignDB(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE invoices (id INTEGER PRIMARY KEY, total INTEGER); INSERT INTO invoices (total) VALUES (42)`); err != nil {
		t.Fatal(err)
	}
}

// TestSQLiteForeignFilesAreNeverAdopted: a database file the manager did
// not create is not listed, not counted, not opened (ErrForeignStorage)
// and not deleted, whether it is another application's SQLite database or
// not a database at all.
func TestSQLiteForeignFilesAreNeverAdopted(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	m, dir := newManager(t)
	foreignDB(t, filepath.Join(dir, "foreign.db"))
	if err := os.WriteFile(filepath.Join(dir, "notes.db"), []byte("not a database"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Execute(ctx, "mine", "pipeline", nil); err != nil {
		t.Fatal(err)
	}
	if ids, err := m.Tenants(ctx); err != nil || !slices.Equal(ids, []string{"mine"}) {
		t.Errorf("Tenants = %q, %v; want [mine]", ids, err)
	}
	for _, id := range []string{"foreign", "notes"} {
		if ok, err := m.Exists(ctx, id); err != nil || ok {
			t.Errorf("Exists(%s) = %v, %v; want false", id, ok, err)
		}
		if _, err := m.Execute(ctx, id, "pipeline", nil); !errors.Is(err, tenant.ErrForeignStorage) {
			t.Errorf("Execute(%s): %v; want ErrForeignStorage", id, err)
		}
		if _, err := m.Runner(ctx, id); !errors.Is(err, tenant.ErrForeignStorage) {
			t.Errorf("Runner(%s): %v; want ErrForeignStorage", id, err)
		}
		if err := m.Remove(ctx, id); !errors.Is(err, tenant.ErrForeignStorage) {
			t.Errorf("Remove(%s): %v; want ErrForeignStorage", id, err)
		}
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "foreign.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var total, tables int
	if err := db.QueryRow(`SELECT total FROM invoices`).Scan(&total); err != nil || total != 42 {
		t.Errorf("the foreign database's data: %d, %v; want 42", total, err)
	}
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'table'`).Scan(&tables); err != nil || tables != 1 {
		t.Errorf("the foreign database has %d tables (%v); want its own 1: nothing added", tables, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "notes.db")); err != nil || string(b) != "not a database" {
		t.Errorf("notes.db changed: %q, %v", b, err)
	}
}

// TestSQLiteLegacyTenantFiles: a tenant database made before the marker
// (by a runner, without the application id) is still a tenant, recognised
// by its migrations table.
func TestSQLiteLegacyTenantFiles(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	r, err := cloacina.NewRunner(ctx, "sqlite://"+filepath.Join(dir, "legacy.db"), cloacina.WithWorkflows(pipeline(t)),
		cloacina.WithLogger(discardLogger))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Execute(ctx, "pipeline", nil); err != nil {
		t.Fatal(err)
	}
	if err := r.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	m := newIdleManager(t, dir, tenant.SQLiteConfig{})
	if ids, err := m.Tenants(ctx); err != nil || !slices.Equal(ids, []string{"legacy"}) {
		t.Fatalf("Tenants = %q, %v; want [legacy]", ids, err)
	}
	if mt, err := m.Metrics(ctx, "legacy"); err != nil || mt.TotalExecutions != 1 {
		t.Fatalf("Metrics(legacy) = %+v, %v; want 1 execution", mt, err)
	}
	if err := m.Remove(ctx, "legacy"); err != nil {
		t.Fatalf("Remove(legacy): %v", err)
	}
}

// TestSQLiteDataIsPrivate: with a umask of 0, the data folder the manager
// creates is 0700 and a tenant's database files are 0600.
func TestSQLiteDataIsPrivate(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	ctx := testCtx(t, 30*time.Second)
	dir := filepath.Join(t.TempDir(), "private", "data")
	m := newIdleManager(t, dir, tenant.SQLiteConfig{})
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm != 0o700 {
		t.Errorf("data folder mode %#o; want 0700", perm)
	}
	if _, err := m.Execute(ctx, "acme", "pipeline", nil); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"acme.db", "acme.db-wal", "acme.db-shm"} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if perm := st.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s mode %#o; want 0600", name, perm)
		}
	}
}
