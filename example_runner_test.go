package cloacina_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/cloacina-go/cloacina"
)

// exampleRunner starts a runner of wf, with opts, on a SQLite file in a new
// temporary folder and returns a function that shuts it down and removes
// the folder.
func exampleRunner(wf *cloacina.Workflow, opts ...cloacina.Option) (*cloacina.Runner, func()) {
	dir, err := os.MkdirTemp("", "cloacina-example-")
	if err != nil {
		panic(err)
	}
	r, err := cloacina.NewRunner(context.Background(), "sqlite://"+filepath.Join(dir, "app.db"), append([]cloacina.Option{
		cloacina.WithWorkflows(wf),
		cloacina.WithPollInterval(50 * time.Millisecond),
		cloacina.WithLogger(slog.New(slog.DiscardHandler))}, opts...)...)
	if err != nil {
		os.RemoveAll(dir)
		panic(err)
	}
	return r, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.Shutdown(ctx); err != nil {
			fmt.Println("shutdown:", err)
		}
		os.RemoveAll(dir)
	}
}

func ExampleNewRunner() {
	wf := cloacina.NewWorkflow("greet").
		Task("name", func(_ context.Context, c *cloacina.Context) error {
			who, err := cloacina.GetAs[string](c, "who")
			if err != nil {
				return err
			}
			return c.Set("name", "dear "+who)
		}).
		Task("greeting", func(_ context.Context, c *cloacina.Context) error {
			name, err := cloacina.GetAs[string](c, "name")
			if err != nil {
				return err
			}
			return c.Set("greeting", "hello, "+name)
		}, cloacina.DependsOn("name")).
		MustBuild()

	dir, err := os.MkdirTemp("", "cloacina-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	r, err := cloacina.NewRunner(ctx, "sqlite://"+filepath.Join(dir, "app.db"),
		cloacina.WithWorkflows(wf),
		cloacina.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Shutdown(ctx)

	res, err := r.Execute(ctx, "greet", map[string]any{"who": "reader"})
	if err != nil {
		fmt.Println(err)
		return
	}
	greeting, _ := cloacina.GetAs[string](res.Context, "greeting")
	fmt.Println(res.Status)
	fmt.Println(greeting)
	for _, t := range res.Tasks {
		fmt.Println(t.Name, t.Status, t.Attempts)
	}
	// Output:
	// Completed
	// hello, dear reader
	// name Completed 1
	// greeting Completed 1
}

func ExampleRunner_ExecuteAsync() {
	wf := cloacina.NewWorkflow("square").
		Task("square", func(_ context.Context, c *cloacina.Context) error {
			n, err := cloacina.GetAs[int](c, "n")
			if err != nil {
				return err
			}
			return c.Set("square", n*n)
		}).
		MustBuild()
	r, done := exampleRunner(wf)
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// ExecuteAsync returns once the execution is recorded; Wait gets the
	// result.
	h, err := r.ExecuteAsync(ctx, "square", map[string]any{"n": 7})
	if err != nil {
		fmt.Println(err)
		return
	}
	res, err := h.Wait(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	sq, _ := cloacina.GetAs[int](res.Context, "square")
	fmt.Println(res.ExecutionID == h.ID(), res.Status, sq)

	// ExecuteMany records many executions in one transaction.
	hs, err := r.ExecuteMany(ctx, "square", []any{map[string]any{"n": 2}, map[string]any{"n": 3}})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, h := range hs {
		res, err := h.Wait(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		sq, _ := cloacina.GetAs[int](res.Context, "square")
		fmt.Println(res.Status, sq)
	}
	// Output:
	// true Completed 49
	// Completed 4
	// Completed 9
}

func ExampleRetry() {
	var calls atomic.Int32
	wf := cloacina.NewWorkflow("flaky").
		Task("fetch", func(_ context.Context, c *cloacina.Context) error {
			if calls.Add(1) == 1 {
				return cloacina.Transient(errors.New("connection reset"))
			}
			return c.Set("fetched", true)
		}, cloacina.Retry(cloacina.RetryPolicy{
			MaxAttempts:  3,
			Backoff:      cloacina.BackoffFixed,
			InitialDelay: 20 * time.Millisecond,
			RetryOn:      cloacina.RetryTransient(),
		})).
		MustBuild()
	r, done := exampleRunner(wf)
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	res, err := r.Execute(ctx, "flaky", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fetch, _ := res.Task("fetch")
	fmt.Println(res.Status, fetch.Status, "after", fetch.Attempts, "attempts")
	evs, err := r.ExecutionEvents(ctx, res.ExecutionID)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range evs {
		if e.Task == "fetch" {
			fmt.Println(e.Type, e.Attempt)
		}
	}
	// Output:
	// Completed Completed after 2 attempts
	// task_ready 0
	// task_started 1
	// task_retry_scheduled 1
	// task_started 2
	// task_completed 2
}

func ExampleWhen() {
	wf := cloacina.NewWorkflow("report").
		Task("load", func(_ context.Context, c *cloacina.Context) error {
			return c.Set("rows", 0)
		}).
		// Only runs when there is something to report.
		Task("email", func(_ context.Context, c *cloacina.Context) error {
			return c.Set("emailed", true)
		}, cloacina.DependsOn("load"), cloacina.When(cloacina.All(cloacina.ContextGreaterThan("rows", 0)))).
		// Runs whatever happened to email.
		Task("archive", func(_ context.Context, c *cloacina.Context) error {
			return c.Set("archived", true)
		}, cloacina.DependsOn("email"), cloacina.When(cloacina.Always())).
		MustBuild()
	r, done := exampleRunner(wf)
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	res, err := r.Execute(ctx, "report", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Status)
	for _, name := range []string{"load", "email", "archive"} {
		t, _ := res.Task(name)
		if t.Error != "" {
			fmt.Println(name, t.Status, "-", t.Error)
			continue
		}
		fmt.Println(name, t.Status)
	}
	// Output:
	// Completed
	// load Completed
	// email Skipped - trigger rule all(context(rows greater_than 0)) is false
	// archive Completed
}

func ExampleRunner_Pause() {
	started, release := make(chan struct{}), make(chan struct{})
	wf := cloacina.NewWorkflow("two-steps").
		Task("first", func(ctx context.Context, c *cloacina.Context) error {
			close(started)
			select {
			case <-release:
				return c.Set("first", true)
			case <-ctx.Done():
				return ctx.Err()
			}
		}).
		Task("second", func(_ context.Context, c *cloacina.Context) error {
			return c.Set("second", true)
		}, cloacina.DependsOn("first")).
		MustBuild()
	r, done := exampleRunner(wf)
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	h, err := r.ExecuteAsync(ctx, "two-steps", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	<-started
	fmt.Println("pause:", r.Pause(ctx, h.ID()))
	close(release) // the running task finishes; the next one waits
	for {
		res, err := r.ExecutionResult(ctx, h.ID())
		if err != nil {
			fmt.Println(err)
			return
		}
		if first, _ := res.Task("first"); first.Status == cloacina.TaskCompleted {
			second, _ := res.Task("second")
			fmt.Println(res.Status, "first:", first.Status, "second:", second.Status)
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	fmt.Println("resume:", r.Resume(ctx, h.ID()))
	res, err := h.Wait(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Status)
	// Output:
	// pause: <nil>
	// Paused first: Completed second: Ready
	// resume: <nil>
	// Completed
}

func ExampleRunner_Cancel() {
	started := make(chan struct{})
	wf := cloacina.NewWorkflow("long").
		Task("wait", func(ctx context.Context, _ *cloacina.Context) error {
			close(started)
			<-ctx.Done() // cancelled with the execution
			return ctx.Err()
		}).
		Task("after", func(_ context.Context, c *cloacina.Context) error {
			return c.Set("after", true)
		}, cloacina.DependsOn("wait")).
		MustBuild()
	r, done := exampleRunner(wf)
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	h, err := r.ExecuteAsync(ctx, "long", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	<-started
	fmt.Println("cancel:", h.Cancel(ctx))
	res, err := h.Wait(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	after, _ := res.Task("after")
	fmt.Println(res.Status, after.Status)
	err = h.Cancel(ctx)
	fmt.Println(errors.Is(err, cloacina.ErrInvalidTransition))
	// Output:
	// cancel: <nil>
	// Cancelled Skipped
	// true
}

// With EventLogExceptions the event log keeps what went wrong (here a
// retry) and nothing of the plain course; the result still says when each
// task ran and in how many attempts.
func ExampleWithEventLog() {
	var calls atomic.Int32
	wf := cloacina.NewWorkflow("job").
		Task("send", func(context.Context, *cloacina.Context) error {
			if calls.Add(1) == 1 {
				return errors.New("mail server busy")
			}
			return nil
		}, cloacina.Retry(cloacina.RetryPolicy{MaxAttempts: 2, InitialDelay: 10 * time.Millisecond})).
		MustBuild()
	r, done := exampleRunner(wf, cloacina.WithEventLog(cloacina.EventLogExceptions))
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	res, err := r.Execute(ctx, "job", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	send, _ := res.Task("send")
	fmt.Println(res.Status, "after", send.Attempts, "attempts")
	evs, err := r.ExecutionEvents(ctx, res.ExecutionID)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range evs {
		fmt.Println(e.Type, e.Task, e.Attempt)
	}
	// Output:
	// Completed after 2 attempts
	// task_retry_scheduled send 1
}
