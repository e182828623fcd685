package store_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
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

// roleName is the role the role-switching suite acts as. Roles belong to
// the cluster, not to a database, so every test database shares it.
const roleName = "cloacina_suite_role"

// TestPostgresRole runs the suite with a store that switches every
// transaction to a role holding only the privileges the engine needs in
// its schema (the shared-pool mode of per-tenant roles).
func TestPostgresRole(t *testing.T) {
	srv := roleServer(t)
	storetest.Run(t, opener(store.Config{Schema: "tenant_r", Role: roleName}, "postgres", func(t *testing.T) string {
		url := srv.NewDatabase(t)
		migrateAndGrant(t, url, "tenant_r", true)
		return url
	}))
}

// TestPostgresRoleExecMode runs the role suite with pgx's exec query mode
// (the setting for PgBouncer in transaction mode), where a role store reads
// through unnamed statements rather than prepared ones.
func TestPostgresRoleExecMode(t *testing.T) {
	srv := roleServer(t)
	storetest.Run(t, opener(store.Config{Schema: "tenant_x", Role: roleName}, "postgres", func(t *testing.T) string {
		url := srv.NewDatabase(t)
		migrateAndGrant(t, url, "tenant_x", true)
		return withParam(url, "default_query_exec_mode=exec")
	}))
}

// withParam adds a query parameter to a URL.
func withParam(url, param string) string {
	if strings.Contains(url, "?") {
		return url + "&" + param
	}
	return url + "?" + param
}

// roleServer returns the shared server with roleName created (roles belong
// to the cluster, so every role test shares it).
func roleServer(t *testing.T) *pgtest.Server {
	t.Helper()
	srv := pgtest.Shared(t)
	admin, err := sql.Open("pgx", srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.ExecContext(context.Background(), "CREATE ROLE "+roleName+" NOLOGIN"); err != nil && !isSQLState(err, "42710") {
		t.Fatal(err)
	}
	return srv
}

// migrateAndGrant creates and migrates schema as the admin and, when grant
// is set, gives roleName what the engine needs in it.
func migrateAndGrant(t *testing.T, url, schema string, grant bool) {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, store.Config{URL: url, Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if !grant {
		return
	}
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		"GRANT USAGE ON SCHEMA " + schema + " TO " + roleName,
		"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA " + schema + " TO " + roleName,
		"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA " + schema + " TO " + roleName,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// TestPostgresRoleIsEnforced shows that the database, not the store,
// keeps a role out of a schema it was given nothing in.
func TestPostgresRoleIsEnforced(t *testing.T) {
	srv := roleServer(t)
	ctx := context.Background()
	url := srv.NewDatabase(t)
	migrateAndGrant(t, url, "tenant_other", false)
	_, err := store.Open(ctx, store.Config{URL: url, Schema: "tenant_other", Role: roleName})
	if !isSQLState(err, "42501") {
		t.Fatalf("opening a schema the role has no rights in: %v, want SQLSTATE 42501", err)
	}
	// An unmigrated schema the role may not create: ErrMigrationRequired.
	_, err = store.Open(ctx, store.Config{URL: url, Schema: "tenant_new", Role: roleName})
	if !errors.Is(err, store.ErrMigrationRequired) {
		t.Fatalf("opening a new schema as the role: %v, want ErrMigrationRequired", err)
	}
	if !strings.Contains(err.Error(), "tenant.Admin).Migrate") || !isSQLState(err, "42501") {
		t.Errorf("the error does not name the admin command: %v", err)
	}
}

func isSQLState(err error, code string) bool {
	var se interface{ SQLState() string }
	return errors.As(err, &se) && se.SQLState() == code
}

// TestPostgresRoleStatementsPreparedAgain: a role store's reads run
// statements prepared on the connection; when they vanish from the server
// (DEALLOCATE ALL, DISCARD ALL, a pooler switching server connections), the
// next read prepares them again instead of failing.
func TestPostgresRoleStatementsPreparedAgain(t *testing.T) {
	srv := roleServer(t)
	ctx := context.Background()
	url := srv.NewDatabase(t)
	migrateAndGrant(t, url, "tenant_p", true)
	// One connection, so that the tampering hits the store's connection.
	s, err := store.Open(ctx, store.Config{URL: url, Schema: "tenant_p", Role: roleName, PoolSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const missing = "00000000-0000-7000-8000-000000000000"
	for i := range 3 {
		if _, err := s.GetExecution(ctx, missing); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("read %d: %v, want ErrNotFound", i, err)
		}
		if err := store.ExecOnPool(ctx, s, "DEALLOCATE ALL"); err != nil {
			t.Fatal(err)
		}
	}
}
