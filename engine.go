package cloacina

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/cloacina-go/cloacina/internal/store"
	"github.com/google/uuid"
)

// Engine runs the runners of many tenants of one database over one
// connection pool, one dispatcher and one budget of task slots. On
// PostgreSQL each tenant is a schema: a thousand tenants cost a thousand
// schemas, not a thousand pools or goroutine sets. A tenant with nothing to
// do costs nothing per dispatch round.
//
// Each dispatch round gives the free task slots to the tenants that have
// ready work in fair shares (round-robin, capped by each tenant's
// MaxTenantConcurrentTasks), so a noisy tenant cannot starve a quiet one.
// The dispatcher learns of ready work from this process at once, from other
// processes through PostgreSQL LISTEN/NOTIFY, and as a safety net by
// polling a bounded number of tenants every PollInterval.
//
// [NewRunner] is the one-tenant case: an Engine the Runner owns.
type Engine struct {
	cfg      Config
	db       *store.DB
	log      *slog.Logger
	stableID bool

	wake         chan struct{}
	stop         chan struct{}
	loopDone     chan struct{}
	listenCancel context.CancelFunc
	listenDone   chan struct{}
	workers      sync.WaitGroup

	mu        sync.Mutex
	tenants   map[string]*tenant
	ring      []*tenant // round-robin order
	next      int       // where the next fair share starts
	pollPos   int       // where the next poll sweep starts
	nextPoll  time.Time
	sweepPos  int       // where the next stale-claim sweep starts
	nextSwp   time.Time // next stale-claim sweep
	nextBeat  time.Time // next heartbeat
	inflight  int       // task goroutines running
	closed    bool
	abandoned bool // Shutdown left tasks that ignored cancellation
}

// splitMinQuota is the smallest claim worth a transaction of its own
// (see runJob): below it, one transaction does it all and the tasks it
// readies are claimed at once.
const splitMinQuota = 64

// pollBatch bounds how many tenants one poll sweep looks at.
const pollBatch = 64

// abandonAfter is how long Shutdown waits, after cancelling them, for tasks
// that ignore their context.
const abandonAfter = 5 * time.Second

// tenant is the state of one tenant (schema) attached to an engine. Fields
// after mu's comment are guarded by the engine's mu.
type tenant struct {
	e         *Engine
	name      string
	store     store.Store
	workflows map[string]*Workflow
	wfNames   []string
	cfg       Config // the runner's settings (workflows, limits)

	// Guarded by e.mu.
	creates    []*createReq
	outcomes   []outcome
	inflight   int
	running    map[int64]*runningTask
	waiters    map[string]map[chan struct{}]bool
	hot        bool      // may have claimable tasks now
	sweepDue   bool      // look for stale claims in the next round
	failures   int       // rounds failed in a row
	backoff    time.Time // after a failed round, no round before this
	polled     bool      // made hot by a poll or a notification, not by this process
	due        time.Time // earliest known future ready time; zero: none
	recoverOwn bool      // recover tasks left Running under our WorkerID
	backlog    bool      // the last claim took its whole quota: more is ready
	// created counts the executions this process created since the last
	// ANALYZE it ran for the tenant (at analyzed executions); analyzing: one
	// runs now. See maybeAnalyze.
	created, analyzed int
	analyzing         bool
	// cancelled holds the executions this runner cancelled in the last
	// minute, so that a task claimed before a cancel but launched after it
	// is stopped at once (see launch).
	cancelled map[string]time.Time
	draining  bool
	drained   chan struct{} // closed once draining, idle and flushed
}

// NewEngine connects to the database at databaseURL and starts the
// dispatcher. Attach tenants with [Engine.Runner]. Of opts, Schema is
// ignored; Workflows become every tenant's workflows; MaxConcurrentTasks
// bounds the tasks of all tenants together.
func NewEngine(ctx context.Context, databaseURL string, opts ...Option) (*Engine, error) {
	cfg := Config{DatabaseURL: databaseURL}
	cfg.Apply(opts...)
	return cfg.NewEngine(ctx)
}

// NewEngine connects and starts an engine from c (see [NewEngine]).
func (c Config) NewEngine(ctx context.Context) (*Engine, error) {
	cfg, err := c.withDefaults()
	if err != nil {
		return nil, err
	}
	db, err := store.Connect(ctx, store.Config{URL: cfg.DatabaseURL, PoolSize: cfg.DBPoolSize})
	if err != nil {
		return nil, translateStoreErr(err)
	}
	e := &Engine{
		cfg:      cfg,
		db:       db,
		stableID: cfg.WorkerID != "",
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		loopDone: make(chan struct{}),
		tenants:  map[string]*tenant{},
	}
	if !e.stableID {
		e.cfg.WorkerID = "worker-" + uuid.NewString()[:8]
	}
	e.log = cfg.Logger.With("component", "cloacina", "worker", e.cfg.WorkerID)
	go e.loop()
	if db.Backend() == "postgres" && !cfg.DisableListen {
		lctx, cancel := context.WithCancel(context.Background())
		e.listenCancel, e.listenDone = cancel, make(chan struct{})
		go func() {
			defer close(e.listenDone)
			_ = db.ListenChecked(lctx, cfg.ListenURL, e.notified, e.markAllHot, e.listenUndelivered)
		}()
	}
	return e, nil
}

// Backend is "sqlite" or "postgres".
func (e *Engine) Backend() string { return e.db.Backend() }

// WorkerID returns the identity the engine claims tasks under.
func (e *Engine) WorkerID() string { return e.cfg.WorkerID }

// Runner attaches a tenant and returns its runner. schema names a
// PostgreSQL schema (created and migrated when missing; see the tenant id
// rules on [ErrInvalidTenantID]); "" is the default schema, and the only
// one on SQLite. opts may add workflows for this tenant and set
// MaxTenantConcurrentTasks, TenantRole, RefuseForeignSchema, TaskTimeout and MaxContextBytes; other fields
// are the engine's. A schema has at most one runner per engine: use
// [Runner.Shutdown] to detach it.
func (e *Engine) Runner(ctx context.Context, schema string, opts ...Option) (*Runner, error) {
	cfg := e.cfg
	cfg.Workflows = slices.Clone(e.cfg.Workflows)
	cfg.Apply(opts...)
	cfg.Schema = schema
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	closed, attached := e.closed, e.tenants[schema] != nil
	e.mu.Unlock()
	if closed {
		return nil, ErrRunnerClosed
	}
	if attached {
		return nil, fmt.Errorf("%w: schema %q already has a runner on this engine", ErrInvalidOption, schema)
	}
	st, err := e.db.StoreWith(ctx, schema, store.StoreOptions{Role: cfg.TenantRole, RefuseForeign: cfg.RefuseForeignSchema})
	if err != nil {
		return nil, translateStoreErr(err)
	}
	t := &tenant{
		e: e, name: schema, store: st, cfg: cfg,
		workflows:  map[string]*Workflow{},
		running:    map[int64]*runningTask{},
		waiters:    map[string]map[chan struct{}]bool{},
		hot:        true,
		polled:     true,
		recoverOwn: e.stableID,
		drained:    make(chan struct{}),
	}
	for _, wf := range cfg.Workflows {
		t.workflows[wf.name] = wf
		t.wfNames = append(t.wfNames, wf.name)
	}
	slices.Sort(t.wfNames)
	e.mu.Lock()
	if e.closed || e.tenants[schema] != nil {
		e.mu.Unlock()
		st.Close()
		if e.closed {
			return nil, ErrRunnerClosed
		}
		return nil, fmt.Errorf("%w: schema %q already has a runner on this engine", ErrInvalidOption, schema)
	}
	e.tenants[schema] = t
	e.ring = append(e.ring, t)
	e.mu.Unlock()
	e.signal()
	return &Runner{e: e, t: t}, nil
}

// Shutdown detaches every tenant as [Runner.Shutdown] does, all at once,
// then stops the dispatcher and closes the connection pool.
func (e *Engine) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	ts := slices.Clone(e.ring)
	e.mu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, len(ts))
	for i, t := range ts {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = e.detach(ctx, t) }()
	}
	wg.Wait()
	close(e.stop)
	<-e.loopDone
	if e.listenCancel != nil {
		e.listenCancel()
		<-e.listenDone
	}
	e.mu.Lock()
	abandoned := e.abandoned
	e.mu.Unlock()
	if !abandoned {
		e.workers.Wait()
	}
	errs = append(errs, e.db.Close())
	return errors.Join(errs...)
}

// detach stops a tenant: no new executions or claims, running tasks finish
// until ctx ends and are then interrupted and released, the last results
// are written, and the tenant leaves the engine.
func (e *Engine) detach(ctx context.Context, t *tenant) error {
	e.mu.Lock()
	already := t.draining
	t.draining = true
	pending := t.creates
	t.creates = nil
	e.mu.Unlock()
	for _, c := range pending {
		c.done <- ErrRunnerClosed
	}
	if already {
		<-t.drained
		return nil
	}
	e.signal()
	var interrupted error
	select {
	case <-t.drained:
	case <-ctx.Done():
		e.mu.Lock()
		for _, rt := range t.running {
			rt.cancel(errShutdown)
			interrupted = ctx.Err()
		}
		e.mu.Unlock()
		select {
		case <-t.drained:
		case <-time.After(abandonAfter):
			// A task that ignores its context keeps running; its claim
			// stays Running in the database, to be recovered later.
			e.mu.Lock()
			n := t.inflight
			e.abandoned = true
			if !isClosed(t.drained) {
				close(t.drained)
			}
			e.mu.Unlock()
			e.log.Error("tasks ignored cancellation at shutdown; leaving them to recovery", "schema", t.name, "tasks", n)
			interrupted = fmt.Errorf("%w: %d tasks did not stop", ctx.Err(), n)
		}
	}
	e.mu.Lock()
	delete(e.tenants, t.name)
	if i := slices.Index(e.ring, t); i >= 0 {
		e.ring = slices.Delete(e.ring, i, i+1)
	}
	e.mu.Unlock()
	return errors.Join(interrupted, t.store.Close())
}

func (e *Engine) signal() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// notified handles a ready-work notification from another process.
func (e *Engine) notified(schema, sender string) {
	if sender == e.cfg.WorkerID {
		return
	}
	e.mu.Lock()
	t := e.tenants[schema]
	if t != nil {
		t.hot, t.polled = true, true
	}
	e.mu.Unlock()
	if t != nil {
		e.signal()
	}
}

// listenUndelivered warns that the LISTEN connection did not receive a
// notification sent through the pool (see store.DB.ListenChecked): work
// from other processes is then found by polling alone, up to PollInterval
// late.
func (e *Engine) listenUndelivered() {
	direct := "set it to a direct connection to the server"
	if e.cfg.ListenURL == "" {
		direct = "set it (WithListenURL, Config.ListenURL) to a direct connection to the server"
	}
	e.log.Warn("notifications sent through the pool do not reach the LISTEN connection: "+
		"LISTEN goes through a transaction pooler (PgBouncer in transaction mode) or to another database; "+
		direct+"; until then work from other processes is found by polling",
		"listen_url_set", e.cfg.ListenURL != "", "probe_wait", store.ListenProbeWait)
}

// markAllHot makes every tenant look for work: called when the listener
// (re)connects, since notifications may have been missed.
func (e *Engine) markAllHot() {
	e.mu.Lock()
	for _, t := range e.ring {
		t.hot, t.polled = true, true
	}
	e.mu.Unlock()
	e.signal()
}

// loop is the dispatcher.
func (e *Engine) loop() {
	defer close(e.loopDone)
	ctx := context.Background()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-e.wake:
		case <-timer.C:
		case <-e.stop:
			return
		}
		wait := e.round(ctx)
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}

// roundJob is one tenant's share of a dispatch round.
type roundJob struct {
	t          *tenant
	creates    []*createReq
	outs       []outcome
	recoverOwn bool
	quota      int
	beat       []int64 // running tasks whose claims to renew
	sweep      bool    // recover tasks whose heartbeat is stale
	// split marks the bookkeeping half of a round whose claims run in a
	// concurrent transaction (see runJob): its own claims are none, so it
	// does not NOTIFY other processes of the tasks it readied, which this
	// process claims in its next round.
	split bool
}

// round runs one dispatch round over the tenants that have something to
// do, and returns how long the dispatcher may sleep.
func (e *Engine) round(ctx context.Context) time.Duration {
	e.mu.Lock()
	// The clock is read under the lock, after every outcome this round
	// takes was recorded: an execution it finishes cannot end before its
	// last task did.
	now := time.Now()
	n := len(e.ring)
	if !now.Before(e.nextPoll) {
		for i := 0; i < min(n, pollBatch); i++ {
			t := e.ring[(e.pollPos+i)%n]
			t.hot, t.polled = true, true
		}
		if n > 0 {
			e.pollPos = (e.pollPos + min(n, pollBatch)) % n
		}
		e.nextPoll = now.Add(e.cfg.PollInterval)
	}
	if !now.Before(e.nextSwp) {
		for i := 0; i < min(n, pollBatch); i++ {
			e.ring[(e.sweepPos+i)%n].sweepDue = true
		}
		if n > 0 {
			e.sweepPos = (e.sweepPos + min(n, pollBatch)) % n
		}
		e.nextSwp = now.Add(e.cfg.StaleClaimAfter / 2)
	}
	beat := !now.Before(e.nextBeat)
	if beat {
		e.nextBeat = now.Add(e.cfg.HeartbeatInterval)
	}
	start := 0
	if n > 0 {
		start = e.next % n
		e.next = (e.next + 1) % n
	}
	order := make([]*tenant, 0, n)
	for i := range n {
		t := e.ring[(start+i)%n]
		if !t.due.IsZero() && !now.Before(t.due) {
			t.hot, t.due = true, time.Time{}
		}
		// New executions and finished tasks make tasks ready in this very
		// round: claim them in it too, rather than one round later.
		if len(t.creates) > 0 || len(t.outcomes) > 0 {
			t.hot = true
		}
		order = append(order, t)
	}
	free := e.cfg.MaxConcurrentTasks - e.inflight
	if e.cfg.EnqueueOnly {
		free = 0
	}
	quota := e.shares(order, free)
	var jobs []roundJob
	for _, t := range order {
		if now.Before(t.backoff) {
			// A tenant whose rounds fail waits alone; new executions are
			// still answered (they fail fast while its database does).
			if len(t.creates) > 0 {
				jobs = append(jobs, roundJob{t: t, creates: t.creates})
				t.creates = nil
			}
			continue
		}
		j := roundJob{t: t, creates: t.creates, outs: t.outcomes, recoverOwn: t.recoverOwn && !t.draining && !e.cfg.EnqueueOnly,
			quota: quota[t], sweep: t.sweepDue && !e.cfg.EnqueueOnly}
		// A sweep first renews this runner's own claims in the same
		// transaction, so that tasks it is still running (whose heartbeats
		// could not reach the database for a while) are not taken for
		// orphans.
		if beat || j.sweep {
			for id := range t.running {
				j.beat = append(j.beat, id)
			}
		}
		idleDrain := t.draining && t.inflight == 0 && !isClosed(t.drained)
		if len(j.creates) == 0 && len(j.outs) == 0 && !j.recoverOwn && j.quota == 0 && !idleDrain && len(j.beat) == 0 && !j.sweep {
			continue
		}
		t.creates, t.outcomes, t.sweepDue = nil, nil, false
		jobs = append(jobs, j)
	}
	e.mu.Unlock()

	par := 1
	if e.db.Backend() == "postgres" {
		par = max(1, min(4, e.cfg.DBPoolSize/4))
	}
	runJobs(jobs, par, func(j roundJob) { e.runJob(ctx, j, now) })

	e.mu.Lock()
	defer e.mu.Unlock()
	free = e.cfg.MaxConcurrentTasks - e.inflight
	if e.cfg.EnqueueOnly {
		free = 0
	}
	wait := min(time.Until(e.nextPoll), time.Until(e.nextSwp))
	if e.inflight > 0 {
		wait = min(wait, time.Until(e.nextBeat))
	}
	for _, t := range e.ring {
		if now := time.Now(); now.Before(t.backoff) {
			wait = min(wait, t.backoff.Sub(now))
			continue
		}
		if len(t.creates) > 0 || len(t.outcomes) > 0 || (t.hot && free > 0 && !t.draining) {
			return 0
		}
		if !t.due.IsZero() {
			wait = min(wait, time.Until(t.due))
		}
	}
	return max(wait, time.Millisecond)
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// runJobs runs fn over jobs with at most par at once.
func runJobs(jobs []roundJob, par int, fn func(roundJob)) {
	if par <= 1 || len(jobs) <= 1 {
		for _, j := range jobs {
			fn(j)
		}
		return
	}
	ch := make(chan roundJob)
	var wg sync.WaitGroup
	for range min(par, len(jobs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ch {
				fn(j)
			}
		}()
	}
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()
}

// shares divides free task slots among the tenants that may have ready
// work, in equal shares capped by each tenant's own limit, leftovers going
// one by one in round-robin order. Must be called with e.mu held.
func (e *Engine) shares(order []*tenant, free int) map[*tenant]int {
	quota := map[*tenant]int{}
	capOf := func(t *tenant) int {
		c := free
		if lim := t.cfg.MaxTenantConcurrentTasks; lim > 0 {
			c = min(c, lim-t.inflight)
		}
		return max(c, 0)
	}
	var cands []*tenant
	for _, t := range order {
		if t.hot && !t.draining && capOf(t) > 0 {
			cands = append(cands, t)
		}
	}
	for free > 0 && len(cands) > 0 {
		share := max(free/len(cands), 1)
		var still []*tenant
		for _, t := range cands {
			if free == 0 {
				break
			}
			give := min(share, capOf(t)-quota[t], free)
			quota[t] += give
			free -= give
			if quota[t] < capOf(t) {
				still = append(still, t)
			}
		}
		cands = still
	}
	return quota
}

// runJob runs one tenant's round and applies its result to the tenant's
// state. A failed round keeps the finished attempts for later and holds the
// tenant back, longer after each failure in a row (up to 30s); other
// tenants go on.
func (e *Engine) runJob(ctx context.Context, j roundJob, now time.Time) {
	t := j.t
	e.mu.Lock()
	backlog := t.backlog
	e.mu.Unlock()
	if backlog && j.quota >= splitMinQuota && e.db.Backend() == "postgres" && (len(j.creates) > 0 || len(j.outs) > 0) {
		// On PostgreSQL, for a tenant with a backlog (its last claim took
		// all it was allowed), claiming ready tasks and recording what happened
		// (new executions, finished attempts, the DAG steps they allow) run
		// as two transactions at once, on two connections, so that a busy
		// tenant keeps two server processes working rather than one. They
		// touch different rows: claims take Ready tasks (skipping locked
		// ones) and start Pending executions; the bookkeeping finishes
		// Running tasks and executions whose tasks are all terminal. Tasks
		// the bookkeeping makes ready are claimed in the next round.
		claim := roundJob{t: t, quota: j.quota}
		rest := j
		rest.quota, rest.split = 0, true
		var cres roundResult
		var cerr error
		done := make(chan struct{})
		go func() {
			defer close(done)
			cres, cerr = t.round(ctx, claim, now)
		}()
		rres, rerr := t.round(ctx, rest, now)
		<-done
		// The claim's outcome first: a claim that found little marks the
		// tenant cold, and the bookkeeping's readied tasks must then make
		// it hot again.
		e.apply(ctx, claim, cres, cerr)
		e.apply(ctx, rest, rres, rerr)
		return
	}
	res, err := t.round(ctx, j, now)
	e.apply(ctx, j, res, err)
}

// apply applies the result of one of a tenant's round transactions to the
// tenant's state.
func (e *Engine) apply(ctx context.Context, j roundJob, res roundResult, err error) {
	t := j.t
	if err != nil {
		e.mu.Lock()
		t.outcomes = append(j.outs, t.outcomes...)
		if j.quota > 0 {
			t.hot = true
		}
		t.recoverOwn = t.recoverOwn || j.recoverOwn
		t.sweepDue = t.sweepDue || j.sweep
		t.failures++
		wait := min(time.Duration(t.failures)*100*time.Millisecond, 30*time.Second)
		t.backoff = time.Now().Add(wait)
		e.mu.Unlock()
		e.log.Error("dispatch round failed; retrying", "schema", t.name, "err", err, "retry_in", wait)
		for _, c := range j.creates {
			c.done <- fmt.Errorf("cloacina: recording execution: %w", err)
		}
		return
	}
	for _, c := range j.creates {
		c.done <- nil
	}
	cold := false
	e.mu.Lock()
	t.failures, t.backoff = 0, time.Time{}
	if j.recoverOwn {
		t.recoverOwn = false
	}
	for _, o := range j.outs {
		if o.kind == outcomeRetry && (t.due.IsZero() || o.readyAt.Before(t.due)) {
			t.due = o.readyAt
		}
	}
	if j.quota > 0 {
		t.backlog = len(res.claimed) == j.quota
	}
	for _, c := range j.creates {
		t.created += len(c.execs)
	}
	e.maybeAnalyze(t)
	switch {
	case j.quota > 0 && len(res.claimed) < j.quota:
		// Work found by looking (a poll, a notification, a restart) may
		// include retries due later: learn when. Work of this process
		// reports its retry times itself.
		cold = t.hot && t.polled
		t.hot, t.polled = false, false
	case j.quota > 0 || res.readied > 0:
		t.hot = true
	}
	for id := range res.lost {
		if rt := t.running[id]; rt != nil {
			rt.cancel(errClaimLost)
		}
	}
	for id := range res.cancelled {
		if rt := t.running[id]; rt != nil {
			rt.cancel(errExecutionCancelled)
		}
	}
	e.mu.Unlock()
	if len(res.finished) > 0 {
		ids := make([]string, len(res.finished))
		for i, f := range res.finished {
			ids[i] = f.ExecutionID.String()
		}
		// Observers first, so that a waiter woken by notifyFinished finds
		// its execution counted.
		t.observeExecutions(res.finished, true)
		t.notifyFinished(ids)
	}
	if t.cfg.Observer != nil && t.cfg.Observer.ExecutionStarted != nil {
		for _, c := range j.creates {
			obs := make([]ExecutionObservation, len(c.execs))
			for i, x := range c.execs {
				id, _ := uuid.Parse(x.ID)
				obs[i] = ExecutionObservation{ExecutionID: id, Workflow: x.WorkflowName, Status: ExecutionPending}
			}
			t.observeExecutions(obs, false)
		}
	}
	for _, task := range res.claimed {
		e.launch(t, task, res.inputs[task.ID])
	}
	if cold {
		if next, ok, err := t.store.NextReadyAt(ctx, t.wfNames); err == nil && ok {
			e.mu.Lock()
			if t.due.IsZero() || next.Before(t.due) {
				t.due = next
			}
			e.mu.Unlock()
		}
	}
	e.mu.Lock()
	if t.draining && t.inflight == 0 && len(t.outcomes) == 0 && !isClosed(t.drained) {
		close(t.drained)
	}
	e.mu.Unlock()
}

// Schemas lists the PostgreSQL schemas of the database that hold tenant
// data (the engine's tables), attached or not, sorted. On SQLite it is
// empty.
func (e *Engine) Schemas(ctx context.Context) ([]string, error) {
	return e.db.Schemas(ctx)
}

// SchemaExists reports whether a schema holds tenant data.
func (e *Engine) SchemaExists(ctx context.Context, schema string) (bool, error) {
	ok, err := e.db.SchemaExists(ctx, schema)
	return ok, translateStoreErr(err)
}

// DropSchema deletes a tenant's schema and all of its data. The tenant's
// runner must be shut down first. It reports whether the schema existed.
func (e *Engine) DropSchema(ctx context.Context, schema string) (bool, error) {
	e.mu.Lock()
	attached := e.tenants[schema] != nil
	e.mu.Unlock()
	if attached {
		return false, fmt.Errorf("%w: schema %q still has a runner; shut it down first", ErrInvalidOption, schema)
	}
	ok, err := e.db.DropSchema(ctx, schema)
	return ok, translateStoreErr(err)
}

// analyzeAfter is how many new executions of a tenant (and at least as many
// as it had at its last ANALYZE, so that refreshes thin out as the tables
// grow) make the engine refresh the planner's statistics of its tables.
const analyzeAfter = 1000

// maybeAnalyze runs ANALYZE on the tenant's tables, in the background, once
// this process has created enough executions since the last time. A
// tenant's tables can grow faster than autovacuum (every minute at best)
// refreshes their statistics; a planner working from statistics of a much
// smaller table picks plans that read whole tables. Must be called with
// e.mu held.
func (e *Engine) maybeAnalyze(t *tenant) {
	if t.analyzing || e.closed || t.draining || t.created < max(analyzeAfter, t.analyzed) || e.db.Backend() != "postgres" {
		return
	}
	t.analyzing = true
	n := t.created
	e.workers.Add(1)
	go func() {
		defer e.workers.Done()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var err error
		if fn := t.cfg.AnalyzeFunc; fn != nil {
			err = fn(ctx, t.name)
		} else {
			err = t.store.Analyze(ctx)
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		t.analyzing = false
		if err != nil {
			e.log.Warn("refreshing planner statistics", "schema", t.name, "err", err)
			return
		}
		t.created -= n
		t.analyzed += n
	}()
}

// EngineStats is a snapshot of an engine's load.
type EngineStats struct {
	// Tenants is the number of attached tenants (runners).
	Tenants int
	// RunningTasks is the number of task attempts running in this process.
	RunningTasks int
	// MaxConcurrentTasks is the engine's task slots.
	MaxConcurrentTasks int
	// OpenConnections, InUseConnections and MaxOpenConnections describe the
	// connection pool (on SQLite, its reader and writer pools together).
	OpenConnections    int
	InUseConnections   int
	MaxOpenConnections int
	// WaitCount and WaitDuration count waits for a free connection.
	WaitCount    int64
	WaitDuration time.Duration
}

// Stats returns a snapshot of the engine's load.
func (e *Engine) Stats() EngineStats {
	e.mu.Lock()
	s := EngineStats{Tenants: len(e.tenants), RunningTasks: e.inflight, MaxConcurrentTasks: e.cfg.MaxConcurrentTasks}
	e.mu.Unlock()
	p := e.db.PoolStats()
	s.OpenConnections, s.InUseConnections, s.MaxOpenConnections = p.OpenConnections, p.InUse, p.MaxOpenConnections
	s.WaitCount, s.WaitDuration = p.WaitCount, p.WaitDuration
	return s
}
