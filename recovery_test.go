package cloacina

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina/internal/store"
	"github.com/google/uuid"
)

// orphanTask leaves an execution of wf whose first task is Running under
// worker, as a process that died mid-task would, with the given recovery
// count.
func orphanTask(t *testing.T, url string, wf *Workflow, worker string, recoveries int) string {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	id := "0190b5a4-1111-7000-8000-000000000001"
	now := time.Now()
	var tasks []*store.Task
	for _, td := range wf.tasks {
		status := TaskNotStarted
		if len(td.deps) == 0 {
			status = TaskReady
		}
		tasks = append(tasks, &store.Task{ExecutionID: id, WorkflowName: wf.name, Name: td.id, Deps: td.deps, Status: string(status), ReadyAt: now})
	}
	err = st.Write(ctx, func(tx store.Tx) error {
		if err := tx.InsertExecutions(ctx, []*store.Execution{{ID: id, WorkflowName: wf.name, WorkflowVersion: wf.version,
			Status: string(ExecutionPending), Input: []byte(`{}`), CreatedAt: now}}, tasks); err != nil {
			return err
		}
		claimed, err := tx.ClaimTasks(ctx, store.ClaimParams{Worker: worker, Now: now, Limit: 1, Workflows: []string{wf.name}})
		if err != nil || len(claimed) != 1 {
			t.Fatalf("claim: %v %d", err, len(claimed))
		}
		for range recoveries {
			if _, err := tx.UpdateTasks(ctx, []store.TaskUpdate{{ID: claimed[0].ID, From: string(TaskRunning), To: string(TaskRunning), Recovered: true}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestRestartWithSameWorkerIDRecoversOrphans(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	url := "sqlite://" + filepath.Join(t.TempDir(), "app.db")
	var runs atomic.Int32
	wf := NewWorkflow("wf").
		Task("a", func(context.Context, *Context) error { runs.Add(1); return nil }).
		Task("b", func(context.Context, *Context) error { return nil }, DependsOn("a")).MustBuild()
	id := orphanTask(t, url, wf, "node-1", 0)

	// A runner restarted under the same identity recovers its orphan at once.
	r, err := NewRunner(ctx, url, WithWorkflows(wf), WithWorkerID("node-1"), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Shutdown(ctx)
	res, err := r.Wait(ctx, mustUUID(t, id))
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != ExecutionCompleted {
		t.Fatalf("status %s, want Completed", res.Status)
	}
	a, _ := res.Task("a")
	if a.Attempts != 1 || a.Recoveries != 1 || runs.Load() != 1 {
		t.Fatalf("task a: attempts %d recoveries %d runs %d; want 1, 1, 1", a.Attempts, a.Recoveries, runs.Load())
	}
	evs, err := r.ExecutionEvents(ctx, res.ExecutionID)
	if err != nil {
		t.Fatal(err)
	}
	if !hasEvent(evs, EventTaskRecovered, "a") {
		t.Fatalf("no task_recovered event for a: %v", evs)
	}
}

func TestRecoveryAbandonsAfterMaxRecoveries(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	url := "sqlite://" + filepath.Join(t.TempDir(), "app.db")
	var runs atomic.Int32
	wf := NewWorkflow("wf").
		Task("a", func(context.Context, *Context) error { runs.Add(1); return nil }).
		Task("b", func(context.Context, *Context) error { return nil }, DependsOn("a")).MustBuild()
	id := orphanTask(t, url, wf, "node-1", 2)
	r, err := NewRunner(ctx, url, WithWorkflows(wf), WithWorkerID("node-1"), WithMaxRecoveries(2),
		WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Shutdown(ctx)
	res, err := r.Wait(ctx, mustUUID(t, id))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := res.Task("a")
	b, _ := res.Task("b")
	if res.Status != ExecutionFailed || a.Status != TaskFailed || b.Status != TaskSkipped || runs.Load() != 0 {
		t.Fatalf("got execution %s, a %s, b %s, runs %d; want Failed, Failed, Skipped, 0", res.Status, a.Status, b.Status, runs.Load())
	}
	if len(a.Error) < 9 || a.Error[:9] != "ABANDONED" {
		t.Fatalf("task a error %q does not start with ABANDONED", a.Error)
	}
}

func hasEvent(evs []Event, typ EventType, task string) bool {
	for _, e := range evs {
		if e.Type == typ && e.Task == task {
			return true
		}
	}
	return false
}

func mustUUID(t *testing.T, s string) uuid.UUID {
	t.Helper()
	u, err := uuid.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
