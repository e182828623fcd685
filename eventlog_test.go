package cloacina_test

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina"
)

func eventTypes(evs []cloacina.Event) []cloacina.EventType {
	var out []cloacina.EventType
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

// Under EventLogExceptions a runner records what departs from the plain
// course (here a retry) and nothing of it (created, ready, started,
// completed), while EventLogAll records both.
func TestEventLogExceptions(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	build := func() *cloacina.Workflow {
		var calls atomic.Int32
		return cloacina.NewWorkflow("flaky").
			Task("once", func(context.Context, *cloacina.Context) error {
				if calls.Add(1) == 1 {
					return errors.New("first attempt fails")
				}
				return nil
			}, cloacina.Retry(cloacina.RetryPolicy{MaxAttempts: 2, InitialDelay: time.Millisecond})).
			Task("after", okTask, cloacina.DependsOn("once")).
			MustBuild()
	}
	plain := []cloacina.EventType{cloacina.EventExecutionCreated, cloacina.EventExecutionStarted, cloacina.EventExecutionCompleted,
		cloacina.EventTaskReady, cloacina.EventTaskStarted, cloacina.EventTaskCompleted}
	for _, tc := range []struct {
		log       cloacina.EventLog
		wantPlain bool
	}{{cloacina.EventLogAll, true}, {cloacina.EventLogExceptions, false}} {
		t.Run(tc.log.String(), func(t *testing.T) {
			r := newRunner(t, []*cloacina.Workflow{build()}, cloacina.WithEventLog(tc.log))
			res := execute(t, ctx, r, "flaky", nil)
			wantStatus(t, res, cloacina.ExecutionCompleted)
			wantTask(t, res, "once", cloacina.TaskCompleted, 2)
			types := eventTypes(eventsOf(t, ctx, r, res.ExecutionID))
			if !slices.Contains(types, cloacina.EventTaskRetryScheduled) {
				t.Errorf("events %v: no %s", types, cloacina.EventTaskRetryScheduled)
			}
			for _, p := range plain {
				if slices.Contains(types, p) != tc.wantPlain {
					t.Errorf("events %v: %s recorded = %v, want %v", types, p, !tc.wantPlain, tc.wantPlain)
				}
			}
			// The result still says when each task ran.
			for _, task := range res.Tasks {
				if task.StartedAt.IsZero() || task.CompletedAt.IsZero() {
					t.Errorf("task %s: started %v, completed %v", task.Name, task.StartedAt, task.CompletedAt)
				}
			}
		})
	}
}

func TestParseEventLog(t *testing.T) {
	for _, l := range []cloacina.EventLog{cloacina.EventLogAll, cloacina.EventLogExceptions} {
		if got, err := cloacina.ParseEventLog(l.String()); err != nil || got != l {
			t.Errorf("ParseEventLog(%q) = %v, %v", l.String(), got, err)
		}
	}
	if _, err := cloacina.ParseEventLog("some"); !errors.Is(err, cloacina.ErrInvalidOption) {
		t.Errorf("ParseEventLog(some) error = %v, want ErrInvalidOption", err)
	}
	url, _ := sqliteURL(t)
	_, err := cloacina.NewRunner(testCtx(t, 10*time.Second), url, cloacina.WithEventLog(cloacina.EventLog(7)))
	if !errors.Is(err, cloacina.ErrInvalidOption) {
		t.Errorf("NewRunner with EventLog(7) error = %v, want ErrInvalidOption", err)
	}
}

// A claim writes no event: an attempt's start is written when the attempt
// ends, and the execution's when it ends, with the times they happened.
// Meanwhile ExecutionEvents reads them from the rows (ID 0); afterwards
// they are in the log, once each, at the same times.
func TestStartEventsWrittenWithTheEnd(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	release := make(chan struct{})
	var releaseOnce sync.Once
	defer releaseOnce.Do(func() { close(release) })
	started := make(chan struct{})
	wf := cloacina.NewWorkflow("slow").Task("only", func(ctx context.Context, _ *cloacina.Context) error {
		close(started)
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}).MustBuild()
	url, path := sqliteURL(t)
	r := startRunner(t, url, cloacina.WithWorkflows(wf), cloacina.WithWorkerID("w-start"))
	h, err := r.ExecuteAsync(ctx, "slow", nil)
	if err != nil {
		t.Fatal(err)
	}
	recv(t, started, 10*time.Second, "the task to start")
	// The claim's transaction has committed before the task ran.
	if n := eventRows(t, path); n != 1 {
		t.Errorf("%d events rows while the task runs, want 1 (the creation's)", n)
	}
	during := eventsOf(t, ctx, r, h.ID())
	wantRunning := []cloacina.EventType{cloacina.EventExecutionCreated, cloacina.EventTaskReady, cloacina.EventTaskStarted, cloacina.EventExecutionStarted}
	if got := eventTypes(during); !slices.Equal(got, wantRunning) {
		t.Fatalf("events while running: %v, want %v", got, wantRunning)
	}
	for _, e := range during[2:] {
		if e.ID != 0 || e.At.IsZero() {
			t.Errorf("%s while running: id %d at %v, want id 0 and the claim's time", e.Type, e.ID, e.At)
		}
	}
	if e := during[2]; e.Task != "only" || e.Attempt != 1 || e.Worker != "w-start" || !e.At.Equal(during[3].At) {
		t.Errorf("task_started while running = %+v, want task only, attempt 1, by w-start, when the execution started", e)
	}

	releaseOnce.Do(func() { close(release) })
	res, err := h.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, res, cloacina.ExecutionCompleted)
	after := eventsOf(t, ctx, r, h.ID())
	want := append(wantRunning, cloacina.EventTaskCompleted, cloacina.EventExecutionCompleted)
	if got := eventTypes(after); !slices.Equal(got, want) {
		t.Fatalf("events after: %v, want %v", got, want)
	}
	for i, e := range after {
		if e.ID == 0 {
			t.Errorf("event %d (%s) not written", i, e.Type)
		}
		if i >= 2 && i < 4 && (!e.At.Equal(during[i].At) || e.Worker != "w-start") {
			t.Errorf("%s written at %v by %q, want at %v (as read while running) by w-start", e.Type, e.At, e.Worker, during[i].At)
		}
	}
	// The creation's row, and the end's with the starts: two rows for the
	// six events of a one-task execution.
	if n := eventRows(t, path); n != 2 {
		t.Errorf("%d events rows, want 2", n)
	}
}

// eventRows counts the rows of the events table of the SQLite file path.
func eventRows(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM events").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Cancelling a started execution writes its start too.
func TestCancelWritesTheStart(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	started := make(chan struct{})
	wf := cloacina.NewWorkflow("held").Task("only", func(ctx context.Context, _ *cloacina.Context) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	}).MustBuild()
	r := newRunner(t, []*cloacina.Workflow{wf})
	h, err := r.ExecuteAsync(ctx, "held", nil)
	if err != nil {
		t.Fatal(err)
	}
	recv(t, started, 10*time.Second, "the task to start")
	if err := r.Cancel(ctx, h.ID()); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	// The task's own end follows the cancel; wait for its events.
	waitUntil(t, ctx, "the task's end to be written", func() bool {
		for _, e := range eventsOf(t, ctx, r, h.ID()) {
			if e.Task == "only" && e.ID != 0 && e.Type != cloacina.EventTaskReady && e.Type != cloacina.EventTaskStarted {
				return true
			}
		}
		return false
	})
	evs := eventsOf(t, ctx, r, h.ID())
	for _, typ := range []cloacina.EventType{cloacina.EventExecutionStarted, cloacina.EventTaskStarted} {
		got := filterEvents(evs, typ, "*")
		if len(got) != 1 || got[0].ID == 0 {
			t.Errorf("%s events %+v, want one, written%s", typ, got, describeEvents(evs))
		}
	}
}
