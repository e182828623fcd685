package faulttest_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/internal/faulttest"
	"github.com/cloacina-go/cloacina/internal/pgtest"
	"github.com/google/uuid"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, for PRAGMA integrity_check
)

// soakBin is the cloacina-soak binary built by TestMain.
var soakBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "faulttest-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "faulttest:", err)
		os.Exit(1)
	}
	soakBin = filepath.Join(dir, "cloacina-soak")
	// The worker processes need not be built with -race: the engine's
	// race tests are elsewhere; here they are the system under test.
	build := exec.Command("go", "build", "-o", soakBin, "github.com/cloacina-go/cloacina/cmd/cloacina-soak")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "faulttest: building cloacina-soak: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := pgtest.Main(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// testContext returns a context ending after d, or 15s before the test's
// deadline if that comes first.
func testContext(t testing.TB, d time.Duration) context.Context {
	deadline := time.Now().Add(d)
	if tt, ok := t.(*testing.T); ok {
		if td, ok := tt.Deadline(); ok && td.Add(-15*time.Second).Before(deadline) {
			deadline = td.Add(-15 * time.Second)
		}
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	t.Cleanup(cancel)
	return ctx
}

// harness runs worker processes on one database and watches them.
type harness struct {
	t      testing.TB
	ctx    context.Context
	url    string
	dir    string
	ledger string
	obs    *cloacina.Runner // enqueue-only: produces and inspects

	mu     sync.Mutex
	killed map[int]bool
	logs   []string
}

func newHarness(t testing.TB, ctx context.Context, url string) *harness {
	t.Helper()
	dir := t.TempDir()
	obs, err := faulttest.OpenObserver(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, ctx: ctx, url: url, dir: dir, ledger: filepath.Join(dir, "ledger.jsonl"), obs: obs, killed: map[int]bool{}}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = obs.Shutdown(sctx)
		if t.Failed() {
			h.dumpLogs()
		}
	})
	return h
}

// defaultWorkerArgs are the worker flags the tests share; later flags win.
var defaultWorkerArgs = []string{"-max-tasks", "4", "-sleep-min", "20ms", "-sleep-max", "200ms",
	"-poll", "100ms", "-shutdown-timeout", "5s", "-log-level", "warn"}

// start starts a worker process under id without waiting for it; args
// override defaultWorkerArgs.
func (h *harness) start(id string, args ...string) *faulttest.Process {
	h.t.Helper()
	logPath := filepath.Join(h.dir, fmt.Sprintf("%s-%d.log", id, time.Now().UnixNano()))
	f, err := os.Create(logPath)
	if err != nil {
		h.t.Fatal(err)
	}
	all := append([]string{"-mode", "worker", "-worker-id", id, "-ledger", h.ledger}, defaultWorkerArgs...)
	all = append(all, args...)
	env := append(os.Environ(), "CLOACINA_SOAK_DB="+h.url)
	p, err := faulttest.StartProcess(soakBin, all, env, f)
	if err != nil {
		f.Close()
		h.t.Fatal(err)
	}
	h.mu.Lock()
	h.logs = append(h.logs, logPath)
	h.mu.Unlock()
	h.t.Cleanup(func() {
		if !p.Exited() {
			p.Kill()
		}
		f.Close()
	})
	return p
}

// worker starts a worker and waits until its runner is started.
func (h *harness) worker(id string, args ...string) *faulttest.Process {
	h.t.Helper()
	p := h.start(id, args...)
	ctx, cancel := context.WithTimeout(h.ctx, 30*time.Second)
	defer cancel()
	if err := p.WaitReady(ctx); err != nil {
		h.t.Fatal(err)
	}
	return p
}

// kill kills p with SIGKILL and remembers its pid.
func (h *harness) kill(p *faulttest.Process) {
	p.Kill()
	h.mu.Lock()
	h.killed[p.PID()] = true
	h.mu.Unlock()
}

// stop shuts p down with SIGTERM and checks that it exits 0.
func (h *harness) stop(p *faulttest.Process) {
	h.t.Helper()
	if code, clean := p.Terminate(20 * time.Second); code != 0 || !clean {
		h.t.Errorf("worker pid %d on SIGTERM: %s (exited in time: %v), want exit status 0", p.PID(), p.ExitStatus(), clean)
	}
}

func (h *harness) dumpLogs() {
	h.mu.Lock()
	logs := slices.Clone(h.logs)
	h.mu.Unlock()
	for _, path := range logs {
		b, err := os.ReadFile(path)
		if err != nil || len(b) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		h.t.Logf("log %s (tail):\n%s", filepath.Base(path), strings.Join(lines, "\n"))
	}
}

func (h *harness) produce(workflow string, n int) map[string]uuid.UUID {
	h.t.Helper()
	keys, err := faulttest.Produce(h.ctx, h.obs, workflow, "k", n)
	if err != nil {
		h.t.Fatal(err)
	}
	return keys
}

func (h *harness) runs() []faulttest.Run {
	h.t.Helper()
	runs, _, err := faulttest.ReadLedger(h.ledger)
	if err != nil {
		h.t.Fatal(err)
	}
	return runs
}

// waitRuns waits until the ledger holds at least n runs, and cond (if not
// nil) holds for them.
func (h *harness) waitRuns(n int, cond func([]faulttest.Run) bool) []faulttest.Run {
	h.t.Helper()
	for {
		runs := h.runs()
		if len(runs) >= n && (cond == nil || cond(runs)) {
			return runs
		}
		select {
		case <-h.ctx.Done():
			h.t.Fatalf("waiting for %d runs in the ledger: %v (have %d)", n, h.ctx.Err(), len(runs))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (h *harness) waitIdle(d time.Duration) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.ctx, d)
	defer cancel()
	if err := faulttest.WaitIdle(ctx, h.obs, 100*time.Millisecond); err != nil {
		h.t.Fatalf("waiting for every execution to finish: %v", err)
	}
}

func (h *harness) inspect(keys map[string]uuid.UUID) *faulttest.Report {
	h.t.Helper()
	h.mu.Lock()
	killed := map[int]bool{}
	for pid := range h.killed {
		killed[pid] = true
	}
	h.mu.Unlock()
	rep, err := faulttest.Inspect(h.ctx, h.obs, h.ledger, keys, killed)
	if err != nil {
		h.t.Fatal(err)
	}
	if _, bench := h.t.(*testing.B); !bench {
		h.t.Logf("report:\n%s", rep)
	}
	return rep
}

// taskRef names one task of one execution.
type taskRef struct {
	id   uuid.UUID
	task string
}

// snapshot returns the tasks of the executions that are in the given state
// now, and the time once it read them all.
func (h *harness) snapshot(keys map[string]uuid.UUID, status cloacina.TaskStatus) (map[taskRef]cloacina.TaskResult, time.Time) {
	h.t.Helper()
	out := map[taskRef]cloacina.TaskResult{}
	for _, id := range keys {
		res, err := h.obs.ExecutionResult(h.ctx, id)
		if err != nil {
			h.t.Fatal(err)
		}
		for _, t := range res.Tasks {
			if t.Status == status {
				out[taskRef{id, t.Name}] = t
			}
		}
	}
	return out, time.Now()
}

// checkSound checks the invariants every fault run must keep: every
// execution completed, no completed task ran again, no two processes ran
// one task at once, every completion was produced by a body.
func checkSound(t testing.TB, rep *faulttest.Report, want int) {
	t.Helper()
	if rep.Executions != want || rep.Completed != want {
		t.Errorf("executions %d, completed %d; want %d, all Completed", rep.Executions, rep.Completed, want)
		for id, res := range rep.Results {
			for _, task := range res.Tasks {
				if task.Status != cloacina.TaskCompleted {
					t.Errorf("execution %s (%s) task %s: %s (attempts %d, recoveries %d, error %q, %d completed runs)",
						id, res.Status, task.Name, task.Status, task.Attempts, task.Recoveries, task.Error, len(rep.RunsOf(id, task.Name)))
				}
			}
		}
	}
	if rep.Lost != 0 || rep.Duplicates != 0 || rep.Concurrent != 0 || rep.Missing != 0 || rep.StrayRuns != 0 {
		t.Errorf("lost %d, duplicates %d, concurrent %d, missing %d, stray runs %d; want all 0",
			rep.Lost, rep.Duplicates, rep.Concurrent, rep.Missing, rep.StrayRuns)
	}
}

// checkNotRerun checks that no task Completed in a snapshot taken by
// takenAt ran again: no run of it began after takenAt. With onlyPID set,
// it also checks that every run of those tasks was in that process (the
// only worker before the snapshot).
func checkNotRerun(t testing.TB, rep *faulttest.Report, completed map[taskRef]cloacina.TaskResult, takenAt time.Time, onlyPID int) {
	t.Helper()
	for ref := range completed {
		for _, run := range rep.RunsOf(ref.id, ref.task) {
			if run.Start.After(takenAt) {
				t.Errorf("task %s of %s was Completed at the snapshot (%s), but ran again in pid %d (%s) from %s",
					ref.task, ref.id, takenAt.Format(time.RFC3339Nano), run.PID, run.Worker, run.Start.Format(time.RFC3339Nano))
			}
			if onlyPID != 0 && run.PID != onlyPID {
				t.Errorf("task %s of %s was Completed when pid %d was killed, but ran in pid %d (%s)",
					ref.task, ref.id, onlyPID, run.PID, run.Worker)
			}
		}
	}
}

// checkClaims ties every run to the claim it ran under: the latest
// task_started event of its task by its worker at or before its start. A
// run without a claim, or two runs under one claim, break the rule of one
// runner per claimed attempt. It returns how many (execution, task,
// attempt) had more than one completed run: legitimate when the first ran
// in a process killed before its result was committed, since a recovery
// does not use up an attempt.
func checkClaims(t testing.TB, ctx context.Context, r *cloacina.Runner, rep *faulttest.Report) int {
	t.Helper()
	sameAttempt := 0
	for id, res := range rep.Results {
		evs, err := r.ExecutionEvents(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		started := map[string][]cloacina.Event{}
		for _, e := range evs {
			if e.Type == cloacina.EventTaskStarted {
				started[e.Task] = append(started[e.Task], e)
			}
		}
		for _, task := range res.Tasks {
			byClaim := map[int64]faulttest.Run{}
			byAttempt := map[int]int{}
			for _, run := range rep.RunsOf(id, task.Name) {
				var claim *cloacina.Event
				for i, e := range started[task.Name] {
					if e.Worker == run.Worker && !e.At.After(run.Start) {
						claim = &started[task.Name][i]
					}
				}
				if claim == nil {
					t.Errorf("task %s of %s: the run by pid %d (%s) at %s has no claim", task.Name, id, run.PID, run.Worker, run.Start)
					continue
				}
				if prev, dup := byClaim[claim.ID]; dup {
					t.Errorf("task %s of %s: pids %d and %d both completed claimed attempt %d (claim event %d)",
						task.Name, id, prev.PID, run.PID, claim.Attempt, claim.ID)
				}
				byClaim[claim.ID] = run
				byAttempt[claim.Attempt]++
			}
			for _, n := range byAttempt {
				if n > 1 {
					sameAttempt++
				}
			}
		}
	}
	return sameAttempt
}

// sqliteIntegrity runs PRAGMA integrity_check on the SQLite file at path.
func sqliteIntegrity(t testing.TB, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("PRAGMA integrity_check")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0] != "ok" {
		t.Errorf("PRAGMA integrity_check: %q, want ok", out)
	}
}
