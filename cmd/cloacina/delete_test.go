package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina/client"
)

// TestTenantDelete runs tenant delete against a real server: it asks
// before deleting a tenant with work in progress (or refuses without
// --yes when nobody can answer), and when the server's answer is lost or
// late it reports what really happened: deleted (exit 0) or still there
// (exit 1). A TCP proxy in front of the server loses or delays the
// answer. Also run -q.
func TestTenantDelete(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 90*time.Second)
	p := startServe(t, t.TempDir(), []string{"CLOACINA_ADMIN_KEY=" + testAdminKey})
	c := client.New(p.url, client.WithAPIKey(testAdminKey))
	for _, id := range []string{"busy", "busy2", "lost", "slow", "quick"} {
		if _, err := c.CreateTenant(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	exists := func(id string) bool {
		t.Helper()
		ts, err := c.ListTenants(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, tn := range ts {
			if tn.TenantID == id {
				return true
			}
		}
		return false
	}

	t.Run("run -q", func(t *testing.T) {
		res := cli(t, ctx, p.url, testAdminKey, "run", "hello", "-t", "quick", "-q")
		if res.code != 0 || !regexp.MustCompile(`^[0-9a-f-]{36}\n$`).MatchString(res.stdout) {
			t.Fatalf("run -q: exit %d, stdout %q, stderr %q; want the id alone", res.code, res.stdout, res.stderr)
		}
		if ex, err := c.GetExecution(ctx, "quick", strings.TrimSpace(res.stdout)); err != nil || ex.WorkflowName != "hello" {
			t.Errorf("the printed id: %+v, %v", ex, err)
		}
		res = cli(t, ctx, p.url, testAdminKey, "run", "flaky", "-t", "quick", "-c", `{"failure_rate":1}`, "-q", "--wait", "20s")
		if res.code != 1 || !regexp.MustCompile(`^[0-9a-f-]{36}\n$`).MatchString(res.stdout) || !strings.Contains(res.stderr, "failed") {
			t.Errorf("run -q --wait of a failing execution: exit %d, stdout %q, stderr %q; want the id and exit 1", res.code, res.stdout, res.stderr)
		}
		if res := cli(t, ctx, p.url, testAdminKey, "run", "hello", "-t", "quick", "-q", "--watch"); res.code != 2 {
			t.Errorf("run -q --watch: exit %d, want 2", res.code)
		}
	})

	t.Run("work in progress", func(t *testing.T) {
		var ids []string
		for _, id := range []string{"busy", "busy2"} {
			ex, err := c.StartExecution(ctx, id, client.StartRequest{Workflow: "wait", Context: map[string]any{"seconds": 3}})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, ex.ExecutionID)
		}
		for i, id := range []string{"busy", "busy2"} {
			waitFor(t, ctx, c, id, ids[i], func(e *client.Execution) bool {
				return len(e.Tasks) == 1 && e.Tasks[0].Status == client.TaskRunning
			})
		}
		// No terminal on stdin: refused without --yes.
		res := cli(t, ctx, p.url, testAdminKey, "tenant", "delete", "busy")
		if res.code != 1 || !strings.Contains(res.stderr, "1 active execution(s), 1 running task(s)") || !strings.Contains(res.stderr, "pass --yes") {
			t.Errorf("delete of a busy tenant without --yes: exit %d, stderr %q", res.code, res.stderr)
		}
		// A terminal: it asks; "n" keeps the tenant, "y" deletes it.
		env := map[string]string{"CLOACINA_SERVER": p.url, "CLOACINA_API_KEY": testAdminKey}
		for _, answer := range []string{"n\n", ""} {
			code, stdout, stderr := runTerminal(t, env, answer, "tenant", "delete", "busy")
			if code != 1 || !strings.Contains(stderr, "Delete it? [y/N]") || !strings.Contains(stderr, "tenant busy not deleted") || stdout != "" {
				t.Errorf("answering %q: exit %d, stdout %q, stderr %q", answer, code, stdout, stderr)
			}
		}
		if !exists("busy") {
			t.Fatal("busy deleted without a yes")
		}
		code, stdout, stderr := runTerminal(t, env, "y\n", "tenant", "delete", "busy")
		if code != 0 || stdout != "tenant busy deleted\n" {
			t.Errorf("answering y: exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
		res = cli(t, ctx, p.url, testAdminKey, "tenant", "delete", "busy2", "--yes")
		if res.code != 0 || res.stdout != "tenant busy2 deleted\n" {
			t.Errorf("delete --yes: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
		}
		if exists("busy") || exists("busy2") {
			t.Error("a deleted tenant is still listed")
		}
	})

	t.Run("answer lost", func(t *testing.T) {
		px := newDeleteProxy(t, p.url, dropAnswer, 0)
		res := cli(t, ctx, px.url, testAdminKey, "tenant", "delete", "lost")
		if !px.acted.Load() {
			t.Fatal("the proxy saw no DELETE")
		}
		if res.code != 0 || res.stdout != "tenant lost deleted\n" || !strings.Contains(res.stderr, "the connection was lost") || !strings.Contains(res.stderr, "no longer exists") {
			t.Errorf("delete whose answer is lost: exit %d, stdout %q, stderr %q; want deleted, exit 0", res.code, res.stdout, res.stderr)
		}
		if exists("lost") {
			t.Error("lost is still listed")
		}
	})

	t.Run("503", func(t *testing.T) {
		px := newDeleteProxy(t, p.url, answer503, 0)
		res := cli(t, ctx, px.url, testAdminKey, "tenant", "delete", "quick")
		if !px.acted.Load() {
			t.Fatal("the proxy saw no DELETE")
		}
		if res.code != 1 || res.stdout != "" || !strings.Contains(res.stderr, "tenant quick is not deleted yet") ||
			!strings.Contains(res.stderr, "cloacina tenant delete quick again") {
			t.Errorf("delete answered 503: exit %d, stdout %q, stderr %q; want not deleted yet, exit 1", res.code, res.stdout, res.stderr)
		}
		if !exists("quick") {
			t.Error("quick is gone although the DELETE never reached the server")
		}
	})

	t.Run("timeout", func(t *testing.T) {
		px := newDeleteProxy(t, p.url, holdRequest, 2*time.Second)
		res := cli(t, ctx, px.url, testAdminKey, "tenant", "delete", "slow", "--timeout", "300ms", "-o", "json")
		var out deleteOutcome
		if res.code != 1 || json.Unmarshal([]byte(res.stdout), &out) != nil || out.Deleted || !out.StillExists ||
			!strings.Contains(res.stderr, "did not answer the delete request within --timeout 300ms") || !strings.Contains(res.stderr, "the tenant still exists") {
			t.Errorf("delete that outlasts --timeout: exit %d, stdout %q, stderr %q; want still_exists, exit 1", res.code, res.stdout, res.stderr)
		}
		// The request reaches the server later, and the tenant goes.
		deadline := time.Now().Add(10 * time.Second)
		for exists("slow") && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if exists("slow") {
			t.Error("slow still listed 10s after its delayed delete")
		}
		if res := cli(t, ctx, p.url, testAdminKey, "tenant", "delete", "quick", "--timeout", "0s"); res.code != 2 {
			t.Errorf("--timeout 0s: exit %d, want 2", res.code)
		}
	})
}

// runTerminal runs the command in process with answer on a stdin taken
// for a terminal.
func runTerminal(t *testing.T, env map[string]string, answer string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	a := &app{stdin: strings.NewReader(answer), stdinTerminal: true, stdout: &stdout, stderr: &stderr,
		lookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	code := run(testCtx(t, 30*time.Second), a, args)
	return code, stdout.String(), stderr.String()
}

// What deleteProxy does to a DELETE request.
const (
	dropAnswer  = iota // forward it, then close the client's connection instead of relaying the answer
	holdRequest        // forward it only after a delay
	answer503          // answer it 503 unavailable, as a server whose removal could not finish in its grace does
)

// deleteProxy relays TCP connections to a server, and does its mode to
// the DELETE requests.
type deleteProxy struct {
	url    string
	ln     net.Listener
	target string
	mode   int
	hold   time.Duration
	acted  atomic.Bool

	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func newDeleteProxy(t *testing.T, serverURL string, mode int, hold time.Duration) *deleteProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	px := &deleteProxy{url: "http://" + ln.Addr().String(), ln: ln, target: strings.TrimPrefix(serverURL, "http://"), mode: mode, hold: hold}
	px.wg.Add(1)
	go px.accept()
	t.Cleanup(px.close)
	return px
}

func (px *deleteProxy) accept() {
	defer px.wg.Done()
	for {
		cc, err := px.ln.Accept()
		if err != nil {
			return
		}
		sc, err := net.Dial("tcp", px.target)
		if err != nil {
			cc.Close()
			continue
		}
		px.mu.Lock()
		px.conns = append(px.conns, cc, sc)
		px.mu.Unlock()
		px.wg.Add(2)
		go px.pipe(cc, sc)
	}
}

// pipe relays one connection pair.
func (px *deleteProxy) pipe(cc, sc net.Conn) {
	var drop atomic.Bool
	answered := make(chan struct{})
	go func() { // server to client
		defer px.wg.Done()
		defer close(answered)
		buf := make([]byte, 32<<10)
		for {
			n, err := sc.Read(buf)
			if n > 0 {
				if drop.Load() {
					cc.Close() // the answer is lost
					sc.Close()
					return
				}
				_, _ = cc.Write(buf[:n])
			}
			if err != nil {
				cc.Close()
				return
			}
		}
	}()
	defer px.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := cc.Read(buf)
		if n > 0 {
			if bytes.HasPrefix(buf[:n], []byte("DELETE /tenants/")) {
				px.acted.Store(true)
				switch px.mode {
				case answer503:
					body := `{"error":{"code":"unavailable","message":"tenant could not be removed within 10s (its keys are revoked); retry the DELETE","request_id":"r503"}}`
					_, _ = fmt.Fprintf(cc, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: %d\r\nX-Request-Id: r503\r\nConnection: close\r\n\r\n%s", len(body), body)
					cc.Close()
					sc.Close()
					return
				case dropAnswer:
					drop.Store(true)
				case holdRequest:
					time.Sleep(px.hold)
				}
			}
			if _, werr := sc.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			// The client is gone: give a request in flight its answer
			// before closing the server's side (closing it would cancel
			// the request).
			select {
			case <-answered:
			case <-time.After(5 * time.Second):
			}
			sc.Close()
			return
		}
	}
}

func (px *deleteProxy) close() {
	px.ln.Close()
	px.mu.Lock()
	for _, c := range px.conns {
		c.Close()
	}
	px.mu.Unlock()
	px.wg.Wait()
}
