package faulttest_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina/internal/faulttest"
	"github.com/cloacina-go/cloacina/internal/pgtest"
)

// BenchmarkWorkers drains a PostgreSQL backlog of chain executions (three
// tasks sleeping 10-30ms each) with one and with two worker processes of
// four task slots each, and reports executions/s. Each iteration starts the
// workers on a fresh database, waits until they are ready, then times
// enqueueing the backlog and working it down. The backlog size is
// CLOACINA_BENCH_WORKERS_BACKLOG (default 300).
//
//	go test -run '^$' -bench BenchmarkWorkers -benchtime 3x ./internal/faulttest/
func BenchmarkWorkers(b *testing.B) {
	n := 300
	if v, err := strconv.Atoi(os.Getenv("CLOACINA_BENCH_WORKERS_BACKLOG")); err == nil && v > 0 {
		n = v
	}
	srv := pgtest.Shared(b)
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			var total time.Duration
			for b.Loop() {
				total += drainBacklog(b, srv, workers, n)
			}
			rate := float64(n*b.N) / total.Seconds()
			b.ReportMetric(rate, "executions/s")
			b.Logf("%d worker process(es): %d executions in %v: %.1f executions/s", workers, n*b.N, total.Round(time.Millisecond), rate)
		})
	}
}

// drainBacklog runs one iteration of BenchmarkWorkers and returns the time
// from enqueueing to the last execution finished. It stops the benchmark
// timer for the setup and teardown.
func drainBacklog(b *testing.B, srv *pgtest.Server, workers, n int) time.Duration {
	b.StopTimer()
	defer b.StartTimer()
	url := srv.NewDatabase(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	h := newHarness(b, ctx, url)
	var ws []*faulttest.Process
	for i := range workers {
		ws = append(ws, h.worker(fmt.Sprintf("bench-w%d", i+1), "-sleep-min", "10ms", "-sleep-max", "30ms", "-max-tasks", "4"))
	}
	b.StartTimer()
	start := time.Now()
	keys := h.produce(faulttest.ChainWorkflow, n)
	h.waitIdle(10 * time.Minute)
	took := time.Since(start)
	b.StopTimer()
	for _, w := range ws {
		h.stop(w)
	}
	rep := h.inspect(keys)
	if rep.Completed != n {
		b.Fatalf("%d of %d executions completed", rep.Completed, n)
	}
	return took
}
