package tenant

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cloacina-go/cloacina"
	"github.com/joho/godotenv"
)

// Environment variables read by [LoadConfig].
const (
	EnvDatabaseURL        = "DATABASE_URL"
	EnvTenantID           = "TENANT_ID"
	EnvDefaultSchema      = "DEFAULT_SCHEMA"
	EnvMaxConcurrentTasks = "MAX_CONCURRENT_TASKS"
	EnvTaskTimeoutSeconds = "TASK_TIMEOUT_SECONDS"
	EnvDBPoolSize         = "DB_POOL_SIZE"
)

// Defaults of the configuration.
const (
	DefaultSchema             = "public"
	DefaultMaxConcurrentTasks = 4
	DefaultTaskTimeout        = 300 * time.Second
	DefaultDBPoolSize         = 10
)

// ErrInvalidConfig is wrapped by every error of [LoadConfig] about a
// variable's value.
var ErrInvalidConfig = errors.New("tenant: invalid configuration")

// Config is a tenant runner's configuration, read from the environment.
type Config struct {
	DatabaseURL        string        // DATABASE_URL (required)
	TenantID           string        // TENANT_ID
	DefaultSchema      string        // DEFAULT_SCHEMA (default "public")
	MaxConcurrentTasks int           // MAX_CONCURRENT_TASKS (default 4)
	TaskTimeout        time.Duration // from TASK_TIMEOUT_SECONDS (default 300)
	DBPoolSize         int           // DB_POOL_SIZE (default 10)
}

// LoadConfig reads Config from the process environment, after loading envFile (a .env file) if it is non-empty and exists; variables already set in the environment win over the file. An invalid value (not a number, negative, zero where meaningless, a TENANT_ID that fails ValidateID) returns an error that names the variable (e.g. `MAX_CONCURRENT_TASKS: "abc" is not a whole number`). A missing DATABASE_URL is an error naming it.
//
// An empty variable counts as unset, in the environment as in the file.
// The file is only read: the process environment is left unchanged.
func LoadConfig(envFile string) (Config, error) {
	fileVars, err := readEnvFile(envFile)
	if err != nil {
		return Config{}, err
	}
	return LoadConfigFrom(func(key string) (string, bool) {
		if v, ok := os.LookupEnv(key); ok && v != "" {
			return v, true
		}
		v, ok := fileVars[key]
		return v, ok
	})
}

// readEnvFile returns the variables of a .env file; none when path is empty
// or the file does not exist.
func readEnvFile(path string) (map[string]string, error) {
	if path == "" {
		return nil, nil
	}
	vars, err := ReadEnvFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return vars, err
}

// ReadEnvFile returns the variables of a .env file (KEY=value lines, as
// read by github.com/joho/godotenv). A missing file is an error wrapping
// fs.ErrNotExist; a malformed one wraps [ErrInvalidConfig] and says which
// file and line (e.g. "env file .env is malformed at line 3") but not what
// the line holds, since it may hold secrets.
func ReadEnvFile(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tenant: reading env file: %w", err)
	}
	vars, err := godotenv.UnmarshalBytes(data)
	if err != nil {
		// The parser's messages quote the file's text, which may hold
		// secrets: say only where the problem is.
		if line := badEnvLine(data); line > 0 {
			return nil, fmt.Errorf("%w: env file %s is malformed at line %d", ErrInvalidConfig, path, line)
		}
		return nil, fmt.Errorf("%w: env file %s is malformed", ErrInvalidConfig, path)
	}
	return vars, nil
}

// maxEnvLines bounds the files whose bad line badEnvLine looks for.
const maxEnvLines = 10000

// badEnvLine returns the line of a malformed .env file where parsing goes
// wrong for good: the first line L such that the file cut after line L,
// or after any later line, does not parse. (A quoted value spanning lines
// makes a cut inside it fail, but a later cut parses again.) It returns 0
// when it cannot tell.
func badEnvLine(data []byte) int {
	lines := strings.SplitAfter(string(data), "\n")
	if len(lines) > maxEnvLines {
		return 0
	}
	bad := 0
	var prefix strings.Builder
	for i, l := range lines {
		prefix.WriteString(l)
		if _, err := godotenv.Unmarshal(prefix.String()); err != nil {
			if bad == 0 {
				bad = i + 1
			}
		} else {
			bad = 0
		}
	}
	return bad
}

// LoadConfigFrom is LoadConfig over a given lookup function (for tests), e.g. os.LookupEnv.
func LoadConfigFrom(lookup func(string) (string, bool)) (Config, error) {
	get := func(key string) (string, bool) {
		v, ok := lookup(key)
		v = strings.TrimSpace(v)
		return v, ok && v != ""
	}
	c := Config{
		DefaultSchema:      DefaultSchema,
		MaxConcurrentTasks: DefaultMaxConcurrentTasks,
		TaskTimeout:        DefaultTaskTimeout,
		DBPoolSize:         DefaultDBPoolSize,
	}
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrInvalidConfig, key, fmt.Sprintf(format, args...)))
	}

	if v, ok := get(EnvDatabaseURL); !ok {
		bad(EnvDatabaseURL, "not set (it is required)")
	} else if urlKind(v) == "" {
		bad(EnvDatabaseURL, "%q is not a sqlite://, postgres:// or postgresql:// URL", redactURL(v))
	} else {
		c.DatabaseURL = v
	}
	if v, ok := get(EnvTenantID); ok {
		if err := ValidateID(v, false); err != nil {
			errs = append(errs, fmt.Errorf("%w: %s: %w", ErrInvalidConfig, EnvTenantID, err))
		} else {
			c.TenantID = v
		}
	}
	if v, ok := get(EnvDefaultSchema); ok {
		if strings.EqualFold(v, DefaultSchema) {
			c.DefaultSchema = DefaultSchema
		} else if err := ValidateID(v, false); err != nil {
			errs = append(errs, fmt.Errorf("%w: %s: %w", ErrInvalidConfig, EnvDefaultSchema, err))
		} else {
			c.DefaultSchema = v
		}
	}
	// positive parses a whole number from 1 to limit.
	positive := func(key string, limit int64) (int64, bool) {
		v, ok := get(key)
		if !ok {
			return 0, false
		}
		n, err := strconv.ParseInt(v, 10, 64)
		switch {
		case errors.Is(err, strconv.ErrRange):
			bad(key, "%q is out of range", v)
		case err != nil:
			bad(key, "%q is not a whole number", v)
		case n < 0:
			bad(key, "%d is negative", n)
		case n == 0:
			bad(key, "must be at least 1, not 0")
		case n > limit:
			bad(key, "%d is more than %d", n, limit)
		default:
			return n, true
		}
		return 0, false
	}
	if n, ok := positive(EnvMaxConcurrentTasks, math.MaxInt32); ok {
		c.MaxConcurrentTasks = int(n)
	}
	if n, ok := positive(EnvDBPoolSize, math.MaxInt32); ok {
		c.DBPoolSize = int(n)
	}
	if n, ok := positive(EnvTaskTimeoutSeconds, int64(math.MaxInt64/time.Second)); ok {
		c.TaskTimeout = time.Duration(n) * time.Second
	}

	if urlKind(c.DatabaseURL) == "sqlite" {
		// A SQLite database is one tenant: there is no schema to choose.
		switch {
		case c.TenantID != "":
			bad(EnvTenantID, "a tenant schema needs a PostgreSQL DATABASE_URL; with SQLite, give each tenant its own database file")
		case c.Schema() != "":
			bad(EnvDefaultSchema, "%q needs a PostgreSQL DATABASE_URL; SQLite has no schemas", c.DefaultSchema)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return c, nil
}

// urlKind returns "sqlite" or "postgres" for a database URL, and "" for
// anything else.
func urlKind(raw string) string {
	switch {
	case strings.HasPrefix(raw, "sqlite://"):
		return "sqlite"
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		return "postgres"
	}
	return ""
}

// Schema returns the PostgreSQL schema the tenant runs in: TENANT_ID when set, else DEFAULT_SCHEMA, where "public" means no tenant schema ("").
func (c Config) Schema() string {
	if c.TenantID != "" {
		return c.TenantID
	}
	if strings.EqualFold(c.DefaultSchema, DefaultSchema) {
		return ""
	}
	return c.DefaultSchema
}

// Options returns the cloacina options the configuration stands for (WithSchema when Schema() != "", WithMaxConcurrentTasks, WithTaskTimeout, WithDBPoolSize).
// A zero field stands for cloacina's default.
func (c Config) Options() []cloacina.Option {
	var opts []cloacina.Option
	if s := c.Schema(); s != "" {
		opts = append(opts, cloacina.WithSchema(s))
	}
	return append(opts,
		cloacina.WithMaxConcurrentTasks(c.MaxConcurrentTasks),
		cloacina.WithTaskTimeout(c.TaskTimeout),
		cloacina.WithDBPoolSize(c.DBPoolSize),
	)
}

// NewRunner opens a runner for the configuration, with extra options (e.g. WithWorkflows).
// The extra options come after the configuration's, so they win.
func (c Config) NewRunner(ctx context.Context, extra ...cloacina.Option) (*cloacina.Runner, error) {
	opts := append(c.Options(), extra...)
	r, err := cloacina.NewRunner(ctx, c.DatabaseURL, opts...)
	if err != nil {
		// The engine's errors name the database with its password redacted.
		return nil, fmt.Errorf("tenant: opening a runner: %w", err)
	}
	return r, nil
}

// String describes the configuration with the database password redacted.
func (c Config) String() string {
	return fmt.Sprintf("tenant.Config{DatabaseURL: %s, TenantID: %q, DefaultSchema: %q, MaxConcurrentTasks: %d, TaskTimeout: %v, DBPoolSize: %d}",
		redactURL(c.DatabaseURL), c.TenantID, c.DefaultSchema, c.MaxConcurrentTasks, c.TaskTimeout, c.DBPoolSize)
}

// GoString is String, so that %#v redacts the password too.
func (c Config) GoString() string { return c.String() }

// LogValue logs the configuration with the database password redacted.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("database_url", redactURL(c.DatabaseURL)),
		slog.String("tenant_id", c.TenantID),
		slog.String("default_schema", c.DefaultSchema),
		slog.Int("max_concurrent_tasks", c.MaxConcurrentTasks),
		slog.Duration("task_timeout", c.TaskTimeout),
		slog.Int("db_pool_size", c.DBPoolSize),
	)
}

// redactURL hides the secrets of a database URL (see cloacina.RedactURL).
func redactURL(raw string) string { return cloacina.RedactURL(raw) }
