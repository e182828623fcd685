package tenant

import (
	"context"
	"errors"
	"log/slog"
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
