package client

import "github.com/cloacina-go/cloacina/api"

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
	// RoleAdmin is the role of the keys of [Client.ListAdminKeys].
	RoleAdmin = "admin"
)

// Terminal reports whether an execution status is final: Completed,
// Failed or Cancelled.
func Terminal(status string) bool {
	return status == StatusCompleted || status == StatusFailed || status == StatusCancelled
}

// The types the client returns are the API's JSON shapes, declared once in
// package api and shared with the server.
type (
	// Tenant is a tenant of the server.
	Tenant = api.Tenant
	// PasswordRotation is the answer to [Client.RotatePassword]: the
	// tenant's database role got a new password (which the server never
	// shows).
	PasswordRotation = api.PasswordRotation
	// Key is an API key of a tenant. Secret is set only in the answer to
	// [Client.CreateKey]: the server shows it once.
	Key = api.Key
	// Execution is one execution of a workflow. A listing and the summary
	// returned by Cancel, Pause and Resume leave Context and Tasks empty,
	// and so does StartExecution when the execution has not finished. See
	// its methods DecodeContext and Duration.
	Execution = api.Execution
	// Task is one task of an execution.
	Task = api.Task
	// ExecutionPage is one page of [Client.ListExecutions], newest first.
	// NextCursor is empty on the last page.
	ExecutionPage = api.ExecutionPage
	// Event is one state change of an execution or of one of its tasks.
	Event = api.Event
	// TenantMetrics summarises a tenant's executions and queue.
	TenantMetrics = api.TenantMetrics
	// Workflow describes a workflow the server runs. Mermaid and DOT are
	// set by [Client.Workflow] only.
	Workflow = api.Workflow
	// WorkflowTask is one task of a workflow.
	WorkflowTask = api.WorkflowTask
	// Health is the body of /healthz and /readyz.
	Health = api.Health
)

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
