package faulttest

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/cloacina-go/cloacina"
	"github.com/google/uuid"
)

// OpenObserver opens an enqueue-only runner on the database at url, with
// ChainWorkflow and PoisonWorkflow registered (bodies that never run): the
// producer and inspector of a fault run. It runs no tasks.
func OpenObserver(ctx context.Context, url string, logger *slog.Logger) (*cloacina.Runner, error) {
	wfs, err := Workflows(Bodies{}, ChainWorkflow, PoisonWorkflow)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return cloacina.NewRunner(ctx, url, cloacina.WithWorkflows(wfs...), cloacina.WithEnqueueOnly(),
		cloacina.WithPollInterval(100*time.Millisecond), cloacina.WithLogger(logger))
}

// Produce starts n executions of workflow, in batches of at most 500, with
// the keys prefix-0 ... prefix-(n-1), and returns their ids by key. On
// error it returns the executions started so far.
func Produce(ctx context.Context, r *cloacina.Runner, workflow, prefix string, n int) (map[string]uuid.UUID, error) {
	keys := make(map[string]uuid.UUID, n)
	for done := 0; done < n; {
		size := min(500, n-done)
		inputs := make([]any, size)
		names := make([]string, size)
		for i := range inputs {
			names[i] = fmt.Sprintf("%s-%d", prefix, done+i)
			inputs[i] = map[string]any{KeyField: names[i]}
		}
		hs, err := r.ExecuteMany(ctx, workflow, inputs)
		if err != nil {
			return keys, err
		}
		for i, h := range hs {
			keys[names[i]] = h.ID()
		}
		done += size
	}
	return keys, nil
}

// WaitIdle waits until the database has no active (Pending, Running or
// Paused) execution, polling every interval.
func WaitIdle(ctx context.Context, r *cloacina.Runner, interval time.Duration) error {
	var last *cloacina.Metrics
	var lastErr error
	for {
		m, err := r.Metrics(ctx)
		if err == nil && m.ActiveExecutions == 0 {
			return nil
		}
		if err == nil {
			last = m
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("%w: still %d active executions (%d ready tasks, %d running tasks); last error: %v",
					ctx.Err(), last.ActiveExecutions, last.ReadyTasks, last.RunningTasks, lastErr)
			}
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), lastErr)
		case <-time.After(interval):
		}
	}
}

// Report compares the engine's view of every execution with the ledger.
//
// Definitions (a "run" is one completed run of a task body, i.e. one
// ledger record; a task is one task of one execution):
//
//   - Lost: executions not terminal (Pending, Running or Paused).
//   - Missing: Completed chain tasks with no run at all: the engine
//     recorded a completion no body produced.
//   - Duplicates: runs that began after the database had recorded their
//     task as Completed (run start later than TaskResult.CompletedAt, the
//     instant the winning run finished, which precedes its commit): a
//     completed task that ran again. A task that ran twice because the
//     process running it first was killed before its result was committed
//     is a rerun, not a duplicate.
//   - Concurrent: pairs of runs of one task whose [Start, End] intervals
//     overlap: the task ran twice at the same time (in two processes, or
//     twice in one).
//   - Reruns: tasks whose body completed more than once (at-least-once
//     execution after crashes); LiveReruns counts those with more than one
//     run by processes that were not killed (a claim lost by a live
//     runner, for instance when a database outage outlasted
//     StaleClaimAfter).
//   - Recoveries: the sum of TaskResult.Recoveries; RecoveredTasks the
//     tasks recovered at least once; Abandoned the tasks that failed with
//     an "ABANDONED" error.
type Report struct {
	Executions     int `json:"executions"`
	Completed      int `json:"completed"`
	Failed         int `json:"failed"`
	Cancelled      int `json:"cancelled"`
	Lost           int `json:"lost"`
	TasksCompleted int `json:"tasks_completed"`
	Runs           int `json:"runs"`
	TornRuns       int `json:"torn_runs"`
	StrayRuns      int `json:"stray_runs"`
	Reruns         int `json:"reruns"`
	LiveReruns     int `json:"live_reruns"`
	Duplicates     int `json:"duplicates"`
	Concurrent     int `json:"concurrent"`
	Missing        int `json:"missing"`
	Recoveries     int `json:"recoveries"`
	RecoveredTasks int `json:"recovered_tasks"`
	Abandoned      int `json:"abandoned"`
	// Problems describes the first violations found.
	Problems []string `json:"problems,omitempty"`

	// Results holds every execution's result, by id.
	Results map[uuid.UUID]*cloacina.Result `json:"-"`
	// Keys maps execution ids to keys.
	Keys map[uuid.UUID]string `json:"-"`

	runs map[runKey][]Run
}

type runKey struct{ key, task string }

// RunsOf returns the runs of one task of one execution.
func (rep *Report) RunsOf(id uuid.UUID, task string) []Run {
	return rep.runs[runKey{rep.Keys[id], task}]
}

const maxProblems = 20

func (rep *Report) problem(format string, args ...any) {
	if len(rep.Problems) < maxProblems {
		rep.Problems = append(rep.Problems, fmt.Sprintf(format, args...))
	}
}

// Inspect reads the ledger at ledgerPath and every execution of r's
// database and builds the report. keys maps the keys the producer chose to
// the execution ids it got (executions missing from it are matched through
// the key in their final context); killed holds the pids of the processes
// killed during the run.
func Inspect(ctx context.Context, r *cloacina.Runner, ledgerPath string, keys map[string]uuid.UUID, killed map[int]bool) (*Report, error) {
	runs, torn, err := ReadLedger(ledgerPath)
	if err != nil {
		return nil, err
	}
	rep := &Report{Runs: len(runs), TornRuns: torn, Results: map[uuid.UUID]*cloacina.Result{},
		Keys: map[uuid.UUID]string{}, runs: map[runKey][]Run{}}
	for k, id := range keys {
		rep.Keys[id] = k
	}
	for _, run := range runs {
		k := runKey{run.Key, run.Task}
		rep.runs[k] = append(rep.runs[k], run)
	}
	var cursor string
	for {
		page, err := r.ListExecutions(ctx, cloacina.ListOptions{Limit: 1000, Cursor: cursor})
		if err != nil {
			return nil, err
		}
		for _, s := range page.Executions {
			res, err := r.ExecutionResult(ctx, s.ExecutionID)
			if err != nil {
				return nil, err
			}
			rep.Results[s.ExecutionID] = res
			if _, ok := rep.Keys[s.ExecutionID]; !ok && res.Context != nil {
				if k, err := cloacina.GetAs[string](res.Context, KeyField); err == nil {
					rep.Keys[s.ExecutionID] = k
				}
			}
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	known := map[string]bool{}
	ids := make([]uuid.UUID, 0, len(rep.Results))
	for id := range rep.Results {
		ids = append(ids, id)
		known[rep.Keys[id]] = true
	}
	slices.SortFunc(ids, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
	for _, run := range runs {
		if !known[run.Key] {
			rep.StrayRuns++
			rep.problem("run of %s/%s by pid %d has a key no execution has", run.Key, run.Task, run.PID)
		}
	}
	for _, id := range ids {
		res := rep.Results[id]
		rep.Executions++
		switch res.Status {
		case cloacina.ExecutionCompleted:
			rep.Completed++
		case cloacina.ExecutionFailed:
			rep.Failed++
		case cloacina.ExecutionCancelled:
			rep.Cancelled++
		default:
			rep.Lost++
			rep.problem("execution %s (%s, key %q) is still %s", id, res.WorkflowName, rep.Keys[id], res.Status)
		}
		for _, t := range res.Tasks {
			rep.Recoveries += t.Recoveries
			if t.Recoveries > 0 {
				rep.RecoveredTasks++
			}
			if t.Status == cloacina.TaskFailed && strings.HasPrefix(t.Error, "ABANDONED") {
				rep.Abandoned++
			}
			rs := rep.runs[runKey{rep.Keys[id], t.Name}]
			if len(rs) > 1 {
				rep.Reruns++
			}
			live := 0
			for _, run := range rs {
				if !killed[run.PID] {
					live++
				}
			}
			if live > 1 {
				rep.LiveReruns++
			}
			if t.Status == cloacina.TaskCompleted {
				rep.TasksCompleted++
				if res.WorkflowName == ChainWorkflow && len(rs) == 0 {
					rep.Missing++
					rep.problem("task %s of %s is Completed but its body never completed", t.Name, id)
				}
				done := t.CompletedAt
				for _, run := range rs {
					if run.Start.Truncate(time.Microsecond).After(done) {
						rep.Duplicates++
						rep.problem("task %s of %s ran again (pid %d, worker %s, began %s) after it was Completed at %s",
							t.Name, id, run.PID, run.Worker, run.Start.Format(time.RFC3339Nano), done.Format(time.RFC3339Nano))
					}
				}
			}
			for i := range rs {
				for j := i + 1; j < len(rs); j++ {
					a, b := rs[i], rs[j]
					if a.Start.Before(b.End) && b.Start.Before(a.End) {
						rep.Concurrent++
						rep.problem("task %s of %s ran concurrently in pid %d (%s) and pid %d (%s)",
							t.Name, id, a.PID, a.Worker, b.PID, b.Worker)
					}
				}
			}
		}
	}
	return rep, nil
}

// String summarises the report on a few lines.
func (rep *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "executions %d: completed %d, failed %d, cancelled %d, lost %d\n",
		rep.Executions, rep.Completed, rep.Failed, rep.Cancelled, rep.Lost)
	fmt.Fprintf(&b, "tasks completed %d, runs %d (torn %d, stray %d), reruns %d (live %d), recoveries %d (tasks %d), abandoned %d\n",
		rep.TasksCompleted, rep.Runs, rep.TornRuns, rep.StrayRuns, rep.Reruns, rep.LiveReruns, rep.Recoveries, rep.RecoveredTasks, rep.Abandoned)
	fmt.Fprintf(&b, "violations: duplicates %d, concurrent %d, missing %d", rep.Duplicates, rep.Concurrent, rep.Missing)
	for _, p := range rep.Problems {
		fmt.Fprintf(&b, "\n  - %s", p)
	}
	return b.String()
}
