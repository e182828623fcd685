package tenant_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/tenant"
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

// TestRemoveDeletesFiles checks that Remove deletes the tenant's database
// with its -wal and -shm files, and leaves the other tenants' files alone.
// (What Remove does for every manager is in testRemove.)
func TestRemoveDeletesFiles(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	m, dir := newManager(t)
	for _, id := range []string{"acme", "other"} {
		if _, err := m.Execute(ctx, id, "pipeline", nil); err != nil {
			t.Fatal(err)
		}
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
	if got := tree(t, dir); !slices.Equal(got, []string{".", "other.db", "other.db-shm", "other.db-wal"}) {
		t.Errorf("files after Remove: %q; want only other's", got)
	}
}

// TestRemoveLeftoverFiles removes a tenant that has no runner open and
// whose database has side files left behind.
func TestRemoveLeftoverFiles(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	m0, dir := newManager(t)
	if _, err := m0.Execute(ctx, "ghost", "pipeline", nil); err != nil {
		t.Fatal(err)
	}
	closeManager(t, m0)
	for _, name := range []string{"ghost.db-wal", "ghost.db-shm", "ghost.db-journal", "keep.txt"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	m, err := tenant.NewSQLiteManagerWithConfig(dir, tenant.SQLiteConfig{NoResume: true}, cloacina.WithLogger(discardLogger))
	if err != nil {
		t.Fatal(err)
	}
	defer closeManager(t, m)
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
