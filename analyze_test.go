package cloacina_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/internal/pgtest"
)

// TestAnalyzeAfterBurst: once a process has created enough executions in a
// tenant, the engine refreshes the planner's statistics of its tables
// rather than wait for autovacuum, whose statistics lag a burst.
func TestAnalyzeAfterBurst(t *testing.T) {
	t.Parallel()
	url := pgtest.Shared(t).NewDatabase(t)
	ctx := testCtx(t, 60*time.Second)
	wf := cloacina.NewWorkflow("noop").Task("t", okTask).MustBuild()
	r := openRunner(t, url, cloacina.WithWorkflows(wf), cloacina.WithSchema("burst"), cloacina.WithEnqueueOnly())
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	analyzed := func() bool {
		var n int
		err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_user_tables
WHERE schemaname = 'burst' AND relname IN ('executions', 'tasks') AND last_analyze IS NOT NULL`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n == 2
	}
	if _, err := r.ExecuteMany(ctx, "noop", make([]any, 999)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if analyzed() {
		t.Fatal("the tables were analyzed after 999 executions; want only from 1,000")
	}
	if _, err := r.ExecuteMany(ctx, "noop", make([]any, 1)); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, ctx, "ANALYZE of the tenant's tables", analyzed)
	shutdown(t, r)
}

// TestAnalyzeFunc: a runner given an AnalyzeFunc (as a SecureManager's
// tenants are, whose role may not ANALYZE) calls it instead.
func TestAnalyzeFunc(t *testing.T) {
	t.Parallel()
	url := pgtest.Shared(t).NewDatabase(t)
	ctx := testCtx(t, 60*time.Second)
	called := make(chan string, 1)
	fn := func(_ context.Context, schema string) error {
		select {
		case called <- schema:
		default:
		}
		return nil
	}
	wf := cloacina.NewWorkflow("noop").Task("t", okTask).MustBuild()
	r := openRunner(t, url, cloacina.WithWorkflows(wf), cloacina.WithSchema("viafunc"), cloacina.WithEnqueueOnly(),
		cloacina.WithAnalyzeFunc(fn))
	if _, err := r.ExecuteMany(ctx, "noop", make([]any, 1000)); err != nil {
		t.Fatal(err)
	}
	select {
	case schema := <-called:
		if schema != "viafunc" {
			t.Errorf("AnalyzeFunc got schema %q, want viafunc", schema)
		}
	case <-ctx.Done():
		t.Fatal("AnalyzeFunc was not called after 1,000 executions")
	}
	shutdown(t, r)
}
