package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/internal/faulttest"
	"github.com/cloacina-go/cloacina/internal/store"
	"github.com/google/uuid"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, for PRAGMA integrity_check
)

// ResultPrefix starts the soak's last output line, followed by its figures
// as JSON.
const ResultPrefix = "SOAK_RESULT "

// Summary is what a soak run prints as its last line.
type Summary struct {
	Backend   string  `json:"backend"`
	DurationS float64 `json:"duration_s"`
	DrainS    float64 `json:"drain_s"`
	Workers   int     `json:"workers"`
	// Started counts the executions the producer started (Executions,
	// from the report, those in the database).
	Started        int `json:"started"`
	ProduceErrors  int `json:"produce_errors"`
	Kills          int `json:"kills"`
	RestartsSameID int `json:"restarts_same_id"`
	RestartsNewID  int `json:"restarts_new_id"`
	// PoisonCrashes counts workers that exited with the poison task's
	// code; UnexpectedExits workers that exited otherwise by themselves.
	PoisonCrashes   int `json:"poison_crashes"`
	UnexpectedExits int `json:"unexpected_exits"`
	PGRestarts      int `json:"pg_restarts"`
	PGRestartErrors int `json:"pg_restart_errors"`
	// UncleanShutdowns counts workers that did not exit 0 in time on
	// SIGTERM at the end.
	UncleanShutdowns int `json:"unclean_shutdowns"`
	// ChainFailed counts failed executions of the chain workflow (whose
	// tasks cannot fail).
	ChainFailed int `json:"chain_failed"`
	// IntegrityCheck is the result of PRAGMA integrity_check at the end
	// (SQLite only).
	IntegrityCheck string `json:"integrity_check,omitempty"`
	*faulttest.Report
	OK bool `json:"ok"`
}

type slot struct {
	base string // worker id of the first generation
	gen  int
	id   string
	proc *faulttest.Process
	logs *os.File
}

type soakRun struct {
	c      config
	log    *slog.Logger
	bin    string
	env    []string
	ledger string
	obs    *cloacina.Runner
	rng    *rand.Rand // used by the chaos loop only

	mu     sync.Mutex
	keys   map[string]uuid.UUID
	killed map[int]bool
	slots  []*slot
	sum    Summary
}

func soak(c config, logger *slog.Logger) int {
	if c.workers < 1 {
		fmt.Fprintln(os.Stderr, "cloacina-soak: -workers must be at least 1")
		return 2
	}
	backend := "sqlite"
	if !isSQLite(c.db) {
		backend = "postgres"
	}
	if c.logDir == "" {
		d, err := os.MkdirTemp("", "cloacina-soak-")
		if err != nil {
			logger.Error("creating the log folder", "err", err)
			return 1
		}
		c.logDir = d
	} else if err := os.MkdirAll(c.logDir, 0o755); err != nil {
		logger.Error("creating the log folder", "err", err)
		return 1
	}
	if c.ledger == "" {
		c.ledger = filepath.Join(c.logDir, "ledger.jsonl")
	}
	if c.seed == 0 {
		c.seed = uint64(time.Now().UnixNano())
	}
	bin, err := os.Executable()
	if err != nil {
		logger.Error("finding this program", "err", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	setup, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	obs, err := faulttest.OpenObserver(setup, c.db, logger)
	if err != nil {
		logger.Error("opening the database", "db", cloacina.RedactURL(c.db), "err", err)
		return 1
	}
	defer obs.Shutdown(context.Background())
	s := &soakRun{c: c, log: logger, bin: bin, env: append(os.Environ(), envDB+"="+c.db), ledger: c.ledger, obs: obs,
		rng: rand.New(rand.NewPCG(c.seed, c.seed>>1|1)), keys: map[string]uuid.UUID{}, killed: map[int]bool{}}
	s.sum.Backend, s.sum.Workers = backend, c.workers
	fmt.Printf("soak: %s on %s (%s), %d workers, %.1f executions/s, a kill about every %s, seed %d\n",
		c.duration, backend, cloacina.RedactURL(c.db), c.workers, c.rate, c.killEvery, c.seed)
	fmt.Printf("soak: worker logs and the ledger are in %s\n", c.logDir)
	defer s.closeLogs()

	for i := range c.workers {
		sl := &slot{base: fmt.Sprintf("soak-w%d", i+1)}
		sl.id = sl.base
		s.slots = append(s.slots, sl)
		if err := s.start(sl); err != nil {
			logger.Error("starting a worker", "err", err)
			s.stopAll()
			return 1
		}
	}
	for _, sl := range s.slots {
		if err := sl.proc.WaitReady(setup); err != nil {
			logger.Error("starting a worker", "worker", sl.id, "err", err)
			s.stopAll()
			return 1
		}
	}
	began := time.Now()
	chaos, stopChaos := context.WithTimeout(ctx, c.duration)
	defer stopChaos()
	if c.poison > 0 {
		keys, err := faulttest.Produce(chaos, obs, faulttest.PoisonWorkflow, "poison", c.poison)
		s.addKeys(keys, err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { s.producer(chaos) })
	if c.pgRestartCmd != "" && c.pgRestartEvery > 0 {
		wg.Go(func() { s.pgRestarter(chaos) })
	}
	s.chaos(chaos)
	wg.Wait()
	s.sum.DurationS = time.Since(began).Seconds()

	fmt.Printf("soak: producing and killing stopped after %.1fs; draining (up to %s)\n", s.sum.DurationS, c.drainTimeout)
	drainStart := time.Now()
	drainCtx, cancelDrain := context.WithTimeout(context.Background(), c.drainTimeout)
	drained := make(chan error, 1)
	go func() { drained <- faulttest.WaitIdle(drainCtx, obs, 250*time.Millisecond) }()
	tick := time.NewTicker(250 * time.Millisecond)
wait:
	for {
		select {
		case err := <-drained:
			if err != nil {
				fmt.Printf("soak: the backlog did not drain: %v\n", err)
			}
			break wait
		case <-tick.C:
			s.supervise()
		}
	}
	tick.Stop()
	cancelDrain()
	s.sum.DrainS = time.Since(drainStart).Seconds()
	s.stopAll()

	ictx, icancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer icancel()
	s.mu.Lock()
	keys, killed := s.keys, s.killed
	s.mu.Unlock()
	rep, err := faulttest.Inspect(ictx, obs, s.ledger, keys, killed)
	if err != nil {
		logger.Error("inspecting the database", "err", err)
		return 1
	}
	s.sum.Report = rep
	for _, res := range rep.Results {
		if res.WorkflowName == faulttest.ChainWorkflow && res.Status == cloacina.ExecutionFailed {
			s.sum.ChainFailed++
		}
	}
	if backend == "sqlite" {
		s.sum.IntegrityCheck = integrityCheck(ictx, c.db)
	}
	s.sum.OK = rep.Lost == 0 && rep.Duplicates == 0 && rep.Missing == 0 && rep.Concurrent == 0 &&
		rep.StrayRuns == 0 && s.sum.ChainFailed == 0 && s.sum.UncleanShutdowns == 0 &&
		(backend != "sqlite" || s.sum.IntegrityCheck == "ok")
	s.print()
	if !s.sum.OK {
		return 1
	}
	return 0
}

func isSQLite(url string) bool { return strings.HasPrefix(url, "sqlite://") }

// integrityCheck runs PRAGMA integrity_check on the SQLite database at url
// and returns its rows joined ("ok" when sound), or the error.
func integrityCheck(ctx context.Context, url string) string {
	path, err := store.SQLitePath(url)
	if err != nil {
		return err.Error()
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return err.Error()
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return err.Error()
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return err.Error()
		}
		out = append(out, line)
	}
	if err := rows.Err(); err != nil {
		return err.Error()
	}
	return strings.Join(out, "; ")
}

func (s *soakRun) workerArgs(id string) []string {
	c := s.c
	wfs := faulttest.ChainWorkflow
	if c.poison > 0 {
		wfs += "," + faulttest.PoisonWorkflow
	}
	return []string{"-mode", "worker", "-worker-id", id, "-workflows", wfs,
		"-max-tasks", strconv.Itoa(c.maxTasks), "-heartbeat", c.heartbeat.String(), "-stale", c.stale.String(),
		"-max-recoveries", strconv.Itoa(c.maxRecoveries), "-poll", c.poll.String(),
		"-sleep-min", c.sleepMin.String(), "-sleep-max", c.sleepMax.String(),
		"-ledger", s.ledger, "-shutdown-timeout", c.shutdownTimeout.String(), "-log-level", c.logLevel}
}

// start starts sl's worker under sl.id. Must not be called with mu held.
func (s *soakRun) start(sl *slot) error {
	if sl.logs == nil {
		f, err := os.OpenFile(filepath.Join(s.c.logDir, sl.base+".log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		sl.logs = f
	}
	fmt.Fprintf(sl.logs, "---- %s starting %s\n", time.Now().Format(time.RFC3339Nano), sl.id)
	p, err := faulttest.StartProcess(s.bin, s.workerArgs(sl.id), s.env, sl.logs)
	if err != nil {
		return err
	}
	s.mu.Lock()
	sl.proc = p
	s.mu.Unlock()
	return nil
}

func (s *soakRun) addKeys(keys map[string]uuid.UUID, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, id := range keys {
		s.keys[k] = id
	}
	s.sum.Started += len(keys)
	if err != nil {
		s.sum.ProduceErrors++
		s.log.Warn("starting executions", "err", err)
	}
}

// producer starts chain executions at the configured rate until ctx ends.
func (s *soakRun) producer(ctx context.Context) {
	began := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	produced, batch := 0, 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		due := int(s.c.rate * time.Since(began).Seconds())
		if s.c.execs > 0 {
			due = min(due, s.c.execs)
		}
		if due <= produced {
			continue
		}
		bctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		keys, err := faulttest.Produce(bctx, s.obs, faulttest.ChainWorkflow, fmt.Sprintf("b%d", batch), due-produced)
		cancel()
		batch++
		s.addKeys(keys, err)
		// Count a failed batch as produced: the rate stays the rate offered.
		produced = due
	}
}

// pgRestarter runs the PostgreSQL restart command periodically.
func (s *soakRun) pgRestarter(ctx context.Context) {
	f, err := os.OpenFile(filepath.Join(s.c.logDir, "pg-restart.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		s.log.Error("opening the restart log", "err", err)
		return
	}
	defer f.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(s.c.pgRestartEvery):
		}
		fmt.Fprintf(f, "---- %s restarting\n", time.Now().Format(time.RFC3339Nano))
		rctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := exec.CommandContext(rctx, "/bin/sh", "-c", s.c.pgRestartCmd)
		cmd.Stdout, cmd.Stderr = f, f
		err := cmd.Run()
		cancel()
		s.mu.Lock()
		if err != nil {
			s.sum.PGRestartErrors++
			fmt.Fprintf(f, "restart failed: %v\n", err)
		} else {
			s.sum.PGRestarts++
		}
		s.mu.Unlock()
	}
}

// chaos kills a random worker about every killEvery until ctx ends, and
// restarts workers that exited.
func (s *soakRun) chaos(ctx context.Context) {
	next := s.nextKill()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		s.supervise()
		if next.IsZero() || time.Now().Before(next) {
			continue
		}
		next = s.nextKill()
		sl := s.slots[s.rng.IntN(len(s.slots))]
		if sl.proc.Exited() {
			continue
		}
		pid := sl.proc.PID()
		sl.proc.Kill()
		s.mu.Lock()
		s.killed[pid] = true
		s.sum.Kills++
		same := s.rng.Float64() < s.c.sameIDRatio
		if same {
			s.sum.RestartsSameID++
		} else {
			s.sum.RestartsNewID++
			sl.gen++
			sl.id = fmt.Sprintf("%s-g%d", sl.base, sl.gen)
		}
		s.mu.Unlock()
		fmt.Fprintf(sl.logs, "---- %s killed pid %d (SIGKILL)\n", time.Now().Format(time.RFC3339Nano), pid)
		if err := s.start(sl); err != nil {
			s.log.Error("restarting a worker", "worker", sl.id, "err", err)
		}
	}
}

func (s *soakRun) nextKill() time.Time {
	if s.c.killEvery <= 0 {
		return time.Time{}
	}
	// Uniform in [killEvery/2, 3*killEvery/2].
	d := s.c.killEvery/2 + time.Duration(s.rng.Int64N(int64(s.c.killEvery)+1))
	return time.Now().Add(d)
}

// supervise restarts, under the same id, workers that exited by
// themselves (the poison task, or a failure to start while PostgreSQL
// restarts).
func (s *soakRun) supervise() {
	for _, sl := range s.slots {
		if !sl.proc.Exited() {
			continue
		}
		code := sl.proc.ExitCode()
		s.mu.Lock()
		if code == crashCode {
			s.sum.PoisonCrashes++
		} else {
			s.sum.UnexpectedExits++
		}
		s.mu.Unlock()
		fmt.Fprintf(sl.logs, "---- %s pid %d exited: %s; restarting\n", time.Now().Format(time.RFC3339Nano), sl.proc.PID(), sl.proc.ExitStatus())
		if code != crashCode {
			time.Sleep(200 * time.Millisecond) // do not spin while the database is down
		}
		if err := s.start(sl); err != nil {
			s.log.Error("restarting a worker", "worker", sl.id, "err", err)
		}
	}
}

// stopAll stops every worker with SIGTERM.
func (s *soakRun) stopAll() {
	var wg sync.WaitGroup
	for _, sl := range s.slots {
		if sl.proc == nil {
			continue
		}
		wg.Go(func() {
			if sl.proc.Exited() {
				return
			}
			code, clean := sl.proc.Terminate(s.c.shutdownTimeout + 10*time.Second)
			if code != 0 || !clean {
				s.mu.Lock()
				s.sum.UncleanShutdowns++
				s.mu.Unlock()
				fmt.Fprintf(os.Stderr, "soak: worker %s (pid %d) did not shut down cleanly: %s\n", sl.id, sl.proc.PID(), sl.proc.ExitStatus())
			}
		})
	}
	wg.Wait()
}

func (s *soakRun) closeLogs() {
	for _, sl := range s.slots {
		if sl.logs != nil {
			sl.logs.Close()
		}
	}
}

func (s *soakRun) print() {
	sm := &s.sum
	r := sm.Report
	fmt.Printf("soak: executions started %d (produce errors %d), in the database %d: completed %d, failed %d (chain %d), cancelled %d\n",
		sm.Started, sm.ProduceErrors, r.Executions, r.Completed, r.Failed, sm.ChainFailed, r.Cancelled)
	fmt.Printf("soak: lost %d (not terminal %.0fs after producing stopped)\n", r.Lost, sm.DrainS)
	fmt.Printf("soak: kills %d (restarts under the same id %d, under a new id %d), poison crashes %d, unexpected exits %d, PostgreSQL restarts %d (failed %d), unclean shutdowns %d\n",
		sm.Kills, sm.RestartsSameID, sm.RestartsNewID, sm.PoisonCrashes, sm.UnexpectedExits, sm.PGRestarts, sm.PGRestartErrors, sm.UncleanShutdowns)
	fmt.Printf("soak: tasks completed %d, completed task runs in the ledger %d (torn %d), tasks run more than once %d (by processes never killed %d)\n",
		r.TasksCompleted, r.Runs, r.TornRuns, r.Reruns, r.LiveReruns)
	fmt.Printf("soak: recoveries %d (tasks recovered %d), abandoned %d\n", r.Recoveries, r.RecoveredTasks, r.Abandoned)
	fmt.Printf("soak: duplicates %d (completed runs of a task that began after the database recorded that task Completed)\n", r.Duplicates)
	fmt.Printf("soak: concurrent %d (pairs of completed runs of one task at the same time)\n", r.Concurrent)
	fmt.Printf("soak: missing %d (Completed tasks whose body never completed), stray runs %d (runs of unknown executions)\n", r.Missing, r.StrayRuns)
	if sm.IntegrityCheck != "" {
		fmt.Printf("soak: PRAGMA integrity_check: %s\n", sm.IntegrityCheck)
	}
	for _, p := range r.Problems {
		fmt.Printf("soak: problem: %s\n", p)
	}
	verdict := "OK"
	if !sm.OK {
		verdict = "FAILED"
	}
	fmt.Printf("soak: %s\n", verdict)
	b, err := json.Marshal(sm)
	if err != nil {
		fmt.Printf("%s{\"ok\":false,\"error\":%q}\n", ResultPrefix, err.Error())
		return
	}
	fmt.Printf("%s%s\n", ResultPrefix, b)
}
