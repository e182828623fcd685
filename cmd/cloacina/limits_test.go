package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina/client"
)

// TestServeLimits: serve's --max-conns-per-client bounds the connections
// of one client address (the one over the bound is closed unanswered,
// another address is served, and a closed connection frees its place),
// and --body-read-timeout answers a body that does not arrive with 408.
func TestServeLimits(t *testing.T) {
	t.Parallel()
	p := startServe(t, t.TempDir(), []string{"CLOACINA_ADMIN_KEY=" + testAdminKey, "CLOACINA_BODY_READ_TIMEOUT=300ms"},
		"--max-conns-per-client", "2")
	if !p.waitStderr("idle_timeout=2m0s max_conns_per_client=2 body_read_timeout=300ms") {
		t.Errorf("serving log line:\n%s", p.stderr)
	}
	host := strings.TrimPrefix(p.url, "http://")

	// The client: 127.0.0.2, another loopback address than the one of the
	// test's other requests (and of http.DefaultClient's idle connections).
	client2 := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
	dial := func() (net.Conn, error) { return client2.Dial("tcp", host) }
	probe, err := dial()
	if err != nil {
		t.Skipf("cannot connect from 127.0.0.2 (%v): this system's loopback is 127.0.0.1 alone", err)
	}
	if !healthz(probe) {
		t.Fatal("the first connection from 127.0.0.2 was not answered")
	}
	second, err := dial()
	if err != nil || !healthz(second) {
		t.Fatalf("the second connection was not answered (%v)", err)
	}
	defer second.Close()
	// The third is closed by the server without an answer (or refused at
	// once, with a reset, seen by the dial).
	if third, err := dial(); err == nil {
		if healthz(third) {
			t.Error("a third connection from one address was answered with --max-conns-per-client 2")
		}
		third.Close()
	}
	// Another address is not bounded by this one's connections.
	if resp, err := http.Get(p.url + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("127.0.0.1 while 127.0.0.2 is at its bound: %v", err)
	} else {
		resp.Body.Close()
	}
	// A closed connection gives its place back.
	probe.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := dial()
		if err == nil {
			ok := healthz(c)
			c.Close()
			if ok {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no connection from 127.0.0.2 answered 5s after one of the two was closed")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// --body-read-timeout: a body announced but never sent.
	c, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	_, err = io.WriteString(c, "POST /tenants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+testAdminKey+
		"\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{\"tenant_id\":")
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to a body that never came: %v", err)
	}
	resp.Body.Close()
	if took := time.Since(start); resp.StatusCode != http.StatusRequestTimeout || took < 250*time.Millisecond || took > 5*time.Second {
		t.Errorf("a body that never came: %d after %v, want 408 after about 300ms", resp.StatusCode, took)
	}
}

// healthz sends GET /healthz on c (kept alive) and reports whether it was
// answered 200 within 5 s.
func healthz(c net.Conn) bool {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return false
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// TestServeIdleTimeout: with --idle-timeout, a SQLite tenant stays open
// while it has work, is closed once idle that long (its series leave
// /metrics, which lists the open tenants' queues), and the next request
// opens it again.
func TestServeIdleTimeout(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 60*time.Second)
	p := startServe(t, t.TempDir(), []string{"CLOACINA_ADMIN_KEY=" + testAdminKey}, "--idle-timeout", "300ms")
	c := client.New(p.url, client.WithAPIKey(testAdminKey))
	if _, err := c.CreateTenant(ctx, "idle"); err != nil {
		t.Fatal(err)
	}
	open := func() bool {
		t.Helper()
		prom, err := c.PrometheusMetrics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Contains(prom, `cloacina_queue_ready_tasks{tenant="idle"}`)
	}
	ex, err := c.StartExecution(ctx, "idle", client.StartRequest{Workflow: "wait", Context: map[string]any{"seconds": 1}})
	if err != nil {
		t.Fatal(err)
	}
	// Running for a second, three times the timeout: open all along.
	waitFor(t, ctx, c, "idle", ex.ExecutionID, func(e *client.Execution) bool {
		if !client.Terminal(e.Status) && !open() {
			t.Fatalf("tenant closed while its execution is %s", e.Status)
		}
		return client.Terminal(e.Status)
	})
	// A scrape reads each open tenant's queue through the manager, which
	// counts as a use: scrape less often than the timeout.
	deadline := time.Now().Add(10 * time.Second)
	for open() {
		if time.Now().After(deadline) {
			t.Fatal("tenant still open 10s after its work ended, with --idle-timeout 300ms")
		}
		time.Sleep(time.Second)
	}
	// Reopened by the next request.
	got, err := c.GetExecution(ctx, "idle", ex.ExecutionID)
	if err != nil || got.Status != client.StatusCompleted || !open() {
		t.Errorf("after the idle close: %+v, %v (open %v)", got, err, open())
	}
}
