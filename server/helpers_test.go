package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/api"
	"github.com/cloacina-go/cloacina/internal/pgtest"
	"github.com/cloacina-go/cloacina/server/apikey"
	"github.com/cloacina-go/cloacina/tenant"
)

func TestMain(m *testing.M) {
	code := pgtest.Main(m)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

const testAdminKey = "test-admin-key-0123456789abcdef"

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// testWorkflows returns "hello" (sets greeting from name) and "block" (one
// task that runs until release is closed or its context ends).
func testWorkflows(t testing.TB, release <-chan struct{}) []*cloacina.Workflow {
	t.Helper()
	hello := cloacina.NewWorkflow("hello").Description("greets").
		Task("greet", func(_ context.Context, c *cloacina.Context) error {
			name, _ := c.Get("name")
			if name == nil {
				name = "world"
			}
			return c.Set("greeting", fmt.Sprintf("Hello, %v!", name))
		}, cloacina.Describe("says hello")).
		Task("shout", func(_ context.Context, c *cloacina.Context) error {
			return c.Set("shouted", true)
		}, cloacina.DependsOn("greet")).
		MustBuild()
	block := cloacina.NewWorkflow("block").
		Task("wait", func(ctx context.Context, c *cloacina.Context) error {
			select {
			case <-release:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}).
		MustBuild()
	return []*cloacina.Workflow{hello, block}
}

// env is one server on real storage.
type env struct {
	t       testing.TB
	srv     *Server
	mgr     tenant.Manager
	keys    *apikey.SQLStore
	reg     *prometheus.Registry
	logs    *syncBuffer
	log     *slog.Logger // writes to logs
	release chan struct{}
}

type envOpts struct {
	disableAuth bool
	manager     func(t testing.TB, opts ...cloacina.Option) tenant.Manager
	noKeys      bool
	// config changes the server's Config before New.
	config func(*Config)
}

// syncBuffer is a bytes.Buffer safe for concurrent writes (the log).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// backends are the storages the tests run on.
var backends = []string{"sqlite", "postgres"}

func newEnv(t testing.TB, backend string, o envOpts) *env {
	t.Helper()
	ctx := testCtx(t)
	e := &env{t: t, reg: prometheus.NewRegistry(), logs: &syncBuffer{}, release: make(chan struct{})}
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.log = log
	wfs := testWorkflows(t, e.release)
	opts := []cloacina.Option{cloacina.WithWorkflows(wfs...), cloacina.WithPollInterval(50 * time.Millisecond),
		cloacina.WithLogger(slog.New(slog.DiscardHandler))}
	var keysURL string
	switch {
	case o.manager != nil:
		e.mgr = o.manager(t, opts...)
		keysURL = "sqlite://" + filepath.Join(t.TempDir(), "keys.sqlite")
	case backend == "sqlite":
		dir := t.TempDir()
		m, err := tenant.NewSQLiteManager(filepath.Join(dir, "tenants"), opts...)
		if err != nil {
			t.Fatal(err)
		}
		e.mgr = m
		keysURL = "sqlite://" + filepath.Join(dir, "keys.sqlite")
	case backend == "postgres":
		u := pgtest.Shared(t).NewDatabase(t)
		m, err := tenant.NewPostgresManager(ctx, u, opts...)
		if err != nil {
			t.Fatal(err)
		}
		e.mgr = m
		keysURL = u
	default:
		t.Fatalf("unknown backend %q", backend)
	}
	t.Cleanup(func() {
		close(e.release)
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.mgr.Close(cctx); err != nil {
			t.Errorf("closing the manager: %v", err)
		}
	})
	cfg := Config{Manager: e.mgr, Workflows: wfs, AdminKey: testAdminKey, DisableAuth: o.disableAuth,
		Logger: log, Registerer: e.reg, Gatherer: e.reg}
	if !o.noKeys {
		keys, err := apikey.Open(ctx, keysURL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { keys.Close() })
		e.keys = keys
		cfg.Keys = keys
	}
	if o.config != nil {
		o.config(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	return e
}

// req is one request to the server.
type req struct {
	method, path, key string
	body              string
	header            map[string]string
	chunked           bool // send the body without a Content-Length
}

func (e *env) do(r req) *httptest.ResponseRecorder {
	e.t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr := httptest.NewRequestWithContext(testCtx(e.t), r.method, r.path, body)
	if r.body != "" {
		hr.Header.Set("Content-Type", "application/json")
	}
	if r.chunked {
		hr.ContentLength = -1
	}
	if r.key != "" {
		hr.Header.Set("Authorization", "Bearer "+r.key)
	}
	for k, v := range r.header {
		if v == "" {
			hr.Header.Del(k)
		} else {
			hr.Header.Set(k, v)
		}
	}
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, hr)
	if rec.Header().Get("X-Request-Id") == "" {
		e.t.Errorf("%s %s: no X-Request-Id in the answer", r.method, r.path)
	}
	return rec
}

// call does r, checks the status and decodes the JSON answer into out (if
// not nil).
func (e *env) call(r req, status int, out any) *httptest.ResponseRecorder {
	e.t.Helper()
	rec := e.do(r)
	if rec.Code != status {
		e.t.Fatalf("%s %s = %d %s, want %d", r.method, r.path, rec.Code, rec.Body, status)
	}
	if out != nil {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			e.t.Fatalf("%s %s: decoding %s: %v", r.method, r.path, rec.Body, err)
		}
	}
	return rec
}

// apiErr is the decoded error shape.
type apiErr struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	} `json:"error"`
}

// fail does r and checks that it fails with status and code.
func (e *env) fail(r req, status int, code string) apiErr {
	e.t.Helper()
	rec := e.do(r)
	var ae apiErr
	if rec.Code != status || json.Unmarshal(rec.Body.Bytes(), &ae) != nil || ae.Error.Code != code {
		e.t.Fatalf("%s %s = %d %s, want %d %s", r.method, r.path, rec.Code, rec.Body, status, code)
	}
	if ae.Error.RequestID == "" || ae.Error.RequestID != rec.Header().Get("X-Request-Id") {
		e.t.Fatalf("%s %s: error request id %q, header %q", r.method, r.path, ae.Error.RequestID, rec.Header().Get("X-Request-Id"))
	}
	return ae
}

// createTenant creates a tenant with the admin key.
func (e *env) createTenant(id string) {
	e.t.Helper()
	e.call(req{method: "POST", path: "/tenants", key: testAdminKey, body: `{"tenant_id":"` + id + `"}`}, http.StatusCreated, nil)
}

// createKey creates a key of a tenant and returns it whole.
func (e *env) createKey(tenantID, role string) string {
	e.t.Helper()
	var k api.Key
	e.call(req{method: "POST", path: "/tenants/" + tenantID + "/keys", key: testAdminKey,
		body: `{"name":"k","role":"` + role + `"}`}, http.StatusCreated, &k)
	return k.Secret
}

// start starts a workflow and returns the execution id.
func (e *env) start(tenantID, key, workflow string) string {
	e.t.Helper()
	var st api.Started
	e.call(req{method: "POST", path: "/tenants/" + tenantID + "/workflows", key: key,
		body: `{"workflow_name":"` + workflow + `"}`}, http.StatusAccepted, &st)
	return st.ExecutionID
}

// waitStatus polls an execution until it has status want.
func (e *env) waitStatus(tenantID, id string, want ...string) api.Execution {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var ex api.Execution
		e.call(req{method: "GET", path: "/tenants/" + tenantID + "/executions/" + id, key: testAdminKey}, http.StatusOK, &ex)
		for _, w := range want {
			if ex.Status == w {
				return ex
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("execution %s is %s, want %v", id, ex.Status, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitTaskRunning polls until the execution's first task runs.
func (e *env) waitTaskRunning(tenantID, id string) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var ex api.Execution
		e.call(req{method: "GET", path: "/tenants/" + tenantID + "/executions/" + id, key: testAdminKey}, http.StatusOK, &ex)
		if len(ex.Tasks) > 0 && ex.Tasks[0].Status == "Running" {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("the task of execution %s does not run: %+v", id, ex)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ctxOf decodes an execution's final context; nil when it is null or
// missing.
func ctxOf(t testing.TB, ex api.Execution) *cloacina.Context {
	t.Helper()
	if len(ex.Context) == 0 || string(ex.Context) == "null" {
		return nil
	}
	c := cloacina.NewContext()
	if err := json.Unmarshal(ex.Context, c); err != nil {
		t.Fatalf("context %s: %v", ex.Context, err)
	}
	return c
}
