package cloacina_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina"
)

func noop(context.Context, *cloacina.Context) error { return nil }

// benchShapes are the workflow shapes of the original's performance suite.
func benchShapes() []*cloacina.Workflow {
	return []*cloacina.Workflow{
		cloacina.NewWorkflow("single").Task("t", noop).MustBuild(),
		cloacina.NewWorkflow("chain3").
			Task("a", noop).
			Task("b", noop, cloacina.DependsOn("a")).
			Task("c", noop, cloacina.DependsOn("b")).MustBuild(),
		cloacina.NewWorkflow("fanout5").
			Task("start", noop).
			Task("x", noop, cloacina.DependsOn("start")).
			Task("y", noop, cloacina.DependsOn("start")).
			Task("z", noop, cloacina.DependsOn("start")).
			Task("join", noop, cloacina.DependsOn("x", "y", "z")).MustBuild(),
	}
}

func benchRunner(b *testing.B, url string, maxTasks int) *cloacina.Runner {
	b.Helper()
	r, err := cloacina.NewRunner(context.Background(), url,
		cloacina.WithWorkflows(benchShapes()...), cloacina.WithMaxConcurrentTasks(maxTasks))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = r.Shutdown(context.Background()) })
	return r
}

// BenchmarkExecuteLatency measures Execute of a one-task no-op workflow, one
// at a time, and reports p50/p95/p99.
func BenchmarkExecuteLatency(b *testing.B) {
	r := benchRunner(b, "sqlite://"+filepath.Join(b.TempDir(), "bench.db"), 4)
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		res, err := r.Execute(ctx, "single", nil)
		if err != nil {
			b.Fatal(err)
		}
		if res.Status != cloacina.ExecutionCompleted {
			b.Fatalf("status %s", res.Status)
		}
		lat = append(lat, time.Since(start))
	}
	reportLatency(b, lat)
}

func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.95), "p95-ms")
	b.ReportMetric(q(0.99), "p99-ms")
}

// BenchmarkThroughput runs each shape at concurrency 1, 8 and 32 (that many
// executions in flight) and reports workflows/s and tasks/s. The runner has
// 128 task slots, so that no ready task waits for a slot (32 fan-outs run
// up to 96 tasks at once): the figures are the engine's, not the limit's.
func BenchmarkThroughput(b *testing.B) {
	for _, wf := range benchShapes() {
		for _, conc := range []int{1, 8, 32} {
			b.Run(fmt.Sprintf("%s/conc=%d", wf.Name(), conc), func(b *testing.B) {
				r := benchRunner(b, "sqlite://"+filepath.Join(b.TempDir(), "bench.db"), 128)
				runThroughput(b, r, wf, conc)
			})
		}
	}
}

func runThroughput(b *testing.B, r *cloacina.Runner, wf *cloacina.Workflow, conc int) {
	ctx := context.Background()
	var next atomic.Int64
	total := int64(b.N)
	var mu sync.Mutex
	var readyToStart []time.Duration
	b.ResetTimer()
	start := time.Now()
	cpu0, cpuOK := busyCPU()
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= total {
				res, err := r.Execute(ctx, wf.Name(), nil)
				if err != nil {
					b.Error(err)
					return
				}
				if res.Status != cloacina.ExecutionCompleted {
					b.Errorf("status %s", res.Status)
					return
				}
				mu.Lock()
				for _, t := range res.Tasks {
					readyToStart = append(readyToStart, t.StartedAt.Sub(t.ReadyAt))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	reportCPU(b, cpu0, cpuOK, b.N*len(wf.Tasks()), "task")
	slices.Sort(readyToStart)
	if n := len(readyToStart); n > 0 {
		b.ReportMetric(float64(readyToStart[n/2].Microseconds())/1000, "ready-start-p50-ms")
		b.ReportMetric(float64(readyToStart[n*95/100].Microseconds())/1000, "ready-start-p95-ms")
	}
	b.ReportMetric(float64(b.N)/el, "workflows/s")
	b.ReportMetric(float64(b.N*len(wf.Tasks()))/el, "tasks/s")
}

// cpuTimes are the busy CPU time of the machine (every process: this one
// and the database server) and of this process.
type cpuTimes struct{ machine, self time.Duration }

// busyCPU returns the CPU times so far: the machine's from /proc/stat,
// this process's from getrusage; false where there are none.
// Throughput on a shared 2-core machine varies from run to run by 10% or
// more; the CPU an execution costs varies much less, so the benchmarks
// report both, and this process's share apart (cpu-self), which the rest
// of the machine disturbs least.
func busyCPU() (cpuTimes, bool) {
	self, ok := processCPU()
	if !ok {
		return cpuTimes{}, false
	}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return cpuTimes{}, false
	}
	var busy int64
	for i, v := range f[1:8] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return cpuTimes{}, false
		}
		if i != 3 && i != 4 { // idle and iowait
			busy += n
		}
	}
	const userHZ = 100 // the kernel's USER_HZ on Linux
	return cpuTimes{time.Duration(busy) * time.Second / userHZ, self}, true
}

// reportCPU reports the busy CPU time per unit of work since start.
func reportCPU(b *testing.B, start cpuTimes, ok bool, units int, unit string) {
	end, ok2 := busyCPU()
	if ok && ok2 && units > 0 {
		b.ReportMetric(float64((end.machine-start.machine).Microseconds())/float64(units), "cpu-us/"+unit)
		b.ReportMetric(float64((end.self-start.self).Microseconds())/float64(units), "cpu-self-us/"+unit)
	}
}
