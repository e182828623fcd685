package client

import (
	"encoding/json"
	"time"
)

// Execution statuses (the library's).
const (
	StatusPending   = "Pending"
	StatusRunning   = "Running"
	StatusPaused    = "Paused"
	StatusCompleted = "Completed"
	StatusFailed    = "Failed"
	StatusCancelled = "Cancelled"
)

// Task statuses (the library's).
const (
	TaskNotStarted = "NotStarted"
	TaskReady      = "Ready"
	TaskRunning    = "Running"
	TaskCompleted  = "Completed"
	TaskFailed     = "Failed"
	TaskSkipped    = "Skipped"
)

// Key roles.
const (
	RoleRead  = "read"
	RoleWrite = "write"
)

// Terminal reports whether an execution status is final: Completed,
// Failed or Cancelled.
func Terminal(status string) bool {
	return status == StatusCompleted || status == StatusFailed || status == StatusCancelled
}

// Tenant is a tenant of the server.
type Tenant struct {
	TenantID  string    `json:"tenant_id"`
	CreatedAt time.Time `json:"created_at,omitzero"`
}

// PasswordRotation is the answer to [Client.RotatePassword]: the tenant's
// database role got a new password (which the server never shows).
type PasswordRotation struct {
	TenantID  string    `json:"tenant_id"`
	Username  string    `json:"username"`
	RotatedAt time.Time `json:"rotated_at"`
}

// Key is an API key of a tenant. Secret is set only in the answer to
// [Client.CreateKey]: the server shows it once.
type Key struct {
	KeyID      string    `json:"key_id"`
	Secret     string    `json:"key,omitempty"`
	Name       string    `json:"name"`
	Role       string    `json:"role"`
	TenantID   string    `json:"tenant_id"`
	CreatedAt  time.Time `json:"created_at,omitzero"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
}

// Execution is one execution of a workflow. A listing and the summary
// returned by Cancel, Pause and Resume leave Context and Tasks empty, and
// so does StartExecution when the execution has not finished.
type Execution struct {
	ExecutionID     string    `json:"execution_id"`
	WorkflowName    string    `json:"workflow_name"`
	WorkflowVersion string    `json:"workflow_version,omitempty"`
	Status          string    `json:"status"`
	Error           string    `json:"error,omitempty"`
	CreatedAt       time.Time `json:"created_at,omitzero"`
	StartedAt       time.Time `json:"started_at,omitzero"`
	CompletedAt     time.Time `json:"completed_at,omitzero"`
	DurationMS      float64   `json:"duration_ms,omitempty"`
	// Context is the final context (a JSON object) once the execution has
	// ended; empty or null before. See DecodeContext.
	Context json.RawMessage `json:"context,omitempty"`
	// Tasks are the execution's tasks in topological order.
	Tasks []Task `json:"tasks,omitempty"`
}

// DecodeContext decodes the execution's final context into v. It leaves v
// alone when there is no context yet.
func (e *Execution) DecodeContext(v any) error {
	if len(e.Context) == 0 || string(e.Context) == "null" {
		return nil
	}
	return json.Unmarshal(e.Context, v)
}

// Duration returns DurationMS as a time.Duration.
func (e *Execution) Duration() time.Duration {
	return time.Duration(e.DurationMS * float64(time.Millisecond))
}

// Task is one task of an execution.
type Task struct {
	Name        string    `json:"name"`
	Status      string    `json:"status"`
	Attempts    int       `json:"attempts"`
	Error       string    `json:"error,omitempty"`
	ReadyAt     time.Time `json:"ready_at,omitzero"`
	StartedAt   time.Time `json:"started_at,omitzero"`
	CompletedAt time.Time `json:"completed_at,omitzero"`
	DurationMS  float64   `json:"duration_ms,omitempty"`
	Recoveries  int       `json:"recoveries,omitempty"`
}

// ExecutionPage is one page of [Client.ListExecutions], newest first.
// NextCursor is empty on the last page.
type ExecutionPage struct {
	Executions []Execution `json:"executions"`
	NextCursor string      `json:"next_cursor,omitempty"`
}

// ListOptions filters [Client.ListExecutions]. Zero fields filter
// nothing.
type ListOptions struct {
	// Statuses keeps executions in any of these states.
	Statuses []string
	// Workflow keeps executions of this workflow.
	Workflow string
	// Limit is the page size, 1 to 1000 (the server's default: 50).
	Limit int
	// Cursor continues a listing: the previous page's NextCursor.
	Cursor string
}

// Event is one state change of an execution or of one of its tasks.
type Event struct {
	ID      int64     `json:"id"`
	Task    string    `json:"task,omitempty"`
	Type    string    `json:"type"`
	Attempt int       `json:"attempt,omitempty"`
	Message string    `json:"message,omitempty"`
	Worker  string    `json:"worker,omitempty"`
	At      time.Time `json:"at"`
}

// TenantMetrics summarises a tenant's executions and queue.
type TenantMetrics struct {
	ActiveExecutions int64            `json:"active_executions"`
	TotalExecutions  int64            `json:"total_executions"`
	AvgExecutionMS   float64          `json:"avg_execution_ms"`
	ByStatus         map[string]int64 `json:"by_status"`
	ReadyTasks       int64            `json:"ready_tasks"`
	RunningTasks     int64            `json:"running_tasks"`
	// OldestReadyTask is when the longest-waiting ready task became ready
	// (zero when none is).
	OldestReadyTask time.Time `json:"oldest_ready_task,omitzero"`
}

// Workflow describes a workflow the server runs. Mermaid and DOT are set
// by [Client.Workflow] only.
type Workflow struct {
	Name        string         `json:"name"`
	Version     string         `json:"version"`
	Description string         `json:"description,omitempty"`
	Tasks       []WorkflowTask `json:"tasks"`
	Mermaid     string         `json:"mermaid,omitempty"`
	DOT         string         `json:"dot,omitempty"`
}

// WorkflowTask is one task of a workflow.
type WorkflowTask struct {
	Name        string   `json:"name"`
	DependsOn   []string `json:"depends_on"`
	Description string   `json:"description,omitempty"`
}

// Health is the body of /healthz and /readyz.
type Health struct {
	Status string `json:"status"`
	// Warning is set when the server runs without authentication.
	Warning string `json:"warning,omitempty"`
}
