package server

import (
	"context"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/tenant"
)

// removingManager removes a tenant right after answering that it exists,
// once armed: what a DELETE /tenants/{id} served at that moment does.
type removingManager struct {
	tenant.Manager
	armed atomic.Bool
}

func (m *removingManager) Exists(ctx context.Context, id string) (bool, error) {
	ok, err := m.Manager.Exists(ctx, id)
	if ok && err == nil && m.armed.CompareAndSwap(true, false) {
		if err := m.Manager.Remove(ctx, id); err != nil {
			return false, err
		}
	}
	return ok, err
}

// TestTenantRoutesCreateNoTenant: a start, a read or a transition racing
// the tenant's removal answers 404 and does not bring the tenant back.
func TestTenantRoutesCreateNoTenant(t *testing.T) {
	t.Parallel()
	var rm *removingManager
	e := newEnv(t, "sqlite", envOpts{manager: func(t testing.TB, opts ...cloacina.Option) tenant.Manager {
		m, err := tenant.NewSQLiteManager(filepath.Join(t.TempDir(), "tenants"), opts...)
		if err != nil {
			t.Fatal(err)
		}
		rm = &removingManager{Manager: m}
		return rm
	}})
	for i, r := range []req{
		{method: "POST", path: "/tenants/gone/workflows", body: `{"workflow_name":"hello"}`},
		{method: "GET", path: "/tenants/gone/executions"},
		{method: "GET", path: "/tenants/gone/metrics"},
		{method: "POST", path: "/tenants/gone/executions/01a21930-e135-7652-9304-468b2962bc2a/cancel"},
	} {
		e.createTenant("gone")
		r.key = testAdminKey
		rm.armed.Store(true)
		e.fail(r, http.StatusNotFound, codeTenantNotFound)
		if ok, err := e.mgr.Exists(testCtx(t), "gone"); ok || err != nil {
			t.Fatalf("%d: %s %s brought the removed tenant back (exists %v, %v)", i, r.method, r.path, ok, err)
		}
	}
}
