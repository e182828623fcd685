package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/client"
	"github.com/cloacina-go/cloacina/internal/pgtest"
)

// runCLI runs the command in process with the environment env.
func runCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	code := run(testCtx(t, 30*time.Second), &app{stdout: &stdout, stderr: &stderr, lookupEnv: lookup}, args)
	return code, stdout.String(), stderr.String()
}

func TestSettingsPrecedence(t *testing.T) {
	dir := t.TempDir()
	envFile := filepath.Join(dir, "test.env")
	if err := os.WriteFile(envFile, []byte("CLOACINA_ADDR=from-file:1\nCLOACINA_DATA_DIR=file-dir\nCLOACINA_LOG_FORMAT=json\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"CLOACINA_ADDR": "from-env:2", "CLOACINA_DATA_DIR": "env-dir"}
	var got serveFlags
	a := &app{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, lookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	root := a.rootCmd()
	serve, _, err := root.Find([]string{"serve"})
	if err != nil {
		t.Fatal(err)
	}
	// Read the flags instead of serving.
	serve.RunE = func(cmd *cobra.Command, _ []string) error {
		fl := cmd.Flags()
		got.addr, _ = fl.GetString("addr")
		got.storage.dataDir, _ = fl.GetString("data-dir")
		got.logFormat, _ = fl.GetString("log-format")
		got.shutdownTimeout, _ = fl.GetDuration("shutdown-timeout")
		return nil
	}
	root.SetArgs([]string{"serve", "--env-file", envFile, "--addr", "from-flag:3"})
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	// flag > env > .env > default
	if got.addr != "from-flag:3" || got.storage.dataDir != "env-dir" || got.logFormat != "json" || got.shutdownTimeout != defaultShutdownTimeout {
		t.Errorf("settings: %+v", got)
	}
}

// TestGuideSettings: the guide's .env tuning variables set serve's
// flags; the environment beats the .env file whatever the variables'
// names; CLOACINA_TASK_TIMEOUT takes a duration, TASK_TIMEOUT_SECONDS
// seconds.
func TestGuideSettings(t *testing.T) {
	read := func(t *testing.T, env map[string]string, file string, args ...string) serveFlags {
		t.Helper()
		envFile := filepath.Join(t.TempDir(), "test.env")
		if err := os.WriteFile(envFile, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		var got serveFlags
		a := &app{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, lookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
		root := a.rootCmd()
		serve, _, err := root.Find([]string{"serve"})
		if err != nil {
			t.Fatal(err)
		}
		serve.RunE = func(cmd *cobra.Command, _ []string) error {
			fl := cmd.Flags()
			got.tenantTasks, _ = fl.GetInt("max-concurrent-tasks")
			got.totalTasks, _ = fl.GetInt("total-concurrent-tasks")
			got.taskTimeout, _ = fl.GetDuration("task-timeout")
			got.dbPoolSize, _ = fl.GetInt("db-pool-size")
			return nil
		}
		root.SetArgs(append([]string{"serve", "--env-file", envFile}, args...))
		if err := root.ExecuteContext(context.Background()); err != nil {
			t.Fatal(err)
		}
		return got
	}
	guide := "MAX_CONCURRENT_TASKS=8\nTASK_TIMEOUT_SECONDS=300\nDB_POOL_SIZE=12\n"
	if got := read(t, nil, guide); got.tenantTasks != 8 || got.taskTimeout != 300*time.Second || got.dbPoolSize != 12 || got.totalTasks != 0 {
		t.Errorf("the guide's .env: %+v", got)
	}
	if got := read(t, nil, ""); got.tenantTasks != 4 || got.taskTimeout != 5*time.Minute || got.dbPoolSize != 10 {
		t.Errorf("defaults: %+v", got)
	}
	// The environment's MAX_CONCURRENT_TASKS beats the file's
	// CLOACINA_MAX_CONCURRENT_TASKS; a flag beats both.
	env := map[string]string{"MAX_CONCURRENT_TASKS": "6", "CLOACINA_TASK_TIMEOUT": "90s", "CLOACINA_TOTAL_CONCURRENT_TASKS": "40"}
	file := "CLOACINA_MAX_CONCURRENT_TASKS=3\nTASK_TIMEOUT_SECONDS=7\nCLOACINA_DB_POOL_SIZE=20\nDB_POOL_SIZE=30\n"
	if got := read(t, env, file); got.tenantTasks != 6 || got.taskTimeout != 90*time.Second || got.dbPoolSize != 20 || got.totalTasks != 40 {
		t.Errorf("env over .env: %+v", got)
	}
	if got := read(t, env, file, "--max-concurrent-tasks", "2", "--task-timeout", "1m"); got.tenantTasks != 2 || got.taskTimeout != time.Minute {
		t.Errorf("flags over both: %+v", got)
	}
}

func TestBadInput(t *testing.T) {
	// The guide's .env, less its TENANT_ID.
	guideEnv := filepath.Join(t.TempDir(), "guide.env")
	if err := os.WriteFile(guideEnv, []byte("DEFAULT_SCHEMA=public\nMAX_CONCURRENT_TASKS=8\nTASK_TIMEOUT_SECONDS=300\nDB_POOL_SIZE=10\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string
	}{
		{"run without workflow", nil, []string{"run", "--tenant", "a"}, 2, "one workflow name"},
		{"run without tenant", nil, []string{"run", "hello"}, 2, "--tenant is required"},
		{"context not an object", nil, []string{"run", "hello", "-t", "a", "--context", "42"}, 2, "JSON object"},
		{"context bad JSON", nil, []string{"run", "hello", "-t", "a", "--context", "{"}, 2, "JSON object"},
		{"context missing file", nil, []string{"run", "hello", "-t", "a", "--context", "@/nonexistent.json"}, 2, "nonexistent"},
		{"watch and wait", nil, []string{"run", "hello", "-t", "a", "--watch", "--wait", "1s"}, 2, "do not go together"},
		{"wait too long", nil, []string{"run", "hello", "-t", "a", "--wait", "6m"}, 2, "--wait"},
		{"bad server", nil, []string{"tenant", "list", "--server", "ftp://x"}, 2, "--server"},
		{"bad output", nil, []string{"tenant", "list", "-o", "yaml"}, 2, "want text or json"},
		{"unknown flag", nil, []string{"tenant", "list", "--nope"}, 2, "unknown flag"},
		{"bad role", nil, []string{"keys", "create", "-t", "a", "--role", "owner"}, 2, "want read or write"},
		{"graph format", nil, []string{"workflows", "graph", "etl", "--format", "png"}, 2, "mermaid or dot"},
		{"bench shape", nil, []string{"bench", "--shape", "ring"}, 2, "single, chain or fanout"},
		{"bench event log", nil, []string{"bench", "--event-log", "some"}, 2, "all or exceptions"},
		{"serve event log", map[string]string{"CLOACINA_EVENT_LOG": "none"}, []string{"serve", "--data-dir", t.TempDir()}, 2, "all or exceptions"},
		{"serve sqlite url", nil, []string{"serve", "--database-url", "sqlite://x.db"}, 2, "postgres://"},
		{"serve roles without db", nil, []string{"serve", "--tenant-roles"}, 2, "needs PostgreSQL"},
		{"serve short key", nil, []string{"serve", "--admin-key", "short"}, 2, "at least 16"},
		{"serve bad env bool", map[string]string{"CLOACINA_NO_AUTH": "maybe"}, []string{"serve"}, 2, "CLOACINA_NO_AUTH"},
		{"serve bad log format", nil, []string{"serve", "--log-format", "xml", "--data-dir", t.TempDir()}, 2, "text or json"},
		{"server down", nil, []string{"tenant", "list", "--server", "http://127.0.0.1:1"}, 1, "connection refused"},
		{"migrate missing dir", nil, []string{"migrate", "--data-dir", filepath.Join(t.TempDir(), "nope")}, 1, "does not exist"},
		// Task slots: per tenant on both backends, a total on PostgreSQL
		// only (no PostgreSQL is reached: the flags are checked first).
		{"total on SQLite", nil, []string{"serve", "--data-dir", t.TempDir(), "--total-concurrent-tasks", "32"}, 2, "--total-concurrent-tasks is for PostgreSQL"},
		{"total on SQLite from env", map[string]string{"CLOACINA_TOTAL_CONCURRENT_TASKS": "32"}, []string{"serve", "--data-dir", t.TempDir()}, 2, "is for PostgreSQL"},
		{"total below per tenant", nil, []string{"serve", "--database-url", "postgres://u@127.0.0.1:1/db", "--max-concurrent-tasks", "8", "--total-concurrent-tasks", "4"}, 2, "--total-concurrent-tasks 4 is below --max-concurrent-tasks 8"},
		{"per tenant zero", map[string]string{"MAX_CONCURRENT_TASKS": "0"}, []string{"serve", "--data-dir", t.TempDir()}, 2, "--max-concurrent-tasks 0: want 1 or more"},
		// The HTTP limits, idle closing and role prefix (checked before
		// any database is reached).
		{"conns per client negative", map[string]string{"CLOACINA_MAX_CONNS_PER_CLIENT": "-1"}, []string{"serve", "--data-dir", t.TempDir()}, 2, "--max-conns-per-client -1: want 1 or more (0: no limit)"},
		{"body read timeout negative", nil, []string{"serve", "--data-dir", t.TempDir(), "--body-read-timeout", "-1s"}, 2, "--body-read-timeout -1s: want a positive duration"},
		{"delete grace zero", map[string]string{"CLOACINA_TENANT_DELETE_GRACE": "0s"}, []string{"serve", "--data-dir", t.TempDir()}, 2, "--tenant-delete-grace 0s: want a positive duration"},
		{"inflight bytes unit", nil, []string{"serve", "--data-dir", t.TempDir(), "--max-inflight-body-bytes", "32MB"}, 2, "KiB, MiB or GiB"},
		{"inflight bytes negative", map[string]string{"CLOACINA_MAX_INFLIGHT_BODY_BYTES": "-1MiB"}, []string{"serve", "--data-dir", t.TempDir()}, 2, "--max-inflight-body-bytes -1MiB: want a positive size"},
		{"idle timeout negative", nil, []string{"serve", "--data-dir", t.TempDir(), "--idle-timeout", "-1m"}, 2, "--idle-timeout -1m0s: want a positive duration (0: keep every tenant open)"},
		{"idle timeout on PostgreSQL", map[string]string{"CLOACINA_IDLE_TIMEOUT": "5m"}, []string{"serve", "--database-url", "postgres://u@127.0.0.1:1/db"}, 2, "--idle-timeout is for SQLite"},
		{"role prefix without roles", nil, []string{"serve", "--database-url", "postgres://u@127.0.0.1:1/db", "--tenant-role-prefix", "d2_"}, 2, "--tenant-role-prefix goes with --tenant-roles"},
		// Admin keys or a tenant's.
		{"keys without scope", nil, []string{"keys", "list"}, 2, "--tenant is required (or set CLOACINA_TENANT), or --admin"},
		{"keys admin and tenant", nil, []string{"keys", "revoke", "abc", "--admin", "-t", "acme"}, 2, "--admin and --tenant do not go together"},
		{"admin key with role", nil, []string{"keys", "create", "--admin", "--role", "read"}, 2, "--role goes with --tenant"},
		// The guide's .env settings: honoured or refused, never ignored.
		{"task timeout not seconds", map[string]string{"TASK_TIMEOUT_SECONDS": "5m"}, []string{"serve", "--data-dir", t.TempDir()}, 2, `TASK_TIMEOUT_SECONDS="5m" (from the environment, the default of --task-timeout): want a whole number of seconds`},
		{"task timeout zero", map[string]string{"TASK_TIMEOUT_SECONDS": "0"}, []string{"serve", "--data-dir", t.TempDir()}, 2, "--task-timeout 0s: want a positive duration"},
		{"pool size zero", map[string]string{"DB_POOL_SIZE": "0"}, []string{"serve", "--data-dir", t.TempDir()}, 2, "--db-pool-size 0: want 1 or more"},
		{"pool size not a number", map[string]string{"DB_POOL_SIZE": "ten"}, []string{"serve", "--data-dir", t.TempDir()}, 2, "DB_POOL_SIZE (from the environment, the default of --db-pool-size)"},
		{"serve TENANT_ID", map[string]string{"TENANT_ID": "acme"}, []string{"serve", "--data-dir", t.TempDir()}, 2, `TENANT_ID="acme" (from the environment) is refused by cloacina serve`},
		{"serve DEFAULT_SCHEMA in .env", nil, []string{"serve", "--data-dir", t.TempDir(), "--env-file", guideEnv}, 2, `DEFAULT_SCHEMA="public" (from the env file ` + guideEnv + `) is refused by cloacina serve`},
		{"migrate TENANT_ID", map[string]string{"TENANT_ID": "acme"}, []string{"migrate", "--data-dir", t.TempDir()}, 2, "refused by cloacina migrate: it is the guide's setting for a runner that serves one tenant, while migrate works on every tenant, or on the one named by --tenant"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, tc.env, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, tc.code, tc.want)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "cloacina ") {
		t.Errorf("version: %d %q", code, out)
	}
}

func TestBench(t *testing.T) {
	for i, shape := range []string{shapeSingle, shapeChain, shapeFanout} {
		log := []string{"all", "exceptions"}[i%2]
		code, out, stderr := runCLI(t, nil, "bench", "--shape", shape, "-n", "40", "-c", "4", "-o", "json", "--event-log", log)
		if code != 0 {
			t.Fatalf("bench %s: exit %d: %s", shape, code, stderr)
		}
		var r benchResult
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		if r.Executions != 40 || r.Failed != 0 || r.WorkflowsPerS <= 0 || r.LatencyP99MS < r.LatencyP50MS {
			t.Errorf("bench %s: %+v", shape, r)
		}
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	for p, want := range map[float64]time.Duration{0.5: 50, 0.95: 95, 0.99: 99, 1: 100} {
		if got := percentile(d, p); got != want {
			t.Errorf("p%v = %v, want %v", p, got, want)
		}
	}
	if percentile(nil, 0.5) != 0 || percentile(d[:1], 0.99) != 1 {
		t.Error("edge cases")
	}
}

// TestBenchPostgres runs bench in a fresh schema and checks that the
// schema is dropped afterwards (its runner shut down first).
func TestBenchPostgres(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.Shared(t).NewDatabase(t)
	code, out, stderr := runCLI(t, nil, "bench", "--database-url", dbURL, "-n", "20", "-c", "4", "-o", "json")
	if code != 0 || stderr != "" {
		t.Fatalf("bench: exit %d, stderr %q", code, stderr)
	}
	var r benchResult
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.Failed != 0 || !strings.Contains(r.Database, "schema cloacina_bench_") {
		t.Fatalf("bench: %+v (%v)", r, err)
	}
	ctx := testCtx(t, 30*time.Second)
	e, err := cloacina.NewEngine(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown(ctx)
	schemas, err := e.Schemas(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range schemas {
		if strings.HasPrefix(s, "cloacina_bench_") {
			t.Errorf("bench left schema %s behind", s)
		}
	}
}

// TestCompletion: the shell completion script, and the values offered
// for the flags that take one of a few words.
func TestCompletion(t *testing.T) {
	code, out, _ := runCLI(t, nil, "completion", "bash")
	if code != 0 || !strings.Contains(out, "__start_cloacina") {
		t.Fatalf("completion bash: exit %d, %d bytes", code, len(out))
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"workflows", "graph", "etl", "--format", ""}, []string{"mermaid", "dot"}},
		{[]string{"executions", "list", "-o", ""}, []string{"text", "json"}},
		{[]string{"keys", "create", "--role", ""}, []string{"read", "write"}},
		{[]string{"bench", "--shape", ""}, []string{"single", "chain", "fanout"}},
		{[]string{"serve", "--log-level", ""}, []string{"debug", "info", "warn", "error"}},
		{[]string{"executions", "list", "--status", ""}, []string{"Running", "Cancelled"}},
	} {
		code, out, _ := runCLI(t, nil, append([]string{"__complete"}, tc.args...)...)
		lines := strings.Split(out, "\n")
		for _, w := range tc.want {
			if code != 0 || !slices.Contains(lines, w) {
				t.Errorf("completing %q: exit %d, %q, want %q", tc.args, code, out, w)
			}
		}
	}
	// Workflow names come from the server: none without one.
	if code, out, _ := runCLI(t, map[string]string{"CLOACINA_SERVER": "http://127.0.0.1:1"}, "__complete", "run", ""); code != 0 || strings.Contains(out, "hello") {
		t.Errorf("completing run without a server: exit %d, %q", code, out)
	}
}

func TestEventLine(t *testing.T) {
	at := time.Date(2026, 11, 26, 18, 0, 0, 123e6, time.Local)
	for _, tc := range []struct {
		e    client.Event
		want string
	}{
		{client.Event{Type: "execution_created", Message: "version abc", At: at}, "18:00:00.123  execution  created: version abc"},
		{client.Event{Type: "task_started", Task: "greet", Attempt: 2, At: at}, "18:00:00.123  task       started          greet (attempt 2)"},
		{client.Event{Type: "task_ready", Task: "greet", At: at}, "18:00:00.123  task       ready            greet"},
		{client.Event{Type: "task_retry_scheduled", Task: "call", Attempt: 1, Message: "boom\nagain", At: at},
			"18:00:00.123  task       retry scheduled  call (attempt 1): boom again"},
	} {
		if got := eventLine(tc.e); got != tc.want {
			t.Errorf("eventLine(%+v)\n got %q\nwant %q", tc.e, got, tc.want)
		}
	}
	if !terminalEvent("execution_cancelled") || terminalEvent("execution_paused") || terminalEvent("task_failed") {
		t.Error("terminalEvent")
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]int64{"1024": 1024, "32MiB": 32 << 20, "512kib": 512 << 10, "2GiB": 2 << 30, "7B": 7, " 3MiB ": 3 << 20} {
		var s byteSize
		if err := s.Set(in); err != nil || int64(s) != want {
			t.Errorf("Set(%q) = %d, %v; want %d", in, s, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "1.5MiB", "32MB", "1 MiB", "9999999999999GiB"} {
		var s byteSize
		if err := s.Set(in); err == nil {
			t.Errorf("Set(%q) = %d, want an error", in, s)
		}
	}
	for v, want := range map[byteSize]string{32 << 20: "32MiB", 1536: "1536B", 0: "0", 3 << 30: "3GiB"} {
		if got := v.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int64(v), got, want)
		}
	}
}
