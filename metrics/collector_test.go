package metrics_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/internal/pgtest"
	"github.com/cloacina-go/cloacina/metrics"
	"github.com/cloacina-go/cloacina/tenant"
)

// testWorkflows returns the workflows of the tests:
//   - ok: one task "t" that sleeps 10ms and completes;
//   - flaky: one task "a" whose first call (over the whole test) fails,
//     retried once;
//   - boom: one task "x" that fails;
//   - block: one task "b" that runs until release is closed or its
//     context ends (cancel).
func testWorkflows(t testing.TB, release <-chan struct{}) []*cloacina.Workflow {
	t.Helper()
	var flakyCalls atomic.Int32
	ok := cloacina.NewWorkflow("ok").
		Task("t", func(ctx context.Context, c *cloacina.Context) error {
			time.Sleep(10 * time.Millisecond)
			return c.Set("done", true)
		}).MustBuild()
	flaky := cloacina.NewWorkflow("flaky").
		Task("a", func(context.Context, *cloacina.Context) error {
			if flakyCalls.Add(1) == 1 {
				return errors.New("first call fails")
			}
			return nil
		}, cloacina.Retry(cloacina.RetryPolicy{MaxAttempts: 2, InitialDelay: time.Millisecond})).
		MustBuild()
	boom := cloacina.NewWorkflow("boom").
		Task("x", func(context.Context, *cloacina.Context) error { return errors.New("boom") }).
		MustBuild()
	block := cloacina.NewWorkflow("block").
		Task("b", func(ctx context.Context, _ *cloacina.Context) error {
			select {
			case <-release:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}).MustBuild()
	return []*cloacina.Workflow{ok, flaky, boom, block}
}

func execute(t testing.TB, ctx context.Context, m tenant.Manager, id, wf string, status cloacina.ExecutionStatus) {
	t.Helper()
	res, err := m.Execute(ctx, id, wf, nil)
	if err != nil {
		t.Fatalf("%s/%s: %v", id, wf, err)
	}
	if res.Status != status {
		t.Fatalf("%s/%s ended %s (%s), want %s", id, wf, res.Status, res.Error, status)
	}
}

// TestSQLiteManager runs completed, retried, failed, cancelled and blocked
// executions for three tenants of a SQLite manager and checks every
// family.
func TestSQLiteManager(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 25*time.Second)
	c := metrics.New()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)

	release := make(chan struct{})
	m, err := tenant.NewSQLiteManager(filepath.Join(t.TempDir(), "data"),
		cloacina.WithWorkflows(testWorkflows(t, release)...),
		cloacina.WithObserver(c.Observer()),
		// One slot per tenant: initech's second execution has to queue.
		cloacina.WithMaxConcurrentTasks(1),
		cloacina.WithPollInterval(20*time.Millisecond),
		cloacina.WithLogger(discardLogger))
	if err != nil {
		t.Fatal(err)
	}
	closeManager(t, m)
	t.Cleanup(func() { close(release) }) // runs before the manager closes
	c.WatchManager(m)

	if s := gather(t, reg); len(s["cloacina_queue_ready_tasks"].GetMetric()) != 0 || s["cloacina_db_connections"] != nil {
		t.Errorf("with no tenant open: queue series %v, pool series %v, want none",
			s.series("cloacina_queue_ready_tasks"), s.series("cloacina_db_connections"))
	}

	execute(t, ctx, m, "acme", "ok", cloacina.ExecutionCompleted)
	execute(t, ctx, m, "acme", "ok", cloacina.ExecutionCompleted)
	execute(t, ctx, m, "acme", "flaky", cloacina.ExecutionCompleted)
	execute(t, ctx, m, "acme", "boom", cloacina.ExecutionFailed)
	execute(t, ctx, m, "globex", "ok", cloacina.ExecutionCompleted)

	// globex: a running execution, cancelled.
	h, err := m.ExecuteAsync(ctx, "globex", "block", nil)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, ctx, "globex's block task to run", func() bool {
		mt, err := m.Metrics(ctx, "globex")
		return err == nil && mt.RunningTasks == 1
	})
	if err := h.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	if res, err := h.Wait(ctx); err != nil || res.Status != cloacina.ExecutionCancelled {
		t.Fatalf("cancelled execution: %v, %v", res, err)
	}

	// initech: one task running (blocked) and one waiting for the slot.
	for range 2 {
		if _, err := m.ExecuteAsync(ctx, "initech", "block", nil); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, ctx, "initech's queue", func() bool {
		mt, err := m.Metrics(ctx, "initech")
		return err == nil && mt.RunningTasks == 1 && mt.ReadyTasks == 1
	})

	s := expect(t, reg, []want{
		{"cloacina_executions_started_total", "tenant=acme,workflow=ok", 2},
		{"cloacina_executions_started_total", "tenant=acme,workflow=flaky", 1},
		{"cloacina_executions_started_total", "tenant=acme,workflow=boom", 1},
		{"cloacina_executions_started_total", "tenant=globex,workflow=ok", 1},
		{"cloacina_executions_started_total", "tenant=globex,workflow=block", 1},
		{"cloacina_executions_started_total", "tenant=initech,workflow=block", 2},

		{"cloacina_executions_finished_total", "tenant=acme,workflow=ok,status=Completed", 2},
		{"cloacina_executions_finished_total", "tenant=acme,workflow=flaky,status=Completed", 1},
		{"cloacina_executions_finished_total", "tenant=acme,workflow=boom,status=Failed", 1},
		{"cloacina_executions_finished_total", "tenant=globex,workflow=ok,status=Completed", 1},
		{"cloacina_executions_finished_total", "tenant=globex,workflow=block,status=Cancelled", 1},

		{"cloacina_task_attempts_total", "tenant=acme,workflow=ok,task=t,outcome=completed", 2},
		{"cloacina_task_attempts_total", "tenant=acme,workflow=flaky,task=a,outcome=retry", 1},
		{"cloacina_task_attempts_total", "tenant=acme,workflow=flaky,task=a,outcome=completed", 1},
		{"cloacina_task_attempts_total", "tenant=acme,workflow=boom,task=x,outcome=failed", 1},
		{"cloacina_task_attempts_total", "tenant=globex,workflow=ok,task=t,outcome=completed", 1},
		{"cloacina_task_attempts_total", "tenant=globex,workflow=block,task=b,outcome=failed", 1},

		{"cloacina_task_duration_seconds", "tenant=acme,workflow=ok", 2},
		{"cloacina_task_duration_seconds", "tenant=acme,workflow=flaky", 2},
		{"cloacina_task_duration_seconds", "tenant=acme,workflow=boom", 1},
		{"cloacina_task_duration_seconds", "tenant=globex,workflow=ok", 1},
		{"cloacina_task_duration_seconds", "tenant=globex,workflow=block", 1},
		{"cloacina_task_wait_seconds", "tenant=acme,workflow=ok", 2},
		{"cloacina_task_wait_seconds", "tenant=acme,workflow=flaky", 2},
		{"cloacina_task_wait_seconds", "tenant=globex,workflow=block", 1},

		{"cloacina_queue_ready_tasks", "tenant=acme", 0},
		{"cloacina_queue_running_tasks", "tenant=acme", 0},
		{"cloacina_queue_oldest_ready_seconds", "tenant=acme", 0},
		{"cloacina_queue_ready_tasks", "tenant=globex", 0},
		{"cloacina_queue_ready_tasks", "tenant=initech", 1},
		{"cloacina_queue_running_tasks", "tenant=initech", 1},

		// Three tenants, three engines of one slot each; initech's task
		// is the one running.
		{"cloacina_task_slots", "", 3},
		{"cloacina_running_tasks", "", 1},
		{"cloacina_scrape_errors_total", "", 0},
	})

	// Only the finished executions were counted as finished, and the
	// running task has no attempt yet.
	if got := s.series("cloacina_executions_finished_total"); len(got) != 5 {
		t.Errorf("finished series = %v, want the 5 above", got)
	}
	if got := s.series("cloacina_task_attempts_total"); len(got) != 6 {
		t.Errorf("attempt series = %v, want the 6 above", got)
	}
	// Durations are in seconds: ok's two attempts slept 10ms each.
	if h, _ := s.find("cloacina_task_duration_seconds", "tenant=acme,workflow=ok"); h.GetHistogram().GetSampleSum() < 0.02 {
		t.Errorf("ok's duration sum = %gs, want at least 0.02s", h.GetHistogram().GetSampleSum())
	}
	if v, _ := s.value("cloacina_queue_oldest_ready_seconds", "tenant=initech"); v <= 0 || v > 20 {
		t.Errorf("initech's oldest ready task waited %gs, want a small positive age", v)
	}
	for _, state := range []string{"open", "max"} {
		if v, ok := s.value("cloacina_db_connections", "state="+state); !ok || v <= 0 {
			t.Errorf("cloacina_db_connections{state=%s} = %g (present %v), want > 0", state, v, ok)
		}
	}
	if _, ok := s.value("cloacina_db_connections", "state=in_use"); !ok {
		t.Error("cloacina_db_connections{state=in_use} is missing")
	}
	if got, want := s.series("cloacina_queue_running_tasks"), []string{"tenant=acme", "tenant=globex", "tenant=initech"}; !slices.Equal(got, want) {
		t.Errorf("queue series = %v, want %v", got, want)
	}

	t.Run("failing tenants are skipped and counted", func(t *testing.T) {
		c := metrics.New(metrics.WithScrapeTimeout(200 * time.Millisecond))
		reg := prometheus.NewRegistry()
		reg.MustRegister(c)
		// acme's reading fails, globex's hangs until the scrape gives up.
		c.WatchManager(&faultyManager{Manager: m, fail: "acme", hang: "globex"})
		start := time.Now()
		s := gather(t, reg)
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("a scrape with a hanging tenant took %v, want about the 200ms timeout", took)
		}
		if got, want := s.series("cloacina_queue_ready_tasks"), []string{"tenant=initech"}; !slices.Equal(got, want) {
			t.Errorf("queue series = %v, want only %v", got, want)
		}
		if v, _ := s.value("cloacina_scrape_errors_total", ""); v != 2 {
			t.Errorf("cloacina_scrape_errors_total = %g, want 2", v)
		}
		// initech's engine is still counted.
		if v, _ := s.value("cloacina_task_slots", ""); v != 1 {
			t.Errorf("cloacina_task_slots = %g, want initech's 1", v)
		}
	})

	t.Run("unwatched", func(t *testing.T) {
		c.WatchManager(nil)
		if n := testutil.CollectAndCount(c, "cloacina_queue_ready_tasks", "cloacina_db_connections", "cloacina_task_slots"); n != 0 {
			t.Errorf("%d scrape-time series with no manager watched, want 0", n)
		}
		if n := testutil.CollectAndCount(c, "cloacina_executions_started_total"); n != 6 {
			t.Errorf("%d started series, want the 6 counted", n)
		}
	})
}

// faultyManager fails the metrics of one tenant and hangs on another's.
type faultyManager struct {
	tenant.Manager
	fail, hang string
}

func (f *faultyManager) Metrics(ctx context.Context, id string) (*cloacina.Metrics, error) {
	switch id {
	case f.fail:
		return nil, errors.New("injected failure")
	case f.hang:
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return f.Manager.Metrics(ctx, id)
}

// TestPlainRunner: a runner outside any manager is observed with an empty
// tenant label, and nothing is read at scrape time.
func TestPlainRunner(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 10*time.Second)
	c := metrics.New()
	r, err := cloacina.NewRunner(ctx, "sqlite://"+filepath.Join(t.TempDir(), "r.db"),
		cloacina.WithWorkflows(testWorkflows(t, nil)...),
		cloacina.WithObserver(c.Observer()),
		cloacina.WithLogger(discardLogger))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	if _, err := r.Execute(ctx, "boom", nil); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	expect(t, reg, []want{
		{"cloacina_executions_started_total", "tenant=,workflow=boom", 1},
		{"cloacina_executions_finished_total", "tenant=,workflow=boom,status=Failed", 1},
		{"cloacina_task_attempts_total", "tenant=,workflow=boom,task=x,outcome=failed", 1},
		{"cloacina_scrape_errors_total", "", 0},
	})
	if n := testutil.CollectAndCount(c, "cloacina_queue_ready_tasks", "cloacina_db_connections"); n != 0 {
		t.Errorf("%d scrape-time series with no manager watched, want 0", n)
	}
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// TestPostgresManager: the tenants of a PostgreSQL manager share one
// engine, which the pool and slot gauges count once.
func TestPostgresManager(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.Shared(t).NewDatabase(t)
	ctx := testCtx(t, 25*time.Second)
	c := metrics.New()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	m, err := tenant.NewPostgresManager(ctx, dbURL,
		cloacina.WithWorkflows(testWorkflows(t, nil)...),
		cloacina.WithObserver(c.Observer()),
		cloacina.WithMaxConcurrentTasks(6),
		cloacina.WithDBPoolSize(5),
		cloacina.WithPollInterval(50*time.Millisecond),
		cloacina.WithLogger(discardLogger))
	if err != nil {
		t.Fatal(err)
	}
	closeManager(t, m)
	c.WatchManager(m)

	// Before any tenant is open, the manager's engine is already counted.
	if v, ok := gather(t, reg).value("cloacina_task_slots", ""); v != 6 {
		t.Errorf("cloacina_task_slots with no tenant open = %g (present %v), want 6", v, ok)
	}
	for _, id := range []string{"acme", "globex", "initech"} {
		execute(t, ctx, m, id, "ok", cloacina.ExecutionCompleted)
	}
	execute(t, ctx, m, "acme", "boom", cloacina.ExecutionFailed)

	stats := m.Engine().Stats()
	s := expect(t, reg, []want{
		{"cloacina_executions_started_total", "tenant=acme,workflow=ok", 1},
		{"cloacina_executions_started_total", "tenant=globex,workflow=ok", 1},
		{"cloacina_executions_finished_total", "tenant=initech,workflow=ok,status=Completed", 1},
		{"cloacina_executions_finished_total", "tenant=acme,workflow=boom,status=Failed", 1},
		{"cloacina_task_attempts_total", "tenant=globex,workflow=ok,task=t,outcome=completed", 1},
		{"cloacina_task_duration_seconds", "tenant=acme,workflow=ok", 1},
		{"cloacina_queue_ready_tasks", "tenant=acme", 0},
		{"cloacina_queue_running_tasks", "tenant=initech", 0},
		// One engine for three tenants: its slots and pool, once.
		{"cloacina_task_slots", "", 6},
		{"cloacina_db_connections", "state=max", float64(stats.MaxOpenConnections)},
		{"cloacina_running_tasks", "", 0},
		{"cloacina_scrape_errors_total", "", 0},
	})
	if stats.MaxOpenConnections < 1 {
		t.Errorf("engine MaxOpenConnections = %d, want a bounded pool", stats.MaxOpenConnections)
	}
	if v, _ := s.value("cloacina_db_connections", "state=open"); v < 1 || v > float64(stats.MaxOpenConnections) {
		t.Errorf("open connections = %g, want 1..%d (one pool)", v, stats.MaxOpenConnections)
	}
	if got := s.series("cloacina_queue_ready_tasks"); len(got) != 3 {
		t.Errorf("queue series = %v, want the 3 tenants", got)
	}
}
