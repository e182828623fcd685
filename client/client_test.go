package client_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina/client"
)

func TestTenantsAndKeys(t *testing.T) {
	ctx := testCtx(t)
	url := newServer(t)
	admin := client.New(url, client.WithAPIKey(adminKey))

	created, err := admin.CreateTenant(ctx, "acme")
	if err != nil || created.TenantID != "acme" || created.CreatedAt.IsZero() {
		t.Fatalf("CreateTenant: %+v, %v", created, err)
	}
	if _, err := admin.CreateTenant(ctx, "globex"); err != nil {
		t.Fatal(err)
	}
	ts, err := admin.ListTenants(ctx)
	if err != nil || len(ts) != 2 || ts[0].TenantID != "acme" || ts[1].TenantID != "globex" {
		t.Errorf("ListTenants: %+v, %v", ts, err)
	}
	if _, err := admin.CreateTenant(ctx, "a;DROP"); client.ErrorCode(err) != "invalid_tenant_id" || !errors.Is(err, client.ErrBadRequest) {
		t.Errorf("invalid id: %v", err)
	}

	k, err := admin.CreateKey(ctx, "acme", "ci", client.RoleWrite)
	if err != nil || k.Secret == "" || k.KeyID == "" || k.Role != client.RoleWrite || k.TenantID != "acme" || k.Name != "ci" {
		t.Fatalf("CreateKey: %+v, %v", k, err)
	}
	if _, err := admin.CreateKey(ctx, "acme", "x", "owner"); client.ErrorCode(err) != "invalid_argument" {
		t.Errorf("bad role: %v", err)
	}
	keys, err := admin.ListKeys(ctx, "acme")
	if err != nil || len(keys) != 1 || keys[0].KeyID != k.KeyID || keys[0].Secret != "" {
		t.Errorf("ListKeys: %+v, %v", keys, err)
	}
	// The key works, then stops working once deleted.
	w := client.New(url, client.WithAPIKey(k.Secret))
	if _, err := w.ListExecutions(ctx, "acme", client.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := admin.DeleteKey(ctx, "acme", k.KeyID); err != nil {
		t.Fatal(err)
	}
	if _, err := w.ListExecutions(ctx, "acme", client.ListOptions{}); !errors.Is(err, client.ErrUnauthorized) {
		t.Errorf("deleted key: %v, want 401", err)
	}
	if err := admin.DeleteKey(ctx, "acme", k.KeyID); client.ErrorCode(err) != "key_not_found" {
		t.Errorf("deleting twice: %v", err)
	}

	if _, err := admin.RotatePassword(ctx, "acme"); !client.IsConflict(err) || client.ErrorCode(err) != "not_supported" {
		t.Errorf("RotatePassword on SQLite: %v", err)
	}
	if err := admin.DeleteTenant(ctx, "globex"); err != nil {
		t.Fatal(err)
	}
	if err := admin.DeleteTenant(ctx, "globex"); !client.IsNotFound(err) {
		t.Errorf("deleting twice: %v", err)
	}
}

func TestExecutions(t *testing.T) {
	ctx := testCtx(t)
	url := newServer(t)
	admin := client.New(url, client.WithAPIKey(adminKey))
	if _, err := admin.CreateTenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	wk, err := admin.CreateKey(ctx, "acme", "w", client.RoleWrite)
	if err != nil {
		t.Fatal(err)
	}
	rk, err := admin.CreateKey(ctx, "acme", "r", client.RoleRead)
	if err != nil {
		t.Fatal(err)
	}
	w := client.New(url, client.WithAPIKey(wk.Secret))
	r := client.New(url, client.WithAPIKey(rk.Secret))

	// Without wait: only the id and status.
	started, err := w.StartExecution(ctx, "acme", client.StartRequest{Workflow: "hello", Context: map[string]string{"name": "Ada"}})
	if err != nil || started.ExecutionID == "" || started.WorkflowName != "hello" || client.Terminal(started.Status) {
		t.Fatalf("StartExecution: %+v, %v", started, err)
	}
	// With wait: the whole execution.
	done, err := w.StartExecution(ctx, "acme", client.StartRequest{Workflow: "hello", Context: map[string]string{"name": "Grace"}, Wait: 10 * time.Second})
	if err != nil || done.Status != client.StatusCompleted || len(done.Tasks) != 1 {
		t.Fatalf("StartExecution with wait: %+v, %v", done, err)
	}
	var out struct{ Greeting string }
	if err := done.DecodeContext(&out); err != nil || out.Greeting != "Hello, Grace!" {
		t.Errorf("context: %s (%v)", done.Context, err)
	}
	if done.Duration() <= 0 || done.CompletedAt.Before(done.CreatedAt) {
		t.Errorf("times: %+v", done)
	}
	if _, err := r.StartExecution(ctx, "acme", client.StartRequest{Workflow: "hello"}); !errors.Is(err, client.ErrForbidden) {
		t.Errorf("read key starting: %v, want 403", err)
	}
	if _, err := w.StartExecution(ctx, "acme", client.StartRequest{Workflow: "nope"}); client.ErrorCode(err) != "workflow_not_found" {
		t.Errorf("unknown workflow: %v", err)
	}
	if _, err := w.StartExecution(ctx, "acme", client.StartRequest{Workflow: "hello", Context: []int{1}}); client.ErrorCode(err) != "invalid_argument" {
		t.Errorf("context not an object: %v", err)
	}

	// A wait execution: pause, resume, cancel.
	long, err := w.StartExecution(ctx, "acme", client.StartRequest{Workflow: "wait", Context: map[string]any{"seconds": 60}})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, r, long.ExecutionID, func(e *client.Execution) bool { return e.Status == client.StatusRunning })
	if e, err := w.Pause(ctx, "acme", long.ExecutionID); err != nil || e.Status != client.StatusPaused {
		t.Errorf("Pause: %+v, %v", e, err)
	}
	if e, err := w.Resume(ctx, "acme", long.ExecutionID); err != nil || e.Status == client.StatusPaused {
		t.Errorf("Resume: %+v, %v", e, err)
	}
	if _, err := w.Cancel(ctx, "acme", long.ExecutionID); err != nil {
		t.Errorf("Cancel: %v", err)
	}
	final := waitUntil(t, r, long.ExecutionID, func(e *client.Execution) bool { return client.Terminal(e.Status) })
	if final.Status != client.StatusCancelled {
		t.Errorf("after Cancel: %s", final.Status)
	}
	if _, err := w.Pause(ctx, "acme", long.ExecutionID); client.ErrorCode(err) != "invalid_transition" || !client.IsConflict(err) {
		t.Errorf("pausing a cancelled execution: %v", err)
	}

	// Listing: filters and cursor paging.
	waitUntil(t, r, started.ExecutionID, func(e *client.Execution) bool { return client.Terminal(e.Status) })
	page, err := r.ListExecutions(ctx, "acme", client.ListOptions{Workflow: "hello", Statuses: []string{client.StatusCompleted}, Limit: 1})
	if err != nil || len(page.Executions) != 1 || page.NextCursor == "" || page.Executions[0].ExecutionID != done.ExecutionID {
		t.Fatalf("first page: %+v, %v", page, err)
	}
	page2, err := r.ListExecutions(ctx, "acme", client.ListOptions{Workflow: "hello", Statuses: []string{client.StatusCompleted}, Limit: 1, Cursor: page.NextCursor})
	if err != nil || len(page2.Executions) != 1 || page2.Executions[0].ExecutionID != started.ExecutionID {
		t.Fatalf("second page: %+v, %v", page2, err)
	}
	if page2.NextCursor != "" {
		p3, err := r.ListExecutions(ctx, "acme", client.ListOptions{Workflow: "hello", Statuses: []string{client.StatusCompleted}, Limit: 1, Cursor: page2.NextCursor})
		if err != nil || len(p3.Executions) != 0 {
			t.Errorf("third page: %+v, %v", p3, err)
		}
	}
	if _, err := r.ListExecutions(ctx, "acme", client.ListOptions{Limit: 5000}); client.ErrorCode(err) != "invalid_argument" {
		t.Errorf("limit 5000: %v", err)
	}

	evs, err := r.Events(ctx, "acme", done.ExecutionID)
	if err != nil || len(evs) < 3 || evs[0].At.IsZero() || evs[0].Type == "" {
		t.Errorf("Events: %+v, %v", evs, err)
	}
	m, err := r.TenantMetrics(ctx, "acme")
	if err != nil || m.TotalExecutions != 3 || m.ByStatus[client.StatusCompleted] != 2 || m.ByStatus[client.StatusCancelled] != 1 {
		t.Errorf("TenantMetrics: %+v, %v", m, err)
	}
	if _, err := r.GetExecution(ctx, "acme", "00000000-0000-0000-0000-000000000000"); client.ErrorCode(err) != "execution_not_found" {
		t.Errorf("unknown execution: %v", err)
	}
	if _, err := r.GetExecution(ctx, "other", done.ExecutionID); client.ErrorCode(err) != "tenant_not_found" {
		t.Errorf("another tenant: %v", err)
	}
}

// waitUntil polls an execution of tenant acme until ok holds.
func waitUntil(t *testing.T, c *client.Client, id string, ok func(*client.Execution) bool) *client.Execution {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		e, err := c.GetExecution(testCtx(t), "acme", id)
		if err != nil {
			t.Fatal(err)
		}
		if ok(e) {
			return e
		}
		if time.Now().After(deadline) {
			t.Fatalf("execution %s: still %s", id, e.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestWorkflowsAndOperations(t *testing.T) {
	ctx := testCtx(t)
	url := newServer(t)
	admin := client.New(url, client.WithAPIKey(adminKey))
	wfs, err := admin.Workflows(ctx)
	if err != nil || len(wfs) != 4 || wfs[0].Name != "etl" {
		t.Fatalf("Workflows: %+v, %v", wfs, err)
	}
	etl, err := admin.Workflow(ctx, "etl")
	if err != nil || etl.Mermaid == "" || etl.DOT == "" || len(etl.Tasks) != 5 || etl.Version == "" || !strings.Contains(etl.Description, "fan-out") {
		t.Errorf("Workflow: %+v, %v", etl, err)
	}
	for _, f := range []string{client.FormatMermaid, client.FormatDOT} {
		g, err := admin.WorkflowGraph(ctx, "etl", f)
		if err != nil || !strings.Contains(g, "extract") {
			t.Errorf("WorkflowGraph %s: %q, %v", f, g, err)
		}
	}
	if _, err := admin.WorkflowGraph(ctx, "etl", "png"); client.ErrorCode(err) != "invalid_argument" {
		t.Errorf("format png: %v", err)
	}
	if _, err := admin.Workflow(ctx, "nope"); client.ErrorCode(err) != "workflow_not_found" {
		t.Errorf("unknown workflow: %v", err)
	}

	anon := client.New(url)
	if h, err := anon.Health(ctx); err != nil || h.Status != "ok" {
		t.Errorf("Health: %+v, %v", h, err)
	}
	if _, err := anon.Ready(ctx); err != nil {
		t.Errorf("Ready: %v", err)
	}
	if doc, err := anon.OpenAPI(ctx); err != nil || !strings.Contains(string(doc), "openapi") {
		t.Errorf("OpenAPI: %.100s, %v", doc, err)
	}
	if _, err := anon.Workflows(ctx); !errors.Is(err, client.ErrUnauthorized) {
		t.Errorf("no key: %v, want 401", err)
	}
	// No Gatherer in this server: /metrics answers 404.
	if _, err := admin.PrometheusMetrics(ctx); !client.IsNotFound(err) {
		t.Errorf("PrometheusMetrics: %v", err)
	}
}

func TestErrors(t *testing.T) {
	ctx := testCtx(t)
	url := newServer(t)
	c := client.New(url, client.WithAPIKey(adminKey))

	_, err := c.GetExecution(ctx, "acme", "x")
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound || apiErr.Code != "tenant_not_found" ||
		apiErr.Message == "" || apiErr.RequestID == "" {
		t.Fatalf("errors.As: %#v", err)
	}
	if !errors.Is(err, client.ErrNotFound) || errors.Is(err, client.ErrConflict) || !client.IsNotFound(err) {
		t.Errorf("sentinels: %v", err)
	}
	if !strings.Contains(err.Error(), "404 tenant_not_found") || !strings.Contains(err.Error(), apiErr.RequestID) {
		t.Errorf("message: %q", err)
	}

	// Checked before any request.
	for _, err := range []error{
		func() error { _, err := c.GetExecution(ctx, "", "x"); return err }(),
		func() error { _, err := c.StartExecution(ctx, "acme", client.StartRequest{}); return err }(),
		c.DeleteKey(ctx, "acme", ""),
	} {
		if !errors.Is(err, client.ErrInvalidArgument) {
			t.Errorf("empty argument: %v", err)
		}
	}
	for _, bad := range []string{"127.0.0.1:8080", "ftp://x", "http://", "http://[::1"} {
		if _, err := client.New(bad).Health(ctx); err == nil {
			t.Errorf("New(%q): no error", bad)
		}
	}

	// A response that is not the API's error shape.
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "upstream down", http.StatusBadGateway)
	}))
	defer proxy.Close()
	_, err = client.New(proxy.URL).ListTenants(ctx)
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadGateway || apiErr.Code != "" || apiErr.Message != "upstream down" {
		t.Errorf("proxy error: %#v", err)
	}
	if got := fmt.Sprint(err); !strings.Contains(got, "502 Bad Gateway: upstream down") {
		t.Errorf("proxy error text: %q", got)
	}
}

func TestPathPrefixAndEscaping(t *testing.T) {
	ctx := testCtx(t)
	var got string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.URL.RawPath
		if got == "" {
			got = r.URL.Path
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"events": []}`)
	}))
	defer ts.Close()
	c := client.New(ts.URL + "/api/")
	if _, err := c.Events(ctx, "a/b", "x y"); err != nil {
		t.Fatal(err)
	}
	if got != "/api/tenants/a%2Fb/executions/x%20y/events" {
		t.Errorf("path: %q", got)
	}
}
