package faulttest_test

import (
	"testing"
	"time"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/internal/faulttest"
	"github.com/cloacina-go/cloacina/internal/pgtest"
)

// TestFrozenWorkerReclaimsItsRecoveredTasks freezes a worker (SIGSTOP)
// longer than StaleClaimAfter while it runs four long tasks. Another
// runner on the database, which does not run the chain workflow, recovers
// the frozen worker's tasks (they go back to Ready). When the frozen worker
// resumes (SIGCONT) it finds its claims gone, cancels those runs and claims
// the tasks again. Each task must then run once at a time: no two runs of
// one task may overlap, the cancelled runs' outcomes must not touch the new
// claims, and every execution completes.
func TestFrozenWorkerReclaimsItsRecoveredTasks(t *testing.T) {
	url := pgtest.Shared(t).NewDatabase(t)
	ctx := testContext(t, 90*time.Second)
	h := newHarness(t, ctx, url)
	hb := []string{"-heartbeat", "200ms", "-stale", "1s"}
	w1 := h.worker("frozen-w1", append(hb, "-max-tasks", "8", "-sleep-min", "3s", "-sleep-max", "3s")...)
	// A runner of another workflow: it sweeps stale claims of every
	// workflow but can claim none of the chain's tasks.
	sweeper := h.worker("sweeper", append(hb, "-workflows", faulttest.PoisonWorkflow)...)
	keys := h.produce(faulttest.ChainWorkflow, 4)
	for {
		m, err := h.obs.Metrics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.RunningTasks == 4 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for 4 running tasks: %v", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := w1.Freeze(); err != nil {
		t.Fatal(err)
	}
	for {
		ready, _ := h.snapshot(keys, cloacina.TaskReady)
		recovered := 0
		for _, task := range ready {
			if task.Recoveries > 0 {
				recovered++
			}
		}
		if recovered == 4 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for the sweeper to recover the frozen worker's tasks: %v", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err := w1.Thaw(); err != nil {
		t.Fatal(err)
	}
	h.waitIdle(60 * time.Second)
	h.stop(w1)
	h.stop(sweeper)
	rep := h.inspect(keys)
	for id, res := range rep.Results {
		for _, task := range res.Tasks {
			if task.Status != cloacina.TaskCompleted {
				t.Errorf("execution %s task %s: %s (attempts %d, recoveries %d, error %q, %d completed runs), want Completed",
					id, task.Name, task.Status, task.Attempts, task.Recoveries, task.Error, len(rep.RunsOf(id, task.Name)))
			}
		}
	}
	checkSound(t, rep, 4)
}
