package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/internal/demo"
	"github.com/cloacina-go/cloacina/metrics"
	"github.com/cloacina-go/cloacina/server"
	"github.com/cloacina-go/cloacina/server/apikey"
	"github.com/cloacina-go/cloacina/tenant"
)

// Defaults of serve.
const (
	defaultAddr            = "127.0.0.1:8080"
	defaultDataDir         = "cloacina-data"
	defaultShutdownTimeout = 30 * time.Second
	// keyStoreFile is the API key store in the data folder in SQLite
	// mode. Not a .db file: the SQLite manager takes <id>.db files for
	// tenants.
	keyStoreFile = "server.sqlite"
	// credentialsFile is the default credential store of --tenant-roles.
	credentialsFile = "credentials.json"
	// minAdminKeyLength is the shortest --admin-key accepted.
	minAdminKeyLength = 16
	// adminKeyFile is where, in the data folder, the first start writes
	// the admin key it generates (mode 0600), instead of printing it.
	adminKeyFile = "admin.key"
	// defaultTenantTasks is the default of --max-concurrent-tasks: the
	// task slots of one tenant.
	defaultTenantTasks = cloacina.DefaultMaxConcurrentTasks
	// minTotalTasks is the smallest default of --total-concurrent-tasks,
	// which is otherwise totalPerTenantFactor times the per-tenant slots.
	minTotalTasks        = 16
	totalPerTenantFactor = 4
	// defaultMaxConnsPerClient is the default of --max-conns-per-client:
	// enough for a busy client's keep-alive pool and long polls, few
	// enough that one address cannot hold the process's file descriptors.
	defaultMaxConnsPerClient = 256
)

// singleTenantVars returns the guide's .env settings of a one-tenant
// runner, which commands working on every tenant refuse rather than
// ignore.
func singleTenantVars() []string { return []string{tenant.EnvTenantID, tenant.EnvDefaultSchema} }

// singleTenantWhy says why command refuses one of singleTenantVars, and
// what to do instead.
func singleTenantWhy(command string) func(name string) string {
	return func(name string) string {
		what := "serve serves every tenant, each in its own SQLite file or PostgreSQL schema (create them with cloacina tenant create)"
		if command == "cloacina migrate" {
			what = "migrate works on every tenant, or on the one named by --tenant (CLOACINA_TENANT)"
		}
		return fmt.Sprintf("it is the guide's setting for a runner that serves one tenant, while %s. Remove %s from the environment or the .env file", what, name)
	}
}

// storageFlags are the flags that choose the database: serve and migrate
// share them.
type storageFlags struct {
	dataDir         string
	databaseURL     string
	tenantRoles     bool
	credentialsFile string
	serviceURL      string
	// rolePrefix is serve's --tenant-role-prefix ("": tenant's default,
	// user_); migrate does not take it: it finds the tenants' roles from
	// their schemas.
	rolePrefix string
	// idleTimeout is serve's --idle-timeout: how long an unused SQLite
	// tenant stays open (0: always open). migrate keeps every tenant
	// open until it is done.
	idleTimeout time.Duration
}

// add adds the storage flags to cmd.
func (sf *storageFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&sf.dataDir, "data-dir", defaultDataDir, "folder of the SQLite tenant files (and of the key store and credentials file)")
	bindEnv(fl, "data-dir", "CLOACINA_DATA_DIR")
	fl.StringVar(&sf.databaseURL, "database-url", "", "postgres:// URL: keep each tenant in a schema of this database instead of SQLite files")
	bindEnv(fl, "database-url", "DATABASE_URL", "CLOACINA_DATABASE_URL")
	fl.BoolVar(&sf.tenantRoles, "tenant-roles", false, "PostgreSQL: give each tenant its own database role (schema tenant_<id>, role user_<id>; serve's --tenant-role-prefix changes user_)")
	bindEnv(fl, "tenant-roles", "CLOACINA_TENANT_ROLES")
	fl.StringVar(&sf.credentialsFile, "credentials-file", "", "--tenant-roles: the tenants' passwords (default <data-dir>/"+credentialsFile+", mode 0600)")
	bindEnv(fl, "credentials-file", "CLOACINA_CREDENTIALS_FILE")
	fl.StringVar(&sf.serviceURL, "service-url", "", "--tenant-roles: postgres:// URL of the service role whose shared pool switches to each tenant's role (default: --database-url)")
	bindEnv(fl, "service-url", "CLOACINA_SERVICE_URL")
}

// check validates the combination of storage flags.
func (sf *storageFlags) check() error {
	if sf.databaseURL != "" && !isPostgresURL(sf.databaseURL) {
		return usagef("--database-url %s: want a postgres:// or postgresql:// URL (SQLite needs no URL: see --data-dir)", cloacina.RedactURL(sf.databaseURL))
	}
	if sf.tenantRoles && sf.databaseURL == "" {
		return usagef("--tenant-roles needs PostgreSQL: set --database-url (or DATABASE_URL)")
	}
	if !sf.tenantRoles && (sf.serviceURL != "" || sf.credentialsFile != "") {
		return usagef("--service-url and --credentials-file go with --tenant-roles")
	}
	if sf.rolePrefix != "" && !sf.tenantRoles {
		return usagef("--tenant-role-prefix goes with --tenant-roles: without it tenants have no role of their own")
	}
	if sf.serviceURL != "" && !isPostgresURL(sf.serviceURL) {
		return usagef("--service-url %s: want a postgres:// or postgresql:// URL", cloacina.RedactURL(sf.serviceURL))
	}
	if sf.dataDir == "" {
		return usagef("--data-dir is empty")
	}
	return nil
}

func isPostgresURL(u string) bool {
	return strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://")
}

// describe says where the tenants are kept.
func (sf *storageFlags) describe() string {
	switch {
	case sf.tenantRoles && sf.rolePrefix != "":
		return "PostgreSQL " + cloacina.RedactURL(sf.databaseURL) + ": a schema and a role " + sf.rolePrefix + "<id> per tenant"
	case sf.tenantRoles:
		return "PostgreSQL " + cloacina.RedactURL(sf.databaseURL) + ": a schema and a role per tenant"
	case sf.databaseURL != "":
		return "PostgreSQL " + cloacina.RedactURL(sf.databaseURL) + ": a schema per tenant"
	}
	dir, err := filepath.Abs(sf.dataDir)
	if err != nil {
		dir = sf.dataDir
	}
	return "SQLite: a file per tenant in " + dir
}

// backend is an open tenant manager with what it needs closed after it.
type backend struct {
	m     tenant.Manager
	admin *tenant.Admin // --tenant-roles only
	once  sync.Once
	err   error
}

// close closes the manager, then the admin, and reports whether this
// call did it; calls after the first return the first one's error.
func (b *backend) close(ctx context.Context) (first bool, err error) {
	b.once.Do(func() {
		first = true
		b.err = b.m.Close(ctx)
		if b.admin != nil {
			b.admin.Close()
		}
	})
	return first, b.err
}

// openBackend opens the tenant manager the flags choose; opts go to its
// runners.
func (sf *storageFlags) openBackend(ctx context.Context, log *slog.Logger, opts ...cloacina.Option) (*backend, error) {
	switch {
	case sf.databaseURL == "":
		cfg := tenant.SQLiteConfig{IdleTimeout: sf.idleTimeout}
		if sf.idleTimeout == 0 {
			cfg.IdleTimeout = -1 // never closed
		}
		m, err := tenant.NewSQLiteManagerWithConfig(sf.dataDir, cfg, opts...)
		if err != nil {
			return nil, err
		}
		return &backend{m: m}, nil
	case !sf.tenantRoles:
		m, err := tenant.NewPostgresManager(ctx, sf.databaseURL, opts...)
		if err != nil {
			return nil, err
		}
		return &backend{m: m}, nil
	}
	admin, err := tenant.NewAdmin(ctx, sf.databaseURL)
	if err != nil {
		return nil, err
	}
	credPath := sf.credentialsFile
	if credPath == "" {
		credPath = filepath.Join(sf.dataDir, credentialsFile)
	}
	creds, err := tenant.NewFileCredentialStore(credPath)
	if err != nil {
		admin.Close()
		return nil, err
	}
	serviceURL := sf.serviceURL
	if serviceURL == "" {
		serviceURL = sf.databaseURL
		log.Warn("--service-url not set: the shared pool logs in as the admin role and switches to each tenant's role per transaction; for defence in depth use a NOINHERIT service role with only CONNECT")
	}
	m, err := tenant.NewSecureManager(ctx, tenant.SecureConfig{
		Mode:        tenant.SharedPoolSwitchRole,
		Admin:       admin,
		Credentials: creds,
		ServiceURL:  serviceURL,
		RolePrefix:  sf.rolePrefix,
	}, opts...)
	if err != nil {
		admin.Close()
		if errors.Is(err, cloacina.ErrInvalidOption) && sf.rolePrefix != "" {
			// The one setting of this call that the flags do not check.
			return nil, usagef("--tenant-role-prefix %q: %w", sf.rolePrefix, err)
		}
		return nil, err
	}
	return &backend{m: m, admin: admin}, nil
}

// keyStoreURL is where the API keys are kept: the PostgreSQL database, or
// a SQLite file in the data folder.
func (sf *storageFlags) keyStoreURL() (string, error) {
	if sf.databaseURL != "" {
		return sf.databaseURL, nil
	}
	dir, err := filepath.Abs(sf.dataDir)
	if err != nil {
		return "", fmt.Errorf("--data-dir %s: %w", sf.dataDir, err)
	}
	return "sqlite://" + filepath.Join(dir, keyStoreFile), nil
}

// serveFlags are serve's own flags.
type serveFlags struct {
	storage         storageFlags
	addr            string
	adminKey        string
	noAuth          bool
	logFormat       string
	logLevel        string
	shutdownTimeout time.Duration
	eventLog        string
	// tenantTasks are one tenant's task slots (--max-concurrent-tasks);
	// totalTasks all tenants' together on PostgreSQL's shared engine
	// (--total-concurrent-tasks, 0: the default).
	tenantTasks int
	totalTasks  int
	taskTimeout time.Duration
	dbPoolSize  int
	// The HTTP server's limits (server.Config) and the per-client bound
	// on connections (server.LimitConnsPerClient; 0: none).
	maxConnsPerClient    int
	bodyReadTimeout      time.Duration
	maxInflightBodyBytes byteSize
	inflightWait         time.Duration
	tenantDeleteGrace    time.Duration
	// idleTimeoutSet: --idle-timeout was given (flag or variable), which
	// PostgreSQL refuses.
	idleTimeoutSet bool
}

// concurrency returns the per-tenant and total task slots the flags ask
// for, checking them; total is 0 on SQLite, where every tenant is an
// engine of its own.
func (f *serveFlags) concurrency() (perTenant, total int, err error) {
	if f.tenantTasks < 1 {
		return 0, 0, usagef("--max-concurrent-tasks %d: want 1 or more (a tenant's task slots)", f.tenantTasks)
	}
	if f.totalTasks < 0 {
		return 0, 0, usagef("--total-concurrent-tasks %d: want 1 or more (0: the default)", f.totalTasks)
	}
	if f.storage.databaseURL == "" {
		if f.totalTasks != 0 {
			return 0, 0, usagef("--total-concurrent-tasks is for PostgreSQL (--database-url): on SQLite every tenant runs in an engine of its own, with --max-concurrent-tasks slots, and there is no shared budget to set")
		}
		return f.tenantTasks, 0, nil
	}
	total = f.totalTasks
	if total == 0 {
		total = defaultTotalTasks(f.tenantTasks)
	}
	if total < f.tenantTasks {
		return 0, 0, usagef("--total-concurrent-tasks %d is below --max-concurrent-tasks %d: the engine's slots for all tenants must hold at least one tenant's", total, f.tenantTasks)
	}
	return f.tenantTasks, total, nil
}

// checkLimits checks the HTTP limits' flags and --idle-timeout: none may be
// negative, and the durations and sizes that the server would otherwise
// replace by their defaults may not be 0 either.
func (f *serveFlags) checkLimits() error {
	if f.maxConnsPerClient < 0 {
		return usagef("--max-conns-per-client %d: want 1 or more (0: no limit)", f.maxConnsPerClient)
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"body-read-timeout", f.bodyReadTimeout}, {"inflight-wait", f.inflightWait}, {"tenant-delete-grace", f.tenantDeleteGrace}} {
		if d.v <= 0 {
			return usagef("--%s %v: want a positive duration", d.flag, d.v)
		}
	}
	if f.maxInflightBodyBytes <= 0 {
		return usagef("--max-inflight-body-bytes %v: want a positive size (e.g. 32MiB)", f.maxInflightBodyBytes)
	}
	switch {
	case f.storage.idleTimeout < 0:
		return usagef("--idle-timeout %v: want a positive duration (0: keep every tenant open)", f.storage.idleTimeout)
	case f.storage.databaseURL != "" && f.idleTimeoutSet:
		return usagef("--idle-timeout is for SQLite: on PostgreSQL (--database-url) every tenant is served by one engine and pool, and an idle tenant holds no connection or file of its own")
	}
	return nil
}

// defaultTotalTasks is the default of --total-concurrent-tasks for
// perTenant slots a tenant.
func defaultTotalTasks(perTenant int) int {
	return max(minTotalTasks, totalPerTenantFactor*perTenant)
}

func (a *app) serveCmd() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the multi-tenant HTTP service (docs/http-api.md)",
		Long: `Run the multi-tenant HTTP service described in docs/http-api.md, with the
demo workflows hello, wait, etl and flaky.

With no flags it keeps one SQLite file per tenant in ./cloacina-data and
listens on 127.0.0.1:8080. --database-url postgres://... keeps each tenant in
a schema of that database instead; add --tenant-roles to give each tenant its
own database role.

At first start, without --admin-key, it generates an admin API key, stores
its hash and writes the key to <data-dir>/admin.key (mode 0600), printing
only the file's path. SIGTERM or SIGINT stops taking requests, lets running
requests and tasks finish (--shutdown-timeout), then exits.

--max-concurrent-tasks is the task slots of one tenant; on PostgreSQL,
where one engine serves every tenant, --total-concurrent-tasks is the slots
of all tenants together (see docs/cli.md for the trade-off).`,
		Example: `  cloacina serve
  CLOACINA_ADMIN_KEY=$(openssl rand -hex 24) cloacina serve --addr :8080 --log-format json
  cloacina serve --database-url 'postgres://cloacina:secret@localhost:5432/cloacina'
  cloacina serve --database-url "$DATABASE_URL" --tenant-roles`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f.idleTimeoutSet = a.isSet(cmd, "idle-timeout")
			return a.serve(cmd.Context(), f)
		},
	}
	f.storage.add(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.addr, "addr", defaultAddr, "address to listen on (host:port; port 0 picks a free one)")
	bindEnv(fl, "addr", "CLOACINA_ADDR")
	fl.StringVar(&f.adminKey, "admin-key", "", "the admin API key (default: a key generated at first start and written to <data-dir>/"+adminKeyFile+", mode 0600)")
	bindEnv(fl, "admin-key", "CLOACINA_ADMIN_KEY")
	fl.BoolVar(&f.noAuth, "no-auth", false, "turn authentication off (local work only: anyone reaching the port is admin)")
	bindEnv(fl, "no-auth", "CLOACINA_NO_AUTH")
	fl.StringVar(&f.logFormat, "log-format", "text", "log format on stderr: text or json")
	bindEnv(fl, "log-format", "CLOACINA_LOG_FORMAT")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	bindEnv(fl, "log-level", "CLOACINA_LOG_LEVEL")
	fl.DurationVar(&f.shutdownTimeout, "shutdown-timeout", defaultShutdownTimeout, "on SIGTERM, how long requests and running tasks get to finish")
	bindEnv(fl, "shutdown-timeout", "CLOACINA_SHUTDOWN_TIMEOUT")
	fl.IntVar(&f.tenantTasks, "max-concurrent-tasks", defaultTenantTasks, "task slots of one tenant: how many of its tasks run at once (SQLite and PostgreSQL)")
	bindEnv(fl, "max-concurrent-tasks", "CLOACINA_MAX_CONCURRENT_TASKS", "MAX_CONCURRENT_TASKS")
	fl.IntVar(&f.totalTasks, "total-concurrent-tasks", 0, fmt.Sprintf("PostgreSQL: task slots of all tenants together, at least --max-concurrent-tasks (default: %d times --max-concurrent-tasks, at least %d)", totalPerTenantFactor, minTotalTasks))
	bindEnv(fl, "total-concurrent-tasks", "CLOACINA_TOTAL_CONCURRENT_TASKS")
	fl.DurationVar(&f.taskTimeout, "task-timeout", cloacina.DefaultTaskTimeout, "how long one attempt of a task without a timeout of its own may run (TASK_TIMEOUT_SECONDS: whole seconds)")
	bindSecondsEnv(fl, "task-timeout", []string{"CLOACINA_TASK_TIMEOUT", tenant.EnvTaskTimeoutSeconds}, tenant.EnvTaskTimeoutSeconds)
	fl.IntVar(&f.dbPoolSize, "db-pool-size", cloacina.DefaultDBPoolSize, "database connections: PostgreSQL's shared pool, or each SQLite tenant file's readers (plus its one writer)")
	bindEnv(fl, "db-pool-size", "CLOACINA_DB_POOL_SIZE", tenant.EnvDBPoolSize)
	fl.IntVar(&f.maxConnsPerClient, "max-conns-per-client", defaultMaxConnsPerClient, "connections one client IP address may hold open at once; more are closed at accept (0: no limit). Behind a reverse proxy every client has the proxy's address")
	bindEnv(fl, "max-conns-per-client", "CLOACINA_MAX_CONNS_PER_CLIENT")
	fl.DurationVar(&f.bodyReadTimeout, "body-read-timeout", server.DefaultBodyReadTimeout, "how long a request's body may take to arrive after its headers (408 request_timeout then)")
	bindEnv(fl, "body-read-timeout", "CLOACINA_BODY_READ_TIMEOUT")
	f.maxInflightBodyBytes = server.DefaultMaxInFlightBodyBytes
	fl.Var(&f.maxInflightBodyBytes, "max-inflight-body-bytes", "request bodies held at once, all requests together (bytes, or with KiB, MiB, GiB); a request that does not fit waits --inflight-wait, then gets 503")
	bindEnv(fl, "max-inflight-body-bytes", "CLOACINA_MAX_INFLIGHT_BODY_BYTES")
	fl.DurationVar(&f.inflightWait, "inflight-wait", server.DefaultInFlightWait, "how long a request waits for room under --max-inflight-body-bytes before its 503")
	bindEnv(fl, "inflight-wait", "CLOACINA_INFLIGHT_WAIT")
	fl.DurationVar(&f.tenantDeleteGrace, "tenant-delete-grace", server.DefaultTenantDeleteGrace, "how long tenant delete lets the tenant's cancelled tasks stop before its data is deleted anyway (503 only when the removal cannot finish in time: the keys are revoked, and a retry finishes it)")
	bindEnv(fl, "tenant-delete-grace", "CLOACINA_TENANT_DELETE_GRACE")
	fl.DurationVar(&f.storage.idleTimeout, "idle-timeout", tenant.DefaultSQLiteIdleTimeout, "SQLite: close a tenant's file and engine once unused that long with no unfinished work; the next request reopens it (0: keep every tenant open)")
	bindEnv(fl, "idle-timeout", "CLOACINA_IDLE_TIMEOUT")
	fl.StringVar(&f.storage.rolePrefix, "tenant-role-prefix", "", "--tenant-roles: prefix of the tenants' role names (default "+tenant.SecureRolePrefix+"); roles are cluster-wide: two deployments on one PostgreSQL server need different prefixes")
	bindEnv(fl, "tenant-role-prefix", "CLOACINA_TENANT_ROLE_PREFIX")
	fl.StringVar(&f.eventLog, "event-log", cloacina.EventLogAll.String(), "which state changes become events: all, or exceptions (failures, retries, cancellations... but no event for a plain success)")
	bindEnv(fl, "event-log", "CLOACINA_EVENT_LOG")
	return cmd
}

// newLogger returns the slog logger of --log-format and --log-level.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("--log-level %q: want debug, info, warn or error", level)
	}
	o := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, o)), nil
	}
	return nil, usagef("--log-format %q: want text or json", format)
}

// serve runs the service until ctx ends (SIGTERM, SIGINT), then drains.
func (a *app) serve(ctx context.Context, f serveFlags) error {
	if err := a.refuseVars("cloacina serve", singleTenantVars(), singleTenantWhy("cloacina serve")); err != nil {
		return err
	}
	if err := f.storage.check(); err != nil {
		return err
	}
	if f.shutdownTimeout <= 0 {
		return usagef("--shutdown-timeout %v: want a positive duration", f.shutdownTimeout)
	}
	perTenant, total, err := f.concurrency()
	if err != nil {
		return err
	}
	if f.taskTimeout <= 0 {
		return usagef("--task-timeout %v: want a positive duration", f.taskTimeout)
	}
	if f.dbPoolSize < 1 {
		return usagef("--db-pool-size %d: want 1 or more", f.dbPoolSize)
	}
	eventLog, err := cloacina.ParseEventLog(f.eventLog)
	if err != nil {
		return usagef("--event-log %q: want all or exceptions", f.eventLog)
	}
	if err := f.checkLimits(); err != nil {
		return err
	}
	if f.adminKey != "" && len(f.adminKey) < minAdminKeyLength {
		return usagef("--admin-key: at least %d characters (e.g. openssl rand -hex 24)", minAdminKeyLength)
	}
	log, err := newLogger(a.stderr, f.logFormat, f.logLevel)
	if err != nil {
		return err
	}

	// Startup (connecting, attaching tenants) ends with ctx too: a SIGTERM
	// during it stops the start.
	col := metrics.New()
	opts := []cloacina.Option{
		cloacina.WithWorkflows(demo.Workflows()...),
		cloacina.WithObserver(col.Observer()),
		cloacina.WithLogger(log),
		cloacina.WithEventLog(eventLog),
		cloacina.WithTaskTimeout(f.taskTimeout),
		cloacina.WithDBPoolSize(f.dbPoolSize),
	}
	if total > 0 {
		// PostgreSQL: one engine for every tenant, with total slots, of
		// which one tenant may hold perTenant.
		opts = append(opts, cloacina.WithMaxConcurrentTasks(total), cloacina.WithTenantConcurrency(perTenant))
	} else {
		// SQLite: an engine per tenant, each with perTenant slots.
		opts = append(opts, cloacina.WithMaxConcurrentTasks(perTenant))
	}
	if f.storage.databaseURL == "" {
		// Created here, before the manager would create it more open, to
		// hold the admin key file and the tenants' data: only this user's.
		if err := os.MkdirAll(f.storage.dataDir, 0o700); err != nil {
			return fmt.Errorf("--data-dir %s: %w", f.storage.dataDir, err)
		}
	}
	be, err := f.storage.openBackend(ctx, log, opts...)
	if err != nil {
		return fmt.Errorf("opening the tenants' storage: %w", err)
	}
	closeCtx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), f.shutdownTimeout)
	}
	defer func() {
		// Closed already after a drain, which logged how it went.
		cctx, cancel := closeCtx()
		defer cancel()
		if first, err := be.close(cctx); err != nil && first {
			log.Warn("closing the tenant manager", "err", err)
		}
	}()
	col.WatchManager(be.m)

	keysURL, err := f.storage.keyStoreURL()
	if err != nil {
		return err
	}
	keys, err := apikey.Open(ctx, keysURL)
	if err != nil {
		return fmt.Errorf("opening the API key store: %w", err)
	}
	defer keys.Close()

	keyFile, err := filepath.Abs(filepath.Join(f.storage.dataDir, adminKeyFile))
	if err != nil {
		return fmt.Errorf("--data-dir %s: %w", f.storage.dataDir, err)
	}
	var ak adminKeyState
	switch {
	case f.noAuth:
	case f.adminKey == "":
		if ak, err = ensureAdminKeyFile(ctx, keys, keyFile); err != nil {
			return err
		}
		if ak.generated {
			log.Info("generated the admin API key; it is in the key file, readable only by this user, and shown nowhere else", "file", keyFile)
		}
	default:
		// The key of --admin-key is not stored; keys generated at earlier
		// starts stay valid beside it until revoked.
		if ak.earlier, err = keys.List(ctx, ""); err != nil {
			return fmt.Errorf("listing the stored admin keys: %w", err)
		}
		ak.file = keyFile
		for _, k := range ak.earlier {
			log.Warn("an admin key generated at an earlier start stays valid beside --admin-key until revoked",
				"key_id", k.ID, "created", k.CreatedAt.UTC().Format(time.RFC3339), "revoke", revokeAdminCommand(k.ID))
		}
	}

	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if err := reg.Register(col); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	srv, err := server.New(server.Config{
		Manager:     be.m,
		Workflows:   demo.Workflows(),
		Keys:        keys,
		AdminKey:    f.adminKey,
		DisableAuth: f.noAuth,
		Logger:      log,
		Registerer:  reg,
		Gatherer:    reg,

		BodyReadTimeout:      f.bodyReadTimeout,
		MaxInFlightBodyBytes: int64(f.maxInflightBodyBytes),
		InFlightWait:         f.inflightWait,
		TenantDeleteGrace:    f.tenantDeleteGrace,
	})
	if err != nil {
		return fmt.Errorf("starting the HTTP server: %w", err)
	}

	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return fmt.Errorf("--addr %s: %w", f.addr, err)
	}
	// Accepted through the per-client bound; the address printed and
	// logged is the listener's.
	limited := server.LimitConnsPerClient(ln, f.maxConnsPerClient)
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	base := "http://" + hintAddr(ln.Addr())
	if f.noAuth {
		log.Warn("AUTHENTICATION IS OFF (--no-auth): anyone who reaches " + base + " is admin; use it on your own machine only")
	}
	slots := []any{"task_slots_per_tenant", perTenant}
	if total > 0 {
		slots = append(slots, "task_slots_total", total)
	}
	settings := append(slots, "task_timeout", f.taskTimeout.String(), "db_pool_size", f.dbPoolSize)
	if f.storage.databaseURL == "" {
		settings = append(settings, "idle_timeout", f.storage.idleTimeout.String())
	}
	settings = append(settings, "max_conns_per_client", f.maxConnsPerClient, "body_read_timeout", f.bodyReadTimeout.String(),
		"max_inflight_body_bytes", int64(f.maxInflightBodyBytes), "inflight_wait", f.inflightWait.String(),
		"tenant_delete_grace", f.tenantDeleteGrace.String())
	log.Info("serving", append([]any{"addr", ln.Addr().String(), "storage", f.storage.describe(), "auth", !f.noAuth}, settings...)...)
	// Printed before the first request is served, so that whoever sees the
	// service ready knows where the admin key is.
	a.printStart(base, f, ak, keysURL)
	served := make(chan error, 1)
	go func() { served <- hs.Serve(limited) }()

	select {
	case <-ctx.Done():
		log.Info("shutting down: draining requests and running tasks (signal again to stop at once)", "timeout", f.shutdownTimeout.String())
	case err := <-served:
		return fmt.Errorf("serving HTTP: %w", err)
	}
	srv.SetDraining()
	sctx, cancel := closeCtx()
	defer cancel()
	start := time.Now()
	if err := hs.Shutdown(sctx); err != nil {
		log.Warn("requests still running at the shutdown timeout; closing their connections", "err", err)
		_ = hs.Close()
	}
	if _, err := be.close(sctx); err != nil {
		log.Warn("tasks still running at the shutdown timeout were released; another process (or the next start) runs them again", "err", err)
	}
	log.Info("stopped", "drain", time.Since(start).Round(time.Millisecond).String())
	return nil
}

// hintAddr returns a host:port that a client on this machine can use for
// the listener's address (127.0.0.1 for an unspecified host).
func hintAddr(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return addr.String()
	}
	if tcp.IP == nil || tcp.IP.IsUnspecified() {
		return net.JoinHostPort("127.0.0.1", fmt.Sprint(tcp.Port))
	}
	return net.JoinHostPort(tcp.IP.String(), fmt.Sprint(tcp.Port))
}

// printStart prints, on stdout, where the service listens, where the
// admin key is (never the key itself), and a curl line to try.
func (a *app) printStart(base string, f serveFlags, ak adminKeyState, keysURL string) {
	w := a.stdout
	fmt.Fprintf(w, "cloacina serve: listening on %s (%s)\n", base, f.storage.describe())
	switch {
	case f.noAuth:
		fmt.Fprintf(w, "WARNING: authentication is off (--no-auth): anyone who reaches %s may do anything\n", base)
		fmt.Fprintf(w, "try: curl -s %s/workflows\n", base)
		return
	case ak.generated:
		fmt.Fprintf(w, "\nGenerated the admin API key and wrote it to %s\n(mode 0600: only this user can read it; its hash is stored in %s). It is not shown here.\n",
			ak.file, cloacina.RedactURL(keysURL))
		fmt.Fprintf(w, "Use it as a Bearer token or with the CLI:\n    export CLOACINA_API_KEY=\"$(cat %s)\"\n\n", shellQuote(ak.file))
		fmt.Fprintf(w, "try: curl -s -H \"Authorization: Bearer $CLOACINA_API_KEY\" -H 'Content-Type: application/json' -d '{\"tenant_id\":\"acme\"}' %s/tenants\n", base)
	case f.adminKey != "":
		for _, k := range ak.earlier {
			fmt.Fprintf(w, "note: the admin key %s generated at an earlier start (%s) stays valid beside --admin-key until revoked: %s\n",
				k.ID, k.CreatedAt.UTC().Format(time.RFC3339), revokeAdminCommand(k.ID))
		}
		fmt.Fprintf(w, "try: curl -s -H \"Authorization: Bearer $CLOACINA_ADMIN_KEY\" %s/tenants\n", base)
	case ak.fileExists:
		fmt.Fprintf(w, "admin key: in %s (export CLOACINA_API_KEY=\"$(cat %s)\")\n", ak.file, shellQuote(ak.file))
		fmt.Fprintf(w, "try: curl -s -H \"Authorization: Bearer $CLOACINA_API_KEY\" %s/tenants\n", base)
	default:
		fmt.Fprintf(w, "try: curl -s -H \"Authorization: Bearer $CLOACINA_API_KEY\" %s/tenants   (the admin key generated at the first start; %s is gone)\n", base, ak.file)
	}
}

// revokeAdminCommand is the command that revokes the stored admin key id.
func revokeAdminCommand(id string) string { return "cloacina keys revoke --admin " + id }

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+,:@", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
