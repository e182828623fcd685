package tenant_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/tenant"
)

// TestIdleTenantsFootprint prints the file descriptors, memory (RSS) and
// idle CPU of a process holding many SQLite tenants that were each used
// once. It runs only when CLOACINA_IDLE_TENANTS is set (the number of
// tenants, e.g. 1000); CLOACINA_IDLE_KEEP_OPEN=1 keeps every runner open
// (SQLiteConfig.IdleTimeout < 0: the behaviour before idle closing).
// Run each mode in its own process, as RSS seldom shrinks:
//
//	CLOACINA_IDLE_TENANTS=1000 CLOACINA_IDLE_KEEP_OPEN=1 go test -run TestIdleTenantsFootprint -v -timeout 30m ./tenant/
//	CLOACINA_IDLE_TENANTS=1000 go test -run TestIdleTenantsFootprint -v -timeout 30m ./tenant/
func TestIdleTenantsFootprint(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("CLOACINA_IDLE_TENANTS"))
	if n <= 0 {
		t.Skip("set CLOACINA_IDLE_TENANTS=1000 to measure")
	}
	keepOpen := os.Getenv("CLOACINA_IDLE_KEEP_OPEN") == "1"
	cfg := tenant.SQLiteConfig{IdleTimeout: time.Second}
	if keepOpen {
		cfg.IdleTimeout = -1
	}
	ctx := testCtx(t, 30*time.Minute)
	dir := filepath.Join(t.TempDir(), "data")
	before := footprint(t)
	m := newIdleManager(t, dir, cfg, cloacina.WithPollInterval(time.Second))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if _, err := m.Execute(ctx, fmt.Sprintf("t%04d", i), "pipeline", nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if !keepOpen {
		waitFor(t, 5*time.Minute, "idle runners to close", func() bool { return len(m.OpenTenants()) == 0 })
	}
	time.Sleep(2 * time.Second)
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	const window = 10 * time.Second
	time.Sleep(window)
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) * time.Nanosecond
	after := footprint(t)
	t.Logf("%d tenants used once, keep open=%v: open runners %d, fds %d (at start %d), RSS %.1f MB (at start %.1f MB), idle CPU %.1f%% of a core",
		n, keepOpen, len(m.OpenTenants()), after.fds, before.fds, after.rssMB, before.rssMB, 100*cpu.Seconds()/window.Seconds())
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := m.Close(cctx); err != nil {
		t.Errorf("Close: %v", err)
	}
}

type usage struct {
	fds   int
	rssMB float64
}

// footprint returns the process's open file descriptors and resident
// memory, after a garbage collection that returns free memory to the OS.
func footprint(t *testing.T) usage {
	t.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	var kb float64
	for _, l := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ = strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
		}
	}
	return usage{fds: len(fds), rssMB: kb / 1024}
}
