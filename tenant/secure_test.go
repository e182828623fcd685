package tenant_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/internal/pgtest"
	"github.com/cloacina-go/cloacina/tenant"
)

// secEnv is one test's database: an Admin on it, a superuser connection
// for checks, and a service role (NOINHERIT, nothing but CONNECT) for the
// shared pool of SharedPoolSwitchRole mode.
type secEnv struct {
	dbURL       string
	dbName      string
	admin       *tenant.Admin
	super       *pgx.Conn
	serviceURL  string
	serviceRole string
	mu          sync.Mutex
	tenants     []string // ids created, removed at cleanup
}

func newSecEnv(t testing.TB) *secEnv {
	t.Helper()
	srv := pgtest.Shared(t)
	dbURL := srv.NewDatabase(t)
	ctx := testCtx(t, time.Minute)
	admin, err := tenant.NewAdmin(ctx, dbURL)
	if err != nil {
		t.Fatalf("NewAdmin: %v", err)
	}
	t.Cleanup(admin.Close)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	env := &secEnv{dbURL: dbURL, dbName: strings.TrimPrefix(u.Path, "/"), admin: admin, super: admConnect(t, dbURL)}
	env.serviceRole = admName("svc")
	password := rand.Text()
	env.exec(t, fmt.Sprintf("CREATE ROLE %s LOGIN NOINHERIT PASSWORD '%s'", admIdent(env.serviceRole), password))
	env.exec(t, "GRANT CONNECT ON DATABASE "+admIdent(env.dbName)+" TO "+admIdent(env.serviceRole))
	u.User = url.UserPassword(env.serviceRole, password)
	env.serviceURL = u.String()
	t.Cleanup(func() {
		// Tenants left by a failed test, then the service role: roles
		// outlive the test database.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		env.mu.Lock()
		ids := env.tenants
		env.mu.Unlock()
		for _, id := range ids {
			if err := admin.RemoveTenant(ctx, "tenant_"+id, "user_"+id); err != nil {
				t.Errorf("removing tenant %s at cleanup: %v", id, err)
			}
		}
		env.exec(t, "DROP OWNED BY "+admIdent(env.serviceRole))
		env.exec(t, "DROP ROLE "+admIdent(env.serviceRole))
	})
	return env
}

func (env *secEnv) exec(t testing.TB, q string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := env.super.Exec(ctx, q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func (env *secEnv) count(t testing.TB, q string, args ...any) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var n int
	if err := env.super.QueryRow(ctx, q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// sessions counts the sessions of role in the test database.
func (env *secEnv) sessions(t testing.TB, role string) int {
	t.Helper()
	return env.count(t, "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND datname = current_database()", role)
}

func (env *secEnv) roleExists(t testing.TB, role string) bool {
	return env.count(t, "SELECT count(*) FROM pg_roles WHERE rolname = $1", role) > 0
}

func (env *secEnv) schemaExists(t testing.TB, schema string) bool {
	return env.count(t, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema) > 0
}

type secOpts struct {
	store   tenant.CredentialStore
	cfg     func(*tenant.SecureConfig)
	logger  *slog.Logger
	workfls []*cloacina.Workflow
}

// manager starts a SecureManager in mode, closed when the test ends.
func (env *secEnv) manager(t testing.TB, mode tenant.SecureMode, o secOpts) *tenant.SecureManager {
	t.Helper()
	if o.store == nil {
		o.store = tenant.NewMemoryCredentialStore()
	}
	if o.logger == nil {
		o.logger = discardLogger
	}
	cfg := tenant.SecureConfig{Mode: mode, Admin: env.admin, Credentials: o.store}
	if mode == tenant.SharedPoolSwitchRole {
		cfg.ServiceURL = env.serviceURL
	}
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	ctx := testCtx(t, time.Minute)
	m, err := tenant.NewSecureManager(ctx, cfg,
		cloacina.WithWorkflows(append([]*cloacina.Workflow{pipeline(t)}, o.workfls...)...),
		cloacina.WithPollInterval(50*time.Millisecond), cloacina.WithLogger(o.logger))
	if err != nil {
		t.Fatalf("NewSecureManager(%v): %v", mode, err)
	}
	t.Cleanup(func() { closeManager(t, m) })
	return m
}

// create creates a tenant with a fresh id (roles are cluster-wide).
func (env *secEnv) create(t testing.TB, m *tenant.SecureManager, prefix string) (string, *tenant.TenantCredentials) {
	t.Helper()
	id := admName(prefix)
	env.mu.Lock()
	env.tenants = append(env.tenants, id)
	env.mu.Unlock()
	c, err := m.CreateTenant(testCtx(t, time.Minute), id)
	if err != nil {
		t.Fatalf("CreateTenant(%s): %v", id, err)
	}
	if c.Schema != "tenant_"+id || c.Username != "user_"+id || c.Password == "" {
		t.Fatalf("CreateTenant(%s) = schema %q role %q; want tenant_%s user_%s with a password", id, c.Schema, c.Username, id, id)
	}
	return id, c
}

// run runs the pipeline workflow for a tenant and checks its result.
func secRun(ctx context.Context, t testing.TB, m tenant.Manager, id string) {
	t.Helper()
	res, err := m.Execute(ctx, id, "pipeline", map[string]any{"tenant": id})
	if err != nil {
		t.Fatalf("Execute(%s): %v", id, err)
	}
	if res.Status != cloacina.ExecutionCompleted {
		t.Fatalf("Execute(%s) = %s (%s); want Completed", id, res.Status, res.Error)
	}
	if v, _ := res.Context.Get("seen_by_first"); v != id {
		t.Fatalf("tenant %s: the first task saw tenant %v", id, v)
	}
}

// blockWorkflow returns a one-task workflow named "block" whose task waits
// until release is closed, and a channel receiving a value when a task
// starts.
func blockWorkflow(release <-chan struct{}) (*cloacina.Workflow, <-chan struct{}) {
	started := make(chan struct{}, 16)
	wf, err := cloacina.NewWorkflow("block").
		Task("wait", func(ctx context.Context, _ *cloacina.Context) error {
			started <- struct{}{}
			select {
			case <-release:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}).Build()
	if err != nil {
		panic(err)
	}
	return wf, started
}

var bothModes = []tenant.SecureMode{tenant.PoolPerTenant, tenant.SharedPoolSwitchRole}

// TestSecureManagerIsolation runs a workflow as each of two tenants, in
// both modes, and shows that the database keeps them apart.
func TestSecureManagerIsolation(t *testing.T) {
	for _, mode := range bothModes {
		t.Run(mode.String(), func(t *testing.T) {
			env := newSecEnv(t)
			ctx := testCtx(t, 2*time.Minute)
			m := env.manager(t, mode, secOpts{})
			a, ca := env.create(t, m, "iso_a")
			b, cb := env.create(t, m, "iso_b")
			secRun(ctx, t, m, a)
			secRun(ctx, t, m, b)
			if got, err := m.Tenants(ctx); err != nil || !slices.Equal(got, slices.Sorted(slices.Values([]string{a, b}))) {
				t.Errorf("Tenants = %v, %v; want [%s %s]", got, err, a, b)
			}
			// Each tenant's schema holds its own execution only.
			for _, c := range []*tenant.TenantCredentials{ca, cb} {
				if n := env.count(t, "SELECT count(*) FROM "+admIdent(c.Schema)+".executions"); n != 1 {
					t.Errorf("schema %s holds %d executions; want 1", c.Schema, n)
				}
			}

			// As tenant a's role, on its own connection: its schema yes,
			// the other's no.
			conn := admConnect(t, ca.ConnectionString)
			var n int
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+admIdent(ca.Schema)+".executions").Scan(&n); err != nil || n != 1 {
				t.Errorf("tenant a reading its schema: %d, %v; want 1", n, err)
			}
			_, err := conn.Exec(ctx, "SELECT count(*) FROM "+admIdent(cb.Schema)+".executions")
			if code := admSQLState(err); code != "42501" {
				t.Errorf("tenant a reading tenant b's schema: %v; want SQLSTATE 42501", err)
			}
			conn.Close(ctx)

			switch mode {
			case tenant.PoolPerTenant:
				// The runners connect as the tenants themselves.
				if m.Engine() != nil {
					t.Error("Engine() is not nil in PoolPerTenant mode")
				}
				for _, c := range []*tenant.TenantCredentials{ca, cb} {
					if s := env.sessions(t, c.Username); s == 0 {
						t.Errorf("no session of role %s: the runner does not connect as the tenant", c.Username)
					}
				}
				if s := env.sessions(t, env.serviceRole); s != 0 {
					t.Errorf("%d sessions of the service role in PoolPerTenant mode", s)
				}
			case tenant.SharedPoolSwitchRole:
				checkSwitchRoleIsolation(ctx, t, env, m, ca, cb)
			}
		})
	}
}

// checkSwitchRoleIsolation shows that in SharedPoolSwitchRole mode the
// tenants share the service role's connections, and that the database,
// not the engine, confines each runner to its tenant's schema.
func checkSwitchRoleIsolation(ctx context.Context, t *testing.T, env *secEnv, m *tenant.SecureManager, ca, cb *tenant.TenantCredentials) {
	t.Helper()
	if s := env.sessions(t, env.serviceRole); s == 0 {
		t.Error("no session of the service role: the tenants do not share its pool")
	}
	for _, c := range []*tenant.TenantCredentials{ca, cb} {
		if s := env.sessions(t, c.Username); s != 0 {
			t.Errorf("%d sessions logged in as %s in SharedPoolSwitchRole mode; want 0", s, c.Username)
		}
	}
	svc := admConnect(t, env.serviceURL)
	// The service role alone (NOINHERIT) reads no tenant's data...
	_, err := svc.Exec(ctx, "SELECT count(*) FROM "+admIdent(ca.Schema)+".executions")
	if code := admSQLState(err); code != "42501" {
		t.Errorf("the service role reading a tenant schema without SET ROLE: %v; want SQLSTATE 42501", err)
	}
	// ...but may switch to each tenant's role, which reads its own schema
	// only.
	tx, err := svc.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	if _, err := tx.Exec(ctx, "SET LOCAL ROLE "+admIdent(ca.Username)); err != nil {
		t.Fatalf("SET ROLE %s as the service role: %v", ca.Username, err)
	}
	var n int
	if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+admIdent(ca.Schema)+".executions").Scan(&n); err != nil || n != 1 {
		t.Errorf("as %s, reading its schema: %d, %v; want 1", ca.Username, n, err)
	}
	_, err = tx.Exec(ctx, "SELECT count(*) FROM "+admIdent(cb.Schema)+".executions")
	if code := admSQLState(err); code != "42501" {
		t.Errorf("as %s, reading %s: %v; want SQLSTATE 42501", ca.Username, cb.Schema, err)
	}
	_ = tx.Rollback(ctx)

	// A runner pointed at tenant b's schema with tenant a's role: nothing
	// in the engine stops it, the database does.
	e := m.Engine()
	if e == nil {
		t.Fatal("Engine() is nil in SharedPoolSwitchRole mode")
	}
	r, err := e.Runner(ctx, cb.Schema+"_x", cloacina.WithTenantRole(ca.Username))
	if err == nil {
		_ = r.Shutdown(ctx)
		t.Errorf("a runner creating schema %s_x as %s started; want a refusal", cb.Schema, ca.Username)
	}
	if env.schemaExists(t, cb.Schema+"_x") {
		t.Errorf("tenant a's role created a schema")
	}
	// The engine's one runner per schema rule would refuse tenant b's
	// schema with ErrInvalidOption before touching the database: use a
	// second engine on the same service pool settings to reach the
	// database.
	e2, err := cloacina.NewEngine(ctx, env.serviceURL, cloacina.WithLogger(discardLogger), cloacina.WithoutListen())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e2.Shutdown(context.Background()) }()
	r, err = e2.Runner(ctx, cb.Schema, cloacina.WithTenantRole(ca.Username))
	if err == nil {
		_ = r.Shutdown(ctx)
		t.Fatalf("a runner on %s as %s started; want SQLSTATE 42501", cb.Schema, ca.Username)
	}
	if code := admSQLState(err); code != "42501" {
		t.Errorf("a runner on %s as %s: %v (SQLSTATE %q); want SQLSTATE 42501", cb.Schema, ca.Username, err, code)
	}
	// The same engine, with the right role, works: the refusal came from
	// the role's privileges.
	r, err = e2.Runner(ctx, ca.Schema, cloacina.WithTenantRole(ca.Username))
	if err != nil {
		t.Errorf("a runner on %s as %s: %v", ca.Schema, ca.Username, err)
	} else {
		mt, err := r.Metrics(ctx)
		if err != nil || mt.TotalExecutions != 1 {
			t.Errorf("metrics of %s as %s: %+v, %v; want 1 execution", ca.Schema, ca.Username, mt, err)
		}
		_ = r.Shutdown(ctx)
	}
}

// TestSecureManagerTenantsAreCreatedExplicitly: no tenant appears on first
// use, ids are checked, and a tenant cannot be created twice.
func TestSecureManagerTenantsAreCreatedExplicitly(t *testing.T) {
	env := newSecEnv(t)
	ctx := testCtx(t, time.Minute)
	m := env.manager(t, tenant.PoolPerTenant, secOpts{})
	ghost := admName("ghost")
	if _, err := m.Runner(ctx, ghost); !errors.Is(err, tenant.ErrTenantNotFound) {
		t.Errorf("Runner of a tenant never created: %v; want ErrTenantNotFound", err)
	}
	if _, err := m.Execute(ctx, ghost, "pipeline", nil); !errors.Is(err, tenant.ErrTenantNotFound) {
		t.Errorf("Execute for a tenant never created: %v; want ErrTenantNotFound", err)
	}
	if env.schemaExists(t, "tenant_"+ghost) || env.roleExists(t, "user_"+ghost) {
		t.Error("using an unknown tenant created its schema or role")
	}
	if ok, err := m.Exists(ctx, ghost); ok || err != nil {
		t.Errorf("Exists(unknown) = %v, %v; want false", ok, err)
	}
	if err := m.Remove(ctx, ghost); !errors.Is(err, tenant.ErrTenantNotFound) {
		t.Errorf("Remove(unknown) = %v; want ErrTenantNotFound", err)
	}
	long := strings.Repeat("a", tenant.MaxSecureIDLength+1)
	if _, err := m.CreateTenant(ctx, long); !errors.Is(err, cloacina.ErrInvalidTenantID) {
		t.Errorf("CreateTenant of a %d-byte id: %v; want ErrInvalidTenantID (tenant_<id> would exceed 63 bytes)", len(long), err)
	}
	if _, err := m.CreateTenant(ctx, "bad-id"); !errors.Is(err, cloacina.ErrInvalidTenantID) {
		t.Errorf("CreateTenant(bad-id): %v; want ErrInvalidTenantID", err)
	}
	id, _ := env.create(t, m, "once")
	if _, err := m.CreateTenant(ctx, id); !errors.Is(err, tenant.ErrTenantExists) {
		t.Errorf("CreateTenant twice: %v; want ErrTenantExists", err)
	}
	if ok, err := m.Exists(ctx, id); !ok || err != nil {
		t.Errorf("Exists(created) = %v, %v; want true", ok, err)
	}
	// Longest valid id: the schema name is exactly 63 bytes.
	longest := "l" + strings.ToLower(rand.Text())[:6] + strings.Repeat("x", tenant.MaxSecureIDLength-7)
	env.mu.Lock()
	env.tenants = append(env.tenants, longest)
	env.mu.Unlock()
	c, err := m.CreateTenant(ctx, longest)
	if err != nil {
		t.Fatalf("CreateTenant of a %d-byte id: %v", len(longest), err)
	}
	if !env.schemaExists(t, c.Schema) || len(c.Schema) != 63 {
		t.Errorf("schema %q (%d bytes) missing or truncated", c.Schema, len(c.Schema))
	}
	secRun(ctx, t, m, longest)
}

// TestSecureManagerRotatePassword rotates a tenant's password in both
// modes: the old password is refused, the new one works and is stored,
// and the tenant keeps running workflows.
func TestSecureManagerRotatePassword(t *testing.T) {
	for _, mode := range bothModes {
		t.Run(mode.String(), func(t *testing.T) {
			env := newSecEnv(t)
			ctx := testCtx(t, 2*time.Minute)
			store := tenant.NewMemoryCredentialStore()
			m := env.manager(t, mode, secOpts{store: store})
			id, old := env.create(t, m, "rot")
			other, otherCreds := env.create(t, m, "rot_other")
			secRun(ctx, t, m, id)
			secRun(ctx, t, m, other)
			r1, err := m.Runner(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			nc, err := m.RotatePassword(ctx, id)
			if err != nil {
				t.Fatalf("RotatePassword: %v", err)
			}
			if nc.Password == old.Password || nc.ConnectionString == old.ConnectionString {
				t.Fatal("RotatePassword kept the old password")
			}
			if code := admSQLState(admTryConnect(ctx, old.ConnectionString)); code != "28P01" {
				t.Errorf("connecting with the old password: SQLSTATE %q; want 28P01", code)
			}
			if err := admTryConnect(ctx, nc.ConnectionString); err != nil {
				t.Errorf("connecting with the new password: %v", err)
			}
			if err := admTryConnect(ctx, otherCreds.ConnectionString); err != nil {
				t.Errorf("the other tenant's password changed: %v", err)
			}
			if got, err := store.Get(ctx, id); err != nil || got.Password != nc.Password || got.ConnectionString != nc.ConnectionString {
				t.Errorf("the store does not hold the new password (%v)", err)
			}
			r2, err := m.Runner(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			switch mode {
			case tenant.PoolPerTenant:
				if r2 == r1 {
					t.Error("the runner was not reopened with the new password")
				}
				if _, err := r1.Execute(ctx, "pipeline", nil); !errors.Is(err, cloacina.ErrRunnerClosed) {
					t.Errorf("the old runner: %v; want ErrRunnerClosed", err)
				}
			case tenant.SharedPoolSwitchRole:
				if r2 != r1 {
					t.Error("the runner changed, though it uses the service role's connections")
				}
			}
			secRun(ctx, t, m, id)
			secRun(ctx, t, m, other)
			if _, err := m.RotatePassword(ctx, admName("ghost")); !errors.Is(err, tenant.ErrTenantNotFound) {
				t.Errorf("RotatePassword of an unknown tenant: %v; want ErrTenantNotFound", err)
			}
		})
	}
}

// TestSecureManagerRemove removes a tenant in both modes: its role and
// schema are gone, so are its credentials, and the other tenant runs on.
func TestSecureManagerRemove(t *testing.T) {
	for _, mode := range bothModes {
		t.Run(mode.String(), func(t *testing.T) {
			env := newSecEnv(t)
			ctx := testCtx(t, 2*time.Minute)
			store := tenant.NewMemoryCredentialStore()
			m := env.manager(t, mode, secOpts{store: store})
			a, ca := env.create(t, m, "rm_a")
			b, _ := env.create(t, m, "rm_b")
			secRun(ctx, t, m, a)
			secRun(ctx, t, m, b)
			if err := m.Remove(ctx, a); err != nil {
				t.Fatalf("Remove: %v", err)
			}
			if env.roleExists(t, ca.Username) || env.schemaExists(t, ca.Schema) {
				t.Error("the tenant's role or schema is still there")
			}
			if _, err := store.Get(ctx, a); !errors.Is(err, tenant.ErrTenantNotFound) {
				t.Errorf("the store still has the credentials: %v", err)
			}
			if _, err := m.Runner(ctx, a); !errors.Is(err, tenant.ErrTenantNotFound) {
				t.Errorf("Runner after Remove: %v; want ErrTenantNotFound", err)
			}
			if got, err := m.Tenants(ctx); err != nil || !slices.Equal(got, []string{b}) {
				t.Errorf("Tenants = %v, %v; want [%s]", got, err, b)
			}
			if err := m.Remove(ctx, a); !errors.Is(err, tenant.ErrTenantNotFound) {
				t.Errorf("Remove twice: %v; want ErrTenantNotFound", err)
			}
			if code := admSQLState(admTryConnect(ctx, ca.ConnectionString)); code != "28P01" && code != "28000" {
				t.Errorf("logging in as the removed role: SQLSTATE %q; want an authentication failure", code)
			}
			secRun(ctx, t, m, b)
			// The id can be used again, with a new password.
			c2, err := m.CreateTenant(ctx, a)
			if err != nil {
				t.Fatalf("CreateTenant after Remove: %v", err)
			}
			if c2.Password == ca.Password {
				t.Error("the re-created tenant got the old password")
			}
			secRun(ctx, t, m, a)
		})
	}
}

// TestSecureManagerIdleRunnersAreClosed: in PoolPerTenant mode an idle
// tenant's runner and connections go away after IdleTimeout, a busy one's
// stay, and the next use reopens the runner.
func TestSecureManagerIdleRunnersAreClosed(t *testing.T) {
	env := newSecEnv(t)
	ctx := testCtx(t, 2*time.Minute)
	release := make(chan struct{})
	block, started := blockWorkflow(release)
	m := env.manager(t, tenant.PoolPerTenant, secOpts{workfls: []*cloacina.Workflow{block},
		cfg: func(c *tenant.SecureConfig) { c.IdleTimeout = 200 * time.Millisecond }})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	id, c := env.create(t, m, "idle")
	secRun(ctx, t, m, id)
	if n := m.OpenRunners(); n != 1 {
		t.Fatalf("OpenRunners = %d after a run; want 1", n)
	}
	waitFor(t, 10*time.Second, "the idle runner to be closed", func() bool {
		return m.OpenRunners() == 0 && env.sessions(t, c.Username) == 0
	})
	secRun(ctx, t, m, id) // reopens

	// Reading its metrics more often than IdleTimeout (a scrape) does not
	// keep it open.
	deadline := time.Now().Add(10 * time.Second)
	for m.OpenRunners() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("a tenant whose metrics are read every 50ms stayed open 10s past its 200ms idle timeout")
		}
		if _, err := m.Metrics(ctx, id); err != nil {
			t.Fatalf("Metrics: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	secRun(ctx, t, m, id) // reopens

	// A tenant with a running task stays open, well past IdleTimeout.
	h, err := m.ExecuteAsync(ctx, id, "block", nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatal("the blocking task never started")
	}
	r1, err := m.Runner(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	r2, err := m.Runner(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if r1 != r2 || m.OpenRunners() != 1 {
		t.Fatal("the runner of a tenant with a running task was closed")
	}
	unblock()
	res, err := h.Wait(ctx)
	if err != nil || res.Status != cloacina.ExecutionCompleted {
		t.Fatalf("the blocking workflow: %v, %v; want Completed", res, err)
	}
	waitFor(t, 10*time.Second, "the runner to be closed once idle", func() bool { return m.OpenRunners() == 0 })
}

// TestSecureManagerConnectionCap: in PoolPerTenant mode the tenants'
// connections never exceed MaxConnections, the least recently used idle
// runner makes room, and when every runner is busy a new tenant waits.
func TestSecureManagerConnectionCap(t *testing.T) {
	env := newSecEnv(t)
	ctx := testCtx(t, 3*time.Minute)
	release := make(chan struct{})
	block, started := blockWorkflow(release)
	const poolSize, maxConns = 2, 6 // (2+1 LISTEN) per runner: 2 runners
	m := env.manager(t, tenant.PoolPerTenant, secOpts{workfls: []*cloacina.Workflow{block},
		cfg: func(c *tenant.SecureConfig) { c.PoolSize, c.MaxConnections = poolSize, maxConns }})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	var ids []string
	var roles []string
	for i := range 4 {
		id, c := env.create(t, m, fmt.Sprintf("cap%d", i))
		ids, roles = append(ids, id), append(roles, c.Username)
	}

	// Sample the server's sessions while the tenants run concurrently.
	sampler := admConnect(t, env.dbURL)
	var superPID uint32
	if err := env.super.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&superPID); err != nil {
		t.Fatal(err)
	}
	var maxTenant, maxTotal, maxOpen atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			default:
			}
			var tenantConns, total int64
			err := sampler.QueryRow(ctx, `SELECT count(*) FILTER (WHERE usename = ANY($1)), count(*)
FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND pid <> $2`,
				roles, superPID).Scan(&tenantConns, &total)
			if err != nil {
				if ctx.Err() == nil {
					t.Errorf("sampling pg_stat_activity: %v", err)
				}
				return
			}
			maxTenant.Store(max(maxTenant.Load(), tenantConns))
			maxTotal.Store(max(maxTotal.Load(), total))
			maxOpen.Store(max(maxOpen.Load(), int64(m.OpenRunners())))
			time.Sleep(2 * time.Millisecond)
		}
	}()
	var wg sync.WaitGroup
	for round := range 3 {
		for _, id := range ids {
			wg.Go(func() {
				res, err := m.Execute(ctx, id, "pipeline", map[string]any{"tenant": id, "round": round})
				if err != nil || res.Status != cloacina.ExecutionCompleted {
					t.Errorf("Execute(%s): %v, %v", id, res, err)
				}
			})
		}
	}
	wg.Wait()
	close(stop)
	<-sampled
	const adminPool = 4
	t.Logf("max sessions: tenants %d, database %d; max open runners %d", maxTenant.Load(), maxTotal.Load(), maxOpen.Load())
	if got := maxTenant.Load(); got > maxConns || got == 0 {
		t.Errorf("tenant roles held up to %d sessions; want 1..%d", got, maxConns)
	}
	if got := maxTotal.Load(); got > maxConns+adminPool {
		t.Errorf("the database had up to %d sessions; want at most MaxConnections+admin pool = %d", got, maxConns+adminPool)
	}
	if got := maxOpen.Load(); got > maxConns/(poolSize+1) {
		t.Errorf("up to %d runners open; want at most %d", got, maxConns/(poolSize+1))
	}

	// Least recently used: a, b open; c evicts a.
	for _, id := range ids[:2] {
		secRun(ctx, t, m, id)
	}
	secRun(ctx, t, m, ids[2])
	if s := env.sessions(t, roles[0]); s != 0 {
		t.Errorf("the least recently used tenant still has %d sessions", s)
	}
	if s := env.sessions(t, roles[1]); s == 0 {
		t.Error("the more recently used tenant was closed instead")
	}

	// Both runners busy: a third tenant waits, then gets ErrConnectionLimit.
	var handles []*cloacina.ExecutionHandle
	for _, id := range ids[1:3] {
		h, err := m.ExecuteAsync(ctx, id, "block", nil)
		if err != nil {
			t.Fatal(err)
		}
		handles = append(handles, h)
		<-started
	}
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	_, err := m.Execute(short, ids[3], "pipeline", map[string]any{"tenant": ids[3]})
	cancel()
	if !errors.Is(err, tenant.ErrConnectionLimit) {
		t.Errorf("Execute with every runner busy: %v; want ErrConnectionLimit", err)
	}
	unblock()
	for _, h := range handles {
		if res, err := h.Wait(ctx); err != nil || res.Status != cloacina.ExecutionCompleted {
			t.Errorf("blocking workflow: %v, %v", res, err)
		}
	}
	secRun(ctx, t, m, ids[3])
	if n := m.OpenRunners(); n > 2 {
		t.Errorf("OpenRunners = %d; want at most 2", n)
	}
}

// TestSecureManagerHidesSecrets runs a tenant's whole life in both modes
// with debug logs captured, and fails should a password show in the logs,
// in an error or in a printed value.
func TestSecureManagerHidesSecrets(t *testing.T) {
	for _, mode := range bothModes {
		t.Run(mode.String(), func(t *testing.T) {
			env := newSecEnv(t)
			ctx := testCtx(t, 2*time.Minute)
			var buf syncBuffer
			logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			store := tenant.NewMemoryCredentialStore()
			m := env.manager(t, mode, secOpts{store: store, logger: logger})
			var secrets []string
			id, c := env.create(t, m, "sec")
			secrets = append(secrets, c.Password)
			secRun(ctx, t, m, id)
			nc, err := m.RotatePassword(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			secrets = append(secrets, nc.Password)
			secRun(ctx, t, m, id)
			logger.Info("credentials", "creds", nc, "store", store, "manager", m)
			var printed []string
			printed = append(printed, fmt.Sprintf("%v %+v %#v %s", nc, nc, nc, nc), fmt.Sprintf("%v %+v %#v", *nc, *nc, *nc),
				fmt.Sprintf("%v %+v %#v", store, store, store), fmt.Sprintf("%v %+v %#v", m, m, m))

			// A failure involving a password: stale credentials in the
			// store (the password changed behind the manager's back).
			id2, c2 := env.create(t, m, "stale")
			secrets = append(secrets, c2.Password)
			fresh, err := env.admin.RotatePassword(ctx, c2.Username, "")
			if err != nil {
				t.Fatal(err)
			}
			secrets = append(secrets, fresh)
			_, err = m.Runner(ctx, id2)
			if mode == tenant.PoolPerTenant {
				if code := admSQLState(err); code != "28P01" {
					t.Errorf("Runner with a stale password: %v; want SQLSTATE 28P01", err)
				}
			}
			if err != nil {
				printed = append(printed, err.Error(), fmt.Sprintf("%+v %#v", err, err))
			}
			if err := m.Remove(ctx, id); err != nil {
				t.Fatal(err)
			}
			if err := m.Remove(ctx, id2); err != nil {
				t.Fatal(err)
			}
			closeManager(t, m)
			logs := buf.String()
			if !strings.Contains(logs, "tenant created") || !strings.Contains(logs, "tenant password rotated") {
				t.Errorf("the logs miss the tenant's events:\n%s", logs)
			}
			for i, s := range secrets {
				if strings.Contains(logs, s) {
					t.Errorf("secret %d is in the logs", i)
				}
				for _, p := range printed {
					if strings.Contains(p, s) {
						t.Errorf("secret %d is in printed text %.60q", i, p)
					}
				}
			}
		})
	}
}

// TestSecureManagerFileStore keeps the credentials in a file: mode 0600,
// and a new manager on the same file runs the same tenants.
func TestSecureManagerFileStore(t *testing.T) {
	env := newSecEnv(t)
	ctx := testCtx(t, 2*time.Minute)
	path := filepath.Join(t.TempDir(), "secrets", "tenants.json")
	store, err := tenant.NewFileCredentialStore(path)
	if err != nil {
		t.Fatal(err)
	}
	m := env.manager(t, tenant.SharedPoolSwitchRole, secOpts{store: store})
	a, ca := env.create(t, m, "file_a")
	b, _ := env.create(t, m, "file_b")
	secRun(ctx, t, m, a)
	closeManager(t, m)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("credential file mode %04o; want 0600", perm)
	}
	store2, err := tenant.NewFileCredentialStore(path)
	if err != nil {
		t.Fatalf("reopening the credential file: %v", err)
	}
	if got, err := store2.Get(ctx, a); err != nil || got.Password != ca.Password {
		t.Fatalf("the reopened store lost tenant a's credentials: %v", err)
	}
	m2 := env.manager(t, tenant.SharedPoolSwitchRole, secOpts{store: store2})
	if n := m2.OpenRunners(); n != 2 {
		t.Errorf("a new manager attached %d tenants; want 2", n)
	}
	secRun(ctx, t, m2, a)
	secRun(ctx, t, m2, b)
}

// TestNewSecureManagerRefusesBadConfig needs no server: every check runs
// before a connection.
func TestNewSecureManagerRefusesBadConfig(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	admin := &tenant.Admin{} // never used: the configuration is refused first
	store := tenant.NewMemoryCredentialStore()
	svc := "postgres://svc:S3cretSvc@localhost:1/db"
	for _, tc := range []struct {
		name string
		cfg  tenant.SecureConfig
		opts []cloacina.Option
		want error
	}{
		{"no admin", tenant.SecureConfig{Mode: tenant.PoolPerTenant, Credentials: store}, nil, cloacina.ErrInvalidOption},
		{"no store", tenant.SecureConfig{Mode: tenant.PoolPerTenant, Admin: admin}, nil, cloacina.ErrInvalidOption},
		{"no mode", tenant.SecureConfig{Admin: admin, Credentials: store}, nil, cloacina.ErrInvalidOption},
		{"schema", tenant.SecureConfig{Mode: tenant.PoolPerTenant, Admin: admin, Credentials: store},
			[]cloacina.Option{cloacina.WithSchema("x")}, cloacina.ErrInvalidOption},
		{"role", tenant.SecureConfig{Mode: tenant.SharedPoolSwitchRole, Admin: admin, Credentials: store, ServiceURL: svc},
			[]cloacina.Option{cloacina.WithTenantRole("x")}, cloacina.ErrInvalidOption},
		{"service URL in mode a", tenant.SecureConfig{Mode: tenant.PoolPerTenant, Admin: admin, Credentials: store, ServiceURL: svc}, nil, cloacina.ErrInvalidOption},
		{"pool size option in mode a", tenant.SecureConfig{Mode: tenant.PoolPerTenant, Admin: admin, Credentials: store},
			[]cloacina.Option{cloacina.WithDBPoolSize(5)}, cloacina.ErrInvalidOption},
		{"cap below one runner", tenant.SecureConfig{Mode: tenant.PoolPerTenant, Admin: admin, Credentials: store, PoolSize: 2, MaxConnections: 2}, nil, cloacina.ErrInvalidOption},
		{"sqlite service", tenant.SecureConfig{Mode: tenant.SharedPoolSwitchRole, Admin: admin, Credentials: store, ServiceURL: "sqlite://x.db"}, nil, cloacina.ErrUnsupportedDatabase},
		{"idle timeout in mode b", tenant.SecureConfig{Mode: tenant.SharedPoolSwitchRole, Admin: admin, Credentials: store, ServiceURL: svc, IdleTimeout: time.Second}, nil, cloacina.ErrInvalidOption},
	} {
		m, err := tenant.NewSecureManager(ctx, tc.cfg, tc.opts...)
		if m != nil {
			_ = m.Close(ctx)
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v; want %v", tc.name, err, tc.want)
		} else if strings.Contains(err.Error(), "S3cretSvc") {
			t.Errorf("%s: the error shows the service password", tc.name)
		}
	}
}

// waitFor polls cond until it holds, failing the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
