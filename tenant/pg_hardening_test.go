package tenant_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/internal/pgtest"
	"github.com/cloacina-go/cloacina/tenant"
)

// TestPostgresForeignSchemasAreNeverAdopted: an application's schema named
// like a tenant is refused (ErrForeignStorage), gets none of the engine's
// tables, is neither listed nor counted, and neither Remove nor
// Engine.DropSchema drops it.
func TestPostgresForeignSchemasAreNeverAdopted(t *testing.T) {
	dbURL := pgtest.Shared(t).NewDatabase(t)
	query(t, dbURL, `CREATE SCHEMA appdata; CREATE TABLE appdata.orders (id int); INSERT INTO appdata.orders VALUES (7)`)
	m := newPGManager(t, dbURL)
	ctx := testCtx(t, time.Minute)
	if _, err := m.Execute(ctx, "mine", "pipeline", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Runner(ctx, "appdata"); !errors.Is(err, tenant.ErrForeignStorage) {
		t.Errorf("Runner(appdata): %v; want ErrForeignStorage", err)
	}
	if _, err := m.Execute(ctx, "appdata", "pipeline", nil); !errors.Is(err, tenant.ErrForeignStorage) {
		t.Errorf("Execute(appdata): %v; want ErrForeignStorage", err)
	}
	if ok, err := m.Exists(ctx, "appdata"); err != nil || ok {
		t.Errorf("Exists(appdata) = %v, %v; want false", ok, err)
	}
	if ids, err := m.Tenants(ctx); err != nil || !slices.Equal(ids, []string{"mine"}) {
		t.Errorf("Tenants = %q, %v; want [mine]", ids, err)
	}
	if err := m.Remove(ctx, "appdata"); !errors.Is(err, tenant.ErrForeignStorage) {
		t.Errorf("Remove(appdata): %v; want ErrForeignStorage", err)
	}
	// The drop itself checks the marker, in its own transaction.
	if _, err := m.Engine().DropSchema(ctx, "appdata"); err == nil {
		t.Error("Engine.DropSchema(appdata) dropped a schema without the engine's tables")
	}
	if got := query(t, dbURL, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'appdata' ORDER BY 1`); !slices.Equal(got, []string{"orders"}) {
		t.Errorf("appdata's tables = %q; want only [orders]", got)
	}
	if got := query(t, dbURL, `SELECT id::text FROM appdata.orders`); !slices.Equal(got, []string{"7"}) {
		t.Errorf("appdata.orders = %q; want [7]", got)
	}
	if err := m.Remove(ctx, "mine"); err != nil {
		t.Errorf("Remove(mine): %v", err)
	}
}

// pgRole creates a login role with the given attributes and returns its
// URL for dbURL's database; the role is dropped when the test ends.
func pgRole(t *testing.T, dbURL, attrs string) (string, string) {
	t.Helper()
	role := admName("priv")
	password := rand.Text()
	query(t, dbURL, fmt.Sprintf("CREATE ROLE %s LOGIN %s PASSWORD '%s'", admIdent(role), attrs, password))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn := admConnect(t, dbURL)
		defer conn.Close(ctx)
		// Schemas and tenant roles the role made, then the role.
		_, _ = conn.Exec(ctx, "DROP OWNED BY "+admIdent(role)+" CASCADE")
		if _, err := conn.Exec(ctx, "DROP ROLE "+admIdent(role)); err != nil {
			t.Logf("dropping role %s: %v", role, err)
		}
	})
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(role, password)
	return role, u.String()
}

// TestPrivilegeChecksAtStart: NewPostgresManager needs CREATE on the
// database, NewAdmin needs CREATEROLE and CREATE on the database; a role
// lacking one is refused at start with a PrivilegeError naming it, and the
// same role with the privilege starts.
func TestPrivilegeChecksAtStart(t *testing.T) {
	dbURL := pgtest.Shared(t).NewDatabase(t)
	dbName := strings.TrimPrefix(mustParse(t, dbURL).Path, "/")
	ctx := testCtx(t, time.Minute)

	check := func(err error, role, privilege string) {
		t.Helper()
		var pe *tenant.PrivilegeError
		if !errors.Is(err, tenant.ErrMissingPrivilege) || !errors.As(err, &pe) {
			t.Fatalf("err = %v; want a PrivilegeError", err)
		}
		if pe.Role != role || pe.Privilege != privilege || !strings.Contains(err.Error(), `"`+role+`" lacks `+privilege) {
			t.Errorf("err = %v (%+v); want role %s lacking %s", err, pe, role, privilege)
		}
	}

	// Plain mode.
	role, roleURL := pgRole(t, dbURL, "")
	_, err := tenant.NewPostgresManager(ctx, roleURL, cloacina.WithLogger(discardLogger))
	check(err, role, "CREATE")
	query(t, dbURL, "GRANT CREATE ON DATABASE "+admIdent(dbName)+" TO "+admIdent(role))
	m := newPGManager(t, roleURL)
	if _, err := m.Execute(ctx, "acme", "pipeline", nil); err != nil {
		t.Fatalf("Execute as a non-superuser with CREATE on the database: %v", err)
	}
	closeManager(t, m)

	// Admin: CREATEROLE without CREATE on the database, then the reverse.
	adminRole, adminURL := pgRole(t, dbURL, "CREATEROLE")
	_, err = tenant.NewAdmin(ctx, adminURL)
	check(err, adminRole, "CREATE")
	noRoles, noRolesURL := pgRole(t, dbURL, "NOCREATEROLE")
	query(t, dbURL, "GRANT CREATE ON DATABASE "+admIdent(dbName)+" TO "+admIdent(noRoles))
	_, err = tenant.NewAdmin(ctx, noRolesURL)
	check(err, noRoles, "CREATEROLE")
	query(t, dbURL, "GRANT CREATE ON DATABASE "+admIdent(dbName)+" TO "+admIdent(adminRole))
	a, err := tenant.NewAdmin(ctx, adminURL)
	if err != nil {
		t.Fatalf("NewAdmin with CREATEROLE and CREATE: %v", err)
	}
	defer a.Close()
	if err := a.CheckPrivileges(ctx); err != nil {
		t.Errorf("CheckPrivileges: %v", err)
	}
	schema, user := admName("tenant_p"), admName("user_p")
	if _, err := a.CreateTenant(ctx, tenant.TenantConfig{Schema: schema, Username: user}); err != nil {
		t.Fatalf("CreateTenant as a non-superuser admin: %v", err)
	}
	if err := a.RemoveTenant(ctx, schema, user); err != nil {
		t.Errorf("RemoveTenant: %v", err)
	}
}

func mustParse(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestSecureRolePrefixSeparatesDeployments: two deployments on two
// databases of one server create the same tenant id; role names are
// cluster-wide, so with the default prefix the second one is refused,
// and with a prefix of its own it works.
func TestSecureRolePrefixSeparatesDeployments(t *testing.T) {
	one, two := newSecEnv(t), newSecEnv(t)
	ctx := testCtx(t, 2*time.Minute)
	id := admName("acme")
	one.mu.Lock()
	one.tenants = append(one.tenants, id)
	one.mu.Unlock()
	m1 := one.manager(t, tenant.PoolPerTenant, secOpts{})
	if _, err := m1.CreateTenant(ctx, id); err != nil {
		t.Fatal(err)
	}
	m2 := two.manager(t, tenant.PoolPerTenant, secOpts{})
	if _, err := m2.CreateTenant(ctx, id); !errors.Is(err, tenant.ErrTenantExists) {
		t.Fatalf("the second deployment's CreateTenant with the default prefix: %v; want ErrTenantExists", err)
	}
	prefix := admName("dep2") + "_"
	m3 := two.manager(t, tenant.PoolPerTenant, secOpts{cfg: func(c *tenant.SecureConfig) { c.RolePrefix = prefix }})
	c, err := m3.CreateTenant(ctx, id)
	if err != nil {
		t.Fatalf("CreateTenant with RolePrefix %q: %v", prefix, err)
	}
	t.Cleanup(func() {
		if err := two.admin.RemoveTenant(context.Background(), c.Schema, c.Username); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	if c.Username != prefix+id || c.Schema != "tenant_"+id {
		t.Errorf("credentials name role %q schema %q; want %s%s and tenant_%s", c.Username, c.Schema, prefix, id, id)
	}
	secRun(ctx, t, m1, id)
	secRun(ctx, t, m3, id)
	if err := m3.Remove(ctx, id); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if two.roleExists(t, prefix+id) || !one.roleExists(t, "user_"+id) {
		t.Error("Remove with a prefix dropped the wrong role")
	}
	for _, bad := range []string{"1x_", "a-b_", "a b", strings.Repeat("p", 33)} {
		_, err := tenant.NewSecureManager(ctx, tenant.SecureConfig{Mode: tenant.PoolPerTenant, Admin: two.admin,
			Credentials: tenant.NewMemoryCredentialStore(), RolePrefix: bad})
		if !errors.Is(err, cloacina.ErrInvalidOption) {
			t.Errorf("RolePrefix %q: %v; want ErrInvalidOption", bad, err)
		}
	}
}

// TestSecureManagerRemoveCancelsTasks: in both modes, Remove cancels a
// task that runs until cancelled, returns promptly, and the tenant's
// schema, role and credentials are gone.
func TestSecureManagerRemoveCancelsTasks(t *testing.T) {
	for _, mode := range bothModes {
		t.Run(mode.String(), func(t *testing.T) {
			env := newSecEnv(t)
			ctx := testCtx(t, 2*time.Minute)
			never := make(chan struct{})
			block, started := blockWorkflow(never)
			store := tenant.NewMemoryCredentialStore()
			m := env.manager(t, mode, secOpts{store: store, workfls: []*cloacina.Workflow{block}})
			id, c := env.create(t, m, "rmc")
			if _, err := m.ExecuteAsync(ctx, id, "block", nil); err != nil {
				t.Fatal(err)
			}
			<-started
			rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			begin := time.Now()
			if err := m.Remove(rctx, id); err != nil {
				t.Fatalf("Remove: %v", err)
			}
			if took := time.Since(begin); took > 5*time.Second {
				t.Errorf("Remove took %v: it waited for the task instead of cancelling it", took)
			}
			if env.schemaExists(t, c.Schema) || env.roleExists(t, c.Username) {
				t.Error("the schema or role is still there")
			}
			if _, err := store.Get(ctx, id); !errors.Is(err, tenant.ErrTenantNotFound) {
				t.Errorf("credentials after Remove: %v", err)
			}
		})
	}
}
