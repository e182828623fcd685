// Package api holds the JSON shapes of the HTTP API in docs/http-api.md,
// shared by package server and package client.
//
// The server fills these types from the library's values and encodes them
// with encoding/json; the client decodes the server's answers into them.
// Times are UTC; fields tagged omitzero are left out when zero (a zero
// time, a nil slice).
package api

import (
	"encoding/json"
	"time"
)

// Tenant is a tenant of the server. A listing leaves CreatedAt zero.
type Tenant struct {
	TenantID  string    `json:"tenant_id"`
	CreatedAt time.Time `json:"created_at,omitzero"`
}

// Tenants is the body of GET /tenants.
type Tenants struct {
	Tenants []Tenant `json:"tenants"`
}

// PasswordRotation is the answer to a password rotation: the tenant's
// database role got a new password (which the server never shows).
type PasswordRotation struct {
	TenantID  string    `json:"tenant_id"`
	Username  string    `json:"username"`
	RotatedAt time.Time `json:"rotated_at"`
}

// Key is an API key of a tenant. Secret is set only in the answer to the
// key's creation: the server shows it once.
type Key struct {
	KeyID      string    `json:"key_id"`
	Secret     string    `json:"key,omitempty"`
	Name       string    `json:"name"`
	Role       string    `json:"role"`
	TenantID   string    `json:"tenant_id"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
}

// Keys is the body of a tenant's key listing.
type Keys struct {
	Keys []Key `json:"keys"`
}

// Started answers a start that did not wait for the execution's end.
type Started struct {
	ExecutionID  string `json:"execution_id"`
	Status       string `json:"status"`
	WorkflowName string `json:"workflow_name"`
}

// Execution is one execution of a workflow. A listing and the summary
// returned by cancel, pause and resume leave Context and Tasks nil, and
// so they are not in the JSON; a start that did not wait answers only
// ExecutionID, WorkflowName and Status (see [Started]).
type Execution struct {
	ExecutionID     string    `json:"execution_id"`
	WorkflowName    string    `json:"workflow_name"`
	WorkflowVersion string    `json:"workflow_version"`
	Status          string    `json:"status"`
	Error           string    `json:"error"`
	CreatedAt       time.Time `json:"created_at,omitzero"`
	StartedAt       time.Time `json:"started_at,omitzero"`
	CompletedAt     time.Time `json:"completed_at,omitzero"`
	DurationMS      float64   `json:"duration_ms"`
	// Context is the final context (a JSON object) once the execution has
	// ended; null before. See DecodeContext.
	Context json.RawMessage `json:"context,omitempty"`
	// Tasks are the execution's tasks in topological order.
	Tasks []Task `json:"tasks,omitzero"`
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
	Error       string    `json:"error"`
	ReadyAt     time.Time `json:"ready_at,omitzero"`
	StartedAt   time.Time `json:"started_at,omitzero"`
	CompletedAt time.Time `json:"completed_at,omitzero"`
	DurationMS  float64   `json:"duration_ms"`
	Recoveries  int       `json:"recoveries"`
}

// ExecutionPage is one page of an execution listing, newest first.
// NextCursor is empty on the last page.
type ExecutionPage struct {
	Executions []Execution `json:"executions"`
	NextCursor string      `json:"next_cursor,omitempty"`
}

// Event is one state change of an execution or of one of its tasks.
// Listings give events in time order. ID identifies an event in its
// execution's log; it is 0 for the start of a task attempt still running
// or of an execution not yet ended, which the log records when they end.
type Event struct {
	ID      int64     `json:"id"`
	Task    string    `json:"task"`
	Type    string    `json:"type"`
	Attempt int       `json:"attempt"`
	Message string    `json:"message"`
	Worker  string    `json:"worker"`
	At      time.Time `json:"at"`
}

// Events is the body of an execution's event listing.
type Events struct {
	Events []Event `json:"events"`
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
// only when one workflow is asked for.
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
	Description string   `json:"description"`
}

// Workflows is the body of GET /workflows.
type Workflows struct {
	Workflows []Workflow `json:"workflows"`
}

// Health is the body of /healthz and /readyz.
type Health struct {
	Status string `json:"status"`
	// Warning is set when the server runs without authentication.
	Warning string `json:"warning,omitempty"`
}

// ErrorBody is the one shape of every error answer.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong: a stable code, a message for people,
// and the request's id.
type ErrorDetail struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}
