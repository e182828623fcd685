package tenant

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/cloacina-go/cloacina"
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

// attachParallelism bounds how many existing tenants NewPostgresManager
// attaches at once.
const attachParallelism = 4

// NewPostgresManager connects to the PostgreSQL database at databaseURL
// (postgres:// or postgresql://), starts one [cloacina.Engine] for all
// tenants and attaches every tenant schema the database already holds, so
// that work left by an earlier process runs again.
//
// opts go to [cloacina.NewEngine]: workflows (every tenant's),
// [cloacina.WithMaxConcurrentTasks] (all tenants together),
// [cloacina.WithTenantConcurrency] (each tenant), the pool size, the
// logger, [cloacina.WithListenURL] (a direct server URL when databaseURL
// goes through PgBouncer in transaction mode)... [cloacina.WithSchema] is
// refused with [cloacina.ErrInvalidOption]: the tenant id names the schema.
// Another database URL is refused with [cloacina.ErrUnsupportedDatabase].
func NewPostgresManager(ctx context.Context, databaseURL string, opts ...cloacina.Option) (*PostgresManager, error) {
	if urlKind(databaseURL) != "postgres" {
		return nil, fmt.Errorf("%w: %q: a PostgresManager needs a postgres:// or postgresql:// URL", cloacina.ErrUnsupportedDatabase, redactURL(databaseURL))
	}
	cfg := readOptions(opts)
	if cfg.Schema != "" {
		return nil, fmt.Errorf("%w: WithSchema: a PostgresManager names each tenant's schema after the tenant", cloacina.ErrInvalidOption)
	}
	e, err := cloacina.NewEngine(ctx, databaseURL, opts...)
	if err != nil {
		return nil, fmt.Errorf("tenant: starting the engine: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	own := log.With("component", "tenant", "backend", "postgres")
	m := &PostgresManager{engine: e}
	m.init(&pgSchemas{e: e}, cfg, own)
	if err := m.attachExisting(ctx); err != nil {
		if cerr := m.Close(context.WithoutCancel(ctx)); cerr != nil {
			own.Warn("closing a manager that failed to start", "err", cerr)
		}
		return nil, err
	}
	return m, nil
}

// attachExisting attaches the runner of every tenant schema of the
// database.
func (m *PostgresManager) attachExisting(ctx context.Context) error {
	ids, err := m.Tenants(ctx)
	if err != nil {
		return fmt.Errorf("tenant: listing existing tenants: %w", err)
	}
	errs := make([]error, len(ids))
	sem := make(chan struct{}, attachParallelism)
	var wg sync.WaitGroup
	for i, id := range ids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			_, errs[i] = m.Runner(ctx, id)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("tenant: attaching existing tenants: %w", err)
		}
	}
	if len(ids) > 0 {
		m.log.Info("existing tenants attached", "tenants", len(ids))
	}
	return nil
}

// Engine returns the engine that serves every tenant of the manager, for
// what the manager does not offer (WorkerID, Backend...). Attaching or
// dropping a tenant's schema through it bypasses the manager: use the
// manager's methods for that.
func (m *PostgresManager) Engine() *cloacina.Engine { return m.engine }

// pgSchemas is the backend of PostgresManager: one schema per tenant in
// the database of one engine.
type pgSchemas struct {
	e *cloacina.Engine
}

func (p *pgSchemas) validate(id string) error { return ValidateID(id, false) }

func (p *pgSchemas) where(id string) []any { return []any{"schema", id} }

func (p *pgSchemas) open(ctx context.Context, id string) (*cloacina.Runner, bool, error) {
	existed, err := p.e.SchemaExists(ctx, id)
	if err != nil {
		return nil, false, fmt.Errorf("tenant %q: %w", id, err)
	}
	// Creating and migrating the schema is one transaction: a failure
	// leaves nothing behind. (Dropping the schema here could destroy one
	// that another process created meanwhile.)
	r, err := p.e.Runner(ctx, id)
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

func (p *pgSchemas) delete(ctx context.Context, id string) error {
	_, err := p.e.DropSchema(ctx, id)
	return err
}

func (p *pgSchemas) close(ctx context.Context) error {
	if err := p.e.Shutdown(ctx); err != nil {
		return fmt.Errorf("shutting the engine down: %w", err)
	}
	return nil
}
