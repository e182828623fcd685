package isolation_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/tenant"
)

// TestTenantIsolation is the guide's isolation test in Go: two tenants run
// a workflow each; each lists only its own execution, and reading or
// cancelling the other's execution id is ErrExecutionNotFound.
func TestTenantIsolation(t *testing.T) {
	wf := cloacina.NewWorkflow("greet").Task("hello", func(_ context.Context, c *cloacina.Context) error {
		return c.Set("greeted", true)
	}).MustBuild()
	opts := []cloacina.Option{cloacina.WithWorkflows(wf)}

	t.Run("SQLite", func(t *testing.T) {
		m, err := tenant.NewSQLiteManager(t.TempDir(), opts...)
		if err != nil {
			t.Fatal(err)
		}
		checkIsolation(t, m)
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		dbURL := os.Getenv("CLOACINA_ISOLATION_DATABASE_URL")
		if dbURL == "" {
			t.Skip("set CLOACINA_ISOLATION_DATABASE_URL to a PostgreSQL database to run it there")
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		m, err := tenant.NewPostgresManager(ctx, dbURL, opts...)
		if err != nil {
			t.Fatal(err)
		}
		checkIsolation(t, m)
	})
}

func checkIsolation(t *testing.T, m tenant.Manager) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const a, b = "isolation_test_a", "isolation_test_b"
	defer func() {
		for _, id := range []string{a, b} {
			if err := m.Remove(ctx, id); err != nil {
				t.Errorf("Remove(%s): %v", id, err)
			}
		}
		if err := m.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()

	resA, err := m.Execute(ctx, a, "greet", map[string]any{"tenant": a})
	if err != nil {
		t.Fatal(err)
	}
	resB, err := m.Execute(ctx, b, "greet", map[string]any{"tenant": b})
	if err != nil {
		t.Fatal(err)
	}
	if resA.ExecutionID == resB.ExecutionID {
		t.Fatal("two tenants got the same execution id")
	}
	for _, c := range []struct {
		own, other string
		mine       *cloacina.Result
		theirs     *cloacina.Result
	}{{a, b, resA, resB}, {b, a, resB, resA}} {
		r, err := m.ExistingRunner(ctx, c.own)
		if err != nil {
			t.Fatal(err)
		}
		page, err := r.ListExecutions(ctx, cloacina.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Executions) != 1 || page.Executions[0].ExecutionID != c.mine.ExecutionID {
			t.Errorf("tenant %s lists %d executions; want only its own", c.own, len(page.Executions))
		}
		if _, err := r.ExecutionResult(ctx, c.theirs.ExecutionID); !errors.Is(err, cloacina.ErrExecutionNotFound) {
			t.Errorf("tenant %s reading %s's execution: %v; want ErrExecutionNotFound", c.own, c.other, err)
		}
		if err := r.Cancel(ctx, c.theirs.ExecutionID); !errors.Is(err, cloacina.ErrExecutionNotFound) {
			t.Errorf("tenant %s cancelling %s's execution: %v; want ErrExecutionNotFound", c.own, c.other, err)
		}
	}
}
