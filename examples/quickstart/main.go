// Command quickstart runs a small ETL workflow durably on SQLite and prints
// what happened: the final context, each task's outcome and the event log.
//
//	go run ./examples/quickstart
//	go run ./examples/quickstart -db sqlite://cloacina-data/quickstart.db -customer acme
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cloacina-go/cloacina"
)

func main() {
	db := flag.String("db", "sqlite://cloacina-data/quickstart.db", "database URL (sqlite://PATH or postgres://...)")
	customer := flag.String("customer", "acme", "customer to bill")
	flag.Parse()
	if err := run(context.Background(), *db, *customer); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

type usage struct {
	Customer string `json:"customer"`
	Units    int    `json:"units"`
}

func billingWorkflow() (*cloacina.Workflow, error) {
	var flaky atomic.Int32
	return cloacina.NewWorkflow("billing").
		Description("Extract usage, price it, and invoice customers over a threshold").
		Task("extract", func(ctx context.Context, c *cloacina.Context) error {
			customer, err := cloacina.GetAs[string](c, "customer")
			if err != nil {
				return cloacina.Permanent(err)
			}
			return c.Insert("usage", usage{Customer: customer, Units: 1200})
		}).
		Task("price", func(ctx context.Context, c *cloacina.Context) error {
			// Fails on its first attempt to show a durable retry.
			if flaky.Add(1) == 1 {
				return cloacina.Transient(errors.New("pricing service busy"))
			}
			usage, err := cloacina.GetAs[usage](c, "usage")
			if err != nil {
				return err
			}
			return c.Set("amount_cents", usage.Units*7)
		}, cloacina.DependsOn("extract"), cloacina.Retry(cloacina.RetryPolicy{
			MaxAttempts: 3, Backoff: cloacina.BackoffExponential,
			InitialDelay: 200 * time.Millisecond, RetryOn: cloacina.RetryTransient(),
		})).
		Task("invoice", func(ctx context.Context, c *cloacina.Context) error {
			u, err := cloacina.GetAs[usage](c, "usage")
			if err != nil {
				return err
			}
			return c.Set("invoice", "INV-"+strings.ToUpper(u.Customer))
		}, cloacina.DependsOn("price"), cloacina.When(cloacina.All(cloacina.ContextGreaterThan("amount_cents", 5000)))).
		Task("notify", func(ctx context.Context, c *cloacina.Context) error {
			return c.Set("notified", true)
		}, cloacina.DependsOn("invoice"), cloacina.Timeout(5*time.Second)).
		Build()
}

func run(ctx context.Context, db, customer string) error {
	wf, err := billingWorkflow()
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r, err := cloacina.NewRunner(ctx, db, cloacina.WithWorkflows(wf), cloacina.WithLogger(logger))
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = r.Shutdown(sctx)
	}()

	res, err := r.Execute(ctx, "billing", map[string]any{"customer": customer})
	if err != nil {
		return err
	}
	fmt.Printf("execution %s: %s in %v\n", res.ExecutionID, res.Status, res.Duration.Round(time.Millisecond))
	fmt.Printf("final context: %s\n", res.Context)
	for _, t := range res.Tasks {
		line := fmt.Sprintf("  task %-8s %-9s attempts=%d", t.Name, t.Status, t.Attempts)
		if t.Error != "" {
			line += "  (" + t.Error + ")"
		}
		fmt.Println(line)
	}
	events, err := r.ExecutionEvents(ctx, res.ExecutionID)
	if err != nil {
		return err
	}
	fmt.Println("events:")
	for _, e := range events {
		fmt.Printf("  %s %-22s %-8s %s\n", e.At.Format("15:04:05.000"), e.Type, e.Task, e.Message)
	}
	m, err := r.Metrics(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("database %s holds %d executions (avg %v)\n", db, m.TotalExecutions, m.AvgExecutionTime.Round(time.Millisecond))
	return nil
}
