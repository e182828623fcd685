package faulttest_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/internal/faulttest"
	"github.com/cloacina-go/cloacina/internal/pgtest"
	"github.com/jackc/pgx/v5"
)

// TestPostgresKillOneOfTwoWorkers runs two worker processes on one schema,
// kills one with SIGKILL mid-run and starts a replacement under a new id:
// every execution completes, no claimed attempt completes in two
// processes, no two processes run one task at once, and no task Completed
// at the kill runs again.
func TestPostgresKillOneOfTwoWorkers(t *testing.T) {
	url := pgtest.Shared(t).NewDatabase(t)
	ctx := testContext(t, 90*time.Second)
	h := newHarness(t, ctx, url)
	hb := []string{"-heartbeat", "200ms", "-stale", "1500ms"}
	w1 := h.worker("pg-w1", hb...)
	w2 := h.worker("pg-w2", hb...)
	keys := h.produce(faulttest.ChainWorkflow, 60)
	// Both workers work before the kill.
	h.waitRuns(40, func(runs []faulttest.Run) bool {
		seen := map[int]bool{}
		for _, r := range runs {
			seen[r.PID] = true
		}
		return seen[w1.PID()] && seen[w2.PID()]
	})
	h.kill(w1)
	completed, takenAt := h.snapshot(keys, cloacina.TaskCompleted)
	running, _ := h.snapshot(keys, cloacina.TaskRunning)
	orphans := len(running)
	t.Logf("killed pid %d: %d tasks Completed, %d Running", w1.PID(), len(completed), len(running))
	w3 := h.worker("pg-w3", hb...)
	h.waitIdle(60 * time.Second)
	h.stop(w2)
	h.stop(w3)

	rep := h.inspect(keys)
	checkSound(t, rep, 60)
	checkNotRerun(t, rep, completed, takenAt, 0)
	if rep.LiveReruns != 0 {
		t.Errorf("%d tasks completed more than once by processes that were not killed", rep.LiveReruns)
	}
	if orphans == 0 || rep.Recoveries == 0 {
		t.Errorf("%d tasks Running at the kill, %d recoveries: want the kill to interrupt tasks that are then recovered", orphans, rep.Recoveries)
	}
	if n := checkClaims(t, ctx, h.obs, rep); n > 0 {
		t.Logf("%d task attempts completed twice (the first run's process was killed before committing it)", n)
	}
}

// TestPostgresRestartAndTerminatedBackends runs 100 executions on two
// worker processes while every backend of the database is terminated once
// and the server is stopped for 3s: the workers ride it out and every
// execution completes.
func TestPostgresRestartAndTerminatedBackends(t *testing.T) {
	srv := pgtest.Start(t) // this test stops the server: not the shared one
	url := srv.NewDatabase(t)
	ctx := testContext(t, 150*time.Second)
	h := newHarness(t, ctx, url)
	args := []string{"-heartbeat", "200ms", "-stale", "2s", "-max-tasks", "3", "-sleep-min", "50ms", "-sleep-max", "250ms"}
	w1 := h.worker("restart-w1", args...)
	w2 := h.worker("restart-w2", args...)
	keys := h.produce(faulttest.ChainWorkflow, 100)

	before := len(h.waitRuns(30, nil))
	terminated := terminateBackends(t, ctx, url)
	t.Logf("terminated %d backends after %d runs", terminated, before)
	if terminated < 2 {
		t.Errorf("terminated %d backends, want at least the two workers'", terminated)
	}
	before = len(h.waitRuns(before+30, nil)) // the workers reconnected
	t.Logf("stopping the server after %d runs", before)
	srv.Stop(t)
	time.Sleep(3 * time.Second)
	srv.StartAgain(t)
	h.waitIdle(90 * time.Second)
	for _, w := range []*faulttest.Process{w1, w2} {
		if w.Exited() {
			t.Errorf("worker pid %d exited during the outage: %s", w.PID(), w.ExitStatus())
		}
	}
	h.stop(w1)
	h.stop(w2)
	rep := h.inspect(keys)
	checkSound(t, rep, 100)
	if n := checkClaims(t, ctx, h.obs, rep); n > 0 {
		t.Logf("%d task attempts completed twice", n)
	}
}

// TestPostgresOutageLongerThanStaleClaim stops PostgreSQL, up to three
// times, for longer than StaleClaimAfter while one worker runs long tasks.
// When the database is back the worker's claims are stale and may be
// recovered, even by the worker itself, which may then claim the tasks
// again. Whatever the order, a task must not run twice at the same time,
// the outcome of a run whose claim was recovered must not be applied to
// the new claim, and every execution completes: nothing failed. (How the
// rounds after an outage line up with the heartbeat and sweep schedules
// varies, hence several outages.)
func TestPostgresOutageLongerThanStaleClaim(t *testing.T) {
	srv := pgtest.Start(t) // this test stops the server: not the shared one
	url := srv.NewDatabase(t)
	ctx := testContext(t, 120*time.Second)
	h := newHarness(t, ctx, url)
	w := h.worker("outage-w1", "-heartbeat", "200ms", "-stale", "1s", "-max-tasks", "4",
		"-sleep-min", "6s", "-sleep-max", "6s")
	keys := h.produce(faulttest.ChainWorkflow, 4)
	for cycle := 1; cycle <= 3; cycle++ {
		m := waitMetrics(t, ctx, h, func(m *cloacina.Metrics) bool { return m.RunningTasks >= 3 || m.ActiveExecutions == 0 })
		if m.ActiveExecutions == 0 {
			break
		}
		srv.Stop(t)
		time.Sleep(2500 * time.Millisecond)
		srv.StartAgain(t)
		time.Sleep(1500 * time.Millisecond) // the stale claims are recovered and claimed again
		m = waitMetrics(t, ctx, h, nil)
		t.Logf("outage %d: %d failed executions afterwards", cycle, m.ByStatus[cloacina.ExecutionFailed])
		if m.ByStatus[cloacina.ExecutionFailed] > 0 {
			break
		}
	}
	h.waitIdle(60 * time.Second)
	if w.Exited() {
		t.Errorf("the worker exited during the outages: %s", w.ExitStatus())
	}
	h.stop(w)
	rep := h.inspect(keys)
	checkSound(t, rep, 4)
}

// waitMetrics polls the observer's metrics until cond (nil: any) holds.
func waitMetrics(t *testing.T, ctx context.Context, h *harness, cond func(*cloacina.Metrics) bool) *cloacina.Metrics {
	t.Helper()
	for {
		m, err := h.obs.Metrics(ctx)
		if err == nil && (cond == nil || cond(m)) {
			return m
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for the metrics: %v (last error %v)", ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestPostgresAPIAfterTerminatedBackends: once PostgreSQL is reachable
// again after its connections were cut (pg_terminate_backend, as a
// restart or a failover does), a runner's API calls succeed at once
// instead of failing once per pooled connection that was in use just
// before. (The soak shows it as produce_errors: one per restart.)
func TestPostgresAPIAfterTerminatedBackends(t *testing.T) {
	url := pgtest.Shared(t).NewDatabase(t)
	ctx := testContext(t, 60*time.Second)
	h := newHarness(t, ctx, url)
	// Open several pooled connections, used just now.
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			if _, err := h.obs.Metrics(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := terminateBackends(t, ctx, url); n == 0 {
		t.Fatal("no backend to terminate")
	}
	// The server is up: every call should work.
	for i := range 8 {
		if _, err := faulttest.Produce(ctx, h.obs, faulttest.ChainWorkflow, fmt.Sprintf("after-%d", i), 1); err != nil {
			t.Errorf("ExecuteMany #%d after the backends were terminated: %v", i+1, err)
		}
	}
	for i := range 8 {
		if _, err := h.obs.Metrics(ctx); err != nil {
			t.Errorf("Metrics #%d after the backends were terminated: %v", i+1, err)
		}
	}
}

// terminateBackends terminates every other backend of url's database and
// returns how many it terminated.
func terminateBackends(t *testing.T, ctx context.Context, url string) int {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var ok bool
		if err := rows.Scan(&ok); err != nil {
			t.Fatal(err)
		}
		if ok {
			n++
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}
