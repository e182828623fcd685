// Package tenant runs cloacina workflows for many tenants, keeping each
// tenant's data apart.
//
// A [Manager] hands out one [cloacina.Runner] per tenant, creating (and
// migrating) the tenant's storage the first time the tenant is used.
// [SQLiteManager] keeps each tenant in its own SQLite file;
// [PostgresManager] keeps each tenant in its own schema of one database,
// all tenants sharing one [cloacina.Engine] (one connection pool, one
// dispatcher):
//
//	m, err := tenant.NewPostgresManager(ctx, os.Getenv("DATABASE_URL"),
//		cloacina.WithWorkflows(greet),
//		cloacina.WithMaxConcurrentTasks(32), // all tenants together
//		cloacina.WithTenantConcurrency(8),   // any one tenant
//	)
//	if err != nil {
//		return err
//	}
//	defer m.Close(ctx)
//	// The first use of "acme" creates and migrates the schema acme.
//	res, err := m.Execute(ctx, "acme", "greet", map[string]any{"name": "Ada"})
//
// Through PgBouncer in transaction mode, add default_query_exec_mode=exec
// to the URL (before PgBouncer 1.21) and pass
// cloacina.WithListenURL(directURL), since LISTEN needs a direct
// connection.
//
// Tenant ids are checked with [ValidateID] before anything is touched, so an
// id coming from a request path can never name a file or schema outside the
// manager's reach.
//
// [LoadConfig] reads a single tenant runner's configuration from the
// environment (and an optional .env file), as a service running one tenant
// per process would.
package tenant

import (
	"context"
	"errors"
	"fmt"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/internal/store"
)

// Manager runs workflows for many tenants, keeping each tenant's data apart.
type Manager interface {
	// Runner returns the tenant's runner, creating (and migrating) the tenant's storage on first use. Concurrent first calls for one tenant create exactly one runner.
	Runner(ctx context.Context, tenantID string) (*cloacina.Runner, error)
	// ExistingRunner is Runner for a tenant that has storage already: it creates none, and returns an error wrapping ErrTenantNotFound for a tenant without it, even when a Remove runs at the same time.
	ExistingRunner(ctx context.Context, tenantID string) (*cloacina.Runner, error)
	// OpenRunner returns the tenant's runner if it is open in this process, without opening it.
	OpenRunner(tenantID string) (*cloacina.Runner, bool)
	// Execute runs a workflow for a tenant and waits for the result. Like Runner, it creates the tenant on first use (except on a SecureManager, whose tenants come from CreateTenant only).
	Execute(ctx context.Context, tenantID, workflow string, input any) (*cloacina.Result, error)
	// ExecuteAsync starts a workflow for a tenant, creating the tenant on first use as Execute does.
	ExecuteAsync(ctx context.Context, tenantID, workflow string, input any) (*cloacina.ExecutionHandle, error)
	// Tenants lists the tenants that have storage the manager created
	// (with its marker), sorted.
	Tenants(ctx context.Context) ([]string, error)
	// Exists reports whether the tenant has storage the manager created.
	Exists(ctx context.Context, tenantID string) (bool, error)
	// Remove deletes a tenant: it cancels the tenant's running tasks at
	// once (their contexts are cancelled), waits for them to return until
	// ctx ends (ctx is the grace, not a veto), then deletes all of the
	// tenant's data, even when ctx has ended. Removing an unknown tenant
	// returns ErrTenantNotFound; storage the manager did not create is
	// never deleted (ErrForeignStorage).
	Remove(ctx context.Context, tenantID string) error
	// Metrics returns the tenant's metrics (computed in SQL by Runner.Metrics). Unlike Execute, it creates no tenant: a tenant without storage is ErrTenantNotFound. It does not count as activity that keeps an idle tenant open.
	Metrics(ctx context.Context, tenantID string) (*cloacina.Metrics, error)
	// OpenTenants returns, sorted, the tenants whose runner is open in
	// this process: the ones it is serving now.
	OpenTenants() []string
	// Close shuts every runner down (Shutdown(ctx)).
	Close(ctx context.Context) error
}

// ErrTenantNotFound is returned when an operation needs a tenant that has
// no storage.
var ErrTenantNotFound = errors.New("tenant: tenant not found")

// ErrManagerClosed is returned by every method of a manager after Close.
var ErrManagerClosed = errors.New("tenant: manager is closed")

// ErrForeignStorage is returned when a tenant id names storage the
// manager did not create: a PostgreSQL schema without the engine's
// cloacina_migrations table, or a file in a SQLite manager's folder
// without the engine's marker (see [SQLiteApplicationID]). Managers never
// adopt, list, count or delete such storage: creating the tenant (Runner,
// Execute...) and Remove fail with this error, and Tenants and Exists
// ignore it. A service answers it with 409 Conflict.
var ErrForeignStorage = errors.New("tenant: storage exists but was not created by this service")

// ErrMissingPrivilege is returned (wrapped in a [*PrivilegeError], which
// names the role and the privilege) when a PostgreSQL role lacks a
// privilege that [NewAdmin], [Admin.CheckPrivileges] or
// [NewPostgresManager] needs.
var ErrMissingPrivilege = errors.New("tenant: missing database privilege")

// PrivilegeError says which privilege a role lacks. errors.Is(err,
// ErrMissingPrivilege) holds for it.
type PrivilegeError struct {
	Role      string // the role that lacks it
	Privilege string // e.g. "CREATEROLE", "CREATE"
	On        string // what it is needed on, e.g. `database "app"`; "" for a role attribute
	Why       string // what it is needed for
}

// Error says "tenant: the role X lacks P [on O] (needed to W)".
func (e *PrivilegeError) Error() string {
	on := ""
	if e.On != "" {
		on = " on " + e.On
	}
	return fmt.Sprintf("tenant: the role %q lacks %s%s (needed %s)", e.Role, e.Privilege, on, e.Why)
}

// Is reports whether target is ErrMissingPrivilege.
func (e *PrivilegeError) Is(target error) bool { return target == ErrMissingPrivilege }

// MaxIDLength is the longest valid tenant id: PostgreSQL's identifier limit.
const MaxIDLength = store.MaxNameLength

// ValidateID checks a tenant id. A valid id has 1 to [MaxIDLength]
// characters: an ASCII letter or an underscore first, then ASCII letters,
// digits and underscores, and also hyphens when allowHyphen is set (for
// SQLite file names; PostgreSQL schema names take no hyphen). The names
// "public" and "information_schema" and names starting with "pg_" are
// reserved by PostgreSQL and refused, whatever their case, by every
// manager.
//
// The error wraps [cloacina.ErrInvalidTenantID] and says what is wrong.
func ValidateID(id string, allowHyphen bool) error {
	if reason := store.NameProblem(id, allowHyphen); reason != "" {
		return fmt.Errorf("%w: %s: %s", cloacina.ErrInvalidTenantID, quoteID(id), reason)
	}
	return nil
}

// quoteID quotes an id for an error message, shortening a very long one.
func quoteID(id string) string {
	const keep = MaxIDLength + 1
	if len(id) > keep {
		return fmt.Sprintf("%q...", id[:keep])
	}
	return fmt.Sprintf("%q", id)
}
