package server

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina/api"
)

// TestHappyPath walks every route once, as the admin and as tenant keys.
func TestHappyPath(t *testing.T) {
	e := newEnv(t, "sqlite", envOpts{})
	admin := testAdminKey

	// Tenants.
	var created api.Tenant
	rec := e.call(req{method: "POST", path: "/tenants", key: admin, body: `{"tenant_id":"acme"}`}, http.StatusCreated, &created)
	if created.TenantID != "acme" || created.CreatedAt.IsZero() || rec.Header().Get("Location") != "/tenants/acme" {
		t.Fatalf("POST /tenants = %+v, Location %q", created, rec.Header().Get("Location"))
	}
	e.createTenant("beta")
	var tenants api.Tenants
	e.call(req{method: "GET", path: "/tenants", key: admin}, http.StatusOK, &tenants)
	if len(tenants.Tenants) != 2 || tenants.Tenants[0].TenantID != "acme" || tenants.Tenants[1].TenantID != "beta" {
		t.Fatalf("GET /tenants = %+v", tenants)
	}

	// Keys.
	var wk api.Key
	e.call(req{method: "POST", path: "/tenants/acme/keys", key: admin, body: `{"name":"ci","role":"write"}`}, http.StatusCreated, &wk)
	if wk.KeyID == "" || !strings.HasPrefix(wk.Secret, "ck_"+wk.KeyID+"_") || wk.Name != "ci" || wk.Role != "write" || wk.TenantID != "acme" || wk.CreatedAt.IsZero() {
		t.Fatalf("created key %+v", wk)
	}
	rk := e.createKey("acme", "read")
	var keys api.Keys
	rec = e.call(req{method: "GET", path: "/tenants/acme/keys", key: admin}, http.StatusOK, &keys)
	if len(keys.Keys) != 2 || strings.Contains(rec.Body.String(), wk.Secret) || strings.Contains(rec.Body.String(), rk) || strings.Contains(rec.Body.String(), `"key"`) {
		t.Fatalf("GET keys = %s", rec.Body)
	}

	// Workflows, with any key.
	var wfs api.Workflows
	e.call(req{method: "GET", path: "/workflows", key: rk}, http.StatusOK, &wfs)
	if len(wfs.Workflows) != 2 || wfs.Workflows[0].Name != "block" || wfs.Workflows[1].Name != "hello" || wfs.Workflows[1].Mermaid != "" {
		t.Fatalf("GET /workflows = %+v", wfs)
	}
	var wf api.Workflow
	e.call(req{method: "GET", path: "/workflows/hello", key: rk}, http.StatusOK, &wf)
	if wf.Version == "" || len(wf.Tasks) != 2 || wf.Tasks[0].Description != "says hello" || !slices.Equal(wf.Tasks[1].DependsOn, []string{"greet"}) ||
		wf.Tasks[0].DependsOn == nil || !strings.HasPrefix(wf.Mermaid, "flowchart") || !strings.HasPrefix(wf.DOT, "digraph") {
		t.Fatalf("GET /workflows/hello = %+v", wf)
	}
	for format, prefix := range map[string]string{"mermaid": "flowchart", "dot": "digraph"} {
		rec := e.call(req{method: "GET", path: "/workflows/hello?format=" + format, key: rk}, http.StatusOK, nil)
		if !strings.HasPrefix(rec.Body.String(), prefix) || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
			t.Fatalf("format=%s: %s %q", format, rec.Header().Get("Content-Type"), rec.Body)
		}
	}

	// An execution waited for.
	var ex api.Execution
	e.call(req{method: "POST", path: "/tenants/acme/workflows?wait=20s", key: wk.Secret,
		body: `{"workflow_name":"hello","context":{"name":"Ada"}}`}, http.StatusOK, &ex)
	if ex.Status != "Completed" || ctxOf(t, ex) == nil || len(ex.Tasks) != 2 || ex.Tasks[0].Status != "Completed" || ex.Tasks[0].Attempts != 1 ||
		ex.CompletedAt.IsZero() || ex.WorkflowVersion != wf.Version {
		t.Fatalf("wait: %+v", ex)
	}
	if g, _ := ctxOf(t, ex).Get("greeting"); g != "Hello, Ada!" {
		t.Fatalf("greeting %v", g)
	}

	// One started without waiting, read with the read key.
	var st api.Started
	rec = e.call(req{method: "POST", path: "/tenants/acme/workflows", key: wk.Secret, body: `{"workflow_name":"hello"}`}, http.StatusAccepted, &st)
	if st.Status != "Pending" || st.WorkflowName != "hello" || rec.Header().Get("Location") != "/tenants/acme/executions/"+st.ExecutionID {
		t.Fatalf("202: %+v, Location %q", st, rec.Header().Get("Location"))
	}
	done := e.waitStatus("acme", st.ExecutionID, "Completed")
	if g, _ := ctxOf(t, done).Get("greeting"); g != "Hello, world!" {
		t.Fatalf("greeting %v", g)
	}
	var got api.Execution
	rec = e.call(req{method: "GET", path: "/tenants/acme/executions/" + st.ExecutionID, key: rk}, http.StatusOK, &got)
	var raw map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"execution_id", "workflow_name", "workflow_version", "status", "error", "created_at", "started_at", "completed_at", "duration_ms", "context", "tasks"} {
		if _, ok := raw[field]; !ok {
			t.Errorf("GET execution lacks %q: %s", field, rec.Body)
		}
	}
	var page api.ExecutionPage
	e.call(req{method: "GET", path: "/tenants/acme/executions?status=Completed&workflow=hello&limit=1", key: rk}, http.StatusOK, &page)
	if len(page.Executions) != 1 || page.Executions[0].ExecutionID != st.ExecutionID || page.NextCursor == "" {
		t.Fatalf("page 1 = %+v", page)
	}
	cursor := page.NextCursor
	page = api.ExecutionPage{}
	e.call(req{method: "GET", path: "/tenants/acme/executions?limit=1&cursor=" + cursor, key: rk}, http.StatusOK, &page)
	if len(page.Executions) != 1 || page.Executions[0].ExecutionID != ex.ExecutionID || page.NextCursor != "" {
		t.Fatalf("page 2 = %+v", page)
	}
	var evs api.Events
	e.call(req{method: "GET", path: "/tenants/acme/executions/" + st.ExecutionID + "/events", key: rk}, http.StatusOK, &evs)
	if len(evs.Events) < 4 || evs.Events[0].Type != "execution_created" || evs.Events[len(evs.Events)-1].Type != "execution_completed" {
		t.Fatalf("events = %+v", evs)
	}
	var m api.TenantMetrics
	e.call(req{method: "GET", path: "/tenants/acme/metrics", key: rk}, http.StatusOK, &m)
	if m.TotalExecutions != 2 || m.ByStatus["Completed"] != 2 || m.ActiveExecutions != 0 {
		t.Fatalf("metrics = %+v", m)
	}

	// Pause, resume and cancel a running execution.
	id := e.start("acme", wk.Secret, "block")
	e.waitTaskRunning("acme", id)
	var sum api.Execution
	e.call(req{method: "POST", path: "/tenants/acme/executions/" + id + "/pause", key: wk.Secret}, http.StatusOK, &sum)
	if sum.Status != "Paused" || sum.ExecutionID != id {
		t.Fatalf("pause = %+v", sum)
	}
	e.call(req{method: "POST", path: "/tenants/acme/executions/" + id + "/resume", key: wk.Secret, body: `{}`}, http.StatusOK, &sum)
	if sum.Status != "Running" {
		t.Fatalf("resume = %+v", sum)
	}
	e.call(req{method: "POST", path: "/tenants/acme/executions/" + id + "/cancel", key: wk.Secret}, http.StatusOK, &sum)
	if sum.Status != "Cancelled" {
		t.Fatalf("cancel = %+v", sum)
	}
	e.fail(req{method: "POST", path: "/tenants/acme/executions/" + id + "/pause", key: wk.Secret}, http.StatusConflict, codeInvalidTransition)

	// Operations.
	var hz api.Health
	e.call(req{method: "GET", path: "/healthz"}, http.StatusOK, &hz)
	if hz.Status != "ok" {
		t.Fatalf("healthz %+v", hz)
	}
	e.call(req{method: "GET", path: "/readyz"}, http.StatusOK, &hz)
	if hz.Status != "ready" || hz.Warning != "" {
		t.Fatalf("readyz %+v", hz)
	}
	rec = e.call(req{method: "GET", path: "/metrics", key: admin}, http.StatusOK, nil)
	for _, want := range []string{`cloacina_http_requests_total{code="201",route="POST /tenants"} 2`, `cloacina_http_request_duration_seconds_bucket{route="GET /tenants/{tenant_id}/executions/{execution_id}"`} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	rec = e.call(req{method: "GET", path: "/openapi.json"}, http.StatusOK, nil)
	if !json.Valid(rec.Body.Bytes()) || !strings.Contains(rec.Body.String(), `"openapi": "3.1.0"`) {
		t.Fatalf("openapi: %.100s", rec.Body)
	}
	e.fail(req{method: "POST", path: "/tenants/acme/rotate-password", key: admin}, http.StatusConflict, codeNotSupported)

	// Deleting a key, then the tenant.
	e.call(req{method: "DELETE", path: "/tenants/acme/keys/" + wk.KeyID, key: admin}, http.StatusNoContent, nil)
	e.fail(req{method: "GET", path: "/tenants/acme/executions", key: wk.Secret}, http.StatusUnauthorized, codeUnauthorized)
	e.fail(req{method: "DELETE", path: "/tenants/acme/keys/" + wk.KeyID, key: admin}, http.StatusNotFound, codeKeyNotFound)
	e.call(req{method: "DELETE", path: "/tenants/acme", key: admin}, http.StatusNoContent, nil)
	e.fail(req{method: "GET", path: "/tenants/acme/executions", key: rk}, http.StatusUnauthorized, codeUnauthorized)
	e.fail(req{method: "GET", path: "/tenants/acme/executions", key: admin}, http.StatusNotFound, codeTenantNotFound)
	e.fail(req{method: "DELETE", path: "/tenants/acme", key: admin}, http.StatusNotFound, codeTenantNotFound)
	if ks, err := e.keys.List(testCtx(t), "acme"); err != nil || len(ks) != 0 {
		t.Fatalf("keys of a removed tenant: %v, %v", ks, err)
	}
	e.call(req{method: "GET", path: "/tenants", key: admin}, http.StatusOK, &tenants)
	if len(tenants.Tenants) != 1 || tenants.Tenants[0].TenantID != "beta" {
		t.Fatalf("GET /tenants after delete = %+v", tenants)
	}
}

// TestErrors checks every status of the contract's table.
func TestErrors(t *testing.T) {
	e := newEnv(t, "sqlite", envOpts{})
	e.createTenant("acme")
	e.createTenant("beta")
	wk := e.createKey("acme", "write")
	rk := e.createKey("acme", "read")
	revoked := e.createKey("acme", "read")
	ks, err := e.keys.List(testCtx(t), "acme")
	if err != nil {
		t.Fatal(err)
	}
	e.call(req{method: "DELETE", path: "/tenants/acme/keys/" + ks[2].ID, key: testAdminKey}, http.StatusNoContent, nil)
	done := e.start("acme", wk, "hello")
	e.waitStatus("acme", done, "Completed")
	betaExec := e.start("beta", testAdminKey, "hello")
	big := `{"workflow_name":"hello","context":{"x":"` + strings.Repeat("a", DefaultMaxBodyBytes) + `"}}`
	A := testAdminKey
	for _, tc := range []struct {
		name   string
		r      req
		status int
		code   string
	}{
		{"not JSON", req{method: "POST", path: "/tenants", key: A, body: `{"tenant_id":`}, 400, codeInvalidJSON},
		{"unknown field", req{method: "POST", path: "/tenants", key: A, body: `{"tenant_id":"x","extra":1}`}, 400, codeInvalidJSON},
		{"trailing data", req{method: "POST", path: "/tenants", key: A, body: `{"tenant_id":"x"} {}`}, 400, codeInvalidJSON},
		{"empty body", req{method: "POST", path: "/tenants", key: A, body: ` `}, 400, codeInvalidJSON},
		{"wrong type", req{method: "POST", path: "/tenants", key: A, body: `{"tenant_id":5}`}, 400, codeInvalidJSON},
		{"body not an object", req{method: "POST", path: "/tenants", key: A, body: `[]`}, 400, codeInvalidJSON},
		{"invalid tenant id", req{method: "POST", path: "/tenants", key: A, body: `{"tenant_id":"a;DROP SCHEMA x"}`}, 400, codeInvalidTenantID},
		{"reserved tenant id", req{method: "POST", path: "/tenants", key: A, body: `{"tenant_id":"pg_catalog"}`}, 400, codeInvalidTenantID},
		{"invalid tenant id in the path", req{method: "GET", path: "/tenants/a%3BDROP%20SCHEMA%20x/executions", key: A}, 400, codeInvalidTenantID},
		{"tenant id with a slash", req{method: "DELETE", path: "/tenants/..%2Fetc", key: A}, 400, codeInvalidTenantID},
		{"bad wait", req{method: "POST", path: "/tenants/acme/workflows?wait=soon", key: wk, body: `{"workflow_name":"hello"}`}, 400, codeInvalidArgument},
		{"wait too long", req{method: "POST", path: "/tenants/acme/workflows?wait=6m", key: wk, body: `{"workflow_name":"hello"}`}, 400, codeInvalidArgument},
		{"negative wait", req{method: "POST", path: "/tenants/acme/workflows?wait=-1s", key: wk, body: `{"workflow_name":"hello"}`}, 400, codeInvalidArgument},
		{"context not an object", req{method: "POST", path: "/tenants/acme/workflows", key: wk, body: `{"workflow_name":"hello","context":[1]}`}, 400, codeInvalidArgument},
		{"context a string", req{method: "POST", path: "/tenants/acme/workflows", key: wk, body: `{"workflow_name":"hello","context":"x"}`}, 400, codeInvalidArgument},
		{"no workflow name", req{method: "POST", path: "/tenants/acme/workflows", key: wk, body: `{}`}, 400, codeInvalidArgument},
		{"bad key role", req{method: "POST", path: "/tenants/acme/keys", key: A, body: `{"name":"x","role":"admin"}`}, 400, codeInvalidArgument},
		{"empty key name", req{method: "POST", path: "/tenants/acme/keys", key: A, body: `{"name":"","role":"read"}`}, 400, codeInvalidArgument},
		{"bad status", req{method: "GET", path: "/tenants/acme/executions?status=Done", key: rk}, 400, codeInvalidArgument},
		{"bad limit", req{method: "GET", path: "/tenants/acme/executions?limit=0", key: rk}, 400, codeInvalidArgument},
		{"limit too big", req{method: "GET", path: "/tenants/acme/executions?limit=1001", key: rk}, 400, codeInvalidArgument},
		{"bad cursor", req{method: "GET", path: "/tenants/acme/executions?cursor=nope", key: rk}, 400, codeInvalidArgument},
		{"unknown parameter", req{method: "GET", path: "/tenants/acme/executions?sort=asc", key: rk}, 400, codeInvalidArgument},
		{"repeated parameter", req{method: "GET", path: "/tenants/acme/executions?limit=1&limit=2", key: rk}, 400, codeInvalidArgument},
		{"bad format", req{method: "GET", path: "/workflows/hello?format=png", key: rk}, 400, codeInvalidArgument},

		{"no key", req{method: "GET", path: "/tenants/acme/executions"}, 401, codeUnauthorized},
		{"garbage key", req{method: "GET", path: "/tenants/acme/executions", key: "garbage"}, 401, codeUnauthorized},
		{"not bearer", req{method: "GET", path: "/tenants/acme/executions", header: map[string]string{"Authorization": "Basic " + rk}}, 401, codeUnauthorized},
		{"revoked key", req{method: "GET", path: "/tenants/acme/executions", key: revoked}, 401, codeUnauthorized},
		{"wrong admin key", req{method: "GET", path: "/tenants", key: A + "x"}, 401, codeUnauthorized},
		{"no key on workflows", req{method: "GET", path: "/workflows"}, 401, codeUnauthorized},
		{"no key on metrics", req{method: "GET", path: "/metrics"}, 401, codeUnauthorized},

		{"read key on a write route", req{method: "POST", path: "/tenants/acme/workflows", key: rk, body: `{"workflow_name":"hello"}`}, 403, codeForbidden},
		{"read key cancels", req{method: "POST", path: "/tenants/acme/executions/" + done + "/cancel", key: rk}, 403, codeForbidden},
		{"tenant key on an admin route", req{method: "GET", path: "/tenants", key: wk}, 403, codeForbidden},
		{"tenant key makes keys", req{method: "POST", path: "/tenants/acme/keys", key: wk, body: `{"name":"x","role":"write"}`}, 403, codeForbidden},
		{"tenant key deletes its tenant", req{method: "DELETE", path: "/tenants/acme", key: wk}, 403, codeForbidden},
		{"tenant key on /metrics", req{method: "GET", path: "/metrics", key: wk}, 403, codeForbidden},

		{"no route", req{method: "GET", path: "/nope", key: A}, 404, codeNotFound},
		{"no route, no key", req{method: "GET", path: "/tenants/acme/nope"}, 404, codeNotFound},
		{"unknown tenant", req{method: "GET", path: "/tenants/nobody/executions", key: A}, 404, codeTenantNotFound},
		{"unknown tenant's keys", req{method: "POST", path: "/tenants/nobody/keys", key: A, body: `{"name":"x","role":"read"}`}, 404, codeTenantNotFound},
		{"unknown workflow", req{method: "POST", path: "/tenants/acme/workflows", key: wk, body: `{"workflow_name":"nope"}`}, 404, codeWorkflowNotFound},
		{"unknown workflow description", req{method: "GET", path: "/workflows/nope", key: rk}, 404, codeWorkflowNotFound},
		{"unknown execution", req{method: "GET", path: "/tenants/acme/executions/0193a1b2-0000-7000-8000-000000000000", key: rk}, 404, codeExecutionNotFound},
		{"not an execution id", req{method: "GET", path: "/tenants/acme/executions/nope/events", key: rk}, 404, codeExecutionNotFound},
		{"other tenant's execution, admin", req{method: "GET", path: "/tenants/acme/executions/" + betaExec, key: A}, 404, codeExecutionNotFound},
		{"other tenant's execution, key", req{method: "GET", path: "/tenants/acme/executions/" + betaExec, key: rk}, 404, codeExecutionNotFound},
		{"other tenant's route, key", req{method: "GET", path: "/tenants/beta/executions/" + betaExec, key: rk}, 404, codeTenantNotFound},
		{"unknown key", req{method: "DELETE", path: "/tenants/acme/keys/0123456789abcdef", key: A}, 404, codeKeyNotFound},

		{"method", req{method: "PUT", path: "/tenants", key: A}, 405, codeMethodNotAllowed},
		{"method, no key", req{method: "DELETE", path: "/workflows"}, 405, codeMethodNotAllowed},

		{"tenant exists", req{method: "POST", path: "/tenants", key: A, body: `{"tenant_id":"acme"}`}, 409, codeTenantExists},
		{"finished execution paused", req{method: "POST", path: "/tenants/acme/executions/" + done + "/pause", key: wk}, 409, codeInvalidTransition},
		{"finished execution cancelled", req{method: "POST", path: "/tenants/acme/executions/" + done + "/cancel", key: A}, 409, codeInvalidTransition},
		{"resume not paused", req{method: "POST", path: "/tenants/acme/executions/" + done + "/resume", key: wk}, 409, codeInvalidTransition},
		{"rotate without roles", req{method: "POST", path: "/tenants/acme/rotate-password", key: A}, 409, codeNotSupported},

		{"too large", req{method: "POST", path: "/tenants/acme/workflows", key: wk, body: big}, 413, codePayloadTooLarge},
		{"too large, chunked", req{method: "POST", path: "/tenants", key: A, body: `{"tenant_id":"` + strings.Repeat("a", DefaultMaxBodyBytes) + `"}`,
			chunked: true}, 413, codePayloadTooLarge},

		{"not JSON media type", req{method: "POST", path: "/tenants", key: A, body: `{"tenant_id":"x"}`, header: map[string]string{"Content-Type": "text/plain"}}, 415, codeUnsupportedMediaType},
		{"bad media type", req{method: "POST", path: "/tenants", key: A, body: `{"tenant_id":"x"}`, header: map[string]string{"Content-Type": "x;;"}}, 415, codeUnsupportedMediaType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			defer func() { e.t = nil }()
			e.fail(tc.r, tc.status, tc.code)
		})
	}
	e.t = t
	// 405 carries Allow; 401 carries WWW-Authenticate.
	rec := e.do(req{method: "PUT", path: "/tenants", key: A})
	if allow := rec.Header().Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "POST") {
		t.Errorf("405 Allow = %q", allow)
	}
	rec = e.do(req{method: "GET", path: "/tenants"})
	if !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("401 WWW-Authenticate = %q", rec.Header().Get("WWW-Authenticate"))
	}
	// Explicit JSON media types are fine; a charset too.
	e.call(req{method: "POST", path: "/tenants", key: A, body: `{"tenant_id":"gamma"}`,
		header: map[string]string{"Content-Type": "application/json; charset=utf-8"}}, http.StatusCreated, nil)
	// A context given as null is an empty one.
	e.call(req{method: "POST", path: "/tenants/acme/workflows", key: wk, body: `{"workflow_name":"hello","context":null}`}, http.StatusAccepted, nil)
}

// TestRefusedWritesNothing: a refused request leaves no trace.
func TestRefusedWritesNothing(t *testing.T) {
	e := newEnv(t, "sqlite", envOpts{})
	e.createTenant("acme")
	wk := e.createKey("acme", "write")
	rk := e.createKey("acme", "read")
	big := `{"workflow_name":"hello","context":{"x":"` + strings.Repeat("a", DefaultMaxBodyBytes) + `"}}`
	for _, r := range []req{
		{method: "POST", path: "/tenants/acme/workflows", key: wk, body: `{"workflow_name":"hello","extra":1}`},
		{method: "POST", path: "/tenants/acme/workflows", key: wk, body: `{"workflow_name":"hello"}x`},
		{method: "POST", path: "/tenants/acme/workflows", key: wk, body: `{"workflow_name":"hello","context":[]}`},
		{method: "POST", path: "/tenants/acme/workflows?wait=1h", key: wk, body: `{"workflow_name":"hello"}`},
		{method: "POST", path: "/tenants/acme/workflows?bogus=1", key: wk, body: `{"workflow_name":"hello"}`},
		{method: "POST", path: "/tenants/acme/workflows", key: wk, body: big},
		{method: "POST", path: "/tenants/acme/workflows", key: rk, body: `{"workflow_name":"hello"}`},
		{method: "POST", path: "/tenants/acme/workflows", body: `{"workflow_name":"hello"}`},
		{method: "POST", path: "/tenants/acme/workflows", key: wk, body: `{"workflow_name":"hello"}`, header: map[string]string{"Content-Type": "text/plain"}},
		{method: "POST", path: "/tenants/acme/workflows", key: wk, body: `{"workflow_name":"nope"}`},
		{method: "POST", path: "/tenants", key: testAdminKey, body: `{"tenant_id":"a;DROP SCHEMA x"}`},
		{method: "POST", path: "/tenants", key: testAdminKey, body: `{"tenant_id":"new","x":1}`},
		{method: "POST", path: "/tenants", key: wk, body: `{"tenant_id":"new"}`},
		{method: "POST", path: "/tenants/acme/keys", key: testAdminKey, body: `{"name":"x","role":"owner"}`},
		{method: "POST", path: "/tenants/nobody/keys", key: testAdminKey, body: `{"name":"x","role":"read"}`},
		{method: "GET", path: "/tenants/nobody/executions", key: testAdminKey},
		{method: "GET", path: "/tenants/nobody/metrics", key: testAdminKey},
	} {
		if rec := e.do(r); rec.Code < 400 {
			t.Fatalf("%s %s %.60s = %d, want a refusal", r.method, r.path, r.body, rec.Code)
		}
	}
	var page api.ExecutionPage
	e.call(req{method: "GET", path: "/tenants/acme/executions", key: rk}, http.StatusOK, &page)
	if len(page.Executions) != 0 {
		t.Fatalf("refused starts created executions: %+v", page.Executions)
	}
	var tenants api.Tenants
	e.call(req{method: "GET", path: "/tenants", key: testAdminKey}, http.StatusOK, &tenants)
	if len(tenants.Tenants) != 1 {
		t.Fatalf("refused requests created tenants: %+v", tenants)
	}
	if ks, _ := e.keys.List(testCtx(t), "acme"); len(ks) != 2 {
		t.Fatalf("refused requests created keys: %v", ks)
	}
	if ks, _ := e.keys.List(testCtx(t), "nobody"); len(ks) != 0 {
		t.Fatalf("refused requests created keys: %v", ks)
	}
}

// TestIsolation: a tenant's key sees only its tenant, and another
// tenant's routes look exactly like a tenant that does not exist.
func TestIsolation(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, backend, envOpts{})
			e.createTenant("acme")
			e.createTenant("beta")
			acme := e.createKey("acme", "write")
			beta := e.createKey("beta", "write")
			ea := e.start("acme", acme, "hello")
			eb := e.start("beta", beta, "hello")
			e.waitStatus("acme", ea, "Completed")
			e.waitStatus("beta", eb, "Completed")
			for _, c := range []struct{ key, own, ownExec, other, otherExec string }{
				{acme, "acme", ea, "beta", eb},
				{beta, "beta", eb, "acme", ea},
			} {
				var page api.ExecutionPage
				e.call(req{method: "GET", path: "/tenants/" + c.own + "/executions", key: c.key}, http.StatusOK, &page)
				if len(page.Executions) != 1 || page.Executions[0].ExecutionID != c.ownExec {
					t.Fatalf("%s sees %+v", c.own, page.Executions)
				}
				// The other tenant's execution through its own tenant: not found.
				e.fail(req{method: "GET", path: "/tenants/" + c.own + "/executions/" + c.otherExec, key: c.key}, http.StatusNotFound, codeExecutionNotFound)
				e.fail(req{method: "POST", path: "/tenants/" + c.own + "/executions/" + c.otherExec + "/cancel", key: c.key}, http.StatusNotFound, codeExecutionNotFound)
				// Every route of the other tenant answers as for a tenant that
				// does not exist.
				for _, r := range []req{
					{method: "GET", path: "/tenants/%s/executions"},
					{method: "GET", path: "/tenants/%s/executions/" + c.otherExec},
					{method: "GET", path: "/tenants/%s/executions/" + c.otherExec + "/events"},
					{method: "POST", path: "/tenants/%s/executions/" + c.otherExec + "/pause"},
					{method: "POST", path: "/tenants/%s/workflows", body: `{"workflow_name":"hello"}`},
					{method: "GET", path: "/tenants/%s/metrics"},
				} {
					other, missing := r, r
					other.path, other.key = strings.Replace(r.path, "%s", c.other, 1), c.key
					missing.path, missing.key = strings.Replace(r.path, "%s", "nobody", 1), testAdminKey
					a, b := e.do(other), e.do(missing)
					if a.Code != http.StatusNotFound || a.Code != b.Code {
						t.Fatalf("%s %s = %d, nonexistent tenant %d", other.method, other.path, a.Code, b.Code)
					}
					if na, nb := normalize(a.Body.String(), c.other), normalize(b.Body.String(), "nobody"); na != nb {
						t.Fatalf("another tenant's answer %s differs from a missing tenant's %s", na, nb)
					}
					if !sameHeaders(a.Header(), b.Header()) {
						t.Fatalf("headers differ: %v vs %v", a.Header(), b.Header())
					}
				}
			}
			var page api.ExecutionPage
			e.call(req{method: "GET", path: "/tenants/acme/executions", key: acme}, http.StatusOK, &page)
			if len(page.Executions) != 1 {
				t.Fatalf("acme's executions after the other tenant's attempts: %+v", page.Executions)
			}
		})
	}
}

// normalize drops the request id and names the tenant T.
func normalize(body, tenantID string) string {
	var ae apiErr
	if err := json.Unmarshal([]byte(body), &ae); err != nil {
		return body
	}
	ae.Error.RequestID = ""
	ae.Error.Message = strings.ReplaceAll(ae.Error.Message, tenantID, "T")
	b, _ := json.Marshal(ae)
	return string(b)
}

// sameHeaders reports whether two answers have the same headers, but for
// their request ids and lengths.
func sameHeaders(a, b http.Header) bool {
	norm := func(h http.Header) http.Header {
		h = h.Clone()
		h.Del("X-Request-Id")
		h.Del("Content-Length")
		return h
	}
	na, nb := norm(a), norm(b)
	if len(na) != len(nb) {
		return false
	}
	for k, v := range na {
		if !slices.Equal(v, nb[k]) {
			return false
		}
	}
	return true
}

// TestWait: ?wait answers 200 with the final state when the execution ends
// in time, 202 when not.
func TestWait(t *testing.T) {
	e := newEnv(t, "sqlite", envOpts{})
	e.createTenant("acme")
	var ex api.Execution
	e.call(req{method: "POST", path: "/tenants/acme/workflows?wait=30s", key: testAdminKey, body: `{"workflow_name":"hello"}`}, http.StatusOK, &ex)
	if ex.Status != "Completed" || ctxOf(t, ex) == nil {
		t.Fatalf("wait: %+v", ex)
	}
	began := time.Now()
	var st api.Started
	rec := e.call(req{method: "POST", path: "/tenants/acme/workflows?wait=200ms", key: testAdminKey, body: `{"workflow_name":"block"}`}, http.StatusAccepted, &st)
	if took := time.Since(began); took < 200*time.Millisecond || took > 10*time.Second {
		t.Fatalf("wait=200ms took %v", took)
	}
	if st.Status != "Pending" || st.ExecutionID == "" || rec.Header().Get("Location") == "" {
		t.Fatalf("202 after wait: %+v", st)
	}
	// Draining ends waits at once, and readiness fails.
	done := make(chan int)
	go func() {
		rec := e.do(req{method: "POST", path: "/tenants/acme/workflows?wait=5m", key: testAdminKey, body: `{"workflow_name":"block"}`})
		done <- rec.Code
	}()
	time.Sleep(200 * time.Millisecond)
	e.srv.SetDraining()
	select {
	case code := <-done:
		if code != http.StatusAccepted {
			t.Fatalf("a wait ended by draining answered %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("draining did not end a waiting request")
	}
	e.fail(req{method: "GET", path: "/readyz"}, http.StatusServiceUnavailable, codeUnavailable)
	e.call(req{method: "GET", path: "/healthz"}, http.StatusOK, nil)
}

// TestRequestID: every answer has a request id; a sane one of the client is
// kept, another replaced.
func TestRequestID(t *testing.T) {
	e := newEnv(t, "sqlite", envOpts{})
	for _, tc := range []struct {
		sent string
		kept bool
	}{
		{"abc-123_X.y", true},
		{strings.Repeat("a", 128), true},
		{strings.Repeat("a", 129), false},
		{"has space", false},
		{"semi;colon", false},
		{"", false},
	} {
		for _, r := range []req{
			{method: "GET", path: "/healthz"},
			{method: "GET", path: "/tenants"},
			{method: "GET", path: "/nope"},
			{method: "PATCH", path: "/tenants"},
			{method: "POST", path: "/tenants", key: testAdminKey, body: `{`},
		} {
			r.header = map[string]string{"X-Request-Id": tc.sent}
			rec := e.do(r)
			got := rec.Header().Get("X-Request-Id")
			if tc.kept && got != tc.sent || !tc.kept && (got == tc.sent || got == "") {
				t.Fatalf("%s %s with X-Request-Id %q answered %q", r.method, r.path, tc.sent, got)
			}
			if rec.Code >= 400 {
				var ae apiErr
				if err := json.Unmarshal(rec.Body.Bytes(), &ae); err != nil || ae.Error.RequestID != got {
					t.Fatalf("error body %s, header id %q", rec.Body, got)
				}
			}
		}
	}
	if !strings.Contains(e.logs.String(), "request_id=abc-123_X.y") {
		t.Fatal("the access log does not carry the request id")
	}
}

// TestLogsHoldNoSecrets: keys and the Authorization header never reach the
// log, and the access log has what it should.
func TestLogsHoldNoSecrets(t *testing.T) {
	e := newEnv(t, "sqlite", envOpts{})
	e.createTenant("acme")
	k := e.createKey("acme", "write")
	e.start("acme", k, "hello")
	e.do(req{method: "GET", path: "/tenants/acme/executions", key: k + "x"})
	e.do(req{method: "GET", path: "/tenants", key: "ck_0123456789abcdef_" + strings.Repeat("A", 43)})
	logs := e.logs.String()
	secret := k[len(k)-43:]
	for _, s := range []string{secret, testAdminKey, "Bearer", "Authorization"} {
		if strings.Contains(logs, s) {
			t.Fatalf("the log holds %q:\n%s", s, logs)
		}
	}
	for _, want := range []string{`msg="http request"`, `route="POST /tenants/{tenant_id}/workflows"`, "status=202", "tenant=acme", "method=POST", "duration="} {
		if !strings.Contains(logs, want) {
			t.Errorf("the access log lacks %s:\n%s", want, logs)
		}
	}
}

// TestBodyErrorMessages: a body's problem is told in JSON terms (the
// field, the JSON type wanted), never with Go's types, and a curl -d
// without a JSON Content-Type is told how to fix it.
func TestBodyErrorMessages(t *testing.T) {
	e := newEnv(t, "sqlite", envOpts{})
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	for _, tc := range []struct {
		r      req
		status int
		want   string
	}{
		{req{body: `{"tenant_id":5}`}, 400, `field "tenant_id": want a string, got number`},
		{req{body: `[]`}, 400, `want a JSON object, got array`},
		{req{body: `"acme"`}, 400, `want a JSON object, got string`},
		{req{body: `{"tenant_id":`}, 400, `it ends too soon`},
		{req{body: `{"tenant_id":"x","extra":1}`}, 400, `unknown field "extra"`},
		{req{body: `{"tenant_id":"x"}`, header: form}, 415, `add -H 'Content-Type: application/json'`},
	} {
		tc.r.method, tc.r.path, tc.r.key = "POST", "/tenants", testAdminKey
		rec := e.do(tc.r)
		var ae apiErr
		if err := json.Unmarshal(rec.Body.Bytes(), &ae); err != nil || rec.Code != tc.status ||
			!strings.Contains(ae.Error.Message, tc.want) || strings.Contains(ae.Error.Message, "Go ") || strings.Contains(ae.Error.Message, "struct") {
			t.Errorf("%s: %d %s, want %d with %q", tc.r.body, rec.Code, rec.Body, tc.status, tc.want)
		}
	}
	e.call(req{method: "POST", path: "/tenants/nope/keys", key: testAdminKey, body: `{"name":"x","role":"read"}`}, http.StatusNotFound, nil)
	e.createTenant("acme")
	rec := e.do(req{method: "POST", path: "/tenants/acme/workflows", key: testAdminKey, body: `{"workflow_name":["hello"]}`})
	if !strings.Contains(rec.Body.String(), `field \"workflow_name\": want a string, got array`) {
		t.Errorf("workflow_name of the wrong type: %d %s", rec.Code, rec.Body)
	}
}
