// Package demo holds the demo workflows that `cloacina serve` ships, so that
// a newcomer can run a workflow within a minute of starting the server.
//
// The workflows and their inputs (every input is optional):
//
//   - hello: task "greet" puts "greeting": "Hello, <name>!" into the
//     context. Input "name" (a string); missing, null or empty means
//     "world". Any other type fails the task.
//   - wait: task "sleep" sleeps for input "seconds" (a number from 0 to
//     3600, default 5) and records "slept_seconds". Cancelling the
//     execution stops the sleep at once.
//   - etl: "extract" reads input "rows" (an integer from 1 to 10000,
//     default 100) simulated records; three transforms run in parallel
//     on them ("sum", "max", "count_even"); "load" joins their results into
//     "report": {"rows", "total", "max", "mean", "even"}. extract has a
//     retry policy; every task has a description.
//   - flaky: task "call_api" fails with a transient error with probability
//     input "failure_rate" (a number from 0 to 1, default 0.5), and is
//     retried up to 5 attempts in all with exponential backoff (100ms,
//     200ms, 400ms, 800ms), so that the retries show in the execution's
//     events. On success it records "response": "ok".
//
// An input of the wrong type or out of range fails the task at once (a
// permanent error, not retried) with a message naming the input.
package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/cloacina-go/cloacina"
)

// Workflows returns the demo workflows: hello, wait, etl and flaky. Each
// call builds a fresh set.
func Workflows() []*cloacina.Workflow {
	return []*cloacina.Workflow{hello(), wait(), etl(), flaky()}
}

// Limits and defaults of the inputs.
const (
	defaultName        = "world"
	defaultSeconds     = 5.0
	maxSeconds         = 3600.0
	defaultRows        = 100
	maxRows            = 10000
	defaultFailureRate = 0.5
	// stepPause is the simulated work of each etl step, so that the
	// parallel transforms show in a timeline.
	stepPause = 100 * time.Millisecond
)

func hello() *cloacina.Workflow {
	return cloacina.NewWorkflow("hello").
		Description(`Greets input "name" (default "world").`).
		Task("greet", greet,
			cloacina.Describe(`Puts "greeting": "Hello, <name>!" into the context.`)).
		MustBuild()
}

func greet(_ context.Context, c *cloacina.Context) error {
	name := defaultName
	if v, ok := c.Get("name"); ok && v != nil {
		s, isString := v.(string)
		if !isString {
			return badInput("name", "a string", v)
		}
		if s != "" {
			name = s
		}
	}
	return c.Set("greeting", fmt.Sprintf("Hello, %s!", name))
}

func wait() *cloacina.Workflow {
	return cloacina.NewWorkflow("wait").
		Description(`Sleeps for input "seconds" (default 5, at most 3600); cancel it to see cancellation.`).
		Task("sleep", sleep,
			cloacina.Describe(`Sleeps for "seconds", stopping at once if the execution is cancelled.`),
			// Longer than the longest sleep, whatever the runner's default.
			cloacina.Timeout(time.Duration(maxSeconds)*time.Second+time.Minute)).
		MustBuild()
}

func sleep(ctx context.Context, c *cloacina.Context) error {
	secs, err := number(c, "seconds", defaultSeconds)
	if err != nil {
		return err
	}
	if secs < 0 || secs > maxSeconds {
		return badInput("seconds", fmt.Sprintf("a number from 0 to %g", maxSeconds), secs)
	}
	t := time.NewTimer(time.Duration(secs * float64(time.Second)))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	return c.Set("slept_seconds", secs)
}

func etl() *cloacina.Workflow {
	return cloacina.NewWorkflow("etl").
		Description(`Extract, three parallel transforms, load: fan-out and fan-in over input "rows" records.`).
		Task("extract", extract,
			cloacina.Describe(`Reads "rows" simulated records (default 100) into "records".`),
			cloacina.Retry(cloacina.RetryPolicy{
				MaxAttempts:  3,
				Backoff:      cloacina.BackoffExponential,
				InitialDelay: 500 * time.Millisecond,
				RetryOn:      cloacina.RetryTransient(),
			})).
		Task("sum", transform("total", func(rs []int) any {
			total := 0
			for _, r := range rs {
				total += r
			}
			return total
		}), cloacina.DependsOn("extract"),
			cloacina.Describe(`Adds the records up into "total".`)).
		Task("max", transform("maximum", func(rs []int) any {
			m := 0
			for _, r := range rs {
				m = max(m, r)
			}
			return m
		}), cloacina.DependsOn("extract"),
			cloacina.Describe(`Finds the largest record, "maximum".`)).
		Task("count_even", transform("even_count", func(rs []int) any {
			n := 0
			for _, r := range rs {
				if r%2 == 0 {
					n++
				}
			}
			return n
		}), cloacina.DependsOn("extract"),
			cloacina.Describe(`Counts the even records into "even_count".`)).
		Task("load", load,
			cloacina.DependsOn("sum", "max", "count_even"),
			cloacina.Describe(`Joins the three results into "report" and drops the raw records.`)).
		MustBuild()
}

// record is the i-th simulated record (1-based): a value from 0 to 100.
func record(i int) int { return i * 37 % 101 }

func extract(ctx context.Context, c *cloacina.Context) error {
	rows, err := number(c, "rows", defaultRows)
	if err != nil {
		return err
	}
	if rows != math.Trunc(rows) || rows < 1 || rows > maxRows {
		return badInput("rows", fmt.Sprintf("an integer from 1 to %d", maxRows), rows)
	}
	if err := pause(ctx); err != nil {
		return err
	}
	records := make([]int, int(rows))
	for i := range records {
		records[i] = record(i + 1)
	}
	return c.Set("records", records)
}

// transform returns a task that applies f to the records and stores the
// result under key.
func transform(key string, f func([]int) any) cloacina.TaskFunc {
	return func(ctx context.Context, c *cloacina.Context) error {
		records, err := cloacina.GetAs[[]int](c, "records")
		if err != nil {
			return cloacina.Permanent(fmt.Errorf("demo: reading the extracted records: %w", err))
		}
		if err := pause(ctx); err != nil {
			return err
		}
		return c.Set(key, f(records))
	}
}

func load(ctx context.Context, c *cloacina.Context) error {
	var report struct {
		Rows  int     `json:"rows"`
		Total int     `json:"total"`
		Max   int     `json:"max"`
		Mean  float64 `json:"mean"`
		Even  int     `json:"even"`
	}
	records, err := cloacina.GetAs[[]int](c, "records")
	if err == nil {
		report.Total, err = cloacina.GetAs[int](c, "total")
	}
	if err == nil {
		report.Max, err = cloacina.GetAs[int](c, "maximum")
	}
	if err == nil {
		report.Even, err = cloacina.GetAs[int](c, "even_count")
	}
	if err != nil {
		return cloacina.Permanent(fmt.Errorf("demo: reading the transforms' results: %w", err))
	}
	if err := pause(ctx); err != nil {
		return err
	}
	report.Rows = len(records)
	if report.Rows > 0 {
		report.Mean = float64(report.Total) / float64(report.Rows)
	}
	c.Delete("records")
	return c.Set("report", report)
}

func flaky() *cloacina.Workflow {
	return cloacina.NewWorkflow("flaky").
		Description(`Fails at random (input "failure_rate", default 0.5) and retries with exponential backoff.`).
		Task("call_api", callAPI,
			cloacina.Describe(`Calls a simulated upstream that fails transiently with probability "failure_rate"; up to 5 attempts.`),
			cloacina.Retry(cloacina.RetryPolicy{
				MaxAttempts:  5,
				Backoff:      cloacina.BackoffExponential,
				InitialDelay: 100 * time.Millisecond,
				MaxDelay:     2 * time.Second,
				RetryOn:      cloacina.RetryTransient(),
			})).
		MustBuild()
}

func callAPI(_ context.Context, c *cloacina.Context) error {
	rate, err := number(c, "failure_rate", defaultFailureRate)
	if err != nil {
		return err
	}
	if rate < 0 || rate > 1 {
		return badInput("failure_rate", "a number from 0 to 1", rate)
	}
	if rate > 0 && rand.Float64() < rate {
		return cloacina.Transient(fmt.Errorf("demo: simulated upstream failure (failure_rate %g)", rate))
	}
	return c.Set("response", "ok")
}

// number reads an optional numeric input: def when missing or null.
func number(c *cloacina.Context, key string, def float64) (float64, error) {
	v, ok := c.Get(key)
	if !ok || v == nil {
		return def, nil
	}
	f, isNumber := v.(float64)
	if !isNumber {
		return 0, badInput(key, "a number", v)
	}
	return f, nil
}

// badInput is the permanent error of an input that is not what a demo
// task expects.
func badInput(key, want string, got any) error {
	shown := fmt.Sprint(got)
	if b, err := json.Marshal(got); err == nil {
		shown = string(b)
	}
	return cloacina.Permanent(fmt.Errorf("demo: input %q must be %s, got %s", key, want, shown))
}

// pause simulates a step's work, ending early with ctx.
func pause(ctx context.Context) error {
	t := time.NewTimer(stepPause)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
