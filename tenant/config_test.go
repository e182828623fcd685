package tenant_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/tenant"
)

// env returns a lookup function over vars.
func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

const pgURL = "postgresql://user:s3cr3t-pw@localhost:5432/cloacina"

func TestLoadConfigDefaults(t *testing.T) {
	c, err := tenant.LoadConfigFrom(env(map[string]string{"DATABASE_URL": pgURL}))
	if err != nil {
		t.Fatal(err)
	}
	want := tenant.Config{DatabaseURL: pgURL, DefaultSchema: "public", MaxConcurrentTasks: 4, TaskTimeout: 300 * time.Second, DBPoolSize: 10}
	if c != want {
		t.Errorf("LoadConfigFrom = %+v, want %+v", c, want)
	}
	if c.Schema() != "" {
		t.Errorf("Schema() = %q, want \"\" (public)", c.Schema())
	}
	// Empty values count as unset.
	c2, err := tenant.LoadConfigFrom(env(map[string]string{"DATABASE_URL": pgURL, "TENANT_ID": "", "DEFAULT_SCHEMA": " ", "MAX_CONCURRENT_TASKS": ""}))
	if err != nil || c2 != want {
		t.Errorf("with empty variables: %+v, %v; want the defaults", c2, err)
	}
}

func TestLoadConfigParsesEachVariable(t *testing.T) {
	c, err := tenant.LoadConfigFrom(env(map[string]string{
		"DATABASE_URL":         pgURL,
		"TENANT_ID":            "production_tenant_123",
		"DEFAULT_SCHEMA":       "shared",
		"MAX_CONCURRENT_TASKS": "8",
		"TASK_TIMEOUT_SECONDS": " 90 ",
		"DB_POOL_SIZE":         "20",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := tenant.Config{DatabaseURL: pgURL, TenantID: "production_tenant_123", DefaultSchema: "shared",
		MaxConcurrentTasks: 8, TaskTimeout: 90 * time.Second, DBPoolSize: 20}
	if c != want {
		t.Errorf("LoadConfigFrom = %+v, want %+v", c, want)
	}
	for _, u := range []string{"postgres://h/db", "sqlite://data/app.db", "sqlite:///tmp/x.db"} {
		c, err := tenant.LoadConfigFrom(env(map[string]string{"DATABASE_URL": u}))
		if err != nil || c.DatabaseURL != u {
			t.Errorf("DATABASE_URL=%s: %+v, %v", u, c, err)
		}
	}
}

func TestLoadConfigInvalidValuesNameTheVariable(t *testing.T) {
	tests := []struct {
		key, value string
		wantInMsg  string
	}{
		{"MAX_CONCURRENT_TASKS", "abc", `MAX_CONCURRENT_TASKS: "abc" is not a whole number`},
		{"MAX_CONCURRENT_TASKS", "-1", "MAX_CONCURRENT_TASKS: -1 is negative"},
		{"MAX_CONCURRENT_TASKS", "0", "MAX_CONCURRENT_TASKS: must be at least 1"},
		{"MAX_CONCURRENT_TASKS", "2.5", `MAX_CONCURRENT_TASKS: "2.5" is not a whole number`},
		{"MAX_CONCURRENT_TASKS", "99999999999999999999", "MAX_CONCURRENT_TASKS: \"99999999999999999999\" is out of range"},
		{"MAX_CONCURRENT_TASKS", "9999999999", "MAX_CONCURRENT_TASKS: 9999999999 is more than"},
		{"TASK_TIMEOUT_SECONDS", "5m", `TASK_TIMEOUT_SECONDS: "5m" is not a whole number`},
		{"TASK_TIMEOUT_SECONDS", "0", "TASK_TIMEOUT_SECONDS: must be at least 1"},
		{"TASK_TIMEOUT_SECONDS", "-30", "TASK_TIMEOUT_SECONDS: -30 is negative"},
		{"TASK_TIMEOUT_SECONDS", "9300000000", "TASK_TIMEOUT_SECONDS: 9300000000 is more than"},
		{"DB_POOL_SIZE", "ten", `DB_POOL_SIZE: "ten" is not a whole number`},
		{"DB_POOL_SIZE", "0", "DB_POOL_SIZE: must be at least 1"},
		{"DB_POOL_SIZE", "-5", "DB_POOL_SIZE: -5 is negative"},
		{"TENANT_ID", "a;DROP SCHEMA x", "TENANT_ID: cloacina: invalid tenant id"},
		{"TENANT_ID", "acme-corp", "TENANT_ID: cloacina: invalid tenant id"},
		{"TENANT_ID", "public", "TENANT_ID: cloacina: invalid tenant id"},
		{"TENANT_ID", "pg_temp", "TENANT_ID: cloacina: invalid tenant id"},
		{"DEFAULT_SCHEMA", "bad schema", "DEFAULT_SCHEMA: cloacina: invalid tenant id"},
		{"DEFAULT_SCHEMA", "information_schema", "DEFAULT_SCHEMA: cloacina: invalid tenant id"},
		{"DATABASE_URL", "mysql://root:s3cr3t-pw@db/app", `DATABASE_URL: "mysql://root:REDACTED@db/app" is not a sqlite://`},
		{"DATABASE_URL", "root:s3cr3t-pw@db", `DATABASE_URL: "REDACTED" is not a sqlite://`},
	}
	for _, tt := range tests {
		vars := map[string]string{"DATABASE_URL": pgURL, tt.key: tt.value}
		_, err := tenant.LoadConfigFrom(env(vars))
		if err == nil {
			t.Errorf("%s=%q: no error", tt.key, tt.value)
			continue
		}
		if !errors.Is(err, tenant.ErrInvalidConfig) {
			t.Errorf("%s=%q: %v does not wrap ErrInvalidConfig", tt.key, tt.value, err)
		}
		if !strings.Contains(err.Error(), tt.wantInMsg) {
			t.Errorf("%s=%q: error %q, want it to contain %q", tt.key, tt.value, err, tt.wantInMsg)
		}
		if strings.Contains(err.Error(), "s3cr3t-pw") {
			t.Errorf("%s=%q: the error shows the password: %q", tt.key, tt.value, err)
		}
		if strings.HasPrefix(tt.key, "TENANT_ID") && !errors.Is(err, cloacina.ErrInvalidTenantID) {
			t.Errorf("%s=%q: %v does not wrap ErrInvalidTenantID", tt.key, tt.value, err)
		}
	}
}

func TestLoadConfigMissingDatabaseURL(t *testing.T) {
	for _, vars := range []map[string]string{{}, {"DATABASE_URL": ""}, {"DATABASE_URL": "  "}} {
		_, err := tenant.LoadConfigFrom(env(vars))
		if err == nil || !strings.Contains(err.Error(), "DATABASE_URL") {
			t.Errorf("vars %q: error %v, want one naming DATABASE_URL", vars, err)
		}
	}
	// Every problem is reported at once.
	_, err := tenant.LoadConfigFrom(env(map[string]string{"DB_POOL_SIZE": "x", "TENANT_ID": "1x"}))
	for _, name := range []string{"DATABASE_URL", "DB_POOL_SIZE", "TENANT_ID"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error %v does not name %s", err, name)
		}
	}
}

func TestLoadConfigSchemaOnSQLite(t *testing.T) {
	sqlite := "sqlite://data/app.db"
	if _, err := tenant.LoadConfigFrom(env(map[string]string{"DATABASE_URL": sqlite, "TENANT_ID": "acme"})); err == nil || !strings.Contains(err.Error(), "TENANT_ID") {
		t.Errorf("TENANT_ID with SQLite: %v, want an error naming TENANT_ID", err)
	}
	if _, err := tenant.LoadConfigFrom(env(map[string]string{"DATABASE_URL": sqlite, "DEFAULT_SCHEMA": "shared"})); err == nil || !strings.Contains(err.Error(), "DEFAULT_SCHEMA") {
		t.Errorf("DEFAULT_SCHEMA with SQLite: %v, want an error naming DEFAULT_SCHEMA", err)
	}
	if _, err := tenant.LoadConfigFrom(env(map[string]string{"DATABASE_URL": sqlite, "DEFAULT_SCHEMA": "Public"})); err != nil {
		t.Errorf("DEFAULT_SCHEMA=Public with SQLite: %v", err)
	}
}

// clearEnv makes every variable LoadConfig reads empty (unset) for the
// test, whatever the environment the tests run in.
func clearEnv(t *testing.T) {
	for _, k := range []string{"DATABASE_URL", "TENANT_ID", "DEFAULT_SCHEMA", "MAX_CONCURRENT_TASKS", "TASK_TIMEOUT_SECONDS", "DB_POOL_SIZE"} {
		t.Setenv(k, "")
	}
}

const envFile = `# Database configuration
DATABASE_URL=postgresql://user:pass@localhost/cloacina

# Tenant configuration
TENANT_ID=production_tenant_123
DEFAULT_SCHEMA=public

# Performance tuning
MAX_CONCURRENT_TASKS=8
TASK_TIMEOUT_SECONDS="300"
export DB_POOL_SIZE=12
`

func writeEnvFile(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadConfigEnvFile(t *testing.T) {
	clearEnv(t)
	c, err := tenant.LoadConfig(writeEnvFile(t, envFile))
	if err != nil {
		t.Fatal(err)
	}
	want := tenant.Config{DatabaseURL: "postgresql://user:pass@localhost/cloacina", TenantID: "production_tenant_123",
		DefaultSchema: "public", MaxConcurrentTasks: 8, TaskTimeout: 300 * time.Second, DBPoolSize: 12}
	if c != want {
		t.Errorf("LoadConfig = %+v, want %+v", c, want)
	}
	if c.Schema() != "production_tenant_123" {
		t.Errorf("Schema() = %q", c.Schema())
	}
	// The file is read, not loaded into the process environment.
	if v := os.Getenv("DB_POOL_SIZE"); v != "" {
		t.Errorf("DB_POOL_SIZE in the environment = %q after LoadConfig, want it untouched", v)
	}
}

func TestLoadConfigEnvironmentWinsOverFile(t *testing.T) {
	clearEnv(t)
	t.Setenv("MAX_CONCURRENT_TASKS", "16")
	t.Setenv("TENANT_ID", "from_env")
	c, err := tenant.LoadConfig(writeEnvFile(t, envFile))
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxConcurrentTasks != 16 || c.TenantID != "from_env" {
		t.Errorf("LoadConfig = %+v, want MAX_CONCURRENT_TASKS and TENANT_ID from the environment", c)
	}
	if c.DBPoolSize != 12 {
		t.Errorf("DBPoolSize = %d, want 12 from the file", c.DBPoolSize)
	}
	// An invalid value in the environment is reported even though the file's is fine.
	t.Setenv("DB_POOL_SIZE", "lots")
	if _, err := tenant.LoadConfig(writeEnvFile(t, envFile)); err == nil || !strings.Contains(err.Error(), "DB_POOL_SIZE") {
		t.Errorf("LoadConfig with DB_POOL_SIZE=lots: %v", err)
	}
}

func TestLoadConfigWithoutFile(t *testing.T) {
	clearEnv(t)
	t.Setenv("DATABASE_URL", pgURL)
	for _, path := range []string{"", filepath.Join(t.TempDir(), "missing.env")} {
		c, err := tenant.LoadConfig(path)
		if err != nil || c.DatabaseURL != pgURL || c.MaxConcurrentTasks != 4 {
			t.Errorf("LoadConfig(%q) = %+v, %v; want the environment's URL and defaults", path, c, err)
		}
	}
	// A folder is not a missing file: that is an error.
	if _, err := tenant.LoadConfig(t.TempDir()); err == nil {
		t.Error("LoadConfig(a folder): no error")
	}
}

func TestLoadConfigMalformedFileHidesItsText(t *testing.T) {
	clearEnv(t)
	for _, text := range []string{
		"DATABASE_URL=\"postgres://u:s3cr3t-pw@h/db\nMAX_CONCURRENT_TASKS=2\n",
		"DATABASE_URL s3cr3t-pw\n",
	} {
		_, err := tenant.LoadConfig(writeEnvFile(t, text))
		if err == nil {
			t.Errorf("file %q: no error", text)
			continue
		}
		if strings.Contains(err.Error(), "s3cr3t-pw") {
			t.Errorf("the error shows the file's secret: %v", err)
		}
		if !errors.Is(err, tenant.ErrInvalidConfig) {
			t.Errorf("error %v does not wrap ErrInvalidConfig", err)
		}
	}
}

func TestConfigSchema(t *testing.T) {
	tests := []struct {
		c    tenant.Config
		want string
	}{
		{tenant.Config{}, ""},
		{tenant.Config{DefaultSchema: "public"}, ""},
		{tenant.Config{DefaultSchema: "PUBLIC"}, ""},
		{tenant.Config{DefaultSchema: "shared"}, "shared"},
		{tenant.Config{TenantID: "acme"}, "acme"},
		{tenant.Config{TenantID: "acme", DefaultSchema: "shared"}, "acme"},
		{tenant.Config{TenantID: "acme", DefaultSchema: "public"}, "acme"},
	}
	for _, tt := range tests {
		if got := tt.c.Schema(); got != tt.want {
			t.Errorf("%+v.Schema() = %q, want %q", tt.c, got, tt.want)
		}
	}
}

func TestConfigOptions(t *testing.T) {
	c := tenant.Config{DatabaseURL: pgURL, TenantID: "acme", DefaultSchema: "public", MaxConcurrentTasks: 8, TaskTimeout: time.Minute, DBPoolSize: 3}
	var got cloacina.Config
	for _, o := range c.Options() {
		o(&got)
	}
	if got.Schema != "acme" || got.MaxConcurrentTasks != 8 || got.TaskTimeout != time.Minute || got.DBPoolSize != 3 {
		t.Errorf("options give %+v", got)
	}
	got = cloacina.Config{}
	for _, o := range (tenant.Config{DefaultSchema: "public"}).Options() {
		o(&got)
	}
	if got.Schema != "" {
		t.Errorf("public schema: options set Schema %q, want none", got.Schema)
	}
}

func TestConfigStringRedactsPassword(t *testing.T) {
	for _, u := range []string{
		pgURL,
		"postgres://localhost/db?password=s3cr3t-pw&sslmode=disable",
		"postgres://user:s3cr3t-pw#x@localhost/db",
		"postgres://user:s3cr3t-pw/x@localhost/db",
	} {
		c := tenant.Config{DatabaseURL: u, TenantID: "acme", MaxConcurrentTasks: 4}
		var logged bytes.Buffer
		slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "cfg", c)
		for _, s := range []string{c.String(), fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), logged.String()} {
			if strings.Contains(s, "s3cr3t-pw") {
				t.Errorf("the password shows in %q", s)
			}
			if !strings.Contains(s, "localhost") || !strings.Contains(s, "acme") {
				t.Errorf("%q does not describe the configuration", s)
			}
		}
	}
}

func TestConfigNewRunner(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	path := filepath.Join(t.TempDir(), "cfg.db")
	c, err := tenant.LoadConfigFrom(env(map[string]string{"DATABASE_URL": "sqlite://" + path, "MAX_CONCURRENT_TASKS": "2"}))
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.NewRunner(ctx, cloacina.WithWorkflows(pipeline(t)), cloacina.WithLogger(discardLogger))
	if err != nil {
		t.Fatalf("NewRunner: %v", err)
	}
	defer func() {
		if err := r.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	}()
	if names := r.Workflows(); len(names) != 1 || names[0].Name() != "pipeline" {
		t.Errorf("Workflows() = %v", names)
	}
	res, err := r.Execute(ctx, "pipeline", map[string]any{"tenant": "solo"})
	if err != nil || res.Status != cloacina.ExecutionCompleted {
		t.Fatalf("Execute: %v, %v", res, err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database file: %v", err)
	}
}

func TestConfigNewRunnerErrorHidesPassword(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	// Nothing listens on port 1: connecting fails at once.
	c := tenant.Config{DatabaseURL: "postgres://user:s3cr3t-pw@127.0.0.1:1/db?connect_timeout=2"}
	r, err := c.NewRunner(ctx, cloacina.WithLogger(discardLogger))
	if err == nil {
		_ = r.Shutdown(ctx)
		t.Fatal("NewRunner succeeded without a server")
	}
	if strings.Contains(err.Error(), "s3cr3t-pw") {
		t.Errorf("the error shows the password: %v", err)
	}
	// A schema on SQLite is refused by the engine.
	c = tenant.Config{DatabaseURL: "sqlite://" + filepath.Join(t.TempDir(), "x.db"), TenantID: "acme"}
	if _, err := c.NewRunner(ctx); !errors.Is(err, cloacina.ErrInvalidOption) {
		t.Errorf("schema on SQLite: %v, want ErrInvalidOption", err)
	}
}
