package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/cloacina-go/cloacina"
)

// Bench shapes.
const (
	shapeSingle = "single"
	shapeChain  = "chain"
	shapeFanout = "fanout"
)

// benchFlags are bench's flags.
type benchFlags struct {
	databaseURL string
	executions  int
	concurrency int
	shape       string
	width       int
	maxTasks    int
	keep        bool
	output      string
	eventLog    string
}

// benchResult is what bench measured.
type benchResult struct {
	Database       string  `json:"database"`
	Shape          string  `json:"shape"`
	TasksPerRun    int     `json:"tasks_per_execution"`
	Executions     int     `json:"executions"`
	Concurrency    int     `json:"concurrency"`
	Failed         int64   `json:"failed"`
	Seconds        float64 `json:"seconds"`
	WorkflowsPerS  float64 `json:"workflows_per_second"`
	TasksPerS      float64 `json:"tasks_per_second"`
	LatencyP50MS   float64 `json:"latency_p50_ms"`
	LatencyP95MS   float64 `json:"latency_p95_ms"`
	LatencyP99MS   float64 `json:"latency_p99_ms"`
	LatencyMaxMS   float64 `json:"latency_max_ms"`
	MaxConcurrency int     `json:"max_concurrent_tasks"`
}

func (a *app) benchCmd() *cobra.Command {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "bench [--database-url URL] [--executions N] [--concurrency N] [--shape single|chain|fanout]",
		Short: "Measure the engine in this process: workflows/s, tasks/s and latency",
		Long: `Run --executions executions of a workflow of no-op tasks in this process,
--concurrency at a time, each started and waited for (Runner.Execute), and
print workflows/s, tasks/s and the p50/p95/p99 latency of one execution
(start to result).

Shapes: single (one task), chain (--width tasks one after the other),
fanout (a root, --width tasks depending on it, and a join).

Without --database-url it uses a temporary SQLite file, removed afterwards.
On PostgreSQL it works in a fresh schema cloacina_bench_<random>, dropped
afterwards unless --keep.`,
		Example: `  cloacina bench
  cloacina bench --shape fanout --width 16 --executions 500 --concurrency 32
  cloacina bench --database-url "$DATABASE_URL" -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.bench(cmd.Context(), cmd.OutOrStdout(), f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.databaseURL, "database-url", "", "sqlite:// or postgres:// URL (default: a temporary SQLite file)")
	fl.IntVarP(&f.executions, "executions", "n", 1000, "executions to run")
	fl.IntVarP(&f.concurrency, "concurrency", "c", 16, "executions in flight at once")
	fl.StringVar(&f.shape, "shape", shapeSingle, "workflow shape: single, chain or fanout")
	fl.IntVar(&f.width, "width", 4, "chain: its length; fanout: the parallel tasks between root and join")
	fl.IntVar(&f.maxTasks, "max-concurrent-tasks", 64, "the engine's task slots")
	fl.BoolVar(&f.keep, "keep", false, "PostgreSQL: keep the bench schema")
	fl.StringVarP(&f.output, "output", "o", formatText, "output format: text or json")
	fl.StringVar(&f.eventLog, "event-log", cloacina.EventLogAll.String(), "which state changes become events: all or exceptions")
	return cmd
}

// benchWorkflow builds the workflow of a shape and returns it with its
// task count.
func benchWorkflow(shape string, width int) (*cloacina.Workflow, int, error) {
	noop := func(context.Context, *cloacina.Context) error { return nil }
	b := cloacina.NewWorkflow("bench_" + shape)
	n := 0
	switch shape {
	case shapeSingle:
		b.Task("task", noop)
		n = 1
	case shapeChain:
		for i := range width {
			var opts []cloacina.TaskOption
			if i > 0 {
				opts = append(opts, cloacina.DependsOn(fmt.Sprintf("step_%d", i-1)))
			}
			b.Task(fmt.Sprintf("step_%d", i), noop, opts...)
		}
		n = width
	case shapeFanout:
		b.Task("root", noop)
		leaves := make([]string, width)
		for i := range width {
			leaves[i] = fmt.Sprintf("leaf_%d", i)
			b.Task(leaves[i], noop, cloacina.DependsOn("root"))
		}
		b.Task("join", noop, cloacina.DependsOn(leaves...))
		n = width + 2
	default:
		return nil, 0, usagef("--shape %q: want single, chain or fanout", shape)
	}
	wf, err := b.Build()
	if err != nil {
		return nil, 0, err
	}
	return wf, n, nil
}

func (a *app) bench(ctx context.Context, stdout io.Writer, f benchFlags) error {
	switch {
	case f.executions < 1:
		return usagef("--executions %d: want at least 1", f.executions)
	case f.concurrency < 1:
		return usagef("--concurrency %d: want at least 1", f.concurrency)
	case f.width < 1 || f.width > 1000:
		return usagef("--width %d: want 1 to 1000", f.width)
	case f.maxTasks < 1:
		return usagef("--max-concurrent-tasks %d: want at least 1", f.maxTasks)
	case f.output != formatText && f.output != formatJSON:
		return usagef("-o %q: want text or json", f.output)
	}
	eventLog, err := cloacina.ParseEventLog(f.eventLog)
	if err != nil {
		return usagef("--event-log %q: want all or exceptions", f.eventLog)
	}
	wf, tasksPer, err := benchWorkflow(f.shape, f.width)
	if err != nil {
		return err
	}
	dbURL, schema, cleanup, err := benchDatabase(f.databaseURL)
	if err != nil {
		return err
	}
	defer cleanup()
	log := slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	e, err := cloacina.NewEngine(ctx, dbURL, cloacina.WithWorkflows(wf), cloacina.WithMaxConcurrentTasks(f.maxTasks), cloacina.WithLogger(log),
		cloacina.WithEventLog(eventLog))
	if err != nil {
		return err
	}
	var r *cloacina.Runner
	defer func() {
		// The schema's runner must be shut down before its schema drops.
		bg := context.WithoutCancel(ctx)
		if r != nil {
			_ = r.Shutdown(bg)
		}
		if schema != "" && !f.keep {
			if _, err := e.DropSchema(bg, schema); err != nil {
				log.Warn("dropping the bench schema", "schema", schema, "err", err)
			}
		}
		_ = e.Shutdown(bg)
	}()
	if r, err = e.Runner(ctx, schema); err != nil {
		return err
	}
	// One execution first, so that the figures leave out the first
	// connection and statement preparation.
	if _, err := r.Execute(ctx, wf.Name(), nil); err != nil {
		return fmt.Errorf("warm-up execution: %w", err)
	}

	lat := make([]time.Duration, f.executions)
	var (
		next, failed atomic.Int64
		firstErr     error
		errOnce      sync.Once
		wg           sync.WaitGroup
	)
	start := time.Now()
	for range min(f.concurrency, f.executions) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= f.executions || ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				res, err := r.Execute(ctx, wf.Name(), nil)
				lat[i] = time.Since(t0)
				if err != nil || res.Status != cloacina.ExecutionCompleted {
					failed.Add(1)
					if err != nil {
						errOnce.Do(func() { firstErr = err })
					}
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bench interrupted: %w", err)
	}
	if firstErr != nil && failed.Load() == int64(f.executions) {
		return fmt.Errorf("every execution failed; the first: %w", firstErr)
	}
	slices.Sort(lat)
	res := benchResult{
		Database:       cloacina.RedactURL(dbURL),
		Shape:          f.shape,
		TasksPerRun:    tasksPer,
		Executions:     f.executions,
		Concurrency:    f.concurrency,
		Failed:         failed.Load(),
		Seconds:        elapsed.Seconds(),
		WorkflowsPerS:  float64(f.executions) / elapsed.Seconds(),
		TasksPerS:      float64(f.executions*tasksPer) / elapsed.Seconds(),
		LatencyP50MS:   msOf(percentile(lat, 0.50)),
		LatencyP95MS:   msOf(percentile(lat, 0.95)),
		LatencyP99MS:   msOf(percentile(lat, 0.99)),
		LatencyMaxMS:   msOf(lat[len(lat)-1]),
		MaxConcurrency: f.maxTasks,
	}
	if schema != "" {
		res.Database += " (schema " + schema + ")"
	}
	out := printer{w: stdout, format: f.output}
	return out.print(res, func(w io.Writer) {
		row(w, "database", res.Database)
		row(w, "workflow", fmt.Sprintf("%s, %d task(s) each", f.shape, tasksPer))
		row(w, "executions", fmt.Sprintf("%d, %d at a time, %d failed", res.Executions, res.Concurrency, res.Failed))
		row(w, "time", elapsed.Round(time.Millisecond))
		row(w, "workflows/s", fmt.Sprintf("%.0f", res.WorkflowsPerS))
		row(w, "tasks/s", fmt.Sprintf("%.0f", res.TasksPerS))
		row(w, "latency", fmt.Sprintf("p50 %.1fms  p95 %.1fms  p99 %.1fms  max %.1fms",
			res.LatencyP50MS, res.LatencyP95MS, res.LatencyP99MS, res.LatencyMaxMS))
	})
}

// benchDatabase returns the database URL and schema to bench on, and
// what removes them afterwards: a temporary SQLite file by default, a
// fresh schema on PostgreSQL.
func benchDatabase(dbURL string) (url, schema string, cleanup func(), err error) {
	switch {
	case dbURL == "":
		dir, err := os.MkdirTemp("", "cloacina-bench-")
		if err != nil {
			return "", "", nil, err
		}
		return "sqlite://" + filepath.Join(dir, "bench.db"), "", func() { _ = os.RemoveAll(dir) }, nil
	case isPostgresURL(dbURL):
		var b [4]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", "", nil, err
		}
		return dbURL, "cloacina_bench_" + hex.EncodeToString(b[:]), func() {}, nil
	case strings.HasPrefix(dbURL, "sqlite://"):
		return dbURL, "", func() {}, nil
	}
	return "", "", nil, usagef("--database-url %s: want sqlite://PATH or postgres://...", cloacina.RedactURL(dbURL))
}

// percentile returns the p-quantile of sorted (nearest rank).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
