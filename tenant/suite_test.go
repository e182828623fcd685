package tenant_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/tenant"
	"github.com/google/uuid"
)

// managerFactory returns a new manager on fresh, empty storage, with the
// pipeline workflow, a short poll interval, a discarding logger and extra;
// the manager is closed when the test ends.
type managerFactory func(t *testing.T, extra ...cloacina.Option) tenant.Manager

// sqliteFactory is the managerFactory of SQLiteManager.
func sqliteFactory(t *testing.T, extra ...cloacina.Option) tenant.Manager {
	m, _ := newManager(t, extra...)
	return m
}

func TestSQLiteManagerConformance(t *testing.T) { testManager(t, sqliteFactory) }

// testManager runs the behaviour every Manager shares, whatever its
// storage. Ids are valid for every manager (no hyphens).
func testManager(t *testing.T, newM managerFactory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, newM managerFactory)
	}{
		{"ConcurrentFirstUse", testConcurrentFirstUse},
		{"Isolation", testIsolation},
		{"TenantsAndExists", testTenantsAndExists},
		{"ExistingAndOpenRunners", testExistingAndOpenRunners},
		{"UnknownWorkflowCreatesNoTenant", testUnknownWorkflowCreatesNoTenant},
		{"InvalidIDs", testInvalidIDs},
		{"Remove", testRemove},
		{"RemoveCancelsRunningTasks", testRemoveInterruptsTasks},
		{"RemoveRacesWithExecute", testRemoveRacesWithExecute},
		{"Metrics", testMetrics},
		{"Close", testClose},
		{"CloseRacesWithRunner", testCloseRacesWithRunner},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newM) })
	}
}

func testConcurrentFirstUse(t *testing.T, newM managerFactory) {
	ctx := testCtx(t, 30*time.Second)
	m := newM(t)
	const n = 50
	runners := make([]*cloacina.Runner, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			runners[i], errs[i] = m.Runner(ctx, "acme")
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		if runners[i] != runners[0] {
			t.Fatalf("call %d got runner %p, call 0 got %p: want one runner", i, runners[i], runners[0])
		}
	}
	again, err := m.Runner(ctx, "acme")
	if err != nil || again != runners[0] {
		t.Errorf("a later call got %p, %v; want the same runner %p", again, err, runners[0])
	}
	ids, err := m.Tenants(ctx)
	if err != nil || !slices.Equal(ids, []string{"acme"}) {
		t.Errorf("Tenants() = %q, %v; want [acme]", ids, err)
	}
	res, err := again.Execute(ctx, "pipeline", nil)
	if err != nil || res.Status != cloacina.ExecutionCompleted {
		t.Errorf("Execute through the runner: %v, %v; want Completed", res, err)
	}
}

// testIsolation runs a workflow for two tenants at once and checks that
// neither sees, nor can touch, the other's executions.
func testIsolation(t *testing.T, newM managerFactory) {
	ctx := testCtx(t, 60*time.Second)
	m := newM(t)
	tenants := []string{"tenant_a", "tenant_b"}
	const perTenant = 5
	var mu sync.Mutex
	ids := map[string][]uuid.UUID{}
	var wg sync.WaitGroup
	for _, tn := range tenants {
		for i := range perTenant {
			wg.Go(func() {
				res, err := m.Execute(ctx, tn, "pipeline", map[string]any{"tenant": tn, "n": i})
				if err != nil {
					t.Errorf("Execute(%s): %v", tn, err)
					return
				}
				if res.Status != cloacina.ExecutionCompleted || len(res.Tasks) != 2 {
					t.Errorf("Execute(%s) = %s with %d tasks (%s), want Completed with 2", tn, res.Status, len(res.Tasks), res.Error)
				}
				if v, _ := res.Context.Get("seen_by_first"); v != tn {
					t.Errorf("tenant %s: first task saw tenant %v", tn, v)
				}
				mu.Lock()
				ids[tn] = append(ids[tn], res.ExecutionID)
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	checkIsolation(ctx, t, m, ids)
}

// checkIsolation checks that each tenant of ids lists exactly its own
// executions, reads them as Completed, and gets ErrExecutionNotFound for
// the others' when reading or cancelling them.
func checkIsolation(ctx context.Context, t *testing.T, m tenant.Manager, ids map[string][]uuid.UUID) {
	t.Helper()
	tenants := slices.Sorted(maps.Keys(ids))
	runners := map[string]*cloacina.Runner{}
	for _, tn := range tenants {
		r, err := m.Runner(ctx, tn)
		if err != nil {
			t.Fatal(err)
		}
		for other, or := range runners {
			if or == r {
				t.Fatalf("tenants %s and %s share one runner", other, tn)
			}
		}
		runners[tn] = r
	}
	all := map[uuid.UUID]string{}
	want := 0
	for _, tn := range tenants {
		page, err := runners[tn].ListExecutions(ctx, cloacina.ListOptions{Limit: 100})
		if err != nil {
			t.Fatalf("ListExecutions(%s): %v", tn, err)
		}
		var listed []uuid.UUID
		for _, e := range page.Executions {
			listed = append(listed, e.ExecutionID)
		}
		if !sameIDs(listed, ids[tn]) {
			t.Errorf("tenant %s lists %v, want exactly its own %v", tn, listed, ids[tn])
		}
		for _, id := range ids[tn] {
			if other, dup := all[id]; dup {
				t.Errorf("execution id %s belongs to %s and %s", id, other, tn)
			}
			all[id] = tn
		}
		want += len(ids[tn])
	}
	if len(all) != want {
		t.Errorf("%d distinct execution ids, want %d", len(all), want)
	}
	for id, owner := range all {
		for _, tn := range tenants {
			st, err := runners[tn].ExecutionStatus(ctx, id)
			switch {
			case tn == owner && (err != nil || st != cloacina.ExecutionCompleted):
				t.Errorf("owner %s reads %s: %s, %v", tn, id, st, err)
			case tn != owner && !errors.Is(err, cloacina.ErrExecutionNotFound):
				t.Errorf("tenant %s reads %s's execution %s: %s, %v; want ErrExecutionNotFound", tn, owner, id, st, err)
			}
			if tn == owner {
				continue
			}
			if _, err := runners[tn].ExecutionResult(ctx, id); !errors.Is(err, cloacina.ErrExecutionNotFound) {
				t.Errorf("tenant %s reads the result of %s's execution %s: %v; want ErrExecutionNotFound", tn, owner, id, err)
			}
			if err := runners[tn].Cancel(ctx, id); !errors.Is(err, cloacina.ErrExecutionNotFound) {
				t.Errorf("tenant %s cancels %s's execution %s: %v; want ErrExecutionNotFound", tn, owner, id, err)
			}
		}
	}
}

func sameIDs(a, b []uuid.UUID) bool {
	set := func(ids []uuid.UUID) map[uuid.UUID]bool {
		m := map[uuid.UUID]bool{}
		for _, id := range ids {
			m[id] = true
		}
		return m
	}
	return len(a) == len(b) && maps.Equal(set(a), set(b))
}

func testTenantsAndExists(t *testing.T, newM managerFactory) {
	ctx := testCtx(t, 30*time.Second)
	m := newM(t)
	if ids, err := m.Tenants(ctx); err != nil || len(ids) != 0 {
		t.Errorf("Tenants() of a new manager = %q, %v; want none", ids, err)
	}
	for _, id := range []string{"beta", "alpha_1", "_gamma", "Zed"} {
		if _, err := m.Runner(ctx, id); err != nil {
			t.Fatalf("Runner(%s): %v", id, err)
		}
	}
	// Byte order, whatever the storage's collation.
	want := []string{"Zed", "_gamma", "alpha_1", "beta"}
	got, err := m.Tenants(ctx)
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("Tenants() = %q, %v; want %q", got, err, want)
	}
	for _, id := range want {
		if ok, err := m.Exists(ctx, id); err != nil || !ok {
			t.Errorf("Exists(%s) = %v, %v; want true", id, ok, err)
		}
	}
	for _, id := range []string{"alpha", "zed", "gamma", "x"} {
		if ok, err := m.Exists(ctx, id); err != nil || ok {
			t.Errorf("Exists(%s) = %v, %v; want false", id, ok, err)
		}
	}
}

// ExistingRunner creates nothing; OpenRunner opens nothing; OpenTenants
// lists the open ones.
func testExistingAndOpenRunners(t *testing.T, newM managerFactory) {
	ctx := testCtx(t, 30*time.Second)
	m := newM(t)
	if _, err := m.ExistingRunner(ctx, "ghost"); !errors.Is(err, tenant.ErrTenantNotFound) {
		t.Errorf("ExistingRunner(ghost) = %v; want ErrTenantNotFound", err)
	}
	if _, err := m.ExistingRunner(ctx, "bad;id"); !errors.Is(err, cloacina.ErrInvalidTenantID) {
		t.Errorf("ExistingRunner(bad;id) = %v; want ErrInvalidTenantID", err)
	}
	if r, ok := m.OpenRunner("ghost"); ok || r != nil {
		t.Errorf("OpenRunner(ghost) = %v, %v; want nil, false", r, ok)
	}
	if ok, err := m.Exists(ctx, "ghost"); err != nil || ok {
		t.Errorf("after ExistingRunner, Exists(ghost) = %v, %v; want false: it must create nothing", ok, err)
	}
	r, err := m.Runner(ctx, "real")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := m.ExistingRunner(ctx, "real"); err != nil || got != r {
		t.Errorf("ExistingRunner(real) = %p, %v; want the open runner %p", got, err, r)
	}
	if got, ok := m.OpenRunner("real"); !ok || got != r {
		t.Errorf("OpenRunner(real) = %p, %v; want %p, true", got, ok, r)
	}
	if got := m.OpenTenants(); !slices.Equal(got, []string{"real"}) {
		t.Errorf("OpenTenants() = %q; want [real]", got)
	}
	if err := m.Remove(ctx, "real"); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.OpenRunner("real"); ok {
		t.Error("OpenRunner(real) after Remove is still open")
	}
	if got := m.OpenTenants(); len(got) != 0 {
		t.Errorf("OpenTenants() after Remove = %q; want none", got)
	}
	if _, err := m.ExistingRunner(ctx, "real"); !errors.Is(err, tenant.ErrTenantNotFound) {
		t.Errorf("ExistingRunner(real) after Remove = %v; want ErrTenantNotFound", err)
	}
}

func testUnknownWorkflowCreatesNoTenant(t *testing.T, newM managerFactory) {
	ctx := testCtx(t, 10*time.Second)
	m := newM(t)
	if _, err := m.Execute(ctx, "acme", "nope", nil); !errors.Is(err, cloacina.ErrUnknownWorkflow) {
		t.Errorf("Execute(nope) = %v, want ErrUnknownWorkflow", err)
	}
	if _, err := m.ExecuteAsync(ctx, "acme", "nope", nil); !errors.Is(err, cloacina.ErrUnknownWorkflow) {
		t.Errorf("ExecuteAsync(nope) = %v, want ErrUnknownWorkflow", err)
	}
	if ok, err := m.Exists(ctx, "acme"); err != nil || ok {
		t.Errorf("Exists(acme) = %v, %v; want false", ok, err)
	}
	if ids, err := m.Tenants(ctx); err != nil || len(ids) != 0 {
		t.Errorf("Tenants() = %q, %v; want none", ids, err)
	}
}

// invalidIDs are refused by every manager.
var invalidIDs = []string{
	"", "a;DROP SCHEMA x", `x"; DROP TABLE t; --`, "../acme", "acme/x", "1acme", "-acme", "a b", "é",
	"public", "PUBLIC", "information_schema", "pg_catalog", "pg_x", strings.Repeat("a", 64),
}

// testInvalidIDs calls every method taking a tenant id with invalid ids:
// each returns ErrInvalidTenantID and nothing is created.
func testInvalidIDs(t *testing.T, newM managerFactory) {
	ctx := testCtx(t, 30*time.Second)
	m := newM(t)
	for _, id := range invalidIDs {
		checks := map[string]error{}
		_, checks["Runner"] = m.Runner(ctx, id)
		_, checks["Execute"] = m.Execute(ctx, id, "pipeline", nil)
		_, checks["ExecuteAsync"] = m.ExecuteAsync(ctx, id, "pipeline", nil)
		_, checks["Exists"] = m.Exists(ctx, id)
		checks["Remove"] = m.Remove(ctx, id)
		_, checks["Metrics"] = m.Metrics(ctx, id)
		for method, err := range checks {
			if !errors.Is(err, cloacina.ErrInvalidTenantID) {
				t.Errorf("%s(%q) = %v, want ErrInvalidTenantID", method, id, err)
			}
		}
	}
	if ids, err := m.Tenants(ctx); err != nil || len(ids) != 0 {
		t.Errorf("Tenants() after invalid ids = %q, %v; want none", ids, err)
	}
}

func testRemove(t *testing.T, newM managerFactory) {
	ctx := testCtx(t, 30*time.Second)
	m := newM(t)
	old, err := m.Runner(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	first, err := old.Execute(ctx, "pipeline", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Execute(ctx, "other", "pipeline", nil); err != nil {
		t.Fatal(err)
	}

	if err := m.Remove(ctx, "acme"); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if ok, err := m.Exists(ctx, "acme"); err != nil || ok {
		t.Errorf("Exists(acme) = %v, %v after Remove", ok, err)
	}
	if ids, err := m.Tenants(ctx); err != nil || !slices.Equal(ids, []string{"other"}) {
		t.Errorf("Tenants() = %q, %v; want [other]", ids, err)
	}
	if _, err := old.ExecuteAsync(ctx, "pipeline", nil); !errors.Is(err, cloacina.ErrRunnerClosed) {
		t.Errorf("the removed tenant's runner: ExecuteAsync = %v, want ErrRunnerClosed", err)
	}
	if err := m.Remove(ctx, "acme"); !errors.Is(err, tenant.ErrTenantNotFound) {
		t.Errorf("second Remove = %v, want ErrTenantNotFound", err)
	}
	if err := m.Remove(ctx, "never_seen"); !errors.Is(err, tenant.ErrTenantNotFound) {
		t.Errorf("Remove(never_seen) = %v, want ErrTenantNotFound", err)
	}
	// The other tenant is untouched.
	if mt, err := m.Metrics(ctx, "other"); err != nil || mt.TotalExecutions != 1 {
		t.Errorf("Metrics(other) after removing acme = %+v, %v; want 1 execution", mt, err)
	}

	// The tenant comes back empty.
	fresh, err := m.Runner(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if fresh == old {
		t.Error("Runner after Remove returned the removed runner")
	}
	page, err := fresh.ListExecutions(ctx, cloacina.ListOptions{})
	if err != nil || len(page.Executions) != 0 {
		t.Errorf("fresh tenant lists %v, %v; want no executions", page, err)
	}
	if _, err := fresh.ExecutionStatus(ctx, first.ExecutionID); !errors.Is(err, cloacina.ErrExecutionNotFound) {
		t.Errorf("fresh tenant reads the old execution: %v, want ErrExecutionNotFound", err)
	}
	if res, err := fresh.Execute(ctx, "pipeline", nil); err != nil || res.Status != cloacina.ExecutionCompleted {
		t.Errorf("Execute on the fresh tenant: %v, %v", res, err)
	}
}

// testRemoveInterruptsTasks removes a tenant whose task runs until its
// context is cancelled: Remove cancels it at once (it does not wait for
// its context to end), the task sees the cancellation, and the data goes.
func testRemoveInterruptsTasks(t *testing.T, newM managerFactory) {
	ctx := testCtx(t, 60*time.Second)
	started := make(chan struct{}, 1)
	stopped := make(chan error, 1)
	blocker := cloacina.NewWorkflow("block").Task("wait", func(ctx context.Context, _ *cloacina.Context) error {
		started <- struct{}{}
		<-ctx.Done()
		stopped <- context.Cause(ctx)
		return ctx.Err()
	}).MustBuild()
	m := newM(t, cloacina.WithWorkflows(blocker))
	if _, err := m.ExecuteAsync(ctx, "acme", "block", nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatal("the task never started")
	}
	// A long grace: Remove must not use it up, the task returns as soon
	// as it is cancelled.
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	begin := time.Now()
	if err := m.Remove(rctx, "acme"); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if waited := time.Since(begin); waited > 5*time.Second {
		t.Errorf("Remove took %v: it waited for the task instead of cancelling it", waited)
	}
	select {
	case cause := <-stopped:
		t.Logf("the task was cancelled (%v) and Remove returned after %v", cause, time.Since(begin))
	default:
		t.Error("Remove returned but the task never saw its context cancelled")
	}
	if ok, err := m.Exists(ctx, "acme"); err != nil || ok {
		t.Errorf("Exists(acme) = %v, %v after Remove; want false", ok, err)
	}
	if ids, err := m.Tenants(ctx); err != nil || len(ids) != 0 {
		t.Errorf("Tenants() = %q, %v after Remove; want none", ids, err)
	}
}

// testRemoveRacesWithExecute races Remove against Execute for one tenant,
// then checks that the runner the manager keeps works and writes where the
// manager looks.
func testRemoveRacesWithExecute(t *testing.T, newM managerFactory) {
	ctx := testCtx(t, 60*time.Second)
	m := newM(t)
	for round := range 8 {
		var wg sync.WaitGroup
		wg.Go(func() {
			if err := m.Remove(ctx, "acme"); err != nil && !errors.Is(err, tenant.ErrTenantNotFound) {
				t.Errorf("round %d: Remove: %v", round, err)
			}
		})
		for range 3 {
			wg.Go(func() {
				_, err := m.Execute(ctx, "acme", "pipeline", nil)
				// The runner may be shut down by the Remove under the call's feet.
				if err != nil && !errors.Is(err, cloacina.ErrRunnerClosed) {
					t.Errorf("round %d: Execute: %v", round, err)
				}
			})
		}
		wg.Wait()
	}
	res, err := m.Execute(ctx, "acme", "pipeline", nil)
	if err != nil || res.Status != cloacina.ExecutionCompleted {
		t.Fatalf("Execute after the race: %v, %v", res, err)
	}
	if ok, err := m.Exists(ctx, "acme"); err != nil || !ok {
		t.Fatalf("Exists(acme) = %v, %v; want true", ok, err)
	}
	mt, err := m.Metrics(ctx, "acme")
	if err != nil || mt.TotalExecutions < 1 || mt.ActiveExecutions != 0 {
		t.Errorf("Metrics(acme) = %+v, %v; want at least the last execution, none active", mt, err)
	}
}

func testMetrics(t *testing.T, newM managerFactory) {
	ctx := testCtx(t, 30*time.Second)
	m := newM(t)
	for i := range 3 {
		if _, err := m.Execute(ctx, "acme", "pipeline", map[string]any{"i": i}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Execute(ctx, "other", "pipeline", nil); err != nil {
		t.Fatal(err)
	}
	mt, err := m.Metrics(ctx, "acme")
	if err != nil {
		t.Fatalf("Metrics: %v", err)
	}
	if mt.TotalExecutions != 3 || mt.ActiveExecutions != 0 || mt.ByStatus[cloacina.ExecutionCompleted] != 3 {
		t.Errorf("Metrics(acme) = %+v, want 3 executions, all completed", mt)
	}
	if mt.AvgExecutionTime < 0 {
		t.Errorf("AvgExecutionTime = %v", mt.AvgExecutionTime)
	}
	other, err := m.Metrics(ctx, "other")
	if err != nil || other.TotalExecutions != 1 {
		t.Errorf("Metrics(other) = %+v, %v; want 1 execution", other, err)
	}
	// Metrics creates no tenant.
	if fresh, err := m.Metrics(ctx, "fresh"); !errors.Is(err, tenant.ErrTenantNotFound) {
		t.Errorf("Metrics(fresh) = %+v, %v; want ErrTenantNotFound", fresh, err)
	}
	if ok, err := m.Exists(ctx, "fresh"); err != nil || ok {
		t.Errorf("Exists(fresh) after Metrics = %v, %v; want false", ok, err)
	}
}

func testClose(t *testing.T, newM managerFactory) {
	ctx := testCtx(t, 30*time.Second)
	m := newM(t)
	var runners []*cloacina.Runner
	for _, id := range []string{"a", "b"} {
		r, err := m.Runner(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		runners = append(runners, r)
	}
	if err := m.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for i, r := range runners {
		if _, err := r.ExecuteAsync(ctx, "pipeline", nil); !errors.Is(err, cloacina.ErrRunnerClosed) {
			t.Errorf("runner %d after Close: %v, want ErrRunnerClosed", i, err)
		}
	}
	checks := map[string]error{}
	_, checks["Runner"] = m.Runner(ctx, "a")
	_, checks["Runner(new)"] = m.Runner(ctx, "c")
	_, checks["Runner(invalid)"] = m.Runner(ctx, "a;DROP SCHEMA x")
	_, checks["Execute"] = m.Execute(ctx, "a", "pipeline", nil)
	_, checks["ExecuteAsync"] = m.ExecuteAsync(ctx, "a", "pipeline", nil)
	_, checks["Tenants"] = m.Tenants(ctx)
	_, checks["Exists"] = m.Exists(ctx, "a")
	checks["Remove"] = m.Remove(ctx, "a")
	_, checks["Metrics"] = m.Metrics(ctx, "a")
	checks["Close"] = m.Close(ctx)
	for method, err := range checks {
		if !errors.Is(err, tenant.ErrManagerClosed) {
			t.Errorf("%s after Close = %v, want ErrManagerClosed", method, err)
		}
	}
}

// testCloseRacesWithRunner closes a manager while tenants are being
// opened: every call either gets a runner that Close shut down or
// ErrManagerClosed, and no runner is left running (TestMain checks for
// leaked goroutines).
func testCloseRacesWithRunner(t *testing.T, newM managerFactory) {
	ctx := testCtx(t, 60*time.Second)
	m := newM(t)
	const n = 20
	runners := make([]*cloacina.Runner, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			runners[i], errs[i] = m.Runner(ctx, fmt.Sprintf("t%d", i%7))
		})
	}
	close(start)
	time.Sleep(time.Millisecond)
	if err := m.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
	wg.Wait()
	for i := range n {
		switch {
		case errs[i] != nil && !errors.Is(errs[i], tenant.ErrManagerClosed):
			t.Errorf("call %d: %v", i, errs[i])
		case errs[i] == nil:
			if _, err := runners[i].ExecuteAsync(ctx, "pipeline", nil); !errors.Is(err, cloacina.ErrRunnerClosed) {
				t.Errorf("call %d got a runner still open after Close: %v", i, err)
			}
		}
	}
}
