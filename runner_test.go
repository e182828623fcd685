package cloacina_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina"
	"github.com/google/uuid"
)

// 1. Execute on a diamond a -> {b, c} -> d.
func TestExecuteDiamond(t *testing.T) {
	t.Parallel()
	wf := cloacina.NewWorkflow("diamond").
		Task("a", setTask("a")).
		Task("b", setTask("b"), cloacina.DependsOn("a")).
		Task("c", setTask("c"), cloacina.DependsOn("a")).
		Task("d", setTask("d"), cloacina.DependsOn("b", "c")).
		MustBuild()
	r := newRunner(t, []*cloacina.Workflow{wf})
	ctx := testCtx(t, 10*time.Second)

	before := time.Now().Truncate(time.Microsecond)
	res := execute(t, ctx, r, "diamond", map[string]any{"input": "x"})
	wantStatus(t, res, cloacina.ExecutionCompleted)
	if res.Error != "" {
		t.Errorf("Error = %q, want empty", res.Error)
	}
	if v := res.ExecutionID.Version(); v != 7 {
		t.Errorf("ExecutionID %s is a version %d UUID, want 7", res.ExecutionID, v)
	}
	if res.WorkflowName != "diamond" || res.WorkflowVersion != wf.Version() {
		t.Errorf("workflow %s@%s, want diamond@%s", res.WorkflowName, res.WorkflowVersion, wf.Version())
	}
	if res.Context == nil {
		t.Fatal("Context is nil on a completed execution")
	}
	if got, want := sortedKeys(res.Context), []string{"a", "b", "c", "d", "input"}; !slices.Equal(got, want) {
		t.Errorf("final context keys %v, want %v (context %s)", got, want, res.Context)
	}
	if v, _ := res.Context.Get("input"); v != "x" {
		t.Errorf("final context input = %v, want x", v)
	}

	// Tasks in topological order, each run once.
	var names []string
	for _, tr := range res.Tasks {
		names = append(names, tr.Name)
		if tr.Status != cloacina.TaskCompleted || tr.Attempts != 1 || tr.Error != "" || tr.Recoveries != 0 {
			t.Errorf("task %s: %+v, want Completed after 1 attempt", tr.Name, tr)
		}
		if tr.Duration < 0 {
			t.Errorf("task %s: negative duration %v", tr.Name, tr.Duration)
		}
		if tr.StartedAt.IsZero() || tr.CompletedAt.IsZero() || tr.CompletedAt.Before(tr.StartedAt) {
			t.Errorf("task %s: started %v, completed %v", tr.Name, tr.StartedAt, tr.CompletedAt)
		}
		if tr.StartedAt.Before(res.StartedAt) || tr.CompletedAt.After(res.CompletedAt) {
			t.Errorf("task %s ran %v..%v, outside the execution's %v..%v", tr.Name, tr.StartedAt, tr.CompletedAt, res.StartedAt, res.CompletedAt)
		}
	}
	if want := []string{"a", "b", "c", "d"}; !slices.Equal(names, want) {
		t.Errorf("task order %v, want %v", names, want)
	}
	// d starts only after both of its dependencies completed.
	d := taskOf(t, res, "d")
	for _, dep := range []string{"b", "c"} {
		if dt := taskOf(t, res, dep); d.StartedAt.Before(dt.CompletedAt) {
			t.Errorf("d started at %v, before %s completed at %v", d.StartedAt, dep, dt.CompletedAt)
		}
	}

	if res.CreatedAt.Before(before) || res.StartedAt.Before(res.CreatedAt) || res.CompletedAt.Before(res.StartedAt) {
		t.Errorf("times out of order: before %v, created %v, started %v, completed %v", before, res.CreatedAt, res.StartedAt, res.CompletedAt)
	}
	if res.Duration <= 0 || res.Duration != res.CompletedAt.Sub(res.StartedAt) {
		t.Errorf("Duration %v, want CompletedAt-StartedAt = %v > 0", res.Duration, res.CompletedAt.Sub(res.StartedAt))
	}

	// The stored result reads back the same.
	st, err := r.ExecutionStatus(ctx, res.ExecutionID)
	if err != nil || st != cloacina.ExecutionCompleted {
		t.Errorf("ExecutionStatus = %s, %v; want Completed", st, err)
	}
	again, err := r.ExecutionResult(ctx, res.ExecutionID)
	if err != nil {
		t.Fatal(err)
	}
	if again.Context.String() != res.Context.String() || len(again.Tasks) != 4 || !again.CompletedAt.Equal(res.CompletedAt) {
		t.Errorf("ExecutionResult differs from Execute's result:\n%+v\n%+v", again, res)
	}
}

// 2. The context flow rule of the package documentation.
func TestContextFlow(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	seen := map[string]map[string]any{}
	record := func(name string, body func(c *cloacina.Context) error) cloacina.TaskFunc {
		return func(_ context.Context, c *cloacina.Context) error {
			mu.Lock()
			seen[name] = c.Map()
			mu.Unlock()
			return body(c)
		}
	}
	// editNested sets nested.<key> = v for every key/value pair.
	editNested := func(c *cloacina.Context, kv map[string]any) error {
		n, err := cloacina.GetAs[map[string]any](c, "nested")
		if err != nil {
			return err
		}
		for k, v := range kv {
			n[k] = v
		}
		return c.Set("nested", n)
	}
	flow := cloacina.NewWorkflow("flow").
		Task("root", record("root", func(c *cloacina.Context) error {
			c.Delete("drop")
			return c.Set("root", "r")
		})).
		Task("left", record("left", func(c *cloacina.Context) error {
			if err := c.Set("shared", "left"); err != nil {
				return err
			}
			if err := c.Set("only_left", true); err != nil {
				return err
			}
			return editNested(c, map[string]any{"l": 1, "both": "left"})
		}), cloacina.DependsOn("root")).
		Task("right", record("right", func(c *cloacina.Context) error {
			if err := c.Set("shared", "right"); err != nil {
				return err
			}
			if err := c.Set("only_right", true); err != nil {
				return err
			}
			return editNested(c, map[string]any{"r": 1, "both": "right"})
		}), cloacina.DependsOn("root")).
		Task("join", record("join", func(c *cloacina.Context) error {
			return c.Set("join", true)
		}), cloacina.DependsOn("left", "right")).
		Task("join_rev", record("join_rev", func(c *cloacina.Context) error {
			return c.Set("join_rev", true)
		}), cloacina.DependsOn("right", "left")).
		MustBuild()
	// A key deleted by a task stays deleted downstream and in the final
	// context, although an upstream saved context still has it.
	deletes := cloacina.NewWorkflow("deletes").
		Task("p", record("p", func(c *cloacina.Context) error { return c.Set("tmp", 1) })).
		Task("q", record("q", func(c *cloacina.Context) error { c.Delete("tmp"); return c.Set("q", true) }), cloacina.DependsOn("p")).
		Task("s", record("s", func(c *cloacina.Context) error { return c.Set("s", true) }), cloacina.DependsOn("q")).
		MustBuild()
	// The final context keeps completed tasks whose dependents did not
	// complete.
	partial := cloacina.NewWorkflow("partial").
		Task("a", setTask("a")).
		Task("b", func(context.Context, *cloacina.Context) error { return errors.New("b fails") }, cloacina.DependsOn("a")).
		Task("c", setTask("c")).
		MustBuild()
	r := newRunner(t, []*cloacina.Workflow{flow, deletes, partial})
	ctx := testCtx(t, 10*time.Second)

	res := execute(t, ctx, r, "flow", map[string]any{"keep": "k", "drop": "gone", "shared": "input", "nested": map[string]any{"a": 1}})
	wantStatus(t, res, cloacina.ExecutionCompleted)
	mu.Lock()
	wantMap(t, "root's input", seen["root"], `{"keep":"k","drop":"gone","shared":"input","nested":{"a":1}}`)
	afterRoot := `{"keep":"k","shared":"input","nested":{"a":1},"root":"r"}`
	wantMap(t, "left's input", seen["left"], afterRoot)
	wantMap(t, "right's input", seen["right"], afterRoot)
	wantMap(t, "join's input (left then right)", seen["join"],
		`{"keep":"k","root":"r","shared":"right","only_left":true,"only_right":true,"nested":{"a":1,"l":1,"r":1,"both":"right"}}`)
	wantMap(t, "join_rev's input (right then left)", seen["join_rev"],
		`{"keep":"k","root":"r","shared":"left","only_left":true,"only_right":true,"nested":{"a":1,"l":1,"r":1,"both":"left"}}`)
	mu.Unlock()
	// Final: join then join_rev (topological order), the two leaves.
	wantMap(t, "final context of flow", res.Context.Map(),
		`{"keep":"k","root":"r","shared":"left","only_left":true,"only_right":true,"nested":{"a":1,"l":1,"r":1,"both":"left"},"join":true,"join_rev":true}`)

	res = execute(t, ctx, r, "deletes", map[string]any{"in": 1})
	wantStatus(t, res, cloacina.ExecutionCompleted)
	mu.Lock()
	wantMap(t, "q's input", seen["q"], `{"in":1,"tmp":1}`)
	wantMap(t, "s's input", seen["s"], `{"in":1,"q":true}`)
	mu.Unlock()
	wantMap(t, "final context of deletes", res.Context.Map(), `{"in":1,"q":true,"s":true}`)

	res = execute(t, ctx, r, "partial", map[string]any{"in": 1})
	wantStatus(t, res, cloacina.ExecutionFailed)
	wantMap(t, "final context of partial", res.Context.Map(), `{"in":1,"a":true,"c":true}`)
}

// 3. Bad input is rejected and writes nothing.
func TestBadInputWritesNothing(t *testing.T) {
	t.Parallel()
	wf := cloacina.NewWorkflow("wf").Task("t", okTask).MustBuild()
	r := newRunner(t, []*cloacina.Workflow{wf}, cloacina.WithMaxContextBytes(64))
	ctx := testCtx(t, 10*time.Second)

	if _, err := r.Execute(ctx, "nope", nil); !errors.Is(err, cloacina.ErrUnknownWorkflow) {
		t.Errorf("Execute(unknown workflow) = %v, want ErrUnknownWorkflow", err)
	}
	if _, err := r.ExecuteAsync(ctx, "nope", nil); !errors.Is(err, cloacina.ErrUnknownWorkflow) {
		t.Errorf("ExecuteAsync(unknown workflow) = %v, want ErrUnknownWorkflow", err)
	}
	if _, err := r.ExecuteMany(ctx, "nope", []any{nil}); !errors.Is(err, cloacina.ErrUnknownWorkflow) {
		t.Errorf("ExecuteMany(unknown workflow) = %v, want ErrUnknownWorkflow", err)
	}
	for _, in := range []any{
		json.RawMessage(`[1, 2]`), []any{1, 2}, []byte(`["x"]`),
		"a string", json.RawMessage(`"a string"`),
		42, 3.5, json.RawMessage(`42`),
		true, json.RawMessage(`null`), json.RawMessage(`{not json`),
	} {
		if _, err := r.Execute(ctx, "wf", in); !errors.Is(err, cloacina.ErrInvalidContext) {
			t.Errorf("Execute(input %#v) = %v, want ErrInvalidContext", in, err)
		}
	}
	big := map[string]any{"blob": strings.Repeat("x", 100)}
	if _, err := r.Execute(ctx, "wf", big); !errors.Is(err, cloacina.ErrContextTooLarge) {
		t.Errorf("Execute(input over the limit) = %v, want ErrContextTooLarge", err)
	}
	// One bad input among good ones: none of them is recorded.
	if _, err := r.ExecuteMany(ctx, "wf", []any{nil, map[string]any{"i": 1}, []any{"bad"}}); !errors.Is(err, cloacina.ErrInvalidContext) {
		t.Errorf("ExecuteMany(one bad input) = %v, want ErrInvalidContext", err)
	}
	if _, err := r.ExecuteMany(ctx, "wf", []any{nil, big}); !errors.Is(err, cloacina.ErrContextTooLarge) {
		t.Errorf("ExecuteMany(one input over the limit) = %v, want ErrContextTooLarge", err)
	}
	// Nothing at all is also nothing written.
	if hs, err := r.ExecuteMany(ctx, "wf", nil); err != nil || len(hs) != 0 {
		t.Errorf("ExecuteMany(no inputs) = %d handles, %v; want 0, nil", len(hs), err)
	}

	page, err := r.ListExecutions(ctx, cloacina.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Executions) != 0 {
		t.Errorf("bad input wrote %d executions: %+v", len(page.Executions), page.Executions)
	}
	m, err := r.Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m.TotalExecutions != 0 || m.ReadyTasks != 0 {
		t.Errorf("metrics after bad input: %+v", m)
	}
	// The limit is inclusive of inputs that fit.
	wantStatus(t, execute(t, ctx, r, "wf", map[string]any{"ok": 1}), cloacina.ExecutionCompleted)
}

// 3. Bad runner options fail NewRunner and create no database.
func TestNewRunnerRejectsBadOptions(t *testing.T) {
	t.Parallel()
	wf := cloacina.NewWorkflow("wf").Task("t", okTask).MustBuild()
	twin := cloacina.NewWorkflow("wf").Task("other", okTask).MustBuild()
	for _, tc := range []struct {
		name string
		url  string // "" means a fresh SQLite file
		opts []cloacina.Option
		want error
	}{
		{"negative MaxConcurrentTasks", "", []cloacina.Option{cloacina.WithMaxConcurrentTasks(-1)}, cloacina.ErrInvalidOption},
		{"negative TaskTimeout", "", []cloacina.Option{cloacina.WithTaskTimeout(-time.Second)}, cloacina.ErrInvalidOption},
		{"negative DBPoolSize", "", []cloacina.Option{cloacina.WithDBPoolSize(-2)}, cloacina.ErrInvalidOption},
		{"negative PollInterval", "", []cloacina.Option{cloacina.WithPollInterval(-time.Second)}, cloacina.ErrInvalidOption},
		{"negative MaxContextBytes", "", []cloacina.Option{cloacina.WithMaxContextBytes(-1)}, cloacina.ErrInvalidOption},
		{"schema on SQLite", "", []cloacina.Option{cloacina.WithSchema("tenant_a")}, cloacina.ErrInvalidOption},
		{"workflow registered twice", "", []cloacina.Option{cloacina.WithWorkflows(wf), cloacina.WithWorkflows(wf)}, cloacina.ErrInvalidOption},
		{"two workflows with one name", "", []cloacina.Option{cloacina.WithWorkflows(wf, twin)}, cloacina.ErrInvalidOption},
		{"nil workflow", "", []cloacina.Option{cloacina.WithWorkflows(nil)}, cloacina.ErrInvalidOption},
		{"mysql URL", "mysql://x", nil, cloacina.ErrUnsupportedDatabase},
		{"empty URL", "-", nil, cloacina.ErrInvalidOption},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url, path := sqliteURL(t)
			switch tc.url {
			case "":
			case "-":
				url = ""
			default:
				url = tc.url
			}
			r, err := cloacina.NewRunner(testCtx(t, 10*time.Second), url, runnerOpts(tc.opts...)...)
			if r != nil {
				shutdown(t, r)
			}
			if !errors.Is(err, tc.want) || r != nil {
				t.Fatalf("NewRunner = %v, %v; want nil, %v", r, err, tc.want)
			}
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a rejected NewRunner created the database %s (stat: %v)", path, err)
			}
		})
	}
}

// 3. A task whose saved context exceeds the limit fails, naming the limit,
// and is not retried.
func TestTaskContextTooLarge(t *testing.T) {
	t.Parallel()
	var attempts atomic.Int32
	wf := cloacina.NewWorkflow("big").
		Task("grow", func(_ context.Context, c *cloacina.Context) error {
			attempts.Add(1)
			return c.Set("blob", strings.Repeat("x", 500))
		}, cloacina.Retry(cloacina.RetryPolicy{MaxAttempts: 3, Backoff: cloacina.BackoffFixed, InitialDelay: 10 * time.Millisecond})).
		Task("after", setTask("after"), cloacina.DependsOn("grow")).
		MustBuild()
	r := newRunner(t, []*cloacina.Workflow{wf}, cloacina.WithMaxContextBytes(200))
	ctx := testCtx(t, 10*time.Second)

	res := execute(t, ctx, r, "big", map[string]any{"in": 1})
	wantStatus(t, res, cloacina.ExecutionFailed)
	tr := wantTask(t, res, "grow", cloacina.TaskFailed, 1)
	if !strings.Contains(tr.Error, "200") || !strings.Contains(tr.Error, "too large") {
		t.Errorf("task error %q should say the context is too large and name the limit 200", tr.Error)
	}
	if n := attempts.Load(); n != 1 {
		t.Errorf("task ran %d times, want 1 (an oversized context is permanent)", n)
	}
	wantTask(t, res, "after", cloacina.TaskSkipped, 0)
	if !strings.Contains(res.Error, "grow") {
		t.Errorf("Result.Error %q does not name the task", res.Error)
	}
	if res.Context.Has("blob") {
		t.Errorf("the oversized context was saved: %s", res.Context)
	}
}

// failing returns a task body that fails its first n attempts with the
// error mk(attempt) and then succeeds; attempts are counted in *count.
func failing(n int, count *atomic.Int32, mk func(attempt int) error) cloacina.TaskFunc {
	return func(context.Context, *cloacina.Context) error {
		a := int(count.Add(1))
		if a <= n {
			return mk(a)
		}
		return nil
	}
}

// 4. Backoffs: two failures then success, spaced by at least the delays.
func TestExecuteRetryBackoff(t *testing.T) {
	t.Parallel()
	const d = 20 * time.Millisecond
	for _, tc := range []struct {
		backoff cloacina.Backoff
		delays  []time.Duration
	}{
		{cloacina.BackoffFixed, []time.Duration{d, d}},
		{cloacina.BackoffLinear, []time.Duration{d, 2 * d}},
		{cloacina.BackoffExponential, []time.Duration{d, 2 * d}},
	} {
		t.Run(string(tc.backoff), func(t *testing.T) {
			t.Parallel()
			policy := cloacina.RetryPolicy{MaxAttempts: 3, Backoff: tc.backoff, InitialDelay: d}
			for i, want := range tc.delays {
				if got := policy.Delay(i + 1); got != want {
					t.Fatalf("Delay(%d) = %v, want %v", i+1, got, want)
				}
			}
			var mu sync.Mutex
			var starts []time.Time
			wf := cloacina.NewWorkflow("retry").
				Task("flaky", func(_ context.Context, c *cloacina.Context) error {
					mu.Lock()
					starts = append(starts, time.Now())
					n := len(starts)
					mu.Unlock()
					// The attempt takes a moment, so that its end (from
					// which the delay counts) is after its recorded start.
					time.Sleep(time.Millisecond)
					if n <= 2 {
						return fmt.Errorf("attempt %d fails", n)
					}
					return c.Set("done", n)
				}, cloacina.Retry(policy)).
				MustBuild()
			r := newRunner(t, []*cloacina.Workflow{wf})
			ctx := testCtx(t, 10*time.Second)

			res := execute(t, ctx, r, "retry", nil)
			wantStatus(t, res, cloacina.ExecutionCompleted)
			tr := wantTask(t, res, "flaky", cloacina.TaskCompleted, 3)
			if tr.Error != "" {
				t.Errorf("completed task keeps error %q", tr.Error)
			}
			if v, _ := res.Context.Get("done"); v != 3.0 {
				t.Errorf("final context done = %v, want 3", v)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(starts) != 3 {
				t.Fatalf("task body ran %d times, want 3", len(starts))
			}
			for i, want := range tc.delays {
				if gap := starts[i+1].Sub(starts[i]); gap < want {
					t.Errorf("attempt %d started %v after attempt %d, want at least %v", i+2, gap, i+1, want)
				}
			}
			evs := eventsOf(t, ctx, r, res.ExecutionID)
			retries := filterEvents(evs, cloacina.EventTaskRetryScheduled, "flaky")
			if len(retries) != 2 {
				t.Fatalf("%d task_retry_scheduled events, want 2:%s", len(retries), describeEvents(evs))
			}
			for i, e := range retries {
				if e.Attempt != i+1 || !strings.Contains(e.Message, fmt.Sprintf("attempt %d fails", i+1)) {
					t.Errorf("retry event %d: attempt %d, message %q", i, e.Attempt, e.Message)
				}
			}
			startedEvs := filterEvents(evs, cloacina.EventTaskStarted, "flaky")
			if len(startedEvs) != 3 || startedEvs[0].Attempt != 1 || startedEvs[2].Attempt != 3 {
				t.Errorf("task_started events: %+v", startedEvs)
			}
			if n := len(filterEvents(evs, cloacina.EventTaskFailed, "*")); n != 0 {
				t.Errorf("%d task_failed events for a task that was retried and completed", n)
			}
		})
	}
}

type statusError struct{ code int }

func (e *statusError) Error() string { return fmt.Sprintf("status %d", e.code) }

// 4. Retry conditions, Permanent, and exhausted retries.
func TestExecuteRetryConditions(t *testing.T) {
	t.Parallel()
	fast := func(on cloacina.RetryCondition, max int) cloacina.TaskOption {
		return cloacina.Retry(cloacina.RetryPolicy{MaxAttempts: max, Backoff: cloacina.BackoffFixed,
			InitialDelay: 10 * time.Millisecond, RetryOn: on})
	}
	is5xx := cloacina.RetryIf("5xx", func(err error) bool {
		var se *statusError
		return errors.As(err, &se) && se.code >= 500
	})
	type tcase struct {
		name     string
		on       cloacina.RetryCondition
		max      int
		fails    int // attempts that fail
		err      func(attempt int) error
		status   cloacina.TaskStatus
		attempts int
	}
	plain := func(int) error { return errors.New("plain failure") }
	cases := []tcase{
		{"never", cloacina.RetryNever(), 3, 1, plain, cloacina.TaskFailed, 1},
		{"transient_retried", cloacina.RetryTransient(), 3, 1, func(int) error { return cloacina.Transient(errors.New("blip")) }, cloacina.TaskCompleted, 2},
		{"transient_wrapped_retried", cloacina.RetryTransient(), 3, 1, func(int) error {
			return fmt.Errorf("calling api: %w", cloacina.Transient(errors.New("blip")))
		}, cloacina.TaskCompleted, 2},
		{"transient_plain_not_retried", cloacina.RetryTransient(), 3, 1, plain, cloacina.TaskFailed, 1},
		{"messages_retried", cloacina.RetryOnMessages("connection reset", "try again"), 3, 2, func(int) error {
			return errors.New("read: connection reset by peer")
		}, cloacina.TaskCompleted, 3},
		{"messages_not_retried", cloacina.RetryOnMessages("connection reset", "try again"), 3, 1, func(int) error {
			return errors.New("bad request")
		}, cloacina.TaskFailed, 1},
		{"if_retried", is5xx, 3, 1, func(int) error { return &statusError{503} }, cloacina.TaskCompleted, 2},
		{"if_not_retried", is5xx, 3, 1, func(int) error { return &statusError{404} }, cloacina.TaskFailed, 1},
		{"permanent", cloacina.RetryAllErrors(), 5, 1, func(int) error { return cloacina.Permanent(errors.New("bad config")) }, cloacina.TaskFailed, 1},
		{"permanent_wrapped", cloacina.RetryAllErrors(), 5, 1, func(int) error {
			return fmt.Errorf("loading: %w", cloacina.Permanent(errors.New("bad config")))
		}, cloacina.TaskFailed, 1},
		{"permanent_on_second_attempt", cloacina.RetryAllErrors(), 5, 5, func(a int) error {
			if a == 1 {
				return errors.New("first")
			}
			return cloacina.Permanent(errors.New("give up"))
		}, cloacina.TaskFailed, 2},
		{"exhausted", cloacina.RetryAllErrors(), 3, 100, func(a int) error { return fmt.Errorf("failure %d", a) }, cloacina.TaskFailed, 3},
	}
	counts := make([]atomic.Int32, len(cases))
	var wfs []*cloacina.Workflow
	for i, tc := range cases {
		wfs = append(wfs, cloacina.NewWorkflow(tc.name).
			Task("work_"+tc.name, failing(tc.fails, &counts[i], tc.err), fast(tc.on, tc.max)).
			MustBuild())
	}
	r := newRunner(t, wfs)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t, 10*time.Second)
			task := "work_" + tc.name
			res := execute(t, ctx, r, tc.name, nil)
			tr := wantTask(t, res, task, tc.status, tc.attempts)
			if n := int(counts[i].Load()); n != tc.attempts {
				t.Errorf("task body ran %d times, want %d", n, tc.attempts)
			}
			evs := eventsOf(t, ctx, r, res.ExecutionID)
			if n := len(filterEvents(evs, cloacina.EventTaskRetryScheduled, task)); n != tc.attempts-1 {
				t.Errorf("%d task_retry_scheduled events, want %d:%s", n, tc.attempts-1, describeEvents(evs))
			}
			if tc.status == cloacina.TaskCompleted {
				wantStatus(t, res, cloacina.ExecutionCompleted)
				return
			}
			wantStatus(t, res, cloacina.ExecutionFailed)
			lastErr := tc.err(tc.attempts).Error()
			if tr.Error != lastErr {
				t.Errorf("task error %q, want the last attempt's %q", tr.Error, lastErr)
			}
			if !strings.Contains(res.Error, task) || !strings.Contains(res.Error, lastErr) {
				t.Errorf("Result.Error %q should name the task %s and its error %q", res.Error, task, lastErr)
			}
			failed := filterEvents(evs, cloacina.EventTaskFailed, task)
			if len(failed) != 1 || failed[0].Attempt != tc.attempts {
				t.Errorf("task_failed events %+v, want one at attempt %d", failed, tc.attempts)
			}
			if n := len(filterEvents(evs, cloacina.EventExecutionFailed, "")); n != 1 {
				t.Errorf("%d execution_failed events, want 1", n)
			}
		})
	}
}

// 5. A scheduled retry survives a restart.
func TestDurableRetryAcrossRestart(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var starts []time.Time
	mk := func() *cloacina.Workflow {
		return cloacina.NewWorkflow("durable").
			Task("flaky", func(_ context.Context, c *cloacina.Context) error {
				mu.Lock()
				starts = append(starts, time.Now())
				n := len(starts)
				mu.Unlock()
				if n == 1 {
					time.Sleep(time.Millisecond) // the delay counts from the attempt's end
					return errors.New("first attempt fails")
				}
				return c.Set("attempt", n)
			}, cloacina.Retry(cloacina.RetryPolicy{MaxAttempts: 3, Backoff: cloacina.BackoffFixed, InitialDelay: time.Second})).
			MustBuild()
	}
	url, _ := sqliteURL(t)
	ctx := testCtx(t, 15*time.Second)

	r1 := startRunner(t, url, cloacina.WithWorkflows(mk()), cloacina.WithWorkerID("first"))
	h, err := r1.ExecuteAsync(ctx, "durable", map[string]any{"in": 1})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, ctx, "the retry is scheduled", func() bool {
		return len(filterEvents(eventsOf(t, ctx, r1, h.ID()), cloacina.EventTaskRetryScheduled, "flaky")) == 1
	})
	if err := r1.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with nothing running = %v, want nil", err)
	}
	mu.Lock()
	if len(starts) != 1 {
		t.Fatalf("before the restart the task ran %d times, want 1", len(starts))
	}
	mu.Unlock()

	r2 := startRunner(t, url, cloacina.WithWorkflows(mk()), cloacina.WithWorkerID("second"))
	res, err := r2.Wait(ctx, h.ID())
	if err != nil {
		t.Fatalf("Wait on the new runner: %v", err)
	}
	wantStatus(t, res, cloacina.ExecutionCompleted)
	wantTask(t, res, "flaky", cloacina.TaskCompleted, 2)
	if v, _ := res.Context.Get("attempt"); v != 2.0 {
		t.Errorf("final context attempt = %v, want 2", v)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(starts) != 2 {
		t.Fatalf("task ran %d times in all, want 2", len(starts))
	}
	if gap := starts[1].Sub(starts[0]); gap < time.Second {
		t.Errorf("the retry ran %v after the first attempt, before its 1s delay", gap)
	}
	evs := eventsOf(t, ctx, r2, h.ID())
	started := filterEvents(evs, cloacina.EventTaskStarted, "flaky")
	if len(started) != 2 || started[0].Worker != "first" || started[1].Worker != "second" {
		t.Errorf("task_started events %+v, want attempt 1 by first and attempt 2 by second", started)
	}
}

// 6. An execution interrupted by a shutdown carries on in a new runner.
func TestRestartCarriesOn(t *testing.T) {
	t.Parallel()
	var runs counter
	bStarted := make(chan struct{})
	mk := func() *cloacina.Workflow {
		return cloacina.NewWorkflow("chain").
			Task("a", func(_ context.Context, c *cloacina.Context) error {
				runs.inc("a")
				return c.Set("a", true)
			}).
			Task("b", func(ctx context.Context, c *cloacina.Context) error {
				if runs.inc("b") == 1 {
					close(bStarted)
					// Block until interrupted: only the shutdown ends this.
					select {
					case <-ctx.Done():
						return ctx.Err()
					case <-time.After(10 * time.Second):
						return errors.New("not interrupted")
					}
				}
				return c.Set("b", true)
			}, cloacina.DependsOn("a")).
			Task("c", func(_ context.Context, c *cloacina.Context) error {
				runs.inc("c")
				return c.Set("c", true)
			}, cloacina.DependsOn("b")).
			MustBuild()
	}
	url, _ := sqliteURL(t)
	ctx := testCtx(t, 15*time.Second)

	r1 := startRunner(t, url, cloacina.WithWorkflows(mk()))
	h, err := r1.ExecuteAsync(ctx, "chain", map[string]any{"in": 1})
	if err != nil {
		t.Fatal(err)
	}
	recv(t, bStarted, 5*time.Second, "task b to start")
	sctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	err = r1.Shutdown(sctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown interrupting a task = %v, want context.DeadlineExceeded", err)
	}
	if err := r1.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown = %v, want nil", err)
	}
	if _, err := r1.ExecuteAsync(ctx, "chain", nil); !errors.Is(err, cloacina.ErrRunnerClosed) {
		t.Errorf("ExecuteAsync after Shutdown = %v, want ErrRunnerClosed", err)
	}

	r2 := startRunner(t, url, cloacina.WithWorkflows(mk()))
	res, err := r2.Wait(ctx, h.ID())
	if err != nil {
		t.Fatalf("Wait on the new runner: %v", err)
	}
	wantStatus(t, res, cloacina.ExecutionCompleted)
	if got := sortedKeys(res.Context); !slices.Equal(got, []string{"a", "b", "c", "in"}) {
		t.Errorf("final context keys %v", got)
	}
	if got := runs.snapshot(); got["a"] != 1 || got["b"] != 2 || got["c"] != 1 {
		t.Errorf("task bodies ran %v times, want a:1 b:2 (interrupted, then again) c:1", got)
	}
	wantTask(t, res, "a", cloacina.TaskCompleted, 1)
	wantTask(t, res, "b", cloacina.TaskCompleted, 1) // the interrupted attempt does not count
	wantTask(t, res, "c", cloacina.TaskCompleted, 1)
	evs := eventsOf(t, ctx, r2, h.ID())
	if n := len(filterEvents(evs, cloacina.EventTaskReleased, "b")); n != 1 {
		t.Errorf("%d task_released events for b, want 1:%s", n, describeEvents(evs))
	}
	if n := len(filterEvents(evs, cloacina.EventTaskFailed, "*")); n != 0 {
		t.Errorf("%d task_failed events, want none:%s", n, describeEvents(evs))
	}
	if err := r2.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown with nothing running = %v, want nil", err)
	}
}

// 6 (continued). A shutdown that comes right after an execution is
// recorded, racing with the claim of its first task, must not lose the
// task: a new runner finishes the execution.
func TestShutdownRightAfterExecuteAsync(t *testing.T) {
	t.Parallel()
	wf := cloacina.NewWorkflow("quick").
		Task("a", setTask("a")).
		Task("b", setTask("b"), cloacina.DependsOn("a")).
		MustBuild()
	ctx := testCtx(t, 20*time.Second)
	for i := range 15 {
		url, _ := sqliteURL(t)
		r1 := startRunner(t, url, cloacina.WithWorkflows(wf))
		h, err := r1.ExecuteAsync(ctx, "quick", nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := r1.Shutdown(ctx); err != nil {
			t.Fatalf("round %d: Shutdown = %v", i, err)
		}
		r2 := startRunner(t, url, cloacina.WithWorkflows(wf))
		wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		res, err := r2.Wait(wctx, h.ID())
		cancel()
		if err != nil {
			er, _ := r2.ExecutionResult(ctx, h.ID())
			t.Fatalf("round %d: the execution did not finish after the restart: %v; state: %s", i, err, describeTasks(er))
		}
		wantStatus(t, res, cloacina.ExecutionCompleted)
		shutdown(t, r2)
	}
}

// An Execute waiting when its runner shuts down returns at once with
// ErrRunnerClosed, rather than when its own context ends.
func TestExecuteWaitingDuringShutdown(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	wf := cloacina.NewWorkflow("block").
		Task("wait", func(ctx context.Context, _ *cloacina.Context) error {
			close(started)
			<-ctx.Done()
			return ctx.Err()
		}).
		MustBuild()
	r := newRunner(t, []*cloacina.Workflow{wf})
	type result struct {
		res *cloacina.Result
		err error
	}
	done := make(chan result, 1)
	ectx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
	defer cancel()
	go func() {
		res, err := r.Execute(ectx, "block", nil)
		done <- result{res, err}
	}()
	recv(t, started, 5*time.Second, "the task to start")
	sctx, scancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	if err := r.Shutdown(sctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want context.DeadlineExceeded", err)
	}
	scancel()
	select {
	case got := <-done:
		if !errors.Is(got.err, cloacina.ErrRunnerClosed) {
			t.Errorf("Execute = %v, %v; want ErrRunnerClosed", got.res, got.err)
		}
	case <-time.After(2 * time.Second):
		cancel()
		got := <-done
		t.Errorf("Execute still waiting 2s after Shutdown returned (it returned %v once its own context was cancelled)", got.err)
	}
}

// 7. Task timeouts.
func TestTaskTimeouts(t *testing.T) {
	t.Parallel()
	waitCtx := func(ctx context.Context, c *cloacina.Context) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Second):
			return c.Set("finished", true)
		}
	}
	wfs := []*cloacina.Workflow{
		cloacina.NewWorkflow("own").Task("t", waitCtx, cloacina.Timeout(50*time.Millisecond)).MustBuild(),
		cloacina.NewWorkflow("default").Task("t", waitCtx).MustBuild(),
		cloacina.NewWorkflow("override").Task("t", func(ctx context.Context, c *cloacina.Context) error {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(150 * time.Millisecond):
				return c.Set("finished", true)
			}
		}, cloacina.Timeout(5*time.Second)).MustBuild(),
		cloacina.NewWorkflow("ignores").Task("t", func(_ context.Context, c *cloacina.Context) error {
			time.Sleep(150 * time.Millisecond)
			return c.Set("finished", true)
		}, cloacina.Timeout(50*time.Millisecond)).MustBuild(),
	}
	r := newRunner(t, wfs, cloacina.WithTaskTimeout(50*time.Millisecond))
	for _, tc := range []struct {
		wf, errPart string // errPart "" means the task completes
	}{
		{"own", "deadline exceeded"},
		{"default", "deadline exceeded"},
		{"override", ""},
		{"ignores", "timed out"},
	} {
		t.Run(tc.wf, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t, 10*time.Second)
			res := execute(t, ctx, r, tc.wf, map[string]any{"in": 1})
			if tc.errPart == "" {
				wantStatus(t, res, cloacina.ExecutionCompleted)
				if !res.Context.Has("finished") {
					t.Errorf("final context %s lacks the task's key", res.Context)
				}
				return
			}
			wantStatus(t, res, cloacina.ExecutionFailed)
			tr := wantTask(t, res, "t", cloacina.TaskFailed, 1)
			if !strings.Contains(tr.Error, tc.errPart) {
				t.Errorf("task error %q does not mention %q", tr.Error, tc.errPart)
			}
			if tr.Duration < 50*time.Millisecond || tr.Duration > 4*time.Second {
				t.Errorf("attempt took %v, want about the 50ms timeout", tr.Duration)
			}
			if res.Context.Has("finished") {
				t.Errorf("a timed-out task's context was saved: %s", res.Context)
			}
		})
	}
}

// 8. Trigger rules.
func TestTriggerRules(t *testing.T) {
	t.Parallel()
	var runs counter
	var mu sync.Mutex
	seen := map[string]map[string]any{}
	run := func(name string) cloacina.TaskFunc {
		return func(_ context.Context, c *cloacina.Context) error {
			runs.inc(name)
			mu.Lock()
			seen[name] = c.Map()
			mu.Unlock()
			return c.Set(name, true)
		}
	}
	fail := func(name string) cloacina.TaskFunc {
		return func(context.Context, *cloacina.Context) error {
			runs.inc(name)
			return errors.New(name + " fails")
		}
	}
	dep := cloacina.DependsOn
	when := cloacina.When
	wfs := []*cloacina.Workflow{
		cloacina.NewWorkflow("cascade").
			Task("a", fail("cascade.a")).
			Task("b", run("cascade.b"), dep("a")).
			Task("c", run("cascade.c"), dep("b")).
			Task("other", run("cascade.other")).
			MustBuild(),
		cloacina.NewWorkflow("always").
			Task("a", fail("always.a")).
			Task("cleanup", run("always.cleanup"), dep("a"), when(cloacina.Always())).
			MustBuild(),
		cloacina.NewWorkflow("rules").
			Task("ok", run("rules.ok")).
			Task("bad", fail("rules.bad")).
			Task("sk", run("rules.sk"), dep("bad")).
			Task("t1", run("rules.t1"), dep("ok", "bad"), when(cloacina.All(cloacina.Succeeded("ok"), cloacina.Failed("bad")))).
			Task("t2", run("rules.t2"), dep("ok", "bad"), when(cloacina.All(cloacina.Succeeded("ok"), cloacina.Succeeded("bad")))).
			Task("t3", run("rules.t3"), dep("bad", "sk"), when(cloacina.Any(cloacina.Succeeded("bad"), cloacina.Skipped("sk")))).
			Task("t4", run("rules.t4"), dep("ok", "bad"), when(cloacina.Any(cloacina.Failed("ok"), cloacina.Succeeded("bad")))).
			Task("t5", run("rules.t5"), dep("bad"), when(cloacina.None(cloacina.Succeeded("bad")))).
			Task("t6", run("rules.t6"), dep("ok"), when(cloacina.None(cloacina.Succeeded("ok")))).
			MustBuild(),
		cloacina.NewWorkflow("cond").
			Task("root", func(_ context.Context, c *cloacina.Context) error { return c.Set("mode", "full") }).
			Task("yes", run("cond.yes"), dep("root"), when(cloacina.All(cloacina.ContextEquals("mode", "full")))).
			Task("no", run("cond.no"), dep("root"), when(cloacina.All(cloacina.ContextEquals("mode", "partial")))).
			Task("after_no", run("cond.after_no"), dep("no")).
			MustBuild(),
		cloacina.NewWorkflow("branch").
			Task("decide", func(_ context.Context, c *cloacina.Context) error {
				route, err := cloacina.GetAs[string](c, "input_route")
				if err != nil {
					return err
				}
				return c.Set("route", route)
			}).
			Task("x", run("branch.x"), dep("decide"), when(cloacina.All(cloacina.ContextEquals("route", "x")))).
			Task("y", run("branch.y"), dep("decide"), when(cloacina.All(cloacina.ContextEquals("route", "y")))).
			Task("join", run("branch.join"), dep("x", "y"), when(cloacina.Any(cloacina.Succeeded("x"), cloacina.Succeeded("y")))).
			MustBuild(),
	}
	r := newRunner(t, wfs)

	t.Run("default_rule_cascades", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		res := execute(t, ctx, r, "cascade", nil)
		wantStatus(t, res, cloacina.ExecutionFailed)
		wantTask(t, res, "a", cloacina.TaskFailed, 1)
		b := wantTask(t, res, "b", cloacina.TaskSkipped, 0)
		c := wantTask(t, res, "c", cloacina.TaskSkipped, 0)
		wantTask(t, res, "other", cloacina.TaskCompleted, 1)
		if !strings.Contains(b.Error, "a") || !strings.Contains(c.Error, "b") {
			t.Errorf("skip reasons b=%q c=%q should name the upstream task", b.Error, c.Error)
		}
		if runs.get("cascade.b") != 0 || runs.get("cascade.c") != 0 {
			t.Errorf("skipped tasks ran: %v", runs.snapshot())
		}
		if !strings.Contains(res.Error, "task a failed") {
			t.Errorf("Result.Error = %q, want it to name task a", res.Error)
		}
		evs := eventsOf(t, ctx, r, res.ExecutionID)
		for _, name := range []string{"b", "c"} {
			if n := len(filterEvents(evs, cloacina.EventTaskSkipped, name)); n != 1 {
				t.Errorf("%d task_skipped events for %s, want 1:%s", n, name, describeEvents(evs))
			}
		}
	})

	t.Run("always", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		res := execute(t, ctx, r, "always", map[string]any{"in": 1})
		wantStatus(t, res, cloacina.ExecutionFailed)
		wantTask(t, res, "cleanup", cloacina.TaskCompleted, 1)
		mu.Lock()
		// No dependency completed: the task sees the execution's input.
		wantMap(t, "cleanup's input", seen["always.cleanup"], `{"in":1}`)
		mu.Unlock()
		wantMap(t, "final context", res.Context.Map(), `{"in":1,"always.cleanup":true}`)
	})

	t.Run("all_any_none", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		res := execute(t, ctx, r, "rules", nil)
		wantStatus(t, res, cloacina.ExecutionFailed) // bad failed
		wantTask(t, res, "sk", cloacina.TaskSkipped, 0)
		for _, tc := range []struct {
			task string
			runs bool
		}{{"t1", true}, {"t2", false}, {"t3", true}, {"t4", false}, {"t5", true}, {"t6", false}} {
			if tc.runs {
				wantTask(t, res, tc.task, cloacina.TaskCompleted, 1)
				if runs.get("rules."+tc.task) != 1 {
					t.Errorf("%s ran %d times, want 1", tc.task, runs.get("rules."+tc.task))
				}
				continue
			}
			tr := wantTask(t, res, tc.task, cloacina.TaskSkipped, 0)
			if runs.get("rules."+tc.task) != 0 {
				t.Errorf("skipped task %s ran", tc.task)
			}
			if !strings.Contains(tr.Error, "trigger rule") || !strings.Contains(tr.Error, "is false") {
				t.Errorf("skip reason of %s = %q, want it to name the trigger rule", tc.task, tr.Error)
			}
		}
	})

	t.Run("context_conditions", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		res := execute(t, ctx, r, "cond", nil)
		wantStatus(t, res, cloacina.ExecutionCompleted)
		if got := taskOf(t, res, "yes"); got.Status != cloacina.TaskCompleted {
			t.Errorf("yes: %s (%s), want Completed", got.Status, got.Error)
		}
		no := wantTask(t, res, "no", cloacina.TaskSkipped, 0) // skipped before its body: no attempt
		if !strings.Contains(no.Error, `trigger rule all(context(mode equals "partial")) is false`) {
			t.Errorf("skip reason of no = %q, want the rule", no.Error)
		}
		wantTask(t, res, "after_no", cloacina.TaskSkipped, 0)
		if runs.get("cond.yes") != 1 || runs.get("cond.no") != 0 || runs.get("cond.after_no") != 0 {
			t.Errorf("runs: %v, want yes once, no and after_no never", runs.snapshot())
		}
		evs := eventsOf(t, ctx, r, res.ExecutionID)
		sk := filterEvents(evs, cloacina.EventTaskSkipped, "no")
		if len(sk) != 1 || !strings.Contains(sk[0].Message, "trigger rule") {
			t.Errorf("task_skipped events for no: %+v, want one naming the rule:%s", sk, describeEvents(evs))
		}
		if n := len(filterEvents(evs, cloacina.EventTaskFailed, "*")); n != 0 {
			t.Errorf("%d task_failed events:%s", n, describeEvents(evs))
		}
	})

	t.Run("branch_and_join", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		for _, tc := range []struct {
			route     string
			x, y, j   cloacina.TaskStatus
			wantFinal string
		}{
			{"x", cloacina.TaskCompleted, cloacina.TaskSkipped, cloacina.TaskCompleted,
				`{"input_route":"x","route":"x","branch.x":true,"branch.join":true}`},
			{"y", cloacina.TaskSkipped, cloacina.TaskCompleted, cloacina.TaskCompleted,
				`{"input_route":"y","route":"y","branch.y":true,"branch.join":true}`},
			// Neither branch: the join is skipped, and the final context is
			// decide's, the only completed task.
			{"z", cloacina.TaskSkipped, cloacina.TaskSkipped, cloacina.TaskSkipped,
				`{"input_route":"z","route":"z"}`},
		} {
			res := execute(t, ctx, r, "branch", map[string]any{"input_route": tc.route})
			wantStatus(t, res, cloacina.ExecutionCompleted)
			for name, want := range map[string]cloacina.TaskStatus{"x": tc.x, "y": tc.y, "join": tc.j} {
				if got := taskOf(t, res, name); got.Status != want {
					t.Errorf("route %s: task %s is %s (%s), want %s", tc.route, name, got.Status, got.Error, want)
				}
			}
			wantMap(t, "final context of route "+tc.route, res.Context.Map(), tc.wantFinal)
		}
	})
}

// blockingChain returns a workflow first -> second -> third where first
// signals started and then waits for release (or its context).
func blockingChain(name string, started, release chan struct{}, runs *counter) *cloacina.Workflow {
	return cloacina.NewWorkflow(name).
		Task("first", func(ctx context.Context, c *cloacina.Context) error {
			runs.inc("first")
			close(started)
			select {
			case <-release:
				return c.Set("first", true)
			case <-ctx.Done():
				return ctx.Err()
			}
		}).
		Task("second", func(_ context.Context, c *cloacina.Context) error {
			runs.inc("second")
			return c.Set("second", true)
		}, cloacina.DependsOn("first")).
		Task("third", func(_ context.Context, c *cloacina.Context) error {
			runs.inc("third")
			return c.Set("third", true)
		}, cloacina.DependsOn("second")).
		MustBuild()
}

// 9. Pause stops new tasks from starting; Resume lets them start.
func TestPauseResume(t *testing.T) {
	t.Parallel()
	started, release := make(chan struct{}), make(chan struct{})
	var runs counter
	r := newRunner(t, []*cloacina.Workflow{blockingChain("chain", started, release, &runs)})
	ctx := testCtx(t, 10*time.Second)

	h, err := r.ExecuteAsync(ctx, "chain", nil)
	if err != nil {
		t.Fatal(err)
	}
	recv(t, started, 5*time.Second, "the first task to start")
	if st, err := h.Status(ctx); err != nil || st != cloacina.ExecutionRunning {
		t.Fatalf("Status = %s, %v; want Running", st, err)
	}
	if err := r.Pause(ctx, h.ID()); err != nil {
		close(release)
		t.Fatalf("Pause(Running) = %v", err)
	}
	if st, _ := h.Status(ctx); st != cloacina.ExecutionPaused {
		t.Errorf("Status after Pause = %s, want Paused", st)
	}
	if err := r.Pause(ctx, h.ID()); !errors.Is(err, cloacina.ErrInvalidTransition) {
		t.Errorf("Pause(Paused) = %v, want ErrInvalidTransition", err)
	}
	close(release) // the running task finishes while paused
	waitUntil(t, ctx, "the first task completes", func() bool {
		return taskStatus(t, ctx, r, h.ID(), "first").Status == cloacina.TaskCompleted
	})
	time.Sleep(300 * time.Millisecond)
	if n := runs.get("second"); n != 0 {
		t.Fatalf("second task ran %d times while the execution was paused", n)
	}
	if tr := taskStatus(t, ctx, r, h.ID(), "second"); tr.Status != cloacina.TaskReady || tr.Attempts != 0 {
		t.Errorf("second task while paused: %s after %d attempts, want Ready after 0", tr.Status, tr.Attempts)
	}
	if st, _ := h.Status(ctx); st != cloacina.ExecutionPaused {
		t.Errorf("Status while paused = %s, want Paused", st)
	}

	if err := r.Resume(ctx, h.ID()); err != nil {
		t.Fatalf("Resume = %v", err)
	}
	res, err := h.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, res, cloacina.ExecutionCompleted)
	if got := runs.snapshot(); got["first"] != 1 || got["second"] != 1 || got["third"] != 1 {
		t.Errorf("runs %v, want each task once", got)
	}
	evs := eventsOf(t, ctx, r, h.ID())
	var order []cloacina.EventType
	for _, e := range evs {
		switch e.Type {
		case cloacina.EventExecutionPaused, cloacina.EventExecutionResumed, cloacina.EventExecutionCompleted:
			order = append(order, e.Type)
		}
	}
	if want := []cloacina.EventType{cloacina.EventExecutionPaused, cloacina.EventExecutionResumed, cloacina.EventExecutionCompleted}; !slices.Equal(order, want) {
		t.Errorf("execution events %v, want %v", order, want)
	}
	// Nothing of the second task happened between pause and resume.
	var pausedAt, resumedAt, secondStarted time.Time
	for _, e := range evs {
		switch {
		case e.Type == cloacina.EventExecutionPaused:
			pausedAt = e.At
		case e.Type == cloacina.EventExecutionResumed:
			resumedAt = e.At
		case e.Type == cloacina.EventTaskStarted && e.Task == "second":
			secondStarted = e.At
		}
	}
	if secondStarted.Before(resumedAt) || resumedAt.Before(pausedAt) {
		t.Errorf("paused %v, resumed %v, second started %v", pausedAt, resumedAt, secondStarted)
	}
}

// 9. Transitions that are not allowed, and unknown executions.
func TestTransitionErrors(t *testing.T) {
	t.Parallel()
	started, release := make(chan struct{}), make(chan struct{})
	var runs counter
	quick := cloacina.NewWorkflow("quick").Task("t", okTask).MustBuild()
	r := newRunner(t, []*cloacina.Workflow{quick, blockingChain("chain", started, release, &runs)})
	ctx := testCtx(t, 10*time.Second)

	res := execute(t, ctx, r, "quick", nil)
	wantStatus(t, res, cloacina.ExecutionCompleted)
	for name, op := range map[string]func(context.Context, uuid.UUID) error{"Pause": r.Pause, "Resume": r.Resume, "Cancel": r.Cancel} {
		if err := op(ctx, res.ExecutionID); !errors.Is(err, cloacina.ErrInvalidTransition) {
			t.Errorf("%s(Completed) = %v, want ErrInvalidTransition", name, err)
		}
		if err := op(ctx, uuid.New()); !errors.Is(err, cloacina.ErrExecutionNotFound) {
			t.Errorf("%s(unknown id) = %v, want ErrExecutionNotFound", name, err)
		}
	}
	if st, _ := r.ExecutionStatus(ctx, res.ExecutionID); st != cloacina.ExecutionCompleted {
		t.Errorf("status after refused transitions = %s, want Completed", st)
	}

	h, err := r.ExecuteAsync(ctx, "chain", nil)
	if err != nil {
		t.Fatal(err)
	}
	recv(t, started, 5*time.Second, "the first task to start")
	if err := r.Resume(ctx, h.ID()); !errors.Is(err, cloacina.ErrInvalidTransition) {
		t.Errorf("Resume(Running) = %v, want ErrInvalidTransition", err)
	}
	close(release)
	res, err = h.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, res, cloacina.ExecutionCompleted)

	unknown := uuid.Must(uuid.NewV7())
	if _, err := r.ExecutionStatus(ctx, unknown); !errors.Is(err, cloacina.ErrExecutionNotFound) {
		t.Errorf("ExecutionStatus(unknown) = %v, want ErrExecutionNotFound", err)
	}
	if _, err := r.ExecutionResult(ctx, unknown); !errors.Is(err, cloacina.ErrExecutionNotFound) {
		t.Errorf("ExecutionResult(unknown) = %v, want ErrExecutionNotFound", err)
	}
	if _, err := r.Wait(ctx, unknown); !errors.Is(err, cloacina.ErrExecutionNotFound) {
		t.Errorf("Wait(unknown) = %v, want ErrExecutionNotFound", err)
	}
}

// 9. Cancel while a task runs.
func TestCancelRunning(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	sawCancel := make(chan struct{})
	var runs counter
	wf := cloacina.NewWorkflow("cancel").
		Task("first", func(ctx context.Context, _ *cloacina.Context) error {
			runs.inc("first")
			close(started)
			select {
			case <-ctx.Done():
				close(sawCancel)
				return ctx.Err()
			case <-time.After(5 * time.Second):
				return errors.New("not cancelled")
			}
		}, cloacina.Retry(cloacina.RetryPolicy{MaxAttempts: 3, InitialDelay: 10 * time.Millisecond})).
		Task("second", setTask("second"), cloacina.DependsOn("first")).
		Task("third", setTask("third"), cloacina.DependsOn("second")).
		Task("side", func(_ context.Context, c *cloacina.Context) error {
			runs.inc("side")
			return c.Set("side", true)
		}, cloacina.DependsOn("first"), cloacina.When(cloacina.Always())).
		MustBuild()
	r := newRunner(t, []*cloacina.Workflow{wf})
	ctx := testCtx(t, 10*time.Second)

	h, err := r.ExecuteAsync(ctx, "cancel", map[string]any{"in": 1})
	if err != nil {
		t.Fatal(err)
	}
	type waitResult struct {
		res *cloacina.Result
		err error
	}
	waited := make(chan waitResult, 1)
	go func() {
		res, err := h.Wait(ctx)
		waited <- waitResult{res, err}
	}()
	recv(t, started, 5*time.Second, "the first task to start")
	if err := h.Cancel(ctx); err != nil {
		t.Fatalf("Cancel = %v", err)
	}
	recv(t, sawCancel, 2*time.Second, "the running task's context to be cancelled")
	var res *cloacina.Result
	select {
	case w := <-waited:
		if w.err != nil {
			t.Fatalf("Wait = %v", w.err)
		}
		res = w.res
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return after Cancel")
	}
	wantStatus(t, res, cloacina.ExecutionCancelled)
	for _, name := range []string{"second", "third", "side"} {
		tr := wantTask(t, res, name, cloacina.TaskSkipped, 0)
		if !strings.Contains(tr.Error, "cancelled") {
			t.Errorf("task %s error %q, want it to say cancelled", name, tr.Error)
		}
	}
	if err := h.Cancel(ctx); !errors.Is(err, cloacina.ErrInvalidTransition) {
		t.Errorf("Cancel(Cancelled) = %v, want ErrInvalidTransition", err)
	}
	if err := r.Pause(ctx, h.ID()); !errors.Is(err, cloacina.ErrInvalidTransition) {
		t.Errorf("Pause(Cancelled) = %v, want ErrInvalidTransition", err)
	}
	if err := r.Resume(ctx, h.ID()); !errors.Is(err, cloacina.ErrInvalidTransition) {
		t.Errorf("Resume(Cancelled) = %v, want ErrInvalidTransition", err)
	}
	// The interrupted task ends, is not retried, and nothing else runs.
	waitUntil(t, ctx, "the cancelled task to end", func() bool {
		return taskStatus(t, ctx, r, h.ID(), "first").Status.Terminal()
	})
	time.Sleep(100 * time.Millisecond)
	final, err := r.ExecutionResult(ctx, h.ID())
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, final, cloacina.ExecutionCancelled)
	first := wantTask(t, final, "first", cloacina.TaskFailed, 1)
	if !strings.Contains(first.Error, "cancelled") {
		t.Errorf("cancelled task error %q, want it to say cancelled", first.Error)
	}
	if got := runs.snapshot(); got["first"] != 1 || got["side"] != 0 {
		t.Errorf("runs %v, want first once and side never", got)
	}
	evs := eventsOf(t, ctx, r, h.ID())
	if n := len(filterEvents(evs, cloacina.EventExecutionCancelled, "")); n != 1 {
		t.Errorf("%d execution_cancelled events, want 1:%s", n, describeEvents(evs))
	}
	for _, typ := range []cloacina.EventType{cloacina.EventExecutionCompleted, cloacina.EventExecutionFailed, cloacina.EventTaskRetryScheduled} {
		if n := len(filterEvents(evs, typ, "*")); n != 0 {
			t.Errorf("%d %s events after a cancel:%s", n, typ, describeEvents(evs))
		}
	}
	if res.Context == nil || !res.Context.Has("in") {
		t.Errorf("final context of a cancelled execution = %v, want the input", res.Context)
	}
}

// 10. A panicking task fails; the runner keeps working.
func TestTaskPanic(t *testing.T) {
	t.Parallel()
	wfs := []*cloacina.Workflow{
		cloacina.NewWorkflow("panics").
			Task("boom", func(context.Context, *cloacina.Context) error { panic("kaboom") }).
			Task("after", setTask("after"), cloacina.DependsOn("boom")).
			MustBuild(),
		cloacina.NewWorkflow("panics_error").
			Task("boom", func(context.Context, *cloacina.Context) error { panic(errors.New("wrapped kaboom")) }).
			MustBuild(),
		cloacina.NewWorkflow("fine").Task("t", setTask("t")).MustBuild(),
	}
	r := newRunner(t, wfs)
	ctx := testCtx(t, 10*time.Second)

	for _, tc := range []struct{ wf, msg string }{{"panics", "kaboom"}, {"panics_error", "wrapped kaboom"}} {
		res := execute(t, ctx, r, tc.wf, nil)
		wantStatus(t, res, cloacina.ExecutionFailed)
		tr := wantTask(t, res, "boom", cloacina.TaskFailed, 1)
		if !strings.Contains(tr.Error, "panic") || !strings.Contains(tr.Error, tc.msg) {
			t.Errorf("%s: task error %q, want the panic message %q", tc.wf, tr.Error, tc.msg)
		}
		evs := eventsOf(t, ctx, r, res.ExecutionID)
		failed := filterEvents(evs, cloacina.EventTaskFailed, "boom")
		if len(failed) != 1 || !strings.Contains(failed[0].Message, tc.msg) {
			t.Errorf("%s: task_failed events %+v, want one with %q", tc.wf, failed, tc.msg)
		}
	}
	res := execute(t, ctx, r, "fine", nil)
	wantStatus(t, res, cloacina.ExecutionCompleted)
	res = execute(t, ctx, r, "panics", nil)
	wantStatus(t, res, cloacina.ExecutionFailed)
	wantTask(t, res, "after", cloacina.TaskSkipped, 0)
}

// 11. ExecuteAsync and its handle.
func TestExecuteAsyncHandle(t *testing.T) {
	t.Parallel()
	wf := cloacina.NewWorkflow("slowish").
		Task("a", func(_ context.Context, c *cloacina.Context) error {
			time.Sleep(20 * time.Millisecond)
			return c.Set("a", true)
		}).
		MustBuild()
	r := newRunner(t, []*cloacina.Workflow{wf})
	ctx := testCtx(t, 10*time.Second)

	h, err := r.ExecuteAsync(ctx, "slowish", map[string]any{"in": 1})
	if err != nil {
		t.Fatal(err)
	}
	if h.ID().Version() != 7 {
		t.Errorf("handle id %s is not a version 7 UUID", h.ID())
	}
	// The execution is recorded when ExecuteAsync returns.
	st, err := h.Status(ctx)
	if err != nil || !st.Valid() {
		t.Fatalf("Status right after ExecuteAsync = %q, %v", st, err)
	}
	waitUntil(t, ctx, "the execution completes", func() bool {
		st, err := h.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st == cloacina.ExecutionCompleted
	})
	res, err := h.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, res, cloacina.ExecutionCompleted)
	if res.ExecutionID != h.ID() {
		t.Errorf("result of %s, want %s", res.ExecutionID, h.ID())
	}
	if got := sortedKeys(res.Context); !slices.Equal(got, []string{"a", "in"}) {
		t.Errorf("final context keys %v", got)
	}
	// Waiting again, through the handle or the runner, gives the same.
	for _, wait := range []func() (*cloacina.Result, error){
		func() (*cloacina.Result, error) { return h.Wait(ctx) },
		func() (*cloacina.Result, error) { return r.Wait(ctx, h.ID()) },
	} {
		again, err := wait()
		if err != nil || again.Status != cloacina.ExecutionCompleted || again.ExecutionID != h.ID() {
			t.Errorf("second Wait = %+v, %v", again, err)
		}
	}
	// Wait with a context that ends first returns the context's error.
	h2, err := r.ExecuteAsync(ctx, "slowish", nil)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	if _, err := h2.Wait(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait with an expiring context = %v, want context.DeadlineExceeded", err)
	}
	res, err = h2.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, res, cloacina.ExecutionCompleted)
}

// 11. ExecuteMany.
func TestExecuteMany(t *testing.T) {
	t.Parallel()
	wf := cloacina.NewWorkflow("double").
		Task("a", func(_ context.Context, c *cloacina.Context) error {
			i, err := cloacina.GetAs[int](c, "i")
			if err != nil {
				return err
			}
			return c.Set("double", 2*i)
		}).
		Task("b", setTask("b"), cloacina.DependsOn("a")).
		MustBuild()
	r := newRunner(t, []*cloacina.Workflow{wf})
	ctx := testCtx(t, 20*time.Second)

	inputs := make([]any, 50)
	for i := range inputs {
		inputs[i] = map[string]any{"i": i}
	}
	hs, err := r.ExecuteMany(ctx, "double", inputs)
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 50 {
		t.Fatalf("%d handles, want 50", len(hs))
	}
	ids := map[uuid.UUID]bool{}
	for _, h := range hs {
		if h.ID().Version() != 7 {
			t.Errorf("id %s is not a version 7 UUID", h.ID())
		}
		ids[h.ID()] = true
	}
	if len(ids) != 50 {
		t.Fatalf("%d distinct ids, want 50", len(ids))
	}
	for i, h := range hs {
		res, err := h.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, res, cloacina.ExecutionCompleted)
		// Handles come in the order of the inputs.
		if got, err := cloacina.GetAs[int](res.Context, "double"); err != nil || got != 2*i {
			t.Errorf("execution %d: double = %d, %v; want %d", i, got, err, 2*i)
		}
	}
	page, err := r.ListExecutions(ctx, cloacina.ListOptions{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Executions) != 50 {
		t.Errorf("%d executions listed, want 50", len(page.Executions))
	}
}

// 12. ListExecutions.
func TestListExecutions(t *testing.T) {
	t.Parallel()
	r := newRunner(t, []*cloacina.Workflow{
		cloacina.NewWorkflow("ok").Task("t", okTask).MustBuild(),
		cloacina.NewWorkflow("bad").Task("t", func(context.Context, *cloacina.Context) error { return errors.New("no") }).MustBuild(),
	})
	ctx := testCtx(t, 20*time.Second)

	// Created one after the other: 7 ok, 4 bad, interleaved.
	var created []uuid.UUID
	status := map[uuid.UUID]cloacina.ExecutionStatus{}
	workflow := map[uuid.UUID]string{}
	for i := range 11 {
		wf := "ok"
		if i%3 == 1 {
			wf = "bad"
		}
		res := execute(t, ctx, r, wf, map[string]any{"i": i})
		created = append(created, res.ExecutionID)
		status[res.ExecutionID] = res.Status
		workflow[res.ExecutionID] = wf
	}
	newestFirst := slices.Clone(created)
	slices.Reverse(newestFirst)
	keep := func(pred func(uuid.UUID) bool) []uuid.UUID {
		var out []uuid.UUID
		for _, id := range newestFirst {
			if pred(id) {
				out = append(out, id)
			}
		}
		return out
	}
	listAll := func(opts cloacina.ListOptions) []uuid.UUID {
		t.Helper()
		var out []uuid.UUID
		seenCursor := map[string]bool{}
		for pages := 0; ; pages++ {
			page, err := r.ListExecutions(ctx, opts)
			if err != nil {
				t.Fatalf("ListExecutions(%+v): %v", opts, err)
			}
			if opts.Limit > 0 && len(page.Executions) > opts.Limit {
				t.Fatalf("page of %d executions, over the limit %d", len(page.Executions), opts.Limit)
			}
			for _, s := range page.Executions {
				out = append(out, s.ExecutionID)
				if s.Status != status[s.ExecutionID] || s.WorkflowName != workflow[s.ExecutionID] {
					t.Errorf("summary %+v: want status %s, workflow %s", s, status[s.ExecutionID], workflow[s.ExecutionID])
				}
				if s.Duration != s.CompletedAt.Sub(s.StartedAt) || s.Duration <= 0 {
					t.Errorf("summary %s: duration %v, started %v, completed %v", s.ExecutionID, s.Duration, s.StartedAt, s.CompletedAt)
				}
				if (s.Status == cloacina.ExecutionFailed) != (s.Error != "") {
					t.Errorf("summary %s: status %s with error %q", s.ExecutionID, s.Status, s.Error)
				}
			}
			if page.NextCursor == "" {
				return out
			}
			if len(page.Executions) == 0 || seenCursor[page.NextCursor] || pages > 20 {
				t.Fatalf("paging does not advance: cursor %q after %d pages", page.NextCursor, pages)
			}
			seenCursor[page.NextCursor] = true
			opts.Cursor = page.NextCursor
		}
	}
	check := func(name string, opts cloacina.ListOptions, want []uuid.UUID) {
		t.Helper()
		if got := listAll(opts); !slices.Equal(got, want) {
			t.Errorf("%s: listed %d executions %v\nwant %d %v", name, len(got), got, len(want), want)
		}
	}

	check("all", cloacina.ListOptions{}, newestFirst)
	for _, limit := range []int{1, 3, 4, 10, 11, 12} {
		check(fmt.Sprintf("all, pages of %d", limit), cloacina.ListOptions{Limit: limit}, newestFirst)
	}
	failed := keep(func(id uuid.UUID) bool { return status[id] == cloacina.ExecutionFailed })
	if len(failed) != 4 {
		t.Fatalf("%d failed executions, want 4", len(failed))
	}
	check("failed", cloacina.ListOptions{Statuses: []cloacina.ExecutionStatus{cloacina.ExecutionFailed}}, failed)
	check("failed, pages of 3", cloacina.ListOptions{Statuses: []cloacina.ExecutionStatus{cloacina.ExecutionFailed}, Limit: 3}, failed)
	check("completed or failed", cloacina.ListOptions{Statuses: []cloacina.ExecutionStatus{cloacina.ExecutionCompleted, cloacina.ExecutionFailed}}, newestFirst)
	check("running", cloacina.ListOptions{Statuses: []cloacina.ExecutionStatus{cloacina.ExecutionRunning}}, nil)
	okOnes := keep(func(id uuid.UUID) bool { return workflow[id] == "ok" })
	check("workflow ok", cloacina.ListOptions{Workflow: "ok"}, okOnes)
	check("workflow ok, pages of 2", cloacina.ListOptions{Workflow: "ok", Limit: 2}, okOnes)
	check("workflow ok, failed", cloacina.ListOptions{Workflow: "ok", Statuses: []cloacina.ExecutionStatus{cloacina.ExecutionFailed}}, nil)
	check("unknown workflow", cloacina.ListOptions{Workflow: "nope"}, nil)

	// Newest first also by creation time.
	page, err := r.ListExecutions(ctx, cloacina.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(page.Executions); i++ {
		if page.Executions[i].CreatedAt.After(page.Executions[i-1].CreatedAt) {
			t.Errorf("execution %d created after execution %d, listed later", i, i-1)
		}
	}

	for name, opts := range map[string]cloacina.ListOptions{
		"invalid status": {Statuses: []cloacina.ExecutionStatus{"Done"}},
		"invalid cursor": {Cursor: "not-a-cursor"},
		"negative limit": {Limit: -1},
	} {
		if _, err := r.ListExecutions(ctx, opts); !errors.Is(err, cloacina.ErrInvalidOption) {
			t.Errorf("ListExecutions(%s) = %v, want ErrInvalidOption", name, err)
		}
	}
}

// 13. ExecutionEvents of a two-task chain.
func TestExecutionEvents(t *testing.T) {
	t.Parallel()
	wf := cloacina.NewWorkflow("pair").
		Task("first", setTask("first")).
		Task("second", setTask("second"), cloacina.DependsOn("first")).
		MustBuild()
	r := newRunner(t, []*cloacina.Workflow{wf}, cloacina.WithWorkerID("w-events"))
	ctx := testCtx(t, 10*time.Second)

	res := execute(t, ctx, r, "pair", nil)
	wantStatus(t, res, cloacina.ExecutionCompleted)
	evs := eventsOf(t, ctx, r, res.ExecutionID)
	type ev struct {
		typ  cloacina.EventType
		task string
	}
	var got []ev
	for _, e := range evs {
		got = append(got, ev{e.Type, e.Task})
	}
	want := []ev{
		{cloacina.EventExecutionCreated, ""},
		{cloacina.EventTaskReady, "first"},
		{cloacina.EventTaskStarted, "first"},
		{cloacina.EventExecutionStarted, ""},
		{cloacina.EventTaskCompleted, "first"},
		{cloacina.EventTaskReady, "second"},
		{cloacina.EventTaskStarted, "second"},
		{cloacina.EventTaskCompleted, "second"},
		{cloacina.EventExecutionCompleted, ""},
	}
	if !slices.Equal(got, want) {
		t.Errorf("events:%s\nwant %v", describeEvents(evs), want)
	}
	ids := map[int64]bool{}
	for i, e := range evs {
		if e.ExecutionID != res.ExecutionID {
			t.Errorf("event %d belongs to %s", i, e.ExecutionID)
		}
		// In time order; every event written (the starts too, once the
		// execution ended), each with an id of its own.
		if i > 0 && e.At.Before(evs[i-1].At) {
			t.Errorf("event %d (%s, at %v) is before event %d (at %v)", i, e.Type, e.At, i-1, evs[i-1].At)
		}
		if e.ID == 0 || ids[e.ID] {
			t.Errorf("event %d (%s) has id %d, want a stored event's own", i, e.Type, e.ID)
		}
		ids[e.ID] = true
		if e.At.Before(res.CreatedAt) || e.At.After(res.CompletedAt) {
			t.Errorf("event %d at %v, outside the execution's %v..%v", i, e.At, res.CreatedAt, res.CompletedAt)
		}
		switch e.Type {
		case cloacina.EventTaskStarted, cloacina.EventTaskCompleted:
			if e.Attempt != 1 || e.Worker != "w-events" {
				t.Errorf("event %s %s: attempt %d, worker %q; want 1, w-events", e.Type, e.Task, e.Attempt, e.Worker)
			}
		case cloacina.EventExecutionStarted, cloacina.EventExecutionCompleted:
			if e.Worker != "w-events" {
				t.Errorf("event %s: worker %q, want w-events", e.Type, e.Worker)
			}
		}
	}
	if _, err := r.ExecutionEvents(ctx, uuid.Must(uuid.NewV7())); !errors.Is(err, cloacina.ErrExecutionNotFound) {
		t.Errorf("ExecutionEvents(unknown) = %v, want ErrExecutionNotFound", err)
	}
}

// 14. Concurrent Executes share the runner's task slots.
func TestConcurrentExecute(t *testing.T) {
	t.Parallel()
	var running, peak atomic.Int32
	body := func(_ context.Context, c *cloacina.Context) error {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(2 * time.Millisecond)
		return nil
	}
	// 20 executions in flight, each with a ready task: far more ready tasks
	// than the 4 slots.
	wf := cloacina.NewWorkflow("fan").Task("a", body).MustBuild()
	r := newRunner(t, []*cloacina.Workflow{wf}, cloacina.WithMaxConcurrentTasks(4))
	ctx := testCtx(t, 30*time.Second)

	var wg sync.WaitGroup
	var completed atomic.Int32
	for g := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				res, err := r.Execute(ctx, "fan", map[string]any{"g": g, "i": i})
				if err != nil {
					t.Errorf("Execute: %v", err)
					return
				}
				if res.Status != cloacina.ExecutionCompleted {
					t.Errorf("execution %s: %s (%s)", res.ExecutionID, res.Status, describeTasks(res))
					continue
				}
				completed.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := completed.Load(); n != 200 {
		t.Errorf("%d executions completed, want 200", n)
	}
	if p := peak.Load(); p > 4 || p < 1 {
		t.Errorf("at most %d tasks ran at once, want between 1 and the limit 4", p)
	}
	m, err := r.Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m.TotalExecutions != 200 || m.ByStatus[cloacina.ExecutionCompleted] != 200 || m.ActiveExecutions != 0 {
		t.Errorf("metrics %+v, want 200 completed", m)
	}
}

// 15. Metrics.
func TestMetrics(t *testing.T) {
	t.Parallel()
	started, release := make(chan struct{}), make(chan struct{})
	var runs counter
	r := newRunner(t, []*cloacina.Workflow{
		cloacina.NewWorkflow("ok").Task("t", func(context.Context, *cloacina.Context) error {
			time.Sleep(5 * time.Millisecond)
			return nil
		}).MustBuild(),
		cloacina.NewWorkflow("bad").Task("t", func(context.Context, *cloacina.Context) error {
			time.Sleep(5 * time.Millisecond)
			return errors.New("no")
		}).MustBuild(),
		blockingChain("chain", started, release, &runs),
	})
	ctx := testCtx(t, 10*time.Second)

	m, err := r.Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m.TotalExecutions != 0 || m.ActiveExecutions != 0 || m.AvgExecutionTime != 0 || len(m.ByStatus) != 0 {
		t.Errorf("metrics of an empty database: %+v", m)
	}
	for i := range 5 {
		wf := "ok"
		if i >= 3 {
			wf = "bad"
		}
		execute(t, ctx, r, wf, nil)
	}
	h, err := r.ExecuteAsync(ctx, "chain", nil)
	if err != nil {
		t.Fatal(err)
	}
	recv(t, started, 5*time.Second, "the blocking task to start")
	m, err = r.Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m.TotalExecutions != 6 || m.ActiveExecutions != 1 || m.ByStatus[cloacina.ExecutionRunning] != 1 || m.RunningTasks != 1 {
		t.Errorf("metrics with one running execution: %+v", m)
	}
	close(release)
	if _, err := h.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	m, err = r.Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[cloacina.ExecutionStatus]int64{cloacina.ExecutionCompleted: 4, cloacina.ExecutionFailed: 2}
	if m.TotalExecutions != 6 || m.ActiveExecutions != 0 || m.ReadyTasks != 0 || m.RunningTasks != 0 || len(m.ByStatus) != 2 ||
		m.ByStatus[cloacina.ExecutionCompleted] != want[cloacina.ExecutionCompleted] || m.ByStatus[cloacina.ExecutionFailed] != want[cloacina.ExecutionFailed] {
		t.Errorf("metrics %+v, want 6 executions: %v", m, want)
	}
	if m.AvgExecutionTime <= 0 || m.AvgExecutionTime > 10*time.Second {
		t.Errorf("AvgExecutionTime %v", m.AvgExecutionTime)
	}
	// Each of the first five took at least 5ms (its task sleeps 5ms); the
	// blocked one may have been quicker (it waited only for one Metrics
	// call), so the mean of six is at least 5/6 of 5ms.
	if m.AvgExecutionTime < 5*time.Millisecond*5/6 {
		t.Errorf("AvgExecutionTime %v, want at least %v", m.AvgExecutionTime, 5*time.Millisecond*5/6)
	}
}

// 16. Config.NewRunner builds the same runner as NewRunner with options.
func TestConfigNewRunner(t *testing.T) {
	t.Parallel()
	wf := cloacina.NewWorkflow("cfg").
		Task("a", setTask("a")).
		Task("b", setTask("b"), cloacina.DependsOn("a")).
		Task("slow", func(ctx context.Context, _ *cloacina.Context) error {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(5 * time.Second):
				return nil
			}
		}).
		MustBuild()
	ctx := testCtx(t, 15*time.Second)
	urlA, _ := sqliteURL(t)
	urlB, _ := sqliteURL(t)
	cfg := cloacina.Config{
		DatabaseURL:        urlA,
		Workflows:          []*cloacina.Workflow{wf},
		MaxConcurrentTasks: 2,
		TaskTimeout:        50 * time.Millisecond,
		DBPoolSize:         3,
		PollInterval:       testPoll,
		MaxContextBytes:    100,
		WorkerID:           "configured",
		Logger:             discardLogger,
	}
	ra, err := cfg.NewRunner(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(t, ra) })
	rb := startRunner(t, urlB, cloacina.WithWorkflows(wf), cloacina.WithMaxConcurrentTasks(2),
		cloacina.WithTaskTimeout(50*time.Millisecond), cloacina.WithDBPoolSize(3),
		cloacina.WithMaxContextBytes(100), cloacina.WithWorkerID("configured"))

	type summary struct {
		status  cloacina.ExecutionStatus
		context string
		tasks   string
		tooBig  bool
	}
	observe := func(r *cloacina.Runner) summary {
		if r.WorkerID() != "configured" {
			t.Errorf("WorkerID = %q", r.WorkerID())
		}
		if w, ok := r.Workflow("cfg"); !ok || w != wf || len(r.Workflows()) != 1 {
			t.Errorf("Workflow(cfg) = %v, %v; Workflows() = %v", w, ok, r.Workflows())
		}
		res := execute(t, ctx, r, "cfg", map[string]any{"in": 1})
		_, err := r.Execute(ctx, "cfg", map[string]any{"blob": strings.Repeat("x", 200)})
		return summary{res.Status, res.Context.String(), describeTasks(res), errors.Is(err, cloacina.ErrContextTooLarge)}
	}
	a, b := observe(ra), observe(rb)
	if a != b {
		t.Errorf("Config.NewRunner and NewRunner behave differently:\n%+v\n%+v", a, b)
	}
	// The settings took effect: the timeout failed the slow task, and the
	// context limit refused the big input.
	if a.status != cloacina.ExecutionFailed || !strings.Contains(a.tasks, "slow=Failed") || !a.tooBig {
		t.Errorf("settings did not take effect: %+v", a)
	}

	bad := cfg
	bad.DatabaseURL = ""
	if _, err := bad.NewRunner(ctx); !errors.Is(err, cloacina.ErrInvalidOption) {
		t.Errorf("Config without DatabaseURL: %v, want ErrInvalidOption", err)
	}
	bad = cfg
	bad.MaxConcurrentTasks = -1
	if _, err := bad.NewRunner(ctx); !errors.Is(err, cloacina.ErrInvalidOption) {
		t.Errorf("Config with negative MaxConcurrentTasks: %v, want ErrInvalidOption", err)
	}
}

// 17. Two runners on one SQLite file share the work; every task runs once.
func TestTwoRunnersShareWork(t *testing.T) {
	t.Parallel()
	var runs counter
	step := func(name string) cloacina.TaskFunc {
		return func(_ context.Context, c *cloacina.Context) error {
			i, err := cloacina.GetAs[int](c, "i")
			if err != nil {
				return err
			}
			runs.inc(fmt.Sprintf("%d/%s", i, name))
			// Long enough that r1's dispatcher does not hold SQLite's write
			// lock nearly all the time, which would starve r2's claims.
			time.Sleep(30 * time.Millisecond)
			return c.Set(name, true)
		}
	}
	wf := cloacina.NewWorkflow("shared").
		Task("a", step("a")).
		Task("b", step("b"), cloacina.DependsOn("a")).
		MustBuild()
	url, _ := sqliteURL(t)
	ctx := testCtx(t, 30*time.Second)
	r1 := startRunner(t, url, cloacina.WithWorkflows(wf), cloacina.WithWorkerID("r1"), cloacina.WithMaxConcurrentTasks(2), cloacina.WithLogger(testLogger(t)))
	r2 := startRunner(t, url, cloacina.WithWorkflows(wf), cloacina.WithWorkerID("r2"), cloacina.WithMaxConcurrentTasks(2), cloacina.WithLogger(testLogger(t)))

	inputs := make([]any, 40)
	for i := range inputs {
		inputs[i] = map[string]any{"i": i}
	}
	hs, err := r1.ExecuteMany(ctx, "shared", inputs)
	if err != nil {
		t.Fatal(err)
	}
	byWorker := map[string]int{}
	for i, h := range hs {
		res, err := h.Wait(ctx)
		if err != nil {
			t.Fatalf("Wait(%d): %v", i, err)
		}
		wantStatus(t, res, cloacina.ExecutionCompleted)
		for _, e := range filterEvents(eventsOf(t, ctx, r2, h.ID()), cloacina.EventTaskStarted, "*") {
			byWorker[e.Worker]++
		}
		// Both runners see the same result.
		other, err := r2.Wait(ctx, h.ID())
		if err != nil || other.Status != res.Status || other.Context.String() != res.Context.String() {
			t.Errorf("r2 sees execution %d as %+v, %v", i, other, err)
		}
	}
	got := runs.snapshot()
	for i := range 40 {
		for _, name := range []string{"a", "b"} {
			if n := got[fmt.Sprintf("%d/%s", i, name)]; n != 1 {
				t.Errorf("execution %d task %s ran %d times, want 1", i, name, n)
			}
		}
	}
	if len(got) != 80 {
		t.Errorf("%d (execution, task) pairs ran, want 80", len(got))
	}
	if byWorker["r1"] == 0 || byWorker["r2"] == 0 || byWorker["r1"]+byWorker["r2"] != 80 {
		t.Errorf("task starts by worker %v, want both runners to run some of the 80", byWorker)
	}
	t.Logf("task starts by worker: %v", byWorker)
}
