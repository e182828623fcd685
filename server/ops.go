package server

import (
	"context"
	_ "embed"
	"errors"
	"net/http"
	"time"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/api"
)

//go:embed openapi.json
var openAPIDocument []byte

// OpenAPI returns the OpenAPI 3.1 document of the API, as served at
// /openapi.json.
func OpenAPI() []byte { return append([]byte(nil), openAPIDocument...) }

// readyTimeout bounds the database checks of /readyz.
const readyTimeout = 5 * time.Second

// noAuthWarning is /readyz's warning when authentication is off.
const noAuthWarning = "authentication is disabled: every request may use every route"

// listWorkflows: GET /workflows.
func (s *Server) listWorkflows(w http.ResponseWriter, _ *http.Request, _ *request) error {
	out := api.Workflows{Workflows: make([]api.Workflow, 0, len(s.workflows))}
	for _, wf := range s.workflows {
		out.Workflows = append(out.Workflows, workflowOf(wf, false))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// getWorkflow: GET /workflows/{name}[?format=mermaid|dot|json].
func (s *Server) getWorkflow(w http.ResponseWriter, r *http.Request, _ *request) error {
	name := r.PathValue("name")
	var wf *cloacina.Workflow
	for _, x := range s.workflows {
		if x.Name() == name {
			wf = x
		}
	}
	if wf == nil {
		return errorf(http.StatusNotFound, codeWorkflowNotFound, "workflow %q not found", name)
	}
	switch format := r.URL.Query().Get("format"); format {
	case "", "json":
		writeJSON(w, http.StatusOK, workflowOf(wf, true))
	case "mermaid":
		writeText(w, http.StatusOK, wf.Mermaid())
	case "dot":
		writeText(w, http.StatusOK, wf.DOT())
	default:
		return errorf(http.StatusBadRequest, codeInvalidArgument, "format %q: want mermaid, dot or json", format)
	}
	return nil
}

// healthz: GET /healthz, while the process serves.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request, _ *request) error {
	writeJSON(w, http.StatusOK, api.Health{Status: "ok"})
	return nil
}

// pinger is a key store that can check its database (apikey.SQLStore).
type pinger interface {
	Ping(ctx context.Context) error
}

// readyz: GET /readyz: 200 when the databases answer, 503 when they do not
// or the server is draining.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request, rq *request) error {
	if s.draining.Load() {
		return errorf(http.StatusServiceUnavailable, codeUnavailable, "the server is shutting down")
	}
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	var errs []error
	if p, ok := s.cfg.Keys.(pinger); ok {
		errs = append(errs, p.Ping(ctx))
	}
	_, err := s.cfg.Manager.Tenants(ctx)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		rq.log.Warn("not ready", "err", err)
		return errorf(http.StatusServiceUnavailable, codeUnavailable, "the database does not answer")
	}
	out := api.Health{Status: "ready"}
	if s.cfg.DisableAuth {
		out.Warning = noAuthWarning
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// prometheus: GET /metrics, the Gatherer's metrics.
func (s *Server) prometheus(w http.ResponseWriter, r *http.Request, _ *request) error {
	if s.cfg.Gatherer == nil {
		return errorf(http.StatusNotFound, codeNotFound, "this server exports no metrics")
	}
	s.promHandler.ServeHTTP(w, r)
	return nil
}

// openAPI: GET /openapi.json.
func (s *Server) openAPI(w http.ResponseWriter, _ *http.Request, _ *request) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(openAPIDocument)
	return nil
}
