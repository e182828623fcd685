package server

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/internal/pgtest"
	"github.com/cloacina-go/cloacina/tenant"
)

// TestForeignStorageIsNeverAdopted: a tenant id naming storage that the
// service did not create (an application's schema, a foreign file in the
// data folder) is refused with 409 foreign_storage on creation, is not
// listed, and DELETE leaves it alone.
func TestForeignStorageIsNeverAdopted(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		foreign := filepath.Join(dir, "appdata.db")
		content := []byte("not ours: an application's own file\n")
		if err := os.WriteFile(foreign, content, 0o600); err != nil {
			t.Fatal(err)
		}
		e := newEnv(t, "sqlite", envOpts{manager: func(t testing.TB, opts ...cloacina.Option) tenant.Manager {
			m, err := tenant.NewSQLiteManager(dir, opts...)
			if err != nil {
				t.Fatal(err)
			}
			return m
		}})
		checkForeignRefused(e)
		if b, err := os.ReadFile(foreign); err != nil || !bytes.Equal(b, content) {
			t.Errorf("the foreign file changed: %q, %v", b, err)
		}
	})
	t.Run("postgres", func(t *testing.T) {
		u := pgtest.Shared(t).NewDatabase(t)
		ctx := testCtx(t)
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		for _, q := range []string{`CREATE SCHEMA appdata`, `CREATE TABLE appdata.orders (id int)`, `INSERT INTO appdata.orders VALUES (7)`} {
			if _, err := conn.Exec(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		e := newEnv(t, "postgres", envOpts{manager: func(t testing.TB, opts ...cloacina.Option) tenant.Manager {
			m, err := tenant.NewPostgresManager(ctx, u, opts...)
			if err != nil {
				t.Fatal(err)
			}
			return m
		}})
		checkForeignRefused(e)
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM appdata.orders`).Scan(&n); err != nil || n != 1 {
			t.Errorf("appdata.orders: %d rows, %v; want 1", n, err)
		}
		var tables int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema = 'appdata'`).Scan(&tables); err != nil || tables != 1 {
			t.Errorf("appdata holds %d tables, %v; want only the application's", tables, err)
		}
	})
}

func checkForeignRefused(e *env) {
	e.t.Helper()
	got := e.fail(req{method: "POST", path: "/tenants", key: testAdminKey, body: `{"tenant_id":"appdata"}`}, http.StatusConflict, codeForeignStorage)
	if !strings.Contains(got.Error.Message, "not created by this service") {
		e.t.Errorf("409 message %q does not say the storage is not the service's", got.Error.Message)
	}
	rec := e.do(req{method: "GET", path: "/tenants", key: testAdminKey})
	if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), "appdata") {
		e.t.Errorf("GET /tenants = %d %s; want 200 without appdata", rec.Code, rec.Body.String())
	}
	e.fail(req{method: "DELETE", path: "/tenants/appdata", key: testAdminKey}, http.StatusNotFound, codeTenantNotFound)
}
