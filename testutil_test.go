package cloacina_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/internal/pgtest"
	"github.com/google/uuid"
	"go.uber.org/goleak"
)

// TestMain runs the tests, stops the PostgreSQL server that tests may share
// through pgtest.Shared, and then checks that no test left goroutines
// behind: every runner the tests start is shut down, and a shut-down runner
// must stop all of its goroutines (dispatcher, task goroutines, database
// pools, listeners).
func TestMain(m *testing.M) {
	code := pgtest.Main(m)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: goroutines left after the tests passed: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// testPoll is the poll interval of the runners in the tests: short, so that
// work found only by polling (another runner's, a due retry) is found fast.
const testPoll = 50 * time.Millisecond

var discardLogger = slog.New(slog.DiscardHandler)

// testLogger returns a logger that writes the runner's warnings and errors
// to the test's log, to explain a failure. The runner must be shut down
// before the test ends (startRunner does it in a cleanup).
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// sqliteURL returns the URL of a fresh SQLite file in a temporary folder, and
// the file's path.
func sqliteURL(t testing.TB) (string, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "app.db")
	return "sqlite://" + path, path
}

// testCtx returns a context that ends after d, so that a bug fails a test
// instead of hanging it.
func testCtx(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// runnerOpts are the options every test runner gets before its own.
func runnerOpts(opts ...cloacina.Option) []cloacina.Option {
	return append([]cloacina.Option{cloacina.WithPollInterval(testPoll), cloacina.WithLogger(discardLogger)}, opts...)
}

// openRunner starts a runner on url, without shutting it down at the end of
// the test: the caller does.
func openRunner(t testing.TB, url string, opts ...cloacina.Option) *cloacina.Runner {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := cloacina.NewRunner(ctx, url, runnerOpts(opts...)...)
	if err != nil {
		t.Fatalf("NewRunner(%s): %v", url, err)
	}
	return r
}

// startRunner starts a runner on url and shuts it down when the test ends,
// failing the test if running tasks had to be interrupted. Shutting down a
// runner twice is harmless, so tests may shut it down themselves.
func startRunner(t testing.TB, url string, opts ...cloacina.Option) *cloacina.Runner {
	t.Helper()
	r := openRunner(t, url, opts...)
	t.Cleanup(func() { shutdown(t, r) })
	return r
}

// newRunner starts a runner on a fresh SQLite file with the given workflows.
func newRunner(t testing.TB, wfs []*cloacina.Workflow, opts ...cloacina.Option) *cloacina.Runner {
	t.Helper()
	url, _ := sqliteURL(t)
	return startRunner(t, url, append([]cloacina.Option{cloacina.WithWorkflows(wfs...)}, opts...)...)
}

// shutdown shuts r down, giving running tasks 5s, and fails the test when
// that was not enough.
func shutdown(t testing.TB, r *cloacina.Runner) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// setTask returns a task body that sets key to true.
func setTask(key string) cloacina.TaskFunc {
	return func(_ context.Context, c *cloacina.Context) error {
		return c.Set(key, true)
	}
}

// okTask is a task body that does nothing.
func okTask(context.Context, *cloacina.Context) error { return nil }

// execute runs workflow with input and fails the test when it cannot.
func execute(t testing.TB, ctx context.Context, r *cloacina.Runner, workflow string, input any) *cloacina.Result {
	t.Helper()
	res, err := r.Execute(ctx, workflow, input)
	if err != nil {
		t.Fatalf("Execute(%s): %v", workflow, err)
	}
	return res
}

// wantStatus fails the test unless res has status want.
func wantStatus(t testing.TB, res *cloacina.Result, want cloacina.ExecutionStatus) {
	t.Helper()
	if res.Status != want {
		t.Fatalf("execution %s of %s: status %s (error %q), want %s; tasks: %s",
			res.ExecutionID, res.WorkflowName, res.Status, res.Error, want, describeTasks(res))
	}
}

func describeTasks(res *cloacina.Result) string {
	var parts []string
	for _, tr := range res.Tasks {
		s := tr.Name + "=" + string(tr.Status)
		if tr.Error != "" {
			s += "(" + tr.Error + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

// taskOf returns the result of the named task, failing the test when the
// result has none.
func taskOf(t testing.TB, res *cloacina.Result, name string) cloacina.TaskResult {
	t.Helper()
	tr, ok := res.Task(name)
	if !ok {
		t.Fatalf("execution %s has no task %q; tasks: %s", res.ExecutionID, name, describeTasks(res))
	}
	return tr
}

// wantTask checks a task's status and number of attempts.
func wantTask(t testing.TB, res *cloacina.Result, name string, status cloacina.TaskStatus, attempts int) cloacina.TaskResult {
	t.Helper()
	tr := taskOf(t, res, name)
	if tr.Status != status || tr.Attempts != attempts {
		t.Errorf("task %s: status %s, attempts %d (error %q); want %s, attempts %d",
			name, tr.Status, tr.Attempts, tr.Error, status, attempts)
	}
	return tr
}

// eventsOf returns the events of an execution.
func eventsOf(t testing.TB, ctx context.Context, r *cloacina.Runner, id uuid.UUID) []cloacina.Event {
	t.Helper()
	evs, err := r.ExecutionEvents(ctx, id)
	if err != nil {
		t.Fatalf("ExecutionEvents(%s): %v", id, err)
	}
	return evs
}

// filterEvents keeps the events of type typ about task (any task, or the
// execution itself, when task is "*").
func filterEvents(evs []cloacina.Event, typ cloacina.EventType, task string) []cloacina.Event {
	var out []cloacina.Event
	for _, e := range evs {
		if e.Type == typ && (task == "*" || e.Task == task) {
			out = append(out, e)
		}
	}
	return out
}

func describeEvents(evs []cloacina.Event) string {
	var b strings.Builder
	for _, e := range evs {
		b.WriteString("\n  ")
		b.WriteString(string(e.Type))
		if e.Task != "" {
			b.WriteString(" " + e.Task)
		}
		if e.Message != "" {
			b.WriteString(" [" + e.Message + "]")
		}
	}
	return b.String()
}

// waitUntil polls cond every 5ms until it holds, failing the test when ctx
// ends first.
func waitUntil(t testing.TB, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting until %s", what)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// recv waits until ch is closed (or receives), failing the test after d.
func recv(t testing.TB, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("timed out after %v waiting for %s", d, what)
	}
}

// taskStatus returns the current state of one task of an execution.
func taskStatus(t testing.TB, ctx context.Context, r *cloacina.Runner, id uuid.UUID, task string) cloacina.TaskResult {
	t.Helper()
	res, err := r.ExecutionResult(ctx, id)
	if err != nil {
		t.Fatalf("ExecutionResult(%s): %v", id, err)
	}
	return taskOf(t, res, task)
}

// jsonObject decodes a JSON object literal the way contexts hold values.
func jsonObject(t testing.TB, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("bad JSON in test: %v: %s", err, s)
	}
	return m
}

// wantMap fails the test unless got equals want (a JSON object literal).
func wantMap(t testing.TB, what string, got map[string]any, want string) {
	t.Helper()
	w := jsonObject(t, want)
	if !reflect.DeepEqual(got, w) {
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(w)
		t.Errorf("%s:\n got %s\nwant %s", what, gb, wb)
	}
}

// counter counts calls by key, safe for concurrent use.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) inc(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[key]++
	return c.n[key]
}

func (c *counter) get(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}

func (c *counter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.n))
	for k, v := range c.n {
		out[k] = v
	}
	return out
}

// sortedKeys returns a context's keys in sorted order (nil for no context).
func sortedKeys(c *cloacina.Context) []string {
	if c == nil {
		return nil
	}
	return c.Keys()
}
