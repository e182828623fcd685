package main

import (
	"regexp"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina/client"
	"github.com/cloacina-go/cloacina/internal/pgtest"
)

// TestServePostgresNoisyNeighbour: on PostgreSQL, with serve's default
// settings, two noisy tenants that start many long wait executions hold
// only their per-tenant slots (4 each), so a quiet tenant's hello starts
// and completes at once (within a second) instead of queueing behind
// them. Tasks still running at the end of the drain are released, and the
// next start runs them again.
func TestServePostgresNoisyNeighbour(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.Shared(t).NewDatabase(t)
	ctx := testCtx(t, 90*time.Second)
	dir := t.TempDir()
	env := []string{"CLOACINA_ADMIN_KEY=" + testAdminKey, "DATABASE_URL=" + dbURL}
	p := startServe(t, dir, env, "--shutdown-timeout", "1s")
	c := client.New(p.url, client.WithAPIKey(testAdminKey))
	for _, id := range []string{"noisy", "noisy2", "quiet"} {
		if _, err := c.CreateTenant(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	var first string
	for i, n := range map[string]int{"noisy": 12, "noisy2": 6} {
		for range n {
			ex, err := c.StartExecution(ctx, i, client.StartRequest{Workflow: "wait", Context: map[string]any{"seconds": 40}})
			if err != nil {
				t.Fatal(err)
			}
			if first == "" && i == "noisy" {
				first = ex.ExecutionID
			}
		}
	}
	running := func(id string) int64 {
		t.Helper()
		m, err := c.TenantMetrics(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return m.RunningTasks
	}
	// Until the noisy tenants hold what they may: 4 each by default (with
	// one budget of 4 for everyone, as before, 4 in all).
	deadline := time.Now().Add(10 * time.Second)
	for running("noisy")+running("noisy2") < 8 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // let the dispatcher give out any slot left
	start := time.Now()
	ex, err := c.StartExecution(ctx, "quiet", client.StartRequest{Workflow: "hello", Wait: 5 * time.Second})
	took := time.Since(start)
	if err != nil || ex.Status != client.StatusCompleted || took > time.Second {
		t.Errorf("quiet tenant's hello beside the noisy tenants: %+v, %v after %v; want Completed within 1s", ex, err, took)
	} else {
		t.Logf("quiet tenant's hello beside 18 running or queued 40s waits: answered Completed in %v (created to completed: %v)",
			took.Round(time.Microsecond), ex.CompletedAt.Sub(ex.CreatedAt).Round(time.Microsecond))
	}
	// --max-concurrent-tasks is per tenant: each noisy tenant holds 4.
	if n1, n2 := running("noisy"), running("noisy2"); n1 != 4 || n2 != 4 {
		t.Errorf("running tasks: noisy %d, noisy2 %d; want 4 each (the per-tenant default)", n1, n2)
	}
	prom, err := c.PrometheusMetrics(ctx)
	if err != nil || !regexp.MustCompile(`(?m)^cloacina_task_slots 16$`).MatchString(prom) {
		t.Errorf("/metrics: %v; want cloacina_task_slots 16 (the default total)\n%s", err, grepLines(prom, "cloacina_task_slots"))
	}
	if !p.waitStderr("task_slots_per_tenant=4 task_slots_total=16") {
		t.Errorf("the serving log line does not give the slots:\n%s", p.stderr)
	}
	// The oldest noisy wait is running: the drain releases it. The queued
	// ones are cancelled, so that at the next start the released tasks
	// are the only ready work.
	waitFor(t, ctx, c, "noisy", first, func(e *client.Execution) bool {
		return len(e.Tasks) == 1 && e.Tasks[0].Status == client.TaskRunning
	})
	for _, id := range []string{"noisy", "noisy2"} {
		page, err := c.ListExecutions(ctx, id, client.ListOptions{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Executions {
			if ex, err := c.GetExecution(ctx, id, e.ExecutionID); err != nil || len(ex.Tasks) != 1 || ex.Tasks[0].Status != client.TaskRunning {
				if _, err := c.Cancel(ctx, id, e.ExecutionID); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	stopWithin(t, p)
	if !regexp.MustCompile(`were released`).MatchString(p.stderr.String()) {
		t.Errorf("no release at the drain's end:\n%s", p.stderr)
	}

	// The waits still running were released at the drain's end: the next
	// start runs them again.
	p2 := startServe(t, dir, env, "--shutdown-timeout", "1s")
	c2 := client.New(p2.url, client.WithAPIKey(testAdminKey))
	again := waitFor(t, ctx, c2, "noisy", first, func(e *client.Execution) bool {
		return len(e.Tasks) == 1 && e.Tasks[0].Status == client.TaskRunning
	})
	t.Logf("after the restart, %s runs again: %+v", first, again.Tasks[0])
	stopWithin(t, p2)
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []byte
	for _, l := range regexp.MustCompile(`(?m)^.*`+regexp.QuoteMeta(sub)+`.*$`).FindAllString(s, -1) {
		out = append(append(out, l...), '\n')
	}
	return string(out)
}

// TestTotalTasksDefault: the default of --total-concurrent-tasks.
func TestTotalTasksDefault(t *testing.T) {
	for per, want := range map[int]int{1: 16, 4: 16, 5: 20, 10: 40} {
		if got := defaultTotalTasks(per); got != want {
			t.Errorf("defaultTotalTasks(%d) = %d, want %d", per, got, want)
		}
	}
}
