package cloacina_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina"
)

// recorder is an Observer that remembers what it was told.
type recorder struct {
	mu       sync.Mutex
	tasks    []cloacina.TaskObservation
	started  []cloacina.ExecutionObservation
	finished []cloacina.ExecutionObservation
}

func (r *recorder) observer() *cloacina.Observer {
	return &cloacina.Observer{
		TaskFinished: func(o cloacina.TaskObservation) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.tasks = append(r.tasks, o)
		},
		ExecutionStarted: func(o cloacina.ExecutionObservation) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.started = append(r.started, o)
		},
		ExecutionFinished: func(o cloacina.ExecutionObservation) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.finished = append(r.finished, o)
		},
	}
}

func (r *recorder) describe() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var s []string
	for _, o := range r.tasks {
		s = append(s, fmt.Sprintf("task %s/%s/%s#%d=%s", o.Tenant, o.Workflow, o.Task, o.Attempt, o.Outcome))
	}
	for _, o := range r.started {
		s = append(s, fmt.Sprintf("start %s/%s=%s", o.Tenant, o.Workflow, o.Status))
	}
	for _, o := range r.finished {
		s = append(s, fmt.Sprintf("end %s/%s=%s", o.Tenant, o.Workflow, o.Status))
	}
	slices.Sort(s)
	return fmt.Sprint(s)
}

func TestObserver(t *testing.T) {
	t.Parallel()
	var calls int
	var mu sync.Mutex
	flaky := cloacina.NewWorkflow("flaky").
		Task("a", func(ctx context.Context, c *cloacina.Context) error {
			mu.Lock()
			defer mu.Unlock()
			calls++
			if calls == 1 {
				return errors.New("first attempt fails")
			}
			time.Sleep(5 * time.Millisecond)
			return nil
		}, cloacina.Retry(cloacina.RetryPolicy{MaxAttempts: 2, InitialDelay: time.Millisecond})).
		Task("b", func(context.Context, *cloacina.Context) error { return errors.New("boom") }, cloacina.DependsOn("a")).
		MustBuild()
	slow := cloacina.NewWorkflow("slow").
		Task("s", func(ctx context.Context, _ *cloacina.Context) error { <-ctx.Done(); return ctx.Err() }).
		MustBuild()
	rec := &recorder{}
	r := newRunner(t, []*cloacina.Workflow{flaky, slow}, cloacina.WithObserver(rec.observer()), cloacina.WithTenantLabel("acme"))
	ctx := testCtx(t, 10*time.Second)

	res := execute(t, ctx, r, "flaky", nil)
	wantStatus(t, res, cloacina.ExecutionFailed)
	h, err := r.ExecuteAsync(ctx, "slow", nil)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, ctx, "slow's task to start", func() bool {
		return taskStatus(t, ctx, r, h.ID(), "s").Status == cloacina.TaskRunning
	})
	if err := h.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, ctx, "the cancelled task to be observed", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return len(rec.tasks) == 4
	})

	want := "[end acme/flaky=Failed end acme/slow=Cancelled start acme/flaky=Pending start acme/slow=Pending " +
		"task acme/flaky/a#1=retry task acme/flaky/a#2=completed task acme/flaky/b#1=failed task acme/slow/s#1=failed]"
	if got := rec.describe(); got != want {
		t.Errorf("observed\n%s\nwant\n%s", got, want)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, o := range rec.tasks {
		if o.Task == "a" && o.Attempt == 2 && o.Duration < 5*time.Millisecond {
			t.Errorf("a#2 Duration = %v, want at least the 5ms it slept", o.Duration)
		}
		if o.Task == "b" && o.Error != "boom" {
			t.Errorf("b's Error = %q, want boom", o.Error)
		}
		if o.ExecutionID != res.ExecutionID && o.ExecutionID != h.ID() {
			t.Errorf("observation of %s has execution id %s", o.Task, o.ExecutionID)
		}
	}
}

func TestEngineStats(t *testing.T) {
	t.Parallel()
	block := make(chan struct{})
	wf := cloacina.NewWorkflow("block").
		Task("b", func(ctx context.Context, _ *cloacina.Context) error { <-block; return nil }).
		MustBuild()
	r := newRunner(t, []*cloacina.Workflow{wf}, cloacina.WithMaxConcurrentTasks(7))
	ctx := testCtx(t, 10*time.Second)
	h, err := r.ExecuteAsync(ctx, "block", nil)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, ctx, "the task to run", func() bool { return r.Engine().Stats().RunningTasks == 1 })
	s := r.Engine().Stats()
	if s.Tenants != 1 || s.MaxConcurrentTasks != 7 || s.MaxOpenConnections < 1 || s.OpenConnections < 1 {
		t.Errorf("Stats() = %+v, want 1 tenant, 7 slots and an open pool", s)
	}
	close(block)
	if _, err := h.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, ctx, "the task to end", func() bool { return r.Engine().Stats().RunningTasks == 0 })
}
