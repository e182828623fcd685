// Command tenants runs the same workflow for two tenants and shows that
// each sees only its own executions: one SQLite file per tenant by default,
// or one PostgreSQL schema per tenant when DATABASE_URL (or -db) is a
// postgres:// URL. Settings also come from a .env file, as in the guide.
//
//	go run ./examples/tenants
//	DATABASE_URL=postgres://user:pass@localhost/cloacina go run ./examples/tenants
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/tenant"
	"github.com/joho/godotenv"
)

func main() {
	_ = godotenv.Load() // an optional .env file; the environment wins
	db := flag.String("db", os.Getenv("DATABASE_URL"), "postgres:// URL for schema tenants (default: SQLite files)")
	dataDir := flag.String("data-dir", "cloacina-data/tenants", "folder of the SQLite tenant files")
	flag.Parse()
	if err := run(context.Background(), *db, *dataDir); err != nil {
		fmt.Fprintln(os.Stderr, "tenants:", err)
		os.Exit(1)
	}
}

func reportWorkflow() *cloacina.Workflow {
	return cloacina.NewWorkflow("report").
		Task("collect", func(ctx context.Context, c *cloacina.Context) error {
			customer, err := cloacina.GetAs[string](c, "customer")
			if err != nil {
				return cloacina.Permanent(err)
			}
			return c.Set("rows", len(customer)*100)
		}).
		Task("render", func(ctx context.Context, c *cloacina.Context) error {
			rows, err := cloacina.GetAs[int](c, "rows")
			if err != nil {
				return err
			}
			return c.Set("report", fmt.Sprintf("%d rows", rows))
		}, cloacina.DependsOn("collect")).
		MustBuild()
}

func run(ctx context.Context, dbURL, dataDir string) error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	opts := []cloacina.Option{cloacina.WithWorkflows(reportWorkflow()), cloacina.WithLogger(logger)}
	var m tenant.Manager
	var err error
	if strings.HasPrefix(dbURL, "postgres") {
		m, err = tenant.NewPostgresManager(ctx, dbURL, opts...)
		fmt.Println("tenants are PostgreSQL schemas in", cloacina.RedactURL(dbURL))
	} else {
		m, err = tenant.NewSQLiteManager(dataDir, opts...)
		fmt.Println("tenants are SQLite files in", dataDir)
	}
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = m.Close(sctx)
	}()

	for _, id := range []string{"tenant_a", "tenant_b"} {
		res, err := m.Execute(ctx, id, "report", map[string]any{"customer": id})
		if err != nil {
			return err
		}
		report, _ := cloacina.GetAs[string](res.Context, "report")
		fmt.Printf("%s: execution %s %s, report %q\n", id, res.ExecutionID, res.Status, report)
	}
	for _, id := range []string{"tenant_a", "tenant_b"} {
		r, err := m.Runner(ctx, id)
		if err != nil {
			return err
		}
		page, err := r.ListExecutions(ctx, cloacina.ListOptions{Limit: 100})
		if err != nil {
			return err
		}
		mt, err := m.Metrics(ctx, id)
		if err != nil {
			return err
		}
		fmt.Printf("%s sees %d executions of its own (total %d, active %d, avg %v)\n",
			id, len(page.Executions), mt.TotalExecutions, mt.ActiveExecutions, mt.AvgExecutionTime.Round(time.Millisecond))
	}
	ids, err := m.Tenants(ctx)
	if err != nil {
		return err
	}
	fmt.Println("tenants:", ids)
	return nil
}
