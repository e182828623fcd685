package cloacina_test

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/internal/store"
	"github.com/google/uuid"
)

// BenchmarkSchedulingWithHistory shows that a scheduling step does not grow
// with the finished executions kept in the database: it measures Execute of
// a one-task workflow on an empty database and on one holding 100,000
// completed executions (each with its task row).
func BenchmarkSchedulingWithHistory(b *testing.B) {
	for _, history := range []int{0, benchEnvInt("CLOACINA_BENCH_HISTORY", 100_000)} {
		b.Run("completed="+strconv.Itoa(history), func(b *testing.B) {
			ctx := context.Background()
			url := "sqlite://" + filepath.Join(b.TempDir(), "history.db")
			wf := cloacina.NewWorkflow("single").Task("t", noop).MustBuild()
			if history > 0 {
				seedCompleted(b, url, wf, history)
			}
			r, err := cloacina.NewRunner(ctx, url, cloacina.WithWorkflows(wf), cloacina.WithLogger(discardLogger))
			if err != nil {
				b.Fatal(err)
			}
			defer r.Shutdown(ctx)
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for b.Loop() {
				start := time.Now()
				res, err := r.Execute(ctx, "single", nil)
				if err != nil || res.Status != cloacina.ExecutionCompleted {
					b.Fatalf("execute: %v %v", err, res)
				}
				lat = append(lat, time.Since(start))
			}
			reportLatency(b, lat)
		})
	}
}

func seedCompleted(b *testing.B, url string, wf *cloacina.Workflow, n int) {
	b.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{URL: url})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	now := time.Now().Add(-time.Hour)
	const batch = 5000
	for done := 0; done < n; done += batch {
		var execs []*store.Execution
		var tasks []*store.Task
		for i := 0; i < batch && done+i < n; i++ {
			id := uuid.Must(uuid.NewV7()).String()
			execs = append(execs, &store.Execution{ID: id, WorkflowName: wf.Name(), WorkflowVersion: wf.Version(),
				Status: string(cloacina.ExecutionCompleted), Input: []byte(`{"seed":true}`), CreatedAt: now})
			tasks = append(tasks, &store.Task{ExecutionID: id, WorkflowName: wf.Name(), Name: "t", Status: string(cloacina.TaskCompleted)})
		}
		if err := st.Write(ctx, func(tx store.Tx) error { return tx.InsertExecutions(ctx, execs, tasks) }); err != nil {
			b.Fatal(err)
		}
	}
}
