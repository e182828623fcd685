package server

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina/api"
)

// waitKeyUsed waits until the key has been verified once (its last use is
// recorded): the stalled request using it has been authorised.
func (e *env) waitKeyUsed(tenantID, keyID string) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ks, err := e.keys.List(testCtx(e.t), tenantID)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, k := range ks {
			if k.ID == keyID && !k.LastUsedAt.IsZero() {
				return
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("key %s was never used", keyID)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// keyID returns the id of a whole key.
func keyID(t testing.TB, secret string) string {
	t.Helper()
	parts := strings.Split(secret, "_")
	if len(parts) < 3 {
		t.Fatalf("not a key: %q", secret)
	}
	return parts[1]
}

// stall sends the headers and the first half of a request's body, and
// returns the connection and the second half.
func stall(t *testing.T, addr, method, path, key, body string) (*rawConn, string) {
	t.Helper()
	c := dialRaw(t, addr)
	half := len(body) / 2
	c.head(method, path, key, len(body), body[:half])
	return c, body[half:]
}

func (e *env) executions(tenantID string) int {
	e.t.Helper()
	var page api.ExecutionPage
	e.call(req{method: "GET", path: "/tenants/" + tenantID + "/executions", key: testAdminKey}, http.StatusOK, &page)
	return len(page.Executions)
}

// TestRevokedMidBody: a request authorised with a key that is revoked
// while its body stalls writes nothing.
func TestRevokedMidBody(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			e := newEnv(t, backend, envOpts{})
			e.createTenant("acme")
			wk := e.createKey("acme", "write")
			ts := newTCPServer(t, e)
			c, rest := stall(t, ts.Listener.Addr().String(), "POST", "/tenants/acme/workflows", wk, `{"workflow_name":"hello","context":{"name":"Ada"}}`)
			e.waitKeyUsed("acme", keyID(t, wk))
			e.call(req{method: "DELETE", path: "/tenants/acme/keys/" + keyID(t, wk), key: testAdminKey}, http.StatusNoContent, nil)
			if err := c.write(rest); err != nil {
				t.Fatal(err)
			}
			resp, body := c.response(10 * time.Second)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("a request whose key was revoked mid-body: %d %s, want 401", resp.StatusCode, body)
			}
			if n := e.executions("acme"); n != 0 {
				t.Fatalf("it created %d executions", n)
			}
		})
	}
}

// TestDeletedTenantMidBody: a request authorised for a tenant that is
// deleted and re-created (same id) while its body stalls writes nothing,
// in neither incarnation; with a tenant key (revoked by the deletion) and
// with an admin key (authorised for the old incarnation).
func TestDeletedTenantMidBody(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			e := newEnv(t, backend, envOpts{})
			e.createTenant("acme")
			wk := e.createKey("acme", "write")
			var ak api.Key
			e.call(req{method: "POST", path: "/admin/keys", key: testAdminKey, body: `{"name":"ops"}`}, http.StatusCreated, &ak)
			ts := newTCPServer(t, e)
			addr := ts.Listener.Addr().String()
			tc, trest := stall(t, addr, "POST", "/tenants/acme/workflows", wk, `{"workflow_name":"hello","context":{"name":"Ada"}}`)
			ac, arest := stall(t, addr, "POST", "/tenants/acme/keys", ak.Secret, `{"name":"late","role":"write"}`)
			e.waitKeyUsed("acme", keyID(t, wk))
			e.waitKeyUsed("", ak.KeyID)

			start := time.Now()
			e.call(req{method: "DELETE", path: "/tenants/acme", key: testAdminKey}, http.StatusNoContent, nil)
			if took := time.Since(start); took > 10*time.Second {
				t.Fatalf("the DELETE took %v behind stalled requests", took)
			}
			e.createTenant("acme")

			for _, x := range []struct {
				c    *rawConn
				rest string
			}{{tc, trest}, {ac, arest}} {
				if err := x.c.write(x.rest); err != nil {
					t.Fatal(err)
				}
				resp, body := x.c.response(10 * time.Second)
				if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusNotFound {
					t.Errorf("a request authorised before its tenant was deleted: %d %s, want 401 or 404", resp.StatusCode, body)
				}
			}
			if n := e.executions("acme"); n != 0 {
				t.Errorf("the new tenant has %d executions", n)
			}
			var keys api.Keys
			e.call(req{method: "GET", path: "/tenants/acme/keys", key: testAdminKey}, http.StatusOK, &keys)
			if len(keys.Keys) != 0 {
				t.Errorf("the new tenant has keys %+v", keys.Keys)
			}
		})
	}
}

// TestDeleteTenantBounded: DELETE tells the tenant's work to stop and
// waits at most TenantDeleteGrace for a running task (one that would run
// for ever) before it deletes the data; and it goes on when the client
// leaves.
func TestDeleteTenantBounded(t *testing.T) {
	e := newEnv(t, "sqlite", envOpts{config: func(c *Config) { c.TenantDeleteGrace = time.Second }})
	e.createTenant("acme")
	id := e.start("acme", testAdminKey, "block")
	e.waitTaskRunning("acme", id)
	start := time.Now()
	e.call(req{method: "DELETE", path: "/tenants/acme", key: testAdminKey}, http.StatusNoContent, nil)
	if took := time.Since(start); took > 6*time.Second {
		t.Fatalf("DELETE with a running task took %v, the grace is 1s", took)
	}
	e.fail(req{method: "GET", path: "/tenants/acme", key: testAdminKey}, http.StatusNotFound, codeTenantNotFound)

	// A client that leaves at once: the deletion goes on.
	e.createTenant("beta")
	id = e.start("beta", testAdminKey, "block")
	e.waitTaskRunning("beta", id)
	ts := newTCPServer(t, e)
	hr, err := http.NewRequest("DELETE", ts.URL+"/tenants/beta", nil)
	if err != nil {
		t.Fatal(err)
	}
	hr.Header.Set("Authorization", "Bearer "+testAdminKey)
	hc := &http.Client{Timeout: 100 * time.Millisecond}
	if resp, err := hc.Do(hr); err == nil {
		resp.Body.Close() // answered within 100ms: fine too
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		rec := e.do(req{method: "GET", path: "/tenants/beta", key: testAdminKey})
		if rec.Code == http.StatusNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the tenant whose DELETE client left is still there: %d %s", rec.Code, rec.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
