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
	// DefaultBodyReadTimeout is the default of Config.BodyReadTimeout.
	DefaultBodyReadTimeout = 30 * time.Second
	// DefaultMaxInFlightBodyBytes is the default of
	// Config.MaxInFlightBodyBytes: 32 bodies of the default largest size.
	DefaultMaxInFlightBodyBytes = 32 * DefaultMaxBodyBytes
	// DefaultInFlightWait is the default of Config.InFlightWait.
	DefaultInFlightWait = 5 * time.Second
	// DefaultTenantDeleteGrace is the default of Config.TenantDeleteGrace.
	DefaultTenantDeleteGrace = 10 * time.Second
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
	// BodyReadTimeout bounds the time to receive a request's body, counted
	// from the end of its headers (default DefaultBodyReadTimeout). A body
	// still incomplete then is answered 408 request_timeout and its
	// connection is closed. It is a deadline on reading the body only: it
	// ends once the body is read, so that a ?wait= long poll may last up
	// to MaxWait. A request refused before its body is read (no key, say)
	// has its connection closed at once, without reading the rest of the
	// body. It needs a connection that supports read deadlines
	// (http.ResponseController.SetReadDeadline, as net/http's do). Bound
	// the headers with http.Server.ReadHeaderTimeout.
	BodyReadTimeout time.Duration
	// MaxInFlightBodyBytes bounds the request bodies the server holds at
	// once, in bytes (default DefaultMaxInFlightBodyBytes). A request with
	// a body counts its Content-Length (MaxBodyBytes without one) from
	// before its body is read until its answer is written, including
	// while a ?wait= waits: most of the memory a request costs (its
	// body's copies, its execution's context, the answer's encoding) is
	// in proportion to its body. A request that does not fit waits up to
	// InFlightWait for room, then is answered 503 unavailable with
	// Retry-After. Requests without a body do not count.
	MaxInFlightBodyBytes int64
	// InFlightWait is how long a request waits for room under
	// MaxInFlightBodyBytes (default DefaultInFlightWait).
	InFlightWait time.Duration
	// TenantDeleteGrace bounds how long DELETE /tenants/{tenant_id} waits
	// for the tenant's running tasks to end once they are told to stop
	// (default DefaultTenantDeleteGrace); the data is deleted then. The
	// deletion goes on when the client leaves.
	TenantDeleteGrace time.Duration
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
	// adminKeysMu serialises the revocations of admin keys (in this
	// process).
	adminKeysMu sync.Mutex
	// budget holds the bytes of the bodies in flight
	// (Config.MaxInFlightBodyBytes).
	budget *bodyBudget
	// gates orders the writes of a tenant's requests with its deletion.
	gates *tenantGates
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
	case cfg.BodyReadTimeout < 0:
		return nil, fmt.Errorf("server: negative Config.BodyReadTimeout %v", cfg.BodyReadTimeout)
	case cfg.MaxInFlightBodyBytes < 0:
		return nil, fmt.Errorf("server: negative Config.MaxInFlightBodyBytes %d", cfg.MaxInFlightBodyBytes)
	case cfg.InFlightWait < 0:
		return nil, fmt.Errorf("server: negative Config.InFlightWait %v", cfg.InFlightWait)
	case cfg.TenantDeleteGrace < 0:
		return nil, fmt.Errorf("server: negative Config.TenantDeleteGrace %v", cfg.TenantDeleteGrace)
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxWait == 0 {
		cfg.MaxWait = DefaultMaxWait
	}
	if cfg.BodyReadTimeout == 0 {
		cfg.BodyReadTimeout = DefaultBodyReadTimeout
	}
	if cfg.MaxInFlightBodyBytes == 0 {
		cfg.MaxInFlightBodyBytes = DefaultMaxInFlightBodyBytes
	}
	if cfg.InFlightWait == 0 {
		cfg.InFlightWait = DefaultInFlightWait
	}
	if cfg.TenantDeleteGrace == 0 {
		cfg.TenantDeleteGrace = DefaultTenantDeleteGrace
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Server{cfg: cfg, log: log.With("component", "http"), mux: http.NewServeMux(), patterns: map[string]bool{},
		budget: newBodyBudget(cfg.MaxInFlightBodyBytes), gates: newTenantGates()}
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
		{"GET /tenants/{tenant_id}", tenantRead, nil, s.getTenant},
		{"DELETE /tenants/{tenant_id}", adminOnly, nil, s.deleteTenant},
		{"POST /tenants/{tenant_id}/rotate-password", adminOnly, nil, s.rotatePassword},

		{"POST /tenants/{tenant_id}/keys", adminOnly, nil, s.createKey},
		{"GET /tenants/{tenant_id}/keys", adminOnly, nil, s.listKeys},
		{"DELETE /tenants/{tenant_id}/keys/{key_id}", adminOnly, nil, s.deleteKey},

		{"POST /admin/keys", adminOnly, nil, s.createAdminKey},
		{"GET /admin/keys", adminOnly, nil, s.listAdminKeys},
		{"DELETE /admin/keys/{key_id}", adminOnly, nil, s.deleteAdminKey},

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
	// presented is the key the request presented, verified again before
	// the request writes (never logged).
	presented string
	// gate is the tenant's gate, held from authorisation to the end of
	// the request, and gen its generation then (nil on other routes).
	gate *gate
	gen  uint64
	// hasBody: the request came with a body; bodyRead: it was read whole.
	hasBody, bodyRead bool
	// body is the request's body, read by wrap before the route's
	// handler runs.
	body []byte
}

type requestKey struct{}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rq := &request{id: requestID(r.Header.Get("X-Request-Id")), hasBody: r.Body != nil && r.Body != http.NoBody}
	if rq.hasBody {
		// The body must come within BodyReadTimeout; wrap lifts the
		// deadline once it is read. Without read deadlines (a recorder
		// in tests, a wrapper that hides them) there is none.
		_ = http.NewResponseController(w).SetReadDeadline(start.Add(s.cfg.BodyReadTimeout))
	}
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
		if rq.hasBody {
			s.dropBody(sw)
		}
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

// wrap turns a route into the mux's handler: authorization (before the
// body is read, so that a request without a valid key costs no body),
// the tenant's existence, the query parameters, the body (within
// BodyReadTimeout, under MaxInFlightBodyBytes), then the route's handler.
func (s *Server) wrap(rt route) http.Handler {
	hasTenant := strings.Contains(rt.pattern, "{tenant_id}")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rq := r.Context().Value(requestKey{}).(*request) // set by ServeHTTP, the mux's only caller
		if hasTenant {
			rq.tenant = r.PathValue("tenant_id")
			// The generation is taken before the key is checked: a
			// deletion of the tenant after this point refuses the
			// request's writes.
			rq.gate, rq.gen = s.gates.hold(rq.tenant)
			defer s.gates.drop(rq.tenant, rq.gate)
		}
		err := s.authorize(r, rt.access, rq)
		if err == nil && hasTenant {
			err = s.requireTenant(r.Context(), rq.tenant)
		}
		if err == nil {
			err = checkQuery(r, rt.query)
		}
		// Only POST routes take a body; another route's body is never
		// read (nor charged to the in-flight budget): its connection is
		// closed after the answer (dropBody).
		if err == nil && rq.hasBody && rt.access != public && strings.HasPrefix(rt.pattern, "POST ") {
			var release func()
			release, err = s.receiveBody(w, r, rq)
			if release != nil {
				defer release()
			}
		}
		if err == nil {
			if rq.hasBody && !rq.bodyRead {
				s.dropBody(w)
			}
			err = rt.h(w, r, rq)
		}
		if err != nil {
			if rq.hasBody && !rq.bodyRead {
				s.dropBody(w)
			}
			s.writeError(w, rq, err)
		}
	})
}

// receiveBody reads the request's body into rq.body, holding its size in
// the in-flight budget: the returned function gives it back.
func (s *Server) receiveBody(w http.ResponseWriter, r *http.Request, rq *request) (func(), error) {
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return nil, &http.MaxBytesError{Limit: s.cfg.MaxBodyBytes}
	}
	n := r.ContentLength
	if n < 0 {
		n = s.cfg.MaxBodyBytes
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.InFlightWait)
	release, err := s.budget.acquire(ctx, n)
	cancel()
	if err != nil {
		if r.Context().Err() != nil {
			return nil, r.Context().Err()
		}
		rq.log.Warn("too many request bodies in flight", "route", rq.route, "bytes", n, "waited", s.cfg.InFlightWait)
		return nil, errorf(http.StatusServiceUnavailable, codeUnavailable, "the server holds too many request bodies; retry later")
	}
	// The body's time starts now: the wait for room is the server's, not
	// the client's.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.cfg.BodyReadTimeout))
	b, err := s.readBody(r)
	if err != nil {
		release()
		return nil, err
	}
	rq.body, rq.bodyRead = b, true
	// Read: lift the deadline, which would otherwise end the request
	// (net/http cancels it when a read of the connection times out).
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
	return release, nil
}

// dropBody makes a request whose body is not read close its connection
// after the answer, at once: net/http would otherwise read up to 256 KiB
// of the body after the handler, at the client's pace.
func (s *Server) dropBody(w http.ResponseWriter) {
	w.Header().Set("Connection", "close")
	_ = http.NewResponseController(w).SetReadDeadline(time.Now())
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
