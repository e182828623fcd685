package tenant_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/internal/pgtest"
	"github.com/cloacina-go/cloacina/tenant"
)

// admEnv is what the subtests of TestAdmin share: one throwaway cluster,
// one database, an Admin on it and a superuser connection for checks.
type admEnv struct {
	srv    *pgtest.Server
	dbURL  string // superuser URL of the database
	dbName string
	admin  *tenant.Admin
	super  *pgx.Conn
}

// TestAdmin runs the Admin's tests against a real PostgreSQL cluster with
// scram-sha-256 password authentication, started once for all subtests.
func TestAdmin(t *testing.T) {
	srv := pgtest.Start(t)
	dbURL := srv.NewDatabase(t)
	ctx := admCtx(t, time.Minute)
	admin, err := tenant.NewAdmin(ctx, dbURL)
	if err != nil {
		t.Fatalf("NewAdmin: %v", err)
	}
	t.Cleanup(admin.Close)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	env := &admEnv{srv: srv, dbURL: dbURL, dbName: strings.TrimPrefix(u.Path, "/"), admin: admin,
		super: admConnect(t, dbURL)}
	var version string
	if err := env.super.QueryRow(ctx, "SHOW server_version").Scan(&version); err == nil {
		t.Logf("PostgreSQL %s", version)
	}

	t.Run("TenantsRunWorkflowsInIsolation", env.testTenantsRunWorkflowsInIsolation)
	t.Run("LaterTablesAreGranted", env.testLaterTablesAreGranted)
	t.Run("Migrate", env.testMigrate)
	t.Run("Analyze", env.testAnalyze)
	t.Run("RotatePassword", env.testRotatePassword)
	t.Run("ListTenants", env.testListTenants)
	t.Run("RemoveTenant", env.testRemoveTenant)
	t.Run("RemoveTenantRefusesNonTenants", env.testRemoveTenantRefusesNonTenants)
	t.Run("ExistingRoleOrSchemaChangesNothing", env.testExistingRoleOrSchema)
	t.Run("FailureAfterRoleCreationLeavesNothing", env.testFailureAfterRoleCreation)
	t.Run("ConcurrentCreatesOfOneTenant", env.testConcurrentCreates)
	t.Run("InvalidNamesRunNoSQL", env.testInvalidNames)
	t.Run("InvalidPassword", env.testInvalidPassword)
	t.Run("PasswordIsSentAsSCRAMVerifier", env.testPasswordIsSentAsVerifier)
	t.Run("SecretsAreNotPrinted", env.testSecretsAreNotPrinted)
	t.Run("FailedConnectionsHidePasswords", env.testFailedConnectionsHidePasswords)
	t.Run("NonSuperuserAdmin", env.testNonSuperuserAdmin)
	t.Run("ConnectionStringDropsAdminCredentials", env.testConnectionStringDropsAdminCredentials)
}

// TestAdminRefusesNonPostgresURLs needs no server: the URL is refused
// before any connection.
func TestAdminRefusesNonPostgresURLs(t *testing.T) {
	ctx := admCtx(t, 10*time.Second)
	for _, u := range []string{
		"sqlite://data/app.db",
		"mysql://root:Sup3rSecret@localhost/db",
		"host=localhost user=admin password=Sup3rSecret",
		"",
	} {
		a, err := tenant.NewAdmin(ctx, u)
		if !errors.Is(err, cloacina.ErrUnsupportedDatabase) {
			if a != nil {
				a.Close()
			}
			t.Errorf("NewAdmin(%q) = %v; want ErrUnsupportedDatabase", cloacina.RedactURL(u), err)
			continue
		}
		if strings.Contains(err.Error(), "Sup3rSecret") {
			t.Errorf("NewAdmin's error shows the password: %v", err)
		}
	}
}

// testTenantsRunWorkflowsInIsolation creates two tenants with generated
// passwords, runs a workflow as each, and checks that neither role can
// reach the other's schema, create anything, or holds any role attribute.
func (env *admEnv) testTenantsRunWorkflowsInIsolation(t *testing.T) {
	ctx := admCtx(t, 2*time.Minute)
	a := env.create(t, tenant.TenantConfig{Schema: admName("tenant_a"), Username: admName("user_a")})
	b := env.create(t, tenant.TenantConfig{Schema: admName("tenant_b"), Username: admName("user_b")})
	for _, c := range []*tenant.TenantCredentials{a, b} {
		admCheckGeneratedPassword(t, c.Password)
	}
	if a.Password == b.Password {
		t.Fatal("two tenants got the same generated password")
	}

	wf := cloacina.NewWorkflow("admin_flow").
		Task("first", func(_ context.Context, c *cloacina.Context) error {
			v, _ := c.Get("tenant")
			return c.Set("seen", v)
		}).
		Task("second", func(_ context.Context, c *cloacina.Context) error {
			return c.Set("second", "done")
		}, cloacina.DependsOn("first")).
		MustBuild()
	for _, c := range []*tenant.TenantCredentials{a, b} {
		r := env.startTenantRunner(t, c, wf)
		res, err := r.Execute(ctx, "admin_flow", map[string]any{"tenant": c.Schema})
		if err != nil {
			t.Fatalf("Execute as %s: %v", c.Username, err)
		}
		if res.Status != cloacina.ExecutionCompleted {
			t.Fatalf("Execute as %s: status %s (%s); want Completed", c.Username, res.Status, res.Error)
		}
		if seen, _ := res.Context.Get("seen"); seen != c.Schema {
			t.Errorf("Execute as %s: seen = %v; want %s", c.Username, seen, c.Schema)
		}
		if err := r.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	}
	// Each schema holds its own execution only.
	for _, c := range []*tenant.TenantCredentials{a, b} {
		var n int
		err := env.super.QueryRow(ctx, "SELECT count(*) FROM "+admIdent(c.Schema)+".executions WHERE input LIKE '%'||$1||'%'", c.Schema).Scan(&n)
		if err != nil || n != 1 {
			t.Errorf("executions of %s in its schema: %d, %v; want 1", c.Schema, n, err)
		}
	}

	for _, pair := range [][2]*tenant.TenantCredentials{{a, b}, {b, a}} {
		me, other := pair[0], pair[1]
		conn := admConnect(t, me.ConnectionString)
		mine, theirs := admIdent(me.Schema), admIdent(other.Schema)
		// Its own schema: reads and writes work (rolled back).
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "SELECT count(*) FROM "+mine+".executions"); err != nil {
			t.Errorf("%s reading its own executions: %v", me.Username, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+mine+".events (execution_id, type, created_at) VALUES (gen_random_uuid(), 'x', 0)"); err != nil {
			t.Errorf("%s writing its own events (sequence included): %v", me.Username, err)
		}
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		denied := []string{
			"SELECT * FROM " + theirs + ".executions",
			"INSERT INTO " + theirs + ".executions (id, workflow_name, workflow_version, status, input, created_at, updated_at) VALUES (gen_random_uuid(), 'w', '1', 'Pending', '{}', 0, 0)",
			"UPDATE " + theirs + ".tasks SET status = 'Failed'",
			"DELETE FROM " + theirs + ".events",
			"SELECT nextval('" + strings.ReplaceAll(theirs, "'", "''") + ".tasks_id_seq')",
			"CREATE TABLE public.intruder (a int)",
			"CREATE TABLE " + mine + ".intruder (a int)",
			"CREATE SCHEMA intruder",
			"DROP TABLE " + mine + ".tasks",
			"ALTER TABLE " + mine + ".tasks ADD COLUMN x int",
			"TRUNCATE " + mine + ".events",
			"INSERT INTO " + mine + ".cloacina_migrations VALUES (999, 'fake', 0)",
			"DELETE FROM " + mine + ".cloacina_migrations",
			"UPDATE " + mine + ".cloacina_migrations SET version = version",
		}
		for _, q := range denied {
			_, err := conn.Exec(ctx, q)
			if code := admSQLState(err); code != "42501" {
				t.Errorf("as %s: %s: err = %v; want SQLSTATE 42501 (insufficient_privilege)", me.Username, q, err)
			}
		}
		var versions int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+mine+".cloacina_migrations").Scan(&versions); err != nil || versions == 0 {
			t.Errorf("%s reading its migrations table: %d rows, %v", me.Username, versions, err)
		}

		var super, createDB, createRole, replication, bypassRLS, inherit, login bool
		err = env.super.QueryRow(ctx, `SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolinherit, rolcanlogin
FROM pg_roles WHERE rolname = $1`, me.Username).Scan(&super, &createDB, &createRole, &replication, &bypassRLS, &inherit, &login)
		if err != nil {
			t.Fatal(err)
		}
		if super || createDB || createRole || replication || bypassRLS || inherit || !login {
			t.Errorf("role %s: super=%v createdb=%v createrole=%v replication=%v bypassrls=%v inherit=%v login=%v; want only login",
				me.Username, super, createDB, createRole, replication, bypassRLS, inherit, login)
		}
		var dbCreate, schemaCreate, publicCreate bool
		err = env.super.QueryRow(ctx, `SELECT has_database_privilege($1, current_database(), 'CREATE'),
  has_schema_privilege($1, $2, 'CREATE'), has_schema_privilege($1, 'public', 'CREATE')`,
			me.Username, me.Schema).Scan(&dbCreate, &schemaCreate, &publicCreate)
		if err != nil {
			t.Fatal(err)
		}
		if dbCreate || schemaCreate || publicCreate {
			t.Errorf("role %s: CREATE on database=%v, own schema=%v, public=%v; want none", me.Username, dbCreate, schemaCreate, publicCreate)
		}
	}
}

// startTenantRunner starts a runner as the tenant, on its connection
// string and with nothing but the tenant's privileges: the runner's start
// only reads the migrations table of an up-to-date schema.
func (env *admEnv) startTenantRunner(t *testing.T, c *tenant.TenantCredentials, wfs ...*cloacina.Workflow) *cloacina.Runner {
	t.Helper()
	ctx := admCtx(t, time.Minute)
	r, err := cloacina.NewRunnerWithSchema(ctx, c.ConnectionString, c.Schema, cloacina.WithWorkflows(wfs...),
		cloacina.WithLogger(slog.New(slog.DiscardHandler)), cloacina.WithPollInterval(50*time.Millisecond))
	if err != nil {
		t.Fatalf("starting a runner as tenant %s: %v", c.Username, err)
	}
	t.Cleanup(func() { _ = r.Shutdown(context.Background()) })
	return r
}

// testLaterTablesAreGranted checks the default privileges: a table and
// sequence the admin role adds to a tenant schema later, as a later
// migration would, are usable by the tenant without further grants.
func (env *admEnv) testLaterTablesAreGranted(t *testing.T) {
	ctx := admCtx(t, time.Minute)
	c := env.create(t, tenant.TenantConfig{Schema: admName("later"), Username: admName("later_user")})
	sch := admIdent(c.Schema)
	env.exec(t, "CREATE TABLE "+sch+".later (id bigserial PRIMARY KEY, a int)") // as the admin role
	conn := admConnect(t, c.ConnectionString)
	for _, q := range []string{
		"INSERT INTO " + sch + ".later (a) VALUES (1)",
		"UPDATE " + sch + ".later SET a = 2",
		"SELECT * FROM " + sch + ".later",
		"DELETE FROM " + sch + ".later",
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Errorf("as the tenant: %s: %v", q, err)
		}
	}
	if _, err := conn.Exec(ctx, "TRUNCATE "+sch+".later"); admSQLState(err) != "42501" {
		t.Errorf("as the tenant: TRUNCATE a later table: %v; want SQLSTATE 42501", err)
	}
}

// testMigrate checks Admin.Migrate: a tenant's runner cannot apply
// migrations (cloacina.ErrMigrationRequired); the admin applies them, and
// the tenant can use the tables they create.
// testAnalyze: the admin refreshes a tenant's statistics, which the
// tenant's own role may not.
func (env *admEnv) testAnalyze(t *testing.T) {
	ctx := admCtx(t, time.Minute)
	c := env.create(t, tenant.TenantConfig{Schema: admName("ana"), Username: admName("ana_user")})
	if err := env.admin.Analyze(ctx, c.Schema); err != nil {
		t.Fatalf("Analyze: %v", err)
	}
	var n int
	if err := env.super.QueryRow(ctx, `SELECT count(*) FROM pg_stat_user_tables
WHERE schemaname = $1 AND relname IN ('executions', 'tasks') AND last_analyze IS NOT NULL`, c.Schema).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("%d of the tenant's 2 tables were analyzed", n)
	}
	if err := env.admin.Analyze(ctx, "bad;name"); !errors.Is(err, cloacina.ErrInvalidTenantID) {
		t.Errorf("Analyze(bad;name) = %v; want ErrInvalidTenantID", err)
	}
}

func (env *admEnv) testMigrate(t *testing.T) {
	ctx := admCtx(t, time.Minute)
	c := env.create(t, tenant.TenantConfig{Schema: admName("mig"), Username: admName("mig_user")})
	if n, err := env.admin.Migrate(ctx, c.Schema); err != nil || n != 0 {
		t.Errorf("Migrate of an up-to-date tenant = %d, %v; want 0, nil", n, err)
	}
	// Make the schema look as it did before the first migration.
	sch := admIdent(c.Schema)
	env.exec(t, "DROP TABLE "+sch+".events, "+sch+".tasks, "+sch+".executions")
	env.exec(t, "DELETE FROM "+sch+".cloacina_migrations")
	// And without default privileges, as when a migration is applied by
	// another admin role: Migrate must grant the new tables itself.
	env.exec(t, "ALTER DEFAULT PRIVILEGES IN SCHEMA "+sch+" REVOKE ALL ON TABLES FROM "+admIdent(c.Username))
	env.exec(t, "ALTER DEFAULT PRIVILEGES IN SCHEMA "+sch+" REVOKE ALL ON SEQUENCES FROM "+admIdent(c.Username))

	wf := cloacina.NewWorkflow("admin_mig").
		Task("only", func(context.Context, *cloacina.Context) error { return nil }).
		MustBuild()
	ctxStart, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	r, err := cloacina.NewRunnerWithSchema(ctxStart, c.ConnectionString, c.Schema, cloacina.WithWorkflows(wf),
		cloacina.WithLogger(slog.New(slog.DiscardHandler)))
	if err == nil {
		_ = r.Shutdown(ctx)
		t.Fatal("a runner with the tenant's credentials applied migrations")
	}
	if !errors.Is(err, cloacina.ErrMigrationRequired) {
		t.Errorf("starting a runner on an outdated schema as the tenant: %v; want ErrMigrationRequired", err)
	}

	n, err := env.admin.Migrate(ctx, c.Schema)
	if err != nil || n < 1 {
		t.Fatalf("Migrate = %d, %v; want at least 1 migration applied", n, err)
	}
	if n, err := env.admin.Migrate(ctx, c.Schema); err != nil || n != 0 {
		t.Errorf("Migrate again = %d, %v; want 0, nil", n, err)
	}
	r = env.startTenantRunner(t, c, wf)
	res, err := r.Execute(ctx, "admin_mig", nil)
	if err != nil || res.Status != cloacina.ExecutionCompleted {
		t.Fatalf("Execute after Migrate: %v, %v", res, err)
	}
	conn := admConnect(t, c.ConnectionString)
	if _, err := conn.Exec(ctx, "DELETE FROM "+sch+".cloacina_migrations"); admSQLState(err) != "42501" {
		t.Errorf("the tenant deleting from its migrations table after Migrate: %v; want SQLSTATE 42501", err)
	}

	if _, err := env.admin.Migrate(ctx, admName("mig_none")); !errors.Is(err, tenant.ErrTenantNotFound) {
		t.Errorf("Migrate of a missing schema: %v; want ErrTenantNotFound", err)
	}
	plain := admName("mig_plain")
	env.exec(t, "CREATE SCHEMA "+admIdent(plain))
	if _, err := env.admin.Migrate(ctx, plain); !errors.Is(err, tenant.ErrNotTenant) {
		t.Errorf("Migrate of a non-tenant schema: %v; want ErrNotTenant", err)
	}
	var tables int
	if err := env.super.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = $1", plain).Scan(&tables); err != nil || tables != 0 {
		t.Errorf("Migrate of a non-tenant schema created %d tables (%v)", tables, err)
	}
	if _, err := env.admin.Migrate(ctx, "a;DROP ROLE x"); !errors.Is(err, cloacina.ErrInvalidTenantID) {
		t.Errorf("Migrate of an invalid name: %v; want ErrInvalidTenantID", err)
	}
}

func (env *admEnv) testRotatePassword(t *testing.T) {
	ctx := admCtx(t, time.Minute)
	a := env.create(t, tenant.TenantConfig{Schema: admName("rot_a"), Username: admName("rot_user_a")})
	b := env.create(t, tenant.TenantConfig{Schema: admName("rot_b"), Username: admName("rot_user_b")})

	newPassword, err := env.admin.RotatePassword(ctx, a.Username, "")
	if err != nil {
		t.Fatalf("RotatePassword: %v", err)
	}
	admCheckGeneratedPassword(t, newPassword)
	if newPassword == a.Password {
		t.Fatal("RotatePassword returned the old password")
	}
	err = admTryConnect(ctx, a.ConnectionString)
	if code := admSQLState(err); code != "28P01" {
		t.Errorf("connecting with the old password: %v; want SQLSTATE 28P01 (invalid_password)", err)
	}
	if err != nil && strings.Contains(err.Error(), a.Password) {
		t.Errorf("the failed connection's error shows the password")
	}
	if err := admTryConnect(ctx, admWithPassword(t, a.ConnectionString, newPassword)); err != nil {
		t.Errorf("connecting with the new password: %v", err)
	}
	if err := admTryConnect(ctx, b.ConnectionString); err != nil {
		t.Errorf("the other tenant connecting with its unchanged password: %v", err)
	}

	// A chosen password, with characters that need escaping in a URL and
	// in SQL.
	chosen := `Ch0sen'pa\ss@w:rd/%?#&=" ` + rand.Text()
	got, err := env.admin.RotatePassword(ctx, a.Username, chosen)
	if err != nil || got != chosen {
		t.Fatalf("RotatePassword(chosen) = %v; want the chosen password", err)
	}
	if err := admTryConnect(ctx, admWithPassword(t, a.ConnectionString, chosen)); err != nil {
		t.Errorf("connecting with the chosen password: %v", err)
	}
	if code := admSQLState(admTryConnect(ctx, admWithPassword(t, a.ConnectionString, newPassword))); code != "28P01" {
		t.Errorf("connecting with the previous password: SQLSTATE %q; want 28P01", code)
	}

	if _, err := env.admin.RotatePassword(ctx, admName("nobody"), ""); !errors.Is(err, tenant.ErrTenantNotFound) {
		t.Errorf("RotatePassword of an unknown role: %v; want ErrTenantNotFound", err)
	}
	// A role that is not a tenant's keeps its password.
	plain, plainURL := env.plainRole(t, admName("plain_rot"))
	if _, err := env.admin.RotatePassword(ctx, plain, ""); !errors.Is(err, tenant.ErrNotTenant) {
		t.Errorf("RotatePassword of a non-tenant role: %v; want ErrNotTenant", err)
	}
	if _, err := env.admin.RotatePassword(ctx, env.srv.AdminUser(), ""); !errors.Is(err, tenant.ErrNotTenant) {
		t.Errorf("RotatePassword of the admin role: %v; want ErrNotTenant", err)
	}
	if err := admTryConnect(ctx, plainURL); err != nil {
		t.Errorf("the non-tenant role connecting with its password: %v", err)
	}
}

func (env *admEnv) testListTenants(t *testing.T) {
	ctx := admCtx(t, time.Minute)
	a := env.create(t, tenant.TenantConfig{Schema: admName("list_a"), Username: admName("list_user_a")})
	b := env.create(t, tenant.TenantConfig{Schema: admName("list_b"), Username: admName("list_user_b")})
	// Schemas that are not tenants: one made as a runner makes it, one
	// with a forged marker but another owner.
	plainSchema := admName("list_plain")
	env.exec(t, "CREATE SCHEMA "+admIdent(plainSchema))
	forger, _ := env.plainRole(t, admName("forger"))
	forged := admName("list_forged")
	env.exec(t, "CREATE SCHEMA "+admIdent(forged)+" AUTHORIZATION "+admIdent(forger))
	env.exec(t, "COMMENT ON SCHEMA "+admIdent(forged)+" IS 'cloacina tenant schema: role="+env.srv.AdminUser()+"'")

	got, err := env.admin.ListTenants(ctx)
	if err != nil {
		t.Fatalf("ListTenants: %v", err)
	}
	if !slices.IsSortedFunc(got, func(x, y tenant.TenantInfo) int { return strings.Compare(x.Schema, y.Schema) }) {
		t.Errorf("ListTenants is not sorted: %v", got)
	}
	for _, want := range []tenant.TenantInfo{{Schema: a.Schema, Username: a.Username}, {Schema: b.Schema, Username: b.Username}} {
		if !slices.Contains(got, want) {
			t.Errorf("ListTenants = %v; want it to hold %v", got, want)
		}
	}
	for _, ti := range got {
		if ti.Schema == plainSchema || ti.Schema == forged {
			t.Errorf("ListTenants lists %v, which is not a tenant", ti)
		}
	}
}

func (env *admEnv) testRemoveTenant(t *testing.T) {
	ctx := admCtx(t, time.Minute)
	c := env.create(t, tenant.TenantConfig{Schema: admName("rm"), Username: admName("rm_user")})
	other := env.create(t, tenant.TenantConfig{Schema: admName("rm_other"), Username: admName("rm_other_user")})
	// A tenant connection that is idle does not block the removal.
	conn := admConnect(t, c.ConnectionString)
	if _, err := conn.Exec(ctx, "SELECT count(*) FROM "+admIdent(c.Schema)+".tasks"); err != nil {
		t.Fatal(err)
	}

	if err := env.admin.RemoveTenant(ctx, c.Schema, c.Username); err != nil {
		t.Fatalf("RemoveTenant: %v", err)
	}
	if env.roleExists(t, c.Username) {
		t.Error("the role still exists (pg_roles)")
	}
	if env.schemaExists(t, c.Schema) {
		t.Error("the schema still exists (pg_namespace)")
	}
	var acl int
	if err := env.super.QueryRow(ctx, `SELECT count(*) FROM pg_default_acl d JOIN pg_namespace n ON n.oid = d.defaclnamespace
WHERE n.nspname = $1`, c.Schema).Scan(&acl); err != nil || acl != 0 {
		t.Errorf("default privileges left for the schema: %d, %v", acl, err)
	}
	tenants, err := env.admin.ListTenants(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range tenants {
		if ti.Schema == c.Schema {
			t.Errorf("ListTenants still lists %v", ti)
		}
	}
	err = admTryConnect(ctx, c.ConnectionString)
	if admSQLState(err) != "28P01" {
		t.Errorf("connecting as the removed role: %v; want SQLSTATE 28P01", err)
	}
	if err != nil && strings.Contains(err.Error(), c.Password) {
		t.Error("the failed connection's error shows the password")
	}
	if err := env.admin.RemoveTenant(ctx, c.Schema, c.Username); err != nil {
		t.Errorf("removing the removed tenant again: %v; want nil", err)
	}
	// Half gone: the schema dropped by hand, the role left.
	half := env.create(t, tenant.TenantConfig{Schema: admName("rm_half"), Username: admName("rm_half_user")})
	env.exec(t, "DROP SCHEMA "+admIdent(half.Schema)+" CASCADE")
	if err := env.admin.RemoveTenant(ctx, half.Schema, half.Username); err != nil {
		t.Errorf("RemoveTenant of a tenant without schema: %v", err)
	}
	if env.roleExists(t, half.Username) {
		t.Error("the role of the tenant without schema still exists")
	}
	// The other tenant is untouched.
	if !env.roleExists(t, other.Username) || !env.schemaExists(t, other.Schema) {
		t.Error("RemoveTenant removed another tenant")
	}
	if err := admTryConnect(ctx, other.ConnectionString); err != nil {
		t.Errorf("the other tenant connecting: %v", err)
	}
}

func (env *admEnv) testRemoveTenantRefusesNonTenants(t *testing.T) {
	ctx := admCtx(t, time.Minute)
	a := env.create(t, tenant.TenantConfig{Schema: admName("refuse_a"), Username: admName("refuse_user_a")})
	b := env.create(t, tenant.TenantConfig{Schema: admName("refuse_b"), Username: admName("refuse_user_b")})
	plainSchema := admName("refuse_plain")
	env.exec(t, "CREATE SCHEMA "+admIdent(plainSchema))
	env.exec(t, "CREATE TABLE "+admIdent(plainSchema)+".precious (a int)")
	plainRole, plainURL := env.plainRole(t, admName("refuse_role"))

	for _, tc := range []struct{ schema, user string }{
		{plainSchema, plainRole},         // neither is a tenant's
		{plainSchema, a.Username},        // a non-tenant schema, a tenant's role
		{a.Schema, b.Username},           // a tenant's schema, another tenant's role
		{admName("gone"), plainRole},     // no schema, a non-tenant role
		{admName("gone"), b.Username},    // no schema, a role of another schema
		{a.Schema, env.srv.AdminUser()},  // the admin itself
		{plainSchema, admName("nobody")}, // a non-tenant schema, no role
	} {
		err := env.admin.RemoveTenant(ctx, tc.schema, tc.user)
		if !errors.Is(err, tenant.ErrNotTenant) {
			t.Errorf("RemoveTenant(%s, %s) = %v; want ErrNotTenant", tc.schema, tc.user, err)
		}
	}
	if !env.schemaExists(t, plainSchema) || !env.roleExists(t, plainRole) {
		t.Error("a refused RemoveTenant dropped something")
	}
	if err := admTryConnect(ctx, plainURL); err != nil {
		t.Errorf("the non-tenant role connecting: %v", err)
	}
	for _, c := range []*tenant.TenantCredentials{a, b} {
		if err := admTryConnect(ctx, c.ConnectionString); err != nil || !env.schemaExists(t, c.Schema) {
			t.Errorf("tenant %s after refused removals: connect %v, schema exists %v", c.Schema, err, env.schemaExists(t, c.Schema))
		}
	}
}

func (env *admEnv) testExistingRoleOrSchema(t *testing.T) {
	ctx := admCtx(t, time.Minute)
	// The same tenant twice: refused, and its password still works.
	a := env.create(t, tenant.TenantConfig{Schema: admName("dup"), Username: admName("dup_user")})
	_, err := env.admin.CreateTenant(ctx, tenant.TenantConfig{Schema: a.Schema, Username: a.Username, Password: "An0ther-Passw0rd"})
	if !errors.Is(err, tenant.ErrTenantExists) {
		t.Errorf("creating an existing tenant: %v; want ErrTenantExists", err)
	}
	if err := admTryConnect(ctx, a.ConnectionString); err != nil {
		t.Errorf("the existing tenant connecting with its password: %v", err)
	}

	// The role exists (not a tenant's), the schema does not: refused, and
	// the schema is not created, the role not changed.
	role, roleURL := env.plainRole(t, admName("dup_role"))
	schema := admName("dup_new_schema")
	_, err = env.admin.CreateTenant(ctx, tenant.TenantConfig{Schema: schema, Username: role})
	if !errors.Is(err, tenant.ErrTenantExists) {
		t.Errorf("CreateTenant with an existing role: %v; want ErrTenantExists", err)
	}
	if env.schemaExists(t, schema) {
		t.Error("CreateTenant with an existing role created the schema")
	}
	if err := admTryConnect(ctx, roleURL); err != nil {
		t.Errorf("the existing role connecting with its password: %v", err)
	}
	var comment *string
	if err := env.super.QueryRow(ctx, "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = $1", role).Scan(&comment); err != nil || comment != nil {
		t.Errorf("the existing role's comment: %v, %v; want none", comment, err)
	}
	// Another tenant's schema with a new role: refused, no role left.
	user := admName("dup_new_user")
	_, err = env.admin.CreateTenant(ctx, tenant.TenantConfig{Schema: a.Schema, Username: user})
	if !errors.Is(err, tenant.ErrTenantExists) {
		t.Errorf("CreateTenant with another tenant's schema: %v; want ErrTenantExists", err)
	}
	if env.roleExists(t, user) {
		t.Error("CreateTenant with an existing schema left its role behind")
	}
}

// testConcurrentCreates creates one tenant from many goroutines at once:
// exactly one succeeds, the others get ErrTenantExists (whether PostgreSQL
// reports the duplicate as such or as a unique violation of its catalog).
func (env *admEnv) testConcurrentCreates(t *testing.T) {
	ctx := admCtx(t, time.Minute)
	for _, shared := range []string{"both", "schema"} {
		schema := admName("race")
		const n = 6
		errs := make(chan error, n)
		users := make([]string, n)
		for i := range n {
			users[i] = admName("race_user")
			if shared == "both" {
				users[i] = users[0]
			}
			env.dropRoleAtCleanup(t, users[i])
		}
		for i := range n {
			go func() {
				c, err := env.admin.CreateTenant(ctx, tenant.TenantConfig{Schema: schema, Username: users[i]})
				if err == nil {
					t.Cleanup(func() { _ = env.admin.RemoveTenant(context.Background(), c.Schema, c.Username) })
				}
				errs <- err
			}()
		}
		ok := 0
		for range n {
			switch err := <-errs; {
			case err == nil:
				ok++
			case !errors.Is(err, tenant.ErrTenantExists):
				t.Errorf("concurrent CreateTenant (%s shared): %v; want nil or ErrTenantExists", shared, err)
			}
		}
		if ok != 1 {
			t.Errorf("concurrent CreateTenant (%s shared): %d succeeded; want 1", shared, ok)
		}
		roles := 0
		for _, u := range users {
			if env.roleExists(t, u) {
				roles++
			}
		}
		if shared == "schema" && roles != 1 {
			t.Errorf("concurrent CreateTenant (schema shared): %d roles left; want the winner's only", roles)
		}
	}
}

// testFailureAfterRoleCreation makes CreateTenant fail after it created the
// role, and checks that neither role nor schema is left.
func (env *admEnv) testFailureAfterRoleCreation(t *testing.T) {
	ctx := admCtx(t, time.Minute)
	// The schema collides with a schema that is not a tenant's.
	taken := admName("taken")
	env.exec(t, "CREATE SCHEMA "+admIdent(taken))
	env.exec(t, "CREATE TABLE "+admIdent(taken)+".mine (a int)")
	user := admName("taken_user")
	_, err := env.admin.CreateTenant(ctx, tenant.TenantConfig{Schema: taken, Username: user})
	if !errors.Is(err, tenant.ErrTenantExists) {
		t.Errorf("CreateTenant on a taken schema: %v; want ErrTenantExists", err)
	}
	if env.roleExists(t, user) {
		t.Error("the role created before the failure was left behind")
	}
	var tables int
	var comment *string
	if err := env.super.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_tables WHERE schemaname = $1), obj_description(oid, 'pg_namespace')
FROM pg_namespace WHERE nspname = $1`, taken).Scan(&tables, &comment); err != nil || tables != 1 || comment != nil {
		t.Errorf("the taken schema after the failure: %d tables, comment %v, %v; want 1 table and no comment", tables, comment, err)
	}

	// A failure that is not a collision: an admin role that may create
	// roles but no longer schemas (CREATE revoked after NewAdmin checked
	// it) fails at CREATE SCHEMA, after CREATE ROLE.
	admRole := admName("weak_admin")
	weakURL := env.loginRole(t, admRole, "CREATEROLE")
	env.exec(t, "GRANT CREATE ON DATABASE "+admIdent(env.dbName)+" TO "+admIdent(admRole))
	weak, err := tenant.NewAdmin(ctx, weakURL)
	if err != nil {
		t.Fatalf("NewAdmin as a CREATEROLE role: %v", err)
	}
	defer weak.Close()
	env.exec(t, "REVOKE CREATE ON DATABASE "+admIdent(env.dbName)+" FROM "+admIdent(admRole))
	schema, user2 := admName("weak_schema"), admName("weak_user")
	_, err = weak.CreateTenant(ctx, tenant.TenantConfig{Schema: schema, Username: user2})
	if admSQLState(err) != "42501" || errors.Is(err, tenant.ErrTenantExists) {
		t.Errorf("CreateTenant without CREATE on the database: %v; want SQLSTATE 42501", err)
	}
	if env.roleExists(t, user2) || env.schemaExists(t, schema) {
		t.Errorf("after the failed CreateTenant: role exists %v, schema exists %v; want neither", env.roleExists(t, user2), env.schemaExists(t, schema))
	}
}

var admInvalidIDs = []string{
	"",
	"a;DROP ROLE x",
	`"quoted"`,
	`x"; DROP ROLE x; --`,
	"it's",
	"has space",
	"has-hyphen",
	"9starts_with_digit",
	"public",
	"PUBLIC",
	"information_schema",
	"pg_catalog",
	"pg_x",
	"ümlaut",
	strings.Repeat("a", 64),
}

// testInvalidNames checks that invalid names are refused before any SQL:
// the calls get a cancelled context, which any SQL would report, and the
// role the injections name survives.
func (env *admEnv) testInvalidNames(t *testing.T) {
	if !env.roleExists(t, "x") { // an external server may have one: leave it be
		env.exec(t, "CREATE ROLE x NOLOGIN")
		t.Cleanup(func() { env.exec(t, "DROP ROLE IF EXISTS x") })
	}
	before := env.counts(t)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()

	// A valid call does reach the database, and fails on the context.
	if _, err := env.admin.CreateTenant(cancelled, tenant.TenantConfig{Schema: "valid_schema", Username: "valid_user"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("a valid CreateTenant with a cancelled context: %v; want context.Canceled", err)
	}
	for _, bad := range admInvalidIDs {
		calls := map[string]func() error{
			"CreateTenant(schema)": func() error {
				_, err := env.admin.CreateTenant(cancelled, tenant.TenantConfig{Schema: bad, Username: "valid_user"})
				return err
			},
			"CreateTenant(username)": func() error {
				_, err := env.admin.CreateTenant(cancelled, tenant.TenantConfig{Schema: "valid_schema", Username: bad})
				return err
			},
			"RemoveTenant(schema)":   func() error { return env.admin.RemoveTenant(cancelled, bad, "valid_user") },
			"RemoveTenant(username)": func() error { return env.admin.RemoveTenant(cancelled, "valid_schema", bad) },
			"RotatePassword": func() error {
				_, err := env.admin.RotatePassword(cancelled, bad, "")
				return err
			},
		}
		for name, call := range calls {
			err := call()
			if !errors.Is(err, cloacina.ErrInvalidTenantID) || errors.Is(err, context.Canceled) {
				t.Errorf("%s with %q: %v; want ErrInvalidTenantID before any SQL", name, bad, err)
			}
		}
	}
	if !env.roleExists(t, "x") {
		t.Error("role x was dropped")
	}
	if after := env.counts(t); after != before {
		t.Errorf("roles and schemas before %v, after %v", before, after)
	}
}

func (env *admEnv) testInvalidPassword(t *testing.T) {
	ctx := admCtx(t, time.Minute)
	a := env.create(t, tenant.TenantConfig{Schema: admName("pw"), Username: admName("pw_user")})
	for _, bad := range []string{"Secret\x00Nul", "Secret\nNewline", "Sécret-ünicode", strings.Repeat("S", tenant.MaxPasswordLength+1)} {
		schema, user := admName("pw_bad"), admName("pw_bad_user")
		_, err := env.admin.CreateTenant(ctx, tenant.TenantConfig{Schema: schema, Username: user, Password: bad})
		if !errors.Is(err, tenant.ErrInvalidPassword) {
			t.Errorf("CreateTenant with password %q: %v; want ErrInvalidPassword", bad, err)
		} else if strings.Contains(err.Error(), "Secret") || strings.Contains(err.Error(), "cret") {
			t.Errorf("the error shows the password: %v", err)
		}
		if env.roleExists(t, user) || env.schemaExists(t, schema) {
			t.Errorf("CreateTenant with an invalid password created something")
		}
		if _, err := env.admin.RotatePassword(ctx, a.Username, bad); !errors.Is(err, tenant.ErrInvalidPassword) {
			t.Errorf("RotatePassword with password %q: %v; want ErrInvalidPassword", bad, err)
		}
	}
	if err := admTryConnect(ctx, a.ConnectionString); err != nil {
		t.Errorf("the tenant's password changed after refused rotations: %v", err)
	}
}

// testPasswordIsSentAsVerifier checks what the server stored: a
// SCRAM-SHA-256 verifier, even when the server would store md5 from a
// plaintext password, and no trace of the password.
func (env *admEnv) testPasswordIsSentAsVerifier(t *testing.T) {
	ctx := admCtx(t, time.Minute)
	// With password_encryption = md5 for the admin's sessions, a
	// plaintext password would be stored as md5 and refused by the
	// scram-sha-256 pg_hba rules.
	env.exec(t, "ALTER ROLE "+admIdent(env.srv.AdminUser())+" IN DATABASE "+admIdent(env.dbName)+" SET password_encryption = 'md5'")
	t.Cleanup(func() {
		env.exec(t, "ALTER ROLE "+admIdent(env.srv.AdminUser())+" IN DATABASE "+admIdent(env.dbName)+" RESET password_encryption")
	})
	md5Admin, err := tenant.NewAdmin(ctx, env.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer md5Admin.Close()
	password := "Pl41n-" + rand.Text()
	c, err := md5Admin.CreateTenant(ctx, tenant.TenantConfig{Schema: admName("scram"), Username: admName("scram_user"), Password: password})
	if err != nil {
		t.Fatalf("CreateTenant: %v", err)
	}
	env.dropRoleAtCleanup(t, c.Username)
	var stored string
	if err := env.super.QueryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = $1", c.Username).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stored, "SCRAM-SHA-256$4096:") || strings.Contains(stored, password) {
		t.Errorf("stored password %q; want a SCRAM-SHA-256 verifier", stored)
	}
	if err := admTryConnect(ctx, c.ConnectionString); err != nil {
		t.Errorf("connecting with the password: %v", err)
	}
	rotated, err := md5Admin.RotatePassword(ctx, c.Username, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := env.super.QueryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = $1", c.Username).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stored, "SCRAM-SHA-256$4096:") {
		t.Errorf("stored password after rotation %q; want a SCRAM-SHA-256 verifier", stored)
	}
	if err := admTryConnect(ctx, admWithPassword(t, c.ConnectionString, rotated)); err != nil {
		t.Errorf("connecting with the rotated password: %v", err)
	}
}

func (env *admEnv) testSecretsAreNotPrinted(t *testing.T) {
	ctx := admCtx(t, time.Minute)
	password := `Sup3r'Secr3t\pa ss@w:rd/%?#` + rand.Text()
	cfg := tenant.TenantConfig{Schema: admName("secret"), Username: admName("secret_user"), Password: password}
	c := env.create(t, cfg)
	if c.Password != password {
		t.Fatal("CreateTenant did not keep the given password")
	}
	if err := admTryConnect(ctx, c.ConnectionString); err != nil {
		t.Fatalf("connecting with a password that needs escaping: %v", err)
	}
	escaped := []string{password, url.QueryEscape(password), url.PathEscape(password),
		strings.TrimPrefix(url.UserPassword("", password).String(), ":"), "Secr3t"}

	var logText, logJSON bytes.Buffer
	slog.New(slog.NewTextHandler(&logText, nil)).Info("created", "creds", c, "cfg", cfg)
	slog.New(slog.NewJSONHandler(&logJSON, nil)).Info("created", "creds", *c, "cfg", &cfg)
	outputs := map[string]string{
		"Sprint":          fmt.Sprint(c),
		"Sprint value":    fmt.Sprint(*c),
		"%v":              fmt.Sprintf("%v", c),
		"%+v":             fmt.Sprintf("%+v", *c),
		"%#v":             fmt.Sprintf("%#v", *c),
		"%#v pointer":     fmt.Sprintf("%#v", c),
		"%s and %q":       fmt.Sprintf("%s and %q", c, c),
		"%+v in a struct": fmt.Sprintf("%+v", struct{ C tenant.TenantCredentials }{*c}),
		"%v in a slice":   fmt.Sprintf("%v", []tenant.TenantCredentials{*c}),
		"config %+v":      fmt.Sprintf("%+v", cfg),
		"config %#v":      fmt.Sprintf("%#v", cfg),
		"slog text":       logText.String(),
		"slog JSON":       logJSON.String(),
	}
	for name, out := range outputs {
		for _, form := range escaped {
			if strings.Contains(out, form) {
				t.Errorf("%s shows the password (%q): %s", name, form, out)
			}
		}
	}
	for _, name := range []string{"Sprint", "%+v", "%#v", "slog text", "slog JSON"} {
		if !strings.Contains(outputs[name], c.Username) || !strings.Contains(outputs[name], c.Schema) {
			t.Errorf("%s does not show the user and schema: %s", name, outputs[name])
		}
	}

	// Errors about the tenant do not show its password either.
	_, err := env.admin.CreateTenant(ctx, cfg)
	if !errors.Is(err, tenant.ErrTenantExists) {
		t.Fatalf("creating the tenant again: %v", err)
	}
	_, err2 := env.admin.RotatePassword(ctx, admName("nobody"), password)
	for _, e := range []error{err, err2} {
		if e == nil {
			t.Fatal("want an error")
		}
		for _, form := range escaped {
			if strings.Contains(e.Error(), form) {
				t.Errorf("error shows the password: %v", e)
			}
		}
	}
}

func (env *admEnv) testFailedConnectionsHidePasswords(t *testing.T) {
	ctx := admCtx(t, time.Minute)
	const wrong = "Wr0ngAdminPassw0rd-x9"
	u, err := url.Parse(env.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(env.srv.AdminUser(), wrong)
	a, err := tenant.NewAdmin(ctx, u.String())
	if err == nil {
		a.Close()
		t.Fatal("NewAdmin with a wrong password succeeded")
	}
	if admSQLState(err) != "28P01" {
		t.Errorf("NewAdmin with a wrong password: %v; want SQLSTATE 28P01", err)
	}
	if strings.Contains(err.Error(), wrong) {
		t.Errorf("NewAdmin's error shows the password: %v", err)
	}
	// An unparsable URL with the password in it.
	for _, bad := range []string{
		"postgres://admin:" + wrong + "@[::1/db",
		"postgres://admin:" + wrong + "@localhost:notaport/db",
		"postgres://admin:" + wrong + "@127.0.0.1:1/db?sslmode=bogus",
		"postgres://admin:" + wrong + "@127.0.0.1:1/db?connect_timeout=2",
	} {
		a, err := tenant.NewAdmin(ctx, bad)
		if err == nil {
			a.Close()
			t.Errorf("NewAdmin(%s) succeeded", cloacina.RedactURL(bad))
			continue
		}
		if strings.Contains(err.Error(), wrong) {
			t.Errorf("NewAdmin's error shows the password: %v", err)
		}
	}
	// A tenant connecting with a wrong password.
	c := env.create(t, tenant.TenantConfig{Schema: admName("hide"), Username: admName("hide_user")})
	bad := admWithPassword(t, c.ConnectionString, wrong)
	err = admTryConnect(ctx, bad)
	if admSQLState(err) != "28P01" || strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), c.Password) {
		t.Errorf("connecting with a wrong password: %v; want 28P01 without the password", err)
	}
	// A non-CREATEROLE role is refused as admin.
	roleURL := env.loginRole(t, admName("not_admin"), "")
	if a, err := tenant.NewAdmin(ctx, roleURL); err == nil {
		a.Close()
		t.Error("NewAdmin accepted a role without CREATEROLE")
	}
}

// testNonSuperuserAdmin runs the whole lifecycle with the admin the guide
// asks for: a role with CREATEROLE and CREATE on the database, not a
// superuser.
func (env *admEnv) testNonSuperuserAdmin(t *testing.T) {
	ctx := admCtx(t, time.Minute)
	name := admName("admin_role")
	adminURL := env.loginRole(t, name, "CREATEROLE")
	env.exec(t, "GRANT CREATE ON DATABASE "+admIdent(env.dbName)+" TO "+admIdent(name))
	a, err := tenant.NewAdmin(ctx, adminURL)
	if err != nil {
		t.Fatalf("NewAdmin: %v", err)
	}
	defer a.Close()
	c, err := a.CreateTenant(ctx, tenant.TenantConfig{Schema: admName("weak"), Username: admName("weak_user")})
	if err != nil {
		t.Fatalf("CreateTenant: %v", err)
	}
	env.dropRoleAtCleanup(t, c.Username)
	conn := admConnect(t, c.ConnectionString)
	if _, err := conn.Exec(ctx, "INSERT INTO "+admIdent(c.Schema)+".events (execution_id, type, created_at) VALUES (gen_random_uuid(), 'x', 0)"); err != nil {
		t.Errorf("the tenant writing its schema: %v", err)
	}
	conn.Close(ctx)
	got, err := a.ListTenants(ctx)
	if err != nil || !slices.Contains(got, tenant.TenantInfo{Schema: c.Schema, Username: c.Username}) {
		t.Errorf("ListTenants = %v, %v; want the tenant", got, err)
	}
	if _, err := a.RotatePassword(ctx, c.Username, ""); err != nil {
		t.Errorf("RotatePassword: %v", err)
	}
	if err := a.RemoveTenant(ctx, c.Schema, c.Username); err != nil {
		t.Fatalf("RemoveTenant: %v", err)
	}
	if env.roleExists(t, c.Username) || env.schemaExists(t, c.Schema) {
		t.Error("the tenant is still there")
	}
}

func (env *admEnv) testConnectionStringDropsAdminCredentials(t *testing.T) {
	ctx := admCtx(t, time.Minute)
	u, err := url.Parse(env.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	adminPassword, _ := u.User.Password()
	q := u.Query()
	q.Set("application_name", "admin tool")
	q.Set("password", adminPassword)
	u.RawQuery = q.Encode()
	a, err := tenant.NewAdmin(ctx, u.String())
	if err != nil {
		t.Fatalf("NewAdmin: %v", err)
	}
	defer a.Close()
	c, err := a.CreateTenant(ctx, tenant.TenantConfig{Schema: admName("cs"), Username: admName("cs_user")})
	if err != nil {
		t.Fatal(err)
	}
	env.dropRoleAtCleanup(t, c.Username)
	got, err := url.Parse(c.ConnectionString)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(c.ConnectionString, adminPassword) || got.Query().Has("password") {
		t.Errorf("the tenant's connection string carries the admin password")
	}
	if got.Host != u.Host || got.Path != u.Path || got.Query().Get("sslmode") != u.Query().Get("sslmode") ||
		got.Query().Get("application_name") != "admin tool" {
		t.Errorf("the tenant's connection string %s lost parts of the admin URL", cloacina.RedactURL(c.ConnectionString))
	}
	if name := got.User.Username(); name != c.Username {
		t.Errorf("connection string user %q; want %q", name, c.Username)
	}
	conn := admConnect(t, c.ConnectionString)
	var user string
	if err := conn.QueryRow(ctx, "SELECT current_user").Scan(&user); err != nil || user != c.Username {
		t.Errorf("connected as %q, %v; want %q", user, err, c.Username)
	}
}

// create creates a tenant with env.admin, removed when the test ends.
func (env *admEnv) create(t *testing.T, cfg tenant.TenantConfig) *tenant.TenantCredentials {
	t.Helper()
	ctx := admCtx(t, time.Minute)
	c, err := env.admin.CreateTenant(ctx, cfg)
	if err != nil {
		t.Fatalf("CreateTenant(%s, %s): %v", cfg.Schema, cfg.Username, err)
	}
	if c.Schema != cfg.Schema || c.Username != cfg.Username {
		t.Fatalf("CreateTenant returned schema %q user %q; want %q %q", c.Schema, c.Username, cfg.Schema, cfg.Username)
	}
	t.Cleanup(func() {
		if err := env.admin.RemoveTenant(context.Background(), c.Schema, c.Username); err != nil {
			t.Errorf("RemoveTenant at cleanup: %v", err)
		}
	})
	return c
}

// plainRole creates a login role that is not a tenant's and returns its
// name and connection URL.
func (env *admEnv) plainRole(t *testing.T, name string) (string, string) {
	t.Helper()
	return name, env.loginRole(t, name, "")
}

// loginRole creates a login role with attrs and a random password,
// dropped when the test ends, and returns its URL for the database.
func (env *admEnv) loginRole(t *testing.T, name, attrs string) string {
	t.Helper()
	password := rand.Text()
	env.exec(t, fmt.Sprintf("CREATE ROLE %s LOGIN %s PASSWORD '%s'", admIdent(name), attrs, password))
	env.dropRoleAtCleanup(t, name)
	u, err := url.Parse(env.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(name, password)
	return u.String()
}

// dropRoleAtCleanup drops a role when the test ends, should it still
// exist: roles outlive the test database on an external server.
func (env *admEnv) dropRoleAtCleanup(t *testing.T, name string) {
	t.Cleanup(func() {
		if env.roleExists(t, name) {
			env.exec(t, "DROP OWNED BY "+admIdent(name))
			env.exec(t, "DROP ROLE IF EXISTS "+admIdent(name))
		}
	})
}

func (env *admEnv) exec(t *testing.T, q string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := env.super.Exec(ctx, q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func (env *admEnv) roleExists(t *testing.T, name string) bool {
	t.Helper()
	return env.exists(t, "SELECT count(*) FROM pg_roles WHERE rolname = $1", name)
}

func (env *admEnv) schemaExists(t *testing.T, name string) bool {
	t.Helper()
	return env.exists(t, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", name)
}

func (env *admEnv) exists(t *testing.T, q, name string) bool {
	t.Helper()
	var n int
	if err := env.super.QueryRow(context.Background(), q, name).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n > 0
}

// counts returns the numbers of roles and schemas.
func (env *admEnv) counts(t *testing.T) [2]int {
	t.Helper()
	var c [2]int
	err := env.super.QueryRow(context.Background(),
		"SELECT (SELECT count(*) FROM pg_roles), (SELECT count(*) FROM pg_namespace)").Scan(&c[0], &c[1])
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// admCheckGeneratedPassword checks the shape of a generated password.
func admCheckGeneratedPassword(t *testing.T, p string) {
	t.Helper()
	if len(p) < 22 { // 22 base64 characters carry 132 bits
		t.Errorf("generated password has %d characters; want at least 22 (128 bits)", len(p))
	}
	for _, r := range p {
		if !strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", r) {
			t.Errorf("generated password has %q, not URL-safe", r)
		}
	}
}

// admName returns a unique name with prefix: roles outlive a test's
// database, so names must not collide across runs on an external server.
func admName(prefix string) string {
	return prefix + "_" + strings.ToLower(rand.Text()[:8])
}

func admIdent(name string) string { return pgx.Identifier{name}.Sanitize() }

func admCtx(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func admConnect(t testing.TB, connURL string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, connURL)
	if err != nil {
		t.Fatalf("connecting as %s: %v", cloacina.RedactURL(connURL), err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// admTryConnect connects and disconnects, returning the connection error.
func admTryConnect(ctx context.Context, connURL string) error {
	conn, err := pgx.Connect(ctx, connURL)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

func admWithPassword(t testing.TB, connURL, password string) string {
	t.Helper()
	u, err := url.Parse(connURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), password)
	return u.String()
}

func admSQLState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}
