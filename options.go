package cloacina

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/cloacina-go/cloacina/internal/store"
)

// Defaults of a Runner's settings.
const (
	DefaultMaxConcurrentTasks = 4
	DefaultTaskTimeout        = 5 * time.Minute
	DefaultDBPoolSize         = 10
	DefaultPollInterval       = time.Second
	DefaultMaxContextBytes    = 1 << 20
	DefaultHeartbeatInterval  = 10 * time.Second
	DefaultStaleClaimAfter    = 30 * time.Second
)

// Config holds every setting of a [Runner]. The zero value of each field
// means its default. Build a runner from it with [Config.NewRunner], or
// pass [Option]s to [NewRunner]; both give the same runner.
type Config struct {
	// DatabaseURL is sqlite://PATH or postgres://... (required).
	DatabaseURL string
	// Schema is the PostgreSQL schema (tenant) to run in; it is created and
	// migrated when missing. It is an error on SQLite.
	Schema string
	// Workflows the runner can execute.
	Workflows []*Workflow
	// MaxConcurrentTasks bounds the tasks this runner runs at once
	// (default 4). On an [Engine] it bounds all tenants together.
	MaxConcurrentTasks int
	// MaxTenantConcurrentTasks optionally bounds one tenant's tasks on an
	// [Engine] (0: no limit beyond MaxConcurrentTasks).
	MaxTenantConcurrentTasks int
	// TaskTimeout bounds one attempt of a task without its own Timeout
	// (default 5m).
	TaskTimeout time.Duration
	// DBPoolSize is the maximum number of database connections (default 10).
	DBPoolSize int
	// PollInterval is how often the runner looks for work it was not told
	// about (work added by other processes, retries that came due). Work
	// this runner creates or finishes is dispatched at once (default 1s).
	PollInterval time.Duration
	// MaxContextBytes bounds the JSON size of an input or saved context
	// (default 1 MiB).
	MaxContextBytes int
	// WorkerID identifies this runner in task claims and events (default:
	// a random id). Give a runner a stable id to have it recover, as soon
	// as it starts, the tasks it was running when its process died.
	WorkerID string
	// MaxRecoveries is how often a task interrupted by a vanished runner is
	// put back to Ready before it fails as abandoned (default 3).
	MaxRecoveries int
	// HeartbeatInterval is how often a runner renews the claims of the
	// tasks it runs (default 10s). A runner that finds a claim gone (its
	// task was recovered elsewhere) or the task's execution cancelled
	// cancels the task's context.
	HeartbeatInterval time.Duration
	// StaleClaimAfter is how old a Running task's heartbeat must be for
	// the task to count as orphaned by a vanished runner and be recovered
	// (default 30s; it must exceed HeartbeatInterval). Runners look for
	// such tasks every StaleClaimAfter/2.
	StaleClaimAfter time.Duration
	// Logger receives the runner's logs (default: slog.Default()).
	Logger *slog.Logger
	// ListenURL is the PostgreSQL URL the engine LISTENs on for ready-work
	// notifications from other processes (default: DatabaseURL). Set it to
	// a direct server URL when DatabaseURL goes through PgBouncer in
	// transaction-pooling mode, which cannot carry LISTEN.
	ListenURL string
	// DisableListen turns LISTEN/NOTIFY off: other processes' work is then
	// found by polling alone.
	DisableListen bool
	// TenantRole, on PostgreSQL, is a database role that every transaction
	// of the runner switches to (SET LOCAL ROLE) over the shared pool, so
	// the database itself confines the runner to what that role may do.
	// The pool's user must be a member of the role.
	TenantRole string
	// RefuseForeignSchema, on PostgreSQL, refuses a Schema that exists but
	// holds no cloacina tables (no cloacina_migrations table) with
	// [ErrForeignSchema], instead of adding the engine's tables beside
	// whatever it holds. The check and the schema's creation are one
	// transaction. Tenant managers set it, so that a tenant id never adopts
	// an application's schema; a program that hands the engine a schema it
	// prepared itself leaves it unset.
	RefuseForeignSchema bool
	// EnqueueOnly makes a runner that records executions (and answers
	// queries, pauses, cancels) but runs no tasks: a producer, for
	// programs that hand the work to other processes.
	EnqueueOnly bool
	// Observer, when set, is told of finished task attempts and of
	// executions that start and end (see [Observer]).
	Observer *Observer
	// TenantLabel is the Tenant reported to the Observer (default: the
	// schema).
	TenantLabel string
	// AnalyzeFunc, on PostgreSQL, refreshes the planner statistics of a
	// schema's tables in place of the runner's own ANALYZE, which the
	// engine runs once it has created 1,000 executions in a tenant, then
	// each time that count doubles. A
	// role that does not own its tables cannot run it: tenant.SecureManager
	// sets this to its Admin's Analyze.
	AnalyzeFunc func(ctx context.Context, schema string) error
	// EventLog says which state changes are recorded as events (default
	// EventLogAll). Give every process of a tenant the same setting.
	EventLog EventLog
}

// EventLog says which state changes a runner records in the event log
// (see [Runner.ExecutionEvents]).
type EventLog int

const (
	// EventLogAll records every state change (the default).
	EventLogAll EventLog = iota
	// EventLogExceptions records only what departs from the plain course
	// of an execution: failures, retries, skips, recoveries, releases,
	// pauses, resumes and cancellations. Creating, starting and completing
	// an execution or a task writes no event; the execution's and its
	// tasks' rows still record when each started and ended, with what
	// status and how many attempts. For job-queue loads: under EventLogAll
	// a one-task execution's six events take two rows, and a PostgreSQL
	// burn-down without them ran 12-57% faster (see the README).
	EventLogExceptions
)

// String returns "all" or "exceptions".
func (l EventLog) String() string {
	switch l {
	case EventLogAll:
		return "all"
	case EventLogExceptions:
		return "exceptions"
	}
	return fmt.Sprintf("EventLog(%d)", int(l))
}

// ParseEventLog reads "all" or "exceptions".
func ParseEventLog(s string) (EventLog, error) {
	for _, l := range []EventLog{EventLogAll, EventLogExceptions} {
		if s == l.String() {
			return l, nil
		}
	}
	return 0, fmt.Errorf("%w: event log %q (want all or exceptions)", ErrInvalidOption, s)
}

// records reports whether an event of type typ is written.
func (l EventLog) records(typ EventType) bool {
	if l != EventLogExceptions {
		return true
	}
	switch typ {
	case EventExecutionCreated, EventExecutionStarted, EventExecutionCompleted,
		EventTaskReady, EventTaskStarted, EventTaskCompleted:
		return false
	}
	return true
}

// recorded returns the events the log keeps, in order.
func (l EventLog) recorded(events []*store.Event) []*store.Event {
	if l == EventLogAll {
		return events
	}
	kept := events[:0:0]
	for _, ev := range events {
		if l.records(EventType(ev.Type)) {
			kept = append(kept, ev)
		}
	}
	return kept
}

// Option sets one field of a [Config].
type Option func(*Config)

// Apply applies opts to c in order; nil options are ignored. It is what
// [NewRunner] and [NewEngine] do with their options, for code that reads
// what a list of options sets before passing them on.
func (c *Config) Apply(opts ...Option) {
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
}

// WithWorkflows adds workflows the runner can execute.
func WithWorkflows(wfs ...*Workflow) Option {
	return func(c *Config) { c.Workflows = append(c.Workflows, wfs...) }
}

// WithSchema runs the runner in a PostgreSQL schema (one tenant).
func WithSchema(schema string) Option { return func(c *Config) { c.Schema = schema } }

// WithMaxConcurrentTasks bounds the tasks run at once.
func WithMaxConcurrentTasks(n int) Option { return func(c *Config) { c.MaxConcurrentTasks = n } }

// WithTaskTimeout sets the default timeout of one task attempt.
func WithTaskTimeout(d time.Duration) Option { return func(c *Config) { c.TaskTimeout = d } }

// WithDBPoolSize sets the maximum number of database connections.
func WithDBPoolSize(n int) Option { return func(c *Config) { c.DBPoolSize = n } }

// WithPollInterval sets how often the runner looks for work it was not told
// about.
func WithPollInterval(d time.Duration) Option { return func(c *Config) { c.PollInterval = d } }

// WithMaxContextBytes bounds the JSON size of contexts.
func WithMaxContextBytes(n int) Option { return func(c *Config) { c.MaxContextBytes = n } }

// WithWorkerID sets the identity the runner claims tasks under.
func WithWorkerID(id string) Option { return func(c *Config) { c.WorkerID = id } }

// WithMaxRecoveries sets how often an interrupted task is recovered before
// it is abandoned.
func WithMaxRecoveries(n int) Option { return func(c *Config) { c.MaxRecoveries = n } }

// WithTenantConcurrency bounds one tenant's concurrent tasks on an engine.
func WithTenantConcurrency(n int) Option {
	return func(c *Config) { c.MaxTenantConcurrentTasks = n }
}

// WithListenURL sets the URL the engine LISTENs on (see Config.ListenURL).
func WithListenURL(url string) Option { return func(c *Config) { c.ListenURL = url } }

// WithoutListen turns LISTEN/NOTIFY off (see Config.DisableListen).
func WithoutListen() Option { return func(c *Config) { c.DisableListen = true } }

// WithTenantRole makes every transaction of the runner switch to a
// PostgreSQL role (see Config.TenantRole).
func WithTenantRole(role string) Option { return func(c *Config) { c.TenantRole = role } }

// WithoutSchemaAdoption makes the runner refuse a PostgreSQL schema that
// exists without cloacina's tables (see Config.RefuseForeignSchema).
func WithoutSchemaAdoption() Option { return func(c *Config) { c.RefuseForeignSchema = true } }

// WithEnqueueOnly makes a runner that runs no tasks (see
// Config.EnqueueOnly).
func WithEnqueueOnly() Option { return func(c *Config) { c.EnqueueOnly = true } }

// WithHeartbeat sets how often claims are renewed and how old a heartbeat
// must be for its task to be recovered.
func WithHeartbeat(interval, staleAfter time.Duration) Option {
	return func(c *Config) { c.HeartbeatInterval, c.StaleClaimAfter = interval, staleAfter }
}

// WithAnalyzeFunc sets Config.AnalyzeFunc.
func WithAnalyzeFunc(fn func(ctx context.Context, schema string) error) Option {
	return func(c *Config) { c.AnalyzeFunc = fn }
}

// WithEventLog sets which state changes are recorded as events (see
// [EventLog]).
func WithEventLog(l EventLog) Option { return func(c *Config) { c.EventLog = l } }

// WithLogger sets the runner's logger.
func WithLogger(l *slog.Logger) Option { return func(c *Config) { c.Logger = l } }

// withDefaults validates c and fills in defaults. Invalid values are errors
// wrapping ErrInvalidOption; nothing falls back silently.
func (c Config) withDefaults() (Config, error) {
	if c.DatabaseURL == "" {
		return c, fmt.Errorf("%w: DatabaseURL is empty", ErrInvalidOption)
	}
	if c.MaxConcurrentTasks < 0 {
		return c, fmt.Errorf("%w: MaxConcurrentTasks %d is negative", ErrInvalidOption, c.MaxConcurrentTasks)
	}
	if c.TaskTimeout < 0 {
		return c, fmt.Errorf("%w: TaskTimeout %v is negative", ErrInvalidOption, c.TaskTimeout)
	}
	if c.DBPoolSize < 0 {
		return c, fmt.Errorf("%w: DBPoolSize %d is negative", ErrInvalidOption, c.DBPoolSize)
	}
	if c.PollInterval < 0 {
		return c, fmt.Errorf("%w: PollInterval %v is negative", ErrInvalidOption, c.PollInterval)
	}
	if c.MaxContextBytes < 0 {
		return c, fmt.Errorf("%w: MaxContextBytes %d is negative", ErrInvalidOption, c.MaxContextBytes)
	}
	if c.MaxTenantConcurrentTasks < 0 {
		return c, fmt.Errorf("%w: MaxTenantConcurrentTasks %d is negative", ErrInvalidOption, c.MaxTenantConcurrentTasks)
	}
	if c.EventLog != EventLogAll && c.EventLog != EventLogExceptions {
		return c, fmt.Errorf("%w: unknown event log %v", ErrInvalidOption, c.EventLog)
	}
	if c.MaxRecoveries < 0 {
		return c, fmt.Errorf("%w: MaxRecoveries %d is negative", ErrInvalidOption, c.MaxRecoveries)
	}
	if c.MaxRecoveries == 0 {
		c.MaxRecoveries = DefaultMaxRecoveries
	}
	if c.HeartbeatInterval < 0 || c.StaleClaimAfter < 0 {
		return c, fmt.Errorf("%w: negative heartbeat settings", ErrInvalidOption)
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.StaleClaimAfter == 0 {
		c.StaleClaimAfter = max(DefaultStaleClaimAfter, 3*c.HeartbeatInterval)
	}
	if c.StaleClaimAfter <= c.HeartbeatInterval {
		return c, fmt.Errorf("%w: StaleClaimAfter %v must exceed HeartbeatInterval %v", ErrInvalidOption, c.StaleClaimAfter, c.HeartbeatInterval)
	}
	if c.MaxConcurrentTasks == 0 {
		c.MaxConcurrentTasks = DefaultMaxConcurrentTasks
	}
	if c.TaskTimeout == 0 {
		c.TaskTimeout = DefaultTaskTimeout
	}
	if c.DBPoolSize == 0 {
		c.DBPoolSize = DefaultDBPoolSize
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.MaxContextBytes == 0 {
		c.MaxContextBytes = DefaultMaxContextBytes
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	seen := map[string]bool{}
	for _, wf := range c.Workflows {
		if wf == nil {
			return c, fmt.Errorf("%w: nil workflow", ErrInvalidOption)
		}
		if seen[wf.name] {
			return c, fmt.Errorf("%w: workflow %q registered twice", ErrInvalidOption, wf.name)
		}
		seen[wf.name] = true
	}
	return c, nil
}
