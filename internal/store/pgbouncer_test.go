package store_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina/internal/pgtest"
	"github.com/cloacina-go/cloacina/internal/store"
)

// Through a transaction-mode PgBouncer without prepared statement support,
// pgx's default exec mode prepares "stmtcache_..." statements on server
// connections other clients share, and a second client preparing the same
// statement there fails with 42P05. The store says what to add to the URL,
// keeping the server's error; with default_query_exec_mode=exec the same
// work succeeds.
func TestPgBouncerPreparedStatementConflictSaysWhatToAdd(t *testing.T) {
	b := pgtest.StartPgBouncer(t, pgtest.Shared(t))
	if b.PreparedStatements() {
		t.Skipf("PgBouncer %s carries prepared statements: nothing conflicts", b.Version())
	}
	u := b.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Several stores (each its own pool, so its own client connections)
	// run the same statements on PgBouncer's few server connections.
	var conflicts []error
	for i := range 8 {
		s, err := store.Open(ctx, store.Config{URL: u, PoolSize: 2})
		if err == nil {
			_, err = s.Metrics(ctx)
			s.Close()
		}
		if err == nil {
			continue
		}
		if !errors.Is(err, store.ErrPreparedStatementConflict) || !strings.Contains(err.Error(), "default_query_exec_mode=exec") {
			t.Fatalf("store %d: %v; want ErrPreparedStatementConflict, naming default_query_exec_mode=exec", i, err)
		}
		var se interface{ SQLState() string }
		if !errors.As(err, &se) || (se.SQLState() != "42P05" && se.SQLState() != "26000") {
			t.Errorf("store %d: %v does not keep the server's error", i, err)
		}
		conflicts = append(conflicts, err)
	}
	if len(conflicts) == 0 {
		t.Fatal("no store ran into a prepared statement conflict through PgBouncer without default_query_exec_mode=exec")
	}
	t.Logf("%d of 8 stores failed; first: %v", len(conflicts), conflicts[0])

	exec := u + "&default_query_exec_mode=exec"
	for i := range 8 {
		s, err := store.Open(ctx, store.Config{URL: exec, PoolSize: 2})
		if err == nil {
			_, err = s.Metrics(ctx)
			s.Close()
		}
		if err != nil {
			t.Fatalf("store %d with default_query_exec_mode=exec: %v", i, err)
		}
	}
}

// A LISTEN through a transaction-mode PgBouncer receives nothing: the probe
// sent through the pool does not arrive, and ListenChecked says so. On a
// direct connection it arrives and nothing is said.
func TestListenCheckedThroughPgBouncer(t *testing.T) {
	srv := pgtest.Shared(t)
	b := pgtest.StartPgBouncer(t, srv)
	direct := srv.NewDatabase(t)
	pooled := b.URL(databaseName(t, direct)) + "&default_query_exec_mode=exec"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := store.Connect(ctx, store.Config{URL: pooled})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, c := range []struct {
		name, listenURL string
		want            bool
	}{{"through PgBouncer", pooled, true}, {"direct", direct, false}} {
		t.Run(c.name, func(t *testing.T) {
			lctx, lcancel := context.WithCancel(ctx)
			var connected, undelivered atomic.Int32
			done := make(chan error, 1)
			go func() {
				done <- db.ListenChecked(lctx, c.listenURL, func(string, string) {}, func() { connected.Add(1) },
					func() { undelivered.Add(1) })
			}()
			// The probe's verdict comes within ListenProbeWait of connecting.
			deadline := time.Now().Add(10 * time.Second)
			for connected.Load() == 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if connected.Load() == 0 {
				lcancel()
				t.Fatal("the LISTEN never connected")
			}
			time.Sleep(store.ListenProbeWait + 500*time.Millisecond)
			lcancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if got := undelivered.Load() > 0; got != c.want {
				t.Errorf("undelivered called %d times, want called: %v", undelivered.Load(), c.want)
			}
		})
	}
}

// databaseName is the database of a URL.
func databaseName(t *testing.T, u string) string {
	t.Helper()
	rest, _, _ := strings.Cut(u, "?")
	i := strings.LastIndexByte(rest, '/')
	if i < 0 {
		t.Fatalf("no database in the URL")
	}
	return rest[i+1:]
}
