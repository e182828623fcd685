package cloacina_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/internal/pgtest"
)

// On a PostgreSQL engine whose total of task slots (8) exceeds the
// per-tenant cap (3), a tenant with a backlog of long tasks holds exactly
// its cap, and a quiet tenant's one-task workflow starts at once (within
// a second) in the slots the cap leaves.
func TestEngineTenantCapLeavesSlotsForQuietTenant(t *testing.T) {
	const total, perTenant, backlog = 8, 3, 10
	url := pgtest.Shared(t).NewDatabase(t)
	ctx := testCtx(t, 60*time.Second)
	release := make(chan struct{})
	var running, peak atomic.Int32
	long := cloacina.NewWorkflow("long").Task("t", func(ctx context.Context, _ *cloacina.Context) error {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}).MustBuild()
	quickStarted := make(chan time.Time, 1)
	quick := cloacina.NewWorkflow("quick").Task("t", func(context.Context, *cloacina.Context) error {
		quickStarted <- time.Now()
		return nil
	}).MustBuild()
	eng := newEngine(t, url, cloacina.WithWorkflows(long, quick), cloacina.WithMaxConcurrentTasks(total))
	noisy, err := eng.Runner(ctx, "tenant_noisy", cloacina.WithTenantConcurrency(perTenant))
	if err != nil {
		t.Fatal(err)
	}
	quiet, err := eng.Runner(ctx, "tenant_quiet", cloacina.WithTenantConcurrency(perTenant))
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() { once.Do(func() { close(release) }) }
	defer stop()
	inputs := make([]any, backlog)
	handles, err := noisy.ExecuteMany(ctx, "long", inputs)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, ctx, "the noisy tenant running its cap", func() bool { return running.Load() == perTenant })
	// A few rounds and polls: the cap holds although 5 slots are free and
	// 7 tasks are ready.
	time.Sleep(300 * time.Millisecond)
	if p := peak.Load(); p != perTenant {
		t.Fatalf("the noisy tenant ran up to %d tasks at once, want its cap %d", p, perTenant)
	}
	if s := eng.Stats(); s.RunningTasks != perTenant || s.MaxConcurrentTasks != total {
		t.Fatalf("engine stats %+v, want %d running of %d", s, perTenant, total)
	}

	submitted := time.Now()
	h, err := quiet.ExecuteAsync(ctx, "quick", nil)
	if err != nil {
		t.Fatal(err)
	}
	var latency time.Duration
	select {
	case at := <-quickStarted:
		latency = at.Sub(submitted)
	case <-time.After(5 * time.Second):
		t.Fatal("the quiet tenant's task did not start within 5s")
	}
	t.Logf("quiet tenant's one-task workflow started %v after it was submitted (noisy tenant holding %d of %d slots, %d ready behind)",
		latency, perTenant, total, backlog-perTenant)
	if latency > time.Second {
		t.Errorf("the quiet tenant's task started %v after submission, want within 1s", latency)
	}
	res, err := h.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, res, cloacina.ExecutionCompleted)
	if p := peak.Load(); p != perTenant {
		t.Errorf("the noisy tenant ran up to %d tasks at once, want %d", p, perTenant)
	}
	stop()
	for _, h := range handles {
		res, err := h.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, res, cloacina.ExecutionCompleted)
	}
	if p := peak.Load(); p > perTenant {
		t.Errorf("the noisy tenant ran up to %d tasks at once, want at most %d", p, perTenant)
	}
}

// An engine whose LISTEN goes through a transaction-mode PgBouncer (the
// pool's URL, no ListenURL) warns, within a few seconds of starting, that
// notifications do not reach it and that ListenURL should be a direct
// connection.
func TestEngineWarnsWhenListenGoesThroughPgBouncer(t *testing.T) {
	srv := pgtest.Shared(t)
	b := pgtest.StartPgBouncer(t, srv)
	pooled := b.NewDatabase(t) + "&default_query_exec_mode=exec"
	logs := &recordingHandler{}
	eng := newEngine(t, pooled, cloacina.WithLogger(slog.New(logs)))
	ctx := testCtx(t, 20*time.Second)
	if _, err := eng.Runner(ctx, "tenant_a"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, ctx, "a warning about LISTEN", func() bool {
		for _, m := range logs.messages(slog.LevelWarn) {
			if strings.Contains(m, "LISTEN") && strings.Contains(m, "WithListenURL") {
				return true
			}
		}
		return false
	})
}

// recordingHandler keeps the messages logged to it.
type recordingHandler struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}

func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }

// messages returns the messages logged at level or above.
func (h *recordingHandler) messages(level slog.Level) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.recs {
		if r.Level >= level {
			out = append(out, r.Message)
		}
	}
	return out
}
