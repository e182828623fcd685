package tenant

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/internal/store"
)

// PostgresManager is a Manager that keeps each tenant in its own PostgreSQL schema of one database, all served by one cloacina.Engine: one connection pool and one dispatcher for every tenant, so a thousand tenants cost a thousand schemas, not a thousand pools.
//
// The schema of a tenant is named by its id, which takes no hyphen (see
// [ValidateID]). A tenant's runner is attached to the engine on first use
// (creating and migrating the schema) and kept until
// [PostgresManager.Remove] or [PostgresManager.Close]; operations that
// attach or remove one tenant are serialised per tenant and never block
// other tenants. Remove drops the tenant's schema (DROP SCHEMA ... CASCADE).
// It is safe for concurrent use.
//
// Several managers (processes) may serve one database: each claims work
// with row locks, so every task attempt runs once, and a tenant's data
// stays where it is when a manager stops. Remove a tenant only once no
// other manager uses it: the others' runners would fail on the dropped
// schema.
type PostgresManager struct {
	manager
	engine *cloacina.Engine
}

var _ Manager = (*PostgresManager)(nil)

// NewPostgresManager connects to the PostgreSQL database at databaseURL
// (postgres:// or postgresql://), starts one [cloacina.Engine] for all
// tenants and attaches every tenant schema the database already holds, so
// that work left by an earlier process runs again. A tenant that cannot be
// attached (a schema its migration fails on, say) is logged with its id and
// skipped, and its next use tries again: one broken tenant does not keep
// the others from being served. The start fails only when every existing
// tenant fails to attach (a systematic fault, such as the database
// refusing the engine's statements), with an error wrapping the first
// failure, or when ctx ends.
//
// opts go to [cloacina.NewEngine]: workflows (every tenant's),
// [cloacina.WithMaxConcurrentTasks] (all tenants together),
// [cloacina.WithTenantConcurrency] (each tenant), the pool size, the
// logger, [cloacina.WithListenURL] (a direct server URL when databaseURL
// goes through PgBouncer in transaction mode)... [cloacina.WithSchema] is
// refused with [cloacina.ErrInvalidOption]: the tenant id names the schema.
// Another database URL is refused with [cloacina.ErrUnsupportedDatabase].
//
// The URL's role needs CREATE on the database, to create each tenant's
// schema (it then owns the schemas it creates, and needs nothing more on
// them); a role without it is refused with a [*PrivilegeError] (wrapping
// [ErrMissingPrivilege]) naming the privilege. A schema named like a tenant
// that does not hold the engine's cloacina_migrations table is not the
// manager's: it is never adopted or dropped ([ErrForeignStorage]).
func NewPostgresManager(ctx context.Context, databaseURL string, opts ...cloacina.Option) (*PostgresManager, error) {
	if urlKind(databaseURL) != "postgres" {
		return nil, fmt.Errorf("%w: %q: a PostgresManager needs a postgres:// or postgresql:// URL", cloacina.ErrUnsupportedDatabase, redactURL(databaseURL))
	}
	cfg := readOptions(opts)
	if cfg.Schema != "" {
		return nil, fmt.Errorf("%w: WithSchema: a PostgresManager names each tenant's schema after the tenant", cloacina.ErrInvalidOption)
	}
	pool, err := catalogPool(ctx, databaseURL)
	if err != nil {
		return nil, err
	}
	if err := checkCreateOnDatabase(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	e, err := cloacina.NewEngine(ctx, databaseURL, opts...)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("tenant: starting the engine: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	own := log.With("component", "tenant", "backend", "postgres")
	m := &PostgresManager{engine: e}
	m.init(&pgSchemas{e: e, pool: pool}, cfg, own)
	if err := m.attachExisting(ctx); err != nil {
		if cerr := m.Close(context.WithoutCancel(ctx)); cerr != nil {
			own.Warn("closing a manager that failed to start", "err", cerr)
		}
		return nil, err
	}
	return m, nil
}

// Engine returns the engine that serves every tenant of the manager, for
// what the manager does not offer (WorkerID, Backend...). Attaching or
// dropping a tenant's schema through it bypasses the manager: use the
// manager's methods for that.
func (m *PostgresManager) Engine() *cloacina.Engine { return m.engine }

// catalogPool connects a small pool to the database, for the manager's own
// catalog queries (privileges, foreign schemas). Its statements are sent
// unprepared, so that it works through PgBouncer in transaction mode too.
func catalogPool(ctx context.Context, databaseURL string) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		// pgx's parse errors hide the password.
		return nil, fmt.Errorf("tenant: database URL %s: %w", redactURL(databaseURL), err)
	}
	pc.MaxConns = 2
	pc.MinConns = 0
	pc.MaxConnIdleTime = time.Minute
	pc.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, redactError(fmt.Errorf("tenant: connecting to %s: %w", redactURL(databaseURL), err), pc.ConnConfig.Password)
	}
	return pool, nil
}

// checkCreateOnDatabase returns a *PrivilegeError when the pool's role
// may not create schemas in its database.
func checkCreateOnDatabase(ctx context.Context, pool *pgxpool.Pool) error {
	var role, db string
	var canCreate bool
	err := pool.QueryRow(ctx, `SELECT current_user, current_database(),
  has_database_privilege(current_database(), 'CREATE')`).Scan(&role, &db, &canCreate)
	if err != nil {
		return fmt.Errorf("tenant: checking the database privileges: %w", err)
	}
	if !canCreate {
		return &PrivilegeError{Role: role, Privilege: "CREATE", On: fmt.Sprintf("database %q", db),
			Why: "to create a schema per tenant: GRANT CREATE ON DATABASE " + pgx.Identifier{db}.Sanitize() + " TO " + pgx.Identifier{role}.Sanitize()}
	}
	return nil
}

// pgSchemas is the backend of PostgresManager: one schema per tenant in
// the database of one engine.
type pgSchemas struct {
	e    *cloacina.Engine
	pool *pgxpool.Pool // catalog queries
}

// foreign returns an error wrapping ErrForeignStorage when the schema
// exists without the engine's migrations table.
func (p *pgSchemas) foreign(ctx context.Context, id string) error {
	marked, err := p.e.SchemaExists(ctx, id)
	if err != nil {
		return fmt.Errorf("tenant %q: %w", id, err)
	}
	if marked {
		return nil
	}
	var exists bool
	if err := p.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, id).Scan(&exists); err != nil {
		return fmt.Errorf("tenant %q: %w", id, err)
	}
	if exists {
		return foreignSchema(id)
	}
	return nil
}

func foreignSchema(id string) error {
	return fmt.Errorf("%w: tenant %q: the schema %s exists but holds no cloacina_migrations table: it was not created by this service and is left alone",
		ErrForeignStorage, id, pgx.Identifier{id}.Sanitize())
}

func (p *pgSchemas) validate(id string) error { return ValidateID(id, false) }

func (p *pgSchemas) where(id string) []any { return []any{"schema", id} }

func (p *pgSchemas) open(ctx context.Context, id string) (*cloacina.Runner, bool, error) {
	existed, err := p.e.SchemaExists(ctx, id)
	if err != nil {
		return nil, false, fmt.Errorf("tenant %q: %w", id, err)
	}
	// Never add the engine's tables to a schema someone else made: the
	// engine checks for its marker in the transaction that creates (or
	// migrates) the schema, so a schema made meanwhile is refused too.
	// Creating and migrating the schema is one transaction: a failure
	// leaves nothing behind. (Dropping the schema here could destroy one
	// that another process created meanwhile.)
	r, err := p.e.Runner(ctx, id, cloacina.WithoutSchemaAdoption())
	if errors.Is(err, cloacina.ErrForeignSchema) {
		return nil, false, foreignSchema(id)
	}
	if err != nil {
		return nil, false, fmt.Errorf("tenant %q: attaching its schema: %w", id, err)
	}
	return r, !existed, nil
}

// list returns the schemas that hold tenant data and whose names are
// valid tenant ids.
func (p *pgSchemas) list(ctx context.Context) ([]string, error) {
	schemas, err := p.e.Schemas(ctx)
	if err != nil {
		return nil, fmt.Errorf("tenant: listing tenants: %w", err)
	}
	ids := make([]string, 0, len(schemas))
	for _, s := range schemas {
		if ValidateID(s, false) == nil {
			ids = append(ids, s)
		}
	}
	return ids, nil
}

func (p *pgSchemas) exists(ctx context.Context, id string) (bool, error) {
	ok, err := p.e.SchemaExists(ctx, id)
	if err != nil {
		return false, fmt.Errorf("tenant %q: %w", id, err)
	}
	return ok, nil
}

// delete drops the schema if it holds the engine's migrations table,
// checked in the transaction that drops it.
func (p *pgSchemas) delete(ctx context.Context, id string) error {
	_, err := p.e.DropSchema(ctx, id)
	if errors.Is(err, store.ErrForeignSchema) {
		return foreignSchema(id)
	}
	return err
}

func (p *pgSchemas) close(ctx context.Context) error {
	defer p.pool.Close()
	if err := p.e.Shutdown(ctx); err != nil {
		return fmt.Errorf("shutting the engine down: %w", err)
	}
	return nil
}
