package demo_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/internal/demo"
)

// newRunner starts a SQLite runner with the demo workflows, shut down when
// the test ends.
func newRunner(t *testing.T) *cloacina.Runner {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := cloacina.NewRunner(ctx, "sqlite://"+filepath.Join(t.TempDir(), "d.db"),
		cloacina.WithWorkflows(demo.Workflows()...),
		cloacina.WithPollInterval(20*time.Millisecond),
		cloacina.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return r
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// run executes a workflow and checks its final status.
func run(t *testing.T, ctx context.Context, r *cloacina.Runner, wf string, input any, want cloacina.ExecutionStatus) *cloacina.Result {
	t.Helper()
	res, err := r.Execute(ctx, wf, input)
	if err != nil {
		t.Fatalf("%s(%v): %v", wf, input, err)
	}
	if res.Status != want {
		t.Fatalf("%s(%v) ended %s (error %q), want %s", wf, input, res.Status, res.Error, want)
	}
	return res
}

// get reads a key of a result's final context.
func get[T any](t *testing.T, res *cloacina.Result, key string) T {
	t.Helper()
	v, err := cloacina.GetAs[T](res.Context, key)
	if err != nil {
		t.Fatalf("final context %s: %v", res.Context, err)
	}
	return v
}

// attempts returns how many attempts a task of a result took.
func attempts(t *testing.T, res *cloacina.Result, task string) int {
	t.Helper()
	tr, ok := res.Task(task)
	if !ok {
		t.Fatalf("no task %q in the result", task)
	}
	return tr.Attempts
}

// wantBadInput checks that a failed execution names the input at fault
// and that the task was not retried.
func wantBadInput(t *testing.T, res *cloacina.Result, task, input string) {
	t.Helper()
	if !strings.Contains(res.Error, `"`+input+`"`) {
		t.Errorf("error %q does not name the input %q", res.Error, input)
	}
	if n := attempts(t, res, task); n != 1 {
		t.Errorf("%s took %d attempts on a bad input, want 1 (a permanent error)", task, n)
	}
}

func TestWorkflows(t *testing.T) {
	t.Parallel()
	a, b := demo.Workflows(), demo.Workflows()
	var names []string
	for i, wf := range a {
		names = append(names, wf.Name())
		if wf == b[i] {
			t.Errorf("two calls returned the same %s workflow, want a fresh set", wf.Name())
		}
		if wf.Description() == "" {
			t.Errorf("%s has no description", wf.Name())
		}
		for _, ti := range wf.Tasks() {
			if ti.Description == "" {
				t.Errorf("%s/%s has no description", wf.Name(), ti.ID)
			}
		}
	}
	if want := []string{"hello", "wait", "etl", "flaky"}; !slices.Equal(names, want) {
		t.Errorf("workflows %v, want %v", names, want)
	}
}

func TestHello(t *testing.T) {
	t.Parallel()
	r, ctx := newRunner(t), testCtx(t)
	for _, tc := range []struct {
		input any
		want  string
	}{
		{map[string]any{"name": "Ada"}, "Hello, Ada!"},
		{nil, "Hello, world!"},
		{map[string]any{"name": ""}, "Hello, world!"},
		{map[string]any{"name": nil}, "Hello, world!"},
	} {
		res := run(t, ctx, r, "hello", tc.input, cloacina.ExecutionCompleted)
		if got := get[string](t, res, "greeting"); got != tc.want {
			t.Errorf("hello(%v) greeting = %q, want %q", tc.input, got, tc.want)
		}
	}
	res := run(t, ctx, r, "hello", map[string]any{"name": 42}, cloacina.ExecutionFailed)
	wantBadInput(t, res, "greet", "name")
}

func TestWait(t *testing.T) {
	t.Parallel()
	r, ctx := newRunner(t), testCtx(t)
	start := time.Now()
	res := run(t, ctx, r, "wait", map[string]any{"seconds": 0.05}, cloacina.ExecutionCompleted)
	if got := get[float64](t, res, "slept_seconds"); got != 0.05 {
		t.Errorf("slept_seconds = %g, want 0.05", got)
	}
	if tr, _ := res.Task("sleep"); tr.Duration < 50*time.Millisecond {
		t.Errorf("sleep took %v, want at least 50ms", tr.Duration)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("a 0.05s wait took %v", took)
	}

	for _, bad := range []any{"soon", -1, 3601, true} {
		res := run(t, ctx, r, "wait", map[string]any{"seconds": bad}, cloacina.ExecutionFailed)
		wantBadInput(t, res, "sleep", "seconds")
	}

	// The longest wait stops as soon as it is cancelled.
	h, err := r.ExecuteAsync(ctx, "wait", map[string]any{"seconds": 3600})
	if err != nil {
		t.Fatal(err)
	}
	// Cancel once the sleep runs in this process. (An execution can be
	// Running while its claimed task is not yet launched; a Cancel in that
	// window reaches the task only at the next heartbeat, a core race
	// outside what this test checks.)
	for r.Engine().Stats().RunningTasks != 1 {
		if ctx.Err() != nil {
			t.Fatal("the wait task never started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancelled := time.Now()
	if err := h.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	res, err = h.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != cloacina.ExecutionCancelled {
		t.Errorf("cancelled wait ended %s, want Cancelled", res.Status)
	}
	// Shutdown (at cleanup) waits for running tasks: it would hang if the
	// sleep ignored the cancellation; check the task let go promptly.
	waitCtx, stop := context.WithTimeout(ctx, 5*time.Second)
	defer stop()
	for r.Engine().Stats().RunningTasks != 0 {
		if waitCtx.Err() != nil {
			t.Fatal("the cancelled sleep is still running")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if took := time.Since(cancelled); took > 5*time.Second {
		t.Errorf("the sleep stopped %v after the cancel", took)
	}
}

func TestETL(t *testing.T) {
	t.Parallel()
	r, ctx := newRunner(t), testCtx(t)
	res := run(t, ctx, r, "etl", map[string]any{"rows": 10}, cloacina.ExecutionCompleted)
	type report struct {
		Rows  int     `json:"rows"`
		Total int     `json:"total"`
		Max   int     `json:"max"`
		Mean  float64 `json:"mean"`
		Even  int     `json:"even"`
	}
	// The records are 37i mod 101 for i = 1..10:
	// 37 74 10 47 84 20 57 94 30 67.
	want := report{Rows: 10, Total: 520, Max: 94, Mean: 52, Even: 6}
	if got := get[report](t, res, "report"); got != want {
		t.Errorf("report = %+v, want %+v", got, want)
	}
	if res.Context.Has("records") {
		t.Error("the final context still holds the raw records")
	}
	// Fan-out: the three transforms ran at the same time.
	var lastStart, firstEnd time.Time
	for _, id := range []string{"sum", "max", "count_even"} {
		tr, ok := res.Task(id)
		if !ok || tr.Status != cloacina.TaskCompleted {
			t.Fatalf("task %s: %+v", id, tr)
		}
		if tr.StartedAt.After(lastStart) {
			lastStart = tr.StartedAt
		}
		if firstEnd.IsZero() || tr.CompletedAt.Before(firstEnd) {
			firstEnd = tr.CompletedAt
		}
	}
	if !lastStart.Before(firstEnd) {
		t.Errorf("the transforms did not overlap: the last started at %v, the first ended at %v", lastStart, firstEnd)
	}
	wf, _ := r.Workflow("etl")
	if ti, _ := wf.Task("extract"); ti.Retry.MaxAttempts < 2 {
		t.Errorf("extract's retry policy %+v allows no retry", ti.Retry)
	}
	if ti, _ := wf.Task("load"); !slices.Equal(ti.Dependencies, []string{"sum", "max", "count_even"}) {
		t.Errorf("load depends on %v", ti.Dependencies)
	}

	// The default is 100 rows.
	res = run(t, ctx, r, "etl", nil, cloacina.ExecutionCompleted)
	if got := get[report](t, res, "report"); got.Rows != 100 {
		t.Errorf("default report = %+v, want 100 rows", got)
	}
	for _, bad := range []any{2.5, 0, 10001, "ten"} {
		res := run(t, ctx, r, "etl", map[string]any{"rows": bad}, cloacina.ExecutionFailed)
		wantBadInput(t, res, "extract", "rows")
	}
}

func TestFlaky(t *testing.T) {
	t.Parallel()
	r, ctx := newRunner(t), testCtx(t)
	res := run(t, ctx, r, "flaky", map[string]any{"failure_rate": 0}, cloacina.ExecutionCompleted)
	if n := attempts(t, res, "call_api"); n != 1 {
		t.Errorf("failure_rate 0 took %d attempts, want 1", n)
	}
	if got := get[string](t, res, "response"); got != "ok" {
		t.Errorf("response = %q, want ok", got)
	}

	// Always failing: every attempt is used, with backoff in between.
	start := time.Now()
	res = run(t, ctx, r, "flaky", map[string]any{"failure_rate": 1}, cloacina.ExecutionFailed)
	if n := attempts(t, res, "call_api"); n != 5 {
		t.Errorf("failure_rate 1 took %d attempts, want 5", n)
	}
	if took := time.Since(start); took < 1500*time.Millisecond {
		t.Errorf("5 attempts took %v, want at least the 1.5s of backoff", took)
	}
	if !strings.Contains(res.Error, "simulated upstream failure") {
		t.Errorf("error %q, want the simulated failure", res.Error)
	}

	for _, bad := range []any{1.5, -0.1, "half"} {
		res := run(t, ctx, r, "flaky", map[string]any{"failure_rate": bad}, cloacina.ExecutionFailed)
		wantBadInput(t, res, "call_api", "failure_rate")
	}
}
