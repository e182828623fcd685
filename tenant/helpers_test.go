package tenant_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/internal/pgtest"
	"github.com/cloacina-go/cloacina/tenant"
	"go.uber.org/goleak"
)

// TestMain runs the tests, stops the PostgreSQL server they shared (if
// any), and then checks that no test left goroutines behind: every manager
// the tests open is closed, and closing or removing must stop every runner
// (and a PostgresManager its engine).
func TestMain(m *testing.M) {
	code := pgtest.Main(m)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

var discardLogger = slog.New(slog.DiscardHandler)

// testCtx returns a context that ends after d, so that a bug fails a test
// instead of hanging it.
func testCtx(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// pipeline is a small two-task workflow: "first" records the input's
// "tenant", "second" (after "first") marks the execution done.
func pipeline(t testing.TB) *cloacina.Workflow {
	t.Helper()
	wf, err := cloacina.NewWorkflow("pipeline").
		Task("first", func(_ context.Context, c *cloacina.Context) error {
			v, _ := c.Get("tenant")
			return c.Set("seen_by_first", v)
		}).
		Task("second", func(_ context.Context, c *cloacina.Context) error {
			return c.Set("second", "done")
		}, cloacina.DependsOn("first")).
		Build()
	if err != nil {
		t.Fatalf("building the workflow: %v", err)
	}
	return wf
}

// newManager opens a SQLite manager on a fresh folder (which it returns)
// with the pipeline workflow and extra, closing it when the test ends.
func newManager(t testing.TB, extra ...cloacina.Option) (*tenant.SQLiteManager, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	opts := append([]cloacina.Option{
		cloacina.WithWorkflows(pipeline(t)),
		cloacina.WithPollInterval(50 * time.Millisecond),
		cloacina.WithLogger(discardLogger),
	}, extra...)
	m, err := tenant.NewSQLiteManager(dir, opts...)
	if err != nil {
		t.Fatalf("NewSQLiteManager: %v", err)
	}
	t.Cleanup(func() { closeManager(t, m) })
	return m, dir
}

// closeManager closes m, failing the test on an error other than an
// earlier Close.
func closeManager(t testing.TB, m tenant.Manager) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Close(ctx); err != nil && !errors.Is(err, tenant.ErrManagerClosed) {
		t.Errorf("Close: %v", err)
	}
}

// tree lists every file and folder under root, relative to it, sorted.
func tree(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatalf("walking %s: %v", root, err)
	}
	slices.Sort(out)
	return out
}
