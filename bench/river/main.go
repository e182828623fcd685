// Command river measures River, the Go PostgreSQL job queue, on the
// burn-down that BenchmarkPostgresBurnDown runs on Cloacina: enqueue N
// no-op jobs, then work them down with one client, and print jobs/s for
// the work-down alone. It is a separate module, so that River is no
// dependency of Cloacina; run it beside the benchmark, on the same server,
// to compare the two at the same moment:
//
//	go run . -database-url postgres://... -n 200000
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

type noopArgs struct{}

func (noopArgs) Kind() string { return "noop" }

type noopWorker struct {
	river.WorkerDefaults[noopArgs]
}

func (noopWorker) Work(context.Context, *river.Job[noopArgs]) error { return nil }

func main() {
	url := flag.String("database-url", os.Getenv("DATABASE_URL"), "PostgreSQL URL (a database of its own: River's tables go in public)")
	n := flag.Int("n", 200_000, "jobs")
	// River's own bench command tunes these for throughput; the defaults
	// here are its settings.
	workers := flag.Int("max-workers", 2000, "River's MaxWorkers")
	cooldown := flag.Duration("fetch-cooldown", 2*time.Millisecond, "River's FetchCooldown")
	poll := flag.Duration("fetch-poll-interval", 20*time.Millisecond, "River's FetchPollInterval")
	flag.Parse()
	if err := run(context.Background(), *url, *n, &river.Config{
		FetchCooldown:     *cooldown,
		FetchPollInterval: *poll,
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: *workers}},
	}); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, url string, n int, cfg *river.Config) error {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	driver := riverpgxv5.New(pool)
	migrator, err := rivermigrate.New(driver, nil)
	if err != nil {
		return err
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("migrating: %w", err)
	}
	ws := river.NewWorkers()
	river.AddWorker(ws, &noopWorker{})
	cfg.Workers = ws
	client, err := river.NewClient(driver, cfg)
	if err != nil {
		return err
	}
	start := time.Now()
	batch := make([]river.InsertManyParams, 0, 5000)
	for done := 0; done < n; done += len(batch) {
		batch = batch[:0]
		for range min(5000, n-done) {
			batch = append(batch, river.InsertManyParams{Args: noopArgs{}})
		}
		if _, err := client.InsertManyFast(ctx, batch); err != nil {
			return fmt.Errorf("inserting: %w", err)
		}
	}
	enqueue := time.Since(start)
	// A buffer for every job: events that overflow it would be dropped.
	events, cancel := client.SubscribeConfig(&river.SubscribeConfig{Kinds: []river.EventKind{river.EventKindJobCompleted}, ChanSize: n})
	defer cancel()
	start = time.Now()
	cpu0, cpuOK := busyCPU()
	if err := client.Start(ctx); err != nil {
		return err
	}
	for got := 0; got < n; got++ {
		select {
		case <-events:
		case <-time.After(5 * time.Minute):
			return fmt.Errorf("burn-down stalled at %d of %d jobs", got, n)
		}
	}
	work := time.Since(start)
	cpu1, cpuOK1 := busyCPU()
	if err := client.Stop(ctx); err != nil {
		return err
	}
	fmt.Printf("river: %d jobs, enqueued %.0f/s, worked down %.0f jobs/s", n, float64(n)/enqueue.Seconds(), float64(n)/work.Seconds())
	if cpuOK && cpuOK1 {
		fmt.Printf(", %.1f cpu-us/job", float64((cpu1-cpu0).Microseconds())/float64(n))
	}
	fmt.Println()
	return nil
}

// busyCPU returns the whole machine's busy CPU time from /proc/stat (this
// process's and the server's together), as the Cloacina benchmarks count
// it; ok is false where /proc/stat cannot be read.
func busyCPU() (busy time.Duration, ok bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, false
	}
	var ticks int64
	for i, v := range f[1:8] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, false
		}
		if i != 3 && i != 4 { // idle and iowait
			ticks += n
		}
	}
	const userHZ = 100 // the kernel's USER_HZ on Linux
	return time.Duration(ticks) * time.Second / userHZ, true
}
