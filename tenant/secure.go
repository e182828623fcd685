package tenant

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cloacina-go/cloacina"
)

// SecureMode says how a [SecureManager] connects its tenants' runners.
type SecureMode int

const (
	// PoolPerTenant gives each tenant's runner its own small connection
	// pool, logged in as the tenant's own role with its password: the
	// server knows which tenant every connection belongs to (logs,
	// pg_stat_activity, per-role limits) and a connection can never act as
	// another tenant. Pools cost connections, so the manager caps them
	// (SecureConfig.MaxConnections) and closes idle ones
	// (SecureConfig.IdleTimeout).
	PoolPerTenant SecureMode = iota + 1
	// SharedPoolSwitchRole runs every tenant on one [cloacina.Engine] whose
	// pool logs in as a service role; each transaction of a tenant's runner
	// switches to the tenant's role (SET LOCAL ROLE, see
	// [cloacina.WithTenantRole]), so the database enforces the tenant's
	// privileges without a pool per tenant. The service role must be a
	// member of every tenant role: the manager grants it at CreateTenant
	// (see [Admin.GrantTenantRole]).
	SharedPoolSwitchRole
)

// String returns the mode's name.
func (m SecureMode) String() string {
	switch m {
	case PoolPerTenant:
		return "PoolPerTenant"
	case SharedPoolSwitchRole:
		return "SharedPoolSwitchRole"
	}
	return fmt.Sprintf("SecureMode(%d)", int(m))
}

// ErrConnectionLimit is returned by a [SecureManager] in [PoolPerTenant]
// mode when a tenant's runner cannot be opened before the context ends
// because SecureConfig.MaxConnections is reached and every open runner is
// busy.
var ErrConnectionLimit = errors.New("tenant: connection limit reached")

// A [SecureManager] tenant with id ID has the schema SecureSchemaPrefix+ID
// and the role SecureRolePrefix+ID, unless SecureConfig.RolePrefix names
// another role prefix.
const (
	SecureSchemaPrefix = "tenant_"
	SecureRolePrefix   = "user_"
)

// MaxSecureIDLength is the longest tenant id of a [SecureManager] with the
// default role prefix: the schema tenant_<id> must fit PostgreSQL's 63-byte
// identifiers. A longer SecureConfig.RolePrefix lowers the limit to
// [MaxIDLength] minus its length.
const MaxSecureIDLength = MaxIDLength - len(SecureSchemaPrefix)

// DefaultTenantPoolSize is the connection pool size of each tenant's
// runner in [PoolPerTenant] mode.
const DefaultTenantPoolSize = 2

// goneWait bounds how long the manager waits, after shutting a tenant's
// runner down in PoolPerTenant mode with a connection cap, for the server
// to end the runner's sessions before it counts their connections as free.
const goneWait = 2 * time.Second

// SecureConfig configures a [SecureManager].
type SecureConfig struct {
	// Mode is PoolPerTenant or SharedPoolSwitchRole (required).
	Mode SecureMode
	// Admin creates, migrates and removes the tenants' schemas and roles
	// (required). The manager does not close it: close it after the
	// manager.
	Admin *Admin
	// Credentials keeps the tenants' credentials (required).
	Credentials CredentialStore
	// ServiceURL, in SharedPoolSwitchRole mode (required there), is the
	// postgres:// URL of the service role whose pool every tenant shares.
	// Make that role NOINHERIT with no privileges of its own (only CONNECT):
	// it then reaches a tenant's data only by switching to the tenant's
	// role. It must not be set in PoolPerTenant mode.
	ServiceURL string
	// PoolSize, in PoolPerTenant mode, is each tenant runner's pool size
	// (default DefaultTenantPoolSize). Each runner also holds one LISTEN
	// connection, unless cloacina.WithoutListen is given.
	PoolSize int
	// MaxConnections, in PoolPerTenant mode, caps the connections of all
	// tenant runners together (0: no cap): at most
	// MaxConnections / (PoolSize+1) runners are open at once (PoolSize
	// with cloacina.WithoutListen). When a tenant needs a runner and the
	// cap is reached, the least recently used runner that has no work in
	// progress is shut down; when every runner is busy, the call waits
	// until one is free or its context ends (ErrConnectionLimit).
	MaxConnections int
	// IdleTimeout, in PoolPerTenant mode, shuts a tenant's runner down
	// once the tenant has not been used for that long and has no work in
	// progress (0: never). The next use opens it again.
	IdleTimeout time.Duration
	// RolePrefix is the prefix of the tenants' role names (default
	// SecureRolePrefix, "user_"): tenant ID's role is RolePrefix+ID.
	// PostgreSQL roles belong to the whole server (cluster), schemas to one
	// database: two deployments on two databases of one server must use
	// different prefixes, or the second one's CreateTenant of an id the
	// first one has fails with ErrTenantExists. It must start with an
	// ASCII letter or underscore, hold only ASCII letters, digits and
	// underscores, and be at most 32 bytes long. Changing it orphans the
	// tenants created with the old prefix (their credentials name the old
	// role): keep it for the life of a deployment.
	RolePrefix string
}

// maxRolePrefixLength is the longest SecureConfig.RolePrefix.
const maxRolePrefixLength = 32

// rolePrefix returns the configured role prefix or the default one.
func (cfg SecureConfig) rolePrefix() string {
	if cfg.RolePrefix == "" {
		return SecureRolePrefix
	}
	return cfg.RolePrefix
}

// SecureManager is a [Manager] whose tenants each have their own
// PostgreSQL login role, created by an [Admin] as in the guide's
// "Multi-Tenant Service with Per-Tenant Credentials": tenant id ID has
// the schema tenant_ID and the role user_ID, with a generated password
// kept in a [CredentialStore]. Every tenant's runner works with its own
// role's privileges, so the database itself keeps tenants apart: a
// tenant's runner cannot read or write another tenant's schema, create
// objects, or apply migrations (the manager applies pending migrations
// with the Admin when a runner needs them).
//
// Unlike the other managers, a SecureManager creates tenants only through
// [SecureManager.CreateTenant]: Runner, Execute, ExecuteAsync and Metrics
// for a tenant without credentials return an error wrapping
// [ErrTenantNotFound] instead of creating it. Tenants and Exists report
// the tenants with credentials in the store. Remove shuts the runner
// down, removes the schema and role with the Admin and deletes the
// credentials.
//
// In [PoolPerTenant] mode, a runner obtained from Runner may be shut down
// by the connection cap or the idle timeout when it has no work in
// progress, and by RotatePassword; its methods then return
// [cloacina.ErrRunnerClosed]: call Runner again. Runners open on first
// use: work left by an earlier process runs once the tenant is used again.
// In [SharedPoolSwitchRole] mode every tenant with credentials is attached
// when the manager starts.
//
// It is safe for concurrent use.
type SecureManager struct {
	manager
	b *secureBackend

	stopOnce    sync.Once
	stopJanitor context.CancelFunc
	janitorDone chan struct{}
}

var _ Manager = (*SecureManager)(nil)

// NewSecureManager starts a SecureManager. opts are the runners' options
// (workflows, concurrency, logger...); cloacina.WithSchema and
// cloacina.WithTenantRole are refused with [cloacina.ErrInvalidOption]
// (the manager sets them), and so are, in PoolPerTenant mode,
// cloacina.WithListenURL and cloacina.WithDBPoolSize (use
// SecureConfig.PoolSize). In SharedPoolSwitchRole mode opts go to the
// engine, as for [NewPostgresManager], and every tenant with credentials
// is attached at start under NewPostgresManager's rule: a tenant that
// fails is logged with its id and skipped (its next use tries again); the
// start fails only when every tenant fails or ctx ends.
func NewSecureManager(ctx context.Context, cfg SecureConfig, opts ...cloacina.Option) (*SecureManager, error) {
	rc := readOptions(opts)
	if err := cfg.check(rc); err != nil {
		return nil, err
	}
	log := rc.Logger
	if log == nil {
		log = slog.Default()
	}
	b := &secureBackend{mode: cfg.Mode, admin: cfg.Admin, creds: cfg.Credentials, held: map[string]time.Time{},
		rolePrefix: cfg.rolePrefix()}
	b.maxID = MaxIDLength - max(len(SecureSchemaPrefix), len(b.rolePrefix))
	m := &SecureManager{b: b}
	switch cfg.Mode {
	case PoolPerTenant:
		size := cfg.PoolSize
		if size == 0 {
			size = DefaultTenantPoolSize
		}
		perRunner := size + 1
		if rc.DisableListen {
			perRunner = size
		}
		if cfg.MaxConnections > 0 {
			b.maxRunners = cfg.MaxConnections / perRunner
			if b.maxRunners < 1 {
				return nil, fmt.Errorf("%w: MaxConnections %d is below one tenant runner's %d connections", cloacina.ErrInvalidOption, cfg.MaxConnections, perRunner)
			}
		}
		b.runnerOpts = append(slices.Clone(opts), cloacina.WithDBPoolSize(size))
		b.log = log.With("component", "tenant", "backend", "secure", "mode", cfg.Mode.String())
	case SharedPoolSwitchRole:
		pc, err := pgx.ParseConfig(cfg.ServiceURL)
		if err != nil {
			return nil, redactError(fmt.Errorf("%w: ServiceURL %s: %w", cloacina.ErrInvalidOption, cloacina.RedactURL(cfg.ServiceURL), err), urlPassword(cfg.ServiceURL))
		}
		b.serviceRole = pc.User
		e, err := cloacina.NewEngine(ctx, cfg.ServiceURL, opts...)
		if err != nil {
			return nil, redactError(fmt.Errorf("tenant: starting the engine: %w", err), urlPassword(cfg.ServiceURL), pc.Password)
		}
		b.engine = e
		b.log = log.With("component", "tenant", "backend", "secure", "mode", cfg.Mode.String())
	}
	m.init(b, rc, b.log)
	b.m = &m.manager
	if cfg.Mode == PoolPerTenant && cfg.IdleTimeout > 0 {
		jctx, cancel := context.WithCancel(context.Background())
		m.stopJanitor, m.janitorDone = cancel, make(chan struct{})
		go m.janitor(jctx, cfg.IdleTimeout)
	}
	if cfg.Mode == SharedPoolSwitchRole {
		if err := m.attachExisting(ctx); err != nil {
			if cerr := m.Close(context.WithoutCancel(ctx)); cerr != nil {
				b.log.Warn("closing a manager that failed to start", "err", cerr)
			}
			return nil, err
		}
	}
	return m, nil
}

// check validates the configuration; o is what opts set.
func (cfg SecureConfig) check(o cloacina.Config) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{cloacina.ErrInvalidOption}, args...)...)
	}
	switch {
	case cfg.Admin == nil:
		return bad("SecureConfig.Admin is nil")
	case cfg.Credentials == nil:
		return bad("SecureConfig.Credentials is nil")
	case o.Schema != "":
		return bad("WithSchema: a SecureManager names each tenant's schema tenant_<id>")
	case o.TenantRole != "":
		return bad("WithTenantRole: a SecureManager uses each tenant's own role")
	case cfg.PoolSize < 0, cfg.MaxConnections < 0, cfg.IdleTimeout < 0:
		return bad("negative PoolSize, MaxConnections or IdleTimeout")
	case len(cfg.RolePrefix) > maxRolePrefixLength:
		return bad("RolePrefix is %d bytes long, the limit is %d", len(cfg.RolePrefix), maxRolePrefixLength)
	case cfg.RolePrefix != "" && ValidateID(cfg.RolePrefix+"x", false) != nil:
		return bad("RolePrefix %s: it must start with an ASCII letter or underscore and hold only ASCII letters, digits and underscores", quoteID(cfg.RolePrefix))
	}
	switch cfg.Mode {
	case PoolPerTenant:
		switch {
		case cfg.ServiceURL != "":
			return bad("ServiceURL is for SharedPoolSwitchRole mode")
		case o.ListenURL != "":
			return bad("WithListenURL: in PoolPerTenant mode each runner listens with its tenant's credentials")
		case o.DBPoolSize != 0:
			return bad("WithDBPoolSize: in PoolPerTenant mode use SecureConfig.PoolSize")
		}
	case SharedPoolSwitchRole:
		switch {
		case urlKind(cfg.ServiceURL) != "postgres":
			return fmt.Errorf("%w: ServiceURL %q: SharedPoolSwitchRole needs a postgres:// or postgresql:// URL",
				cloacina.ErrUnsupportedDatabase, cloacina.RedactURL(cfg.ServiceURL))
		case cfg.PoolSize != 0, cfg.MaxConnections != 0, cfg.IdleTimeout != 0:
			return bad("PoolSize, MaxConnections and IdleTimeout are for PoolPerTenant mode (size the shared pool with WithDBPoolSize)")
		}
	default:
		return bad("unknown SecureConfig.Mode %v", cfg.Mode)
	}
	return nil
}

// urlPassword returns the password of a URL, or "".
func urlPassword(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	p, _ := u.User.Password()
	return p
}

// CreateTenant creates the tenant id: the Admin creates its role user_ID
// (SecureConfig.RolePrefix+ID)
// with a generated password and its schema tenant_ID (migrated), in
// SharedPoolSwitchRole mode grants the role to the service role, and the
// credentials go to the store. It returns the credentials (printing them
// hides the password). On any error nothing is left behind.
//
// An invalid id (see [ValidateID]; at most [MaxSecureIDLength] bytes, less
// with a long SecureConfig.RolePrefix) is
// an error wrapping [cloacina.ErrInvalidTenantID]; a tenant that already
// has credentials, a schema or a role, one wrapping [ErrTenantExists].
// The runner opens on first use.
func (m *SecureManager) CreateTenant(ctx context.Context, tenantID string) (*TenantCredentials, error) {
	if err := m.check(tenantID); err != nil {
		return nil, err
	}
	s, err := m.lock(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	defer m.unlock(tenantID, s)
	b := m.b
	if _, err := b.creds.Get(ctx, tenantID); err == nil {
		return nil, fmt.Errorf("%w: %q has credentials", ErrTenantExists, tenantID)
	} else if !errors.Is(err, ErrTenantNotFound) {
		return nil, fmt.Errorf("tenant %q: reading its credentials: %w", tenantID, err)
	}
	c, err := b.admin.CreateTenant(ctx, TenantConfig{Schema: SecureSchemaPrefix + tenantID, Username: b.rolePrefix + tenantID})
	if err != nil {
		return nil, fmt.Errorf("tenant %q: %w", tenantID, err)
	}
	undo := func(cause error) error {
		cause = redactError(cause, c.Password)
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deleteTimeout)
		defer cancel()
		errs := []error{cause}
		if err := b.creds.Delete(uctx, tenantID); err != nil {
			errs = append(errs, fmt.Errorf("undoing: deleting its credentials: %w", err))
		}
		if err := b.admin.RemoveTenant(uctx, c.Schema, c.Username); err != nil {
			errs = append(errs, fmt.Errorf("undoing: removing the tenant: %w", err))
		}
		return redactError(errors.Join(errs...), c.Password)
	}
	if b.mode == SharedPoolSwitchRole {
		if err := b.admin.GrantTenantRole(ctx, c.Username, b.serviceRole); err != nil {
			return nil, undo(fmt.Errorf("tenant %q: %w", tenantID, err))
		}
	}
	if err := b.creds.Put(ctx, tenantID, c); err != nil {
		return nil, undo(fmt.Errorf("tenant %q: storing its credentials: %w", tenantID, err))
	}
	m.log.Info("tenant created", append([]any{"tenant", tenantID}, b.where(tenantID)...)...)
	out := *c
	return &out, nil
}

// RotatePassword gives the tenant's role a new generated password (see
// [Admin.RotatePassword]), stores it, and returns the new credentials. In
// PoolPerTenant mode an open runner of the tenant is shut down (waiting
// for its running tasks until ctx ends) and reopened with the new
// password; calls using the old runner end with [cloacina.ErrRunnerClosed]
// and work left by it is picked up by the new one. In
// SharedPoolSwitchRole mode the runner uses the service role's
// connections and goes on untouched.
//
// Should storing the new password fail, the old one is set again, so the
// stored credentials stay valid.
func (m *SecureManager) RotatePassword(ctx context.Context, tenantID string) (*TenantCredentials, error) {
	if err := m.check(tenantID); err != nil {
		return nil, err
	}
	s, err := m.lock(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	defer m.unlock(tenantID, s)
	b := m.b
	old, err := b.get(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	pw, err := b.admin.RotatePassword(ctx, old.Username, "")
	if err != nil {
		return nil, redactError(fmt.Errorf("tenant %q: %w", tenantID, err), old.Password)
	}
	nc := *old
	nc.Password = pw
	nc.ConnectionString = b.withPassword(old, pw)
	if err := b.creds.Put(ctx, tenantID, &nc); err != nil {
		err = fmt.Errorf("tenant %q: storing the new password: %w", tenantID, err)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deleteTimeout)
		defer cancel()
		if _, rerr := b.admin.RotatePassword(rctx, old.Username, old.Password); rerr != nil {
			err = errors.Join(err, fmt.Errorf("setting the old password again: %w", rerr))
		}
		return nil, redactError(err, pw, old.Password)
	}
	m.log.Info("tenant password rotated", append([]any{"tenant", tenantID}, b.where(tenantID)...)...)
	out := nc
	if b.mode != PoolPerTenant {
		return &out, nil
	}
	m.mu.Lock()
	r := s.runner
	s.runner = nil
	m.mu.Unlock()
	if r == nil {
		return &out, nil
	}
	if err := r.Shutdown(ctx); err != nil {
		m.log.Warn("shutting down the runner of a tenant whose password changed", "tenant", tenantID, "err", err)
	}
	b.waitGone(ctx, old.Username)
	nr, err := b.startRunner(ctx, tenantID, &nc)
	if err != nil {
		b.release(tenantID)
		return nil, fmt.Errorf("tenant %q: password rotated; reopening its runner: %w", tenantID, err)
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		if err := nr.Shutdown(context.WithoutCancel(ctx)); err != nil {
			m.log.Warn("shutting down a runner opened during Close", "tenant", tenantID, "err", err)
		}
		return &out, nil
	}
	s.runner = nr
	m.mu.Unlock()
	return &out, nil
}

// Runner returns the tenant's runner, opening it when needed; a tenant
// without credentials is an error wrapping [ErrTenantNotFound] (see
// [SecureManager.CreateTenant]).
func (m *SecureManager) Runner(ctx context.Context, tenantID string) (*cloacina.Runner, error) {
	m.b.touch(tenantID)
	defer m.b.touch(tenantID)
	return m.manager.Runner(ctx, tenantID)
}

// ExistingRunner is Runner: a SecureManager never creates a tenant on use.
func (m *SecureManager) ExistingRunner(ctx context.Context, tenantID string) (*cloacina.Runner, error) {
	m.b.touch(tenantID)
	defer m.b.touch(tenantID)
	return m.manager.ExistingRunner(ctx, tenantID)
}

// Execute runs a workflow for a tenant and waits for the result.
func (m *SecureManager) Execute(ctx context.Context, tenantID, workflow string, input any) (*cloacina.Result, error) {
	m.b.touch(tenantID)
	defer m.b.touch(tenantID)
	return m.manager.Execute(ctx, tenantID, workflow, input)
}

// ExecuteAsync starts a workflow for a tenant.
func (m *SecureManager) ExecuteAsync(ctx context.Context, tenantID, workflow string, input any) (*cloacina.ExecutionHandle, error) {
	m.b.touch(tenantID)
	defer m.b.touch(tenantID)
	return m.manager.ExecuteAsync(ctx, tenantID, workflow, input)
}

// Metrics returns the tenant's metrics.
func (m *SecureManager) Metrics(ctx context.Context, tenantID string) (*cloacina.Metrics, error) {
	// Not activity: a monitoring scrape must not keep idle tenants open
	// (see Manager.Metrics).
	return m.manager.Metrics(ctx, tenantID)
}

// Remove deletes the tenant: it cancels the tenant's running tasks at once,
// waits for them to return until ctx ends (the grace), then removes its
// schema and role with the Admin (refusing, with an error wrapping
// [ErrForeignStorage] and [ErrNotTenant], a schema or role without the
// Admin's markers) and deletes its credentials, even when ctx has ended
// by then. A tenant without credentials is [ErrTenantNotFound]. Unlike the
// other managers, no later call re-creates the tenant: Runner, Execute and
// the others return [ErrTenantNotFound] until CreateTenant creates it
// again, with a new password.
func (m *SecureManager) Remove(ctx context.Context, tenantID string) error {
	return m.manager.Remove(ctx, tenantID)
}

// Close stops closing idle runners, then closes the manager as
// [PostgresManager.Close] does (in SharedPoolSwitchRole mode it shuts the
// engine down). It closes neither the Admin nor the credential store.
func (m *SecureManager) Close(ctx context.Context) error {
	m.stopOnce.Do(func() {
		if m.stopJanitor != nil {
			m.stopJanitor()
			<-m.janitorDone
		}
	})
	return m.manager.Close(ctx)
}

// Mode returns the manager's mode.
func (m *SecureManager) Mode() SecureMode { return m.b.mode }

// Engine returns the engine shared by every tenant in SharedPoolSwitchRole
// mode, nil in PoolPerTenant mode. Attaching a tenant through it bypasses
// the manager.
func (m *SecureManager) Engine() *cloacina.Engine { return m.b.engine }

// OpenRunners returns how many tenant runners are open.
func (m *SecureManager) OpenRunners() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, s := range m.slots {
		if s.runner != nil {
			n++
		}
	}
	return n
}

// String describes the manager, without secrets.
func (m *SecureManager) String() string {
	return fmt.Sprintf("SecureManager{mode: %v, open runners: %d}", m.b.mode, m.OpenRunners())
}

// GoString is String, so that %#v shows no secrets either.
func (m *SecureManager) GoString() string { return "&tenant." + m.String() }

// janitor shuts down the runners of tenants idle for longer than idle,
// until ctx ends.
func (m *SecureManager) janitor(ctx context.Context, idle time.Duration) {
	defer close(m.janitorDone)
	every := min(max(idle/4, 10*time.Millisecond), 30*time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, id := range m.b.idleTenants(idle) {
			if ctx.Err() != nil {
				return
			}
			if m.b.evict(ctx, id, idle) {
				m.log.Debug("idle tenant runner shut down", "tenant", id)
			}
		}
	}
}

// secureBackend is the backend of SecureManager: tenants with credentials
// in a store, each run as its own role.
type secureBackend struct {
	mode  SecureMode
	admin *Admin
	creds CredentialStore
	log   *slog.Logger
	m     *manager // the core, for evicting runners

	rolePrefix string // SecureConfig.RolePrefix or the default
	maxID      int    // the longest valid tenant id

	// PoolPerTenant
	runnerOpts []cloacina.Option
	maxRunners int // 0: no cap
	mu         sync.Mutex
	held       map[string]time.Time // tenants holding a runner's connections, by last use

	// SharedPoolSwitchRole
	engine      *cloacina.Engine
	serviceRole string
}

func (b *secureBackend) validate(id string) error {
	if err := ValidateID(id, false); err != nil {
		return err
	}
	if len(id) > b.maxID {
		return fmt.Errorf("%w: %s: it is %d bytes long, the limit is %d (the schema is %s<id>, the role %s<id>)",
			cloacina.ErrInvalidTenantID, quoteID(id), len(id), b.maxID, SecureSchemaPrefix, b.rolePrefix)
	}
	return nil
}

// foreign is always nil: the Admin checks its own markers on the schema and
// role before it drops them (see Admin.RemoveTenant).
func (b *secureBackend) foreign(context.Context, string) error { return nil }

func (b *secureBackend) where(id string) []any {
	return []any{"schema", SecureSchemaPrefix + id, "role", b.rolePrefix + id}
}

// get reads the tenant's credentials and checks that they name the
// tenant's own schema and role: a store edited to name another tenant's
// could otherwise make the manager remove or run as that tenant.
func (b *secureBackend) get(ctx context.Context, id string) (*TenantCredentials, error) {
	c, err := b.creds.Get(ctx, id)
	if err != nil {
		if errors.Is(err, ErrTenantNotFound) {
			return nil, fmt.Errorf("%w: %q has no credentials (create it with CreateTenant)", ErrTenantNotFound, id)
		}
		return nil, fmt.Errorf("tenant %q: reading its credentials: %w", id, err)
	}
	if c.Schema != SecureSchemaPrefix+id || c.Username != b.rolePrefix+id {
		return nil, fmt.Errorf("%w: the stored credentials of %q name schema %q and role %q", ErrNotTenant, id, c.Schema, c.Username)
	}
	return c, nil
}

func (b *secureBackend) open(ctx context.Context, id string) (*cloacina.Runner, bool, error) {
	c, err := b.get(ctx, id)
	if err != nil {
		return nil, false, err
	}
	if b.mode == SharedPoolSwitchRole {
		r, err := b.withMigration(ctx, c, func() (*cloacina.Runner, error) {
			return b.engine.Runner(ctx, c.Schema, cloacina.WithTenantRole(c.Username), cloacina.WithTenantLabel(id),
				cloacina.WithAnalyzeFunc(b.admin.Analyze))
		})
		if err != nil {
			return nil, false, fmt.Errorf("tenant %q: attaching its schema: %w", id, err)
		}
		return r, false, nil
	}
	if err := b.reserve(ctx, id); err != nil {
		return nil, false, err
	}
	r, err := b.startRunner(ctx, id, c)
	if err != nil {
		b.release(id)
		return nil, false, err
	}
	return r, false, nil
}

// startRunner starts a PoolPerTenant runner connected as the tenant.
func (b *secureBackend) startRunner(ctx context.Context, id string, c *TenantCredentials) (*cloacina.Runner, error) {
	r, err := b.withMigration(ctx, c, func() (*cloacina.Runner, error) {
		return cloacina.NewRunnerWithSchema(ctx, c.ConnectionString, c.Schema,
			append(slices.Clip(b.runnerOpts), cloacina.WithTenantLabel(id), cloacina.WithAnalyzeFunc(b.admin.Analyze))...)
	})
	if err != nil {
		return nil, redactError(fmt.Errorf("tenant %q: starting its runner as role %s: %w", id, c.Username, err), c.Password)
	}
	return r, nil
}

// withMigration runs start and, should the schema need migrations that
// the tenant's role may not apply, applies them with the Admin and runs
// start again.
func (b *secureBackend) withMigration(ctx context.Context, c *TenantCredentials, start func() (*cloacina.Runner, error)) (*cloacina.Runner, error) {
	r, err := start()
	if !errors.Is(err, cloacina.ErrMigrationRequired) {
		return r, redactError(err, c.Password)
	}
	n, merr := b.admin.Migrate(ctx, c.Schema)
	if merr != nil {
		return nil, errors.Join(redactError(err, c.Password), fmt.Errorf("applying the migrations: %w", merr))
	}
	b.log.Info("tenant schema migrated", "schema", c.Schema, "migrations", n)
	r, err = start()
	return r, redactError(err, c.Password)
}

// withPassword returns the tenant's connection string with password pw.
func (b *secureBackend) withPassword(c *TenantCredentials, pw string) string {
	u, err := url.Parse(c.ConnectionString)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return b.admin.tenantURL(c.Username, pw)
	}
	u.User = url.UserPassword(c.Username, pw)
	if q := u.Query(); q.Has("password") {
		q.Del("password")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// reserve takes one of the maxRunners places for the tenant's runner,
// shutting down the least recently used idle runner when none is free,
// and waiting until ctx ends when every runner is busy.
func (b *secureBackend) reserve(ctx context.Context, id string) error {
	for {
		b.mu.Lock()
		if b.maxRunners == 0 || len(b.held) < b.maxRunners {
			b.held[id] = time.Now()
			b.mu.Unlock()
			return nil
		}
		type cand struct {
			id   string
			used time.Time
		}
		cands := make([]cand, 0, len(b.held))
		for oid, used := range b.held {
			if oid != id {
				cands = append(cands, cand{oid, used})
			}
		}
		b.mu.Unlock()
		slices.SortFunc(cands, func(x, y cand) int { return x.used.Compare(y.used) })
		evicted := false
		for _, c := range cands {
			if b.evict(ctx, c.id, 0) {
				b.log.Debug("least recently used tenant runner shut down", "tenant", c.id, "for", id)
				evicted = true
				break
			}
		}
		if evicted {
			continue
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: tenant %q: all %d tenant runners the connection cap allows are busy: %w",
				ErrConnectionLimit, id, b.maxRunners, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// release gives the tenant's place back.
func (b *secureBackend) release(id string) {
	b.mu.Lock()
	delete(b.held, id)
	b.mu.Unlock()
}

// touch records a use of the tenant.
func (b *secureBackend) touch(id string) {
	b.mu.Lock()
	if _, ok := b.held[id]; ok {
		b.held[id] = time.Now()
	}
	b.mu.Unlock()
}

// idleTenants returns the tenants with a runner unused for idle.
func (b *secureBackend) idleTenants(idle time.Duration) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var ids []string
	for id, used := range b.held {
		if time.Since(used) >= idle {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// evict shuts the tenant's runner down if nothing is using it: no call of
// the manager, no operation holding the tenant's lock, and no work in
// progress in its schema (no pending or running execution, no ready or
// running task), then gives its place back once the server has ended its
// sessions. It reports whether it did (see manager.evict).
func (b *secureBackend) evict(ctx context.Context, id string, minIdle time.Duration) bool {
	return b.m.evict(ctx, id, minIdle, runnerBusy, func(ctx context.Context) {
		b.waitGone(ctx, b.rolePrefix+id)
		b.release(id)
	})
}

// runnerBusy reports whether the runner's schema has work in progress (or
// the metrics cannot be read).
func runnerBusy(ctx context.Context, r *cloacina.Runner) bool {
	mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	mt, err := r.Metrics(mctx)
	if err != nil {
		return true
	}
	return mt.RunningTasks > 0 || mt.ReadyTasks > 0 ||
		mt.ByStatus[cloacina.ExecutionPending] > 0 || mt.ByStatus[cloacina.ExecutionRunning] > 0
}

// waitGone waits (at most goneWait) until the server has ended the
// sessions of role in the database, once its runner is shut down, so that
// the connection cap holds as the server counts: a closed connection's
// backend lingers for a moment after the client has gone. Only with a
// cap.
func (b *secureBackend) waitGone(ctx context.Context, role string) {
	if b.maxRunners == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, goneWait)
	defer cancel()
	for {
		var n int
		err := b.admin.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
WHERE usename = $1 AND datname = current_database()`, role).Scan(&n)
		if err != nil || n == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// list returns the tenants with credentials (valid ids only).
func (b *secureBackend) list(ctx context.Context) ([]string, error) {
	ids, err := b.creds.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("tenant: listing tenants: %w", err)
	}
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if b.validate(id) == nil {
			out = append(out, id)
		}
	}
	return out, nil
}

func (b *secureBackend) exists(ctx context.Context, id string) (bool, error) {
	_, err := b.creds.Get(ctx, id)
	if errors.Is(err, ErrTenantNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("tenant %q: reading its credentials: %w", id, err)
	}
	return true, nil
}

// delete removes the tenant's schema and role, then its credentials (kept
// should the removal fail, so that Remove can be tried again).
func (b *secureBackend) delete(ctx context.Context, id string) error {
	// Remove has shut the runner down: give its place back once the
	// server has ended its sessions.
	b.mu.Lock()
	_, held := b.held[id]
	b.mu.Unlock()
	if held {
		b.waitGone(ctx, b.rolePrefix+id)
		b.release(id)
	}
	c, err := b.get(ctx, id)
	if errors.Is(err, ErrTenantNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := b.admin.RemoveTenant(ctx, c.Schema, c.Username); err != nil {
		if errors.Is(err, ErrNotTenant) {
			err = fmt.Errorf("%w: %w", ErrForeignStorage, err)
		}
		return redactError(err, c.Password)
	}
	if err := b.creds.Delete(ctx, id); err != nil {
		return fmt.Errorf("deleting its credentials: %w", err)
	}
	return nil
}

func (b *secureBackend) close(ctx context.Context) error {
	if b.engine == nil {
		return nil
	}
	if err := b.engine.Shutdown(ctx); err != nil {
		return fmt.Errorf("shutting the engine down: %w", err)
	}
	return nil
}
