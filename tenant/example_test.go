package tenant_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/tenant"
)

func ExampleNewSQLiteManager() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	root, err := os.MkdirTemp("", "tenants")
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	defer os.RemoveAll(root)

	greet := cloacina.NewWorkflow("greet").
		Task("hello", func(_ context.Context, c *cloacina.Context) error {
			name, _ := c.Get("name")
			return c.Set("greeting", fmt.Sprintf("hello, %v", name))
		}).
		MustBuild()

	// Each tenant gets its own database file, data/<tenant>.db, on first use.
	m, err := tenant.NewSQLiteManager(filepath.Join(root, "data"),
		cloacina.WithWorkflows(greet),
		cloacina.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	defer func() {
		// Close shuts every tenant's runner down; the files stay.
		if err := m.Close(ctx); err != nil {
			fmt.Println("error:", err)
		}
	}()

	for _, id := range []string{"acme", "globex"} {
		res, err := m.Execute(ctx, id, "greet", map[string]any{"name": id})
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		greeting, _ := res.Context.Get("greeting")
		fmt.Printf("%s: %s, %q\n", id, res.Status, greeting)
	}

	tenants, _ := m.Tenants(ctx)
	fmt.Println("tenants:", tenants)

	// A tenant sees only its own executions.
	acme, _ := m.Metrics(ctx, "acme")
	fmt.Println("acme executions:", acme.TotalExecutions)

	_, err = m.Runner(ctx, "../globex")
	fmt.Println(err)
	// Output:
	// acme: Completed, "hello, acme"
	// globex: Completed, "hello, globex"
	// tenants: [acme globex]
	// acme executions: 1
	// cloacina: invalid tenant id: "../globex": it must start with an ASCII letter or an underscore
}
