package cloacina

import (
	"time"

	"github.com/google/uuid"
)

// Result is the outcome of an execution.
type Result struct {
	ExecutionID     uuid.UUID
	WorkflowName    string
	WorkflowVersion string
	Status          ExecutionStatus
	// Error says why the execution failed (the first failed task's error).
	Error       string
	CreatedAt   time.Time
	StartedAt   time.Time // zero until the first task started
	CompletedAt time.Time // zero until terminal
	Duration    time.Duration
	// Context is the final context once the execution is terminal, and nil
	// before.
	Context *Context
	// Tasks in topological order.
	Tasks []TaskResult
}

// TaskResult is the outcome of one task of an execution.
type TaskResult struct {
	Name        string
	Status      TaskStatus
	Attempts    int
	Error       string
	ReadyAt     time.Time // when the latest attempt became ready to run
	StartedAt   time.Time // start of the latest attempt
	CompletedAt time.Time
	Duration    time.Duration // of the latest attempt
	// Recoveries counts how often the task was recovered from a runner that
	// stopped heartbeating.
	Recoveries int
}

// Task returns the result of the named task.
func (r *Result) Task(name string) (TaskResult, bool) {
	for _, t := range r.Tasks {
		if t.Name == name {
			return t, true
		}
	}
	return TaskResult{}, false
}

// ExecutionSummary is one execution in a listing.
type ExecutionSummary struct {
	ExecutionID     uuid.UUID
	WorkflowName    string
	WorkflowVersion string
	Status          ExecutionStatus
	Error           string
	CreatedAt       time.Time
	StartedAt       time.Time
	CompletedAt     time.Time
	Duration        time.Duration
}

// ListOptions filters [Runner.ListExecutions].
type ListOptions struct {
	// Statuses keeps executions in any of these states (all when empty).
	Statuses []ExecutionStatus
	// Workflow keeps executions of this workflow (all when empty).
	Workflow string
	// Limit is the page size (default 50, at most 1000).
	Limit int
	// Cursor continues a previous listing (its NextCursor).
	Cursor string
}

// ExecutionPage is one page of a listing, newest first.
type ExecutionPage struct {
	Executions []ExecutionSummary
	// NextCursor continues the listing; empty on the last page.
	NextCursor string
}

// Event records one state change of an execution or one of its tasks.
type Event struct {
	// ID identifies the event in its execution's log. It is 0 for the
	// start of an attempt still running, or of an execution not yet
	// ended, which are written when they end (see
	// [Runner.ExecutionEvents]). IDs follow the order of writing, not of
	// time.
	ID          int64
	ExecutionID uuid.UUID
	Task        string // empty for execution events
	Type        EventType
	Attempt     int
	Message     string
	Worker      string
	At          time.Time
}

// EventType names a kind of [Event].
type EventType string

// Event types.
const (
	EventExecutionCreated   EventType = "execution_created"
	EventExecutionStarted   EventType = "execution_started"
	EventExecutionCompleted EventType = "execution_completed"
	EventExecutionFailed    EventType = "execution_failed"
	EventExecutionPaused    EventType = "execution_paused"
	EventExecutionResumed   EventType = "execution_resumed"
	EventExecutionCancelled EventType = "execution_cancelled"
	EventTaskReady          EventType = "task_ready"
	EventTaskStarted        EventType = "task_started"
	EventTaskCompleted      EventType = "task_completed"
	EventTaskFailed         EventType = "task_failed"
	EventTaskRetryScheduled EventType = "task_retry_scheduled"
	EventTaskSkipped        EventType = "task_skipped"
	EventTaskReleased       EventType = "task_released"
	EventTaskRecovered      EventType = "task_recovered"
	EventTaskAbandoned      EventType = "task_abandoned"
)

// Metrics summarises the executions in a runner's database (one tenant).
type Metrics struct {
	// ActiveExecutions are Pending, Running or Paused.
	ActiveExecutions int64
	TotalExecutions  int64
	// AvgExecutionTime is the mean time from start to end of finished
	// executions.
	AvgExecutionTime time.Duration
	ByStatus         map[ExecutionStatus]int64
	// ReadyTasks counts every Ready task, including those of Paused
	// executions and retries whose time has not come: the queue's depth.
	ReadyTasks   int64
	RunningTasks int64
	// OldestReadyTask is when the longest-waiting runnable task became
	// ready (zero when none is): the queue's lag. Only work that could run
	// now counts: a task whose ready time has come, of a Pending or Running
	// execution; a Paused execution's tasks do not.
	OldestReadyTask time.Time
}
