package faulttest_test

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/internal/faulttest"
	"github.com/google/uuid"
)

// killMidRun starts a worker, produces 40 chain executions, kills the worker
// with SIGKILL once 25 task bodies completed, and returns what the database
// held right after the kill.
func killMidRun(t *testing.T, h *harness, id string, args ...string) (keys map[string]uuid.UUID, killedPID int, completed, running map[taskRef]cloacina.TaskResult, takenAt time.Time) {
	t.Helper()
	w1 := h.worker(id, args...)
	keys = h.produce(faulttest.ChainWorkflow, 40)
	h.waitRuns(25, nil)
	h.kill(w1)
	completed, takenAt = h.snapshot(keys, cloacina.TaskCompleted)
	running, _ = h.snapshot(keys, cloacina.TaskRunning)
	t.Logf("killed pid %d: %d tasks Completed, %d Running", w1.PID(), len(completed), len(running))
	if len(running) == 0 {
		t.Fatal("no task was Running when the worker was killed: the kill did not land mid-task")
	}
	return keys, w1.PID(), completed, running, takenAt
}

// TestSQLiteKillRecoveredByNewWorker kills a worker mid-run; a worker with
// another id recovers the dead worker's tasks once their heartbeats are
// older than StaleClaimAfter.
func TestSQLiteKillRecoveredByNewWorker(t *testing.T) {
	ctx := testContext(t, 90*time.Second)
	path := filepath.Join(t.TempDir(), "app.db")
	h := newHarness(t, ctx, "sqlite://"+path)
	hb := []string{"-heartbeat", "100ms", "-stale", "500ms"}
	keys, killedPID, completed, running, takenAt := killMidRun(t, h, "sqlite-w1", hb...)

	w2 := h.worker("sqlite-w2", hb...)
	h.waitIdle(60 * time.Second)
	h.stop(w2)
	rep := h.inspect(keys)
	checkSound(t, rep, 40)
	checkNotRerun(t, rep, completed, takenAt, killedPID)
	if rep.LiveReruns != 0 {
		t.Errorf("%d tasks completed more than once in the surviving worker", rep.LiveReruns)
	}
	// Every task the dead worker was running was recovered once, by the
	// stale-claim sweep of the new worker.
	for ref := range running {
		res := rep.Results[ref.id]
		task, _ := res.Task(ref.task)
		if task.Recoveries != 1 {
			t.Errorf("task %s of %s was Running at the kill: %d recoveries, want 1", ref.task, ref.id, task.Recoveries)
		}
		evs, err := h.obs.ExecutionEvents(ctx, ref.id)
		if err != nil {
			t.Fatal(err)
		}
		if ev, ok := findEvent(evs, cloacina.EventTaskRecovered, ref.task); !ok {
			t.Errorf("task %s of %s: no task_recovered event", ref.task, ref.id)
		} else if ev.Worker != "sqlite-w2" || !strings.Contains(ev.Message, "heartbeat older than") {
			t.Errorf("task %s of %s recovered by %q: %q; want by sqlite-w2 for a stale heartbeat", ref.task, ref.id, ev.Worker, ev.Message)
		}
	}
	if rep.Recoveries != len(running) {
		t.Errorf("%d recoveries, want %d (the tasks Running at the kill)", rep.Recoveries, len(running))
	}
	if n := checkClaims(t, ctx, h.obs, rep); n > 0 {
		t.Logf("%d task attempts completed twice (the first run's process was killed before committing it)", n)
	}
	sqliteIntegrity(t, path)
}

// TestSQLiteKillRecoveredBySameWorkerID kills a worker mid-run and restarts
// it under the same WorkerID: it recovers its own orphans at once, long
// before StaleClaimAfter (the engine's default, 30s) could.
func TestSQLiteKillRecoveredBySameWorkerID(t *testing.T) {
	ctx := testContext(t, 90*time.Second)
	path := filepath.Join(t.TempDir(), "app.db")
	h := newHarness(t, ctx, "sqlite://"+path)
	hb := []string{"-heartbeat", "0", "-stale", "0"} // the defaults: 10s and 30s
	keys, killedPID, completed, running, takenAt := killMidRun(t, h, "node-1", hb...)

	restarted := time.Now()
	w2 := h.worker("node-1", hb...)
	h.waitIdle(20 * time.Second) // less than StaleClaimAfter: only the immediate recovery can do it
	h.stop(w2)
	rep := h.inspect(keys)
	checkSound(t, rep, 40)
	checkNotRerun(t, rep, completed, takenAt, killedPID)
	for ref := range running {
		res := rep.Results[ref.id]
		task, _ := res.Task(ref.task)
		if task.Recoveries != 1 {
			t.Errorf("task %s of %s was Running at the kill: %d recoveries, want 1", ref.task, ref.id, task.Recoveries)
		}
		evs, err := h.obs.ExecutionEvents(ctx, ref.id)
		if err != nil {
			t.Fatal(err)
		}
		ev, ok := findEvent(evs, cloacina.EventTaskRecovered, ref.task)
		switch {
		case !ok:
			t.Errorf("task %s of %s: no task_recovered event", ref.task, ref.id)
		case !strings.Contains(ev.Message, "restarted"):
			t.Errorf("task %s of %s recovered with %q, want the restart recovery", ref.task, ref.id, ev.Message)
		case ev.At.Sub(restarted) > 5*time.Second:
			t.Errorf("task %s of %s recovered %v after the restart, want at once", ref.task, ref.id, ev.At.Sub(restarted))
		}
	}
	if rep.Recoveries != len(running) {
		t.Errorf("%d recoveries, want %d (the tasks Running at the kill)", rep.Recoveries, len(running))
	}
	if n := checkClaims(t, ctx, h.obs, rep); n > 0 {
		t.Logf("%d task attempts completed twice (the first run's process was killed before committing it)", n)
	}
	sqliteIntegrity(t, path)
}

const poisonMaxRecoveries = 2

// runPoison runs a task that crashes its worker every time, restarting the
// worker under the same id after each crash (so it recovers the task at
// once), until the execution is terminal. It returns the execution's
// result and events and the number of crashes.
func runPoison(t *testing.T) (*cloacina.Result, []cloacina.Event, int) {
	t.Helper()
	ctx := testContext(t, 60*time.Second)
	h := newHarness(t, ctx, "sqlite://"+filepath.Join(t.TempDir(), "app.db"))
	keys := h.produce(faulttest.PoisonWorkflow, 1)
	id := keys["k-0"]
	crashes := 0
	for start := 0; ; start++ {
		if start > 2*poisonMaxRecoveries+2 {
			t.Fatalf("still not terminal after %d worker starts (%d crashes)", start, crashes)
		}
		p := h.start("poison-1", "-workflows", faulttest.PoisonWorkflow, "-max-recoveries", strconv.Itoa(poisonMaxRecoveries))
		terminal := false
		for !terminal && !p.Exited() {
			st, err := h.obs.ExecutionStatus(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			terminal = st.Terminal()
			select {
			case <-p.Done():
			case <-time.After(20 * time.Millisecond):
			case <-ctx.Done():
				t.Fatalf("waiting for the poison execution: %v", ctx.Err())
			}
		}
		if p.Exited() {
			if code := p.ExitCode(); code != 3 {
				t.Fatalf("worker exited with %s, want the poison task's exit status 3", p.ExitStatus())
			}
			crashes++
			continue
		}
		h.stop(p)
		break
	}
	res, err := h.obs.ExecutionResult(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := h.obs.ExecutionEvents(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	boom, _ := res.Task("boom")
	after, _ := res.Task("after")
	t.Logf("execution %s %q; boom %s recoveries %d attempts %d; after %s; %d crashes",
		res.Status, res.Error, boom.Status, boom.Recoveries, boom.Attempts, after.Status, crashes)
	return res, evs, crashes
}

// TestPoisonTaskIsAbandoned: a task that crashes its worker every time
// fails as ABANDONED after MaxRecoveries (2) recoveries, and its execution
// fails.
func TestPoisonTaskIsAbandoned(t *testing.T) {
	res, evs, crashes := runPoison(t)
	boom, _ := res.Task("boom")
	after, _ := res.Task("after")
	if res.Status != cloacina.ExecutionFailed || boom.Status != cloacina.TaskFailed || after.Status != cloacina.TaskSkipped {
		t.Errorf("execution %s, boom %s, after %s; want Failed, Failed, Skipped", res.Status, boom.Status, after.Status)
	}
	if !strings.HasPrefix(boom.Error, "ABANDONED") {
		t.Errorf("boom's error %q does not start with ABANDONED", boom.Error)
	}
	if crashes != poisonMaxRecoveries+1 {
		t.Errorf("%d crashes, want %d: the first run and one per recovery", crashes, poisonMaxRecoveries+1)
	}
	recovered, abandoned := countEvents(evs, cloacina.EventTaskRecovered, "boom"), countEvents(evs, cloacina.EventTaskAbandoned, "boom")
	if recovered != poisonMaxRecoveries || abandoned != 1 {
		t.Errorf("boom: %d task_recovered and %d task_abandoned events, want %d and 1", recovered, abandoned, poisonMaxRecoveries)
	}
}

// TestPoisonTaskRecoveriesCount: TaskResult.Recoveries "counts how often
// the task was recovered"; README: "after MaxRecoveries such recoveries it
// fails as ABANDONED". For an abandoned task it should be MaxRecoveries,
// agreeing with the task_recovered events and the ABANDONED message.
func TestPoisonTaskRecoveriesCount(t *testing.T) {
	res, evs, _ := runPoison(t)
	boom, _ := res.Task("boom")
	recovered := countEvents(evs, cloacina.EventTaskRecovered, "boom")
	if boom.Recoveries != poisonMaxRecoveries || boom.Recoveries != recovered {
		t.Errorf("boom: TaskResult.Recoveries is %d, want %d (MaxRecoveries); task_recovered events: %d; error %q",
			boom.Recoveries, poisonMaxRecoveries, recovered, boom.Error)
	}
}

// TestSIGTERMReleasesRunningTasks stops a worker with SIGTERM while its
// tasks run, with a shutdown deadline shorter than the tasks: they are
// released to Ready (not recovered, no attempt used up) and another worker
// runs them.
func TestSIGTERMReleasesRunningTasks(t *testing.T) {
	ctx := testContext(t, 60*time.Second)
	h := newHarness(t, ctx, "sqlite://"+filepath.Join(t.TempDir(), "app.db"))
	w1 := h.worker("term-w1", "-sleep-min", "5s", "-sleep-max", "5s", "-shutdown-timeout", "100ms")
	keys := h.produce(faulttest.ChainWorkflow, 8)
	for {
		m, err := h.obs.Metrics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.RunningTasks >= 4 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for 4 running tasks: %v", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	h.stop(w1)
	running, _ := h.snapshot(keys, cloacina.TaskRunning)
	if len(running) != 0 {
		t.Fatalf("%d tasks still Running after a clean shutdown, want 0 (released)", len(running))
	}
	ready, _ := h.snapshot(keys, cloacina.TaskReady)
	if len(ready) < 4 {
		t.Fatalf("%d Ready tasks after the shutdown, want at least the 4 released", len(ready))
	}
	w2 := h.worker("term-w2", "-sleep-min", "10ms", "-sleep-max", "30ms")
	h.waitIdle(30 * time.Second)
	h.stop(w2)
	rep := h.inspect(keys)
	checkSound(t, rep, 8)
	if rep.Recoveries != 0 {
		t.Errorf("%d recoveries, want 0: released tasks are not recovered", rep.Recoveries)
	}
	released := 0
	for id, res := range rep.Results {
		evs, err := h.obs.ExecutionEvents(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range res.Tasks {
			if task.Attempts != 1 {
				t.Errorf("task %s of %s: %d attempts, want 1 (a release does not use up an attempt)", task.Name, id, task.Attempts)
			}
			released += countEvents(evs, cloacina.EventTaskReleased, task.Name)
			for _, run := range rep.RunsOf(id, task.Name) {
				if run.Worker == "term-w1" {
					t.Errorf("task %s of %s completed in the worker shut down after 100ms", task.Name, id)
				}
			}
		}
	}
	if released < 4 {
		t.Errorf("%d task_released events, want at least 4", released)
	}
}

func findEvent(evs []cloacina.Event, typ cloacina.EventType, task string) (cloacina.Event, bool) {
	for _, e := range evs {
		if e.Type == typ && e.Task == task {
			return e, true
		}
	}
	return cloacina.Event{}, false
}

func countEvents(evs []cloacina.Event, typ cloacina.EventType, task string) int {
	n := 0
	for _, e := range evs {
		if e.Type == typ && e.Task == task {
			n++
		}
	}
	return n
}
