package store_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cloacina-go/cloacina/internal/pgtest"
	"github.com/cloacina-go/cloacina/internal/store"
)

func TestKind(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"sqlite://cloacina.db", "sqlite"},
		{"sqlite://data/dir/cloacina.db?x=1", "sqlite"},
		{"sqlite:///var/lib/cloacina.db", "sqlite"},
		{"postgres://u:secret@localhost:5432/db?sslmode=disable", "postgres"},
		{"postgres://localhost/db", "postgres"},
		{"postgresql://u:secret@localhost/db", "postgres"},
	} {
		got, err := store.Kind(tc.url)
		if err != nil || got != tc.want {
			t.Errorf("Kind(%q) = %q, %v; want %q", store.Redact(tc.url), got, err, tc.want)
		}
	}
	for _, tc := range []struct{ name, url, password string }{
		{"empty", "", ""},
		{"mysql", "mysql://u:Hunter2xyz@localhost/db", "Hunter2xyz"},
		{"http", "http://u:Hunter2xyz@localhost/db", "Hunter2xyz"},
		{"bare path", "cloacina.db", ""},
		{"file URI", "file:cloacina.db", ""},
		{"sqlite without slashes", "sqlite:cloacina.db", ""},
		{"sqlite3 scheme", "sqlite3://cloacina.db", ""},
		{"postgres without slashes", "postgres:u:Hunter2xyz@localhost/db", "Hunter2xyz"},
		{"no scheme", "u:Hunter2xyz@localhost:5432/db", "Hunter2xyz"},
		{"keyword/value DSN", "host=localhost user=u password=Hunter2xyz dbname=db", "Hunter2xyz"},
		{"leading space", " postgres://u:Hunter2xyz@localhost/db", "Hunter2xyz"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := store.Kind(tc.url)
			if !errors.Is(err, store.ErrUnsupportedURL) {
				t.Fatalf("Kind = %q, %v; want ErrUnsupportedURL", got, err)
			}
			if tc.password != "" && strings.Contains(err.Error(), tc.password) {
				t.Errorf("Kind's error shows the password: %v", err)
			}
		})
	}
}

// TestRedact: store.Redact, behind cloacina.RedactURL and the store's
// errors, is internal/redact's URL (tested there).
func TestRedact(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"postgres://u:Hunter2xyz@db.example:5432/app?sslmode=disable", "postgres://u:REDACTED@db.example:5432/app?sslmode=disable"},
		{"host=db.example user=u password=Hunter2xyz dbname=app", "host=db.example user=u password=REDACTED dbname=app"},
		{"sqlite://data/cloacina.db", "sqlite://data/cloacina.db"},
	} {
		if got := store.Redact(tc.url); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.url, got, tc.want)
		}
	}
}

func TestSQLitePath(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"sqlite://cloacina.db", "cloacina.db"},
		{"sqlite://./cloacina.db", "./cloacina.db"},
		{"sqlite://data/dir/cloacina.db", "data/dir/cloacina.db"},
		{"sqlite:///var/lib/cloacina.db", "/var/lib/cloacina.db"},
		{"sqlite:///tmp/with space/x.db", "/tmp/with space/x.db"},
		{"sqlite://dir#1/50%/x.db", "dir#1/50%/x.db"},
	} {
		got, err := store.SQLitePath(tc.url)
		if err != nil || got != tc.want {
			t.Errorf("SQLitePath(%q) = %q, %v; want %q", tc.url, got, err, tc.want)
		}
	}
	for _, u := range []string{"sqlite://", "sqlite://?mode=memory", "sqlite://cloacina.db?cache=shared", "postgres://x/y"} {
		if got, err := store.SQLitePath(u); !errors.Is(err, store.ErrUnsupportedURL) {
			t.Errorf("SQLitePath(%q) = %q, %v; want ErrUnsupportedURL", u, got, err)
		}
	}
}

func TestValidateSchema(t *testing.T) {
	for _, name := range []string{
		"a", "_", "A", "tenant_a", "Tenant_A1", "_x9", "t123", strings.Repeat("a", 63),
		"pg", "pgx", "pg1", "publicity", "my_public", "information", "information_schema2", "x_pg_y",
	} {
		if err := store.ValidateSchema(name); err != nil {
			t.Errorf("ValidateSchema(%q) = %v, want nil", name, err)
		}
	}
	for _, name := range []string{
		"", strings.Repeat("a", 64), strings.Repeat("b", 100), "1abc", "9", "a-b", "a;DROP SCHEMA x", "a;DROP SCHEMA x CASCADE;--",
		"public", "PUBLIC", "Public", "information_schema", "INFORMATION_SCHEMA", "pg_x", "pg_", "PG_X", "Pg_catalog", "pg_catalog", "pg_toast",
		"a b", " a", "a ", "a\tb", "a\nb", `a"b`, `"a"`, "a'b", "a.b", "a$b", "a`b", "é", "tenant_é", "ñame", "日本", "a\x00b", "a/b", `a\b`,
	} {
		err := store.ValidateSchema(name)
		if !errors.Is(err, store.ErrInvalidSchema) {
			t.Errorf("ValidateSchema(%q) = %v, want ErrInvalidSchema", name, err)
		}
	}
}

func openCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestOpenRefusesBadConfig(t *testing.T) {
	ctx := openCtx(t)
	path := filepath.Join(t.TempDir(), "sub", "x.db")
	s, err := store.Open(ctx, store.Config{URL: "sqlite://" + path, Schema: "tenant_a"})
	if !errors.Is(err, store.ErrSchemaOnSQLite) {
		t.Errorf("Open(sqlite, schema) = %v, %v; want ErrSchemaOnSQLite", s, err)
	}
	for _, u := range []string{"", "mysql://u:Hunter2xyz@localhost/db", "cloacina.db", "sqlite://"} {
		s, err := store.Open(ctx, store.Config{URL: u})
		if !errors.Is(err, store.ErrUnsupportedURL) {
			t.Errorf("Open(%q) = %v, %v; want ErrUnsupportedURL", store.Redact(u), s, err)
		}
		if err != nil && strings.Contains(err.Error(), "Hunter2xyz") {
			t.Errorf("Open's error shows the password: %v", err)
		}
	}
}

// useStore checks that s can write and read.
func useStore(t *testing.T, s store.Store) string {
	t.Helper()
	ctx := openCtx(t)
	id := uuid.Must(uuid.NewV7()).String()
	e := &store.Execution{ID: id, WorkflowName: "wf", WorkflowVersion: "v1", Status: "Pending", Input: []byte(`{}`), CreatedAt: time.Now()}
	if err := s.Write(ctx, func(tx store.Tx) error { return tx.InsertExecutions(ctx, []*store.Execution{e}, nil) }); err != nil {
		t.Fatalf("InsertExecutions: %v", err)
	}
	if _, err := s.GetExecution(ctx, id); err != nil {
		t.Fatalf("GetExecution: %v", err)
	}
	return id
}

func TestOpenCreatesSQLiteFolders(t *testing.T) {
	ctx := openCtx(t)
	path := filepath.Join(t.TempDir(), "a", "b", "c", "cloacina.db")
	s, err := store.Open(ctx, store.Config{URL: "sqlite://" + path})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if st, err := os.Stat(path); err != nil || !st.Mode().IsRegular() {
		t.Errorf("database file %s: %v", path, err)
	}
	useStore(t, s)
}

func TestOpenCreatesSQLiteFoldersRelative(t *testing.T) {
	ctx := openCtx(t)
	dir := t.TempDir()
	t.Chdir(dir)
	s, err := store.Open(ctx, store.Config{URL: "sqlite://data/nested/cloacina.db"})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if _, err := os.Stat(filepath.Join(dir, "data", "nested", "cloacina.db")); err != nil {
		t.Errorf("database file: %v", err)
	}
	useStore(t, s)
}

func TestOpenSQLiteReopenAndConcurrentOpen(t *testing.T) {
	u := "sqlite://" + filepath.Join(t.TempDir(), "x.db")
	var wg sync.WaitGroup
	stores := make([]store.Store, 4)
	errs := make([]error, len(stores))
	for i := range stores {
		wg.Go(func() { stores[i], errs[i] = store.Open(context.Background(), store.Config{URL: u}) })
	}
	wg.Wait()
	for i, s := range stores {
		if errs[i] != nil {
			t.Errorf("concurrent Open %d: %v", i, errs[i])
			continue
		}
		useStore(t, s)
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
}

func postgresURL(t *testing.T) string {
	t.Helper()
	return pgtest.Shared(t).NewDatabase(t)
}

func openPG(t *testing.T, u, schema string) store.Store {
	t.Helper()
	s, err := store.Open(openCtx(t), store.Config{URL: u, Schema: schema})
	if err != nil {
		t.Fatalf("Open(schema %q): %v", schema, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestPostgresSchemasIsolated(t *testing.T) {
	u := postgresURL(t)
	ctx := openCtx(t)
	schemas := []string{"", "tenant_a", "tenant_b", "Tenant_A"}
	stores := map[string]store.Store{}
	ids := map[string]string{}
	for _, sc := range schemas {
		stores[sc] = openPG(t, u, sc)
	}
	for _, sc := range schemas {
		s := stores[sc]
		id := uuid.Must(uuid.NewV7()).String()
		ids[sc] = id
		e := &store.Execution{ID: id, WorkflowName: "wf", WorkflowVersion: "v1", Status: "Pending", Input: []byte(`{}`), CreatedAt: time.Now()}
		task := &store.Task{ExecutionID: id, WorkflowName: "wf", Name: "t", Status: "Ready", ReadyAt: time.Now().Add(-time.Second)}
		if err := s.Write(ctx, func(tx store.Tx) error { return tx.InsertExecutions(ctx, []*store.Execution{e}, []*store.Task{task}) }); err != nil {
			t.Fatalf("schema %q: InsertExecutions: %v", sc, err)
		}
	}
	for _, sc := range schemas {
		s := stores[sc]
		for _, other := range schemas {
			_, err := s.GetExecution(ctx, ids[other])
			if other == sc && err != nil {
				t.Errorf("schema %q: GetExecution of its own execution: %v", sc, err)
			}
			if other != sc && !errors.Is(err, store.ErrNotFound) {
				t.Errorf("schema %q: GetExecution of schema %q's execution: err = %v, want ErrNotFound", sc, other, err)
			}
		}
		list, err := s.ListExecutions(ctx, store.ExecutionFilter{})
		if err != nil || len(list) != 1 || list[0].ID != ids[sc] {
			t.Errorf("schema %q: ListExecutions = %d executions, %v; want only its own", sc, len(list), err)
		}
		m, err := s.Metrics(ctx)
		if err != nil || m.Total != 1 || m.ReadyTasks != 1 {
			t.Errorf("schema %q: Metrics = %+v, %v; want 1 execution, 1 ready task", sc, m, err)
		}
	}
	// A claim in one schema takes only that schema's task.
	var claimed []*store.Task
	if err := stores["tenant_a"].Write(ctx, func(tx store.Tx) error {
		var err error
		claimed, err = tx.ClaimTasks(ctx, store.ClaimParams{Worker: "w", Now: time.Now(), Limit: 10, Workflows: []string{"wf"}})
		return err
	}); err != nil {
		t.Fatalf("ClaimTasks: %v", err)
	}
	if len(claimed) != 1 || claimed[0].ExecutionID != ids["tenant_a"] {
		t.Errorf("claim in tenant_a took %d tasks, want tenant_a's one", len(claimed))
	}
	if m, err := stores["tenant_b"].Metrics(ctx); err != nil || m.ReadyTasks != 1 || m.RunningTasks != 0 {
		t.Errorf("tenant_b after a claim in tenant_a: %+v, %v", m, err)
	}
}

func TestPostgresConcurrentOpen(t *testing.T) {
	u := postgresURL(t)
	for round, schema := range []string{"tenant_new", "", "tenant_other"} {
		t.Run(fmt.Sprintf("schema %q", schema), func(t *testing.T) {
			const n = 4
			stores := make([]store.Store, n)
			errs := make([]error, n)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					<-start
					stores[i], errs[i] = store.Open(context.Background(), store.Config{URL: u, Schema: schema})
				})
			}
			close(start)
			wg.Wait()
			for i, s := range stores {
				if errs[i] != nil {
					t.Errorf("round %d: concurrent Open %d: %v", round, i, errs[i])
					continue
				}
				t.Cleanup(func() { s.Close() })
			}
			if t.Failed() {
				return
			}
			id := useStore(t, stores[0])
			for i, s := range stores[1:] {
				if _, err := s.GetExecution(context.Background(), id); err != nil {
					t.Errorf("store %d does not see what store 0 wrote: %v", i+1, err)
				}
			}
		})
	}
}

func TestPostgresInvalidSchema(t *testing.T) {
	u := postgresURL(t)
	for _, schema := range []string{"a;DROP SCHEMA x", "public", "PUBLIC", "pg_x", "1x", "a-b", `a"b`} {
		s, err := store.Open(openCtx(t), store.Config{URL: u, Schema: schema})
		if !errors.Is(err, store.ErrInvalidSchema) {
			if s != nil {
				s.Close()
			}
			t.Errorf("Open(postgres, schema %q) = %v; want ErrInvalidSchema", schema, err)
		}
	}
	// Nothing was created: the default schema still opens empty.
	s := openPG(t, u, "")
	if list, err := s.ListExecutions(context.Background(), store.ExecutionFilter{}); err != nil || len(list) != 0 {
		t.Errorf("ListExecutions = %d, %v", len(list), err)
	}
}

func TestPostgresBadPassword(t *testing.T) {
	srv := pgtest.Shared(t)
	u, err := url.Parse(srv.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	const wrong = "Wr0ngPassw0rd-zq8x"
	u.User = url.UserPassword(srv.AdminUser(), wrong)
	for _, schema := range []string{"", "tenant_a"} {
		s, err := store.Open(openCtx(t), store.Config{URL: u.String(), Schema: schema})
		if err == nil {
			s.Close()
			t.Fatalf("Open with a wrong password succeeded")
		}
		t.Logf("error: %v", err)
		if strings.Contains(err.Error(), wrong) {
			t.Errorf("Open's error shows the password: %v", err)
		}
		if strings.Contains(err.Error(), srv.AdminPassword()) {
			t.Errorf("Open's error shows the admin password: %v", err)
		}
	}
}

// TestOpenSQLiteAwkwardPath opens files whose paths hold the characters
// SQLite's URI file names give a meaning to: each must open the file it
// names, not a prefix of it.
func TestOpenSQLiteAwkwardPath(t *testing.T) {
	for _, name := range []string{"a#b", "50%41", "x y"} {
		dir := filepath.Join(t.TempDir(), name)
		path := filepath.Join(dir, "t.db")
		st, err := store.Open(context.Background(), store.Config{URL: "sqlite://" + path})
		if err != nil {
			t.Fatalf("open %q: %v", path, err)
		}
		st.Close()
		if _, err := os.Stat(path); err != nil {
			t.Errorf("%q was not created: %v", path, err)
		}
	}
}

// TestPostgresRefuseForeignSchema: with RefuseForeign, a schema that
// exists without the engine's migrations table is refused in the
// transaction that would migrate it, and left as it was; a new schema and
// the engine's own schema open as before. Without it (a program handing
// the engine a schema it prepared), the schema is migrated.
func TestPostgresRefuseForeignSchema(t *testing.T) {
	u := postgresURL(t)
	ctx := openCtx(t)
	db, err := store.Connect(ctx, store.Config{URL: u})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	admin, err := store.Connect(ctx, store.Config{URL: u})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	for _, q := range []string{
		`CREATE SCHEMA appdata`, `CREATE TABLE appdata.orders (id int)`, `INSERT INTO appdata.orders VALUES (7)`,
		`CREATE SCHEMA prepared`,
		`CREATE SCHEMA viewonly`, `CREATE VIEW viewonly.cloacina_migrations AS SELECT 1 AS version`,
	} {
		if err := store.ExecForTest(ctx, admin, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	_, err = db.StoreWith(ctx, "appdata", store.StoreOptions{RefuseForeign: true})
	if !errors.Is(err, store.ErrForeignSchema) {
		t.Fatalf("StoreWith(appdata, RefuseForeign) = %v, want ErrForeignSchema", err)
	}
	if ok, err := db.SchemaExists(ctx, "appdata"); err != nil || ok {
		t.Errorf("after the refusal appdata holds the engine's tables: %v, %v", ok, err)
	}
	var n int
	if err := store.QueryIntForTest(ctx, admin, `SELECT count(*) FROM appdata.orders`, &n); err != nil || n != 1 {
		t.Errorf("appdata.orders after the refusal: %d rows, %v; want 1", n, err)
	}
	// A view named like the marker is no marker: refused, not listed.
	if _, err := db.StoreWith(ctx, "viewonly", store.StoreOptions{RefuseForeign: true}); !errors.Is(err, store.ErrForeignSchema) {
		t.Errorf("StoreWith(viewonly, RefuseForeign) = %v, want ErrForeignSchema", err)
	}
	if ok, err := db.SchemaExists(ctx, "viewonly"); err != nil || ok {
		t.Errorf("SchemaExists(viewonly) = %v, %v; want false", ok, err)
	}
	// A new schema, then the engine's own schema, open with the option.
	for range 2 {
		s, err := db.StoreWith(ctx, "fresh_tenant", store.StoreOptions{RefuseForeign: true})
		if err != nil {
			t.Fatalf("StoreWith(fresh_tenant, RefuseForeign): %v", err)
		}
		s.Close()
	}
	// Without the option, an empty schema prepared by the program is used.
	s, err := db.StoreWith(ctx, "prepared", store.StoreOptions{})
	if err != nil {
		t.Fatalf("StoreWith(prepared): %v", err)
	}
	s.Close()
	if ok, err := db.SchemaExists(ctx, "prepared"); err != nil || !ok {
		t.Errorf("prepared was not migrated: %v, %v", ok, err)
	}
}
