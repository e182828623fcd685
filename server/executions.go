package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/api"
)

// withRunner calls fn with the tenant's runner, never creating the
// tenant (a DELETE may run at the same time). A runner the manager shut
// down meanwhile (an idle one, or after a password rotation) is asked for
// again, once.
func (s *Server) withRunner(ctx context.Context, tenantID string, fn func(*cloacina.Runner) error) error {
	var err error
	for range 2 {
		var r *cloacina.Runner
		if r, err = s.cfg.Manager.ExistingRunner(ctx, tenantID); err != nil {
			return err
		}
		if err = fn(r); !errors.Is(err, cloacina.ErrRunnerClosed) {
			return err
		}
	}
	return err
}

// executionID parses the {execution_id} of the path: what is not an
// execution id names no execution.
func executionID(r *http.Request) (uuid.UUID, error) {
	raw := r.PathValue("execution_id")
	id, err := uuid.Parse(raw)
	if err != nil {
		return uuid.UUID{}, errorf(http.StatusNotFound, codeExecutionNotFound, "execution %q not found", raw)
	}
	return id, nil
}

// startExecution: POST /tenants/{tenant_id}/workflows[?wait=D].
func (s *Server) startExecution(w http.ResponseWriter, r *http.Request, rq *request) error {
	var wait time.Duration
	if raw := r.URL.Query().Get("wait"); raw != "" {
		d, err := time.ParseDuration(raw)
		if err != nil || d < 0 || d > s.cfg.MaxWait {
			return errorf(http.StatusBadRequest, codeInvalidArgument, "wait %q: want a duration such as 30s, at most %v", raw, s.cfg.MaxWait)
		}
		wait = d
	}
	var body struct {
		WorkflowName string  `json:"workflow_name"`
		Context      rawJSON `json:"context"`
	}
	if err := decode(rq, &body, false); err != nil {
		return err
	}
	if body.WorkflowName == "" {
		return errorf(http.StatusBadRequest, codeInvalidArgument, "workflow_name is missing")
	}
	var input any // nil: an empty context
	if c := bytes.TrimSpace(body.Context); len(c) > 0 && !bytes.Equal(c, []byte("null")) {
		if c[0] != '{' {
			return errorf(http.StatusBadRequest, codeInvalidArgument, "context must be a JSON object")
		}
		input = json.RawMessage(c) // a slice of the body, not a copy
	}
	ctx := r.Context()
	done, err := s.beginWrite(ctx, rq)
	if err != nil {
		return err
	}
	// Not Manager.ExecuteAsync: it creates a missing tenant, which a
	// DELETE of the tenant served meanwhile would bring back.
	var h *cloacina.ExecutionHandle
	func() {
		defer done() // not held while waiting: a deletion of the tenant may go on
		err = s.withRunner(ctx, rq.tenant, func(rn *cloacina.Runner) (err error) {
			h, err = rn.ExecuteAsync(ctx, body.WorkflowName, input)
			return err
		})
	}()
	// The engine has its own copy of the input: let the body go.
	rq.body = nil
	if err != nil {
		return err
	}
	id := h.ID().String()
	rq.log.Debug("execution started", "tenant", rq.tenant, "workflow", body.WorkflowName, "execution", id)
	w.Header().Set("Location", location("tenants", rq.tenant, "executions", id))
	if wait > 0 {
		wctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		stop := context.AfterFunc(s.drained, cancel)
		defer stop()
		res, err := h.Wait(wctx)
		if err == nil {
			out, err := executionOf(res)
			if err != nil {
				return err
			}
			writeJSON(w, http.StatusOK, out)
			return nil
		}
		if wctx.Err() == nil {
			// The execution exists: say so, and log why waiting ended.
			rq.log.Warn("waiting for an execution", "tenant", rq.tenant, "execution", id, "err", err)
		}
	}
	writeJSON(w, http.StatusAccepted, api.Started{ExecutionID: id, Status: string(cloacina.ExecutionPending), WorkflowName: body.WorkflowName})
	return nil
}

// getExecution: GET /tenants/{tenant_id}/executions/{execution_id}.
func (s *Server) getExecution(w http.ResponseWriter, r *http.Request, rq *request) error {
	id, err := executionID(r)
	if err != nil {
		return err
	}
	res, err := s.result(r.Context(), rq.tenant, id)
	if err != nil {
		return err
	}
	out, err := executionOf(res)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// result reads an execution with its tasks and (once it ended) context.
func (s *Server) result(ctx context.Context, tenantID string, id uuid.UUID) (*cloacina.Result, error) {
	var res *cloacina.Result
	err := s.withRunner(ctx, tenantID, func(rn *cloacina.Runner) (err error) {
		res, err = rn.ExecutionResult(ctx, id)
		return err
	})
	return res, err
}

// listExecutions: GET /tenants/{tenant_id}/executions.
func (s *Server) listExecutions(w http.ResponseWriter, r *http.Request, rq *request) error {
	q := r.URL.Query()
	opts := cloacina.ListOptions{Workflow: q.Get("workflow"), Cursor: q.Get("cursor")}
	for _, v := range q["status"] {
		for st := range strings.SplitSeq(v, ",") {
			st = strings.TrimSpace(st)
			if st == "" {
				continue
			}
			if !cloacina.ExecutionStatus(st).Valid() {
				return errorf(http.StatusBadRequest, codeInvalidArgument, "status %q: want Pending, Running, Paused, Completed, Failed or Cancelled", st)
			}
			opts.Statuses = append(opts.Statuses, cloacina.ExecutionStatus(st))
		}
	}
	if raw := q.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > 1000 {
			return errorf(http.StatusBadRequest, codeInvalidArgument, "limit %q: want 1 to 1000", raw)
		}
		opts.Limit = n
	}
	var page *cloacina.ExecutionPage
	err := s.withRunner(r.Context(), rq.tenant, func(rn *cloacina.Runner) (err error) {
		page, err = rn.ListExecutions(r.Context(), opts)
		return err
	})
	if err != nil {
		return err
	}
	out := api.ExecutionPage{Executions: make([]api.Execution, 0, len(page.Executions)), NextCursor: page.NextCursor}
	for _, e := range page.Executions {
		out.Executions = append(out.Executions, summaryOf(e))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// executionEvents: GET /tenants/{tenant_id}/executions/{execution_id}/events.
func (s *Server) executionEvents(w http.ResponseWriter, r *http.Request, rq *request) error {
	id, err := executionID(r)
	if err != nil {
		return err
	}
	var evs []cloacina.Event
	err = s.withRunner(r.Context(), rq.tenant, func(rn *cloacina.Runner) (err error) {
		evs, err = rn.ExecutionEvents(r.Context(), id)
		return err
	})
	if err != nil {
		return err
	}
	out := api.Events{Events: make([]api.Event, 0, len(evs))}
	for _, e := range evs {
		out.Events = append(out.Events, api.Event{ID: e.ID, Task: e.Task, Type: string(e.Type), Attempt: e.Attempt,
			Message: e.Message, Worker: e.Worker, At: utc(e.At)})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// action is a change of an execution's state.
type action int

const (
	actCancel action = iota
	actPause
	actResume
)

// transition returns the handler of POST .../{execution_id}/cancel, pause
// or resume: 200 with the execution's new summary.
func (s *Server) transition(a action) handler {
	return func(w http.ResponseWriter, r *http.Request, rq *request) error {
		if err := decode(rq, &struct{}{}, true); err != nil {
			return err
		}
		id, err := executionID(r)
		if err != nil {
			return err
		}
		done, err := s.beginWrite(r.Context(), rq)
		if err != nil {
			return err
		}
		func() {
			defer done()
			err = s.withRunner(r.Context(), rq.tenant, func(rn *cloacina.Runner) error {
				switch a {
				case actCancel:
					return rn.Cancel(r.Context(), id)
				case actPause:
					return rn.Pause(r.Context(), id)
				default:
					return rn.Resume(r.Context(), id)
				}
			})
		}()
		if err != nil {
			return err
		}
		res, err := s.result(r.Context(), rq.tenant, id)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, resultSummaryOf(res))
		return nil
	}
}

// tenantMetrics: GET /tenants/{tenant_id}/metrics.
func (s *Server) tenantMetrics(w http.ResponseWriter, r *http.Request, rq *request) error {
	var m *cloacina.Metrics
	var err error
	for range 2 { // see withRunner
		if m, err = s.cfg.Manager.Metrics(r.Context(), rq.tenant); !errors.Is(err, cloacina.ErrRunnerClosed) {
			break
		}
	}
	if err != nil {
		return err
	}
	out := api.TenantMetrics{
		ActiveExecutions: m.ActiveExecutions, TotalExecutions: m.TotalExecutions, AvgExecutionMS: ms(m.AvgExecutionTime),
		ByStatus: make(map[string]int64, len(m.ByStatus)), ReadyTasks: m.ReadyTasks, RunningTasks: m.RunningTasks,
		OldestReadyTask: utc(m.OldestReadyTask),
	}
	for st, n := range m.ByStatus {
		out.ByStatus[string(st)] = n
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
