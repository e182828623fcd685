package cloacina

import (
	"context"
	"errors"
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

func TestStaleClaimIsRecoveredByAnotherRunner(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	url := "sqlite://" + filepath.Join(t.TempDir(), "app.db")
	var runs atomic.Int32
	wf := NewWorkflow("wf").
		Task("a", func(context.Context, *Context) error { runs.Add(1); return nil }).
		Task("b", func(context.Context, *Context) error { return nil }, DependsOn("a")).MustBuild()
	// A worker that died long ago: its claim's heartbeat is the claim time.
	id := orphanTask(t, url, wf, "dead-worker", 0)
	time.Sleep(300 * time.Millisecond)
	r, err := NewRunner(ctx, url, WithWorkflows(wf), WithHeartbeat(50*time.Millisecond, 200*time.Millisecond),
		WithPollInterval(50*time.Millisecond), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Shutdown(ctx)
	res, err := r.Wait(ctx, mustUUID(t, id))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := res.Task("a")
	if res.Status != ExecutionCompleted || a.Recoveries != 1 || a.Attempts != 1 || runs.Load() != 1 {
		t.Fatalf("execution %s, task a recoveries %d attempts %d runs %d; want Completed, 1, 1, 1", res.Status, a.Recoveries, a.Attempts, runs.Load())
	}
	evs, err := r.ExecutionEvents(ctx, res.ExecutionID)
	if err != nil {
		t.Fatal(err)
	}
	if !hasEvent(evs, EventTaskRecovered, "a") {
		t.Fatal("no task_recovered event")
	}
}

func TestHeartbeatCancelsTaskWhoseClaimIsGone(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	url := "sqlite://" + filepath.Join(t.TempDir(), "app.db")
	started := make(chan struct{})
	var cause atomic.Value
	wf := NewWorkflow("wf").Task("a", func(ctx context.Context, c *Context) error {
		close(started)
		<-ctx.Done()
		cause.Store(context.Cause(ctx))
		return ctx.Err()
	}).MustBuild()
	r, err := NewRunner(ctx, url, WithWorkflows(wf), WithHeartbeat(50*time.Millisecond, time.Hour),
		WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Shutdown(ctx)
	h, err := r.ExecuteAsync(ctx, "wf", nil)
	if err != nil {
		t.Fatal(err)
	}
	<-started
	// Another runner takes the task away (as a recovery would).
	st, err := store.Open(ctx, store.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tasks, err := st.ListTasks(ctx, h.ID().String())
	if err != nil || len(tasks) != 1 {
		t.Fatalf("tasks: %v %d", err, len(tasks))
	}
	err = st.Write(ctx, func(tx store.Tx) error {
		_, err := tx.UpdateTasks(ctx, []store.TaskUpdate{{ID: tasks[0].ID, From: string(TaskRunning), To: string(TaskReady), Release: true}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.After(5 * time.Second)
	for cause.Load() == nil {
		select {
		case <-deadline:
			t.Fatal("the task's context was not cancelled after its claim was lost")
		case <-time.After(10 * time.Millisecond):
		}
	}
	if c := cause.Load().(error); !errors.Is(c, errClaimLost) {
		t.Fatalf("cancel cause %v, want errClaimLost", c)
	}
}

func TestCancelFromAnotherRunnerStopsRunningTask(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	url := "sqlite://" + filepath.Join(t.TempDir(), "app.db")
	started := make(chan struct{})
	stopped := make(chan error, 1)
	wf := NewWorkflow("wf").Task("a", func(ctx context.Context, c *Context) error {
		close(started)
		<-ctx.Done()
		stopped <- context.Cause(ctx)
		return ctx.Err()
	}).MustBuild()
	quiet := slog.New(slog.DiscardHandler)
	a, err := NewRunner(ctx, url, WithWorkflows(wf), WithHeartbeat(50*time.Millisecond, time.Hour), WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(ctx)
	b, err := NewRunner(ctx, url, WithWorkflows(wf), WithEnqueueOnly(), WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Shutdown(ctx)
	h, err := a.ExecuteAsync(ctx, "wf", nil)
	if err != nil {
		t.Fatal(err)
	}
	<-started
	if err := b.Cancel(ctx, h.ID()); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-stopped:
		if !errors.Is(c, errExecutionCancelled) {
			t.Fatalf("cancel cause %v, want errExecutionCancelled", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the running task was not cancelled by another runner's Cancel")
	}
	res, err := a.Wait(ctx, h.ID())
	if err != nil || res.Status != ExecutionCancelled {
		t.Fatalf("wait: %v %v; want Cancelled", err, res)
	}
}

// TestExecutionStartedOfLegacyRowNamesTheFinisher: an execution started
// before the store recorded who started it (started_by NULL, as in rows
// written before migration 0006/0003) logs its start under the worker that
// finishes it, as it always did.
func TestExecutionStartedOfLegacyRowNamesTheFinisher(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	url := "sqlite://" + filepath.Join(t.TempDir(), "app.db")
	wf := NewWorkflow("wf").Task("a", func(context.Context, *Context) error { return nil }).MustBuild()
	id := orphanTask(t, url, wf, "old-worker", 0)
	st, err := store.Open(ctx, store.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now().Add(-time.Second)
	err = st.Write(ctx, func(tx store.Tx) error {
		// No StartedBy: what an older version wrote.
		_, err := tx.UpdateExecutions(ctx, []store.ExecutionUpdate{{ID: id, From: []string{string(ExecutionPending)},
			To: string(ExecutionRunning), StartedAt: started}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if e, err := st.GetExecution(ctx, id); err != nil || e.StartedBy != "" || e.StartedAt.IsZero() {
		t.Fatalf("legacy execution row: %+v, %v; want started, with no StartedBy", e, err)
	}
	st.Close()
	r, err := NewRunner(ctx, url, WithWorkflows(wf), WithWorkerID("old-worker"), WithLogger(slog.New(slog.DiscardHandler)))
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
	evs, err := r.ExecutionEvents(ctx, res.ExecutionID)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ev := range evs {
		if ev.Type == EventExecutionStarted {
			n++
			if ev.Worker != "old-worker" || !ev.At.Equal(started.Truncate(time.Microsecond).UTC()) {
				t.Errorf("execution_started by %q at %v, want by the finishing worker old-worker at %v", ev.Worker, ev.At, started)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d execution_started events, want 1", n)
	}
}
