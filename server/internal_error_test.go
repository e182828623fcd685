package server

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/tenant"
)

// faultyManager fails in chosen ways.
type faultyManager struct {
	tenant.Manager
	tenants func() ([]string, error)
	metrics func() (*cloacina.Metrics, error)
}

func (m *faultyManager) Tenants(ctx context.Context) ([]string, error) {
	if m.tenants != nil {
		return m.tenants()
	}
	return m.Manager.Tenants(ctx)
}

func (m *faultyManager) Metrics(ctx context.Context, id string) (*cloacina.Metrics, error) {
	if m.metrics != nil {
		return m.metrics()
	}
	return m.Manager.Metrics(ctx, id)
}

// TestInternalErrors: a failure of the server's side answers 500 internal
// with a generic message; its details go to the log with the request id. A
// panic answers the same. A closed runner answers 503.
func TestInternalErrors(t *testing.T) {
	e := newEnv(t, "sqlite", envOpts{})
	e.createTenant("acme")
	fm := &faultyManager{Manager: e.mgr}
	srv, err := New(Config{Manager: fm, Keys: e.keys, AdminKey: testAdminKey, Logger: e.log})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	fm.tenants = func() ([]string, error) {
		return nil, errors.New("connection to db-7.internal refused (detail-xyz)")
	}
	ae := e.fail(req{method: "GET", path: "/tenants", key: testAdminKey, header: map[string]string{"X-Request-Id": "req-500"}}, http.StatusInternalServerError, codeInternal)
	if strings.Contains(ae.Error.Message, "detail-xyz") {
		t.Fatalf("the answer shows the details: %q", ae.Error.Message)
	}
	if !strings.Contains(e.logs.String(), "detail-xyz") || !strings.Contains(e.logs.String(), "request_id=req-500") {
		t.Fatalf("the log lacks the details or the request id:\n%s", e.logs)
	}
	e.fail(req{method: "GET", path: "/readyz"}, http.StatusServiceUnavailable, codeUnavailable)

	fm.tenants = func() ([]string, error) { panic("boom") }
	e.fail(req{method: "GET", path: "/tenants", key: testAdminKey}, http.StatusInternalServerError, codeInternal)
	if !strings.Contains(e.logs.String(), "boom") {
		t.Fatal("the panic is not logged")
	}

	fm.metrics = func() (*cloacina.Metrics, error) { return nil, cloacina.ErrRunnerClosed }
	rec := e.do(req{method: "GET", path: "/tenants/acme/metrics", key: testAdminKey})
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("a closed runner: %d %s", rec.Code, rec.Body)
	}
}
