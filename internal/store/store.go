// Package store is the storage layer of the workflow engine: one interface,
// [Store], implemented once over database/sql for both SQLite and
// PostgreSQL. The SQL differs between the two only in small fragments
// chosen by a dialect (placeholders, row locking, unpacking a batch of
// rows: one JSON parameter on SQLite, an array per column on PostgreSQL),
// so every operation has one code path.
//
// Every state change is a guarded write: the update names the state it
// expects the row to be in, and reports which rows it changed. The engine
// decides what to do; the store only reads and writes.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned when a row does not exist.
var ErrNotFound = errors.New("store: not found")

// Execution is one row of the executions table.
type Execution struct {
	ID              string
	WorkflowName    string
	WorkflowVersion string
	Status          string
	Input           []byte // JSON object
	Output          []byte // JSON object; nil until the execution is terminal
	Error           string
	CreatedAt       time.Time
	StartedAt       time.Time // zero until the first task starts
	CompletedAt     time.Time // zero until terminal
	UpdatedAt       time.Time
	// StartedBy is the worker that started the execution (set with
	// StartedAt); empty until then, and in rows written before the
	// column existed.
	StartedBy string
}

// Task is one row of the tasks table: one task of one execution.
type Task struct {
	ID            int64
	ExecutionID   string
	WorkflowName  string
	Name          string
	Deps          []string
	Status        string
	Attempt       int // attempts started so far
	ReadyAt       time.Time
	Context       []byte // saved context (JSON object) once completed
	Error         string
	ClaimedBy     string
	HeartbeatAt   time.Time
	RecoveryCount int
	StartedAt     time.Time
	CompletedAt   time.Time
	// Input and WorkflowVersion are set by ClaimTasks on a root task (one
	// without dependencies): its execution's input and workflow version,
	// read in the claim itself.
	Input           []byte
	WorkflowVersion string
}

// Event is one row of the events table: a record of one state change.
type Event struct {
	ID          int64
	ExecutionID string
	TaskName    string // empty for execution events
	Type        string
	Attempt     int
	Message     string
	Worker      string
	CreatedAt   time.Time
}

// TaskUpdate is a guarded transition of one task: it applies only when the
// row is in state From (and, when set, at Attempt and claimed by
// ClaimedBy).
type TaskUpdate struct {
	ID   int64
	From string
	To   string
	// Guards; zero values do not guard.
	Attempt   int
	ClaimedBy string
	// ClaimedAt guards with the claim's start time (started_at), which
	// tells apart two claims of one attempt by one worker (after a
	// recovery, the same runner may claim the task again).
	ClaimedAt time.Time
	// New values.
	Context     []byte    // set when non-nil
	Error       string    // always set
	ReadyAt     time.Time // set when non-zero
	CompletedAt time.Time // set when non-zero
	// Release clears the claim (claimed_by, heartbeat_at).
	Release bool
	// Recovered increments recovery_count.
	Recovered bool
	// UndoAttempt decrements attempt: the attempt was interrupted through
	// no fault of the task (a shutdown) and does not count.
	UndoAttempt bool
}

// ExecutionUpdate is a guarded transition of one execution: it applies
// only when the row's status is one of From.
type ExecutionUpdate struct {
	ID        string
	From      []string
	To        string
	Output    []byte    // set when non-nil
	Error     string    // set when non-empty
	StartedAt time.Time // set when non-zero and not already set
	// StartedBy is the worker recorded with StartedAt, when this update
	// sets it.
	StartedBy   string
	CompletedAt time.Time // set when non-zero
}

// ExecutionStart is when, and by which worker, an execution started.
// By is empty for an execution started before the store recorded it.
type ExecutionStart struct {
	At time.Time // zero: never started
	By string
}

// ClaimParams selects the tasks a worker claims.
type ClaimParams struct {
	Worker    string
	Now       time.Time
	Limit     int
	Workflows []string // only tasks of these workflows
}

// RunningFilter selects Running tasks, for recovery.
type RunningFilter struct {
	ClaimedBy       string
	HeartbeatBefore time.Time
	Limit           int
}

// TaskRef names one task of one execution.
type TaskRef struct {
	ExecutionID string
	Name        string
}

// TaskOutcome is a task's state and saved context as a dependent sees it.
type TaskOutcome struct {
	Name    string
	Status  string
	Context []byte
}

// ExecutionFilter selects executions for listing, newest first.
type ExecutionFilter struct {
	Statuses []string
	Workflow string
	Limit    int
	// Before, when set, lists only executions older than this id (the
	// cursor of the previous page).
	Before string
}

// Metrics summarises a store's executions.
type Metrics struct {
	ByStatus    map[string]int64
	Total       int64
	AvgDuration time.Duration // over terminal executions that started
	// ReadyTasks counts every Ready task: those of paused executions and
	// retries not yet due included (the queue's depth, read from the
	// ready-task index alone).
	ReadyTasks   int64
	RunningTasks int64
	// OldestReadyTask is the earliest ready_at of a runnable task: one
	// that is due, of a Pending or Running execution (zero when none is).
	OldestReadyTask time.Time
}

// Store is the engine's database. All methods are safe for concurrent use.
type Store interface {
	// Backend is "sqlite" or "postgres".
	Backend() string
	// Write runs fn in a write transaction and commits it when fn returns
	// nil. On PostgreSQL, serialization failures and deadlocks are retried.
	Write(ctx context.Context, fn func(Tx) error) error

	GetExecution(ctx context.Context, id string) (*Execution, error)
	// GetExecutionTasks reads an execution and its tasks in one go (one
	// transaction when the store acts as a role).
	GetExecutionTasks(ctx context.Context, id string) (*Execution, []*Task, error)
	ListExecutions(ctx context.Context, f ExecutionFilter) ([]*Execution, error)
	ListTasks(ctx context.Context, executionID string) ([]*Task, error)
	ListEvents(ctx context.Context, executionID string, afterID int64, limit int) ([]*Event, error)
	// NextReadyAt returns the earliest ready_at of a Ready task of the given
	// workflows in an execution that may run, and false when there is none.
	NextReadyAt(ctx context.Context, workflows []string) (time.Time, bool, error)
	Metrics(ctx context.Context) (*Metrics, error)
	// Analyze refreshes the planner's statistics of the executions and
	// tasks tables (PostgreSQL; nothing on SQLite), as the pool's user,
	// not the store's role; tables that user does not own are skipped by
	// the server with a warning, not an error.
	Analyze(ctx context.Context) error
	Close() error
}

// Tx is a write transaction.
type Tx interface {
	InsertExecutions(ctx context.Context, execs []*Execution, tasks []*Task) error
	InsertEvents(ctx context.Context, events []*Event) error
	// ClaimTasks moves up to p.Limit Ready tasks whose ready_at has passed,
	// of executions that are Pending or Running, to Running, claimed by
	// p.Worker with their attempt incremented, and returns them (root
	// tasks with their execution's input and workflow version).
	ClaimTasks(ctx context.Context, p ClaimParams) ([]*Task, error)
	// UpdateTasks applies guarded task transitions and returns the ids of
	// the rows that changed.
	UpdateTasks(ctx context.Context, ups []TaskUpdate) (map[int64]bool, error)
	// UpdateExecutions applies guarded execution transitions and returns the
	// executions that changed, each with its start after the update.
	UpdateExecutions(ctx context.Context, ups []ExecutionUpdate) (map[string]ExecutionStart, error)
	// StartExecutions moves the executions that are Pending to Running,
	// started at at by worker (unless already started), and returns the
	// ids of those that moved. It is UpdateExecutions for the commonest
	// transition, with one parameter row per execution instead of ten.
	StartExecutions(ctx context.Context, ids []string, at time.Time, worker string) (map[string]bool, error)
	// TaskStates returns every task of the executions (id, execution,
	// workflow, name, deps, status, attempt, error), without contexts, in insertion order.
	TaskStates(ctx context.Context, executionIDs []string) ([]*Task, error)
	// CompletedContexts returns the saved contexts of the completed tasks of
	// the executions, by execution id and task name.
	CompletedContexts(ctx context.Context, executionIDs []string) (map[string]map[string][]byte, error)
	// RunningTasks returns Running tasks claimed by f.ClaimedBy (any
	// claimant when empty) whose heartbeat is older than f.HeartbeatBefore
	// (any when zero), oldest heartbeat first, at most f.Limit.
	RunningTasks(ctx context.Context, f RunningFilter) ([]*Task, error)
	// LoadInputs returns the inputs of the executions, by id, and the
	// state and saved context of the given tasks: what claimed tasks need
	// to start (beyond what ClaimTasks returns), read in the claiming
	// transaction.
	LoadInputs(ctx context.Context, executionIDs []string, tasks []TaskRef) (map[string][]byte, map[TaskRef]TaskOutcome, error)
	// Heartbeat renews the heartbeat of the given tasks that are still
	// Running under worker's claim. It returns the ids it renewed, and the
	// ids (among all given) whose execution was cancelled.
	Heartbeat(ctx context.Context, worker string, ids []int64, now time.Time) (alive, cancelled map[int64]bool, err error)
	// NotifyReady announces on commit that this schema has ready tasks
	// (PostgreSQL LISTEN/NOTIFY; a no-op on SQLite).
	NotifyReady(ctx context.Context, sender string) error
	// GetExecution reads an execution inside the transaction.
	GetExecution(ctx context.Context, id string) (*Execution, error)
}
