package metrics_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/metrics"
	"github.com/cloacina-go/cloacina/tenant"
)

func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir, err := os.MkdirTemp("", "metrics-example")
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	defer os.RemoveAll(dir)

	greet := cloacina.NewWorkflow("greet").
		Task("hello", func(_ context.Context, c *cloacina.Context) error {
			return c.Set("greeting", "hello")
		}).
		MustBuild()

	// One collector for the process, registered once.
	c := metrics.New()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)

	// The manager's runners report to the collector's observer...
	m, err := tenant.NewSQLiteManager(filepath.Join(dir, "data"),
		cloacina.WithWorkflows(greet),
		cloacina.WithObserver(c.Observer()),
		cloacina.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	defer m.Close(ctx)
	// ...and each scrape reads the queues and pools of its open tenants.
	c.WatchManager(m)

	for _, id := range []string{"acme", "globex", "acme"} {
		if _, err := m.Execute(ctx, id, "greet", nil); err != nil {
			fmt.Println("error:", err)
			return
		}
	}

	// Serve reg with promhttp.HandlerFor(reg, promhttp.HandlerOpts{}); here,
	// compare part of the text exposition.
	want := `
# HELP cloacina_executions_started_total Executions started by this process.
# TYPE cloacina_executions_started_total counter
cloacina_executions_started_total{tenant="acme",workflow="greet"} 2
cloacina_executions_started_total{tenant="globex",workflow="greet"} 1
# HELP cloacina_queue_ready_tasks Tasks ready to run, of the tenants open in this process.
# TYPE cloacina_queue_ready_tasks gauge
cloacina_queue_ready_tasks{tenant="acme"} 0
cloacina_queue_ready_tasks{tenant="globex"} 0
`
	err = testutil.GatherAndCompare(reg, strings.NewReader(want),
		"cloacina_executions_started_total", "cloacina_queue_ready_tasks")
	fmt.Println("exposition as expected:", err == nil)

	attempts, _ := testutil.GatherAndCount(reg, "cloacina_task_attempts_total")
	fmt.Println("task attempt series:", attempts)
	// Output:
	// exposition as expected: true
	// task attempt series: 2
}
