package server

import (
	"time"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/server/apikey"
)

// The JSON shapes of the API. Times are UTC; zero times are omitted.

type tenantJSON struct {
	TenantID  string    `json:"tenant_id"`
	CreatedAt time.Time `json:"created_at,omitzero"`
}

type tenantsJSON struct {
	Tenants []tenantJSON `json:"tenants"`
}

type rotatedJSON struct {
	TenantID  string    `json:"tenant_id"`
	Username  string    `json:"username"`
	RotatedAt time.Time `json:"rotated_at"`
}

type keyJSON struct {
	KeyID      string    `json:"key_id"`
	Key        string    `json:"key,omitempty"` // only when created
	Name       string    `json:"name"`
	Role       string    `json:"role"`
	TenantID   string    `json:"tenant_id"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
}

func keyOf(k apikey.Key, secret string) keyJSON {
	return keyJSON{KeyID: k.ID, Key: secret, Name: k.Name, Role: string(k.Role), TenantID: k.TenantID,
		CreatedAt: k.CreatedAt.UTC(), LastUsedAt: utc(k.LastUsedAt)}
}

type keysJSON struct {
	Keys []keyJSON `json:"keys"`
}

// startedJSON answers a start that did not wait for the end.
type startedJSON struct {
	ExecutionID  string `json:"execution_id"`
	Status       string `json:"status"`
	WorkflowName string `json:"workflow_name"`
}

// summaryJSON is an execution in a listing.
type summaryJSON struct {
	ExecutionID     string    `json:"execution_id"`
	WorkflowName    string    `json:"workflow_name"`
	WorkflowVersion string    `json:"workflow_version"`
	Status          string    `json:"status"`
	Error           string    `json:"error"`
	CreatedAt       time.Time `json:"created_at,omitzero"`
	StartedAt       time.Time `json:"started_at,omitzero"`
	CompletedAt     time.Time `json:"completed_at,omitzero"`
	DurationMS      float64   `json:"duration_ms"`
}

// executionJSON is one execution with its context and tasks.
type executionJSON struct {
	summaryJSON
	Context *cloacina.Context `json:"context"` // null until the end
	Tasks   []taskJSON        `json:"tasks"`
}

type taskJSON struct {
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

type executionsJSON struct {
	Executions []summaryJSON `json:"executions"`
	NextCursor string        `json:"next_cursor,omitempty"`
}

type eventJSON struct {
	ID      int64     `json:"id"`
	Task    string    `json:"task"`
	Type    string    `json:"type"`
	Attempt int       `json:"attempt"`
	Message string    `json:"message"`
	Worker  string    `json:"worker"`
	At      time.Time `json:"at"`
}

type eventsJSON struct {
	Events []eventJSON `json:"events"`
}

type metricsJSON struct {
	ActiveExecutions int64            `json:"active_executions"`
	TotalExecutions  int64            `json:"total_executions"`
	AvgExecutionMS   float64          `json:"avg_execution_ms"`
	ByStatus         map[string]int64 `json:"by_status"`
	ReadyTasks       int64            `json:"ready_tasks"`
	RunningTasks     int64            `json:"running_tasks"`
	OldestReadyTask  time.Time        `json:"oldest_ready_task,omitzero"`
}

type workflowJSON struct {
	Name        string             `json:"name"`
	Version     string             `json:"version"`
	Description string             `json:"description,omitempty"`
	Tasks       []workflowTaskJSON `json:"tasks"`
	Mermaid     string             `json:"mermaid,omitempty"`
	DOT         string             `json:"dot,omitempty"`
}

type workflowTaskJSON struct {
	Name        string   `json:"name"`
	DependsOn   []string `json:"depends_on"`
	Description string   `json:"description"`
}

type workflowsJSON struct {
	Workflows []workflowJSON `json:"workflows"`
}

type statusJSON struct {
	Status  string `json:"status"`
	Warning string `json:"warning,omitempty"`
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func summaryOf(s cloacina.ExecutionSummary) summaryJSON {
	return summaryJSON{
		ExecutionID: s.ExecutionID.String(), WorkflowName: s.WorkflowName, WorkflowVersion: s.WorkflowVersion,
		Status: string(s.Status), Error: s.Error,
		CreatedAt: utc(s.CreatedAt), StartedAt: utc(s.StartedAt), CompletedAt: utc(s.CompletedAt),
		DurationMS: ms(s.Duration),
	}
}

func executionOf(res *cloacina.Result) executionJSON {
	out := executionJSON{
		summaryJSON: summaryOf(cloacina.ExecutionSummary{
			ExecutionID: res.ExecutionID, WorkflowName: res.WorkflowName, WorkflowVersion: res.WorkflowVersion,
			Status: res.Status, Error: res.Error, CreatedAt: res.CreatedAt, StartedAt: res.StartedAt,
			CompletedAt: res.CompletedAt, Duration: res.Duration,
		}),
		Context: res.Context,
		Tasks:   make([]taskJSON, 0, len(res.Tasks)),
	}
	for _, t := range res.Tasks {
		out.Tasks = append(out.Tasks, taskJSON{
			Name: t.Name, Status: string(t.Status), Attempts: t.Attempts, Error: t.Error,
			ReadyAt: utc(t.ReadyAt), StartedAt: utc(t.StartedAt), CompletedAt: utc(t.CompletedAt),
			DurationMS: ms(t.Duration), Recoveries: t.Recoveries,
		})
	}
	return out
}

func workflowOf(wf *cloacina.Workflow, drawings bool) workflowJSON {
	out := workflowJSON{Name: wf.Name(), Version: wf.Version(), Description: wf.Description()}
	for _, t := range wf.Tasks() {
		deps := t.Dependencies
		if deps == nil {
			deps = []string{}
		}
		out.Tasks = append(out.Tasks, workflowTaskJSON{Name: t.ID, DependsOn: deps, Description: t.Description})
	}
	if drawings {
		out.Mermaid, out.DOT = wf.Mermaid(), wf.DOT()
	}
	return out
}
