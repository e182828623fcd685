// Package server serves the cloacina HTTP API described in
// docs/http-api.md: tenants, their API keys, executions, workflows and
// operations (health, readiness, Prometheus metrics, the OpenAPI document).
//
// A program mounts it as any http.Handler:
//
//	keys, err := apikey.Open(ctx, "sqlite://data/keys.sqlite")
//	...
//	srv, err := server.New(server.Config{Manager: m, Workflows: wfs, Keys: keys})
//	...
//	hs := &http.Server{Addr: ":8080", Handler: srv}
//
// On SIGTERM call [Server.SetDraining] (readiness fails, long waits end)
// and then http.Server.Shutdown.
package server

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/server/apikey"
	"github.com/cloacina-go/cloacina/tenant"
)

// Defaults of [Config].
const (
	DefaultMaxBodyBytes = 1 << 20
	DefaultMaxWait      = 5 * time.Minute
	// MinAdminKeyLength is the shortest Config.AdminKey accepted.
	MinAdminKeyLength = 16
)

// Config configures a [Server].
type Config struct {
	// Manager runs the tenants' workflows (required).
	Manager tenant.Manager
	// Workflows are listed by /workflows: the manager's workflows.
	Workflows []*cloacina.Workflow
	// Keys keeps the API keys (required unless DisableAuth).
	Keys apikey.Store
	// AdminKey, when set, is an admin key accepted besides the stored ones
	// (CLOACINA_ADMIN_KEY), at least MinAdminKeyLength bytes long. Only
	// its SHA-256 hash is kept, and presented keys are compared with it in
	// constant time.
	AdminKey string
	// DisableAuth allows every request without a key, for local work. New
	// logs a warning and /readyz's body carries one.
	DisableAuth bool
	// Logger receives the access log and errors (default slog.Default()).
	Logger *slog.Logger
	// Registerer, when set, gets the server's HTTP metrics:
	// cloacina_http_requests_total{route,code} and
	// cloacina_http_request_duration_seconds{route}.
	Registerer prometheus.Registerer
	// Gatherer, when set, is served at /metrics (admin key); without it
	// /metrics answers 404.
	Gatherer prometheus.Gatherer
	// MaxBodyBytes bounds request bodies (default DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// MaxWait bounds ?wait= (default DefaultMaxWait).
	MaxWait time.Duration
}

// Server is the HTTP API, an http.Handler. It is safe for concurrent use.
type Server struct {
	cfg       Config
	log       *slog.Logger
	mux       *http.ServeMux
	patterns  map[string]bool
	workflows []*cloacina.Workflow // sorted by name
	adminHash []byte               // SHA-256 of cfg.AdminKey, nil without one
	metrics   *httpMetrics         // nil without a Registerer
	// promHandler serves cfg.Gatherer, nil without one.
	promHandler http.Handler

	draining atomic.Bool
	// drained ends when SetDraining is called: requests waiting for an
	// execution (?wait=) stop waiting.
	drained    context.Context
	stopWaits  context.CancelFunc
	creatingMu sync.Mutex // serialises POST /tenants on managers without CreateTenant
}

// New returns a server for cfg.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.Manager == nil:
		return nil, errors.New("server: Config.Manager is nil")
	case cfg.Keys == nil && !cfg.DisableAuth:
		return nil, errors.New("server: Config.Keys is nil (set DisableAuth to serve without authentication)")
	case cfg.AdminKey != "" && len(cfg.AdminKey) < MinAdminKeyLength:
		return nil, fmt.Errorf("server: Config.AdminKey is %d bytes long, the minimum is %d", len(cfg.AdminKey), MinAdminKeyLength)
	case cfg.MaxBodyBytes < 0:
		return nil, fmt.Errorf("server: negative Config.MaxBodyBytes %d", cfg.MaxBodyBytes)
	case cfg.MaxWait < 0:
		return nil, fmt.Errorf("server: negative Config.MaxWait %v", cfg.MaxWait)
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxWait == 0 {
		cfg.MaxWait = DefaultMaxWait
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Server{cfg: cfg, log: log.With("component", "http"), mux: http.NewServeMux(), patterns: map[string]bool{}}
	s.drained, s.stopWaits = context.WithCancel(context.Background())
	seen := map[string]bool{}
	for _, wf := range cfg.Workflows {
		if wf == nil {
			continue
		}
		if seen[wf.Name()] {
			return nil, fmt.Errorf("server: two workflows are named %q", wf.Name())
		}
		seen[wf.Name()] = true
		s.workflows = append(s.workflows, wf)
	}
	slices.SortFunc(s.workflows, func(a, b *cloacina.Workflow) int { return strings.Compare(a.Name(), b.Name()) })
	if cfg.AdminKey != "" {
		h := sha256.Sum256([]byte(cfg.AdminKey))
		s.adminHash = h[:]
	}
	if cfg.Registerer != nil {
		m, err := newHTTPMetrics(cfg.Registerer)
		if err != nil {
			return nil, err
		}
		s.metrics = m
	}
	if cfg.Gatherer != nil {
		s.promHandler = promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	}
	for _, rt := range s.routes() {
		s.mux.Handle(rt.pattern, s.wrap(rt))
		s.patterns[rt.pattern] = true
	}
	if cfg.DisableAuth {
		s.log.Warn("authentication is disabled: every request may use every route")
	}
	return s, nil
}

// SetDraining makes /readyz answer 503 from now on and ends the waits of
// requests waiting for an execution (they answer 202). Call it on SIGTERM,
// before http.Server.Shutdown.
func (s *Server) SetDraining() {
	s.draining.Store(true)
	s.stopWaits()
}

// access says who may use a route.
type access int

const (
	public      access = iota // anyone
	anyKey                    // any valid key
	adminOnly                 // admin keys
	tenantRead                // the tenant's keys, or admin
	tenantWrite               // the tenant's write keys, or admin
)

// handler serves one route; an error becomes the error response.
type handler func(w http.ResponseWriter, r *http.Request, rq *request) error

// route is one entry of the API.
type route struct {
	pattern string
	access  access
	query   []string // the query parameters the route takes
	h       handler
}

// routes returns the API's routes.
func (s *Server) routes() []route {
	return []route{
		{"POST /tenants", adminOnly, nil, s.createTenant},
		{"GET /tenants", adminOnly, nil, s.listTenants},
		{"DELETE /tenants/{tenant_id}", adminOnly, nil, s.deleteTenant},
		{"POST /tenants/{tenant_id}/rotate-password", adminOnly, nil, s.rotatePassword},

		{"POST /tenants/{tenant_id}/keys", adminOnly, nil, s.createKey},
		{"GET /tenants/{tenant_id}/keys", adminOnly, nil, s.listKeys},
		{"DELETE /tenants/{tenant_id}/keys/{key_id}", adminOnly, nil, s.deleteKey},

		{"POST /tenants/{tenant_id}/workflows", tenantWrite, []string{"wait"}, s.startExecution},
		{"GET /tenants/{tenant_id}/executions", tenantRead, []string{"status", "workflow", "limit", "cursor"}, s.listExecutions},
		{"GET /tenants/{tenant_id}/executions/{execution_id}", tenantRead, nil, s.getExecution},
		{"GET /tenants/{tenant_id}/executions/{execution_id}/events", tenantRead, nil, s.executionEvents},
		{"POST /tenants/{tenant_id}/executions/{execution_id}/cancel", tenantWrite, nil, s.transition(actCancel)},
		{"POST /tenants/{tenant_id}/executions/{execution_id}/pause", tenantWrite, nil, s.transition(actPause)},
		{"POST /tenants/{tenant_id}/executions/{execution_id}/resume", tenantWrite, nil, s.transition(actResume)},
		{"GET /tenants/{tenant_id}/metrics", tenantRead, nil, s.tenantMetrics},

		{"GET /workflows", anyKey, nil, s.listWorkflows},
		{"GET /workflows/{name}", anyKey, []string{"format"}, s.getWorkflow},

		{"GET /healthz", public, nil, s.healthz},
		{"GET /readyz", public, nil, s.readyz},
		{"GET /metrics", adminOnly, nil, s.prometheus},
		{"GET /openapi.json", public, nil, s.openAPI},
	}
}

// request is what the server learns of a request while serving it.
type request struct {
	id     string
	route  string
	tenant string // the {tenant_id} of the path
	key    apikey.Key
	log    *slog.Logger
}

type requestKey struct{}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rq := &request{id: requestID(r.Header.Get("X-Request-Id"))}
	w.Header().Set("X-Request-Id", rq.id)
	rq.log = s.log.With("request_id", rq.id)
	sw := &statusWriter{ResponseWriter: w}
	_, pattern := s.mux.Handler(r)
	if s.patterns[pattern] {
		rq.route = pattern
	} else {
		rq.route = "unmatched"
	}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			rq.log.Error("panic serving a request", "route", rq.route, "panic", p, "stack", string(debug.Stack()))
			if !sw.wroteHeader {
				s.writeError(sw, rq, errorf(http.StatusInternalServerError, codeInternal, "internal error"))
			}
		}
		s.finish(r, rq, sw, time.Since(start))
	}()
	r = r.WithContext(context.WithValue(r.Context(), requestKey{}, rq))
	if rq.route == "unmatched" {
		s.unmatched(sw, r, rq)
		return
	}
	s.mux.ServeHTTP(sw, r)
}

// unmatched answers a request no route takes: the mux's redirect to a
// canonical path as it is, its 404 and 405 in the API's error shape.
func (s *Server) unmatched(w http.ResponseWriter, r *http.Request, rq *request) {
	h, _ := s.mux.Handler(r)
	cw := &captureWriter{header: http.Header{}}
	h.ServeHTTP(cw, r)
	switch cw.status {
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", cw.header.Get("Allow"))
		s.writeError(w, rq, errorf(http.StatusMethodNotAllowed, codeMethodNotAllowed, "method %s is not allowed here (allowed: %s)", r.Method, cw.header.Get("Allow")))
	case http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		w.Header().Set("Location", cw.header.Get("Location"))
		w.WriteHeader(cw.status)
	default:
		s.writeError(w, rq, errorf(http.StatusNotFound, codeNotFound, "no route for %s %s", r.Method, r.URL.EscapedPath()))
	}
}

// isProbe reports whether route is one that health checkers call.
func isProbe(route string) bool { return route == "GET /healthz" || route == "GET /readyz" }

// finish logs the request and counts it.
func (s *Server) finish(r *http.Request, rq *request, sw *statusWriter, took time.Duration) {
	status := sw.status
	if !sw.wroteHeader {
		status = http.StatusOK
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("route", rq.route),
		slog.Int("status", status),
		slog.Duration("duration", took),
		slog.Int64("bytes", sw.bytes),
	}
	if rq.tenant != "" {
		attrs = append(attrs, slog.String("tenant", rq.tenant))
	}
	if rq.key.ID != "" {
		attrs = append(attrs, slog.String("key_id", rq.key.ID))
	}
	level := slog.LevelInfo
	if isProbe(rq.route) && status < 400 {
		level = slog.LevelDebug // probes come every few seconds
	}
	rq.log.LogAttrs(r.Context(), level, "http request", attrs...)
	if s.metrics != nil {
		s.metrics.observe(rq.route, status, took)
	}
}

// wrap turns a route into the mux's handler: authorization, the tenant's
// existence, the query parameters, then the route's handler.
func (s *Server) wrap(rt route) http.Handler {
	hasTenant := strings.Contains(rt.pattern, "{tenant_id}")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rq := r.Context().Value(requestKey{}).(*request) // set by ServeHTTP, the mux's only caller
		if hasTenant {
			rq.tenant = r.PathValue("tenant_id")
		}
		err := s.authorize(r, rt.access, rq)
		if err == nil && hasTenant {
			err = s.requireTenant(r.Context(), rq.tenant)
		}
		if err == nil {
			err = checkQuery(r, rt.query)
		}
		if err == nil {
			err = rt.h(w, r, rq)
		}
		if err != nil {
			s.writeError(w, rq, err)
		}
	})
}

// requireTenant returns nil if the tenant exists, a 400 for an invalid id
// and a 404 tenant_not_found for a missing tenant.
func (s *Server) requireTenant(ctx context.Context, id string) error {
	ok, err := s.cfg.Manager.Exists(ctx, id)
	if err != nil {
		return err
	}
	if !ok {
		return tenantNotFound(id)
	}
	return nil
}

// tenantNotFound is the answer for a missing tenant and for another
// tenant's routes: the two are indistinguishable.
func tenantNotFound(id string) error {
	return errorf(http.StatusNotFound, codeTenantNotFound, "tenant %q not found", id)
}

// statusWriter records what a handler writes.
type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
	bytes       int64
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = http.StatusOK, true
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// captureWriter records the status and headers of the mux's own answers.
type captureWriter struct {
	header http.Header
	status int
}

func (w *captureWriter) Header() http.Header { return w.header }
func (w *captureWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return len(b), nil
}
func (w *captureWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
