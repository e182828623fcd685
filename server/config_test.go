package server

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/api"
	"github.com/cloacina-go/cloacina/internal/pgtest"
	"github.com/cloacina-go/cloacina/tenant"
)

func TestNewChecksConfig(t *testing.T) {
	e := newEnv(t, "sqlite", envOpts{})
	wfs := testWorkflows(t, nil)
	for name, cfg := range map[string]Config{
		"no manager":         {Keys: e.keys},
		"no keys":            {Manager: e.mgr},
		"short admin key":    {Manager: e.mgr, Keys: e.keys, AdminKey: "short"},
		"negative body":      {Manager: e.mgr, Keys: e.keys, MaxBodyBytes: -1},
		"negative wait":      {Manager: e.mgr, Keys: e.keys, MaxWait: -time.Second},
		"duplicate workflow": {Manager: e.mgr, Keys: e.keys, Workflows: []*cloacina.Workflow{wfs[0], wfs[0]}},
		"metrics twice":      {Manager: e.mgr, Keys: e.keys, Registerer: e.reg},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%s) succeeded", name)
		}
	}
	if _, err := New(Config{Manager: e.mgr, DisableAuth: true}); err != nil {
		t.Fatalf("New without keys but with DisableAuth: %v", err)
	}
}

func TestDisableAuth(t *testing.T) {
	e := newEnv(t, "sqlite", envOpts{disableAuth: true, noKeys: true})
	if !strings.Contains(e.logs.String(), "authentication is disabled") {
		t.Fatal("New logged no warning")
	}
	e.createTenant("acme")
	var tenants api.Tenants
	e.call(req{method: "GET", path: "/tenants"}, http.StatusOK, &tenants)
	if len(tenants.Tenants) != 1 {
		t.Fatalf("tenants %+v", tenants)
	}
	var ex api.Execution
	e.call(req{method: "POST", path: "/tenants/acme/workflows?wait=20s", body: `{"workflow_name":"hello"}`}, http.StatusOK, &ex)
	if ex.Status != "Completed" {
		t.Fatalf("execution %+v", ex)
	}
	var ready api.Health
	e.call(req{method: "GET", path: "/readyz"}, http.StatusOK, &ready)
	if ready.Status != "ready" || !strings.Contains(ready.Warning, "authentication is disabled") {
		t.Fatalf("readyz = %+v, want a warning", ready)
	}
	e.fail(req{method: "POST", path: "/tenants/acme/keys", body: `{"name":"x","role":"read"}`}, http.StatusConflict, codeNotSupported)
	e.fail(req{method: "GET", path: "/tenants/acme/keys"}, http.StatusConflict, codeNotSupported)
	e.fail(req{method: "GET", path: "/tenants/nobody/metrics"}, http.StatusNotFound, codeTenantNotFound)
}

func TestSmallLimits(t *testing.T) {
	e := newEnv(t, "sqlite", envOpts{})
	srv, err := New(Config{Manager: e.mgr, Keys: e.keys, AdminKey: testAdminKey, MaxBodyBytes: 64, MaxWait: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	e.createTenant("acme")
	e.fail(req{method: "POST", path: "/tenants/acme/workflows", key: testAdminKey,
		body: `{"workflow_name":"hello","context":{"name":"` + strings.Repeat("a", 64) + `"}}`}, http.StatusRequestEntityTooLarge, codePayloadTooLarge)
	e.fail(req{method: "POST", path: "/tenants/acme/workflows?wait=2s", key: testAdminKey, body: `{"workflow_name":"hello"}`}, http.StatusBadRequest, codeInvalidArgument)
	// No Gatherer: /metrics is not found (for the admin).
	e.fail(req{method: "GET", path: "/metrics", key: testAdminKey}, http.StatusNotFound, codeNotFound)
	// No Workflows: none listed, and none described.
	var wfs api.Workflows
	e.call(req{method: "GET", path: "/workflows", key: testAdminKey}, http.StatusOK, &wfs)
	if wfs.Workflows == nil || len(wfs.Workflows) != 0 {
		t.Fatalf("workflows %+v", wfs)
	}
}

// TestStaleKeys: keys left for a tenant id that has no tenant open
// nothing, and are revoked when a tenant of that id is created.
func TestStaleKeys(t *testing.T) {
	e := newEnv(t, "sqlite", envOpts{})
	stale, _, err := e.keys.Create(testCtx(t), "ghost", "left over", "write")
	if err != nil {
		t.Fatal(err)
	}
	e.fail(req{method: "GET", path: "/tenants/ghost/executions", key: stale}, http.StatusNotFound, codeTenantNotFound)
	e.createTenant("ghost")
	e.fail(req{method: "GET", path: "/tenants/ghost/executions", key: stale}, http.StatusUnauthorized, codeUnauthorized)
}

// TestSecureManager runs the tenant routes over per-tenant database roles:
// creation through CreateTenant, password rotation, removal of the role;
// no password ever in an answer or the log.
func TestSecureManager(t *testing.T) {
	ctx := testCtx(t)
	u := pgtest.Shared(t).NewDatabase(t)
	admin, err := tenant.NewAdmin(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	creds := tenant.NewMemoryCredentialStore()
	id := "srv" + strings.ToLower(rand.Text()[:10]) // roles are cluster-wide
	t.Cleanup(func() {
		// A failed test may leave the role behind.
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := admin.RemoveTenant(cctx, "tenant_"+id, "user_"+id); err != nil && !errors.Is(err, tenant.ErrTenantNotFound) {
			t.Logf("removing the tenant's role: %v", err)
		}
	})
	e := newEnv(t, "", envOpts{manager: func(t testing.TB, opts ...cloacina.Option) tenant.Manager {
		m, err := tenant.NewSecureManager(ctx, tenant.SecureConfig{Mode: tenant.PoolPerTenant, Admin: admin, Credentials: creds}, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}})
	rec := e.call(req{method: "POST", path: "/tenants", key: testAdminKey, body: `{"tenant_id":"` + id + `"}`}, http.StatusCreated, nil)
	c, err := creds.Get(ctx, id)
	if err != nil || c.Password == "" {
		t.Fatalf("credentials after POST /tenants: %v, %v", c, err)
	}
	if strings.Contains(rec.Body.String(), c.Password) {
		t.Fatal("the answer holds the tenant's password")
	}
	e.fail(req{method: "POST", path: "/tenants", key: testAdminKey, body: `{"tenant_id":"` + id + `"}`}, http.StatusConflict, codeTenantExists)
	e.fail(req{method: "POST", path: "/tenants", key: testAdminKey, body: `{"tenant_id":"` + strings.Repeat("a", 60) + `"}`}, http.StatusBadRequest, codeInvalidTenantID)
	e.fail(req{method: "GET", path: "/tenants/nobody/executions", key: testAdminKey}, http.StatusNotFound, codeTenantNotFound)
	k := e.createKey(id, "write")
	var ex api.Execution
	e.call(req{method: "POST", path: "/tenants/" + id + "/workflows?wait=30s", key: k, body: `{"workflow_name":"hello"}`}, http.StatusOK, &ex)
	if ex.Status != "Completed" {
		t.Fatalf("execution %+v", ex)
	}
	var rot api.PasswordRotation
	rec = e.call(req{method: "POST", path: "/tenants/" + id + "/rotate-password", key: testAdminKey}, http.StatusOK, &rot)
	nc, err := creds.Get(ctx, id)
	if err != nil || nc.Password == c.Password {
		t.Fatalf("the password did not change: %v", err)
	}
	if rot.TenantID != id || rot.Username != "user_"+id || rot.RotatedAt.IsZero() || strings.Contains(rec.Body.String(), nc.Password) {
		t.Fatalf("rotate-password = %s", rec.Body)
	}
	e.call(req{method: "POST", path: "/tenants/" + id + "/workflows?wait=30s", key: k, body: `{"workflow_name":"hello"}`}, http.StatusOK, &ex)
	e.fail(req{method: "POST", path: "/tenants/" + id + "/rotate-password", key: k}, http.StatusForbidden, codeForbidden)
	e.call(req{method: "DELETE", path: "/tenants/" + id, key: testAdminKey}, http.StatusNoContent, nil)
	if ok, err := e.mgr.Exists(ctx, id); ok || err != nil {
		t.Fatalf("the tenant exists after DELETE: %v, %v", ok, err)
	}
	e.fail(req{method: "POST", path: "/tenants/" + id + "/rotate-password", key: testAdminKey}, http.StatusNotFound, codeTenantNotFound)
	for _, pw := range []string{c.Password, nc.Password} {
		if strings.Contains(e.logs.String(), pw) {
			t.Fatal("the log holds a tenant's password")
		}
	}
}

// TestMetricsRegistered: the HTTP metrics count by route pattern, and
// unmatched requests under one label.
func TestMetricsRegistered(t *testing.T) {
	e := newEnv(t, "sqlite", envOpts{})
	e.do(req{method: "GET", path: "/no/such/route"})
	e.do(req{method: "GET", path: "/tenants/acme/executions/x", key: testAdminKey})
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "route" {
					found[mf.GetName()+" "+l.GetValue()] = true
				}
			}
		}
	}
	for _, want := range []string{
		"cloacina_http_requests_total unmatched",
		"cloacina_http_requests_total GET /tenants/{tenant_id}/executions/{execution_id}",
		"cloacina_http_request_duration_seconds GET /tenants/{tenant_id}/executions/{execution_id}",
	} {
		if !found[want] {
			t.Errorf("no series %s in %v", want, found)
		}
	}
	var _ prometheus.Gatherer = e.reg
}
