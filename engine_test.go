package cloacina_test

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/internal/pgtest"
	"github.com/google/uuid"
)

// TestEnginePostgres runs the multi-tenant engine's behaviours against a
// real PostgreSQL cluster that the test starts.
func TestEnginePostgres(t *testing.T) {
	srv := pgtest.Start(t)
	single := cloacina.NewWorkflow("single").Task("t", noop).MustBuild()

	t.Run("tenants are isolated", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		eng := newEngine(t, srv.NewDatabase(t), cloacina.WithWorkflows(single))
		a, err := eng.Runner(ctx, "tenant_a")
		if err != nil {
			t.Fatal(err)
		}
		b, err := eng.Runner(ctx, "tenant_b")
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		ids := map[*cloacina.Runner][]string{}
		var mu sync.Mutex
		for _, r := range []*cloacina.Runner{a, b, a, b, a} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := r.Execute(ctx, "single", nil)
				if err != nil || res.Status != cloacina.ExecutionCompleted {
					t.Errorf("execute: %v", err)
					return
				}
				mu.Lock()
				ids[r] = append(ids[r], res.ExecutionID.String())
				mu.Unlock()
			}()
		}
		wg.Wait()
		for r, want := range map[*cloacina.Runner]int{a: 3, b: 2} {
			page, err := r.ListExecutions(ctx, cloacina.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Executions) != want {
				t.Errorf("tenant %s lists %d executions, want %d", r.Schema(), len(page.Executions), want)
			}
		}
		other := mustParseUUID(t, ids[b][0])
		if _, err := a.ExecutionStatus(ctx, other); !errors.Is(err, cloacina.ErrExecutionNotFound) {
			t.Errorf("tenant_a reading tenant_b's execution: %v, want ErrExecutionNotFound", err)
		}
		if err := a.Cancel(ctx, other); !errors.Is(err, cloacina.ErrExecutionNotFound) {
			t.Errorf("tenant_a cancelling tenant_b's execution: %v, want ErrExecutionNotFound", err)
		}
		if _, err := eng.Runner(ctx, "tenant_a"); !errors.Is(err, cloacina.ErrInvalidOption) {
			t.Errorf("second runner for tenant_a: %v, want ErrInvalidOption", err)
		}
		if _, err := eng.DropSchema(ctx, "tenant_a"); !errors.Is(err, cloacina.ErrInvalidOption) {
			t.Errorf("dropping an attached schema: %v, want ErrInvalidOption", err)
		}
		if _, err := eng.Runner(ctx, "a;DROP SCHEMA tenant_b"); !errors.Is(err, cloacina.ErrInvalidTenantID) {
			t.Errorf("injection as schema: %v, want ErrInvalidTenantID", err)
		}
		schemas, err := eng.Schemas(ctx)
		if err != nil || len(schemas) != 2 {
			t.Errorf("Schemas = %v, %v; want [tenant_a tenant_b]", schemas, err)
		}
	})

	t.Run("NewRunnerWithSchema creates and uses the schema", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		url := srv.NewDatabase(t)
		r, err := cloacina.NewRunnerWithSchema(ctx, url, "guide_tenant", cloacina.WithWorkflows(single), cloacina.WithLogger(discardLogger))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Shutdown(ctx)
		if r.Schema() != "guide_tenant" {
			t.Errorf("Schema() = %q", r.Schema())
		}
		if res, err := r.Execute(ctx, "single", nil); err != nil || res.Status != cloacina.ExecutionCompleted {
			t.Fatalf("execute: %v", err)
		}
		if ok, err := r.Engine().SchemaExists(ctx, "guide_tenant"); err != nil || !ok {
			t.Errorf("SchemaExists = %v, %v; want true", ok, err)
		}
	})

	t.Run("tenant concurrency limit and fair shares", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		var running, peak atomic.Int32
		slow := cloacina.NewWorkflow("slow").Task("t", func(ctx context.Context, c *cloacina.Context) error {
			n := running.Add(1)
			defer running.Add(-1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(20 * time.Millisecond)
			return nil
		}).MustBuild()
		eng := newEngine(t, srv.NewDatabase(t), cloacina.WithWorkflows(slow, single), cloacina.WithMaxConcurrentTasks(4))
		noisy, err := eng.Runner(ctx, "noisy", cloacina.WithTenantConcurrency(2))
		if err != nil {
			t.Fatal(err)
		}
		quiet, err := eng.Runner(ctx, "quiet")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := noisy.ExecuteMany(ctx, "slow", make([]any, 100)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		res, err := quiet.Execute(ctx, "single", nil)
		if err != nil || res.Status != cloacina.ExecutionCompleted {
			t.Fatalf("quiet execute: %v", err)
		}
		m, err := noisy.Metrics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.ReadyTasks == 0 {
			t.Errorf("the noisy tenant's backlog was gone before the quiet tenant's task ran: no fair share")
		} else if m.OldestReadyTask.IsZero() || time.Since(m.OldestReadyTask) > time.Minute {
			t.Errorf("OldestReadyTask = %v with %d ready tasks, want the recent time the backlog became ready", m.OldestReadyTask, m.ReadyTasks)
		}
		for {
			m, err := noisy.Metrics(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if m.ByStatus[cloacina.ExecutionCompleted] == 100 {
				break
			}
			if ctx.Err() != nil {
				t.Fatal("noisy backlog did not finish")
			}
			time.Sleep(50 * time.Millisecond)
		}
		if p := peak.Load(); p > 2 || p < 2 {
			t.Errorf("the noisy tenant ran up to %d tasks at once, want exactly its limit 2", p)
		}
	})

	t.Run("a failing tenant does not hold the others back", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		url := srv.NewDatabase(t)
		eng := newEngine(t, url, cloacina.WithWorkflows(single))
		broken, err := eng.Runner(ctx, "broken")
		if err != nil {
			t.Fatal(err)
		}
		healthy, err := eng.Runner(ctx, "healthy")
		if err != nil {
			t.Fatal(err)
		}
		// The broken tenant's schema disappears behind the engine's back:
		// every one of its rounds fails from now on.
		db, err := sql.Open("pgx", url)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.ExecContext(ctx, `DROP SCHEMA broken CASCADE`); err != nil {
			t.Fatal(err)
		}
		if _, err := broken.ExecuteAsync(ctx, "single", nil); err == nil {
			t.Fatal("starting an execution in a dropped schema succeeded")
		}
		// Healthy executions keep their pace: with one backoff for the whole
		// engine they took seconds each after a few failed rounds.
		start := time.Now()
		for range 30 {
			if res, err := healthy.Execute(ctx, "single", nil); err != nil || res.Status != cloacina.ExecutionCompleted {
				t.Fatalf("healthy execute: %v", err)
			}
		}
		// About 0.3s when tenants back off alone; over 10s with one backoff
		// for the whole engine.
		if el := time.Since(start); el > 4*time.Second {
			t.Fatalf("30 executions of the healthy tenant took %v while another tenant failed", el)
		}
	})

	t.Run("another engine's work arrives by NOTIFY", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		url := srv.NewDatabase(t)
		// The worker polls once an hour: only LISTEN/NOTIFY can wake it.
		worker := newEngine(t, url, cloacina.WithWorkflows(single), cloacina.WithPollInterval(time.Hour))
		wr, err := worker.Runner(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		// Let the worker's first round (which looks for work) pass.
		time.Sleep(300 * time.Millisecond)
		producer := newEngine(t, url, cloacina.WithWorkflows(single), cloacina.WithEnqueueOnly())
		pr, err := producer.Runner(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		h, err := pr.ExecuteAsync(ctx, "single", nil)
		if err != nil {
			t.Fatal(err)
		}
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		defer wcancel()
		res, err := wr.Wait(wctx, h.ID())
		if err != nil {
			t.Fatalf("the worker did not run the producer's execution: %v", err)
		}
		if res.Status != cloacina.ExecutionCompleted {
			t.Fatalf("status %s", res.Status)
		}
	})
}

func TestEngineSQLiteHasOneTenant(t *testing.T) {
	ctx := context.Background()
	url, _ := sqliteURL(t)
	eng := newEngine(t, url)
	if _, err := eng.Runner(ctx, "tenant_a"); !errors.Is(err, cloacina.ErrInvalidOption) {
		t.Errorf("schema on SQLite: %v, want ErrInvalidOption", err)
	}
	if _, err := eng.Runner(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Runner(ctx, ""); !errors.Is(err, cloacina.ErrInvalidOption) {
		t.Errorf("second runner: %v, want ErrInvalidOption", err)
	}
}

func newEngine(t *testing.T, url string, opts ...cloacina.Option) *cloacina.Engine {
	t.Helper()
	opts = append([]cloacina.Option{cloacina.WithLogger(discardLogger), cloacina.WithPollInterval(testPoll)}, opts...)
	eng, err := cloacina.NewEngine(context.Background(), url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := eng.Shutdown(ctx); err != nil {
			t.Errorf("engine shutdown: %v", err)
		}
	})
	return eng
}

func mustParseUUID(t *testing.T, s string) uuid.UUID {
	t.Helper()
	id, err := uuid.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestRunnerAfterShutdownSaysClosed(t *testing.T) {
	ctx := context.Background()
	url, _ := sqliteURL(t)
	single := cloacina.NewWorkflow("single").Task("t", noop).MustBuild()
	r, err := cloacina.NewRunner(ctx, url, cloacina.WithWorkflows(single), cloacina.WithLogger(discardLogger))
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Execute(ctx, "single", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	id := res.ExecutionID
	checks := map[string]error{}
	_, checks["ExecutionStatus"] = r.ExecutionStatus(ctx, id)
	_, checks["ExecutionResult"] = r.ExecutionResult(ctx, id)
	_, checks["ExecutionEvents"] = r.ExecutionEvents(ctx, id)
	_, checks["ListExecutions"] = r.ListExecutions(ctx, cloacina.ListOptions{})
	_, checks["Metrics"] = r.Metrics(ctx)
	_, checks["Wait"] = r.Wait(ctx, id)
	_, checks["Execute"] = r.Execute(ctx, "single", nil)
	checks["Pause"] = r.Pause(ctx, id)
	checks["Resume"] = r.Resume(ctx, id)
	checks["Cancel"] = r.Cancel(ctx, id)
	for name, err := range checks {
		if !errors.Is(err, cloacina.ErrRunnerClosed) {
			t.Errorf("%s after Shutdown: %v, want ErrRunnerClosed", name, err)
		}
	}
}
