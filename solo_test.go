package cloacina_test

import (
	"strings"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina"
)

// A one-task workflow finishes without reading its tasks back: its output
// is its task's saved context, and its event log is complete.
func TestOneTaskWorkflowOutput(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	wf := cloacina.NewWorkflow("one").Task("t", setTask("done")).MustBuild()
	r := newRunner(t, []*cloacina.Workflow{wf})
	res := execute(t, ctx, r, "one", map[string]any{"in": 1})
	wantStatus(t, res, cloacina.ExecutionCompleted)
	wantMap(t, "output", res.Context.Map(), `{"in": 1, "done": true}`)
	if res.StartedAt.IsZero() || res.CompletedAt.Before(res.StartedAt) {
		t.Errorf("started %v, completed %v", res.StartedAt, res.CompletedAt)
	}
	// The execution ends when its task has ended, not before.
	if task := res.Tasks[0]; res.CompletedAt.Before(task.CompletedAt) || res.StartedAt.After(task.StartedAt) {
		t.Errorf("execution %v..%v, its task %v..%v", res.StartedAt, res.CompletedAt, task.StartedAt, task.CompletedAt)
	}
	evs := eventsOf(t, ctx, r, res.ExecutionID)
	for _, typ := range []cloacina.EventType{cloacina.EventTaskCompleted, cloacina.EventExecutionCompleted} {
		if len(filterEvents(evs, typ, "")) == 0 && len(filterEvents(evs, typ, "t")) == 0 {
			t.Errorf("no %s event: %s", typ, describeEvents(evs))
		}
	}
}

// An execution created by an earlier version of a workflow (two tasks) and
// run by a process that has only a one-task version of it is not finished
// when its first task completes: the versions differ, so the engine reads
// the execution's tasks, as for any workflow.
func TestOneTaskShortcutChecksVersion(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	url, _ := sqliteURL(t)
	v1 := cloacina.NewWorkflow("wf").Task("a", okTask).Task("b", okTask, cloacina.DependsOn("a")).MustBuild()
	producer := openRunner(t, url, cloacina.WithWorkflows(v1), cloacina.WithEnqueueOnly())
	h, err := producer.ExecuteAsync(ctx, "wf", nil)
	if err != nil {
		t.Fatal(err)
	}
	shutdown(t, producer)

	v2 := cloacina.NewWorkflow("wf").Task("a", okTask).MustBuild()
	if v1.Version() == v2.Version() {
		t.Fatal("two shapes of a workflow have one version")
	}
	r := startRunner(t, url, cloacina.WithWorkflows(v2))
	res, err := r.Wait(ctx, h.ID())
	if err != nil {
		t.Fatal(err)
	}
	// Task b is not part of the workflow this process knows, so it fails;
	// had the execution finished with a, it would be Completed.
	wantStatus(t, res, cloacina.ExecutionFailed)
	if b := taskOf(t, res, "b"); b.Status != cloacina.TaskFailed || !strings.Contains(b.Error, "not part of") {
		t.Errorf("b = %s %q, want Failed as not part of the workflow", b.Status, b.Error)
	}
}
