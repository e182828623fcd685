package server

import (
	"encoding/json"
	"time"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/api"
	"github.com/cloacina-go/cloacina/server/apikey"
)

// The conversions from the library's values to the JSON shapes of package
// api. Times are UTC; zero times are omitted.

func keyOf(k apikey.Key, secret string) api.Key {
	return api.Key{KeyID: k.ID, Secret: secret, Name: k.Name, Role: string(k.Role), TenantID: k.TenantID,
		CreatedAt: k.CreatedAt.UTC(), LastUsedAt: utc(k.LastUsedAt)}
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// summaryOf is an execution in a listing: no context, no tasks.
func summaryOf(s cloacina.ExecutionSummary) api.Execution {
	return api.Execution{
		ExecutionID: s.ExecutionID.String(), WorkflowName: s.WorkflowName, WorkflowVersion: s.WorkflowVersion,
		Status: string(s.Status), Error: s.Error,
		CreatedAt: utc(s.CreatedAt), StartedAt: utc(s.StartedAt), CompletedAt: utc(s.CompletedAt),
		DurationMS: ms(s.Duration),
	}
}

// resultSummaryOf is the summary of one execution (no context, no tasks).
func resultSummaryOf(res *cloacina.Result) api.Execution {
	return summaryOf(cloacina.ExecutionSummary{
		ExecutionID: res.ExecutionID, WorkflowName: res.WorkflowName, WorkflowVersion: res.WorkflowVersion,
		Status: res.Status, Error: res.Error, CreatedAt: res.CreatedAt, StartedAt: res.StartedAt,
		CompletedAt: res.CompletedAt, Duration: res.Duration,
	})
}

// executionOf is one execution with its context (null until the end) and
// its tasks (always a list).
func executionOf(res *cloacina.Result) (api.Execution, error) {
	out := resultSummaryOf(res)
	out.Context = json.RawMessage("null")
	if res.Context != nil {
		b, err := res.Context.MarshalJSON()
		if err != nil {
			return api.Execution{}, err
		}
		out.Context = b
	}
	out.Tasks = make([]api.Task, 0, len(res.Tasks))
	for _, t := range res.Tasks {
		out.Tasks = append(out.Tasks, api.Task{
			Name: t.Name, Status: string(t.Status), Attempts: t.Attempts, Error: t.Error,
			ReadyAt: utc(t.ReadyAt), StartedAt: utc(t.StartedAt), CompletedAt: utc(t.CompletedAt),
			DurationMS: ms(t.Duration), Recoveries: t.Recoveries,
		})
	}
	return out, nil
}

func workflowOf(wf *cloacina.Workflow, drawings bool) api.Workflow {
	out := api.Workflow{Name: wf.Name(), Version: wf.Version(), Description: wf.Description()}
	for _, t := range wf.Tasks() {
		deps := t.Dependencies
		if deps == nil {
			deps = []string{}
		}
		out.Tasks = append(out.Tasks, api.WorkflowTask{Name: t.ID, DependsOn: deps, Description: t.Description})
	}
	if drawings {
		out.Mermaid, out.DOT = wf.Mermaid(), wf.DOT()
	}
	return out
}
