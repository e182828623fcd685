package cloacina

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"time"

	"github.com/cloacina-go/cloacina/internal/store"
	"github.com/google/uuid"
)

// roundResult is what one tenant's round did.
type roundResult struct {
	claimed   []*store.Task
	inputs    map[int64]*claimInput // by claimed task id
	finished  []ExecutionObservation
	readied   int            // tasks made Ready (before claiming)
	lost      map[int64]bool // running tasks whose claim is gone
	cancelled map[int64]bool // running tasks whose execution was cancelled
}

// round runs one tenant's dispatch round in one transaction: record new
// executions, apply finished attempts, recover orphaned tasks, advance the
// affected executions, claim up to j.quota ready tasks. When it readied
// tasks it could not claim, it tells other processes through NOTIFY.
func (t *tenant) round(ctx context.Context, j roundJob, now time.Time) (roundResult, error) {
	var res roundResult
	if len(j.creates) == 0 && len(j.outs) == 0 && !j.recoverOwn && j.quota == 0 && len(j.beat) == 0 && !j.sweep {
		return res, nil
	}
	err := t.store.Write(ctx, func(tx store.Tx) error {
		res = roundResult{}
		var events []*store.Event
		if len(j.creates) > 0 {
			// Every create of the round in one insert of executions and one
			// of tasks: a busy service has hundreds of single Execute calls
			// in a round.
			var execs []*store.Execution
			var tasks []*store.Task
			for _, c := range j.creates {
				execs = append(execs, c.execs...)
				tasks = append(tasks, c.tasks...)
				events = append(events, c.events...)
				res.readied += c.roots
			}
			if err := tx.InsertExecutions(ctx, execs, tasks); err != nil {
				return err
			}
		}
		touched, solo, evs, err := t.applyOutcomes(ctx, tx, j.outs, now)
		if err != nil {
			return err
		}
		events = append(events, evs...)
		if len(j.beat) > 0 {
			alive, cancelled, err := tx.Heartbeat(ctx, t.e.cfg.WorkerID, j.beat, now)
			if err != nil {
				return err
			}
			res.cancelled = cancelled
			res.lost = map[int64]bool{}
			for _, id := range j.beat {
				if !alive[id] {
					res.lost[id] = true
				}
			}
		}
		var orphans []*store.Task
		var why string
		if j.recoverOwn {
			orphans, err = tx.RunningTasks(ctx, store.RunningFilter{ClaimedBy: t.e.cfg.WorkerID})
			if err != nil {
				return err
			}
			why = "runner " + t.e.cfg.WorkerID + " restarted"
		} else if j.sweep {
			orphans, err = tx.RunningTasks(ctx, store.RunningFilter{HeartbeatBefore: now.Add(-t.e.cfg.StaleClaimAfter), Limit: 500})
			if err != nil {
				return err
			}
			why = "heartbeat older than " + t.e.cfg.StaleClaimAfter.String()
		}
		if len(orphans) > 0 {
			rec, readied, evs, err := t.recoverTasks(ctx, tx, orphans, why, now)
			if err != nil {
				return err
			}
			for id := range rec {
				touched[id] = true
			}
			res.readied += readied
			events = append(events, evs...)
		}
		finished, readied, evs, err := t.advance(ctx, tx, touched, solo, now)
		if err != nil {
			return err
		}
		res.finished = finished
		res.readied += readied
		events = append(events, evs...)
		if j.quota > 0 && len(t.wfNames) > 0 {
			res.claimed, err = tx.ClaimTasks(ctx, store.ClaimParams{Worker: t.e.cfg.WorkerID, Now: now, Limit: j.quota, Workflows: t.wfNames})
			if err != nil {
				return err
			}
			if err := t.startExecutions(ctx, tx, res.claimed, now); err != nil {
				return err
			}
			if res.inputs, err = t.loadInputs(ctx, tx, res.claimed); err != nil {
				return err
			}
		}
		if res.readied > 0 && len(res.claimed) == j.quota && !j.split {
			if err := tx.NotifyReady(ctx, t.e.cfg.WorkerID); err != nil {
				return err
			}
		}
		return tx.InsertEvents(ctx, t.cfg.EventLog.recorded(events))
	})
	return res, err
}

// applyOutcomes writes the finished attempts as guarded transitions and
// returns the executions they touched. An execution whose one and only
// task completed is returned apart, in solo, with that task's saved
// context, which is its output: advancing it needs no read.
func (t *tenant) applyOutcomes(ctx context.Context, tx store.Tx, outs []outcome, now time.Time) (touched map[string]bool, solo map[string]soloDone, events []*store.Event, err error) {
	touched, solo = map[string]bool{}, map[string]soloDone{}
	if len(outs) == 0 {
		return touched, solo, nil, nil
	}
	ups := make([]store.TaskUpdate, len(outs))
	for i, o := range outs {
		u := store.TaskUpdate{ID: o.task.ID, From: string(TaskRunning), Attempt: o.task.Attempt,
			ClaimedBy: t.e.cfg.WorkerID, ClaimedAt: o.task.StartedAt, Error: o.err, Release: true}
		switch o.kind {
		case outcomeCompleted:
			u.To, u.Context, u.CompletedAt = string(TaskCompleted), o.context, o.at
		case outcomeFailed:
			u.To, u.CompletedAt = string(TaskFailed), o.at
		case outcomeSkipped:
			// Skipped by its trigger rule before its body ran: no attempt.
			u.To, u.CompletedAt, u.UndoAttempt = string(TaskSkipped), o.at, true
		case outcomeRetry:
			u.To, u.ReadyAt = string(TaskReady), o.readyAt
		case outcomeRelease:
			u.To, u.ReadyAt, u.UndoAttempt = string(TaskReady), now, true
		}
		ups[i] = u
	}
	changed, err := tx.UpdateTasks(ctx, ups)
	if err != nil {
		return nil, nil, nil, err
	}
	for _, o := range outs {
		task := o.task
		if !changed[task.ID] {
			t.e.log.Warn("task result discarded: the claim was lost", "schema", t.name, "execution", task.ExecutionID, "task", task.Name, "attempt", task.Attempt)
			continue
		}
		events = append(events, startedEvent(task, t.e.cfg.WorkerID))
		ev := &store.Event{ExecutionID: task.ExecutionID, TaskName: task.Name, Attempt: task.Attempt, Message: o.err,
			Worker: t.e.cfg.WorkerID, CreatedAt: o.at}
		switch o.kind {
		case outcomeCompleted:
			ev.Type = string(EventTaskCompleted)
			if o.solo {
				solo[task.ExecutionID] = soloDone{workflow: task.WorkflowName, output: o.context}
			} else {
				touched[task.ExecutionID] = true
			}
		case outcomeFailed:
			ev.Type = string(EventTaskFailed)
			touched[task.ExecutionID] = true
		case outcomeSkipped:
			ev.Type = string(EventTaskSkipped)
			touched[task.ExecutionID] = true
		case outcomeRetry:
			ev.Type = string(EventTaskRetryScheduled)
			ev.Message = fmt.Sprintf("retry at %s after: %s", o.readyAt.UTC().Format(time.RFC3339Nano), o.err)
		case outcomeRelease:
			ev.Type = string(EventTaskReleased)
			ev.Message = "released at shutdown"
		}
		events = append(events, ev)
	}
	return touched, solo, events, nil
}

// executionStartedEvent is the execution_started event of an execution
// with the given start, written when it ends (see startExecutions). It
// names the worker that started the execution, which after a recovery is
// not the one ending it; an execution started before the store recorded
// that (started_by is NULL) names ender, the worker writing the event.
func executionStartedEvent(id string, start store.ExecutionStart, ender string) *store.Event {
	worker := start.By
	if worker == "" {
		worker = ender
	}
	return &store.Event{ExecutionID: id, Type: string(EventExecutionStarted), Worker: worker, CreatedAt: start.At}
}

// liveStatuses are the statuses an execution finishes (or is cancelled)
// from. Shared by the updates that use it, and never written to.
var liveStatuses = []string{string(ExecutionPending), string(ExecutionRunning), string(ExecutionPaused)}

// soloDone is an execution of a one-task workflow whose task completed.
type soloDone struct {
	workflow string
	output   []byte
}

// advance moves the touched executions forward: tasks whose dependencies
// are all terminal become Ready (or Skipped when their trigger rule, if it
// needs no context, says so, cascading), and executions whose tasks are all
// terminal finish, as do the solo ones. It returns the executions that
// finished.
func (tn *tenant) advance(ctx context.Context, tx store.Tx, touched map[string]bool, solo map[string]soloDone, now time.Time) ([]ExecutionObservation, int, []*store.Event, error) {
	if len(touched) == 0 && len(solo) == 0 {
		return nil, 0, nil, nil
	}
	workflowOf := make(map[string]string, len(solo))
	execUps := make([]store.ExecutionUpdate, 0, len(solo)+len(touched))
	for id, d := range solo {
		workflowOf[id] = d.workflow
		execUps = append(execUps, store.ExecutionUpdate{ID: id, To: string(ExecutionCompleted), Output: d.output,
			From: liveStatuses, CompletedAt: now, StartedAt: now, StartedBy: tn.e.cfg.WorkerID})
	}
	ids := make([]string, 0, len(touched))
	for id := range touched {
		ids = append(ids, id)
	}
	var rows []*store.Task
	if len(ids) > 0 {
		var err error
		if rows, err = tx.TaskStates(ctx, ids); err != nil {
			return nil, 0, nil, err
		}
	}
	byExec := map[string][]*store.Task{}
	for _, t := range rows {
		byExec[t.ExecutionID] = append(byExec[t.ExecutionID], t)
		workflowOf[t.ExecutionID] = t.WorkflowName
	}
	var ups []store.TaskUpdate
	var events []*store.Event
	var finishing []string
	readied := 0
	for _, id := range ids {
		tasks := byExec[id]
		if len(tasks) == 0 {
			continue
		}
		wf := tn.workflows[tasks[0].WorkflowName]
		states := make(map[string]TaskStatus, len(tasks))
		for _, t := range tasks {
			states[t.Name] = TaskStatus(t.Status)
		}
		for changed := true; changed; {
			changed = false
			for _, t := range tasks {
				if TaskStatus(t.Status) != TaskNotStarted || !depsTerminal(t.Deps, states) {
					continue
				}
				rule := ruleOf(wf, t.Name)
				to, reason := TaskReady, ""
				if !rule.needsContext() && !rule.evaluate(t.Deps, states, nil) {
					to, reason = TaskSkipped, skipReason(rule, t.Deps, states)
				}
				u := store.TaskUpdate{ID: t.ID, From: string(TaskNotStarted), To: string(to), Error: reason}
				ev := &store.Event{ExecutionID: id, TaskName: t.Name, Message: reason, CreatedAt: now}
				if to == TaskReady {
					readied++
					u.ReadyAt, ev.Type = now, string(EventTaskReady)
				} else {
					u.CompletedAt, ev.Type = now, string(EventTaskSkipped)
				}
				ups = append(ups, u)
				events = append(events, ev)
				t.Status, t.Error = string(to), reason
				states[t.Name] = to
				changed = true
			}
		}
		if allTerminal(tasks) {
			status, msg := ExecutionCompleted, ""
			for _, t := range tasks {
				if TaskStatus(t.Status) == TaskFailed {
					status, msg = ExecutionFailed, fmt.Sprintf("task %s failed: %s", t.Name, t.Error)
					break
				}
			}
			finishing = append(finishing, id)
			execUps = append(execUps, store.ExecutionUpdate{ID: id, From: liveStatuses,
				To: string(status), Error: msg, CompletedAt: now, StartedAt: now, StartedBy: tn.e.cfg.WorkerID})
		}
	}
	if _, err := tx.UpdateTasks(ctx, ups); err != nil {
		return nil, 0, nil, err
	}
	if len(execUps) == 0 {
		return nil, readied, events, nil
	}
	if len(finishing) > 0 {
		outputs, err := tn.finalOutputs(ctx, tx, finishing, byExec)
		if err != nil {
			return nil, 0, nil, err
		}
		for i := range execUps {
			if o, ok := outputs[execUps[i].ID]; ok {
				execUps[i].Output = o
			}
		}
	}
	changed, err := tx.UpdateExecutions(ctx, execUps)
	if err != nil {
		return nil, 0, nil, err
	}
	finished := make([]ExecutionObservation, 0, len(execUps))
	events = slices.Grow(events, len(execUps))
	for _, u := range execUps {
		started, ok := changed[u.ID]
		if !ok {
			continue // cancelled meanwhile
		}
		eid, _ := uuid.Parse(u.ID)
		finished = append(finished, ExecutionObservation{ExecutionID: eid, Workflow: workflowOf[u.ID], Status: ExecutionStatus(u.To)})
		typ := EventExecutionCompleted
		if u.To == string(ExecutionFailed) {
			typ = EventExecutionFailed
		}
		if !started.At.IsZero() { // always, as the update sets it: a finished execution started
			events = append(events, executionStartedEvent(u.ID, started, tn.e.cfg.WorkerID))
		}
		events = append(events, &store.Event{ExecutionID: u.ID, Type: string(typ), Message: u.Error, Worker: tn.e.cfg.WorkerID, CreatedAt: now})
	}
	return finished, readied, events, nil
}

// finalOutputs computes the final context of the executions: the merge, in
// topological order, of the saved contexts of the completed tasks that no
// completed task depends on; the input when no task completed.
func (t *tenant) finalOutputs(ctx context.Context, tx store.Tx, ids []string, byExec map[string][]*store.Task) (map[string][]byte, error) {
	saved, err := tx.CompletedContexts(ctx, ids)
	if err != nil {
		return nil, err
	}
	outputs := make(map[string][]byte, len(ids))
	for _, id := range ids {
		tasks := byExec[id]
		ctxs := saved[id]
		consumed := map[string]bool{}
		for _, t := range tasks {
			if _, ok := ctxs[t.Name]; ok {
				for _, d := range t.Deps {
					consumed[d] = true
				}
			}
		}
		var out map[string]any
		for _, t := range tasks { // insertion order is topological
			b, ok := ctxs[t.Name]
			if !ok || consumed[t.Name] {
				continue
			}
			m, err := decodeObject(b)
			if err != nil {
				return nil, fmt.Errorf("cloacina: saved context of task %s: %w", t.Name, err)
			}
			out = MergeJSON(out, m)
		}
		if out == nil {
			e, err := tx.GetExecution(ctx, id)
			if err != nil {
				return nil, err
			}
			outputs[id] = e.Input
			continue
		}
		b, err := json.Marshal(out)
		if err != nil {
			return nil, fmt.Errorf("cloacina: encoding final context: %w", err)
		}
		outputs[id] = b
	}
	return outputs, nil
}

func depsTerminal(deps []string, states map[string]TaskStatus) bool {
	for _, d := range deps {
		if !states[d].Terminal() {
			return false
		}
	}
	return true
}

func allTerminal(tasks []*store.Task) bool {
	for _, t := range tasks {
		if !TaskStatus(t.Status).Terminal() {
			return false
		}
	}
	return true
}

func skipReason(rule TriggerRule, deps []string, states map[string]TaskStatus) string {
	if rule.IsDefault() {
		for _, d := range deps {
			if states[d] != TaskCompleted {
				return fmt.Sprintf("dependency %s is %s", d, states[d])
			}
		}
	}
	return "trigger rule " + rule.String() + " is false"
}

func ruleOf(wf *Workflow, task string) TriggerRule {
	if wf == nil {
		return TriggerRule{}
	}
	if t, ok := wf.byID[task]; ok && t.trigger != nil {
		return *t.trigger
	}
	return TriggerRule{}
}

// startExecutions moves the executions of claimed root tasks from Pending
// to Running. A claim writes no event: an attempt's task_started is
// written by the transaction that ends the attempt (applyOutcomes,
// recoverTasks), and execution_started by the one that ends the
// execution, each with the time it happened. Until then the task's and
// the execution's rows hold what those events say (see
// Runner.ExecutionEvents). The log stays whole, and a one-task
// execution's two rounds write one events row instead of two.
func (tn *tenant) startExecutions(ctx context.Context, tx store.Tx, claimed []*store.Task, now time.Time) error {
	seen := map[string]bool{}
	var ids []string
	for _, t := range claimed {
		// Only a root task can be an execution's first: skip the others.
		if len(t.Deps) == 0 && !seen[t.ExecutionID] {
			seen[t.ExecutionID] = true
			ids = append(ids, t.ExecutionID)
		}
	}
	_, err := tx.StartExecutions(ctx, ids, now, tn.e.cfg.WorkerID)
	return err
}

// startedEvent is the task_started event of a claimed attempt, written
// when the attempt ends.
func startedEvent(t *store.Task, worker string) *store.Event {
	return &store.Event{ExecutionID: t.ExecutionID, TaskName: t.Name, Type: string(EventTaskStarted),
		Attempt: t.Attempt, Worker: worker, CreatedAt: t.StartedAt}
}

// claimInput is what a claimed task starts from, read in the claiming
// transaction: its execution's input and workflow version (a root task's
// come with its claim) and the outcomes of the tasks it depends on or its
// trigger rule names.
type claimInput struct {
	input   []byte
	version string
	outs    []store.TaskOutcome
}

// inputNames lists the tasks whose outcomes a task needs: its dependencies
// and the tasks its trigger rule names.
func (tn *tenant) inputNames(t *store.Task) []string {
	names := slices.Clone(t.Deps)
	if wf := tn.workflows[t.WorkflowName]; wf != nil {
		if def := wf.byID[t.Name]; def != nil && def.trigger != nil {
			for _, c := range def.trigger.conds {
				if c.task != "" {
					names = append(names, c.task)
				}
			}
		}
	}
	return names
}

// needsInput reports whether a task may start from its execution's input:
// a root task, or one whose trigger rule can run it when none of its
// dependencies completed. Under the default rule every dependency has
// completed and saved its context, so the input is not read.
func (tn *tenant) needsInput(t *store.Task) bool {
	if len(t.Deps) == 0 {
		return true
	}
	return !ruleOf(tn.workflows[t.WorkflowName], t.Name).IsDefault()
}

// loadInputs reads, in one pass for the whole round, what the claimed tasks
// start from, so that a task costs no read of its own.
func (tn *tenant) loadInputs(ctx context.Context, tx store.Tx, claimed []*store.Task) (map[int64]*claimInput, error) {
	if len(claimed) == 0 {
		return nil, nil
	}
	var execIDs []string
	seen := map[string]bool{}
	var refs []store.TaskRef
	names := make(map[int64][]string, len(claimed))
	for _, t := range claimed {
		// A root task comes with its execution's input from the claim.
		if t.Input == nil && tn.needsInput(t) && !seen[t.ExecutionID] {
			seen[t.ExecutionID] = true
			execIDs = append(execIDs, t.ExecutionID)
		}
		names[t.ID] = tn.inputNames(t)
		for _, n := range names[t.ID] {
			refs = append(refs, store.TaskRef{ExecutionID: t.ExecutionID, Name: n})
		}
	}
	inputs, outs, err := tx.LoadInputs(ctx, execIDs, refs)
	if err != nil {
		return nil, err
	}
	res := make(map[int64]*claimInput, len(claimed))
	for _, t := range claimed {
		ci := &claimInput{input: t.Input, version: t.WorkflowVersion}
		if ci.input == nil {
			ci.input = inputs[t.ExecutionID]
		}
		for _, n := range names[t.ID] {
			if o, ok := outs[store.TaskRef{ExecutionID: t.ExecutionID, Name: n}]; ok {
				ci.outs = append(ci.outs, o)
			}
		}
		res[t.ID] = ci
	}
	return res, nil
}

// launch runs a claimed task in its own goroutine.
func (e *Engine) launch(t *tenant, task *store.Task, in *claimInput) {
	tctx, cancel := context.WithCancelCause(context.Background())
	rt := &runningTask{executionID: task.ExecutionID, claimedAt: task.StartedAt, cancel: cancel}
	e.mu.Lock()
	e.inflight++
	t.inflight++
	if old := t.running[task.ID]; old != nil {
		// This runner claimed the task again after its earlier claim was
		// recovered (its heartbeats had stopped reaching the database): the
		// earlier run is void.
		old.cancel(errClaimLost)
	}
	t.running[task.ID] = rt
	if _, ok := t.cancelled[task.ExecutionID]; ok {
		// Cancelled between the claim's commit and now: Cancel could not
		// see the task yet.
		cancel(errExecutionCancelled)
	}
	e.workers.Add(1)
	e.mu.Unlock()
	go func() {
		defer e.workers.Done()
		o := t.runTask(tctx, task, in)
		cancel(nil)
		t.observeTask(task, o)
		e.mu.Lock()
		e.inflight--
		t.inflight--
		if t.running[task.ID] == rt {
			delete(t.running, task.ID)
		}
		t.outcomes = append(t.outcomes, o)
		e.mu.Unlock()
		e.signal()
	}()
}

// runTask runs one claimed attempt and reports its outcome.
func (tn *tenant) runTask(ctx context.Context, t *store.Task, in *claimInput) outcome {
	o := outcome{task: t}
	fail := func(kind outcomeKind, msg string) outcome {
		o.kind, o.err, o.at = kind, msg, time.Now()
		return o
	}
	wf := tn.workflows[t.WorkflowName]
	var def *taskDef
	if wf != nil {
		def = wf.byID[t.Name]
	}
	if def == nil {
		return fail(outcomeFailed, fmt.Sprintf("task %q is not part of the registered workflow %q", t.Name, t.WorkflowName))
	}
	rule := TriggerRule{}
	if def.trigger != nil {
		rule = *def.trigger
	}
	if in == nil {
		return fail(outcomeFailed, "the task's inputs were not loaded")
	}
	data, states, err := taskInput(t.Deps, in.input, in.outs)
	if err != nil {
		return fail(outcomeFailed, err.Error())
	}
	if rule.needsContext() && !rule.evaluate(t.Deps, states, data) {
		return fail(outcomeSkipped, "trigger rule "+rule.String()+" is false")
	}
	c := &Context{data: data}
	timeout := tn.cfg.TaskTimeout
	if def.timeout > 0 {
		timeout = def.timeout
	}
	runErr := call(ctx, def.fn, c, timeout)
	o.at = time.Now()
	if runErr == nil {
		b, err := c.MarshalJSON()
		switch {
		case err != nil:
			runErr = Permanent(fmt.Errorf("saving context: %w", err))
		case len(b) > tn.cfg.MaxContextBytes:
			runErr = Permanent(fmt.Errorf("%w: %d bytes, the limit is %d", ErrContextTooLarge, len(b), tn.cfg.MaxContextBytes))
		default:
			o.kind, o.context = outcomeCompleted, b
			// The only task of its execution (the version, a hash of the
			// graph, rules out an execution of another shape).
			o.solo = len(wf.tasks) == 1 && in.version == wf.version
			return o
		}
	}
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, errShutdown):
		return fail(outcomeRelease, "")
	case errors.Is(cause, errClaimLost):
		// The task was recovered elsewhere: this attempt's result is void
		// (the guarded write will find the claim gone).
		return fail(outcomeFailed, "claim lost")
	case errors.Is(cause, errExecutionCancelled):
		return fail(outcomeFailed, "execution cancelled")
	}
	policy := NoRetry()
	if def.retry != nil {
		policy = def.retry.withDefaults()
	}
	o.err = runErr.Error()
	if t.Attempt < policy.MaxAttempts && policy.RetryOn.Retries(runErr) {
		o.kind = outcomeRetry
		o.readyAt = o.at.Add(policy.jittered(policy.Delay(t.Attempt)))
		return o
	}
	o.kind = outcomeFailed
	return o
}

// call runs fn with the attempt's timeout, turning a panic into a
// *PanicError.
func call(ctx context.Context, fn TaskFunc, c *Context, timeout time.Duration) (err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: string(debug.Stack())}
		}
	}()
	err = fn(ctx, c)
	if err == nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		// The task ignored its context but ran past its deadline.
		err = fmt.Errorf("task timed out after %v: %w", timeout, context.DeadlineExceeded)
	}
	return err
}

// taskInput builds the context a task sees (see the package documentation)
// and the states of the tasks it may refer to.
func taskInput(deps []string, input []byte, outs []store.TaskOutcome) (map[string]any, map[string]TaskStatus, error) {
	states := make(map[string]TaskStatus, len(outs))
	saved := make(map[string][]byte, len(outs))
	for _, o := range outs {
		states[o.Name] = TaskStatus(o.Status)
		if o.Status == string(TaskCompleted) && o.Context != nil {
			saved[o.Name] = o.Context
		}
	}
	var data map[string]any
	for _, d := range deps {
		b, ok := saved[d]
		if !ok {
			continue
		}
		m, err := decodeObject(b)
		if err != nil {
			return nil, nil, fmt.Errorf("saved context of %s: %w", d, err)
		}
		if data == nil {
			data = m
			continue
		}
		data = MergeJSON(data, m)
	}
	if data == nil {
		if input == nil {
			return nil, nil, errors.New("the execution's input was not found")
		}
		m, err := decodeObject(input)
		if err != nil {
			return nil, nil, fmt.Errorf("execution input: %w", err)
		}
		data = m
	}
	return data, states, nil
}
