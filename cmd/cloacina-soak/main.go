// Command cloacina-soak runs Cloacina workers as separate processes, kills
// them at random and checks that no work is lost or run again once it
// completed.
//
// It has three modes:
//
//	-mode worker   a worker process: a runner with the fault-test workflows
//	               (internal/faulttest) whose chain tasks record every
//	               completed run in a ledger file. SIGTERM or SIGINT shuts
//	               the runner down (tasks still running after
//	               -shutdown-timeout are released) and exits 0. It prints
//	               "READY worker=ID pid=PID" once its runner is started.
//	-mode produce  starts -executions executions of -workflow and prints
//	               "EXEC KEY ID" per execution; with -wait it then waits until
//	               none is active and prints a report of the database and the
//	               ledger.
//	-mode soak     starts -workers worker processes and a producer (-rate
//	               executions/s of the chain workflow) for -duration, kills a
//	               random worker with SIGKILL about every -kill-every and
//	               restarts it (under the same worker id or, half of the time,
//	               a new one), optionally restarts PostgreSQL with
//	               -pg-restart-cmd every -pg-restart-every, then waits up to
//	               -drain-timeout for the backlog to drain, stops the workers
//	               with SIGTERM and prints its figures, the last line being
//	               "SOAK_RESULT {json}". It exits 1 if an execution was lost or
//	               a task ran again after it completed (or another invariant
//	               broke, see the output).
//
// Examples:
//
//	go run ./cmd/cloacina-soak -mode soak -db sqlite:///tmp/soak/soak.db -duration 2m
//	go run ./cmd/cloacina-soak -mode soak -db 'postgres://user:pw@127.0.0.1:5432/soak?sslmode=disable' -duration 2m
//
// The database URL may also be given in the environment as
// CLOACINA_SOAK_DB, which keeps a password off the command line; the soak
// mode passes it to its workers that way.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/internal/faulttest"
)

// envDB names the environment variable holding the default database URL.
const envDB = "CLOACINA_SOAK_DB"

// crashCode is the exit code of a worker killed by the poison task.
const crashCode = 3

type config struct {
	db              string
	mode            string
	workerID        string
	workflows       string
	maxTasks        int
	heartbeat       time.Duration
	stale           time.Duration
	maxRecoveries   int
	poll            time.Duration
	sleepMin        time.Duration
	sleepMax        time.Duration
	ledger          string
	shutdownTimeout time.Duration
	logLevel        string

	workflow  string
	execs     int
	keyPrefix string
	wait      bool

	duration       time.Duration
	workers        int
	rate           float64
	killEvery      time.Duration
	sameIDRatio    float64
	drainTimeout   time.Duration
	poison         int
	pgRestartCmd   string
	pgRestartEvery time.Duration
	logDir         string
	seed           uint64
}

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	var c config
	fs := flag.NewFlagSet("cloacina-soak", flag.ContinueOnError)
	defDB := os.Getenv(envDB)
	if defDB == "" {
		defDB = "sqlite://cloacina-data/soak.db"
	}
	fs.StringVar(&c.db, "db", defDB, "database URL: sqlite://PATH or postgres://... (default $"+envDB+")")
	fs.StringVar(&c.mode, "mode", "soak", "worker, produce or soak")
	fs.StringVar(&c.workerID, "worker-id", "", "worker: the runner's WorkerID (default: a random id)")
	fs.StringVar(&c.workflows, "workflows", faulttest.ChainWorkflow, "worker: comma-separated workflows to run: chain, poison")
	fs.IntVar(&c.maxTasks, "max-tasks", 4, "worker: MaxConcurrentTasks")
	fs.DurationVar(&c.heartbeat, "heartbeat", time.Second, "worker: HeartbeatInterval (0: the engine's default)")
	fs.DurationVar(&c.stale, "stale", 5*time.Second, "worker: StaleClaimAfter (0: the engine's default)")
	fs.IntVar(&c.maxRecoveries, "max-recoveries", 0, "worker: MaxRecoveries (0: the engine's default)")
	fs.DurationVar(&c.poll, "poll", 250*time.Millisecond, "worker: PollInterval")
	fs.DurationVar(&c.sleepMin, "sleep-min", 20*time.Millisecond, "worker: shortest chain task")
	fs.DurationVar(&c.sleepMax, "sleep-max", 200*time.Millisecond, "worker: longest chain task")
	fs.StringVar(&c.ledger, "ledger", "", "ledger file of completed runs (worker: none when empty; soak: default LOGDIR/ledger.jsonl)")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 10*time.Second, "worker: how long SIGTERM waits for running tasks before releasing them")
	fs.StringVar(&c.logLevel, "log-level", "warn", "log level: debug, info, warn, error")

	fs.StringVar(&c.workflow, "workflow", faulttest.ChainWorkflow, "produce: the workflow to start")
	fs.IntVar(&c.execs, "executions", 0, "produce: executions to start (0: 40); soak: the most to start (0: no limit)")
	fs.StringVar(&c.keyPrefix, "key-prefix", "", "produce: prefix of the execution keys (default: unique per run)")
	fs.BoolVar(&c.wait, "wait", false, "produce: wait until no execution is active, then report")

	fs.DurationVar(&c.duration, "duration", 2*time.Minute, "soak: how long to produce and kill")
	fs.IntVar(&c.workers, "workers", 3, "soak: worker processes")
	fs.Float64Var(&c.rate, "rate", 15, "soak: chain executions started per second")
	fs.DurationVar(&c.killEvery, "kill-every", 3*time.Second, "soak: mean time between two SIGKILLs (0: no kills)")
	fs.Float64Var(&c.sameIDRatio, "same-id-ratio", 0.5, "soak: share of restarts under the killed worker's id (the others get a new id)")
	fs.DurationVar(&c.drainTimeout, "drain-timeout", 90*time.Second, "soak, produce -wait: how long to wait for the backlog to drain")
	fs.IntVar(&c.poison, "poison", 0, "soak: poison executions to start at the beginning (each crashes workers until abandoned)")
	fs.StringVar(&c.pgRestartCmd, "pg-restart-cmd", "", "soak: shell command restarting PostgreSQL, run every -pg-restart-every")
	fs.DurationVar(&c.pgRestartEvery, "pg-restart-every", 30*time.Second, "soak: period of -pg-restart-cmd")
	fs.StringVar(&c.logDir, "logdir", "", "soak: folder for worker logs and the ledger (default: a new temporary folder)")
	fs.Uint64Var(&c.seed, "seed", 0, "soak: random seed (0: from the clock)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "cloacina-soak: unexpected arguments %q\n", fs.Args())
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "cloacina-soak: -log-level: %v\n", err)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	switch c.mode {
	case "worker":
		return worker(c, logger)
	case "produce":
		return produce(c, logger)
	case "soak":
		return soak(c, logger)
	}
	fmt.Fprintf(os.Stderr, "cloacina-soak: unknown -mode %q (want worker, produce or soak)\n", c.mode)
	return 2
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// worker runs a runner until SIGTERM or SIGINT.
func worker(c config, logger *slog.Logger) int {
	// Catch the signals before the runner exists, so that an early SIGTERM
	// still shuts it down cleanly.
	sigCtx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if c.workerID == "" {
		// The ledger records the id, so choose it here rather than in the
		// engine.
		c.workerID = fmt.Sprintf("worker-%d-%04x", os.Getpid(), rand.N(1<<16))
	}
	b := faulttest.Bodies{MinSleep: c.sleepMin, MaxSleep: c.sleepMax, Crash: func() { os.Exit(crashCode) }}
	if c.ledger != "" {
		l, err := faulttest.OpenLedger(c.ledger, c.workerID)
		if err != nil {
			logger.Error("opening the ledger", "err", err)
			return 1
		}
		defer l.Close()
		b.Ledger = l
	}
	wfs, err := faulttest.Workflows(b, splitList(c.workflows)...)
	if err != nil {
		logger.Error("building the workflows", "err", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := cloacina.NewRunner(ctx, c.db,
		cloacina.WithWorkflows(wfs...),
		cloacina.WithWorkerID(c.workerID),
		cloacina.WithMaxConcurrentTasks(c.maxTasks),
		cloacina.WithHeartbeat(c.heartbeat, c.stale),
		cloacina.WithMaxRecoveries(c.maxRecoveries),
		cloacina.WithPollInterval(c.poll),
		cloacina.WithLogger(logger))
	if err != nil {
		logger.Error("starting the runner", "db", cloacina.RedactURL(c.db), "err", err)
		return 1
	}
	fmt.Printf("%s worker=%s pid=%d\n", faulttest.ReadyLine, r.WorkerID(), os.Getpid())
	<-sigCtx.Done()
	logger.Info("shutting down", "worker", r.WorkerID())
	sctx, scancel := context.WithTimeout(context.Background(), c.shutdownTimeout)
	defer scancel()
	if err := r.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		logger.Error("shutdown", "err", err)
		return 1
	}
	return 0
}

// produce starts executions and optionally waits for them.
func produce(c config, logger *slog.Logger) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	r, err := faulttest.OpenObserver(ctx, c.db, logger)
	if err != nil {
		logger.Error("starting the producer", "db", cloacina.RedactURL(c.db), "err", err)
		return 1
	}
	defer r.Shutdown(context.Background())
	n := c.execs
	if n == 0 {
		n = 40
	}
	prefix := c.keyPrefix
	if prefix == "" {
		prefix = fmt.Sprintf("p%d-%d", os.Getpid(), time.Now().UnixNano())
	}
	keys, err := faulttest.Produce(ctx, r, c.workflow, prefix, n)
	for i := range len(keys) {
		k := fmt.Sprintf("%s-%d", prefix, i)
		fmt.Printf("EXEC %s %s\n", k, keys[k])
	}
	if err != nil {
		logger.Error("starting executions", "started", len(keys), "err", err)
		return 1
	}
	fmt.Printf("PRODUCED %d\n", len(keys))
	if !c.wait {
		return 0
	}
	wctx, cancel := context.WithTimeout(ctx, c.drainTimeout)
	defer cancel()
	if err := faulttest.WaitIdle(wctx, r, 200*time.Millisecond); err != nil {
		logger.Error("waiting for the executions", "err", err)
		return 1
	}
	if c.ledger == "" {
		return 0
	}
	rep, err := faulttest.Inspect(ctx, r, c.ledger, keys, nil)
	if err != nil {
		logger.Error("inspecting", "err", err)
		return 1
	}
	fmt.Println(rep)
	return 0
}
