package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/api"
	"github.com/cloacina-go/cloacina/tenant"
)

// TestInFlightBodyBudget: bodies over MaxInFlightBodyBytes wait, then are
// refused with 503 unavailable and Retry-After; once the budget frees, a
// request goes through.
func TestInFlightBodyBudget(t *testing.T) {
	const size = 1000
	e := newEnv(t, "sqlite", envOpts{config: func(c *Config) {
		c.MaxInFlightBodyBytes = 2 * size
		c.InFlightWait = 300 * time.Millisecond
		c.BodyReadTimeout = 20 * time.Second
	}})
	e.createTenant("acme")
	ts := newTCPServer(t, e)
	// Two stalled bodies of size bytes hold the whole budget.
	held := []*rawConn{dialRaw(t, ts.Listener.Addr().String()), dialRaw(t, ts.Listener.Addr().String())}
	for _, c := range held {
		c.head("POST", "/tenants/acme/keys", testAdminKey, size, `{"name":"`)
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.srv.budget.inUse() != 2*size {
		if time.Now().After(deadline) {
			t.Fatalf("the budget holds %d bytes, want %d", e.srv.budget.inUse(), 2*size)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The third waits InFlightWait, then is refused.
	start := time.Now()
	rec := e.do(req{method: "POST", path: "/tenants/acme/keys", key: testAdminKey, body: `{"name":"x","role":"read"}`})
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), codeUnavailable) {
		t.Fatalf("a body over the budget: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	if took := time.Since(start); took < 250*time.Millisecond {
		t.Fatalf("refused after %v, without waiting", took)
	}
	// Requests without a body do not count.
	e.call(req{method: "GET", path: "/tenants", key: testAdminKey}, http.StatusOK, nil)
	// One stalled body finishes: room for the next.
	rest := `h","role":"read"}`
	rest += strings.Repeat(" ", size-len(`{"name":"`)-len(rest))
	if err := held[0].write(rest); err != nil {
		t.Fatal(err)
	}
	if resp, body := held[0].response(5 * time.Second); resp.StatusCode != http.StatusCreated {
		t.Fatalf("the stalled request, finished: %d %s", resp.StatusCode, body)
	}
	e.call(req{method: "POST", path: "/tenants/acme/keys", key: testAdminKey, body: `{"name":"y","role":"read"}`}, http.StatusCreated, nil)
}

// TestBodyBudgetQueue: the budget itself: first come, first served;
// a waiter whose context ends leaves the queue.
func TestBodyBudgetQueue(t *testing.T) {
	b := newBodyBudget(10)
	r1, err := b.acquire(context.Background(), 6)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := b.acquire(ctx, 6); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("over the budget: %v", err)
	}
	got := make(chan func(), 1)
	go func() {
		r, _ := b.acquire(context.Background(), 100) // clamped to the size: fits alone
		got <- r
	}()
	time.Sleep(20 * time.Millisecond)
	r1()
	r1() // twice is once
	select {
	case r := <-got:
		if b.inUse() != 10 {
			t.Fatalf("in use %d, want 10", b.inUse())
		}
		r()
	case <-time.After(2 * time.Second):
		t.Fatal("the waiter was not served once the budget freed")
	}
	if b.inUse() != 0 {
		t.Fatalf("in use %d after all releases", b.inUse())
	}
}

// TestStrictJSON: field names match exactly, and no field may repeat, at
// any depth.
func TestStrictJSON(t *testing.T) {
	e := newEnv(t, "sqlite", envOpts{})
	e.createTenant("acme")
	wk := e.createKey("acme", "write")
	for _, tc := range []struct {
		name, path, key, body, want string
	}{
		{"case", "/tenants/acme/workflows", wk, `{"Workflow_Name":"hello"}`, `unknown field \"Workflow_Name\"`},
		{"repeated", "/tenants/acme/workflows", wk, `{"workflow_name":"nope","workflow_name":"hello"}`, `field \"workflow_name\" is given twice`},
		{"repeated, escaped", "/tenants/acme/workflows", wk, `{"workflow_name":"hello","workflow_nam\u0065":"hello"}`, `field \"workflow_name\" is given twice`},
		{"repeated in the context", "/tenants/acme/workflows", wk, `{"workflow_name":"hello","context":{"a":{"b":1,"b":2}}}`, `field \"context.a.b\" is given twice`},
		{"repeated in an array", "/tenants/acme/workflows", wk, `{"workflow_name":"hello","context":{"l":[{"x":1},{"x":1,"x":2}]}}`, `field \"context.l[].x\" is given twice`},
		{"tenant id case", "/tenants", testAdminKey, `{"TENANT_ID":"x"}`, `unknown field \"TENANT_ID\"`},
		{"key name repeated", "/tenants/acme/keys", testAdminKey, `{"name":"a","role":"read","name":"b"}`, `field \"name\" is given twice`},
		{"empty object", "/tenants/acme/executions/0193a1b2-0000-7000-8000-000000000000/cancel", wk, `{"x":1}`, `unknown field \"x\"`},
	} {
		rec := e.do(req{method: "POST", path: tc.path, key: tc.key, body: tc.body})
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), codeInvalidJSON) || !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("%s: %d %s, want 400 invalid_json with %s", tc.name, rec.Code, rec.Body, tc.want)
		}
	}
	var page api.ExecutionPage
	e.call(req{method: "GET", path: "/tenants/acme/executions", key: wk}, http.StatusOK, &page)
	if len(page.Executions) != 0 {
		t.Fatalf("refused bodies started %d executions", len(page.Executions))
	}
	// Same names in different objects are fine, and so is a context with
	// keys that differ only in case.
	var ex api.Execution
	e.call(req{method: "POST", path: "/tenants/acme/workflows?wait=20s", key: wk,
		body: `{"workflow_name":"hello","context":{"name":"Ada","a":{"x":1},"b":{"x":1},"N":1,"n":2,"s":"{\"q\":1,\"q\":2}"}}`}, http.StatusOK, &ex)
	var c map[string]any
	if err := json.Unmarshal(ex.Context, &c); err != nil || c["N"] != 1.0 || c["n"] != 2.0 {
		t.Fatalf("context %s: %v", ex.Context, err)
	}
}

// TestAdminKeys: admin keys are created (shown once), listed and revoked;
// a revoked one stops working; a request cannot revoke its own key.
func TestAdminKeys(t *testing.T) {
	e := newEnv(t, "sqlite", envOpts{})
	var k1, k2 api.Key
	e.call(req{method: "POST", path: "/admin/keys", key: testAdminKey, body: `{"name":"ops"}`}, http.StatusCreated, &k1)
	if k1.Role != "admin" || k1.TenantID != "" || !strings.HasPrefix(k1.Secret, "ck_"+k1.KeyID+"_") {
		t.Fatalf("created %+v", k1)
	}
	e.call(req{method: "POST", path: "/admin/keys", key: k1.Secret, body: `{"name":"rotated"}`}, http.StatusCreated, &k2)
	var list api.Keys
	rec := e.call(req{method: "GET", path: "/admin/keys", key: k2.Secret}, http.StatusOK, &list)
	if len(list.Keys) != 2 || list.Keys[0].KeyID != k1.KeyID || strings.Contains(rec.Body.String(), k1.Secret) {
		t.Fatalf("GET /admin/keys = %s", rec.Body)
	}
	e.fail(req{method: "DELETE", path: "/admin/keys/" + k1.KeyID, key: k1.Secret}, http.StatusConflict, codeKeyInUse)
	e.call(req{method: "DELETE", path: "/admin/keys/" + k1.KeyID, key: k2.Secret}, http.StatusNoContent, nil)
	e.fail(req{method: "GET", path: "/tenants", key: k1.Secret}, http.StatusUnauthorized, codeUnauthorized)
	e.fail(req{method: "DELETE", path: "/admin/keys/" + k1.KeyID, key: k2.Secret}, http.StatusNotFound, codeKeyNotFound)
	e.fail(req{method: "POST", path: "/admin/keys", key: testAdminKey, body: `{"name":"evil\u202egnp.exe"}`}, http.StatusBadRequest, codeInvalidArgument)
	// A tenant key may not use them, nor delete an admin key through a
	// tenant's route.
	e.createTenant("acme")
	wk := e.createKey("acme", "write")
	e.fail(req{method: "GET", path: "/admin/keys", key: wk}, http.StatusForbidden, codeForbidden)
	e.fail(req{method: "DELETE", path: "/tenants/acme/keys/" + k2.KeyID, key: testAdminKey}, http.StatusNotFound, codeKeyNotFound)
	// Without a key store: 409 not_supported.
	n := newEnv(t, "sqlite", envOpts{noKeys: true, disableAuth: true})
	n.fail(req{method: "GET", path: "/admin/keys"}, http.StatusConflict, codeNotSupported)
}

// TestBodiesOfRoutesWithoutOne: a GET's or DELETE's body is never read
// nor charged to the in-flight budget (any key could otherwise fill the
// budget with stalled GET bodies), and its connection is closed after
// the answer; the wait for budget room does not count against the body
// read deadline.
func TestBodiesOfRoutesWithoutOne(t *testing.T) {
	const size = 1000
	e := newEnv(t, "sqlite", envOpts{config: func(c *Config) {
		c.MaxInFlightBodyBytes = 2 * size
		c.InFlightWait = 5 * time.Second
		c.BodyReadTimeout = time.Second
	}})
	e.createTenant("acme")
	ts := newTCPServer(t, e)
	addr := ts.Listener.Addr().String()
	// Stalled bodies on routes that take none: answered at once, nothing
	// held.
	for range 4 {
		c := dialRaw(t, addr)
		c.head("GET", "/workflows", testAdminKey, size, "{")
		if resp, body := c.response(3 * time.Second); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /workflows with a stalled body: %d %s", resp.StatusCode, body)
		}
		if !c.closedWithin(2 * time.Second) {
			t.Fatal("the connection of a GET with an unread body stays open")
		}
	}
	if n := e.srv.budget.inUse(); n != 0 {
		t.Fatalf("the budget holds %d bytes after GETs with bodies, want 0", n)
	}
	// A POST that waits for room longer than BodyReadTimeout, its body
	// sent whole, is served once room comes: the deadline starts then.
	held := dialRaw(t, addr)
	held.head("POST", "/tenants/acme/keys", testAdminKey, 2*size, `{"name":"`)
	deadline := time.Now().Add(5 * time.Second)
	for e.srv.budget.inUse() != 2*size {
		if time.Now().After(deadline) {
			t.Fatalf("the budget holds %d bytes, want %d", e.srv.budget.inUse(), 2*size)
		}
		time.Sleep(10 * time.Millisecond)
	}
	waiting := dialRaw(t, addr)
	body := `{"name":"w","role":"read"}`
	waiting.head("POST", "/tenants/acme/keys", testAdminKey, len(body), body)
	time.Sleep(1500 * time.Millisecond) // past BodyReadTimeout, within InFlightWait
	held.conn.Close()                   // gives its room back
	if resp, b := waiting.response(5 * time.Second); resp.StatusCode != http.StatusCreated {
		t.Fatalf("a whole body that waited for room: %d %s; want 201", resp.StatusCode, b)
	}
}

// TestAdminKeysRevokingEachOther: two admin keys revoking each other at
// the same moment never leave no stored admin key.
func TestAdminKeysRevokingEachOther(t *testing.T) {
	e := newEnv(t, "sqlite", envOpts{})
	for round := range 10 {
		var ks [2]api.Key
		for i := range ks {
			e.call(req{method: "POST", path: "/admin/keys", key: testAdminKey, body: fmt.Sprintf(`{"name":"k%d-%d"}`, round, i)}, http.StatusCreated, &ks[i])
		}
		var wg sync.WaitGroup
		codes := [2]int{}
		for i := range ks {
			wg.Go(func() {
				codes[i] = e.do(req{method: "DELETE", path: "/admin/keys/" + ks[1-i].KeyID, key: ks[i].Secret}).Code
			})
		}
		wg.Wait()
		if codes[0] == http.StatusNoContent && codes[1] == http.StatusNoContent {
			t.Fatalf("round %d: both admin keys revoked each other", round)
		}
		// Clean up whichever is left, with the configured key.
		for _, k := range ks {
			e.do(req{method: "DELETE", path: "/admin/keys/" + k.KeyID, key: testAdminKey})
		}
	}
}

// slowRemove is a real manager whose Remove waits for a signal, so that
// a test can send requests while a tenant's removal runs.
type slowRemove struct {
	tenant.Manager
	started chan struct{}
	proceed chan struct{}
}

func (m *slowRemove) Remove(ctx context.Context, id string) error {
	close(m.started)
	<-m.proceed
	return m.Manager.Remove(ctx, id)
}

// TestNoWriteForATenantBeingDeleted: a request that arrives while its
// tenant's removal runs (an admin creating a key for it) writes nothing
// once the removal is done: it answers 404, and no orphan key is left.
func TestNoWriteForATenantBeingDeleted(t *testing.T) {
	sr := &slowRemove{started: make(chan struct{}), proceed: make(chan struct{})}
	e := newEnv(t, "sqlite", envOpts{manager: func(t testing.TB, opts ...cloacina.Option) tenant.Manager {
		m, err := tenant.NewSQLiteManager(t.TempDir(), opts...)
		if err != nil {
			t.Fatal(err)
		}
		sr.Manager = m
		return sr
	}})
	e.createTenant("acme")
	deleted := make(chan int, 1)
	go func() { deleted <- e.do(req{method: "DELETE", path: "/tenants/acme", key: testAdminKey}).Code }()
	<-sr.started
	created := make(chan int, 1)
	go func() {
		created <- e.do(req{method: "POST", path: "/tenants/acme/keys", key: testAdminKey, body: `{"name":"late","role":"read"}`}).Code
	}()
	time.Sleep(200 * time.Millisecond) // the POST is authorised and waits for the deletion
	close(sr.proceed)
	if code := <-deleted; code != http.StatusNoContent {
		t.Fatalf("DELETE = %d, want 204", code)
	}
	if code := <-created; code != http.StatusNotFound {
		t.Fatalf("POST /tenants/acme/keys during the deletion = %d, want 404", code)
	}
	if ks, err := e.keys.List(testCtx(t), "acme"); err != nil || len(ks) != 0 {
		t.Fatalf("keys of the deleted tenant: %v, %v; want none", ks, err)
	}
}
