package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina/client"
)

// TestServeGuideEnv: serve honours the guide's tuning variables from the
// ./.env file: MAX_CONCURRENT_TASKS (a tenant's task slots),
// TASK_TIMEOUT_SECONDS and DB_POOL_SIZE, as its log and /metrics show;
// CLOACINA_TASK_TIMEOUT bounds a task without a timeout of its own.
func TestServeGuideEnv(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 60*time.Second)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ".env"), []byte("MAX_CONCURRENT_TASKS=3\nTASK_TIMEOUT_SECONDS=7\nDB_POOL_SIZE=5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, dir, []string{"CLOACINA_ADMIN_KEY=" + testAdminKey})
	if !p.waitStderr("task_slots_per_tenant=3 task_timeout=7s db_pool_size=5") {
		t.Errorf("serving log line:\n%s", p.stderr)
	}
	c := client.New(p.url, client.WithAPIKey(testAdminKey))
	if _, err := c.CreateTenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if ex, err := c.StartExecution(ctx, "acme", client.StartRequest{Workflow: "hello", Wait: 10 * time.Second}); err != nil || ex.Status != client.StatusCompleted {
		t.Fatalf("hello: %+v, %v", ex, err)
	}
	// The tenant's engine: 3 task slots, 5 read connections and a writer.
	prom, err := c.PrometheusMetrics(ctx)
	if err != nil || !regexp.MustCompile(`(?m)^cloacina_task_slots 3$`).MatchString(prom) ||
		!regexp.MustCompile(`(?m)^cloacina_db_connections\{state="max"\} 6$`).MatchString(prom) {
		t.Errorf("/metrics: %v\n%s%s", err, grepLines(prom, "cloacina_task_slots"), grepLines(prom, "cloacina_db_connections"))
	}
	stopWithin(t, p)

	// The duration form: etl's steps pause 100ms, longer than 50ms.
	p2 := startServe(t, t.TempDir(), []string{"CLOACINA_ADMIN_KEY=" + testAdminKey, "CLOACINA_TASK_TIMEOUT=50ms"})
	c2 := client.New(p2.url, client.WithAPIKey(testAdminKey))
	if _, err := c2.CreateTenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	ex, err := c2.StartExecution(ctx, "acme", client.StartRequest{Workflow: "etl", Wait: 20 * time.Second})
	if err != nil || ex.Status != client.StatusFailed || len(ex.Tasks) == 0 || ex.Tasks[0].Status != client.TaskFailed ||
		!strings.Contains(ex.Tasks[0].Error, "deadline exceeded") || ex.Tasks[0].DurationMS > 1000 {
		t.Errorf("etl with a 50ms task timeout: %+v, %v; want extract Failed by its deadline", ex, err)
	}
	stopWithin(t, p2)
}
