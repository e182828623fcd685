package cloacina

import (
	"errors"

	"github.com/cloacina-go/cloacina/internal/store"
)

// Errors returned when a workflow definition is invalid. Build wraps them with
// details; test for them with errors.Is.
var (
	ErrEmptyWorkflow      = errors.New("cloacina: workflow has no tasks")
	ErrDuplicateTask      = errors.New("cloacina: duplicate task id")
	ErrMissingDependency  = errors.New("cloacina: dependency on an unknown task")
	ErrCycle              = errors.New("cloacina: dependency cycle")
	ErrNilTask            = errors.New("cloacina: nil task function")
	ErrInvalidName        = errors.New("cloacina: invalid name")
	ErrInvalidTriggerRule = errors.New("cloacina: invalid trigger rule")
	ErrInvalidRetryPolicy = errors.New("cloacina: invalid retry policy")
)

// Errors about contexts.
var (
	ErrKeyExists       = errors.New("cloacina: context key already exists")
	ErrKeyNotFound     = errors.New("cloacina: context key not found")
	ErrInvalidContext  = errors.New("cloacina: context must be a JSON object")
	ErrContextTooLarge = errors.New("cloacina: context too large")
)

// Errors returned by a Runner.
var (
	ErrInvalidOption       = errors.New("cloacina: invalid option")
	ErrUnknownWorkflow     = errors.New("cloacina: unknown workflow")
	ErrExecutionNotFound   = errors.New("cloacina: execution not found")
	ErrInvalidTransition   = errors.New("cloacina: transition not allowed in the execution's current state")
	ErrRunnerClosed        = errors.New("cloacina: runner is shut down")
	ErrUnsupportedDatabase = errors.New("cloacina: unsupported database URL")
	ErrInvalidTenantID     = errors.New("cloacina: invalid tenant id")
	// ErrMigrationRequired: the schema needs migrations that the runner's
	// database role may not apply (a per-tenant role); the error names the
	// admin command that applies them.
	ErrMigrationRequired = errors.New("cloacina: schema needs migrations applied by an admin")
	// ErrPreparedStatementConflict: PostgreSQL answered that a named
	// prepared statement already exists on the server connection (SQLSTATE
	// 42P05, pgx's "stmtcache_..."), or is missing from it (26000), which
	// happens when the database URL goes through a transaction pooler such
	// as PgBouncer that does not carry prepared statements per client. Add
	// default_query_exec_mode=exec to the URL. The error wraps the server's.
	ErrPreparedStatementConflict = store.ErrPreparedStatementConflict
	// ErrForeignSchema: a runner made with [WithoutSchemaAdoption] was
	// asked for a PostgreSQL schema that exists but holds no cloacina
	// tables: something else made it, and the runner leaves it alone.
	ErrForeignSchema = store.ErrForeignSchema
)
