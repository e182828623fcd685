package tenant

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina"
)

// TestWaitingForATenantEndsWithContext holds a tenant's lock (as a slow
// creation or removal would) and checks that Runner and Remove for that
// tenant give up when their context ends, while other tenants go on.
func TestWaitingForATenantEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m, err := NewSQLiteManager(t.TempDir(), cloacina.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx) //nolint:errcheck // checked by the test's last step

	s, err := m.lock(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancelShort()
	if _, err := m.Runner(short, "acme"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Runner while the tenant is locked = %v, want DeadlineExceeded", err)
	}
	if err := m.Remove(short, "acme"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Remove while the tenant is locked = %v, want DeadlineExceeded", err)
	}
	if _, err := m.Runner(ctx, "other"); err != nil {
		t.Errorf("another tenant is blocked: %v", err)
	}
	m.unlock("acme", s)
	if _, err := m.Runner(ctx, "acme"); err != nil {
		t.Errorf("Runner once unlocked: %v", err)
	}

	m.mu.Lock()
	slots := len(m.slots)
	refs := m.slots["acme"].refs
	m.mu.Unlock()
	if slots != 2 || refs != 0 {
		t.Errorf("%d slots (want 2: one per open runner), acme has %d refs (want 0)", slots, refs)
	}
	if err := m.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// TestSlotsAreDropped checks that ids that were only looked up (Remove of
// an unknown tenant, failed opens) leave nothing behind in the manager.
func TestSlotsAreDropped(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m, err := NewSQLiteManager(t.TempDir(), cloacina.WithLogger(slog.New(slog.DiscardHandler)), cloacina.WithMaxContextBytes(-1))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c"} {
		if err := m.Remove(ctx, id); !errors.Is(err, ErrTenantNotFound) {
			t.Errorf("Remove(%s) = %v", id, err)
		}
		// A negative MaxContextBytes is refused: opening fails.
		if _, err := m.Runner(ctx, id); !errors.Is(err, cloacina.ErrInvalidOption) {
			t.Errorf("Runner(%s) = %v, want ErrInvalidOption", id, err)
		}
	}
	m.mu.Lock()
	n := len(m.slots)
	m.mu.Unlock()
	if n != 0 {
		t.Errorf("%d slots left, want 0", n)
	}
	if err := m.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgresql://user:pass@localhost/cloacina", "postgresql://user:REDACTED@localhost/cloacina"},
		{"postgres://user@localhost/db", "postgres://user@localhost/db"},
		{"postgres://localhost/db?sslmode=disable&password=pw1", "postgres://localhost/db?password=REDACTED&sslmode=disable"},
		{"postgres://u:p%40ss@h:5432/db?sslpassword=x", "postgres://u:REDACTED@h:5432/db?sslpassword=REDACTED"},
		{"sqlite://data/app.db", "sqlite://data/app.db"},
		{"sqlite:///abs/app.db", "sqlite:///abs/app.db"},
		// Unescaped specials in the password.
		{"postgres://u:12#ab@host/db", "postgres://REDACTED@host/db"},
		{"postgres://u:a/b@host/db", "postgres://REDACTED@host/db"},
		{"postgres://u:a b%zz@host/db?x=1", "postgres://REDACTED@host/db?REDACTED"},
		{"u:secret@host", "REDACTED"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := redactURL(tt.in); got != tt.want {
			t.Errorf("redactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestRedactConnectionString checks that a DATABASE_URL given as a
// keyword/value connection string, which LoadConfig refuses, does not show
// its password in the error.
func TestRedactConnectionString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"host=db password=secret", "host=db password=REDACTED"},
		{"host=db user=u password='se cret' sslpassword=x dbname=d", "host=db user=u password=REDACTED sslpassword=REDACTED dbname=d"},
		{"host=db password=a@b", "host=db password=REDACTED"},
		{"data/app.db", "data/app.db"},
	}
	for _, tt := range tests {
		if got := redactURL(tt.in); got != tt.want {
			t.Errorf("redactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	_, err := LoadConfigFrom(func(k string) (string, bool) {
		if k == EnvDatabaseURL {
			return "host=db password=s3cr3t", true
		}
		return "", false
	})
	if err == nil || strings.Contains(err.Error(), "s3cr3t") || !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("LoadConfig with a connection string: %v; want ErrInvalidConfig without the password", err)
	}
}

// TestRemoveWaitsForCallsInProgress holds a call's use of a tenant's
// runner (as a running Execute does) and checks that Remove shuts the
// runner down but deletes the data only once the call is done, or once its
// context ends; and that the slot accounting survives both.
func TestRemoveWaitsForCallsInProgress(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m, err := NewSQLiteManager(t.TempDir(), cloacina.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx) //nolint:errcheck // checked by the test's last step
	path, _ := m.Path("acme")

	_, done, err := m.use(ctx, "acme", true)
	if err != nil {
		t.Fatal(err)
	}
	removed := make(chan error, 1)
	go func() { removed <- m.Remove(ctx, "acme") }()
	select {
	case err := <-removed:
		t.Fatalf("Remove returned (%v) while a call used the runner", err)
	case <-time.After(200 * time.Millisecond):
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the data went while a call used the runner: %v", err)
	}
	done()
	select {
	case err := <-removed:
		if err != nil {
			t.Fatalf("Remove: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Remove did not return once the call was done")
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Remove: %v, want the file gone", err)
	}

	// A call that outlives Remove's context: the data goes anyway.
	_, done, err = m.use(ctx, "acme", true)
	if err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancelShort()
	if err := m.Remove(short, "acme"); err != nil {
		t.Fatalf("Remove with a call in progress past its context: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Remove: %v, want the file gone", err)
	}
	if _, err := m.Runner(ctx, "acme"); err != nil {
		t.Fatalf("Runner after Remove: %v", err)
	}
	done() // the old call ends after the tenant came back
	if err := m.Remove(ctx, "acme"); err != nil {
		t.Fatalf("Remove of the new runner: %v", err)
	}
	m.mu.Lock()
	n := len(m.slots)
	m.mu.Unlock()
	if n != 0 {
		t.Errorf("%d slots left, want 0", n)
	}
	if err := m.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// TestEvictedTenantReopensForWorkThatSlippedIn: an execution recorded in
// a tenant's file while its runner was being closed as idle (by a runner
// handed out long before) is not left waiting for the next call: the
// janitor's reopenIfBusy opens the tenant again and the work runs.
func TestEvictedTenantReopensForWorkThatSlippedIn(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	wf := cloacina.NewWorkflow("note").Task("t", func(_ context.Context, c *cloacina.Context) error {
		return c.Set("done", true)
	}).MustBuild()
	quiet := cloacina.WithLogger(slog.New(slog.DiscardHandler))
	m, err := NewSQLiteManagerWithConfig(t.TempDir(), SQLiteConfig{IdleTimeout: -1}, cloacina.WithWorkflows(wf), quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx) //nolint:errcheck // nothing to check at the end
	if _, err := m.Execute(ctx, "acme", "note", nil); err != nil {
		t.Fatal(err)
	}
	if !m.evict(ctx, "acme", 0, m.files.busy("acme"), nil) {
		t.Fatal("the idle tenant was not closed")
	}
	// The work that slipped in: recorded in the file with no runner of
	// the manager open.
	other, err := cloacina.NewRunner(ctx, "sqlite://"+m.files.path("acme"), cloacina.WithWorkflows(wf), cloacina.WithEnqueueOnly(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	h, err := other.ExecuteAsync(ctx, "note", nil)
	if err != nil {
		t.Fatal(err)
	}
	m.reopenIfBusy(ctx, "acme", m.files.hasWork("acme"))
	if _, ok := m.OpenRunner("acme"); !ok {
		t.Fatal("the tenant with new work was not reopened")
	}
	res, err := h.Wait(ctx)
	if err != nil || res.Status != cloacina.ExecutionCompleted {
		t.Fatalf("the slipped-in execution: %v, %v; want Completed", res, err)
	}
	if err := other.Shutdown(ctx); err != nil {
		t.Error(err)
	}
	// Without work, nothing is reopened.
	if !m.evict(ctx, "acme", 0, m.files.busy("acme"), nil) {
		t.Fatal("the idle tenant was not closed the second time")
	}
	m.reopenIfBusy(ctx, "acme", m.files.hasWork("acme"))
	if _, ok := m.OpenRunner("acme"); ok {
		t.Error("a tenant without work was reopened")
	}
}

// TestEvictSparesARunnerHandedOutAfterTheIdleChoice: the janitor chooses
// idle tenants, then closes them one by one; a runner handed out in
// between (a request) is not shut down under its new user.
func TestEvictSparesARunnerHandedOutAfterTheIdleChoice(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := NewSQLiteManagerWithConfig(t.TempDir(), SQLiteConfig{IdleTimeout: -1, NoResume: true}, cloacina.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx) //nolint:errcheck // nothing to check at the end
	if _, err := m.Runner(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	const idle = 20 * time.Millisecond
	time.Sleep(50 * time.Millisecond)
	if got := m.idleTenants(idle); len(got) != 1 || got[0] != "x" {
		t.Fatalf("idleTenants = %q, want [x]", got)
	}
	r, err := m.ExistingRunner(ctx, "x") // a request, after the choice
	if err != nil {
		t.Fatal(err)
	}
	if m.evict(ctx, "x", idle, m.files.busy("x"), nil) {
		t.Fatal("evict shut down a runner handed out after it was chosen as idle")
	}
	if _, err := r.ListExecutions(ctx, cloacina.ListOptions{}); err != nil {
		t.Fatalf("the handed-out runner: %v", err)
	}
}

// TestOpenMetricsNeverOpens: OpenMetrics reads an open tenant's metrics,
// and reports a closed one as not open without opening it (Metrics opens
// it): a scrape never brings back an idle-closed tenant.
func TestOpenMetricsNeverOpens(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := NewSQLiteManagerWithConfig(t.TempDir(), SQLiteConfig{IdleTimeout: -1, NoResume: true}, cloacina.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx) //nolint:errcheck // nothing to check at the end
	if _, err := m.Runner(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if mt, ok, err := m.OpenMetrics(ctx, "x"); err != nil || !ok || mt == nil {
		t.Fatalf("OpenMetrics of an open tenant = %v, %v, %v", mt, ok, err)
	}
	if !m.evict(ctx, "x", 0, m.files.busy("x"), nil) {
		t.Fatal("the idle tenant was not closed")
	}
	if mt, ok, err := m.OpenMetrics(ctx, "x"); err != nil || ok || mt != nil {
		t.Fatalf("OpenMetrics of a closed tenant = %v, %v, %v; want not open", mt, ok, err)
	}
	if _, open := m.OpenRunner("x"); open {
		t.Fatal("OpenMetrics opened the tenant")
	}
	if mt, ok, err := m.OpenMetrics(ctx, "nobody"); err != nil || ok || mt != nil {
		t.Fatalf("OpenMetrics of an unknown tenant = %v, %v, %v; want not open", mt, ok, err)
	}
}

// TestCreationLeftoverDoesNotBlockTheTenant: a crash while a tenant's
// database was being made leaves only the temporary file, never an
// unmarked <id>.db that would be refused as foreign; the next creation
// goes through.
func TestCreationLeftoverDoesNotBlockTheTenant(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	m, err := NewSQLiteManagerWithConfig(dir, SQLiteConfig{NoResume: true}, cloacina.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx) //nolint:errcheck // nothing to check at the end
	// What a crash right after creating the empty file leaves.
	if err := os.WriteFile(creatingPath(m.files.path("acme")), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if ids, err := m.Tenants(ctx); err != nil || len(ids) != 0 {
		t.Fatalf("Tenants with a leftover = %q, %v; want none", ids, err)
	}
	if _, err := m.Runner(ctx, "acme"); err != nil {
		t.Fatalf("creating the tenant over a leftover: %v", err)
	}
	if _, err := os.Stat(creatingPath(m.files.path("acme"))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the temporary file is still there: %v", err)
	}
	st, err := os.Stat(m.files.path("acme"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("the tenant's file: %v, %v; want mode 0600", st, err)
	}
}
