package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina/client"
	"github.com/cloacina-go/cloacina/internal/pgtest"
	"github.com/cloacina-go/cloacina/server/apikey"
)

// testAdminKey is the admin key the end-to-end servers run with.
const testAdminKey = "e2e-admin-key-0123456789abcdef"

func TestServeSQLite(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 90*time.Second)
	dir := t.TempDir()
	p := startServe(t, dir, []string{"CLOACINA_ADMIN_KEY=" + testAdminKey}, "--data-dir", filepath.Join(dir, "data"))
	exercise(t, ctx, p)
	stopWithin(t, p)
	// The tenants are files of the data folder; the key store is not.
	for _, f := range []string{"alpha.db", "beta.db", "server.sqlite"} {
		if _, err := os.Stat(filepath.Join(dir, "data", f)); err != nil {
			t.Errorf("data folder: %v", err)
		}
	}
	checkMigrate(t, ctx, "--data-dir", filepath.Join(dir, "data"))
}

// checkMigrate runs migrate with args and checks that it reports both
// tenants and the key store.
func checkMigrate(t *testing.T, ctx context.Context, args ...string) {
	t.Helper()
	res := cli(t, ctx, "", "", append([]string{"migrate", "-o", "json"}, args...)...)
	var out struct{ Migrations []migration }
	if res.code != 0 || json.Unmarshal([]byte(res.stdout), &out) != nil {
		t.Fatalf("migrate: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	var got []string
	for _, m := range out.Migrations {
		got = append(got, m.Tenant)
	}
	if !slices.Equal(got, []string{"alpha", "beta", ""}) || !strings.HasPrefix(out.Migrations[2].Where, "API keys") {
		t.Errorf("migrate: %+v", out.Migrations)
	}
	// A count is there when known (as the admin role applies migrations
	// tenant by tenant), and absent, not a sentinel, when not.
	roles := slices.Contains(args, "--tenant-roles")
	for _, m := range out.Migrations {
		if known := m.Applied != nil; known != (roles && m.Tenant != "") || (known && *m.Applied < 0) {
			t.Errorf("migrate -o json: %s", res.stdout)
			break
		}
	}
}

func TestServePostgres(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.Shared(t).NewDatabase(t)
	ctx := testCtx(t, 90*time.Second)
	dir := t.TempDir()
	p := startServe(t, dir, []string{"CLOACINA_ADMIN_KEY=" + testAdminKey, "DATABASE_URL=" + dbURL})
	exercise(t, ctx, p)
	// Without per-tenant roles there is no password to rotate.
	admin := client.New(p.url, client.WithAPIKey(testAdminKey))
	if _, err := admin.RotatePassword(ctx, "alpha"); client.ErrorCode(err) != "not_supported" {
		t.Errorf("rotate-password without roles: %v, want 409 not_supported", err)
	}
	stopWithin(t, p)
	checkMigrate(t, ctx, "--database-url", dbURL)
}

func TestServePostgresTenantRoles(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.Shared(t).NewDatabase(t)
	ctx := testCtx(t, 90*time.Second)
	dir := t.TempDir()
	p := startServe(t, dir, []string{"CLOACINA_ADMIN_KEY=" + testAdminKey, "DATABASE_URL=" + dbURL, "CLOACINA_TENANT_ROLES=true"},
		"--data-dir", filepath.Join(dir, "data"))
	exercise(t, ctx, p)
	out := mustCLI(t, ctx, p.url, testAdminKey, "tenant", "rotate-password", "alpha", "-o", "json")
	var rot client.PasswordRotation
	if err := json.Unmarshal([]byte(out), &rot); err != nil || rot.Username != "user_alpha" {
		t.Errorf("rotate-password: %q (%v), want role user_alpha", out, err)
	}
	// The tenant still works after the rotation.
	w := client.New(p.url, client.WithAPIKey(testAdminKey))
	ex, err := w.StartExecution(ctx, "alpha", client.StartRequest{Workflow: "hello", Wait: 10 * time.Second})
	if err != nil || ex.Status != client.StatusCompleted {
		t.Errorf("hello after rotation: %+v, %v", ex, err)
	}
	fi, err := os.Stat(filepath.Join(dir, "data", "credentials.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("credentials file: %v, %v", fi, err)
	}
	stopWithin(t, p)
	// migrate applies (no) migrations as the admin role, tenant by tenant.
	checkMigrate(t, ctx, "--database-url", dbURL, "--tenant-roles", "--data-dir", filepath.Join(dir, "data"))
}

// stopWithin sends SIGTERM and checks that serve exits 0 in time.
func stopWithin(t *testing.T, p *serverProc) {
	t.Helper()
	took := p.stop(t, 12*time.Second)
	if p.err != nil {
		t.Errorf("serve exited with %v after SIGTERM; stderr:\n%s", p.err, p.stderr)
	}
	t.Logf("serve exited %v after SIGTERM", took.Round(time.Millisecond))
}

// tenantKeys are a tenant's write and read keys.
type tenantKeys struct{ write, read string }

// exercise runs the end-to-end checks against a running server: two
// tenants with their keys, workflows run over HTTP and with the CLI,
// isolation between the tenants, the documented errors, cancellation.
func exercise(t *testing.T, ctx context.Context, p *serverProc) {
	admin := client.New(p.url, client.WithAPIKey(testAdminKey))

	// Tenants: alpha through the CLI, beta through the client.
	out := mustCLI(t, ctx, p.url, testAdminKey, "tenant", "create", "alpha")
	if !strings.Contains(out, "alpha") {
		t.Errorf("tenant create: %q", out)
	}
	if _, err := admin.CreateTenant(ctx, "beta"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateTenant(ctx, "beta"); client.ErrorCode(err) != "tenant_exists" || !client.IsConflict(err) {
		t.Errorf("second create: %v, want 409 tenant_exists", err)
	}
	var listed struct{ Tenants []client.Tenant }
	decodeJSON(t, mustCLI(t, ctx, p.url, testAdminKey, "tenant", "list", "-o", "json"), &listed)
	if len(listed.Tenants) != 2 || listed.Tenants[0].TenantID != "alpha" || listed.Tenants[1].TenantID != "beta" {
		t.Errorf("tenant list: %+v", listed.Tenants)
	}

	keys := map[string]tenantKeys{}
	for _, id := range []string{"alpha", "beta"} {
		var wk client.Key
		decodeJSON(t, mustCLI(t, ctx, p.url, testAdminKey, "keys", "create", "--tenant", id, "--role", "write", "--name", "ci", "-o", "json"), &wk)
		rk, err := admin.CreateKey(ctx, id, "dashboard", client.RoleRead)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(wk.Secret, "ck_") || !strings.HasPrefix(rk.Secret, "ck_") {
			t.Fatalf("keys: %+v %+v", wk, rk)
		}
		keys[id] = tenantKeys{write: wk.Secret, read: rk.Secret}
	}
	if ks, err := admin.ListKeys(ctx, "alpha"); err != nil || len(ks) != 2 || ks[0].Secret != "" {
		t.Errorf("list keys: %+v, %v", ks, err)
	}

	// hello with the CLI, following it.
	res := cli(t, ctx, p.url, keys["alpha"].write, "run", "hello", "--tenant", "alpha", "--context", `{"name":"Ada"}`, "--watch")
	if res.code != 0 || !strings.Contains(res.stdout, "Completed") || !strings.Contains(res.stdout, "Hello, Ada!") ||
		!strings.Contains(res.stdout, "started          greet (attempt 1)") || !strings.Contains(res.stdout, "execution  completed") {
		t.Errorf("run --watch: exit %d\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
	// Shell completion asks the server for its workflows.
	if res := cli(t, ctx, p.url, keys["alpha"].read, "__complete", "run", ""); !strings.Contains(res.stdout, "hello\tGreets") {
		t.Errorf("completing run's workflow: %q", res.stdout)
	}
	// hello over HTTP, waiting for it.
	alphaW := client.New(p.url, client.WithAPIKey(keys["alpha"].write))
	alphaR := client.New(p.url, client.WithAPIKey(keys["alpha"].read))
	betaW := client.New(p.url, client.WithAPIKey(keys["beta"].write))
	exA, err := alphaW.StartExecution(ctx, "alpha", client.StartRequest{Workflow: "hello", Context: map[string]any{"name": "Grace"}, Wait: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var outCtx struct{ Greeting string }
	if err := exA.DecodeContext(&outCtx); err != nil || exA.Status != client.StatusCompleted || outCtx.Greeting != "Hello, Grace!" {
		t.Errorf("hello?wait: %+v, context %s (%v)", exA, exA.Context, err)
	}
	exB, err := betaW.StartExecution(ctx, "beta", client.StartRequest{Workflow: "hello", Wait: 10 * time.Second})
	if err != nil || exB.Status != client.StatusCompleted {
		t.Fatalf("beta hello: %+v, %v", exB, err)
	}

	// Reads: GET, list (the CLI's JSON), events.
	if got, err := alphaR.GetExecution(ctx, "alpha", exA.ExecutionID); err != nil || len(got.Tasks) != 1 || got.Tasks[0].Name != "greet" {
		t.Errorf("get: %+v, %v", got, err)
	}
	var page client.ExecutionPage
	decodeJSON(t, mustCLI(t, ctx, p.url, keys["alpha"].read, "executions", "list", "--tenant", "alpha", "-o", "json"), &page)
	ids := []string{}
	for _, e := range page.Executions {
		ids = append(ids, e.ExecutionID)
	}
	if len(ids) != 2 || !slices.Contains(ids, exA.ExecutionID) || slices.Contains(ids, exB.ExecutionID) {
		t.Errorf("alpha's list: %v (alpha %s, beta %s)", ids, exA.ExecutionID, exB.ExecutionID)
	}
	if evs, err := alphaR.Events(ctx, "alpha", exA.ExecutionID); err != nil || len(evs) < 3 {
		t.Errorf("events: %+v, %v", evs, err)
	}
	if out := mustCLI(t, ctx, p.url, keys["alpha"].read, "executions", "events", exA.ExecutionID, "--tenant", "alpha"); !strings.Contains(out, "greet") {
		t.Errorf("events table:\n%s", out)
	}

	// Isolation: alpha's keys see nothing of beta.
	for _, c := range []*client.Client{alphaW, alphaR} {
		if _, err := c.GetExecution(ctx, "beta", exB.ExecutionID); client.ErrorCode(err) != "tenant_not_found" {
			t.Errorf("alpha key on beta's execution: %v, want 404 tenant_not_found", err)
		}
		if _, err := c.GetExecution(ctx, "alpha", exB.ExecutionID); client.ErrorCode(err) != "execution_not_found" {
			t.Errorf("beta's execution under alpha: %v, want 404 execution_not_found", err)
		}
		if _, err := c.ListExecutions(ctx, "beta", client.ListOptions{}); !client.IsNotFound(err) {
			t.Errorf("alpha key listing beta: %v, want 404", err)
		}
		if _, err := c.TenantMetrics(ctx, "beta"); !client.IsNotFound(err) {
			t.Errorf("alpha key on beta's metrics: %v, want 404", err)
		}
	}
	if _, err := alphaW.StartExecution(ctx, "beta", client.StartRequest{Workflow: "hello"}); !client.IsNotFound(err) {
		t.Errorf("alpha key starting in beta: %v, want 404", err)
	}
	if _, err := alphaW.ListTenants(ctx); !errors.Is(err, client.ErrForbidden) {
		t.Errorf("tenant key listing tenants: %v, want 403", err)
	}

	// The documented errors.
	for _, tc := range []struct {
		name, method, path, key, body string
		status                        int
		code                          string
	}{
		{"invalid tenant id", "POST", "/tenants", testAdminKey, `{"tenant_id":"a;DROP"}`, 400, "invalid_tenant_id"},
		{"bad JSON", "POST", "/tenants/alpha/workflows", keys["alpha"].write, `{"workflow_name": "hello",`, 400, "invalid_json"},
		{"no key", "GET", "/tenants/alpha/executions", "", "", 401, "unauthorized"},
		{"unknown key", "GET", "/tenants/alpha/executions", "ck_0000000000000000_nope", "", 401, "unauthorized"},
		{"read key starts", "POST", "/tenants/alpha/workflows", keys["alpha"].read, `{"workflow_name":"hello"}`, 403, "forbidden"},
		{"unknown workflow", "POST", "/tenants/alpha/workflows", keys["alpha"].write, `{"workflow_name":"nope"}`, 404, "workflow_not_found"},
		{"pause finished", "POST", "/tenants/alpha/executions/" + exA.ExecutionID + "/pause", keys["alpha"].write, "", 409, "invalid_transition"},
		{"big body", "POST", "/tenants/alpha/workflows", keys["alpha"].write,
			`{"workflow_name":"hello","context":{"x":"` + strings.Repeat("x", 2<<20) + `"}}`, 413, "payload_too_large"},
	} {
		status, code, reqID := rawCall(t, ctx, p.url, tc.method, tc.path, tc.key, tc.body)
		if status != tc.status || code != tc.code || reqID == "" {
			t.Errorf("%s: %d %s (request id %q), want %d %s", tc.name, status, code, reqID, tc.status, tc.code)
		}
	}
	// The CLI shows a server error's code, message and request id, and
	// exits non-zero.
	res = cli(t, ctx, p.url, keys["alpha"].read, "executions", "get", exB.ExecutionID, "--tenant", "alpha")
	if res.code == 0 || !strings.Contains(res.stderr, "404 execution_not_found") || !strings.Contains(res.stderr, "request id") {
		t.Errorf("CLI error: exit %d, stderr %q", res.code, res.stderr)
	}
	res = cli(t, ctx, p.url, keys["alpha"].write, "run", "hello", "--tenant", "alpha", "--context", `[1,2]`)
	if res.code != 2 || !strings.Contains(res.stderr, "JSON object") {
		t.Errorf("CLI bad context: exit %d, stderr %q", res.code, res.stderr)
	}

	// Cancel a wait: with the CLI, then the execution ends Cancelled.
	exW, err := alphaW.StartExecution(ctx, "alpha", client.StartRequest{Workflow: "wait", Context: map[string]any{"seconds": 60}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, alphaR, "alpha", exW.ExecutionID, func(e *client.Execution) bool {
		return len(e.Tasks) == 1 && e.Tasks[0].Status == client.TaskRunning
	})
	mustCLI(t, ctx, p.url, keys["alpha"].write, "executions", "cancel", exW.ExecutionID, "--tenant", "alpha")
	final := waitFor(t, ctx, alphaR, "alpha", exW.ExecutionID, func(e *client.Execution) bool { return client.Terminal(e.Status) })
	if final.Status != client.StatusCancelled {
		t.Errorf("cancelled wait: %s", final.Status)
	}
	// Watching it now exits non-zero: it did not complete.
	res = cli(t, ctx, p.url, keys["alpha"].read, "executions", "watch", exW.ExecutionID, "--tenant", "alpha")
	if res.code != 1 || !strings.Contains(res.stderr, "cancelled") {
		t.Errorf("watch of a cancelled execution: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}

	// Workflows and metrics.
	if wfs, err := alphaR.Workflows(ctx); err != nil || len(wfs) != 4 {
		t.Errorf("workflows: %+v, %v", wfs, err)
	}
	if out := mustCLI(t, ctx, p.url, keys["alpha"].read, "workflows", "graph", "etl", "--format", "dot"); !strings.Contains(out, "digraph") {
		t.Errorf("graph --format dot:\n%s", out)
	}
	if m, err := alphaR.TenantMetrics(ctx, "alpha"); err != nil || m.TotalExecutions != 3 {
		t.Errorf("tenant metrics: %+v, %v", m, err)
	}
	prom, err := admin.PrometheusMetrics(ctx)
	if err != nil || !regexp.MustCompile(`cloacina_executions_finished_total\{[^}]*tenant="alpha"`).MatchString(prom) ||
		!strings.Contains(prom, "cloacina_http_requests_total") || !strings.Contains(prom, "go_goroutines") {
		t.Errorf("/metrics: %v\n%.2000s", err, prom)
	}
	if _, err := alphaW.PrometheusMetrics(ctx); !errors.Is(err, client.ErrForbidden) {
		t.Errorf("/metrics with a tenant key: %v, want 403", err)
	}
}

// waitFor polls an execution until ok holds.
func waitFor(t *testing.T, ctx context.Context, c *client.Client, tenantID, id string, ok func(*client.Execution) bool) *client.Execution {
	t.Helper()
	for {
		e, err := c.GetExecution(ctx, tenantID, id)
		if err != nil {
			t.Fatal(err)
		}
		if ok(e) {
			return e
		}
		select {
		case <-ctx.Done():
			t.Fatalf("execution %s: still %s", id, e.Status)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// rawCall sends a request and returns its status, error code and
// request id.
func rawCall(t *testing.T, ctx context.Context, base, method, path, key, body string) (int, string, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct {
		Error struct {
			Code      string `json:"code"`
			RequestID string `json:"request_id"`
		} `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&e)
	return resp.StatusCode, e.Error.Code, e.Error.RequestID
}

func decodeJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("decoding %q: %v", s, err)
	}
}

// TestGeneratedAdminKey: without an admin key, the first start generates
// one and writes it to <data-dir>/admin.key (mode 0600), printing only the
// file's path: neither stdout nor the log holds the key. The key works;
// later starts generate none; a start with CLOACINA_ADMIN_KEY says that
// the generated key stays valid until revoked, and it does.
func TestGeneratedAdminKey(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 60*time.Second)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, defaultDataDir, adminKeyFile)
	p := startServe(t, dir, nil)
	data, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatalf("admin key file: %v\nstdout:\n%s", err, p.stdout)
	}
	key := strings.TrimSuffix(string(data), "\n")
	id, ok := apikey.ParseID(key)
	if !ok {
		t.Fatalf("admin key file holds %d bytes that are not a key", len(data))
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("admin key file: %v, %v; want mode 0600", fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Dir(keyFile)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("data folder made by serve: %v, %v; want mode 0700", fi.Mode(), err)
	}
	secret := key[len("ck_")+len(id)+1:]
	for name, out := range map[string]string{"stdout": p.stdout.String(), "stderr": p.stderr.String()} {
		if strings.Contains(out, secret) {
			t.Errorf("serve's %s holds the generated key", name)
		}
	}
	if !strings.Contains(p.stdout.String(), "wrote it to "+keyFile) {
		t.Errorf("stdout does not say where the key is:\n%s", p.stdout)
	}
	if _, err := os.Stat(filepath.Join(dir, defaultDataDir, keyStoreFile)); err != nil {
		t.Errorf("key store: %v", err)
	}
	out := mustCLI(t, ctx, p.url, key, "tenant", "create", "gamma")
	if !strings.Contains(out, "gamma") {
		t.Errorf("tenant create with the generated key: %q", out)
	}
	stopWithin(t, p)

	p2 := startServe(t, dir, nil)
	if strings.Contains(p2.stdout.String(), "Generated the admin") || !strings.Contains(p2.stdout.String(), "admin key: in "+keyFile) {
		t.Errorf("second start:\n%s", p2.stdout)
	}
	if again, err := os.ReadFile(keyFile); err != nil || string(again) != string(data) {
		t.Errorf("second start changed the key file (%v)", err)
	}
	if ts, err := client.New(p2.url, client.WithAPIKey(key)).ListTenants(ctx); err != nil || len(ts) != 1 {
		t.Errorf("second start, first key: %+v, %v", ts, err)
	}
	stopWithin(t, p2)

	// With an admin key set, the generated one stays valid: serve says so,
	// and how to revoke it.
	p3 := startServe(t, dir, []string{"CLOACINA_ADMIN_KEY=" + testAdminKey})
	want := "stays valid beside --admin-key until revoked: cloacina keys revoke --admin " + id
	if !strings.Contains(p3.stdout.String(), want) || !p3.waitStderr("revoke=\"cloacina keys revoke --admin "+id+"\"") {
		t.Errorf("start with CLOACINA_ADMIN_KEY does not say %q:\nstdout:\n%s\nstderr:\n%s", want, p3.stdout, p3.stderr)
	}
	if ts, err := client.New(p3.url, client.WithAPIKey(key)).ListTenants(ctx); err != nil || len(ts) != 1 {
		t.Errorf("generated key beside CLOACINA_ADMIN_KEY: %+v, %v", ts, err)
	}
	stopWithin(t, p3)

	// An admin.key that is not the key store's is never overwritten.
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, adminKeyFile), []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, nil, "serve", "--addr", "127.0.0.1:0", "--data-dir", other)
	if code != 1 || !strings.Contains(stderr, "is not this store's") {
		t.Errorf("stale admin.key: exit %d, stderr %q", code, stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(other, adminKeyFile)); string(b) != "old\n" {
		t.Errorf("stale admin.key overwritten: %q", b)
	}
}
