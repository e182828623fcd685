package tenant_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/tenant"
	"github.com/google/uuid"
)

func TestNewSQLiteManagerCreatesFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b", "tenants")
	m, err := tenant.NewSQLiteManager(dir, cloacina.WithLogger(discardLogger))
	if err != nil {
		t.Fatalf("NewSQLiteManager: %v", err)
	}
	defer closeManager(t, m)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Fatalf("data folder: %v, %v; want a folder", st, err)
	}
	p, err := m.Path("acme")
	if err != nil || p != filepath.Join(dir, "acme.db") {
		t.Errorf("Path(acme) = %q, %v; want %q", p, err, filepath.Join(dir, "acme.db"))
	}
}

func TestNewSQLiteManagerRefusesBadFolders(t *testing.T) {
	root := t.TempDir()
	file := filepath.Join(root, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"", filepath.Join(root, "a?b"), filepath.Join(root, "a#b"), filepath.Join(root, "100%"), filepath.Join(file, "sub")} {
		if m, err := tenant.NewSQLiteManager(dir); err == nil {
			closeManager(t, m)
			t.Errorf("NewSQLiteManager(%q) succeeded, want an error", dir)
		}
	}
	if got := tree(t, root); !slices.Equal(got, []string{".", "file"}) {
		t.Errorf("files after refusals: %q", got)
	}
	if _, err := tenant.NewSQLiteManager(filepath.Join(root, "x"), cloacina.WithSchema("acme")); !errors.Is(err, cloacina.ErrInvalidOption) {
		t.Errorf("NewSQLiteManager(WithSchema) = %v, want ErrInvalidOption", err)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestManagerLogs(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	var logs syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m, _ := newManager(t, cloacina.WithLogger(logger))
	if _, err := m.Execute(ctx, "acme", "pipeline", nil); err != nil {
		t.Fatal(err)
	}
	if err := m.Remove(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	for _, want := range []string{`"msg":"tenant created","component":"tenant"`, `"tenant":"acme"`, `"msg":"tenant removed"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the logs lack %s:\n%s", want, out)
		}
	}
}

func TestRunnerConcurrentFirstUse(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	m, _ := newManager(t)
	const n = 50
	runners := make([]*cloacina.Runner, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			runners[i], errs[i] = m.Runner(ctx, "acme")
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		if runners[i] != runners[0] {
			t.Fatalf("call %d got runner %p, call 0 got %p: want one runner", i, runners[i], runners[0])
		}
	}
	again, err := m.Runner(ctx, "acme")
	if err != nil || again != runners[0] {
		t.Errorf("a later call got %p, %v; want the same runner %p", again, err, runners[0])
	}
	ids, err := m.Tenants(ctx)
	if err != nil || !slices.Equal(ids, []string{"acme"}) {
		t.Errorf("Tenants() = %q, %v; want [acme]", ids, err)
	}
}

func TestRunnerFailedOpenIsNotCached(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	m, dir := newManager(t)
	// A folder where the database file should be makes opening fail.
	blocker := filepath.Join(dir, "acme.db")
	if err := os.Mkdir(blocker, 0o750); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Runner(ctx, "acme"); err == nil {
		t.Fatal("Runner succeeded on a folder, want an error")
	}
	if ok, err := m.Exists(ctx, "acme"); err != nil || ok {
		t.Errorf("Exists(acme) = %v, %v with a folder in the way; want false", ok, err)
	}
	if ids, err := m.Tenants(ctx); err != nil || len(ids) != 0 {
		t.Errorf("Tenants() = %q, %v; want none (a folder is no tenant)", ids, err)
	}
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	r, err := m.Runner(ctx, "acme")
	if err != nil {
		t.Fatalf("Runner after the cause went away: %v (a failure was cached?)", err)
	}
	res, err := r.Execute(ctx, "pipeline", nil)
	if err != nil || res.Status != cloacina.ExecutionCompleted {
		t.Fatalf("Execute: %v, %v", res, err)
	}
}

func TestUnknownWorkflowCreatesNoTenant(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	m, dir := newManager(t)
	if _, err := m.Execute(ctx, "acme", "nope", nil); !errors.Is(err, cloacina.ErrUnknownWorkflow) {
		t.Errorf("Execute(nope) = %v, want ErrUnknownWorkflow", err)
	}
	if _, err := m.ExecuteAsync(ctx, "acme", "nope", nil); !errors.Is(err, cloacina.ErrUnknownWorkflow) {
		t.Errorf("ExecuteAsync(nope) = %v, want ErrUnknownWorkflow", err)
	}
	if got := tree(t, dir); !slices.Equal(got, []string{"."}) {
		t.Errorf("files: %q, want none", got)
	}
}

// TestTenantIsolation runs a workflow for two tenants at once and checks
// that neither sees the other's executions.
func TestTenantIsolation(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	m, _ := newManager(t)
	tenants := []string{"tenant_a", "tenant-b"}
	const perTenant = 5
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
				if res.Status != cloacina.ExecutionCompleted || len(res.Tasks) != 2 {
					t.Errorf("Execute(%s) = %s with %d tasks (%s), want Completed with 2", tn, res.Status, len(res.Tasks), res.Error)
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

	runners := map[string]*cloacina.Runner{}
	for _, tn := range tenants {
		r, err := m.Runner(ctx, tn)
		if err != nil {
			t.Fatal(err)
		}
		runners[tn] = r
	}
	if runners[tenants[0]] == runners[tenants[1]] {
		t.Fatal("both tenants share one runner")
	}
	all := map[uuid.UUID]string{}
	for _, tn := range tenants {
		page, err := runners[tn].ListExecutions(ctx, cloacina.ListOptions{Limit: 100})
		if err != nil {
			t.Fatalf("ListExecutions(%s): %v", tn, err)
		}
		var listed []uuid.UUID
		for _, e := range page.Executions {
			listed = append(listed, e.ExecutionID)
		}
		if !sameIDs(listed, ids[tn]) {
			t.Errorf("tenant %s lists %v, want exactly its own %v", tn, listed, ids[tn])
		}
		for _, id := range ids[tn] {
			if other, dup := all[id]; dup {
				t.Errorf("execution id %s belongs to %s and %s", id, other, tn)
			}
			all[id] = tn
		}
	}
	for id, owner := range all {
		for _, tn := range tenants {
			st, err := runners[tn].ExecutionStatus(ctx, id)
			switch {
			case tn == owner && (err != nil || st != cloacina.ExecutionCompleted):
				t.Errorf("owner %s reads %s: %s, %v", tn, id, st, err)
			case tn != owner && !errors.Is(err, cloacina.ErrExecutionNotFound):
				t.Errorf("tenant %s reads %s's execution %s: %s, %v; want ErrExecutionNotFound", tn, owner, id, st, err)
			}
		}
	}
	if len(all) != len(tenants)*perTenant {
		t.Errorf("%d distinct execution ids, want %d", len(all), len(tenants)*perTenant)
	}
}

func sameIDs(a, b []uuid.UUID) bool {
	set := func(ids []uuid.UUID) map[uuid.UUID]bool {
		m := map[uuid.UUID]bool{}
		for _, id := range ids {
			m[id] = true
		}
		return m
	}
	return len(a) == len(b) && maps.Equal(set(a), set(b))
}

func TestTenantsIgnoresStrayFiles(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	m, dir := newManager(t)
	for _, id := range []string{"beta", "alpha-1", "_gamma", "Zed"} {
		if _, err := m.Runner(ctx, id); err != nil {
			t.Fatalf("Runner(%s): %v", id, err)
		}
	}
	for _, name := range []string{"notes.txt", "x.db-wal", "x.db-shm", "bad name.db", "public.db", "pg_x.db", "a.b.db", ".db", "acme.DB", "acme.db.bak"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("stray"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "folder.db"), 0o750); err != nil {
		t.Fatal(err)
	}
	want := []string{"Zed", "_gamma", "alpha-1", "beta"}
	got, err := m.Tenants(ctx)
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("Tenants() = %q, %v; want %q", got, err, want)
	}
	for _, id := range []string{"x", "folder", "notes"} {
		if ok, err := m.Exists(ctx, id); err != nil || ok {
			t.Errorf("Exists(%s) = %v, %v; want false", id, ok, err)
		}
	}
	if ok, err := m.Exists(ctx, "alpha-1"); err != nil || !ok {
		t.Errorf("Exists(alpha-1) = %v, %v; want true", ok, err)
	}
}

func TestRemove(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	m, dir := newManager(t)
	old, err := m.Runner(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	first, err := old.Execute(ctx, "pipeline", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Runner(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "acme.db")
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("before Remove: %v", err)
		}
	}

	if err := m.Remove(ctx, "acme"); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after Remove, %s: %v; want it gone", filepath.Base(p), err)
		}
	}
	if ok, err := m.Exists(ctx, "acme"); err != nil || ok {
		t.Errorf("Exists(acme) = %v, %v after Remove", ok, err)
	}
	if ids, err := m.Tenants(ctx); err != nil || !slices.Equal(ids, []string{"other"}) {
		t.Errorf("Tenants() = %q, %v; want [other]", ids, err)
	}
	if _, err := old.ExecuteAsync(ctx, "pipeline", nil); !errors.Is(err, cloacina.ErrRunnerClosed) {
		t.Errorf("the removed tenant's runner: ExecuteAsync = %v, want ErrRunnerClosed", err)
	}
	if err := m.Remove(ctx, "acme"); !errors.Is(err, tenant.ErrTenantNotFound) {
		t.Errorf("second Remove = %v, want ErrTenantNotFound", err)
	}
	if err := m.Remove(ctx, "never-seen"); !errors.Is(err, tenant.ErrTenantNotFound) {
		t.Errorf("Remove(never-seen) = %v, want ErrTenantNotFound", err)
	}

	// The tenant comes back empty.
	fresh, err := m.Runner(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if fresh == old {
		t.Error("Runner after Remove returned the removed runner")
	}
	page, err := fresh.ListExecutions(ctx, cloacina.ListOptions{})
	if err != nil || len(page.Executions) != 0 {
		t.Errorf("fresh tenant lists %v, %v; want no executions", page, err)
	}
	if _, err := fresh.ExecutionStatus(ctx, first.ExecutionID); !errors.Is(err, cloacina.ErrExecutionNotFound) {
		t.Errorf("fresh tenant reads the old execution: %v, want ErrExecutionNotFound", err)
	}
}

// TestRemoveLeftoverFiles removes a tenant that has no runner open and
// whose database has side files left behind.
func TestRemoveLeftoverFiles(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	m, dir := newManager(t)
	for _, name := range []string{"ghost.db", "ghost.db-wal", "ghost.db-shm", "ghost.db-journal", "keep.txt"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := m.Exists(ctx, "ghost"); err != nil || !ok {
		t.Fatalf("Exists(ghost) = %v, %v; want true", ok, err)
	}
	if err := m.Remove(ctx, "ghost"); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if got := tree(t, dir); !slices.Equal(got, []string{".", "keep.txt"}) {
		t.Errorf("files after Remove: %q, want only keep.txt", got)
	}
}

// TestRemoveInterruptsTasksAtContextEnd removes a tenant whose task runs
// until cancelled: Remove waits until its context ends, then deletes the
// data anyway.
func TestRemoveInterruptsTasksAtContextEnd(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	started := make(chan struct{}, 1)
	blocker := cloacina.NewWorkflow("block").Task("wait", func(ctx context.Context, _ *cloacina.Context) error {
		started <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}).MustBuild()
	m, dir := newManager(t, cloacina.WithWorkflows(blocker))
	if _, err := m.ExecuteAsync(ctx, "acme", "block", nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatal("the task never started")
	}
	rctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	begin := time.Now()
	if err := m.Remove(rctx, "acme"); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if waited := time.Since(begin); waited < 150*time.Millisecond {
		t.Errorf("Remove returned after %v, before its context ended: it did not wait for the task", waited)
	}
	if got := tree(t, dir); !slices.Equal(got, []string{"."}) {
		t.Errorf("files after Remove: %q", got)
	}
}

// TestRemoveConcurrentWithRunner races Remove against Runner and Execute
// for one tenant, then checks that the runner the manager keeps writes to
// the database file on disk (not to a deleted one).
func TestRemoveConcurrentWithRunner(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	m, dir := newManager(t)
	for round := range 15 {
		var wg sync.WaitGroup
		wg.Go(func() {
			if err := m.Remove(ctx, "acme"); err != nil && !errors.Is(err, tenant.ErrTenantNotFound) {
				t.Errorf("round %d: Remove: %v", round, err)
			}
		})
		for range 3 {
			wg.Go(func() {
				_, err := m.Execute(ctx, "acme", "pipeline", nil)
				// The runner may be shut down by the Remove under the call's feet.
				if err != nil && !errors.Is(err, cloacina.ErrRunnerClosed) {
					t.Errorf("round %d: Execute: %v", round, err)
				}
			})
		}
		wg.Wait()
	}
	res, err := m.Execute(ctx, "acme", "pipeline", nil)
	if err != nil || res.Status != cloacina.ExecutionCompleted {
		t.Fatalf("Execute after the race: %v, %v", res, err)
	}
	if ok, err := m.Exists(ctx, "acme"); err != nil || !ok {
		t.Fatalf("Exists(acme) = %v, %v; want true", ok, err)
	}
	closeManager(t, m)

	// Another manager on the folder must find the execution in the file.
	m2, err := tenant.NewSQLiteManager(dir, cloacina.WithWorkflows(pipeline(t)), cloacina.WithLogger(discardLogger))
	if err != nil {
		t.Fatal(err)
	}
	defer closeManager(t, m2)
	r2, err := m2.Runner(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := r2.ExecutionStatus(ctx, res.ExecutionID); err != nil || st != cloacina.ExecutionCompleted {
		t.Errorf("the last execution in the file: %s, %v; want Completed (the runner wrote to a deleted file?)", st, err)
	}
}

func TestMetrics(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	m, _ := newManager(t)
	for i := range 3 {
		if _, err := m.Execute(ctx, "acme", "pipeline", map[string]any{"i": i}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Execute(ctx, "other", "pipeline", nil); err != nil {
		t.Fatal(err)
	}
	mt, err := m.Metrics(ctx, "acme")
	if err != nil {
		t.Fatalf("Metrics: %v", err)
	}
	if mt.TotalExecutions != 3 || mt.ActiveExecutions != 0 || mt.ByStatus[cloacina.ExecutionCompleted] != 3 {
		t.Errorf("Metrics(acme) = %+v, want 3 executions, all completed", mt)
	}
	if mt.AvgExecutionTime < 0 {
		t.Errorf("AvgExecutionTime = %v", mt.AvgExecutionTime)
	}
	other, err := m.Metrics(ctx, "other")
	if err != nil || other.TotalExecutions != 1 {
		t.Errorf("Metrics(other) = %+v, %v; want 1 execution", other, err)
	}
}

func TestClose(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	m, dir := newManager(t)
	var runners []*cloacina.Runner
	for _, id := range []string{"a", "b"} {
		r, err := m.Runner(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		runners = append(runners, r)
	}
	if err := m.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for i, r := range runners {
		if _, err := r.ExecuteAsync(ctx, "pipeline", nil); !errors.Is(err, cloacina.ErrRunnerClosed) {
			t.Errorf("runner %d after Close: %v, want ErrRunnerClosed", i, err)
		}
	}
	checks := map[string]error{}
	_, checks["Runner"] = m.Runner(ctx, "a")
	_, checks["Runner(new)"] = m.Runner(ctx, "c")
	_, checks["Execute"] = m.Execute(ctx, "a", "pipeline", nil)
	_, checks["ExecuteAsync"] = m.ExecuteAsync(ctx, "a", "pipeline", nil)
	_, checks["Tenants"] = m.Tenants(ctx)
	_, checks["Exists"] = m.Exists(ctx, "a")
	checks["Remove"] = m.Remove(ctx, "a")
	_, checks["Metrics"] = m.Metrics(ctx, "a")
	checks["Close"] = m.Close(ctx)
	for method, err := range checks {
		if !errors.Is(err, tenant.ErrManagerClosed) {
			t.Errorf("%s after Close = %v, want ErrManagerClosed", method, err)
		}
	}
	// Close keeps the data.
	if got := tree(t, dir); !slices.Contains(got, "a.db") || !slices.Contains(got, "b.db") || slices.Contains(got, "c.db") {
		t.Errorf("files after Close: %q", got)
	}
}

// TestCloseWaitsForRunningTasks closes a manager while a task runs: Close
// waits for it, and the execution is recorded as completed.
func TestCloseWaitsForRunningTasks(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	started := make(chan struct{}, 1)
	slow := cloacina.NewWorkflow("slow").Task("nap", func(ctx context.Context, c *cloacina.Context) error {
		started <- struct{}{}
		select {
		case <-time.After(300 * time.Millisecond):
			return c.Set("napped", true)
		case <-ctx.Done():
			return ctx.Err()
		}
	}).MustBuild()
	m, dir := newManager(t, cloacina.WithWorkflows(slow))
	h, err := m.ExecuteAsync(ctx, "acme", "slow", nil)
	if err != nil {
		t.Fatal(err)
	}
	<-started
	if err := m.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	m2, err := tenant.NewSQLiteManager(dir, cloacina.WithWorkflows(slow), cloacina.WithLogger(discardLogger))
	if err != nil {
		t.Fatal(err)
	}
	defer closeManager(t, m2)
	r, err := m2.Runner(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.ExecutionResult(ctx, h.ID())
	if err != nil || res.Status != cloacina.ExecutionCompleted {
		t.Fatalf("after Close: %v, %v; want Completed", res, err)
	}
}

// TestCloseRacesWithRunner closes a manager while tenants are being
// opened: every call either gets a runner that Close shut down or
// ErrManagerClosed, and no runner is left running (TestMain checks for
// leaked goroutines).
func TestCloseRacesWithRunner(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	m, _ := newManager(t)
	const n = 20
	runners := make([]*cloacina.Runner, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			runners[i], errs[i] = m.Runner(ctx, fmt.Sprintf("t%d", i%7))
		})
	}
	close(start)
	time.Sleep(time.Millisecond)
	if err := m.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
	wg.Wait()
	for i := range n {
		switch {
		case errs[i] != nil && !errors.Is(errs[i], tenant.ErrManagerClosed):
			t.Errorf("call %d: %v", i, errs[i])
		case errs[i] == nil:
			if _, err := runners[i].ExecuteAsync(ctx, "pipeline", nil); !errors.Is(err, cloacina.ErrRunnerClosed) {
				t.Errorf("call %d got a runner still open after Close: %v", i, err)
			}
		}
	}
}

// TestFailedOpenLeavesNoFile opens a new tenant with ever longer deadlines,
// so that opening fails at every step of creating the database, and checks
// that each failure leaves no file behind (no half-created tenant).
func TestFailedOpenLeavesNoFile(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	m, dir := newManager(t)
	failures := 0
	for d := 50 * time.Microsecond; ; d += d / 4 {
		if d > 10*time.Second {
			t.Fatal("opening never succeeded")
		}
		short, cancel := context.WithTimeout(ctx, d)
		_, err := m.Runner(short, "acme")
		cancel()
		if err == nil {
			break
		}
		failures++
		if got := tree(t, dir); !slices.Equal(got, []string{"."}) {
			t.Fatalf("after a failed open (deadline %v: %v), files: %q", d, err, got)
		}
	}
	if failures == 0 {
		t.Log("opening never failed: nothing checked")
	}
	if ok, err := m.Exists(ctx, "acme"); err != nil || !ok {
		t.Errorf("Exists(acme) = %v, %v after a successful open", ok, err)
	}
}
