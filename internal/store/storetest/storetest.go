// Package storetest is the conformance suite of [store.Store]: one set of
// behaviour tests that every backend must pass.
//
// Use it from a backend's test:
//
//	func TestSQLite(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { ... })
//	}
package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cloacina-go/cloacina/internal/store"
)

// Run runs every behaviour test as a parallel subtest of t.
//
// open must return an open store for the subtest t it is given: on a fresh,
// empty database the first time it is called with that t, and a new store
// on the same database on every later call with the same t (the suite uses
// this to test reopening and several stores sharing one database). open
// fails t when it cannot open the store, and registers a cleanup on t that
// closes the store (closing a store the test already closed must not fail).
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open func(t *testing.T) store.Store)
	}{
		{"Backend", testBackend},
		{"ExecutionRoundTrip", testExecutionRoundTrip},
		{"GetExecutionNotFound", testGetExecutionNotFound},
		{"InsertTasksListTasks", testInsertTasksListTasks},
		{"GetExecutionTasks", testGetExecutionTasks},
		{"ClaimSelectsClaimableTasks", testClaimSelects},
		{"ClaimLimitAndOrder", testClaimLimitAndOrder},
		{"ClaimSetsFields", testClaimSetsFields},
		{"ClaimConcurrent", testClaimConcurrent},
		{"UpdateTasksGuards", testUpdateTasksGuards},
		{"UpdateTasksFields", testUpdateTasksFields},
		{"UpdateTasksMixedBatch", testUpdateTasksMixedBatch},
		{"UpdateExecutionsGuards", testUpdateExecutionsGuards},
		{"UpdateExecutionsFromMatchesExactly", testUpdateExecutionsFromExact},
		{"UpdateExecutionsFields", testUpdateExecutionsFields},
		{"StartExecutions", testStartExecutions},
		{"TaskStates", testTaskStates},
		{"RunningTasks", testRunningTasks},
		{"Heartbeat", testHeartbeat},
		{"NotifyReadyInWrite", testNotifyReady},
		{"CompletedContexts", testCompletedContexts},
		{"Events", testEvents},
		{"EventsManyInOneWrite", testEventsManyInOneWrite},
		{"LoadInputs", testTaskInputs},
		{"NextReadyAt", testNextReadyAt},
		{"ListExecutions", testListExecutions},
		{"Metrics", testMetrics},
		{"EmptyArguments", testEmptyArguments},
		{"WriteRollback", testWriteRollback},
		{"JSONRoundTrip", testJSONRoundTrip},
		{"Reopen", testReopen},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open)
		})
	}
}

// base is the suite's reference time. Its nanoseconds check that times are
// stored at microsecond precision.
var base = time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.UTC)

func at(d time.Duration) time.Time { return base.Add(d) }

// us is t as the store keeps it.
func us(t time.Time) time.Time { return t.Truncate(time.Microsecond) }

// ---- helpers ----

func newID(t testing.TB) string {
	t.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatalf("uuid.NewV7: %v", err)
	}
	return id.String()
}

func newExec(t testing.TB, wf, status string) *store.Execution {
	t.Helper()
	return &store.Execution{
		ID:              newID(t),
		WorkflowName:    wf,
		WorkflowVersion: "v1",
		Status:          status,
		Input:           []byte(`{"n":1}`),
		CreatedAt:       base,
	}
}

func newTask(e *store.Execution, name, status string, readyAt time.Time, deps ...string) *store.Task {
	return &store.Task{
		ExecutionID:  e.ID,
		WorkflowName: e.WorkflowName,
		Name:         name,
		Deps:         deps,
		Status:       status,
		ReadyAt:      readyAt,
	}
}

func write(t testing.TB, s store.Store, fn func(ctx context.Context, tx store.Tx) error) {
	t.Helper()
	ctx := context.Background()
	if err := s.Write(ctx, func(tx store.Tx) error { return fn(ctx, tx) }); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

func insert(t testing.TB, s store.Store, execs []*store.Execution, tasks []*store.Task) {
	t.Helper()
	write(t, s, func(ctx context.Context, tx store.Tx) error { return tx.InsertExecutions(ctx, execs, tasks) })
}

func getExec(t testing.TB, s store.Store, id string) *store.Execution {
	t.Helper()
	e, err := s.GetExecution(context.Background(), id)
	if err != nil {
		t.Fatalf("GetExecution(%s): %v", id, err)
	}
	return e
}

func listTasks(t testing.TB, s store.Store, execID string) []*store.Task {
	t.Helper()
	ts, err := s.ListTasks(context.Background(), execID)
	if err != nil {
		t.Fatalf("ListTasks(%s): %v", execID, err)
	}
	return ts
}

// tasksByName lists the execution's tasks by name.
func tasksByName(t testing.TB, s store.Store, execID string) map[string]*store.Task {
	t.Helper()
	m := map[string]*store.Task{}
	for _, tk := range listTasks(t, s, execID) {
		m[tk.Name] = tk
	}
	return m
}

func claim(t testing.TB, s store.Store, p store.ClaimParams) []*store.Task {
	t.Helper()
	var got []*store.Task
	write(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		got, err = tx.ClaimTasks(ctx, p)
		return err
	})
	return got
}

func updateTasks(t testing.TB, s store.Store, ups ...store.TaskUpdate) map[int64]bool {
	t.Helper()
	var got map[int64]bool
	write(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		got, err = tx.UpdateTasks(ctx, ups)
		return err
	})
	return got
}

// updateExecs applies ups and returns the ids that changed.
func updateExecs(t testing.TB, s store.Store, ups ...store.ExecutionUpdate) map[string]bool {
	t.Helper()
	got := map[string]bool{}
	for id := range updateExecsStarted(t, s, ups...) {
		got[id] = true
	}
	return got
}

// updateExecsStarted applies ups and returns what UpdateExecutions does:
// the executions that changed, with their start.
func updateExecsStarted(t testing.TB, s store.Store, ups ...store.ExecutionUpdate) map[string]store.ExecutionStart {
	t.Helper()
	var got map[string]store.ExecutionStart
	write(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		got, err = tx.UpdateExecutions(ctx, ups)
		return err
	})
	return got
}

// taskIDs returns the ids of the named tasks.
func taskIDs(byName map[string]*store.Task, names ...string) []int64 {
	ids := make([]int64, len(names))
	for i, n := range names {
		ids[i] = byName[n].ID
	}
	return ids
}

// key names a task across executions.
func key(tk *store.Task) string { return tk.ExecutionID + "/" + tk.Name }

func keys(ts []*store.Task) []string {
	out := make([]string, 0, len(ts))
	for _, tk := range ts {
		out = append(out, key(tk))
	}
	sort.Strings(out)
	return out
}

func names(ts []*store.Task) []string {
	out := make([]string, 0, len(ts))
	for _, tk := range ts {
		out = append(out, tk.Name)
	}
	return out
}

func sortedNames(ts []*store.Task) []string {
	out := names(ts)
	sort.Strings(out)
	return out
}

func checkTime(t testing.TB, what string, got, want time.Time) {
	t.Helper()
	if want.IsZero() {
		if !got.IsZero() {
			t.Errorf("%s = %v, want zero", what, got)
		}
		return
	}
	if !got.Equal(us(want)) {
		t.Errorf("%s = %v, want %v", what, got, us(want))
	}
}

// decodeJSON decodes b keeping numbers as their text.
func decodeJSON(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, errors.New("trailing data")
	}
	return v, nil
}

// checkJSONObject checks that got is a JSON object equal to want.
func checkJSONObject(t testing.TB, what string, got, want []byte) {
	t.Helper()
	gv, err := decodeJSON(got)
	if err != nil {
		t.Errorf("%s is not valid JSON (%v): %.200q", what, err, got)
		return
	}
	if _, ok := gv.(map[string]any); !ok {
		t.Errorf("%s is not a JSON object: %.200q", what, got)
		return
	}
	wv, err := decodeJSON(want)
	if err != nil {
		t.Fatalf("bad expected JSON for %s: %v", what, err)
	}
	if !reflect.DeepEqual(gv, wv) {
		t.Errorf("%s = %.300s, want %.300s", what, got, want)
	}
}

func checkTaskIDs(t testing.TB, what string, got map[int64]bool, want ...int64) {
	t.Helper()
	w := map[int64]bool{}
	for _, id := range want {
		w[id] = true
	}
	if !maps.Equal(got, w) {
		t.Errorf("%s changed %v, want %v", what, got, w)
	}
}

func checkExecIDs(t testing.TB, what string, got map[string]bool, want ...string) {
	t.Helper()
	w := map[string]bool{}
	for _, id := range want {
		w[id] = true
	}
	if !maps.Equal(got, w) {
		t.Errorf("%s changed %v, want %v", what, got, w)
	}
}

// ---- tests ----

func testBackend(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	if b := s.Backend(); b != "sqlite" && b != "postgres" {
		t.Errorf("Backend() = %q, want sqlite or postgres", b)
	}
}

func testExecutionRoundTrip(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := context.Background()
	e := newExec(t, "etl", "Pending")
	e.WorkflowVersion = "3.1.4-abcdef"
	e.Input = []byte(`{ "b": [1, 2, {"c": "d"}], "a": "x", "n": null, "f": 1.25 }`)
	e.CreatedAt = base
	// Fields the store sets itself are ignored on insert.
	noInput := newExec(t, "etl", "Running")
	noInput.Input = nil
	noInput.CreatedAt = at(time.Second)
	other := newExec(t, "other", "Paused")
	insert(t, s, []*store.Execution{e, noInput, other}, nil)

	got := getExec(t, s, e.ID)
	if got.ID != e.ID || got.WorkflowName != "etl" || got.WorkflowVersion != "3.1.4-abcdef" || got.Status != "Pending" {
		t.Errorf("GetExecution = {ID %s, WorkflowName %q, WorkflowVersion %q, Status %q}, want {%s, etl, 3.1.4-abcdef, Pending}",
			got.ID, got.WorkflowName, got.WorkflowVersion, got.Status, e.ID)
	}
	checkJSONObject(t, "Input", got.Input, e.Input)
	if got.Output != nil {
		t.Errorf("Output = %q, want nil", got.Output)
	}
	if got.Error != "" {
		t.Errorf("Error = %q, want empty", got.Error)
	}
	checkTime(t, "CreatedAt", got.CreatedAt, base)
	checkTime(t, "UpdatedAt", got.UpdatedAt, base)
	checkTime(t, "StartedAt", got.StartedAt, time.Time{})
	checkTime(t, "CompletedAt", got.CompletedAt, time.Time{})
	if got.CreatedAt.Nanosecond()%1000 != 0 {
		t.Errorf("CreatedAt %v has sub-microsecond digits", got.CreatedAt)
	}

	got2 := getExec(t, s, noInput.ID)
	checkJSONObject(t, "Input of an execution inserted without input", got2.Input, []byte(`{}`))
	if got2.Status != "Running" {
		t.Errorf("Status = %q, want Running", got2.Status)
	}
	checkTime(t, "CreatedAt", got2.CreatedAt, at(time.Second))
	if got3 := getExec(t, s, other.ID); got3.WorkflowName != "other" || got3.Status != "Paused" {
		t.Errorf("third execution = %q/%q, want other/Paused", got3.WorkflowName, got3.Status)
	}

	// The transaction's GetExecution reads the same row, and sees rows
	// written earlier in the same transaction.
	inTx := newExec(t, "etl", "Pending")
	write(t, s, func(ctx context.Context, tx store.Tx) error {
		g, err := tx.GetExecution(ctx, e.ID)
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(g, got) {
			t.Errorf("Tx.GetExecution = %+v, want %+v", g, got)
		}
		if err := tx.InsertExecutions(ctx, []*store.Execution{inTx}, nil); err != nil {
			return err
		}
		g, err = tx.GetExecution(ctx, inTx.ID)
		if err != nil {
			return fmt.Errorf("Tx.GetExecution of a row inserted in the transaction: %w", err)
		}
		if g.ID != inTx.ID {
			t.Errorf("Tx.GetExecution ID = %s, want %s", g.ID, inTx.ID)
		}
		return nil
	})
	if _, err := s.GetExecution(ctx, inTx.ID); err != nil {
		t.Errorf("GetExecution after commit: %v", err)
	}
}

func testGetExecutionNotFound(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := context.Background()
	missing := newID(t)
	if _, err := s.GetExecution(ctx, missing); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetExecution(missing) on an empty store: err = %v, want ErrNotFound", err)
	}
	insert(t, s, []*store.Execution{newExec(t, "wf", "Pending")}, nil)
	if _, err := s.GetExecution(ctx, missing); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetExecution(missing): err = %v, want ErrNotFound", err)
	}
	write(t, s, func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.GetExecution(ctx, missing); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Tx.GetExecution(missing): err = %v, want ErrNotFound", err)
		}
		return nil
	})
}

func testInsertTasksListTasks(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	e := newExec(t, "etl", "Pending")
	other := newExec(t, "etl", "Pending")
	tasks := []*store.Task{
		newTask(e, "load", "Ready", at(-time.Second)),
		newTask(other, "elsewhere", "Ready", base),
		newTask(e, "extract", "NotStarted", time.Time{}, "load"),
		newTask(e, "transform", "NotStarted", time.Time{}, "extract", "load"),
		newTask(e, "a_report", "NotStarted", time.Time{}, "transform"),
	}
	insert(t, s, []*store.Execution{e, other}, tasks)

	got := listTasks(t, s, e.ID)
	if want := []string{"load", "extract", "transform", "a_report"}; !slices.Equal(names(got), want) {
		t.Fatalf("ListTasks names = %v, want %v (insertion order)", names(got), want)
	}
	wantDeps := [][]string{{}, {"load"}, {"extract", "load"}, {"transform"}}
	wantStatus := []string{"Ready", "NotStarted", "NotStarted", "NotStarted"}
	for i, tk := range got {
		if i > 0 && tk.ID <= got[i-1].ID {
			t.Errorf("task %s ID %d not after %d", tk.Name, tk.ID, got[i-1].ID)
		}
		if !slices.Equal(tk.Deps, wantDeps[i]) {
			t.Errorf("task %s Deps = %#v, want %#v", tk.Name, tk.Deps, wantDeps[i])
		}
		if tk.ExecutionID != e.ID || tk.WorkflowName != "etl" || tk.Status != wantStatus[i] {
			t.Errorf("task %s = {ExecutionID %s, WorkflowName %q, Status %q}, want {%s, etl, %s}",
				tk.Name, tk.ExecutionID, tk.WorkflowName, tk.Status, e.ID, wantStatus[i])
		}
		if tk.Attempt != 0 || tk.RecoveryCount != 0 || tk.Context != nil || tk.Error != "" || tk.ClaimedBy != "" {
			t.Errorf("task %s = {Attempt %d, RecoveryCount %d, Context %q, Error %q, ClaimedBy %q}, want zero values",
				tk.Name, tk.Attempt, tk.RecoveryCount, tk.Context, tk.Error, tk.ClaimedBy)
		}
		checkTime(t, tk.Name+" HeartbeatAt", tk.HeartbeatAt, time.Time{})
		checkTime(t, tk.Name+" StartedAt", tk.StartedAt, time.Time{})
		checkTime(t, tk.Name+" CompletedAt", tk.CompletedAt, time.Time{})
	}
	checkTime(t, "load ReadyAt", got[0].ReadyAt, at(-time.Second))
	checkTime(t, "extract ReadyAt", got[1].ReadyAt, time.Time{})

	if o := listTasks(t, s, other.ID); len(o) != 1 || o[0].Name != "elsewhere" {
		t.Errorf("ListTasks(other) = %v, want [elsewhere]", names(o))
	}
	if m := listTasks(t, s, newID(t)); len(m) != 0 {
		t.Errorf("ListTasks(missing) = %v, want none", names(m))
	}

	// Tasks may be added to an existing execution in a later transaction.
	insert(t, s, nil, []*store.Task{newTask(e, "late", "Ready", base)})
	if got := names(listTasks(t, s, e.ID)); !slices.Equal(got, []string{"load", "extract", "transform", "a_report", "late"}) {
		t.Errorf("after adding a task: %v", got)
	}
}

func testClaimSelects(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	pending := newExec(t, "wf", "Pending")
	running := newExec(t, "wf", "Running")
	paused := newExec(t, "wf", "Paused")
	cancelled := newExec(t, "wf", "Cancelled")
	completed := newExec(t, "wf", "Completed")
	failed := newExec(t, "wf", "Failed")
	other := newExec(t, "other", "Pending")
	third := newExec(t, "third", "Running")
	past := at(-time.Second)
	tasks := []*store.Task{
		newTask(pending, "past", "Ready", past),
		newTask(pending, "now", "Ready", base),
		newTask(pending, "future", "Ready", at(time.Second)),
		newTask(pending, "soon", "Ready", at(time.Microsecond)),
		newTask(pending, "notstarted", "NotStarted", past),
		newTask(pending, "done", "Completed", past),
		newTask(pending, "busy", "Running", past),
		newTask(pending, "failed", "Failed", past),
		newTask(pending, "skipped", "Skipped", past),
		newTask(running, "r", "Ready", past),
		newTask(paused, "p", "Ready", past),
		newTask(cancelled, "c", "Ready", past),
		newTask(completed, "x", "Ready", past),
		newTask(failed, "f", "Ready", past),
		newTask(other, "o", "Ready", past),
		newTask(third, "t", "Ready", past),
	}
	insert(t, s, []*store.Execution{pending, running, paused, cancelled, completed, failed, other, third}, tasks)

	got := claim(t, s, store.ClaimParams{Worker: "w", Now: base, Limit: 100, Workflows: []string{"wf"}})
	want := []string{pending.ID + "/now", pending.ID + "/past", running.ID + "/r"}
	sort.Strings(want)
	if !slices.Equal(keys(got), want) {
		t.Errorf("claim of wf: %v, want %v", keys(got), want)
	}

	got = claim(t, s, store.ClaimParams{Worker: "w", Now: base, Limit: 100, Workflows: []string{"nope"}})
	if len(got) != 0 {
		t.Errorf("claim of an unknown workflow: %v, want none", keys(got))
	}
	got = claim(t, s, store.ClaimParams{Worker: "w", Now: base, Limit: 100, Workflows: []string{"other", "third"}})
	want = []string{other.ID + "/o", third.ID + "/t"}
	sort.Strings(want)
	if !slices.Equal(keys(got), want) {
		t.Errorf("claim of other+third: %v, want %v", keys(got), want)
	}

	// Time passes: the future tasks become claimable.
	got = claim(t, s, store.ClaimParams{Worker: "w", Now: at(time.Second), Limit: 100, Workflows: []string{"wf"}})
	if g := sortedNames(got); !slices.Equal(g, []string{"future", "soon"}) {
		t.Errorf("claim at base+1s: %v, want [future soon]", g)
	}

	// Nothing else was touched.
	for _, e := range []*store.Execution{paused, cancelled, completed, failed} {
		for _, tk := range listTasks(t, s, e.ID) {
			if tk.Status != "Ready" || tk.Attempt != 0 || tk.ClaimedBy != "" {
				t.Errorf("task %s of a %s execution = {%s, attempt %d, claimed by %q}, want untouched",
					tk.Name, e.Status, tk.Status, tk.Attempt, tk.ClaimedBy)
			}
		}
	}
	byName := tasksByName(t, s, pending.ID)
	for _, n := range []string{"notstarted", "done", "busy", "failed", "skipped"} {
		if tk := byName[n]; tk.Attempt != 0 || tk.ClaimedBy != "" {
			t.Errorf("task %s = {attempt %d, claimed by %q}, want untouched", n, tk.Attempt, tk.ClaimedBy)
		}
	}
}

func testClaimLimitAndOrder(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	e := newExec(t, "wf", "Pending")
	insert(t, s, []*store.Execution{e}, []*store.Task{
		newTask(e, "t0", "Ready", at(-1*time.Second)),
		newTask(e, "t1", "Ready", at(-5*time.Second)),
		newTask(e, "t2", "Ready", at(-3*time.Second)),
		newTask(e, "t3", "Ready", at(-4*time.Second)),
		newTask(e, "t4", "Ready", at(-2*time.Second)),
	})
	p := store.ClaimParams{Worker: "w", Now: base, Limit: 2, Workflows: []string{"wf"}}
	for i, want := range [][]string{{"t1", "t3"}, {"t2", "t4"}, {"t0"}, {}} {
		got := claim(t, s, p)
		if g := sortedNames(got); !slices.Equal(g, want) {
			t.Errorf("claim %d with Limit 2: %v, want %v (earliest ready_at first)", i+1, g, want)
		}
	}

	// Equal ready_at: first inserted first.
	e2 := newExec(t, "wf2", "Running")
	insert(t, s, []*store.Execution{e2}, []*store.Task{
		newTask(e2, "c", "Ready", base),
		newTask(e2, "a", "Ready", base),
		newTask(e2, "b", "Ready", base),
	})
	p = store.ClaimParams{Worker: "w", Now: base, Limit: 1, Workflows: []string{"wf2"}}
	for _, want := range []string{"c", "a", "b"} {
		got := claim(t, s, p)
		if len(got) != 1 || got[0].Name != want {
			t.Errorf("claim with Limit 1 among equal ready_at: %v, want [%s]", names(got), want)
		}
	}
}

func testClaimSetsFields(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	e := newExec(t, "wf", "Running")
	insert(t, s, []*store.Execution{e}, []*store.Task{
		newTask(e, "a", "Ready", at(-time.Minute), "x", "y"),
		newTask(e, "x", "Completed", time.Time{}),
		newTask(e, "y", "Completed", time.Time{}),
	})
	a := tasksByName(t, s, e.ID)["a"]
	// A failed earlier attempt left an error; the claim clears it.
	checkTaskIDs(t, "setting an error", updateTasks(t, s, store.TaskUpdate{ID: a.ID, From: "Ready", To: "Ready", Error: "earlier failure"}), a.ID)

	now := base.Add(987654321 * time.Nanosecond)
	got := claim(t, s, store.ClaimParams{Worker: "worker-1", Now: now, Limit: 10, Workflows: []string{"wf"}})
	if len(got) != 1 {
		t.Fatalf("claimed %v, want [a]", names(got))
	}
	check := func(what string, tk *store.Task, attempt int, worker string, when time.Time) {
		t.Helper()
		if tk.ID != a.ID || tk.Name != "a" || tk.ExecutionID != e.ID || tk.WorkflowName != "wf" {
			t.Errorf("%s: task = {ID %d, Name %q, ExecutionID %s, WorkflowName %q}, want {%d, a, %s, wf}",
				what, tk.ID, tk.Name, tk.ExecutionID, tk.WorkflowName, a.ID, e.ID)
		}
		if tk.Status != "Running" || tk.Attempt != attempt || tk.ClaimedBy != worker || tk.Error != "" {
			t.Errorf("%s: {Status %q, Attempt %d, ClaimedBy %q, Error %q}, want {Running, %d, %s, \"\"}",
				what, tk.Status, tk.Attempt, tk.ClaimedBy, tk.Error, attempt, worker)
		}
		if !slices.Equal(tk.Deps, []string{"x", "y"}) {
			t.Errorf("%s: Deps = %v, want [x y]", what, tk.Deps)
		}
		checkTime(t, what+": HeartbeatAt", tk.HeartbeatAt, when)
		checkTime(t, what+": StartedAt", tk.StartedAt, when)
		checkTime(t, what+": ReadyAt", tk.ReadyAt, at(-time.Minute))
		checkTime(t, what+": CompletedAt", tk.CompletedAt, time.Time{})
	}
	check("returned by the claim", got[0], 1, "worker-1", now)
	check("stored after the claim", tasksByName(t, s, e.ID)["a"], 1, "worker-1", now)
	// A task with dependencies comes without its execution's input.
	if got[0].Input != nil || got[0].WorkflowVersion != "" {
		t.Errorf("a (not a root) claimed with input %q, version %q; want none", got[0].Input, got[0].WorkflowVersion)
	}
	// A root task comes with them.
	root := newExec(t, "wf", "Pending")
	root.WorkflowVersion = "v7"
	insert(t, s, []*store.Execution{root}, []*store.Task{newTask(root, "r", "Ready", at(-time.Minute))})
	got = claim(t, s, store.ClaimParams{Worker: "worker-1", Now: now, Limit: 10, Workflows: []string{"wf"}})
	if len(got) != 1 || got[0].Name != "r" {
		t.Fatalf("claimed %v, want [r]", names(got))
	}
	checkJSONObject(t, "root task's Input", got[0].Input, root.Input)
	if got[0].WorkflowVersion != "v7" {
		t.Errorf("root task's WorkflowVersion = %q, want v7", got[0].WorkflowVersion)
	}

	if again := claim(t, s, store.ClaimParams{Worker: "worker-2", Now: now.Add(time.Hour), Limit: 10, Workflows: []string{"wf"}}); len(again) != 0 {
		t.Errorf("second claim returned %v, want none", names(again))
	}

	// Handed back for a retry, it is claimed again with the next attempt.
	checkTaskIDs(t, "retry", updateTasks(t, s, store.TaskUpdate{ID: a.ID, From: "Running", To: "Ready", Attempt: 1, ClaimedBy: "worker-1",
		Error: "boom", ReadyAt: now.Add(time.Second), Release: true}), a.ID)
	later := now.Add(2 * time.Second)
	got = claim(t, s, store.ClaimParams{Worker: "worker-2", Now: later, Limit: 10, Workflows: []string{"wf"}})
	if len(got) != 1 {
		t.Fatalf("claim after retry: %v, want [a]", names(got))
	}
	if got[0].Attempt != 2 || got[0].ClaimedBy != "worker-2" || got[0].Error != "" {
		t.Errorf("claim after retry: {Attempt %d, ClaimedBy %q, Error %q}, want {2, worker-2, \"\"}", got[0].Attempt, got[0].ClaimedBy, got[0].Error)
	}
	checkTime(t, "StartedAt after retry", got[0].StartedAt, later)
	checkTime(t, "HeartbeatAt after retry", got[0].HeartbeatAt, later)
}

func testClaimConcurrent(t *testing.T, open func(t *testing.T) store.Store) {
	// Two stores on one database, as two processes would have.
	stores := []store.Store{open(t), open(t)}
	const nExecs, perExec, workers = 10, 20, 4
	var execs []*store.Execution
	var tasks []*store.Task
	for i := range nExecs {
		e := newExec(t, "wf", "Running")
		execs = append(execs, e)
		for j := range perExec {
			tasks = append(tasks, newTask(e, fmt.Sprintf("t%02d", j), "Ready", at(-time.Duration(i*perExec+j)*time.Millisecond)))
		}
	}
	insert(t, stores[0], execs, tasks)

	var mu sync.Mutex
	claimedBy := map[int64]string{}
	var dups []string
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	start := make(chan struct{})
	for w := range workers {
		wg.Go(func() {
			s := stores[w%len(stores)]
			worker := fmt.Sprintf("worker-%d", w)
			<-start
			for {
				var got []*store.Task
				err := s.Write(context.Background(), func(tx store.Tx) error {
					var err error
					got, err = tx.ClaimTasks(context.Background(), store.ClaimParams{Worker: worker, Now: base, Limit: 3, Workflows: []string{"wf"}})
					return err
				})
				if err != nil {
					errs <- fmt.Errorf("%s: %w", worker, err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				if len(got) > 3 {
					dups = append(dups, fmt.Sprintf("%s claimed %d tasks with Limit 3", worker, len(got)))
				}
				for _, tk := range got {
					if prev, ok := claimedBy[tk.ID]; ok {
						dups = append(dups, fmt.Sprintf("task %d claimed by %s and %s", tk.ID, prev, worker))
					}
					claimedBy[tk.ID] = worker
					if tk.ClaimedBy != worker || tk.Attempt != 1 {
						dups = append(dups, fmt.Sprintf("task %d returned to %s as {ClaimedBy %q, Attempt %d}", tk.ID, worker, tk.ClaimedBy, tk.Attempt))
					}
				}
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("claiming: %v", err)
	}
	for _, d := range dups {
		t.Error(d)
	}
	if len(claimedBy) != nExecs*perExec {
		t.Errorf("claimed %d distinct tasks, want %d", len(claimedBy), nExecs*perExec)
	}
	perWorker := map[string]int{}
	bad := 0
	for _, e := range execs {
		for _, tk := range listTasks(t, stores[1], e.ID) {
			if tk.Status != "Running" || tk.Attempt != 1 || tk.ClaimedBy != claimedBy[tk.ID] {
				if bad++; bad <= 5 {
					t.Errorf("task %d stored as {%s, attempt %d, claimed by %q}, want {Running, 1, %q}",
						tk.ID, tk.Status, tk.Attempt, tk.ClaimedBy, claimedBy[tk.ID])
				}
			}
			perWorker[tk.ClaimedBy]++
		}
	}
	if bad > 5 {
		t.Errorf("... %d tasks stored wrong in all", bad)
	}
	t.Logf("tasks per worker: %v", perWorker)
}

// claimAll inserts a Running execution with the given Ready tasks, claims
// them all as worker and returns them by name.
func claimAll(t testing.TB, s store.Store, wf, worker string, taskNames ...string) (*store.Execution, map[string]*store.Task) {
	t.Helper()
	e := newExec(t, wf, "Running")
	var tasks []*store.Task
	for _, n := range taskNames {
		tasks = append(tasks, newTask(e, n, "Ready", at(-time.Second)))
	}
	insert(t, s, []*store.Execution{e}, tasks)
	got := claim(t, s, store.ClaimParams{Worker: worker, Now: base, Limit: len(taskNames), Workflows: []string{wf}})
	if len(got) != len(taskNames) {
		t.Fatalf("claimed %v, want %v", names(got), taskNames)
	}
	return e, tasksByName(t, s, e.ID)
}

func testGetExecutionTasks(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := context.Background()
	e := newExec(t, "wf", "Running")
	insert(t, s, []*store.Execution{e}, []*store.Task{newTask(e, "a", "Ready", base), newTask(e, "b", "NotStarted", time.Time{}, "a")})
	got, tasks, err := s.GetExecutionTasks(ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != e.ID || got.Status != "Running" {
		t.Errorf("execution = %s %s, want %s Running", got.ID, got.Status, e.ID)
	}
	if n := names(tasks); len(n) != 2 || n[0] != "a" || n[1] != "b" || len(tasks[1].Deps) != 1 {
		t.Errorf("tasks = %v (deps of b %v), want [a b] with b depending on a", n, tasks[len(tasks)-1].Deps)
	}
	if _, _, err := s.GetExecutionTasks(ctx, newID(t)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing execution: %v, want ErrNotFound", err)
	}
}

func testHeartbeat(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	e, tasks := claimAll(t, s, "wf", "w1", "a", "b", "c")
	// b's claim is taken away; c's execution is cancelled below.
	updateTasks(t, s, store.TaskUpdate{ID: tasks["b"].ID, From: "Running", To: "Ready", Release: true})
	beat := at(time.Minute)
	var alive, cancelled map[int64]bool
	write(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		alive, cancelled, err = tx.Heartbeat(ctx, "w1", []int64{tasks["a"].ID, tasks["b"].ID, tasks["c"].ID}, beat)
		return err
	})
	checkTaskIDs(t, "alive", alive, tasks["a"].ID, tasks["c"].ID)
	checkTaskIDs(t, "cancelled", cancelled)
	got := tasksByName(t, s, e.ID)
	checkTime(t, "a heartbeat", got["a"].HeartbeatAt, us(beat))
	if !got["b"].HeartbeatAt.IsZero() {
		t.Errorf("released task b got a heartbeat: %v", got["b"].HeartbeatAt)
	}
	// Another worker's heartbeat renews nothing.
	write(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		alive, _, err = tx.Heartbeat(ctx, "w2", []int64{tasks["a"].ID}, at(2*time.Minute))
		return err
	})
	checkTaskIDs(t, "alive for another worker", alive)
	updateExecs(t, s, store.ExecutionUpdate{ID: e.ID, From: []string{"Running"}, To: "Cancelled"})
	write(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		_, cancelled, err = tx.Heartbeat(ctx, "w1", []int64{tasks["a"].ID, tasks["c"].ID}, beat)
		return err
	})
	checkTaskIDs(t, "cancelled", cancelled, tasks["a"].ID, tasks["c"].ID)
}

func testUpdateTasksGuards(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	e, ts := claimAll(t, s, "wf", "w1", "a")
	a := ts["a"]
	if a.Attempt != 1 || a.ClaimedBy != "w1" {
		t.Fatalf("claimed task = {Attempt %d, ClaimedBy %q}", a.Attempt, a.ClaimedBy)
	}
	done := func(u store.TaskUpdate) store.TaskUpdate {
		u.ID, u.To, u.Context, u.Error, u.CompletedAt, u.Release = a.ID, "Completed", []byte(`{"x":1}`), "e", at(time.Hour), true
		return u
	}
	for _, tc := range []struct {
		name string
		up   store.TaskUpdate
	}{
		{"From mismatch", done(store.TaskUpdate{From: "Ready"})},
		{"From mismatch with matching guards", done(store.TaskUpdate{From: "Ready", Attempt: 1, ClaimedBy: "w1"})},
		{"Attempt mismatch", done(store.TaskUpdate{From: "Running", Attempt: 2})},
		{"Attempt mismatch with matching claim", done(store.TaskUpdate{From: "Running", Attempt: 2, ClaimedBy: "w1"})},
		{"ClaimedBy mismatch", done(store.TaskUpdate{From: "Running", ClaimedBy: "w2"})},
		{"ClaimedBy mismatch with matching attempt", done(store.TaskUpdate{From: "Running", Attempt: 1, ClaimedBy: "w2"})},
		{"ClaimedBy prefix", done(store.TaskUpdate{From: "Running", ClaimedBy: "w"})},
		{"ClaimedAt mismatch (an earlier claim of the same attempt)", done(store.TaskUpdate{From: "Running", Attempt: 1, ClaimedBy: "w1", ClaimedAt: a.StartedAt.Add(-time.Second)})},
		{"missing id", func() store.TaskUpdate { u := done(store.TaskUpdate{From: "Running"}); u.ID = a.ID + 1000; return u }()},
	} {
		checkTaskIDs(t, tc.name, updateTasks(t, s, tc.up))
	}
	got := tasksByName(t, s, e.ID)["a"]
	if !reflect.DeepEqual(got, a) {
		t.Errorf("after refused updates the task is %+v, want unchanged %+v", got, a)
	}
	checkTaskIDs(t, "matching guards", updateTasks(t, s, done(store.TaskUpdate{From: "Running", Attempt: 1, ClaimedBy: "w1", ClaimedAt: a.StartedAt})), a.ID)
	if got := tasksByName(t, s, e.ID)["a"]; got.Status != "Completed" {
		t.Errorf("after a matching update Status = %q, want Completed", got.Status)
	}
	// Zero guards do not guard.
	_, ts = claimAll(t, s, "wf2", "w9", "b")
	checkTaskIDs(t, "no attempt/claim guards", updateTasks(t, s, store.TaskUpdate{ID: ts["b"].ID, From: "Running", To: "Failed"}), ts["b"].ID)
}

func testUpdateTasksFields(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	e, ts := claimAll(t, s, "wf", "w1", "a", "b", "c")
	a, b, c := ts["a"], ts["b"], ts["c"]
	claimedAt := base

	// a completes: context, completed_at, released.
	checkTaskIDs(t, "complete a", updateTasks(t, s, store.TaskUpdate{ID: a.ID, From: "Running", To: "Completed", Attempt: 1, ClaimedBy: "w1",
		Context: []byte(`{"x": 1, "y": {"z": [true]}}`), CompletedAt: at(10*time.Second + 999*time.Nanosecond), Release: true}), a.ID)
	got := tasksByName(t, s, e.ID)["a"]
	if got.Status != "Completed" || got.Attempt != 1 || got.Error != "" || got.ClaimedBy != "" || got.RecoveryCount != 0 {
		t.Errorf("a = {%s, attempt %d, error %q, claimed by %q, recoveries %d}, want {Completed, 1, \"\", \"\", 0}",
			got.Status, got.Attempt, got.Error, got.ClaimedBy, got.RecoveryCount)
	}
	checkJSONObject(t, "a Context", got.Context, []byte(`{"x":1,"y":{"z":[true]}}`))
	checkTime(t, "a CompletedAt", got.CompletedAt, at(10*time.Second+999*time.Nanosecond))
	checkTime(t, "a HeartbeatAt after release", got.HeartbeatAt, time.Time{})
	checkTime(t, "a ReadyAt (zero ReadyAt keeps it)", got.ReadyAt, at(-time.Second))
	checkTime(t, "a StartedAt", got.StartedAt, claimedAt)

	// A later update without context, ready_at or completed_at keeps them;
	// the error is always set.
	checkTaskIDs(t, "update a again", updateTasks(t, s, store.TaskUpdate{ID: a.ID, From: "Completed", To: "Completed", Error: "note"}), a.ID)
	got = tasksByName(t, s, e.ID)["a"]
	checkJSONObject(t, "a Context after an update with nil Context", got.Context, []byte(`{"x":1,"y":{"z":[true]}}`))
	checkTime(t, "a CompletedAt after an update with zero CompletedAt", got.CompletedAt, at(10*time.Second+999*time.Nanosecond))
	if got.Error != "note" {
		t.Errorf("a Error = %q, want note", got.Error)
	}
	checkTaskIDs(t, "clear a's error", updateTasks(t, s, store.TaskUpdate{ID: a.ID, From: "Completed", To: "Completed"}), a.ID)
	if got = tasksByName(t, s, e.ID)["a"]; got.Error != "" {
		t.Errorf("a Error = %q after an update with empty Error, want empty (Error is always set)", got.Error)
	}

	// b is interrupted by a shutdown and recovered: back to Ready, released,
	// the attempt undone, the recovery counted.
	checkTaskIDs(t, "recover b", updateTasks(t, s, store.TaskUpdate{ID: b.ID, From: "Running", To: "Ready", Attempt: 1, ClaimedBy: "w1",
		Error: "interrupted", ReadyAt: at(30 * time.Second), Release: true, Recovered: true, UndoAttempt: true}), b.ID)
	got = tasksByName(t, s, e.ID)["b"]
	if got.Status != "Ready" || got.Attempt != 0 || got.RecoveryCount != 1 || got.ClaimedBy != "" || got.Error != "interrupted" || got.Context != nil {
		t.Errorf("b = {%s, attempt %d, recoveries %d, claimed by %q, error %q, context %q}, want {Ready, 0, 1, \"\", interrupted, nil}",
			got.Status, got.Attempt, got.RecoveryCount, got.ClaimedBy, got.Error, got.Context)
	}
	checkTime(t, "b ReadyAt", got.ReadyAt, at(30*time.Second))
	checkTime(t, "b HeartbeatAt", got.HeartbeatAt, time.Time{})
	checkTime(t, "b CompletedAt", got.CompletedAt, time.Time{})
	// Recovered again: counts accumulate.
	checkTaskIDs(t, "recover b again", updateTasks(t, s, store.TaskUpdate{ID: b.ID, From: "Ready", To: "Ready", Recovered: true}), b.ID)
	if got = tasksByName(t, s, e.ID)["b"]; got.RecoveryCount != 2 || got.Attempt != 0 {
		t.Errorf("b = {recoveries %d, attempt %d}, want {2, 0}", got.RecoveryCount, got.Attempt)
	}

	// c is updated without Release: the claim is kept.
	checkTaskIDs(t, "update c", updateTasks(t, s, store.TaskUpdate{ID: c.ID, From: "Running", To: "Running", Attempt: 1, ClaimedBy: "w1"}), c.ID)
	got = tasksByName(t, s, e.ID)["c"]
	if got.Status != "Running" || got.ClaimedBy != "w1" || got.Attempt != 1 || got.RecoveryCount != 0 {
		t.Errorf("c = {%s, claimed by %q, attempt %d, recoveries %d}, want {Running, w1, 1, 0}", got.Status, got.ClaimedBy, got.Attempt, got.RecoveryCount)
	}
	checkTime(t, "c HeartbeatAt without Release", got.HeartbeatAt, claimedAt)
}

func testUpdateTasksMixedBatch(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	e, ts := claimAll(t, s, "wf", "w1", "a", "b", "c", "d", "e", "f")
	before := tasksByName(t, s, e.ID)
	ups := []store.TaskUpdate{
		{ID: ts["a"].ID, From: "Running", To: "Completed", Attempt: 1, ClaimedBy: "w1", Context: []byte(`{"a":1}`), Release: true},
		{ID: ts["b"].ID, From: "Ready", To: "Completed"},                 // wrong From
		{ID: ts["c"].ID, From: "Running", To: "Failed", Attempt: 7},      // wrong attempt
		{ID: ts["d"].ID, From: "Running", To: "Failed", ClaimedBy: "w2"}, // wrong worker
		{ID: ts["e"].ID, From: "Running", To: "Failed", Error: "x", Attempt: 1, Release: true},
		{ID: ts["f"].ID + 10000, From: "Running", To: "Failed"}, // missing
	}
	checkTaskIDs(t, "mixed batch", updateTasks(t, s, ups...), ts["a"].ID, ts["e"].ID)
	after := tasksByName(t, s, e.ID)
	if after["a"].Status != "Completed" || after["e"].Status != "Failed" || after["e"].Error != "x" {
		t.Errorf("applied updates: a %s, e %s/%q; want Completed, Failed/x", after["a"].Status, after["e"].Status, after["e"].Error)
	}
	for _, n := range []string{"b", "c", "d", "f"} {
		if !reflect.DeepEqual(after[n], before[n]) {
			t.Errorf("task %s changed by a refused update: %+v, was %+v", n, after[n], before[n])
		}
	}
}

func testUpdateExecutionsGuards(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	e1 := newExec(t, "wf", "Pending")
	e2 := newExec(t, "wf", "Running")
	e3 := newExec(t, "wf", "Paused")
	e4 := newExec(t, "wf", "Completed")
	e5 := newExec(t, "wf", "Pending")
	e6 := newExec(t, "wf", "Running")
	insert(t, s, []*store.Execution{e1, e2, e3, e4, e5, e6}, nil)
	got := updateExecs(t, s,
		store.ExecutionUpdate{ID: e1.ID, From: []string{"Pending", "Running"}, To: "Running"},
		store.ExecutionUpdate{ID: e2.ID, From: []string{"Pending"}, To: "Paused"},
		store.ExecutionUpdate{ID: e3.ID, From: []string{"Running", "Paused"}, To: "Cancelled"},
		store.ExecutionUpdate{ID: e4.ID, From: []string{"Pending", "Running", "Paused"}, To: "Failed"},
		store.ExecutionUpdate{ID: e5.ID, From: nil, To: "Running"},
		store.ExecutionUpdate{ID: e6.ID, From: []string{"Run", "unning", "Running "}, To: "Failed"},
		store.ExecutionUpdate{ID: newID(t), From: []string{"Pending"}, To: "Running"},
	)
	checkExecIDs(t, "batch", got, e1.ID, e3.ID)
	for _, c := range []struct {
		e    *store.Execution
		want string
	}{{e1, "Running"}, {e2, "Running"}, {e3, "Cancelled"}, {e4, "Completed"}, {e5, "Pending"}, {e6, "Running"}} {
		if g := getExec(t, s, c.e.ID).Status; g != c.want {
			t.Errorf("execution inserted %s is %s, want %s", c.e.Status, g, c.want)
		}
	}
	// Refused updates leave the row alone, updated_at included.
	if g := getExec(t, s, e2.ID); !g.UpdatedAt.Equal(us(base)) {
		t.Errorf("refused update changed UpdatedAt to %v", g.UpdatedAt)
	}
}

// testUpdateExecutionsFromExact checks that From matches statuses exactly,
// as PostgreSQL's and SQLite's text equality would, not case-insensitively.
func testUpdateExecutionsFromExact(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	e := newExec(t, "wf", "Running")
	insert(t, s, []*store.Execution{e}, nil)
	checkExecIDs(t, `From ["running"] on a Running execution`,
		updateExecs(t, s, store.ExecutionUpdate{ID: e.ID, From: []string{"running"}, To: "Failed"}))
	checkExecIDs(t, `From ["RUNNING"] on a Running execution`,
		updateExecs(t, s, store.ExecutionUpdate{ID: e.ID, From: []string{"RUNNING"}, To: "Failed"}))
	if g := getExec(t, s, e.ID).Status; g != "Running" {
		t.Errorf("Status = %s, want Running", g)
	}
}

// StartExecutions moves Pending executions only, sets started_at once,
// and reports just the ones it moved.
func testStartExecutions(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	pending, running, done := newExec(t, "wf", "Pending"), newExec(t, "wf", "Pending"), newExec(t, "wf", "Completed")
	insert(t, s, []*store.Execution{pending, running, done}, nil)
	s0, s1 := at(time.Second), at(2*time.Second)
	start := func(ids ...string) map[string]bool {
		t.Helper()
		var got map[string]bool
		write(t, s, func(ctx context.Context, tx store.Tx) error {
			var err error
			got, err = tx.StartExecutions(ctx, ids, s1, "w-start")
			return err
		})
		return got
	}
	updateExecs(t, s, store.ExecutionUpdate{ID: running.ID, From: []string{"Pending"}, To: "Running", StartedAt: s0, StartedBy: "w-first"})
	checkExecIDs(t, "start", start(pending.ID, running.ID, done.ID, newID(t), pending.ID), pending.ID)
	listed := map[string]*store.Execution{}
	page, err := s.ListExecutions(context.Background(), store.ExecutionFilter{})
	if err != nil {
		t.Fatalf("ListExecutions: %v", err)
	}
	for _, e := range page {
		listed[e.ID] = e
	}
	for _, c := range []struct {
		e       *store.Execution
		status  string
		started time.Time
		by      string
	}{{pending, "Running", s1, "w-start"}, {running, "Running", s0, "w-first"}, {done, "Completed", time.Time{}, ""}} {
		got := getExec(t, s, c.e.ID)
		if got.Status != c.status {
			t.Errorf("execution %s: status %s, want %s", c.e.ID, got.Status, c.status)
		}
		checkTime(t, "StartedAt", got.StartedAt, c.started)
		withTasks, _, err := s.GetExecutionTasks(context.Background(), c.e.ID)
		if err != nil {
			t.Fatalf("GetExecutionTasks: %v", err)
		}
		if got.StartedBy != c.by || withTasks.StartedBy != c.by || listed[c.e.ID] == nil || listed[c.e.ID].StartedBy != c.by {
			t.Errorf("execution %s: StartedBy %q (GetExecutionTasks %q, listed %v), want %q", c.e.ID, got.StartedBy, withTasks.StartedBy, listed[c.e.ID], c.by)
		}
	}
	checkExecIDs(t, "start again", start(pending.ID))
	checkExecIDs(t, "start none", start())
}

func testUpdateExecutionsFields(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	e := newExec(t, "wf", "Pending")
	never := newExec(t, "wf", "Pending")
	insert(t, s, []*store.Execution{e, never}, nil)

	before := time.Now().Truncate(time.Microsecond)
	s1, s2, c1 := at(time.Second+999*time.Nanosecond), at(5*time.Second), at(time.Minute+1)
	checkExecIDs(t, "start", updateExecs(t, s, store.ExecutionUpdate{ID: e.ID, From: []string{"Pending"}, To: "Running", StartedAt: s1, StartedBy: "w1"}), e.ID)
	got := getExec(t, s, e.ID)
	if got.StartedBy != "w1" {
		t.Errorf("StartedBy = %q, want w1", got.StartedBy)
	}
	if got.Status != "Running" || got.Output != nil || got.Error != "" {
		t.Errorf("after start = {%s, output %q, error %q}, want {Running, nil, \"\"}", got.Status, got.Output, got.Error)
	}
	checkTime(t, "StartedAt", got.StartedAt, s1)
	checkTime(t, "CompletedAt", got.CompletedAt, time.Time{})
	checkTime(t, "CreatedAt", got.CreatedAt, base)
	if got.UpdatedAt.Before(before) || got.UpdatedAt.After(time.Now()) {
		t.Errorf("UpdatedAt = %v, want the time of the update (between %v and now)", got.UpdatedAt, before)
	}

	// StartedAt (and StartedBy with it) is set only once, and the update
	// returns the start kept.
	started := updateExecsStarted(t, s, store.ExecutionUpdate{ID: e.ID, From: []string{"Running"}, To: "Running", StartedAt: s2, StartedBy: "w2"})
	if len(started) != 1 {
		t.Fatalf("start again changed %v, want %s", started, e.ID)
	}
	checkTime(t, "StartedAt returned by a second start", started[e.ID].At, s1)
	if started[e.ID].By != "w1" {
		t.Errorf("StartedBy returned by a second start = %q, want w1", started[e.ID].By)
	}
	got = getExec(t, s, e.ID)
	checkTime(t, "StartedAt after a second StartedAt", got.StartedAt, s1)
	if got.StartedBy != "w1" {
		t.Errorf("StartedBy after a second start = %q, want w1", got.StartedBy)
	}

	checkExecIDs(t, "fail", updateExecs(t, s, store.ExecutionUpdate{ID: e.ID, From: []string{"Running"}, To: "Failed",
		Output: []byte(`{"result": [1, "two"]}`), Error: "task x failed", CompletedAt: c1}), e.ID)
	got = getExec(t, s, e.ID)
	if got.Status != "Failed" || got.Error != "task x failed" {
		t.Errorf("after fail = {%s, %q}, want {Failed, task x failed}", got.Status, got.Error)
	}
	checkJSONObject(t, "Output", got.Output, []byte(`{"result":[1,"two"]}`))
	checkTime(t, "CompletedAt", got.CompletedAt, c1)
	checkTime(t, "StartedAt", got.StartedAt, s1)

	// Nil output, empty error and zero completed_at keep what is there.
	checkExecIDs(t, "touch", updateExecs(t, s, store.ExecutionUpdate{ID: e.ID, From: []string{"Failed"}, To: "Failed"}), e.ID)
	got = getExec(t, s, e.ID)
	checkJSONObject(t, "Output after an update with nil Output", got.Output, []byte(`{"result":[1,"two"]}`))
	if got.Error != "task x failed" {
		t.Errorf("Error after an update with empty Error = %q, want kept", got.Error)
	}
	checkTime(t, "CompletedAt after an update with zero CompletedAt", got.CompletedAt, c1)
	checkTime(t, "StartedAt", got.StartedAt, s1)

	// Zero StartedAt leaves an unstarted execution unstarted, and says so.
	started = updateExecsStarted(t, s, store.ExecutionUpdate{ID: never.ID, From: []string{"Pending"}, To: "Cancelled", CompletedAt: c1, StartedBy: "w3"})
	if st, ok := started[never.ID]; !ok || len(started) != 1 || !st.At.IsZero() || st.By != "" {
		t.Errorf("cancel unstarted returned %v, want %s with a zero start", started, never.ID)
	}
	got = getExec(t, s, never.ID)
	checkTime(t, "StartedAt of a never-started execution", got.StartedAt, time.Time{})
	if got.StartedBy != "" {
		t.Errorf("StartedBy of a never-started execution = %q, want empty (a StartedBy without StartedAt is ignored)", got.StartedBy)
	}
	checkTime(t, "CompletedAt", got.CompletedAt, c1)
	if got.Output != nil {
		t.Errorf("Output = %q, want nil", got.Output)
	}
}

func testTaskStates(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	e1 := newExec(t, "wf", "Running")
	e2 := newExec(t, "wf", "Running")
	e3 := newExec(t, "wf", "Running")
	insert(t, s, []*store.Execution{e1, e2, e3}, []*store.Task{
		newTask(e2, "x", "Ready", at(-time.Second)),
		newTask(e1, "a", "NotStarted", time.Time{}),
		newTask(e3, "unrelated", "Ready", base),
		newTask(e2, "y", "NotStarted", time.Time{}, "x"),
		newTask(e1, "b", "Ready", at(time.Hour), "a"),
	})
	// A second batch for e1 comes after, by id.
	insert(t, s, nil, []*store.Task{newTask(e1, "c", "NotStarted", time.Time{}, "a", "b")})
	x := tasksByName(t, s, e2.ID)["x"]
	claim(t, s, store.ClaimParams{Worker: "w", Now: base, Limit: 1, Workflows: []string{"wf"}})
	checkTaskIDs(t, "fail x", updateTasks(t, s, store.TaskUpdate{ID: x.ID, From: "Running", To: "Failed", Error: "it broke", Context: []byte(`{"k":1}`)}), x.ID)

	var got []*store.Task
	write(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		got, err = tx.TaskStates(ctx, []string{e1.ID, e2.ID})
		return err
	})
	type row struct {
		exec, name, status, err string
		deps                    []string
		attempt                 int
	}
	want := []row{
		{e2.ID, "x", "Failed", "it broke", []string{}, 1},
		{e1.ID, "a", "NotStarted", "", []string{}, 0},
		{e2.ID, "y", "NotStarted", "", []string{"x"}, 0},
		{e1.ID, "b", "Ready", "", []string{"a"}, 0},
		{e1.ID, "c", "NotStarted", "", []string{"a", "b"}, 0},
	}
	if len(got) != len(want) {
		t.Fatalf("TaskStates returned %d tasks (%v), want %d", len(got), names(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.ExecutionID != w.exec || g.Name != w.name || g.Status != w.status || g.Error != w.err || g.Attempt != w.attempt || !slices.Equal(g.Deps, w.deps) {
			t.Errorf("TaskStates[%d] = {%s %s %s %q deps %v attempt %d}, want {%s %s %s %q deps %v attempt %d}",
				i, g.ExecutionID, g.Name, g.Status, g.Error, g.Deps, g.Attempt, w.exec, w.name, w.status, w.err, w.deps, w.attempt)
		}
		if g.Context != nil {
			t.Errorf("TaskStates[%d] has a context; TaskStates reads none", i)
		}
		if g.WorkflowName != "wf" {
			t.Errorf("TaskStates[%d].WorkflowName = %q, want wf", i, g.WorkflowName)
		}
		if i > 0 && g.ID <= got[i-1].ID {
			t.Errorf("TaskStates not ordered by id: %d after %d", g.ID, got[i-1].ID)
		}
	}
	if got[0].ID != x.ID {
		t.Errorf("TaskStates[0].ID = %d, want %d", got[0].ID, x.ID)
	}
}

func testRunningTasks(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	// One execution per workflow, so each claim takes one known task.
	claimAt := func(wf, worker string, now time.Time) *store.Task {
		t.Helper()
		e := newExec(t, wf, "Running")
		insert(t, s, []*store.Execution{e}, []*store.Task{newTask(e, "t", "Ready", at(-time.Hour)), newTask(e, "idle", "NotStarted", time.Time{})})
		got := claim(t, s, store.ClaimParams{Worker: worker, Now: now, Limit: 1, Workflows: []string{wf}})
		if len(got) != 1 {
			t.Fatalf("claim of %s: %v", wf, names(got))
		}
		return got[0]
	}
	a := claimAt("wfA", "w1", base)
	b := claimAt("wfB", "w1", at(2*time.Second))
	c := claimAt("wfC", "w2", at(time.Second))
	readyE := newExec(t, "wfD", "Running")
	insert(t, s, []*store.Execution{readyE}, []*store.Task{newTask(readyE, "ready", "Ready", base)})
	// A released task is no longer Running.
	d := claimAt("wfE", "w1", at(-time.Hour))
	checkTaskIDs(t, "release d", updateTasks(t, s, store.TaskUpdate{ID: d.ID, From: "Running", To: "Completed", Release: true}), d.ID)

	for _, tc := range []struct {
		name string
		f    store.RunningFilter
		want []int64
	}{
		{"all", store.RunningFilter{}, []int64{a.ID, c.ID, b.ID}},
		{"claimed by w1", store.RunningFilter{ClaimedBy: "w1"}, []int64{a.ID, b.ID}},
		{"claimed by w2", store.RunningFilter{ClaimedBy: "w2"}, []int64{c.ID}},
		{"claimed by nobody known", store.RunningFilter{ClaimedBy: "w3"}, nil},
		{"heartbeat before base+1.5s", store.RunningFilter{HeartbeatBefore: at(1500 * time.Millisecond)}, []int64{a.ID, c.ID}},
		{"heartbeat before base+1s (strictly older)", store.RunningFilter{HeartbeatBefore: at(time.Second)}, []int64{a.ID}},
		{"w1, heartbeat before base+3s", store.RunningFilter{ClaimedBy: "w1", HeartbeatBefore: at(3 * time.Second)}, []int64{a.ID, b.ID}},
		{"w2, heartbeat before base+1s", store.RunningFilter{ClaimedBy: "w2", HeartbeatBefore: at(time.Second)}, nil},
		{"limit", store.RunningFilter{Limit: 2}, []int64{a.ID, c.ID}},
	} {
		var got []*store.Task
		write(t, s, func(ctx context.Context, tx store.Tx) error {
			var err error
			got, err = tx.RunningTasks(ctx, tc.f)
			return err
		})
		var ids []int64
		for _, tk := range got {
			ids = append(ids, tk.ID)
			if tk.Status != "Running" || tk.ClaimedBy == "" || tk.HeartbeatAt.IsZero() || tk.Name != "t" {
				t.Errorf("%s: task %d = {%s, %s, claimed by %q, heartbeat %v}", tc.name, tk.ID, tk.Name, tk.Status, tk.ClaimedBy, tk.HeartbeatAt)
			}
		}
		if !slices.Equal(ids, tc.want) {
			t.Errorf("%s: RunningTasks = %v, want %v (oldest heartbeat first)", tc.name, ids, tc.want)
		}
	}
}

func testNotifyReady(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	e := newExec(t, "wf", "Pending")
	write(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.InsertExecutions(ctx, []*store.Execution{e}, []*store.Task{newTask(e, "a", "Ready", base)}); err != nil {
			return err
		}
		return tx.NotifyReady(ctx, "sender-1")
	})
	if got := listTasks(t, s, e.ID); len(got) != 1 {
		t.Errorf("Write with NotifyReady did not commit: %v", names(got))
	}
}

func testCompletedContexts(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	e1 := newExec(t, "wf", "Running")
	e2 := newExec(t, "wf", "Running")
	e3 := newExec(t, "wf", "Running")
	insert(t, s, []*store.Execution{e1, e2, e3}, []*store.Task{
		newTask(e1, "a", "Ready", base),
		newTask(e1, "b", "Ready", base),
		newTask(e1, "c", "Ready", base),
		newTask(e1, "d", "NotStarted", time.Time{}),
		newTask(e2, "x", "Ready", base),
		newTask(e3, "z", "Ready", base),
	})
	t1, t2, t3 := tasksByName(t, s, e1.ID), tasksByName(t, s, e2.ID), tasksByName(t, s, e3.ID)
	updateTasks(t, s,
		store.TaskUpdate{ID: t1["a"].ID, From: "Ready", To: "Completed", Context: []byte(`{"a":1}`)},
		store.TaskUpdate{ID: t1["b"].ID, From: "Ready", To: "Failed", Context: []byte(`{"b":1}`)},
		store.TaskUpdate{ID: t1["c"].ID, From: "Ready", To: "Running", Context: []byte(`{"c":1}`)},
		store.TaskUpdate{ID: t2["x"].ID, From: "Ready", To: "Completed", Context: []byte(`{"x":"y"}`)},
		store.TaskUpdate{ID: t3["z"].ID, From: "Ready", To: "Completed", Context: []byte(`{"z":1}`)},
	)
	var got map[string]map[string][]byte
	write(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		got, err = tx.CompletedContexts(ctx, []string{e1.ID, e2.ID, newID(t)})
		return err
	})
	if len(got) != 2 || len(got[e1.ID]) != 1 || len(got[e2.ID]) != 1 {
		t.Fatalf("CompletedContexts = %q, want {e1: {a}, e2: {x}}", got)
	}
	checkJSONObject(t, "e1/a", got[e1.ID]["a"], []byte(`{"a":1}`))
	checkJSONObject(t, "e2/x", got[e2.ID]["x"], []byte(`{"x":"y"}`))
}

// testEventsManyInOneWrite writes more events of one execution in one
// call than a row holds, interleaved with another execution's and with
// workers and times that differ from event to event, and reads them back
// whole and in pages of every size.
func testEventsManyInOneWrite(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := context.Background()
	e1 := newExec(t, "wf", "Running")
	e2 := newExec(t, "wf", "Running")
	insert(t, s, []*store.Execution{e1, e2}, nil)
	var want, wantOther []*store.Event
	var evs []*store.Event
	for i := range 40 {
		e := &store.Event{ExecutionID: e1.ID, TaskName: fmt.Sprintf("t%d", i%7), Type: "TaskStarted", Attempt: i % 3,
			Message: strings.Repeat("m", i%2), Worker: []string{"w", "", "w2"}[i%3], CreatedAt: at(time.Duration(i%4) * time.Second)}
		evs = append(evs, e)
		want = append(want, e)
		if i%5 == 0 {
			o := &store.Event{ExecutionID: e2.ID, Type: "ExecutionStarted", Worker: "x", CreatedAt: at(time.Duration(i) * time.Second)}
			evs = append(evs, o)
			wantOther = append(wantOther, o)
		}
	}
	write(t, s, func(ctx context.Context, tx store.Tx) error { return tx.InsertEvents(ctx, evs[:30]) })
	write(t, s, func(ctx context.Context, tx store.Tx) error { return tx.InsertEvents(ctx, evs[30:]) })

	check := func(name string, got, want []*store.Event) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d events, want %d", name, len(got), len(want))
		}
		for i, g := range got {
			w := want[i]
			if g.ExecutionID != w.ExecutionID || g.TaskName != w.TaskName || g.Type != w.Type || g.Attempt != w.Attempt || g.Message != w.Message || g.Worker != w.Worker {
				t.Errorf("%s: event %d = %+v, want %+v", name, i, g, w)
			}
			checkTime(t, fmt.Sprintf("%s: event %d CreatedAt", name, i), g.CreatedAt, w.CreatedAt)
			if i > 0 && g.ID <= got[i-1].ID {
				t.Errorf("%s: event %d ID %d not after %d", name, i, g.ID, got[i-1].ID)
			}
		}
	}
	all, err := s.ListEvents(ctx, e1.ID, 0, 0)
	if err != nil {
		t.Fatalf("ListEvents: %v", err)
	}
	check("e1", all, want)
	other, err := s.ListEvents(ctx, e2.ID, 0, 0)
	if err != nil {
		t.Fatalf("ListEvents(e2): %v", err)
	}
	check("e2", other, wantOther)

	for _, limit := range []int{1, 2, 3, 15, 16, 17, 39, 40, 41} {
		var paged []*store.Event
		after := int64(0)
		for range len(want) + 1 {
			page, err := s.ListEvents(ctx, e1.ID, after, limit)
			if err != nil {
				t.Fatalf("ListEvents(limit %d): %v", limit, err)
			}
			if len(page) > limit {
				t.Fatalf("page of %d events with limit %d", len(page), limit)
			}
			if len(page) == 0 {
				break
			}
			if len(page) < limit && len(paged)+len(page) < len(want) {
				t.Fatalf("limit %d: a short page of %d events after %d of %d", limit, len(page), len(paged), len(want))
			}
			paged = append(paged, page...)
			after = page[len(page)-1].ID
		}
		check(fmt.Sprintf("paging by %d", limit), paged, want)
	}
}

func testEvents(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := context.Background()
	e1 := newExec(t, "wf", "Running")
	e2 := newExec(t, "wf", "Running")
	insert(t, s, []*store.Execution{e1, e2}, nil)
	evs := []*store.Event{
		{ExecutionID: e1.ID, Type: "ExecutionStarted", CreatedAt: at(1)},
		// Batches reach PostgreSQL as array literals: text that means
		// something in one (NULL, quotes, backslashes, braces, commas,
		// spaces at the ends) must come back as written.
		{ExecutionID: e1.ID, TaskName: "a", Type: "TaskStarted", Attempt: 1, Message: "NULL", Worker: "w1", CreatedAt: at(time.Second)},
		{ExecutionID: e2.ID, Type: "ExecutionStarted", CreatedAt: at(2 * time.Second)},
		{ExecutionID: e1.ID, TaskName: "a", Type: "TaskFailed", Attempt: 1, Message: "boom: \"quoted\" \\ 🎉 ünïcode, {a,b}\n  spaced  ", Worker: " w1 ", CreatedAt: at(3 * time.Second)},
	}
	write(t, s, func(ctx context.Context, tx store.Tx) error { return tx.InsertEvents(ctx, evs) })
	more := []*store.Event{
		{ExecutionID: e1.ID, TaskName: "a", Type: "TaskStarted", Attempt: 2, Worker: "w2", CreatedAt: at(4 * time.Second)},
		{ExecutionID: e1.ID, TaskName: "a", Type: "TaskCompleted", Attempt: 2, Worker: "w2", CreatedAt: at(5 * time.Second)},
	}
	write(t, s, func(ctx context.Context, tx store.Tx) error { return tx.InsertEvents(ctx, more) })
	want := []*store.Event{evs[0], evs[1], evs[3], more[0], more[1]}

	all, err := s.ListEvents(ctx, e1.ID, 0, 0)
	if err != nil {
		t.Fatalf("ListEvents: %v", err)
	}
	if len(all) != len(want) {
		t.Fatalf("ListEvents returned %d events, want %d", len(all), len(want))
	}
	for i, g := range all {
		w := want[i]
		if g.ExecutionID != w.ExecutionID || g.TaskName != w.TaskName || g.Type != w.Type || g.Attempt != w.Attempt || g.Message != w.Message || g.Worker != w.Worker {
			t.Errorf("event %d = %+v, want %+v", i, g, w)
		}
		checkTime(t, fmt.Sprintf("event %d CreatedAt", i), g.CreatedAt, w.CreatedAt)
		if i > 0 && g.ID <= all[i-1].ID {
			t.Errorf("event %d ID %d not after %d", i, g.ID, all[i-1].ID)
		}
	}

	// Paging.
	var paged []int64
	after := int64(0)
	for range 10 {
		page, err := s.ListEvents(ctx, e1.ID, after, 2)
		if err != nil {
			t.Fatalf("ListEvents page: %v", err)
		}
		if len(page) > 2 {
			t.Fatalf("page of %d events with limit 2", len(page))
		}
		if len(page) == 0 {
			break
		}
		for _, ev := range page {
			paged = append(paged, ev.ID)
		}
		after = page[len(page)-1].ID
	}
	var allIDs []int64
	for _, ev := range all {
		allIDs = append(allIDs, ev.ID)
	}
	if !slices.Equal(paged, allIDs) {
		t.Errorf("paging by 2 gave %v, want %v", paged, allIDs)
	}
	if page, _ := s.ListEvents(ctx, e1.ID, all[2].ID, 1); len(page) != 1 || page[0].ID != all[3].ID {
		t.Errorf("ListEvents(after %d, limit 1) = %v, want event %d", all[2].ID, page, all[3].ID)
	}
	if page, _ := s.ListEvents(ctx, e1.ID, all[4].ID, 10); len(page) != 0 {
		t.Errorf("ListEvents after the last = %d events, want none", len(page))
	}

	other, err := s.ListEvents(ctx, e2.ID, 0, 100)
	if err != nil || len(other) != 1 || other[0].Type != "ExecutionStarted" || other[0].ExecutionID != e2.ID {
		t.Errorf("ListEvents(e2) = %v, %v; want its one event", other, err)
	}
	if none, err := s.ListEvents(ctx, newID(t), 0, 100); err != nil || len(none) != 0 {
		t.Errorf("ListEvents(missing) = %v, %v; want none", none, err)
	}
}

func testTaskInputs(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	e := newExec(t, "wf", "Running")
	e.Input = []byte(`{"in": "put", "list": [1, 2]}`)
	other := newExec(t, "wf", "Running")
	insert(t, s, []*store.Execution{e, other}, []*store.Task{
		newTask(e, "a", "Ready", base),
		newTask(e, "b", "Ready", base),
		newTask(e, "c", "Ready", base),
		newTask(e, "d", "NotStarted", time.Time{}, "a", "b"),
		newTask(other, "a", "Ready", base),
	})
	ts, ots := tasksByName(t, s, e.ID), tasksByName(t, s, other.ID)
	updateTasks(t, s,
		store.TaskUpdate{ID: ts["a"].ID, From: "Ready", To: "Completed", Context: []byte(`{"a": {"deep": true}}`)},
		store.TaskUpdate{ID: ts["b"].ID, From: "Ready", To: "Failed", Error: "nope"},
		store.TaskUpdate{ID: ots["a"].ID, From: "Ready", To: "Completed", Context: []byte(`{"wrong": 1}`)},
	)

	ref := func(e *store.Execution, name string) store.TaskRef {
		return store.TaskRef{ExecutionID: e.ID, Name: name}
	}
	missing := newID(t)
	var inputs map[string][]byte
	var outs map[store.TaskRef]store.TaskOutcome
	write(t, s, func(ctx context.Context, tx store.Tx) error {
		var err error
		inputs, outs, err = tx.LoadInputs(ctx, []string{e.ID, missing},
			[]store.TaskRef{ref(e, "a"), ref(e, "b"), ref(e, "missing"), ref(other, "a")})
		return err
	})
	checkJSONObject(t, "LoadInputs input", inputs[e.ID], e.Input)
	if _, ok := inputs[missing]; ok || len(inputs) != 1 {
		t.Errorf("LoadInputs inputs for %d executions (missing one included: %v), want 1", len(inputs), ok)
	}
	if len(outs) != 3 {
		t.Errorf("LoadInputs outcomes = %v, want e/a, e/b, other/a", slices.Collect(maps.Keys(outs)))
	}
	if o := outs[ref(e, "a")]; o.Status != "Completed" {
		t.Errorf("a = %+v, want Completed", o)
	} else {
		checkJSONObject(t, "a Context", o.Context, []byte(`{"a":{"deep":true}}`))
	}
	if o := outs[ref(e, "b")]; o.Status != "Failed" || o.Context != nil {
		t.Errorf("b = {%s, %q}, want {Failed, nil}", o.Status, o.Context)
	}
	if o := outs[ref(other, "a")]; o.Status != "Completed" {
		t.Errorf("other/a = %+v, want Completed", o)
	} else {
		checkJSONObject(t, "other/a Context", o.Context, []byte(`{"wrong":1}`))
	}
	write(t, s, func(ctx context.Context, tx store.Tx) error {
		ins, os, err := tx.LoadInputs(ctx, nil, nil)
		if err != nil || len(ins) != 0 || len(os) != 0 {
			t.Errorf("LoadInputs(nothing) = %v, %v, %v; want empty", ins, os, err)
		}
		return nil
	})
}

func testNextReadyAt(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := context.Background()
	next := func(wfs ...string) (time.Time, bool) {
		t.Helper()
		at, ok, err := s.NextReadyAt(ctx, wfs)
		if err != nil {
			t.Fatalf("NextReadyAt(%v): %v", wfs, err)
		}
		return at, ok
	}
	if at, ok := next("wf"); ok {
		t.Errorf("NextReadyAt on an empty store = %v, true; want false", at)
	}
	paused := newExec(t, "wf", "Paused")
	cancelled := newExec(t, "wf", "Cancelled")
	done := newExec(t, "wf", "Completed")
	pending := newExec(t, "wf", "Pending")
	running := newExec(t, "wf", "Running")
	other := newExec(t, "other", "Pending")
	insert(t, s, []*store.Execution{paused, cancelled, done}, []*store.Task{
		newTask(paused, "p", "Ready", at(-10*time.Second)),
		newTask(cancelled, "c", "Ready", at(-11*time.Second)),
		newTask(done, "d", "Ready", at(-12*time.Second)),
	})
	if at, ok := next("wf"); ok {
		t.Errorf("NextReadyAt with only paused/cancelled/completed executions = %v, true; want false", at)
	}
	insert(t, s, []*store.Execution{pending, running, other}, []*store.Task{
		newTask(pending, "later", "Ready", at(5*time.Second+7)),
		newTask(pending, "waiting", "NotStarted", at(-20*time.Second)),
		newTask(pending, "busy", "Running", at(-21*time.Second)),
		newTask(pending, "finished", "Completed", at(-22*time.Second)),
		newTask(running, "soon", "Ready", at(3*time.Second+5)),
		newTask(running, "later2", "Ready", at(time.Hour)),
		newTask(other, "o", "Ready", at(-30*time.Second)),
	})
	if got, ok := next("wf"); !ok || !got.Equal(us(at(3*time.Second))) {
		t.Errorf("NextReadyAt(wf) = %v, %v; want %v, true", got, ok, us(at(3*time.Second)))
	}
	if got, ok := next("other"); !ok || !got.Equal(us(at(-30*time.Second))) {
		t.Errorf("NextReadyAt(other) = %v, %v; want %v, true", got, ok, us(at(-30*time.Second)))
	}
	if got, ok := next("wf", "other"); !ok || !got.Equal(us(at(-30*time.Second))) {
		t.Errorf("NextReadyAt(wf, other) = %v, %v; want %v, true", got, ok, us(at(-30*time.Second)))
	}
	if got, ok := next("nope"); ok {
		t.Errorf("NextReadyAt(nope) = %v, true; want false", got)
	}
	if got, ok := next(); ok {
		t.Errorf("NextReadyAt() = %v, true; want false", got)
	}
	// Once the earliest is claimed the next one counts.
	claim(t, s, store.ClaimParams{Worker: "w", Now: at(4 * time.Second), Limit: 10, Workflows: []string{"wf"}})
	if got, ok := next("wf"); !ok || !got.Equal(us(at(5*time.Second))) {
		t.Errorf("NextReadyAt(wf) after a claim = %v, %v; want %v, true", got, ok, us(at(5*time.Second)))
	}
}

func testListExecutions(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := context.Background()
	// Time-ordered ids: ex[5] is the newest.
	spec := []struct{ wf, status string }{
		{"wfA", "Completed"}, {"wfB", "Running"}, {"wfA", "Failed"},
		{"wfA", "Running"}, {"wfB", "Completed"}, {"wfA", "Pending"},
	}
	ids := make([]string, len(spec))
	for i := range ids {
		ids[i] = newID(t)
	}
	sort.Strings(ids)
	ex := make([]*store.Execution, len(spec))
	for i, sp := range spec {
		ex[i] = newExec(t, sp.wf, sp.status)
		ex[i].ID = ids[i]
		ex[i].CreatedAt = at(time.Duration(i) * time.Second)
	}
	// Inserted out of order: listing is by id, not insertion.
	for _, i := range []int{3, 0, 5, 1, 4, 2} {
		insert(t, s, []*store.Execution{ex[i]}, nil)
	}
	list := func(f store.ExecutionFilter) []int {
		t.Helper()
		got, err := s.ListExecutions(ctx, f)
		if err != nil {
			t.Fatalf("ListExecutions(%+v): %v", f, err)
		}
		idx := make([]int, 0, len(got))
		for _, g := range got {
			i := slices.Index(ids, g.ID)
			if i < 0 {
				t.Fatalf("ListExecutions returned unknown id %s", g.ID)
			}
			idx = append(idx, i)
		}
		return idx
	}
	for _, tc := range []struct {
		name string
		f    store.ExecutionFilter
		want []int
	}{
		{"all", store.ExecutionFilter{}, []int{5, 4, 3, 2, 1, 0}},
		{"limit", store.ExecutionFilter{Limit: 2}, []int{5, 4}},
		{"page 2", store.ExecutionFilter{Limit: 2, Before: ids[4]}, []int{3, 2}},
		{"page 3", store.ExecutionFilter{Limit: 2, Before: ids[2]}, []int{1, 0}},
		{"page 4", store.ExecutionFilter{Limit: 2, Before: ids[0]}, []int{}},
		{"status", store.ExecutionFilter{Statuses: []string{"Running"}}, []int{3, 1}},
		{"statuses", store.ExecutionFilter{Statuses: []string{"Completed", "Failed"}}, []int{4, 2, 0}},
		{"workflow", store.ExecutionFilter{Workflow: "wfA"}, []int{5, 3, 2, 0}},
		{"workflow and statuses", store.ExecutionFilter{Workflow: "wfA", Statuses: []string{"Running", "Pending"}}, []int{5, 3}},
		{"workflow, statuses, before", store.ExecutionFilter{Workflow: "wfA", Statuses: []string{"Running", "Pending"}, Before: ids[5]}, []int{3}},
		{"workflow, statuses, before, limit", store.ExecutionFilter{Workflow: "wfA", Statuses: []string{"Completed", "Failed", "Running"}, Before: ids[4], Limit: 2}, []int{3, 2}},
		{"unknown workflow", store.ExecutionFilter{Workflow: "nope"}, []int{}},
		{"unknown status", store.ExecutionFilter{Statuses: []string{"Paused"}}, []int{}},
	} {
		if got := list(tc.f); !slices.Equal(got, tc.want) {
			t.Errorf("%s: ListExecutions = %v, want %v", tc.name, got, tc.want)
		}
	}
	// Listed rows carry every field.
	got, err := s.ListExecutions(ctx, store.ExecutionFilter{Limit: 1})
	if err != nil || len(got) != 1 {
		t.Fatalf("ListExecutions(limit 1) = %v, %v", got, err)
	}
	if want := getExec(t, s, ids[5]); !reflect.DeepEqual(got[0], want) {
		t.Errorf("listed execution = %+v, want %+v", got[0], want)
	}
}

func testMetrics(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := context.Background()
	m, err := s.Metrics(ctx)
	if err != nil {
		t.Fatalf("Metrics: %v", err)
	}
	if m.Total != 0 || len(m.ByStatus) != 0 || m.AvgDuration != 0 || m.ReadyTasks != 0 || m.RunningTasks != 0 || !m.OldestReadyTask.IsZero() {
		t.Errorf("Metrics of an empty store = %+v, want zeros", m)
	}

	c1 := newExec(t, "wf", "Running")
	c2 := newExec(t, "wf", "Running")
	f1 := newExec(t, "wf", "Running")
	cancelled := newExec(t, "wf", "Pending")
	running := newExec(t, "wf", "Pending")
	pending := newExec(t, "wf", "Pending")
	// A paused execution's Ready task is older than any other, and a retry
	// not yet due: both count as Ready tasks, neither as lag.
	paused := newExec(t, "wf", "Paused")
	insert(t, s, []*store.Execution{c1, c2, f1, cancelled, running, pending, paused}, []*store.Task{
		newTask(paused, "p", "Ready", at(-time.Hour)),
		newTask(running, "later", "Ready", time.Now().Add(time.Hour)),
		newTask(pending, "r1", "Ready", at(-5*time.Second+3)),
		newTask(pending, "r2", "Ready", at(-time.Second)),
		newTask(pending, "r3", "Ready", at(time.Second)),
		newTask(running, "u1", "Running", base),
		newTask(running, "u2", "Running", base),
		newTask(running, "n", "NotStarted", at(-time.Hour)),
		newTask(c1, "done", "Completed", at(-2*time.Hour)),
	})
	updateExecs(t, s,
		store.ExecutionUpdate{ID: c1.ID, From: []string{"Running"}, To: "Completed", StartedAt: base, CompletedAt: at(10 * time.Second)},
		store.ExecutionUpdate{ID: c2.ID, From: []string{"Running"}, To: "Completed", StartedAt: at(time.Second), CompletedAt: at(21*time.Second + 500*time.Microsecond)},
		store.ExecutionUpdate{ID: f1.ID, From: []string{"Running"}, To: "Failed", StartedAt: at(2 * time.Second), CompletedAt: at(32*time.Second - 500*time.Microsecond)},
		store.ExecutionUpdate{ID: cancelled.ID, From: []string{"Pending"}, To: "Cancelled", CompletedAt: at(time.Second)},
		store.ExecutionUpdate{ID: running.ID, From: []string{"Pending"}, To: "Running", StartedAt: base},
	)
	m, err = s.Metrics(ctx)
	if err != nil {
		t.Fatalf("Metrics: %v", err)
	}
	wantBy := map[string]int64{"Completed": 2, "Failed": 1, "Cancelled": 1, "Running": 1, "Pending": 1, "Paused": 1}
	if !maps.Equal(m.ByStatus, wantBy) {
		t.Errorf("ByStatus = %v, want %v", m.ByStatus, wantBy)
	}
	if m.Total != 7 {
		t.Errorf("Total = %d, want 7", m.Total)
	}
	// (10s + 20.0005s + 29.9995s) / 3 over the three that started and ended.
	if m.AvgDuration != 20*time.Second {
		t.Errorf("AvgDuration = %v, want 20s", m.AvgDuration)
	}
	if m.ReadyTasks != 5 || m.RunningTasks != 2 {
		t.Errorf("ReadyTasks, RunningTasks = %d, %d; want 5, 2", m.ReadyTasks, m.RunningTasks)
	}
	checkTime(t, "OldestReadyTask (runnable work only)", m.OldestReadyTask, at(-5*time.Second))

	// Nothing runnable: only the paused execution's task and the retry
	// not yet due are Ready.
	updateTasksOf := func(e *store.Execution, names ...string) {
		t.Helper()
		byName := tasksByName(t, s, e.ID)
		var ups []store.TaskUpdate
		for _, n := range names {
			ups = append(ups, store.TaskUpdate{ID: byName[n].ID, From: "Ready", To: "Skipped"})
		}
		checkTaskIDs(t, "skip", updateTasks(t, s, ups...), taskIDs(byName, names...)...)
	}
	updateTasksOf(pending, "r1", "r2", "r3")
	m, err = s.Metrics(ctx)
	if err != nil {
		t.Fatalf("Metrics: %v", err)
	}
	if m.ReadyTasks != 2 || !m.OldestReadyTask.IsZero() {
		t.Errorf("with a paused execution's task and a retry not yet due: ReadyTasks %d, OldestReadyTask %v; want 2, zero", m.ReadyTasks, m.OldestReadyTask)
	}
}

func testEmptyArguments(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	e, _ := claimAll(t, s, "wf", "w", "a")
	write(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.InsertExecutions(ctx, nil, nil); err != nil {
			t.Errorf("InsertExecutions(nil, nil): %v", err)
		}
		if err := tx.InsertEvents(ctx, nil); err != nil {
			t.Errorf("InsertEvents(nil): %v", err)
		}
		if got, err := tx.ClaimTasks(ctx, store.ClaimParams{Worker: "w", Now: base, Limit: 0, Workflows: []string{"wf"}}); err != nil || len(got) != 0 {
			t.Errorf("ClaimTasks(limit 0) = %v, %v; want none", names(got), err)
		}
		if got, err := tx.ClaimTasks(ctx, store.ClaimParams{Worker: "w", Now: base, Limit: 10}); err != nil || len(got) != 0 {
			t.Errorf("ClaimTasks(no workflows) = %v, %v; want none", names(got), err)
		}
		if got, err := tx.UpdateTasks(ctx, nil); err != nil || len(got) != 0 {
			t.Errorf("UpdateTasks(nil) = %v, %v; want empty", got, err)
		}
		if got, err := tx.UpdateExecutions(ctx, nil); err != nil || len(got) != 0 {
			t.Errorf("UpdateExecutions(nil) = %v, %v; want empty", got, err)
		}
		if got, err := tx.TaskStates(ctx, nil); err != nil || len(got) != 0 {
			t.Errorf("TaskStates(nil) = %v, %v; want empty", got, err)
		}
		if got, err := tx.CompletedContexts(ctx, nil); err != nil || len(got) != 0 {
			t.Errorf("CompletedContexts(nil) = %v, %v; want empty", got, err)
		}
		return nil
	})
	if got := listTasks(t, s, e.ID); len(got) != 1 || got[0].Status != "Running" {
		t.Errorf("tasks after no-op calls: %v", names(got))
	}
}

var errRollback = errors.New("storetest: roll back")

func testWriteRollback(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := context.Background()
	old := newExec(t, "wf", "Pending")
	insert(t, s, []*store.Execution{old}, []*store.Task{
		newTask(old, "a", "Ready", at(-time.Second)),
		newTask(old, "b", "Ready", at(-time.Second)),
	})
	before := tasksByName(t, s, old.ID)
	beforeExec := getExec(t, s, old.ID)

	fresh := newExec(t, "wf", "Pending")
	err := s.Write(ctx, func(tx store.Tx) error {
		if err := tx.InsertExecutions(ctx, []*store.Execution{fresh}, []*store.Task{newTask(fresh, "n", "Ready", base), newTask(old, "c", "Ready", base)}); err != nil {
			return err
		}
		if err := tx.InsertEvents(ctx, []*store.Event{{ExecutionID: old.ID, Type: "X", CreatedAt: base}, {ExecutionID: fresh.ID, Type: "Y", CreatedAt: base}}); err != nil {
			return err
		}
		if got, err := tx.UpdateTasks(ctx, []store.TaskUpdate{{ID: before["b"].ID, From: "Ready", To: "Completed", Context: []byte(`{}`)}}); err != nil || len(got) != 1 {
			return fmt.Errorf("update tasks in transaction = %v, %v", got, err)
		}
		if got, err := tx.ClaimTasks(ctx, store.ClaimParams{Worker: "w", Now: base, Limit: 10, Workflows: []string{"wf"}}); err != nil || len(got) != 3 {
			return fmt.Errorf("claim in transaction = %d tasks, %v; want 3", len(got), err)
		}
		if got, err := tx.UpdateTasks(ctx, []store.TaskUpdate{{ID: before["a"].ID, From: "Running", To: "Completed", Context: []byte(`{}`)}}); err != nil || len(got) != 1 {
			return fmt.Errorf("update tasks in transaction = %v, %v", got, err)
		}
		if got, err := tx.UpdateExecutions(ctx, []store.ExecutionUpdate{{ID: old.ID, From: []string{"Pending"}, To: "Running", StartedAt: base, Output: []byte(`{}`), Error: "e"}}); err != nil || len(got) != 1 {
			return fmt.Errorf("update executions in transaction = %v, %v", got, err)
		}
		// The transaction sees its own writes.
		if g, err := tx.GetExecution(ctx, old.ID); err != nil || g.Status != "Running" {
			return fmt.Errorf("GetExecution in transaction = %v, %v; want Running", g, err)
		}
		return fmt.Errorf("wrapped: %w", errRollback)
	})
	if !errors.Is(err, errRollback) {
		t.Fatalf("Write = %v, want the fn's error", err)
	}
	if _, err := s.GetExecution(ctx, fresh.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("execution inserted in a rolled-back Write: GetExecution err = %v, want ErrNotFound", err)
	}
	if got := listTasks(t, s, fresh.ID); len(got) != 0 {
		t.Errorf("tasks inserted in a rolled-back Write: %v", names(got))
	}
	if got := tasksByName(t, s, old.ID); !reflect.DeepEqual(got, before) {
		t.Errorf("tasks after a rolled-back Write = %v, want unchanged", got)
	}
	if got := getExec(t, s, old.ID); !reflect.DeepEqual(got, beforeExec) {
		t.Errorf("execution after a rolled-back Write = %+v, want %+v", got, beforeExec)
	}
	for _, id := range []string{old.ID, fresh.ID} {
		if evs, err := s.ListEvents(ctx, id, 0, 100); err != nil || len(evs) != 0 {
			t.Errorf("events after a rolled-back Write: %v, %v", evs, err)
		}
	}
	// The store is still usable, and a Write may reuse what was rolled back.
	insert(t, s, []*store.Execution{fresh}, []*store.Task{newTask(fresh, "n", "Ready", base)})
	if got := claim(t, s, store.ClaimParams{Worker: "w", Now: base, Limit: 10, Workflows: []string{"wf"}}); len(got) != 3 {
		t.Errorf("claim after rollback got %v, want 3 tasks", keys(got))
	}
}

// jsonPayloads are contexts that must survive the JSON-rows parameters.
func jsonPayloads(t testing.TB) map[string][]byte {
	t.Helper()
	big := map[string]any{}
	piece := `ünïcödé "quoted" \back\slash\ 漢字 😀 <tag>&amp; 'single' tab	newline
end`
	for i := 0; len(big)*(len(piece)+40) < 200*1024; i++ {
		big[fmt.Sprintf("key_%05d_ключ", i)] = map[string]any{"i": i, "s": piece, "f": float64(i) / 7, "b": i%2 == 0, "n": nil}
	}
	bigJSON, err := json.Marshal(big)
	if err != nil {
		t.Fatal(err)
	}
	if len(bigJSON) < 200*1024 {
		t.Fatalf("large payload is only %d bytes", len(bigJSON))
	}
	return map[string][]byte{
		"unicode":     []byte(`{"emoji":"😀🎉👩‍👩‍👧","cjk":"漢字かなカナ","accents":"é ü ñ ø","rtl":"שלום مرحبا","escaped":"\u00e9\u2028\u2029\ud83d\ude00","combining":"e\u0301"}`),
		"quotes":      []byte(`{"dq":"she said \"hi\"","bs":"C:\\path\\to\\file","bs_quote":"\\\"","sq":"it's 'quoted'","ctl":"a\tb\nc\rd\be\f","slash":"a\/b","sql":"'); DROP TABLE tasks; --","percent":"100% _under_","k\"ey\\":"v"}`),
		"nested":      []byte(`{"a":{"b":{"c":[1,2,{"d":[true,false,null,{"e":{}}]}]}},"empty_obj":{},"empty_arr":[],"str_json":"{\"not\":\"parsed\"}","":"empty key"}`),
		"numbers":     []byte(`{"zero":0,"neg":-1,"frac":1.5,"big":12345678901234567890123,"exp":1e300,"negexp":-2.5e-300,"maxint":9223372036854775807}`),
		"whitespace":  []byte("{\n  \"a\" : [ 1 , 2 ] ,\n\t\"b\" : { }\n}"),
		"nul":         []byte(`{"nul":"a\u0000b"}`),
		"large_200KB": bigJSON,
	}
}

func testJSONRoundTrip(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := context.Background()
	payloads := jsonPayloads(t)
	for _, name := range slices.Sorted(maps.Keys(payloads)) {
		p := payloads[name]
		t.Run(name, func(t *testing.T) {
			e := newExec(t, "wf", "Running")
			e.Input = p
			err := s.Write(ctx, func(tx store.Tx) error {
				if err := tx.InsertExecutions(ctx, []*store.Execution{e}, []*store.Task{newTask(e, "t", "Ready", base)}); err != nil {
					return err
				}
				return nil
			})
			if err != nil {
				t.Fatalf("InsertExecutions with this input: %v", err)
			}
			tk := listTasks(t, s, e.ID)[0]
			err = s.Write(ctx, func(tx store.Tx) error {
				got, err := tx.UpdateTasks(ctx, []store.TaskUpdate{{ID: tk.ID, From: "Ready", To: "Completed", Context: p}})
				if err != nil {
					return err
				}
				if !got[tk.ID] {
					return fmt.Errorf("UpdateTasks changed %v", got)
				}
				return nil
			})
			if err != nil {
				t.Fatalf("UpdateTasks with this context: %v", err)
			}
			err = s.Write(ctx, func(tx store.Tx) error {
				got, err := tx.UpdateExecutions(ctx, []store.ExecutionUpdate{{ID: e.ID, From: []string{"Running"}, To: "Completed", Output: p}})
				if err != nil {
					return err
				}
				if _, ok := got[e.ID]; !ok {
					return fmt.Errorf("UpdateExecutions changed %v", got)
				}
				return nil
			})
			if err != nil {
				t.Fatalf("UpdateExecutions with this output: %v", err)
			}

			g := getExec(t, s, e.ID)
			checkJSONObject(t, "execution Input", g.Input, p)
			checkJSONObject(t, "execution Output", g.Output, p)
			checkJSONObject(t, "task Context", listTasks(t, s, e.ID)[0].Context, p)
			write(t, s, func(ctx context.Context, tx store.Tx) error {
				cc, err := tx.CompletedContexts(ctx, []string{e.ID})
				if err != nil {
					return err
				}
				checkJSONObject(t, "CompletedContexts", cc[e.ID]["t"], p)
				return nil
			})
			write(t, s, func(ctx context.Context, tx store.Tx) error {
				ins, outs, err := tx.LoadInputs(ctx, []string{e.ID}, []store.TaskRef{{ExecutionID: e.ID, Name: "t"}})
				if err != nil || len(outs) != 1 {
					t.Fatalf("LoadInputs = %d outcomes, %v", len(outs), err)
				}
				checkJSONObject(t, "LoadInputs input", ins[e.ID], p)
				checkJSONObject(t, "LoadInputs context", outs[store.TaskRef{ExecutionID: e.ID, Name: "t"}].Context, p)
				return nil
			})
		})
	}
}

func testReopen(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := open(t)
	e := newExec(t, "wf", "Running")
	e.Input = []byte(`{"keep":"me"}`)
	insert(t, s, []*store.Execution{e}, []*store.Task{newTask(e, "a", "Ready", base), newTask(e, "b", "NotStarted", time.Time{}, "a")})
	write(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.InsertEvents(ctx, []*store.Event{{ExecutionID: e.ID, Type: "ExecutionStarted", CreatedAt: base}})
	})
	a := tasksByName(t, s, e.ID)["a"]
	updateTasks(t, s, store.TaskUpdate{ID: a.ID, From: "Ready", To: "Completed", Context: []byte(`{"a":1}`), CompletedAt: at(time.Second)})
	wantExec := getExec(t, s, e.ID)
	wantTasks := listTasks(t, s, e.ID)
	wantEvents, err := s.ListEvents(ctx, e.ID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	// Reopened: everything is there, and the store writes as well as it reads.
	s = open(t) // open fails the test should migrating again fail
	checkReopened := func(what string) {
		t.Helper()
		if got := getExec(t, s, e.ID); !reflect.DeepEqual(got, wantExec) {
			t.Errorf("%s: execution = %+v, want %+v", what, got, wantExec)
		}
		if got := listTasks(t, s, e.ID); !reflect.DeepEqual(got, wantTasks) {
			t.Errorf("%s: tasks = %+v, want %+v", what, got, wantTasks)
		}
		if got, err := s.ListEvents(ctx, e.ID, 0, 0); err != nil || !reflect.DeepEqual(got, wantEvents) {
			t.Errorf("%s: events = %+v, %v; want %+v", what, got, err, wantEvents)
		}
	}
	checkReopened("first reopen")
	b := wantTasks[1]
	checkTaskIDs(t, "make b ready", updateTasks(t, s, store.TaskUpdate{ID: b.ID, From: "NotStarted", To: "Ready", ReadyAt: base}), b.ID)
	wantTasks = listTasks(t, s, e.ID)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = open(t)
	checkReopened("second reopen")
	if got := claim(t, s, store.ClaimParams{Worker: "w", Now: base, Limit: 10, Workflows: []string{"wf"}}); len(got) != 1 || got[0].ID != b.ID {
		t.Errorf("claim after the second reopen = %v, want [b]", names(got))
	}
}
