package main

import (
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina/client"
)

// TestServeDrains: on SIGTERM a ?wait request answers 202 at once, a task
// that ends within --shutdown-timeout finishes, one that does not is
// released (and runs again at the next start), the process exits 0 and
// says so once; a second signal during the drain ends it at once.
func TestServeDrains(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 90*time.Second)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	env := []string{"CLOACINA_ADMIN_KEY=" + testAdminKey}
	p := startServe(t, dir, env, "--data-dir", data, "--shutdown-timeout", "3s")
	c := client.New(p.url, client.WithAPIKey(testAdminKey))
	if _, err := c.CreateTenant(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	short, err := c.StartExecution(ctx, "acme", client.StartRequest{Workflow: "wait", Context: map[string]any{"seconds": 1}})
	if err != nil {
		t.Fatal(err)
	}
	long, err := c.StartExecution(ctx, "acme", client.StartRequest{Workflow: "wait", Context: map[string]any{"seconds": 600}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, c, "acme", long.ExecutionID, func(e *client.Execution) bool {
		return len(e.Tasks) == 1 && e.Tasks[0].Status == client.TaskRunning
	})
	waited := make(chan *client.Execution, 1)
	go func() {
		ex, err := c.StartExecution(ctx, "acme", client.StartRequest{Workflow: "wait", Context: map[string]any{"seconds": 600}, Wait: time.Minute})
		if err != nil {
			t.Errorf("?wait during the drain: %v", err)
		}
		waited <- ex
	}()
	time.Sleep(300 * time.Millisecond) // the ?wait request is waiting
	start := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case ex := <-waited:
		if ex != nil && (ex.Status != client.StatusPending || time.Since(start) > 2*time.Second) {
			t.Errorf("?wait answered %+v after %v, want Pending at once", ex, time.Since(start))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the ?wait request did not end with the drain")
	}
	<-p.done
	took := time.Since(start)
	if p.err != nil || took < 2*time.Second || took > 8*time.Second {
		t.Errorf("serve exited %v after %v, want 0 after about the 3s shutdown timeout\n%s", p.err, took, p.stderr)
	}
	if n := strings.Count(p.stderr.String(), "level=WARN"); n != 1 || !strings.Contains(p.stderr.String(), "were released") {
		t.Errorf("want one warning, of the released task; stderr:\n%s", p.stderr)
	}

	// The next start: the short task finished during the drain, the long
	// one runs again. A second SIGTERM then ends the drain at once.
	p2 := startServe(t, dir, env, "--data-dir", data, "--shutdown-timeout", "60s")
	c2 := client.New(p2.url, client.WithAPIKey(testAdminKey))
	if ex, err := c2.GetExecution(ctx, "acme", short.ExecutionID); err != nil || ex.Status != client.StatusCompleted {
		t.Errorf("the 1s wait after the drain: %+v, %v", ex, err)
	}
	waitFor(t, ctx, c2, "acme", long.ExecutionID, func(e *client.Execution) bool {
		return len(e.Tasks) == 1 && e.Tasks[0].Status == client.TaskRunning
	})
	_ = p2.cmd.Process.Signal(syscall.SIGTERM)
	waitNotReady(t, p2.url)
	start = time.Now()
	_ = p2.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p2.done:
		if p2.err == nil {
			t.Error("serve stopped by a second signal exited 0")
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("a second SIGTERM did not end the drain (waited %v)", time.Since(start))
	}
}

// waitNotReady polls /readyz until it stops answering 200.
func waitNotReady(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("/readyz still ready 10s after SIGTERM")
}
