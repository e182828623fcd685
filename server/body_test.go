package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina/api"
)

// rawConn is a client connection that writes a request by hand, to send
// a body at its own pace.
type rawConn struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

// dialRaw connects to the test server at addr (host:port).
func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, conn: c, br: bufio.NewReader(c)}
}

// head writes a request's headers with a Content-Length of n, and the
// first part of its body.
func (c *rawConn) head(method, path, key string, n int, first string) {
	c.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", method, path, n)
	if key != "" {
		fmt.Fprintf(&b, "Authorization: Bearer %s\r\n", key)
	}
	b.WriteString("\r\n")
	b.WriteString(first)
	if _, err := io.WriteString(c.conn, b.String()); err != nil {
		c.t.Fatal(err)
	}
}

// write sends more of the body; it reports whether the write went.
func (c *rawConn) write(s string) error {
	_ = c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := io.WriteString(c.conn, s)
	return err
}

// response reads the answer, waiting at most d.
func (c *rawConn) response(d time.Duration) (*http.Response, string) {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.t.Fatalf("reading the answer: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// closedWithin reports whether the server closes the connection within d
// (reading gets EOF or a reset, not a timeout).
func (c *rawConn) closedWithin(d time.Duration) bool {
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c.br)
	if err == nil || errors.Is(err, io.EOF) {
		return true
	}
	return !errors.Is(err, os.ErrDeadlineExceeded)
}

// newTCPServer serves e's server on a real listener.
func newTCPServer(t *testing.T, e *env) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(e.srv)
	t.Cleanup(ts.Close)
	return ts
}

func shortBodyDeadline(d time.Duration) envOpts {
	return envOpts{config: func(c *Config) { c.BodyReadTimeout = d }}
}

// TestBodyReadDeadline: a body that trickles in is cut at
// BodyReadTimeout: 408 request_timeout, and the connection is closed.
func TestBodyReadDeadline(t *testing.T) {
	e := newEnv(t, "sqlite", shortBodyDeadline(500*time.Millisecond))
	ts := newTCPServer(t, e)
	c := dialRaw(t, ts.Listener.Addr().String())
	start := time.Now()
	c.head("POST", "/tenants", testAdminKey, 200000, `{"tenant_id":"`)
	stop := make(chan struct{})
	defer close(stop)
	go func() { // one byte every 100 ms
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				if c.write("a") != nil {
					return
				}
			}
		}
	}()
	resp, body := c.response(5 * time.Second)
	took := time.Since(start)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(body, codeRequestTimeout) {
		t.Fatalf("trickled body: %d %s, want 408 %s", resp.StatusCode, body, codeRequestTimeout)
	}
	if took > 3*time.Second {
		t.Fatalf("the trickled body was cut after %v, the deadline is 500ms", took)
	}
	if !c.closedWithin(2 * time.Second) {
		t.Fatal("the connection of a timed-out body stays open")
	}
	var tenants api.Tenants
	e.call(req{method: "GET", path: "/tenants", key: testAdminKey}, http.StatusOK, &tenants)
	if len(tenants.Tenants) != 0 {
		t.Fatalf("a timed-out request created %v", tenants.Tenants)
	}
}

// TestRefusedBodyClosesConnection: a request refused before its body is
// read (no key) gets its answer at once and its connection is closed: the
// server does not read the rest of a trickled body (net/http would read up
// to 256 KiB of it, with no deadline of its own).
func TestRefusedBodyClosesConnection(t *testing.T) {
	// A deadline longer than the test's wait: only the refusal can close.
	e := newEnv(t, "sqlite", shortBodyDeadline(time.Minute))
	ts := newTCPServer(t, e)
	for _, tc := range []struct{ name, method, path, key string }{
		{"no key", "POST", "/tenants", ""},
		{"bad key", "POST", "/tenants", "nope"},
		{"no route", "POST", "/nowhere", testAdminKey},
		{"public route", "GET", "/healthz", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, ts.Listener.Addr().String())
			c.head(tc.method, tc.path, tc.key, 200000, `{"tenant_id":"`)
			resp, _ := c.response(5 * time.Second)
			if resp.StatusCode == http.StatusCreated {
				t.Fatalf("%s: %d", tc.name, resp.StatusCode)
			}
			if !resp.Close {
				t.Errorf("%s: the answer does not say Connection: close", tc.name)
			}
			// Trickle a little more: the server must not wait for it.
			_ = c.write("aaaa")
			if !c.closedWithin(2 * time.Second) {
				t.Fatalf("%s: the connection stays open, reading the refused body", tc.name)
			}
		})
	}
}

// TestManyTricklingConns: many connections trickling bodies are all cut
// at the deadline, and /healthz answers meanwhile.
func TestManyTricklingConns(t *testing.T) {
	e := newEnv(t, "sqlite", shortBodyDeadline(time.Second))
	e.createTenant("acme")
	wk := e.createKey("acme", "write")
	ts := newTCPServer(t, e)
	const n = 200
	conns := make([]*rawConn, n)
	for i := range conns {
		conns[i] = dialRaw(t, ts.Listener.Addr().String())
		key := testAdminKey
		if i%2 == 1 {
			key = wk
		}
		path := "/tenants"
		if i%2 == 1 {
			path = "/tenants/acme/workflows"
		}
		conns[i].head("POST", path, key, 200000, `{"`)
	}
	start := time.Now()
	hc := &http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get(ts.URL + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz with %d trickling connections: %v %v", n, resp, err)
	}
	resp.Body.Close()
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := 0
	for _, c := range conns {
		wg.Go(func() {
			if !c.closedWithin(6 * time.Second) {
				mu.Lock()
				open++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if open > 0 {
		t.Fatalf("%d of %d trickling connections still open %v after the start (deadline 1s)", open, n, time.Since(start))
	}
}

// TestWaitOutlivesBodyDeadline: the body deadline ends with the body: a
// ?wait= longer than it still gets the execution's result.
func TestWaitOutlivesBodyDeadline(t *testing.T) {
	e := newEnv(t, "sqlite", shortBodyDeadline(300*time.Millisecond))
	e.createTenant("acme")
	wk := e.createKey("acme", "write")
	ts := newTCPServer(t, e)
	go func() {
		time.Sleep(1500 * time.Millisecond)
		e.release <- struct{}{}
	}()
	r, err := http.NewRequestWithContext(testCtx(t), "POST", ts.URL+"/tenants/acme/workflows?wait=20s",
		strings.NewReader(`{"workflow_name":"block"}`))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Authorization", "Bearer "+wk)
	start := time.Now()
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"Completed"`) {
		t.Fatalf("?wait= past the body deadline: %d %s", resp.StatusCode, b)
	}
	if took := time.Since(start); took < time.Second {
		t.Fatalf("the wait took %v: the test did not outlive the deadline", took)
	}
}

// TestLimitConnsPerClient: connections over the per-client limit are
// closed at once; a freed slot is taken again.
func TestLimitConnsPerClient(t *testing.T) {
	e := newEnv(t, "sqlite", envOpts{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: e.srv, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(LimitConnsPerClient(ln, 3)) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
	})
	addr := ln.Addr().String()
	held := make([]*rawConn, 3)
	for i := range held {
		held[i] = dialRaw(t, addr)
		held[i].head("POST", "/tenants", testAdminKey, 100, `{`)
	}
	time.Sleep(200 * time.Millisecond) // let the server accept them
	// A fourth is refused: reset at once (the dial itself may see it).
	if extra, err := net.DialTimeout("tcp", addr, 5*time.Second); err == nil {
		c := &rawConn{t: t, conn: extra, br: bufio.NewReader(extra)}
		t.Cleanup(func() { extra.Close() })
		if !c.closedWithin(2 * time.Second) {
			t.Fatal("a fourth connection from the same client is kept")
		}
	} else if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("a fourth connection: %v, want a reset", err)
	}
	held[0].conn.Close()
	time.Sleep(200 * time.Millisecond)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("/healthz once a slot is free: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %d", resp.StatusCode)
	}
	if LimitConnsPerClient(ln, 0) != ln {
		t.Fatal("n < 1 should leave the listener alone")
	}
}
