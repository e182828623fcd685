package store_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina/internal/pgtest"
	"github.com/cloacina-go/cloacina/internal/store"
	"github.com/cloacina-go/cloacina/internal/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// opener returns the open function storetest.Run wants: the first call for
// a test makes a new database with newURL, later calls for the same test
// reopen it.
func opener(cfg store.Config, backend string, newURL func(t *testing.T) string) func(t *testing.T) store.Store {
	var mu sync.Mutex
	urls := map[*testing.T]string{}
	return func(t *testing.T) store.Store {
		t.Helper()
		mu.Lock()
		u, ok := urls[t]
		mu.Unlock()
		if !ok {
			u = newURL(t)
			mu.Lock()
			urls[t] = u
			mu.Unlock()
			t.Cleanup(func() {
				mu.Lock()
				delete(urls, t)
				mu.Unlock()
			})
		}
		c := cfg
		c.URL = u
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s, err := store.Open(ctx, c)
		if err != nil {
			t.Fatalf("store.Open(%s, schema %q): %v", store.Redact(u), c.Schema, err)
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		if got := s.Backend(); got != backend {
			t.Fatalf("Backend() = %q, want %q", got, backend)
		}
		return s
	}
}

func TestSQLite(t *testing.T) {
	storetest.Run(t, opener(store.Config{}, "sqlite", func(t *testing.T) string {
		return "sqlite://" + filepath.Join(t.TempDir(), "store.db")
	}))
}

func TestPostgres(t *testing.T) {
	srv := pgtest.Shared(t)
	storetest.Run(t, opener(store.Config{}, "postgres", func(t *testing.T) string {
		return srv.NewDatabase(t)
	}))
}

func TestPostgresSchema(t *testing.T) {
	srv := pgtest.Shared(t)
	storetest.Run(t, opener(store.Config{Schema: "tenant_a"}, "postgres", func(t *testing.T) string {
		return srv.NewDatabase(t)
	}))
}
