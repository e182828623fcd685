package cloacina_test

import (
	"context"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina"
)

// TestCancelRightAfterStart cancels executions as soon as they start, so
// that some cancels land between a task's claim and its launch: every task
// must still stop at once, not at the next heartbeat (10s).
func TestCancelRightAfterStart(t *testing.T) {
	t.Parallel()
	wf := cloacina.NewWorkflow("block").
		Task("b", func(ctx context.Context, _ *cloacina.Context) error { <-ctx.Done(); return ctx.Err() }).
		MustBuild()
	r := newRunner(t, []*cloacina.Workflow{wf}, cloacina.WithMaxConcurrentTasks(64))
	ctx := testCtx(t, 30*time.Second)
	for range 50 {
		h, err := r.ExecuteAsync(ctx, "block", nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Cancel(ctx); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(3 * time.Second)
	for r.Engine().Stats().RunningTasks > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d tasks of cancelled executions still run 3s after the cancels", r.Engine().Stats().RunningTasks)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
