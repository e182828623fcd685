package cloacina_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/internal/pgtest"
	_ "github.com/jackc/pgx/v5/stdlib"
)

// benchEnvInt reads a benchmark size from the environment, so CI can run a
// short version of the big benchmarks.
func benchEnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkPostgresBurnDown enqueues CLOACINA_BENCH_BURNDOWN (default
// 200,000) one-task no-op executions with ExecuteMany through an
// enqueue-only runner, then works them down with one runner and reports
// executions/s for the work-down alone: with the full event log
// (events=all, the default) and with EventLogExceptions, which writes no
// event for a plain success (as a job queue keeps none).
func BenchmarkPostgresBurnDown(b *testing.B) {
	n := benchEnvInt("CLOACINA_BENCH_BURNDOWN", 200_000)
	srv := pgtest.Start(b)
	for _, log := range []cloacina.EventLog{cloacina.EventLogAll, cloacina.EventLogExceptions} {
		b.Run("events="+log.String(), func(b *testing.B) {
			url := srv.NewDatabase(b)
			for b.Loop() {
				burnDown(b, url, n, cloacina.WithEventLog(log))
			}
		})
	}
}

func burnDown(b *testing.B, url string, n int, opts ...cloacina.Option) {
	ctx := context.Background()
	wf := cloacina.NewWorkflow("single").Task("t", noop).MustBuild()
	opts = append(opts, cloacina.WithWorkflows(wf), cloacina.WithLogger(discardLogger))
	producer, err := cloacina.NewRunner(ctx, url, append(opts, cloacina.WithEnqueueOnly())...)
	if err != nil {
		b.Fatal(err)
	}
	inputs := make([]any, 5000)
	start := time.Now()
	for done := 0; done < n; done += len(inputs) {
		if _, err := producer.ExecuteMany(ctx, "single", inputs[:min(len(inputs), n-done)]); err != nil {
			b.Fatal(err)
		}
	}
	enqueue := time.Since(start)
	if err := producer.Shutdown(ctx); err != nil {
		b.Fatal(err)
	}
	// Completions are counted by an observer, not by polling the
	// database, so that watching costs the burn-down nothing.
	var completed, failed atomic.Int64
	done := make(chan struct{})
	obs := &cloacina.Observer{ExecutionFinished: func(o cloacina.ExecutionObservation) {
		if o.Status != cloacina.ExecutionCompleted {
			failed.Add(1)
		}
		if completed.Add(1) == int64(n) {
			close(done)
		}
	}}
	start = time.Now()
	cpu0, cpuOK := busyCPU()
	// 2,000 task slots: what River's bench command gives its workers, so
	// that bench/river compares like with like.
	worker, err := cloacina.NewRunner(ctx, url, append(opts, cloacina.WithMaxConcurrentTasks(2000),
		cloacina.WithDBPoolSize(20), cloacina.WithObserver(obs))...)
	if err != nil {
		b.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Minute):
		b.Fatalf("burn-down did not finish: %d of %d executions", completed.Load(), n)
	}
	work := time.Since(start)
	reportCPU(b, cpu0, cpuOK, n, "exec")
	_ = worker.Shutdown(ctx)
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d executions did not complete", f)
	}
	b.ReportMetric(float64(n)/enqueue.Seconds(), "enqueued/s")
	b.ReportMetric(float64(n)/work.Seconds(), "executions/s")
}

// BenchmarkPostgresThroughput runs the shapes of BenchmarkThroughput on
// PostgreSQL with 32 executions in flight (64 task slots), and with 512 in
// flight (1,024 slots): a backlog, as a busy service has.
func BenchmarkPostgresThroughput(b *testing.B) {
	srv := pgtest.Start(b)
	for _, load := range []struct{ conc, slots int }{{32, 64}, {512, 1024}} {
		for _, wf := range benchShapes() {
			b.Run(fmt.Sprintf("%s/conc=%d", wf.Name(), load.conc), func(b *testing.B) {
				url := srv.NewDatabase(b)
				r, err := cloacina.NewRunner(context.Background(), url, cloacina.WithWorkflows(benchShapes()...),
					cloacina.WithMaxConcurrentTasks(load.slots), cloacina.WithDBPoolSize(20), cloacina.WithLogger(discardLogger))
				if err != nil {
					b.Fatal(err)
				}
				defer r.Shutdown(context.Background())
				runThroughput(b, r, wf, load.conc)
			})
		}
	}
}

// BenchmarkPostgresNoisyNeighbour measures a quiet tenant's one-task
// workflow latency (p50/p99) while a noisy tenant on the same engine has
// CLOACINA_BENCH_NOISY (default 10,000) queued tasks that each take 1ms.
func BenchmarkPostgresNoisyNeighbour(b *testing.B) {
	noisyN := benchEnvInt("CLOACINA_BENCH_NOISY", 10_000)
	srv := pgtest.Start(b)
	url := srv.NewDatabase(b)
	ctx := context.Background()
	slow := cloacina.NewWorkflow("slow").Task("t", func(ctx context.Context, c *cloacina.Context) error {
		time.Sleep(time.Millisecond)
		return nil
	}).MustBuild()
	quick := cloacina.NewWorkflow("single").Task("t", noop).MustBuild()
	eng, err := cloacina.NewEngine(ctx, url, cloacina.WithWorkflows(slow, quick), cloacina.WithMaxConcurrentTasks(16),
		cloacina.WithDBPoolSize(19), cloacina.WithLogger(discardLogger))
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Shutdown(ctx)
	noisy, err := eng.Runner(ctx, "noisy")
	if err != nil {
		b.Fatal(err)
	}
	quiet, err := eng.Runner(ctx, "quiet")
	if err != nil {
		b.Fatal(err)
	}
	inputs := make([]any, 1000)
	for done := 0; done < noisyN; done += len(inputs) {
		if _, err := noisy.ExecuteMany(ctx, "slow", inputs[:min(len(inputs), noisyN-done)]); err != nil {
			b.Fatal(err)
		}
	}
	var lat []time.Duration
	for b.Loop() {
		start := time.Now()
		res, err := quiet.Execute(ctx, "single", nil)
		if err != nil || res.Status != cloacina.ExecutionCompleted {
			b.Fatalf("quiet execute: %v", err)
		}
		lat = append(lat, time.Since(start))
	}
	m, err := noisy.Metrics(ctx)
	if err != nil {
		b.Fatal(err)
	}
	reportLatency(b, lat)
	b.ReportMetric(float64(m.ReadyTasks), "noisy-ready-at-end")
}

// BenchmarkPostgresManyTenants attaches CLOACINA_BENCH_TENANTS (default
// 1,000) schemas to one engine with a pool of 19 connections (plus one for
// LISTEN), starts one fan-out/fan-in execution in every tenant at once, and
// reports the time until all finished and the most connections the
// database saw from the engine.
func BenchmarkPostgresManyTenants(b *testing.B) {
	tenants := benchEnvInt("CLOACINA_BENCH_TENANTS", 1000)
	srv := pgtest.Start(b)
	url := srv.NewDatabase(b)
	ctx := context.Background()
	for b.Loop() {
		eng, err := cloacina.NewEngine(ctx, url, cloacina.WithWorkflows(benchShapes()...), cloacina.WithMaxConcurrentTasks(64),
			cloacina.WithDBPoolSize(19), cloacina.WithLogger(discardLogger))
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		runners := make([]*cloacina.Runner, tenants)
		for i := range runners {
			if runners[i], err = eng.Runner(ctx, fmt.Sprintf("tenant_%04d", i)); err != nil {
				b.Fatal(err)
			}
		}
		attach := time.Since(start)
		stop := make(chan struct{})
		peak := watchConnections(b, url, stop)
		start = time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, tenants)
		for _, r := range runners {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := r.Execute(ctx, "fanout5", nil)
				if err == nil && res.Status != cloacina.ExecutionCompleted {
					err = fmt.Errorf("status %s", res.Status)
				}
				if err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		el := time.Since(start)
		close(stop)
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		_ = eng.Shutdown(ctx)
		b.ReportMetric(attach.Seconds(), "attach-s")
		b.ReportMetric(el.Seconds(), "run-all-s")
		b.ReportMetric(float64(tenants*5)/el.Seconds(), "tasks/s")
		b.ReportMetric(float64(<-peak), "peak-conns")
	}
}

// watchConnections samples pg_stat_activity for the database until stop
// closes and sends the peak count of other backends.
func watchConnections(b *testing.B, url string, stop chan struct{}) chan int {
	out := make(chan int, 1)
	db, err := sql.Open("pgx", url)
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		defer db.Close()
		peak := 0
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			var n int
			if err := db.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&n); err == nil {
				peak = max(peak, n)
			}
			select {
			case <-stop:
				out <- peak
				return
			case <-t.C:
			}
		}
	}()
	return out
}

// BenchmarkPostgresTenantRole compares a runner on the shared pool with one
// whose every transaction switches to a tenant role (SET LOCAL ROLE): the
// cost of database-enforced isolation without a pool per tenant.
func BenchmarkPostgresTenantRole(b *testing.B) {
	srv := pgtest.Start(b)
	ctx := context.Background()
	for _, mode := range []string{"plain", "role"} {
		b.Run(mode, func(b *testing.B) {
			url := srv.NewDatabase(b)
			opts := []cloacina.Option{cloacina.WithWorkflows(benchShapes()...), cloacina.WithMaxConcurrentTasks(64),
				cloacina.WithDBPoolSize(20), cloacina.WithLogger(discardLogger)}
			if mode == "role" {
				// The schema is made and migrated by the admin; the role gets
				// only what the engine needs in it.
				pre, err := cloacina.NewRunnerWithSchema(ctx, url, "tenant_r", opts...)
				if err != nil {
					b.Fatal(err)
				}
				_ = pre.Shutdown(ctx)
				db, err := sql.Open("pgx", url)
				if err != nil {
					b.Fatal(err)
				}
				for _, q := range []string{
					"DO $$ BEGIN CREATE ROLE bench_tenant_role NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$",
					"GRANT USAGE ON SCHEMA tenant_r TO bench_tenant_role",
					"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA tenant_r TO bench_tenant_role",
					"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA tenant_r TO bench_tenant_role",
				} {
					if _, err := db.ExecContext(ctx, q); err != nil {
						b.Fatalf("%s: %v", q, err)
					}
				}
				db.Close()
				opts = append(opts, cloacina.WithTenantRole("bench_tenant_role"))
			}
			r, err := cloacina.NewRunnerWithSchema(ctx, url, "tenant_r", opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer r.Shutdown(ctx)
			runThroughput(b, r, benchShapes()[2], 32)
		})
	}
}
