package store_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina/internal/store"
	"github.com/google/uuid"
)

// Metrics is read at every scrape: on a tenant with a long history its
// task statement must read the ready and running tasks through their
// partial indexes, and find the oldest runnable task by walking the
// ready-task index, not read the whole tasks table. The statistics are
// fresh (ANALYZE) and sequential scans allowed: this is the plan a scrape
// gets.
func TestPostgresMetricsPlanUsesIndexes(t *testing.T) {
	ctx := openCtx(t)
	u := postgresURL(t)
	s := openPG(t, u, "big")
	const n = 20000
	now := time.Now()
	var execs []*store.Execution
	var tasks []*store.Task
	for i := range n {
		e := &store.Execution{ID: uuid.Must(uuid.NewV7()).String(), WorkflowName: "wf", WorkflowVersion: "v", Status: "Completed",
			Input: []byte(`{}`), CreatedAt: now}
		status := "Completed"
		switch {
		case i%1000 == 0:
			e.Status, status = "Running", "Ready"
		case i%1000 == 1:
			e.Status, status = "Paused", "Ready"
		case i%1000 == 2:
			e.Status, status = "Running", "Running"
		}
		execs = append(execs, e)
		tasks = append(tasks, &store.Task{ExecutionID: e.ID, WorkflowName: "wf", Name: "t", Status: status, ReadyAt: now})
	}
	if err := s.Write(ctx, func(tx store.Tx) error { return tx.InsertExecutions(ctx, execs, tasks) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Analyze(ctx); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", u)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "EXPLAIN "+store.MetricsTasksQuery(s), now.UnixMicro())
	if err != nil {
		t.Fatal(err)
	}
	var plan []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, line)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	p := strings.Join(plan, "\n")
	for _, bad := range []string{"Seq Scan on tasks", "Seq Scan on executions"} {
		if strings.Contains(p, bad) {
			t.Errorf("the metrics statement reads a whole table (%s):\n%s", bad, p)
		}
	}
	for _, idx := range []string{"tasks_ready_idx", "tasks_running_idx"} {
		if !strings.Contains(p, idx) {
			t.Errorf("the metrics statement does not use %s:\n%s", idx, p)
		}
	}
	m, err := s.Metrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if m.ReadyTasks != 2*n/1000 || m.RunningTasks != n/1000 || m.OldestReadyTask.IsZero() {
		t.Errorf("Metrics: %d ready, %d running, oldest %v; want %d, %d, set", m.ReadyTasks, m.RunningTasks, m.OldestReadyTask, 2*n/1000, n/1000)
	}
}
