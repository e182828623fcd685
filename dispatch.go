package cloacina

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/cloacina-go/cloacina/internal/store"
)

// loop is the dispatcher: the one goroutine that writes scheduling state.
func (r *Runner) loop() {
	defer close(r.loopDone)
	ctx := context.Background()
	timer := time.NewTimer(r.cfg.PollInterval)
	defer timer.Stop()
	failures := 0
	for {
		select {
		case <-r.wake:
		case <-timer.C:
		case <-r.stop:
			// Final round: record what the last tasks reported.
			fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if _, err := r.tick(fctx, false); err != nil {
				r.log.Error("recording final task results", "err", err)
			}
			cancel()
			return
		}
		wait, err := r.tick(ctx, true)
		if err != nil {
			failures++
			wait = min(time.Duration(failures)*100*time.Millisecond, 5*time.Second)
			r.log.Error("dispatch round failed; retrying", "err", err, "retry_in", wait)
		} else {
			failures = 0
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}

// tick runs one dispatch round in one transaction: record new executions,
// apply finished attempts, advance the affected executions, claim ready
// tasks. It returns how long the loop may sleep before the next round.
func (r *Runner) tick(ctx context.Context, claim bool) (time.Duration, error) {
	r.mu.Lock()
	creates := r.creates
	r.creates = nil
	outs := r.outcomes
	r.outcomes = nil
	free := r.cfg.MaxConcurrentTasks - r.inflight
	if r.draining || !claim {
		free = 0
	}
	recoverOwn := r.recoverOwn && claim
	r.mu.Unlock()

	now := time.Now()
	var claimed []*store.Task
	var finished []string
	err := r.store.Write(ctx, func(tx store.Tx) error {
		claimed, finished = nil, nil
		var events []*store.Event
		for _, c := range creates {
			if err := tx.InsertExecutions(ctx, c.execs, c.tasks); err != nil {
				return err
			}
			events = append(events, c.events...)
		}
		touched, evs, err := r.applyOutcomes(ctx, tx, outs, now)
		if err != nil {
			return err
		}
		events = append(events, evs...)
		if recoverOwn {
			orphans, err := tx.RunningTasks(ctx, store.RunningFilter{ClaimedBy: r.cfg.WorkerID})
			if err != nil {
				return err
			}
			rec, evs, err := r.recoverTasks(ctx, tx, orphans, "runner "+r.cfg.WorkerID+" restarted", now)
			if err != nil {
				return err
			}
			for id := range rec {
				touched[id] = true
			}
			events = append(events, evs...)
		}
		finished, evs, err = r.advance(ctx, tx, touched, now)
		if err != nil {
			return err
		}
		events = append(events, evs...)
		if free > 0 && len(r.wfNames) > 0 {
			claimed, err = tx.ClaimTasks(ctx, store.ClaimParams{Worker: r.cfg.WorkerID, Now: now, Limit: free, Workflows: r.wfNames})
			if err != nil {
				return err
			}
			evs, err = r.startExecutions(ctx, tx, claimed, now)
			if err != nil {
				return err
			}
			events = append(events, evs...)
		}
		return tx.InsertEvents(ctx, events)
	})
	if err != nil {
		// Keep the finished attempts for the next round; refuse the creations.
		r.mu.Lock()
		r.outcomes = append(outs, r.outcomes...)
		r.mu.Unlock()
		for _, c := range creates {
			c.done <- fmt.Errorf("cloacina: recording execution: %w", err)
		}
		return 0, err
	}
	for _, c := range creates {
		c.done <- nil
	}
	if recoverOwn {
		r.mu.Lock()
		r.recoverOwn = false
		r.mu.Unlock()
	}
	r.notifyFinished(finished)
	for _, t := range claimed {
		r.launch(t)
	}
	if len(claimed) == free && free > 0 {
		return 0, nil // there may be more ready work
	}
	r.mu.Lock()
	busy := len(r.outcomes) > 0 || len(r.creates) > 0
	r.mu.Unlock()
	if busy {
		return 0, nil
	}
	if free == 0 {
		return r.cfg.PollInterval, nil
	}
	// Sleep until the earliest retry comes due, or the poll interval.
	wait := r.cfg.PollInterval
	next, ok, err := r.store.NextReadyAt(ctx, r.wfNames)
	if err != nil {
		return wait, nil
	}
	if ok {
		if d := time.Until(next); d < wait {
			wait = max(d, time.Millisecond)
		}
	}
	return wait, nil
}

// applyOutcomes writes the finished attempts as guarded transitions and
// returns the executions they touched.
func (r *Runner) applyOutcomes(ctx context.Context, tx store.Tx, outs []outcome, now time.Time) (map[string]bool, []*store.Event, error) {
	touched := map[string]bool{}
	if len(outs) == 0 {
		return touched, nil, nil
	}
	ups := make([]store.TaskUpdate, len(outs))
	for i, o := range outs {
		u := store.TaskUpdate{ID: o.task.ID, From: string(TaskRunning), Attempt: o.task.Attempt,
			ClaimedBy: r.cfg.WorkerID, Error: o.err, Release: true}
		switch o.kind {
		case outcomeCompleted:
			u.To, u.Context, u.CompletedAt = string(TaskCompleted), o.context, o.at
		case outcomeFailed:
			u.To, u.CompletedAt = string(TaskFailed), o.at
		case outcomeSkipped:
			u.To, u.CompletedAt = string(TaskSkipped), o.at
		case outcomeRetry:
			u.To, u.ReadyAt = string(TaskReady), o.readyAt
		case outcomeRelease:
			u.To, u.ReadyAt, u.UndoAttempt = string(TaskReady), now, true
		}
		ups[i] = u
	}
	changed, err := tx.UpdateTasks(ctx, ups)
	if err != nil {
		return nil, nil, err
	}
	var events []*store.Event
	for _, o := range outs {
		t := o.task
		if !changed[t.ID] {
			r.log.Warn("task result discarded: the claim was lost", "execution", t.ExecutionID, "task", t.Name, "attempt", t.Attempt)
			continue
		}
		ev := &store.Event{ExecutionID: t.ExecutionID, TaskName: t.Name, Attempt: t.Attempt, Message: o.err,
			Worker: r.cfg.WorkerID, CreatedAt: o.at}
		switch o.kind {
		case outcomeCompleted:
			ev.Type = string(EventTaskCompleted)
			touched[t.ExecutionID] = true
		case outcomeFailed:
			ev.Type = string(EventTaskFailed)
			touched[t.ExecutionID] = true
		case outcomeSkipped:
			ev.Type = string(EventTaskSkipped)
			touched[t.ExecutionID] = true
		case outcomeRetry:
			ev.Type = string(EventTaskRetryScheduled)
			ev.Message = fmt.Sprintf("retry at %s after: %s", o.readyAt.UTC().Format(time.RFC3339Nano), o.err)
		case outcomeRelease:
			ev.Type = string(EventTaskReleased)
			ev.Message = "released at shutdown"
		}
		events = append(events, ev)
	}
	return touched, events, nil
}

// advance moves the touched executions forward: tasks whose dependencies
// are all terminal become Ready (or Skipped when their trigger rule, if it
// needs no context, says so, cascading), and executions whose tasks are all
// terminal finish. It returns the executions that finished.
func (r *Runner) advance(ctx context.Context, tx store.Tx, touched map[string]bool, now time.Time) ([]string, []*store.Event, error) {
	if len(touched) == 0 {
		return nil, nil, nil
	}
	ids := make([]string, 0, len(touched))
	for id := range touched {
		ids = append(ids, id)
	}
	rows, err := tx.TaskStates(ctx, ids)
	if err != nil {
		return nil, nil, err
	}
	byExec := map[string][]*store.Task{}
	for _, t := range rows {
		byExec[t.ExecutionID] = append(byExec[t.ExecutionID], t)
	}
	var ups []store.TaskUpdate
	var events []*store.Event
	var finishing []string
	var execUps []store.ExecutionUpdate
	for _, id := range ids {
		tasks := byExec[id]
		if len(tasks) == 0 {
			continue
		}
		wf := r.workflows[tasks[0].WorkflowName]
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
				rule := r.ruleOf(wf, t.Name)
				to, reason := TaskReady, ""
				if !rule.needsContext() && !rule.evaluate(t.Deps, states, nil) {
					to, reason = TaskSkipped, skipReason(rule, t.Deps, states)
				}
				u := store.TaskUpdate{ID: t.ID, From: string(TaskNotStarted), To: string(to), Error: reason}
				ev := &store.Event{ExecutionID: id, TaskName: t.Name, Message: reason, CreatedAt: now}
				if to == TaskReady {
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
			execUps = append(execUps, store.ExecutionUpdate{ID: id,
				From: []string{string(ExecutionPending), string(ExecutionRunning), string(ExecutionPaused)},
				To:   string(status), Error: msg, CompletedAt: now, StartedAt: now})
		}
	}
	if _, err := tx.UpdateTasks(ctx, ups); err != nil {
		return nil, nil, err
	}
	if len(execUps) == 0 {
		return nil, events, nil
	}
	outputs, err := r.finalOutputs(ctx, tx, finishing, byExec)
	if err != nil {
		return nil, nil, err
	}
	for i := range execUps {
		execUps[i].Output = outputs[execUps[i].ID]
	}
	changed, err := tx.UpdateExecutions(ctx, execUps)
	if err != nil {
		return nil, nil, err
	}
	var finished []string
	for _, u := range execUps {
		if !changed[u.ID] {
			continue // cancelled meanwhile
		}
		finished = append(finished, u.ID)
		typ := EventExecutionCompleted
		if u.To == string(ExecutionFailed) {
			typ = EventExecutionFailed
		}
		events = append(events, &store.Event{ExecutionID: u.ID, Type: string(typ), Message: u.Error, Worker: r.cfg.WorkerID, CreatedAt: now})
	}
	return finished, events, nil
}

// finalOutputs computes the final context of the executions: the merge, in
// topological order, of the saved contexts of the completed tasks that no
// completed task depends on; the input when no task completed.
func (r *Runner) finalOutputs(ctx context.Context, tx store.Tx, ids []string, byExec map[string][]*store.Task) (map[string][]byte, error) {
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

func (r *Runner) ruleOf(wf *Workflow, task string) TriggerRule {
	if wf == nil {
		return TriggerRule{}
	}
	if t, ok := wf.byID[task]; ok && t.trigger != nil {
		return *t.trigger
	}
	return TriggerRule{}
}

// startExecutions moves the executions of claimed tasks from Pending to
// Running and writes their task_started events.
func (r *Runner) startExecutions(ctx context.Context, tx store.Tx, claimed []*store.Task, now time.Time) ([]*store.Event, error) {
	if len(claimed) == 0 {
		return nil, nil
	}
	var events []*store.Event
	seen := map[string]bool{}
	var ups []store.ExecutionUpdate
	for _, t := range claimed {
		events = append(events, &store.Event{ExecutionID: t.ExecutionID, TaskName: t.Name, Type: string(EventTaskStarted),
			Attempt: t.Attempt, Worker: r.cfg.WorkerID, CreatedAt: now})
		if !seen[t.ExecutionID] {
			seen[t.ExecutionID] = true
			ups = append(ups, store.ExecutionUpdate{ID: t.ExecutionID, From: []string{string(ExecutionPending)},
				To: string(ExecutionRunning), StartedAt: now})
		}
	}
	changed, err := tx.UpdateExecutions(ctx, ups)
	if err != nil {
		return nil, err
	}
	for _, u := range ups {
		if changed[u.ID] {
			events = append(events, &store.Event{ExecutionID: u.ID, Type: string(EventExecutionStarted), Worker: r.cfg.WorkerID, CreatedAt: now})
		}
	}
	return events, nil
}

// launch runs a claimed task in its own goroutine.
func (r *Runner) launch(t *store.Task) {
	tctx, cancel := context.WithCancelCause(context.Background())
	r.mu.Lock()
	r.inflight++
	r.running[t.ID] = &runningTask{executionID: t.ExecutionID, cancel: cancel}
	r.workers.Add(1)
	r.mu.Unlock()
	go func() {
		defer r.workers.Done()
		o := r.runTask(tctx, t)
		cancel(nil)
		r.mu.Lock()
		r.inflight--
		delete(r.running, t.ID)
		r.outcomes = append(r.outcomes, o)
		r.mu.Unlock()
		r.signal()
	}()
}

// runTask runs one claimed attempt and reports its outcome.
func (r *Runner) runTask(ctx context.Context, t *store.Task) outcome {
	o := outcome{task: t}
	fail := func(kind outcomeKind, msg string) outcome {
		o.kind, o.err, o.at = kind, msg, time.Now()
		return o
	}
	wf := r.workflows[t.WorkflowName]
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
	names := append([]string(nil), t.Deps...)
	if rule.needsContext() || !rule.IsDefault() {
		for _, c := range rule.conds {
			if c.task != "" {
				names = append(names, c.task)
			}
		}
	}
	input, deps, err := r.store.TaskInputs(ctx, t.ExecutionID, names)
	if err != nil {
		r.log.Warn("loading task input failed; releasing the task", "execution", t.ExecutionID, "task", t.Name, "err", err)
		return fail(outcomeRelease, "")
	}
	data, states, err := taskInput(t.Deps, input, deps)
	if err != nil {
		return fail(outcomeFailed, err.Error())
	}
	if rule.needsContext() && !rule.evaluate(t.Deps, states, data) {
		return fail(outcomeSkipped, "trigger rule "+rule.String()+" is false")
	}
	c := &Context{data: data}
	timeout := r.cfg.TaskTimeout
	if def.timeout > 0 {
		timeout = def.timeout
	}
	runErr := r.call(ctx, def.fn, c, timeout)
	o.at = time.Now()
	if runErr == nil {
		b, err := c.MarshalJSON()
		switch {
		case err != nil:
			runErr = Permanent(fmt.Errorf("saving context: %w", err))
		case len(b) > r.cfg.MaxContextBytes:
			runErr = Permanent(fmt.Errorf("%w: %d bytes, the limit is %d", ErrContextTooLarge, len(b), r.cfg.MaxContextBytes))
		default:
			o.kind, o.context = outcomeCompleted, b
			return o
		}
	}
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, errShutdown):
		return fail(outcomeRelease, "")
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
func (r *Runner) call(ctx context.Context, fn TaskFunc, c *Context, timeout time.Duration) (err error) {
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
		m, err := decodeObject(input)
		if err != nil {
			return nil, nil, fmt.Errorf("execution input: %w", err)
		}
		data = m
	}
	return data, states, nil
}
