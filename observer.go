package cloacina

import (
	"time"

	"github.com/cloacina-go/cloacina/internal/store"
	"github.com/google/uuid"
)

// Observer is told what happens in a runner, as it happens, so that a
// program can count and time it (the server turns it into Prometheus
// metrics). Every field is optional. The functions are called from the
// engine's goroutines and must be safe for concurrent use and return
// quickly. Only work done by this process is observed: a task run by
// another process is seen by that process's observer.
//
// Like net/http/httptrace.ClientTrace, it is a struct of functions, so that
// new events can be added without breaking existing observers.
type Observer struct {
	// TaskFinished is called when an attempt of a task run by this process
	// ends, just before its outcome is written (a write that fails is
	// retried; the attempt is reported once).
	TaskFinished func(TaskObservation)
	// ExecutionStarted is called once an execution started by this
	// process is committed.
	ExecutionStarted func(ExecutionObservation)
	// ExecutionFinished is called once this process has committed the end
	// of an execution: completed or failed by its last task, or cancelled.
	// It is called before Wait returns for that execution in this process.
	ExecutionFinished func(ExecutionObservation)
}

// TaskOutcome is how one attempt of a task ended.
type TaskOutcome string

// Task outcomes.
const (
	OutcomeCompleted TaskOutcome = "completed"
	OutcomeFailed    TaskOutcome = "failed"
	// OutcomeRetry: the attempt failed and the task will be retried.
	OutcomeRetry TaskOutcome = "retry"
	// OutcomeSkipped: a trigger rule reading the context was false.
	OutcomeSkipped TaskOutcome = "skipped"
	// OutcomeReleased: the runner shut down mid-attempt and gave the task
	// back without using up the attempt.
	OutcomeReleased TaskOutcome = "released"
)

// TaskObservation describes one finished attempt of a task.
type TaskObservation struct {
	// Tenant is the runner's PostgreSQL schema, or the tenant id given by
	// a tenant manager (empty for a plain runner on SQLite).
	Tenant      string
	ExecutionID uuid.UUID
	Workflow    string
	Task        string
	Attempt     int
	Outcome     TaskOutcome
	// Waited is the time from the task becoming ready to its claim.
	Waited time.Duration
	// Duration is the time the attempt ran.
	Duration time.Duration
	// Error is the attempt's error (empty when it completed).
	Error string
}

// ExecutionObservation describes an execution that started or ended.
type ExecutionObservation struct {
	// Tenant is as in TaskObservation.
	Tenant      string
	ExecutionID uuid.UUID
	Workflow    string
	// Status is Pending when the execution started, and its terminal
	// status when it ended.
	Status ExecutionStatus
}

// WithObserver sets the runner's [Observer]. On an [Engine], an observer
// given to [Engine.Runner] replaces the engine's for that tenant.
func WithObserver(o *Observer) Option { return func(c *Config) { c.Observer = o } }

// WithTenantLabel sets the Tenant reported to the [Observer] (default: the
// schema). Tenant managers set it to the tenant id.
func WithTenantLabel(label string) Option { return func(c *Config) { c.TenantLabel = label } }

func (t *tenant) label() string {
	if t.cfg.TenantLabel != "" {
		return t.cfg.TenantLabel
	}
	return t.name
}

// observeTask reports a finished attempt to the observer, if any.
func (t *tenant) observeTask(task *store.Task, o outcome) {
	obs := t.cfg.Observer
	if obs == nil || obs.TaskFinished == nil {
		return
	}
	kind := OutcomeFailed
	switch o.kind {
	case outcomeCompleted:
		kind = OutcomeCompleted
	case outcomeRetry:
		kind = OutcomeRetry
	case outcomeSkipped:
		kind = OutcomeSkipped
	case outcomeRelease:
		kind = OutcomeReleased
	}
	id, _ := uuid.Parse(task.ExecutionID)
	ob := TaskObservation{
		Tenant: t.label(), ExecutionID: id, Workflow: task.WorkflowName, Task: task.Name,
		Attempt: task.Attempt, Outcome: kind, Error: o.err,
	}
	if !task.ReadyAt.IsZero() && !task.StartedAt.IsZero() && task.StartedAt.After(task.ReadyAt) {
		ob.Waited = task.StartedAt.Sub(task.ReadyAt)
	}
	if !task.StartedAt.IsZero() && o.at.After(task.StartedAt) {
		ob.Duration = o.at.Sub(task.StartedAt)
	}
	obs.TaskFinished(ob)
}

// observeExecutions reports started (finished false) or finished
// executions to the observer, if any.
func (t *tenant) observeExecutions(obs []ExecutionObservation, finished bool) {
	o := t.cfg.Observer
	if o == nil {
		return
	}
	fn := o.ExecutionStarted
	if finished {
		fn = o.ExecutionFinished
	}
	if fn == nil {
		return
	}
	for _, ob := range obs {
		ob.Tenant = t.label()
		fn(ob)
	}
}
