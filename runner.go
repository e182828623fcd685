package cloacina

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cloacina-go/cloacina/internal/store"
	"github.com/google/uuid"
)

// Runner executes workflows durably for one tenant: one database, or one
// PostgreSQL schema. It is safe for concurrent use by many goroutines.
//
// A runner's scheduling is done by its [Engine]'s dispatcher: one goroutine
// that, in one transaction per tenant and round, records new executions,
// applies finished task attempts, advances the DAG and claims ready tasks,
// so that under load many steps share one commit. Tasks run in their own
// goroutines. Finishing a task or starting an execution wakes the
// dispatcher at once; polling only finds work added by other processes and
// retries that came due.
type Runner struct {
	e     *Engine
	t     *tenant
	owned bool // the runner owns its engine (NewRunner)
}

type runningTask struct {
	executionID string
	claimedAt   time.Time // the claim's token (started_at)
	cancel      context.CancelCauseFunc
}

type createReq struct {
	roots  int // tasks created Ready
	execs  []*store.Execution
	tasks  []*store.Task
	events []*store.Event
	done   chan error
}

type outcomeKind int

const (
	outcomeCompleted outcomeKind = iota
	outcomeFailed
	outcomeRetry
	outcomeSkipped
	outcomeRelease
)

type outcome struct {
	task    *store.Task
	kind    outcomeKind
	context []byte
	// solo: the task completed and is its execution's only one, so its
	// context is the execution's output.
	solo    bool
	err     string
	readyAt time.Time
	at      time.Time
}

// Causes of a task context's cancellation.
var (
	errExecutionCancelled = errors.New("execution cancelled")
	errShutdown           = errors.New("runner shut down")
	errClaimLost          = errors.New("claim lost")
)

// NewRunner opens the database at databaseURL (creating it, or the schema,
// when missing), applies migrations and starts the runner.
func NewRunner(ctx context.Context, databaseURL string, opts ...Option) (*Runner, error) {
	cfg := Config{DatabaseURL: databaseURL}
	cfg.Apply(opts...)
	return cfg.NewRunner(ctx)
}

// NewRunnerWithSchema is the short form of NewRunner with [WithSchema],
// mirroring the original's DefaultRunner::with_schema: a runner for one
// tenant's PostgreSQL schema, created and migrated when missing. schema
// must name a tenant: "" (which would run in the public schema) is refused
// with an error wrapping [ErrInvalidTenantID] and [ErrInvalidOption]; use
// NewRunner for the default schema.
func NewRunnerWithSchema(ctx context.Context, databaseURL, schema string, opts ...Option) (*Runner, error) {
	if schema == "" {
		return nil, fmt.Errorf("%w: %w: NewRunnerWithSchema needs a schema name (use NewRunner for the default schema)",
			ErrInvalidTenantID, ErrInvalidOption)
	}
	return NewRunner(ctx, databaseURL, append(slices.Clip(opts), WithSchema(schema))...)
}

// NewRunner builds and starts a runner from c: an [Engine] with one
// tenant, c.Schema.
func (c Config) NewRunner(ctx context.Context) (*Runner, error) {
	e, err := c.NewEngine(ctx)
	if err != nil {
		return nil, err
	}
	r, err := e.Runner(ctx, c.Schema)
	if err != nil {
		_ = e.Shutdown(ctx)
		return nil, err
	}
	r.owned = true
	return r, nil
}

func translateStoreErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrInvalidSchema):
		return fmt.Errorf("%w: %w", ErrInvalidTenantID, err)
	case errors.Is(err, store.ErrUnsupportedURL):
		return fmt.Errorf("%w: %w", ErrUnsupportedDatabase, err)
	case errors.Is(err, store.ErrSchemaOnSQLite):
		return fmt.Errorf("%w: %w", ErrInvalidOption, err)
	case errors.Is(err, store.ErrMigrationRequired):
		return fmt.Errorf("%w: %w", ErrMigrationRequired, err)
	}
	return err
}

// RedactURL returns a database URL or connection string with its
// password (and password parameters) replaced, for logs and errors.
func RedactURL(url string) string { return store.Redact(url) }

// Workflows returns the workflows the runner can execute, by name.
func (r *Runner) Workflows() []*Workflow {
	out := make([]*Workflow, 0, len(r.t.wfNames))
	for _, n := range r.t.wfNames {
		out = append(out, r.t.workflows[n])
	}
	return out
}

// Workflow returns the registered workflow with the given name.
func (r *Runner) Workflow(name string) (*Workflow, bool) {
	wf, ok := r.t.workflows[name]
	return wf, ok
}

// WorkerID returns the identity this runner claims tasks under.
func (r *Runner) WorkerID() string { return r.e.cfg.WorkerID }

// Schema returns the runner's PostgreSQL schema ("" for the default).
func (r *Runner) Schema() string { return r.t.name }

// Engine returns the engine that dispatches the runner's work.
func (r *Runner) Engine() *Engine { return r.e }

// Execute starts the named workflow with input (see [ContextFrom] for the
// accepted forms) and waits until the execution is terminal. A failed
// execution is not an error: inspect Result.Status. The error is non-nil
// only when the execution could not be started or waited for (ctx ended
// first: the execution goes on).
func (r *Runner) Execute(ctx context.Context, workflow string, input any) (*Result, error) {
	h, err := r.ExecuteAsync(ctx, workflow, input)
	if err != nil {
		return nil, err
	}
	return h.Wait(ctx)
}

// ExecuteAsync starts the named workflow and returns at once, once the
// execution is durably recorded.
func (r *Runner) ExecuteAsync(ctx context.Context, workflow string, input any) (*ExecutionHandle, error) {
	hs, err := r.ExecuteMany(ctx, workflow, []any{input})
	if err != nil {
		return nil, err
	}
	return hs[0], nil
}

// ExecuteMany starts one execution of the named workflow per input, all in
// one transaction, and returns their handles in the same order. It is the
// efficient way to enqueue many executions.
func (r *Runner) ExecuteMany(ctx context.Context, workflow string, inputs []any) ([]*ExecutionHandle, error) {
	wf, ok := r.t.workflows[workflow]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownWorkflow, workflow)
	}
	now := time.Now()
	req := &createReq{done: make(chan error, 1)}
	handles := make([]*ExecutionHandle, len(inputs))
	for i, in := range inputs {
		c, err := ContextFrom(in)
		if err != nil {
			return nil, err
		}
		b, err := c.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidContext, err)
		}
		if len(b) > r.t.cfg.MaxContextBytes {
			return nil, fmt.Errorf("%w: input is %d bytes, the limit is %d", ErrContextTooLarge, len(b), r.t.cfg.MaxContextBytes)
		}
		id, err := uuid.NewV7()
		if err != nil {
			return nil, fmt.Errorf("cloacina: new execution id: %w", err)
		}
		sid := id.String()
		req.execs = append(req.execs, &store.Execution{ID: sid, WorkflowName: wf.name, WorkflowVersion: wf.version,
			Status: string(ExecutionPending), Input: b, CreatedAt: now})
		req.events = append(req.events, &store.Event{ExecutionID: sid, Type: string(EventExecutionCreated),
			Message: "version " + wf.version, Worker: r.e.cfg.WorkerID, CreatedAt: now})
		for _, t := range wf.tasks {
			st := TaskNotStarted
			var ready time.Time
			if len(t.deps) == 0 {
				st, ready = TaskReady, now
				req.roots++
				req.events = append(req.events, &store.Event{ExecutionID: sid, TaskName: t.id, Type: string(EventTaskReady), CreatedAt: now})
			}
			req.tasks = append(req.tasks, &store.Task{ExecutionID: sid, WorkflowName: wf.name, Name: t.id,
				Deps: t.deps, Status: string(st), ReadyAt: ready})
		}
		handles[i] = &ExecutionHandle{r: r, id: id}
	}
	if len(inputs) == 0 {
		return handles, nil
	}
	r.e.mu.Lock()
	if r.t.draining {
		r.e.mu.Unlock()
		return nil, ErrRunnerClosed
	}
	// Register waiters before the executions exist, so no completion is missed.
	for _, h := range handles {
		h.done = r.t.addWaiter(h.id.String())
	}
	r.t.creates = append(r.t.creates, req)
	r.e.mu.Unlock()
	r.e.signal()
	select {
	case err := <-req.done:
		if err != nil {
			r.e.mu.Lock()
			for _, h := range handles {
				r.t.removeWaiter(h.id.String(), h.done)
			}
			r.e.mu.Unlock()
			return nil, err
		}
		return handles, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("cloacina: waiting for the execution to be recorded: %w", ctx.Err())
	}
}

// addWaiter must be called with e.mu held.
func (t *tenant) addWaiter(id string) chan struct{} {
	ch := make(chan struct{})
	if t.waiters[id] == nil {
		t.waiters[id] = map[chan struct{}]bool{}
	}
	t.waiters[id][ch] = true
	return ch
}

// removeWaiter must be called with e.mu held.
func (t *tenant) removeWaiter(id string, ch chan struct{}) {
	if ws := t.waiters[id]; ws != nil && ws[ch] {
		delete(ws, ch)
		if len(ws) == 0 {
			delete(t.waiters, id)
		}
	}
}

func (t *tenant) notifyFinished(ids []string) {
	if len(ids) == 0 {
		return
	}
	t.e.mu.Lock()
	defer t.e.mu.Unlock()
	for _, id := range ids {
		for ch := range t.waiters[id] {
			close(ch)
		}
		delete(t.waiters, id)
	}
}

// ExecutionHandle refers to a started execution.
type ExecutionHandle struct {
	r    *Runner
	id   uuid.UUID
	done chan struct{}
}

// ID returns the execution's id.
func (h *ExecutionHandle) ID() uuid.UUID { return h.id }

// Wait blocks until the execution is terminal, or ctx ends, and returns its
// result.
func (h *ExecutionHandle) Wait(ctx context.Context) (*Result, error) {
	return h.r.wait(ctx, h.id, h.done, true)
}

// Status returns the execution's current state.
func (h *ExecutionHandle) Status(ctx context.Context) (ExecutionStatus, error) {
	return h.r.ExecutionStatus(ctx, h.id)
}

// Cancel cancels the execution.
func (h *ExecutionHandle) Cancel(ctx context.Context) error { return h.r.Cancel(ctx, h.id) }

// Wait blocks until the execution is terminal, or ctx ends, and returns its
// result. It works for executions started by any runner on the database.
// If the runner shuts down first, Wait returns [ErrRunnerClosed]; the
// execution goes on when a runner next serves the database.
func (r *Runner) Wait(ctx context.Context, id uuid.UUID) (*Result, error) {
	if err := r.closed(); err != nil {
		return nil, err
	}
	r.e.mu.Lock()
	ch := r.t.addWaiter(id.String())
	r.e.mu.Unlock()
	return r.wait(ctx, id, ch, false)
}

// fresh says that the waiter was registered before the execution was
// recorded, so there is nothing to read before it closes (or the poll
// interval passes: another process may finish the execution).
func (r *Runner) wait(ctx context.Context, id uuid.UUID, done chan struct{}, fresh bool) (*Result, error) {
	sid := id.String()
	waiter := done
	defer func() {
		r.e.mu.Lock()
		r.t.removeWaiter(sid, waiter)
		r.e.mu.Unlock()
	}()
	// The execution may be finished by another process: poll as a safety net.
	tick := time.NewTicker(r.e.cfg.PollInterval)
	defer tick.Stop()
	for first := true; ; first = false {
		if first && fresh {
			if res, ok, err := r.waitStep(ctx, sid, &done, tick); ok {
				return res, err
			}
		}
		e, tasks, err := r.t.store.GetExecutionTasks(ctx, sid)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return nil, fmt.Errorf("%w: %s", ErrExecutionNotFound, sid)
			}
			if ctx.Err() != nil {
				return nil, fmt.Errorf("cloacina: waiting for execution %s: %w", sid, ctx.Err())
			}
			r.e.log.Warn("reading execution while waiting", "schema", r.t.name, "execution", sid, "err", err)
		} else if ExecutionStatus(e.Status).Terminal() {
			return r.resultOf(e, tasks)
		}
		if res, ok, err := r.waitStep(ctx, sid, &done, tick); ok {
			return res, err
		}
	}
}

// waitStep blocks until the waiter closes (then it stops waiting on it),
// the poll interval passes, the runner shuts down or ctx ends; ok reports
// that waiting is over with res, err.
func (r *Runner) waitStep(ctx context.Context, sid string, done *chan struct{}, tick *time.Ticker) (res *Result, ok bool, err error) {
	select {
	case <-*done:
		*done = nil // closed: read the final state
	case <-tick.C:
	case <-r.t.drained:
		return nil, true, fmt.Errorf("%w: execution %s is not finished; wait for it through another runner", ErrRunnerClosed, sid)
	case <-ctx.Done():
		return nil, true, fmt.Errorf("cloacina: waiting for execution %s: %w", sid, ctx.Err())
	}
	return nil, false, nil
}

// ExecutionStatus returns the state of an execution.
func (r *Runner) ExecutionStatus(ctx context.Context, id uuid.UUID) (ExecutionStatus, error) {
	e, err := r.getExecution(ctx, id)
	if err != nil {
		return "", err
	}
	return ExecutionStatus(e.Status), nil
}

// closed returns ErrRunnerClosed once the runner has shut down: its
// storage may be gone (a dropped schema, a closed pool).
func (r *Runner) closed() error {
	if isClosed(r.t.drained) {
		return ErrRunnerClosed
	}
	return nil
}

func (r *Runner) getExecution(ctx context.Context, id uuid.UUID) (*store.Execution, error) {
	if err := r.closed(); err != nil {
		return nil, err
	}
	e, err := r.t.store.GetExecution(ctx, id.String())
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrExecutionNotFound, id)
	}
	return e, err
}

// ExecutionResult returns what is known of an execution now; Context is set
// once it is terminal.
func (r *Runner) ExecutionResult(ctx context.Context, id uuid.UUID) (*Result, error) {
	e, tasks, err := r.executionTasks(ctx, id)
	if err != nil {
		return nil, err
	}
	return r.resultOf(e, tasks)
}

// executionTasks reads an execution and its tasks (in one query).
func (r *Runner) executionTasks(ctx context.Context, id uuid.UUID) (*store.Execution, []*store.Task, error) {
	if err := r.closed(); err != nil {
		return nil, nil, err
	}
	e, tasks, err := r.t.store.GetExecutionTasks(ctx, id.String())
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, fmt.Errorf("%w: %s", ErrExecutionNotFound, id)
	}
	return e, tasks, err
}

func (r *Runner) resultOf(e *store.Execution, tasks []*store.Task) (*Result, error) {
	id, err := uuid.Parse(e.ID)
	if err != nil {
		return nil, fmt.Errorf("cloacina: stored execution id %q: %w", e.ID, err)
	}
	res := &Result{
		ExecutionID: id, WorkflowName: e.WorkflowName, WorkflowVersion: e.WorkflowVersion,
		Status: ExecutionStatus(e.Status), Error: e.Error,
		CreatedAt: e.CreatedAt, StartedAt: e.StartedAt, CompletedAt: e.CompletedAt,
	}
	if !e.StartedAt.IsZero() && !e.CompletedAt.IsZero() {
		res.Duration = e.CompletedAt.Sub(e.StartedAt)
	}
	if e.Output != nil {
		c, err := ContextFromJSON(e.Output)
		if err != nil {
			return nil, fmt.Errorf("cloacina: stored context of %s: %w", e.ID, err)
		}
		res.Context = c
	}
	for _, t := range tasks {
		tr := TaskResult{Name: t.Name, Status: TaskStatus(t.Status), Attempts: t.Attempt, Error: t.Error,
			ReadyAt: t.ReadyAt, StartedAt: t.StartedAt, CompletedAt: t.CompletedAt, Recoveries: t.RecoveryCount}
		if !t.StartedAt.IsZero() && !t.CompletedAt.IsZero() && t.CompletedAt.After(t.StartedAt) {
			tr.Duration = t.CompletedAt.Sub(t.StartedAt)
		}
		res.Tasks = append(res.Tasks, tr)
	}
	return res, nil
}

// ListExecutions lists executions, newest first.
func (r *Runner) ListExecutions(ctx context.Context, opts ListOptions) (*ExecutionPage, error) {
	if err := r.closed(); err != nil {
		return nil, err
	}
	limit := opts.Limit
	switch {
	case limit < 0:
		return nil, fmt.Errorf("%w: negative limit %d", ErrInvalidOption, limit)
	case limit == 0:
		limit = 50
	case limit > 1000:
		limit = 1000
	}
	f := store.ExecutionFilter{Workflow: opts.Workflow, Limit: limit + 1}
	for _, s := range opts.Statuses {
		if !s.Valid() {
			return nil, fmt.Errorf("%w: unknown execution status %q", ErrInvalidOption, s)
		}
		f.Statuses = append(f.Statuses, string(s))
	}
	if opts.Cursor != "" {
		id, err := uuid.Parse(opts.Cursor)
		if err != nil {
			return nil, fmt.Errorf("%w: invalid cursor %q", ErrInvalidOption, opts.Cursor)
		}
		f.Before = id.String()
	}
	execs, err := r.t.store.ListExecutions(ctx, f)
	if err != nil {
		return nil, err
	}
	page := &ExecutionPage{}
	if len(execs) > limit {
		execs = execs[:limit]
		page.NextCursor = execs[limit-1].ID
	}
	for _, e := range execs {
		id, err := uuid.Parse(e.ID)
		if err != nil {
			return nil, fmt.Errorf("cloacina: stored execution id %q: %w", e.ID, err)
		}
		s := ExecutionSummary{ExecutionID: id, WorkflowName: e.WorkflowName, WorkflowVersion: e.WorkflowVersion,
			Status: ExecutionStatus(e.Status), Error: e.Error, CreatedAt: e.CreatedAt, StartedAt: e.StartedAt, CompletedAt: e.CompletedAt}
		if !e.StartedAt.IsZero() && !e.CompletedAt.IsZero() {
			s.Duration = e.CompletedAt.Sub(e.StartedAt)
		}
		page.Executions = append(page.Executions, s)
	}
	return page, nil
}

// ExecutionEvents returns the events of an execution in the order they
// happened (by their time; among events of the same time, in the order
// they were written).
//
// The start of an attempt is written to the log when the attempt ends,
// and the start of an execution when the execution ends, each with the
// time it happened: a claim, the commonest write, then costs the log
// nothing. Until then they are read from the task's and the execution's
// rows, and come back with ID 0.
func (r *Runner) ExecutionEvents(ctx context.Context, id uuid.UUID) ([]Event, error) {
	e, tasks, err := r.executionTasks(ctx, id)
	if err != nil {
		return nil, err
	}
	out, err := r.storedEvents(ctx, id)
	if err != nil {
		return nil, err
	}
	if r.t.cfg.EventLog.records(EventTaskStarted) {
		// The log was read after the rows: a start the rows show may have
		// been written since (its attempt ended), and is then not added
		// again. An attempt is known by its claim's time too, since a
		// recovered task runs its attempt number again.
		type start struct {
			task    string
			attempt int
			at      int64 // microseconds, as stored
		}
		logged := map[start]bool{}
		for _, ev := range out {
			if ev.Type == EventTaskStarted || ev.Type == EventExecutionStarted {
				logged[start{ev.Task, ev.Attempt, ev.At.UnixMicro()}] = true
			}
		}
		// Tasks first: as written, a root task's start precedes its
		// execution's, at the same time.
		for _, t := range tasks {
			if TaskStatus(t.Status) == TaskRunning && !logged[start{t.Name, t.Attempt, t.StartedAt.UnixMicro()}] {
				out = append(out, Event{ExecutionID: id, Task: t.Name, Type: EventTaskStarted, Attempt: t.Attempt,
					Worker: t.ClaimedBy, At: t.StartedAt})
			}
		}
		if !e.StartedAt.IsZero() && !logged[start{"", 0, e.StartedAt.UnixMicro()}] && !ExecutionStatus(e.Status).Terminal() {
			out = append(out, Event{ExecutionID: id, Type: EventExecutionStarted, Worker: e.StartedBy, At: e.StartedAt})
		}
	}
	slices.SortStableFunc(out, func(a, b Event) int { return a.At.Compare(b.At) })
	return out, nil
}

// storedEvents reads an execution's log, in the order it was written.
func (r *Runner) storedEvents(ctx context.Context, id uuid.UUID) ([]Event, error) {
	var out []Event
	var after int64
	for {
		evs, err := r.t.store.ListEvents(ctx, id.String(), after, 1000)
		if err != nil {
			return nil, err
		}
		for _, e := range evs {
			out = append(out, Event{ID: e.ID, ExecutionID: id, Task: e.TaskName, Type: EventType(e.Type),
				Attempt: e.Attempt, Message: e.Message, Worker: e.Worker, At: e.CreatedAt})
			after = e.ID
		}
		if len(evs) < 1000 {
			return out, nil
		}
	}
}

// Metrics summarises the executions in the runner's database, computed in
// SQL.
func (r *Runner) Metrics(ctx context.Context) (*Metrics, error) {
	if err := r.closed(); err != nil {
		return nil, err
	}
	m, err := r.t.store.Metrics(ctx)
	if err != nil {
		return nil, err
	}
	out := &Metrics{TotalExecutions: m.Total, AvgExecutionTime: m.AvgDuration, ByStatus: map[ExecutionStatus]int64{},
		ReadyTasks: m.ReadyTasks, RunningTasks: m.RunningTasks, OldestReadyTask: m.OldestReadyTask}
	for s, n := range m.ByStatus {
		out.ByStatus[ExecutionStatus(s)] = n
		if !ExecutionStatus(s).Terminal() {
			out.ActiveExecutions += n
		}
	}
	return out, nil
}

// Pause stops an execution from starting new tasks; running tasks finish.
// Pausing an execution that is not Pending or Running returns
// [ErrInvalidTransition].
func (r *Runner) Pause(ctx context.Context, id uuid.UUID) error {
	return r.transition(ctx, id, []ExecutionStatus{ExecutionPending, ExecutionRunning}, ExecutionPaused, EventExecutionPaused)
}

// Resume lets a paused execution start tasks again.
func (r *Runner) Resume(ctx context.Context, id uuid.UUID) error {
	err := r.transition(ctx, id, []ExecutionStatus{ExecutionPaused}, ExecutionRunning, EventExecutionResumed)
	if err == nil {
		r.e.mu.Lock()
		r.t.hot = true
		r.e.mu.Unlock()
		r.e.signal()
	}
	return err
}

// Cancel ends an execution: tasks not yet started are skipped, running ones
// see their context cancelled (those run by this runner at once, others at
// their runner's next heartbeat). Cancelling a terminal execution returns
// [ErrInvalidTransition].
func (r *Runner) Cancel(ctx context.Context, id uuid.UUID) error {
	if err := r.closed(); err != nil {
		return err
	}
	sid := id.String()
	now := time.Now()
	var workflow string
	err := r.t.store.Write(ctx, func(tx store.Tx) error {
		states, err := tx.TaskStates(ctx, []string{sid})
		if err != nil {
			return err
		}
		if len(states) > 0 {
			workflow = states[0].WorkflowName
		}
		outputs, err := r.t.finalOutputs(ctx, tx, []string{sid}, map[string][]*store.Task{sid: states})
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: %s", ErrExecutionNotFound, sid)
		}
		if err != nil {
			return err
		}
		changed, err := tx.UpdateExecutions(ctx, []store.ExecutionUpdate{{ID: sid,
			From: liveStatuses,
			To:   string(ExecutionCancelled), CompletedAt: now, Error: "cancelled", Output: outputs[sid]}})
		if err != nil {
			return err
		}
		started, ok := changed[sid]
		if !ok {
			return r.transitionError(ctx, tx, sid, ExecutionCancelled)
		}
		var ups []store.TaskUpdate
		var events []*store.Event
		if !started.At.IsZero() {
			events = append(events, executionStartedEvent(sid, started, r.e.cfg.WorkerID))
		}
		events = append(events, &store.Event{ExecutionID: sid, Type: string(EventExecutionCancelled), Worker: r.e.cfg.WorkerID, CreatedAt: now})
		for _, t := range states {
			if t.Status == string(TaskNotStarted) || t.Status == string(TaskReady) {
				ups = append(ups, store.TaskUpdate{ID: t.ID, From: t.Status, To: string(TaskSkipped), Error: "execution cancelled", CompletedAt: now})
				events = append(events, &store.Event{ExecutionID: sid, TaskName: t.Name, Type: string(EventTaskSkipped), Message: "execution cancelled", CreatedAt: now})
			}
		}
		if _, err := tx.UpdateTasks(ctx, ups); err != nil {
			return err
		}
		return tx.InsertEvents(ctx, r.t.cfg.EventLog.recorded(events))
	})
	if err != nil {
		return err
	}
	r.e.mu.Lock()
	r.t.rememberCancel(sid, now)
	for _, rt := range r.t.running {
		if rt.executionID == sid {
			rt.cancel(errExecutionCancelled)
		}
	}
	r.e.mu.Unlock()
	r.t.observeExecutions([]ExecutionObservation{{ExecutionID: id, Workflow: workflow, Status: ExecutionCancelled}}, true)
	r.t.notifyFinished([]string{sid})
	return nil
}

// rememberCancel records that this runner cancelled an execution (see
// tenant.cancelled), forgetting those older than a minute. Must be called
// with e.mu held.
func (t *tenant) rememberCancel(id string, now time.Time) {
	if t.cancelled == nil {
		t.cancelled = map[string]time.Time{}
	}
	for old, at := range t.cancelled {
		if now.Sub(at) > time.Minute {
			delete(t.cancelled, old)
		}
	}
	t.cancelled[id] = now
}

func (r *Runner) transition(ctx context.Context, id uuid.UUID, from []ExecutionStatus, to ExecutionStatus, ev EventType) error {
	if err := r.closed(); err != nil {
		return err
	}
	sid := id.String()
	now := time.Now()
	fs := make([]string, len(from))
	for i, f := range from {
		fs[i] = string(f)
	}
	return r.t.store.Write(ctx, func(tx store.Tx) error {
		changed, err := tx.UpdateExecutions(ctx, []store.ExecutionUpdate{{ID: sid, From: fs, To: string(to)}})
		if err != nil {
			return err
		}
		if _, ok := changed[sid]; !ok {
			return r.transitionError(ctx, tx, sid, to)
		}
		return tx.InsertEvents(ctx, r.t.cfg.EventLog.recorded([]*store.Event{{ExecutionID: sid, Type: string(ev), Worker: r.e.cfg.WorkerID, CreatedAt: now}}))
	})
}

func (r *Runner) transitionError(ctx context.Context, tx store.Tx, id string, to ExecutionStatus) error {
	e, err := tx.GetExecution(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %s", ErrExecutionNotFound, id)
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("%w: execution %s is %s, cannot become %s", ErrInvalidTransition, id, e.Status, to)
}

// Shutdown stops taking new work and waits for running tasks to finish
// until ctx ends. Tasks still running then are interrupted and released
// (put back to Ready without using up an attempt) so that another runner,
// or this one restarted, runs them again. A runner made by [NewRunner]
// then shuts its engine down and closes the database; one made by
// [Engine.Runner] leaves the engine. It returns ctx's error if tasks had
// to be interrupted.
func (r *Runner) Shutdown(ctx context.Context) error {
	if r.owned {
		return r.e.Shutdown(ctx)
	}
	return r.e.detach(ctx, r.t)
}
