package cloacina_test

import (
	"context"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/internal/pgtest"
	"github.com/google/uuid"
)

// TestExecutionStartedNamesTheStarterAfterRecovery: runner node-a starts two
// executions (a two-task workflow and a one-task one) and then stops
// renewing its claims, as a process killed with SIGKILL does (its heartbeat
// interval is far longer than the test: to the database the two are the
// same, a Running task whose heartbeat stops at its claim). Runner node-b,
// on the same database, recovers the tasks and finishes both executions.
// Their execution_started events must name node-a, which started them, not
// node-b, which wrote the events.
func TestExecutionStartedNamesTheStarterAfterRecovery(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		url, _ := sqliteURL(t)
		testStartedByAfterRecovery(t, url)
	})
	t.Run("postgres", func(t *testing.T) {
		testStartedByAfterRecovery(t, pgtest.Shared(t).NewDatabase(t))
	})
}

func testStartedByAfterRecovery(t *testing.T, url string) {
	ctx := testCtx(t, 30*time.Second)
	started := make(chan struct{}, 2)
	release := make(chan struct{})
	hang := func(ctx context.Context, _ *cloacina.Context) error {
		started <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}
	build := func(first cloacina.TaskFunc) []*cloacina.Workflow {
		return []*cloacina.Workflow{
			cloacina.NewWorkflow("pair").Task("a", first).Task("b", okTask, cloacina.DependsOn("a")).MustBuild(),
			cloacina.NewWorkflow("solo").Task("a", first).MustBuild(),
		}
	}
	// node-a renews its claims every 10s: within this test, never again
	// after claiming. Its two task slots stay taken by the attempts that
	// hang, so it claims nothing more: to the database it is gone.
	a := startRunner(t, url, cloacina.WithWorkerID("node-a"), cloacina.WithWorkflows(build(hang)...),
		cloacina.WithHeartbeat(10*time.Second, time.Hour), cloacina.WithMaxConcurrentTasks(2))
	var ids []uuid.UUID
	for _, wf := range []string{"pair", "solo"} {
		h, err := a.ExecuteAsync(ctx, wf, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, h.ID())
	}
	recv(t, started, 10*time.Second, "node-a starting the first task")
	recv(t, started, 10*time.Second, "node-a starting the second task")
	defer close(release) // lets node-a's void attempts end, so it shuts down

	b := startRunner(t, url, cloacina.WithWorkerID("node-b"), cloacina.WithWorkflows(build(okTask)...),
		cloacina.WithHeartbeat(50*time.Millisecond, 300*time.Millisecond))
	for _, id := range ids {
		res, err := b.Wait(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, res, cloacina.ExecutionCompleted)
		if ta := taskOf(t, res, "a"); ta.Recoveries != 1 {
			t.Errorf("%s: task a recovered %d times, want 1 (by node-b)", res.WorkflowName, ta.Recoveries)
		}
		evs := eventsOf(t, ctx, b, id)
		starts := filterEvents(evs, cloacina.EventExecutionStarted, "")
		if len(starts) != 1 || starts[0].Worker != "node-a" || starts[0].ID == 0 {
			t.Errorf("%s: execution_started events %+v, want one logged, by node-a; all events:%s", res.WorkflowName, starts, describeEvents(evs))
		} else if !starts[0].At.Equal(res.StartedAt) {
			t.Errorf("%s: execution_started at %v, want the execution's start %v", res.WorkflowName, starts[0].At, res.StartedAt)
		}
		ends := filterEvents(evs, cloacina.EventExecutionCompleted, "")
		if len(ends) != 1 || ends[0].Worker != "node-b" {
			t.Errorf("%s: execution_completed events %+v, want one by node-b", res.WorkflowName, ends)
		}
	}
}
