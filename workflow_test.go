package cloacina

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// wfNop is a task body that does nothing.
func wfNop(context.Context, *Context) error { return nil }

func taskIDs(wf *Workflow) []string {
	var ids []string
	for _, t := range wf.Tasks() {
		ids = append(ids, t.ID)
	}
	return ids
}

func TestBuildValidWorkflow(t *testing.T) {
	wf, err := NewWorkflow("etl").
		Description("extract, transform, load").
		Task("extract", wfNop, Describe("pull rows")).
		Task("transform", wfNop, DependsOn("extract"), Timeout(time.Minute)).
		Task("load", wfNop, DependsOn("transform"), Retry(RetryPolicy{MaxAttempts: 5}), When(Always())).
		Build()
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if wf.Name() != "etl" || wf.Description() != "extract, transform, load" {
		t.Fatalf("Name/Description = %q/%q", wf.Name(), wf.Description())
	}
	if got := taskIDs(wf); !slices.Equal(got, []string{"extract", "transform", "load"}) {
		t.Fatalf("Tasks = %q", got)
	}
	ex, ok := wf.Task("extract")
	if !ok || ex.Description != "pull rows" || len(ex.Dependencies) != 0 || ex.Timeout != 0 {
		t.Fatalf("Task(extract) = %+v, %v", ex, ok)
	}
	if ex.Retry.MaxAttempts != 1 || !ex.Trigger.IsDefault() {
		t.Fatalf("extract has retry %+v, trigger %s; want one attempt and the default rule", ex.Retry, ex.Trigger)
	}
	tr, _ := wf.Task("transform")
	if tr.Timeout != time.Minute || !slices.Equal(tr.Dependencies, []string{"extract"}) {
		t.Fatalf("Task(transform) = %+v", tr)
	}
	ld, _ := wf.Task("load")
	if ld.Retry.MaxAttempts != 5 || ld.Trigger.String() != "always" {
		t.Fatalf("Task(load) retry %+v trigger %s", ld.Retry, ld.Trigger)
	}
	// The effective policy is reported, defaults filled in.
	if ld.Retry.Backoff != BackoffExponential || ld.Retry.InitialDelay != time.Second || ld.Retry.MaxDelay != 5*time.Minute {
		t.Fatalf("Task(load) retry defaults not applied: %+v", ld.Retry)
	}
	if _, ok := wf.Task("nope"); ok {
		t.Fatal("Task(nope) found")
	}

	// TaskInfo is a copy.
	tr.Dependencies[0] = "changed"
	wf.Tasks()[1].Dependencies[0] = "changed"
	if again, _ := wf.Task("transform"); again.Dependencies[0] != "extract" {
		t.Fatal("mutating TaskInfo.Dependencies changed the workflow")
	}
}

func TestBuildErrors(t *testing.T) {
	long := strings.Repeat("x", 129)
	tests := []struct {
		name    string
		build   func() *WorkflowBuilder
		want    error
		mention []string
	}{
		{"empty", func() *WorkflowBuilder { return NewWorkflow("w") }, ErrEmptyWorkflow, []string{`"w"`}},
		{"duplicate task", func() *WorkflowBuilder {
			return NewWorkflow("w").Task("a", wfNop).Task("b", wfNop).Task("a", wfNop)
		}, ErrDuplicateTask, []string{`"a"`}},
		{"duplicate dependency", func() *WorkflowBuilder {
			return NewWorkflow("w").Task("a", wfNop).Task("b", wfNop, DependsOn("a", "a"))
		}, ErrDuplicateTask, []string{`"b"`, `"a"`}},
		{"missing dependency", func() *WorkflowBuilder {
			return NewWorkflow("w").Task("a", wfNop).Task("b", wfNop, DependsOn("a", "ghost"))
		}, ErrMissingDependency, []string{`"b"`, `"ghost"`}},
		{"nil task", func() *WorkflowBuilder {
			return NewWorkflow("w").Task("a", nil)
		}, ErrNilTask, []string{`"a"`}},
		{"empty workflow name", func() *WorkflowBuilder { return NewWorkflow("").Task("a", wfNop) }, ErrInvalidName, nil},
		{"workflow name with a space", func() *WorkflowBuilder { return NewWorkflow("my flow").Task("a", wfNop) }, ErrInvalidName, []string{`"my flow"`}},
		{"workflow name too long", func() *WorkflowBuilder { return NewWorkflow(long).Task("a", wfNop) }, ErrInvalidName, nil},
		{"workflow name with a slash", func() *WorkflowBuilder { return NewWorkflow("a/b").Task("a", wfNop) }, ErrInvalidName, nil},
		{"empty task id", func() *WorkflowBuilder { return NewWorkflow("w").Task("", wfNop) }, ErrInvalidName, nil},
		{"task id with a space", func() *WorkflowBuilder { return NewWorkflow("w").Task("load data", wfNop) }, ErrInvalidName, []string{`"load data"`}},
		{"task id too long", func() *WorkflowBuilder { return NewWorkflow("w").Task(long, wfNop) }, ErrInvalidName, nil},
		{"task id non-ASCII", func() *WorkflowBuilder { return NewWorkflow("w").Task("tâche", wfNop) }, ErrInvalidName, nil},
		{"task id with a quote", func() *WorkflowBuilder { return NewWorkflow("w").Task(`a"b`, wfNop) }, ErrInvalidName, nil},
		{"negative timeout", func() *WorkflowBuilder {
			return NewWorkflow("w").Task("a", wfNop, Timeout(-time.Second))
		}, ErrInvalidOption, []string{`"a"`, "timeout"}},
		{"negative max attempts", func() *WorkflowBuilder {
			return NewWorkflow("w").Task("a", wfNop, Retry(RetryPolicy{MaxAttempts: -1}))
		}, ErrInvalidRetryPolicy, []string{`"a"`, "MaxAttempts"}},
		{"misspelt backoff", func() *WorkflowBuilder {
			return NewWorkflow("w").Task("a", wfNop, Retry(RetryPolicy{Backoff: "exponetial"}))
		}, ErrInvalidRetryPolicy, []string{"exponetial"}},
		{"jitter above 1", func() *WorkflowBuilder {
			return NewWorkflow("w").Task("a", wfNop, Retry(RetryPolicy{Jitter: 1.5}))
		}, ErrInvalidRetryPolicy, []string{"jitter 1.5"}},
		{"trigger on a sibling", func() *WorkflowBuilder {
			return NewWorkflow("w").Task("a", wfNop).Task("b", wfNop).
				Task("c", wfNop, DependsOn("a"), When(Any(Failed("b"))))
		}, ErrInvalidTriggerRule, []string{`"c"`, `"b"`}},
		{"trigger on a downstream task", func() *WorkflowBuilder {
			return NewWorkflow("w").Task("a", wfNop, When(All(Succeeded("b")))).
				Task("b", wfNop, DependsOn("a"))
		}, ErrInvalidTriggerRule, []string{`"b"`}},
		{"trigger on itself", func() *WorkflowBuilder {
			return NewWorkflow("w").Task("a", wfNop).Task("b", wfNop, DependsOn("a"), When(All(Succeeded("b"))))
		}, ErrInvalidTriggerRule, nil},
		{"trigger with no conditions", func() *WorkflowBuilder {
			return NewWorkflow("w").Task("a", wfNop).Task("b", wfNop, DependsOn("a"), When(Any()))
		}, ErrInvalidTriggerRule, []string{"any()"}},
		{"cycle", func() *WorkflowBuilder {
			return NewWorkflow("w").Task("a", wfNop, DependsOn("b")).Task("b", wfNop, DependsOn("a"))
		}, ErrCycle, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wf, err := tt.build().Build()
			if wf != nil {
				t.Error("Build returned a workflow with an error")
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Build err = %v, want %v", err, tt.want)
			}
			for _, m := range tt.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %s", err, m)
				}
			}
		})
	}
}

func TestBuildValidNames(t *testing.T) {
	for _, name := range []string{"a", "A", "0", "etl.v2", "my-flow_3", strings.Repeat("n", 128), "-", "..", "x.y-z_W9"} {
		if _, err := NewWorkflow(name).Task(name, wfNop).Build(); err != nil {
			t.Errorf("name %q rejected: %v", name, err)
		}
	}
}

func TestBuildTriggerOnTransitiveAncestorIsValid(t *testing.T) {
	_, err := NewWorkflow("w").
		Task("a", wfNop).
		Task("b", wfNop, DependsOn("a")).
		Task("c", wfNop, DependsOn("b"), When(Any(Failed("a"), Skipped("b"), ContextExists("k")))).
		Build()
	if err != nil {
		t.Fatalf("trigger on a transitive ancestor rejected: %v", err)
	}
}

func TestBuildReportsSeveralErrors(t *testing.T) {
	_, err := NewWorkflow("bad name").
		Task("a", nil, Timeout(-1)).
		Task("a", wfNop).
		Task("b", wfNop, DependsOn("ghost")).
		Task("c d", wfNop, Retry(RetryPolicy{MaxAttempts: -2, Backoff: "exponetial", Jitter: 1.5})).
		Build()
	if err == nil {
		t.Fatal("Build accepted an invalid workflow")
	}
	for _, want := range []error{ErrInvalidName, ErrNilTask, ErrInvalidOption, ErrDuplicateTask, ErrMissingDependency, ErrInvalidRetryPolicy} {
		if !errors.Is(err, want) {
			t.Errorf("errors.Is(err, %v) = false; err = %v", want, err)
		}
	}
	if errors.Is(err, ErrCycle) || errors.Is(err, ErrEmptyWorkflow) {
		t.Errorf("unrelated error reported: %v", err)
	}
	// One line per problem: 2 names, nil task, timeout, duplicate, missing, retry.
	if n := len(strings.Split(err.Error(), "\n")); n < 7 {
		t.Errorf("error has %d lines, want one per problem:\n%v", n, err)
	}
	// The invalid retry policy lists each of its problems.
	for _, m := range []string{"-2", "exponetial", "1.5"} {
		if !strings.Contains(err.Error(), m) {
			t.Errorf("error does not mention %s:\n%v", m, err)
		}
	}

	// An invalid name and no tasks are reported together too.
	_, err = NewWorkflow("").Build()
	if !errors.Is(err, ErrInvalidName) || !errors.Is(err, ErrEmptyWorkflow) {
		t.Errorf("NewWorkflow(\"\").Build() = %v, want ErrInvalidName and ErrEmptyWorkflow", err)
	}
}

var cycleRE = regexp.MustCompile(`dependency cycle: ([A-Za-z0-9_.\-]+(?: -> [A-Za-z0-9_.\-]+)+)$`)

// checkCycle asserts that err reports a cycle of b's tasks, in
// dependency-flow order (x -> y: y depends on x), and returns it.
func checkCycle(t *testing.T, b *WorkflowBuilder, err error) []string {
	t.Helper()
	if !errors.Is(err, ErrCycle) {
		t.Fatalf("err = %v, want ErrCycle", err)
	}
	m := cycleRE.FindStringSubmatch(err.Error())
	if m == nil {
		t.Fatalf("error %q does not have the shape \"a -> b -> a\"", err)
	}
	path := strings.Split(m[1], " -> ")
	if path[0] != path[len(path)-1] {
		t.Fatalf("cycle %q does not end where it starts", path)
	}
	inner := path[:len(path)-1]
	sorted := slices.Sorted(slices.Values(inner))
	if len(slices.Compact(sorted)) != len(inner) {
		t.Fatalf("cycle %q repeats a task", path)
	}
	deps := map[string][]string{}
	for _, td := range b.tasks {
		deps[td.id] = td.deps
	}
	for i := 0; i+1 < len(path); i++ {
		if !slices.Contains(deps[path[i+1]], path[i]) {
			t.Fatalf("cycle %q: %s does not depend on %s", path, path[i+1], path[i])
		}
	}
	return path
}

func TestBuildCycles(t *testing.T) {
	tests := []struct {
		name  string
		b     *WorkflowBuilder
		want  string
		exact bool
	}{
		{"self", NewWorkflow("w").Task("a", wfNop, DependsOn("a")), "a -> a", true},
		{"two", NewWorkflow("w").Task("a", wfNop, DependsOn("b")).Task("b", wfNop, DependsOn("a")), "a -> b -> a", true},
		{"three", NewWorkflow("w").
			Task("a", wfNop, DependsOn("c")).
			Task("b", wfNop, DependsOn("a")).
			Task("c", wfNop, DependsOn("b")), "a -> b -> c -> a", true},
		{"cycle behind a valid prefix and with a tail", NewWorkflow("w").
			Task("root", wfNop).
			Task("tail", wfNop, DependsOn("y")).
			Task("x", wfNop, DependsOn("root", "z")).
			Task("y", wfNop, DependsOn("x")).
			Task("z", wfNop, DependsOn("y")), "x -> y -> z -> x", false},
		{"self-dependency among others", NewWorkflow("w").
			Task("ok", wfNop).
			Task("loop", wfNop, DependsOn("ok", "loop")), "loop -> loop", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.b.Build()
			path := checkCycle(t, tt.b, err)
			// Which task the cycle is reported from depends on the search;
			// compare the cycles up to rotation.
			got := rotateCycle(path)
			if want := rotateCycle(strings.Split(tt.want, " -> ")); !slices.Equal(got, want) {
				t.Errorf("cycle = %q, want %q (up to rotation)", strings.Join(path, " -> "), tt.want)
			}
			// With every task on the cycle, the search starts at the first
			// declared one.
			if tt.exact && err.Error() != "cloacina: dependency cycle: "+tt.want {
				t.Errorf("error = %q, want exactly %q", err, "cloacina: dependency cycle: "+tt.want)
			}
		})
	}
}

// rotateCycle returns the cycle path (first id repeated at the end) rotated
// to start at its smallest id.
func rotateCycle(path []string) []string {
	inner := path[:len(path)-1]
	i := slices.Index(inner, slices.Min(inner))
	out := append(slices.Clone(inner[i:]), inner[:i]...)
	return append(out, out[0])
}

func TestTasksTopologicalStableOrder(t *testing.T) {
	tests := []struct {
		name string
		b    *WorkflowBuilder
		want []string
	}{
		{"declaration order when free", NewWorkflow("w").Task("c", wfNop).Task("a", wfNop).Task("b", wfNop),
			[]string{"c", "a", "b"}},
		{"dependency declared later", NewWorkflow("w").
			Task("d", wfNop, DependsOn("c")).
			Task("a", wfNop).
			Task("c", wfNop, DependsOn("b")).
			Task("b", wfNop),
			[]string{"a", "b", "c", "d"}},
		{"diamond", NewWorkflow("w").
			Task("join", wfNop, DependsOn("right", "left")).
			Task("left", wfNop, DependsOn("start")).
			Task("right", wfNop, DependsOn("start")).
			Task("start", wfNop),
			[]string{"start", "left", "right", "join"}},
		{"earliest ready first", NewWorkflow("w").
			Task("slow", wfNop, DependsOn("x")).
			Task("x", wfNop).
			Task("y", wfNop).
			Task("z", wfNop, DependsOn("y")),
			[]string{"x", "slow", "y", "z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wf, err := tt.b.Build()
			if err != nil {
				t.Fatal(err)
			}
			if got := taskIDs(wf); !slices.Equal(got, tt.want) {
				t.Fatalf("Tasks = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestTasksOrderProperty checks random DAGs: Tasks lists every task once,
// after its dependencies, and keeps declaration order when that order is
// already topological.
func TestTasksOrderProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 12).Draw(t, "n")
		// Task i may depend only on tasks < i: a DAG whose declaration
		// order is topological.
		deps := make([][]string, n)
		for i := 1; i < n; i++ {
			for j := range i {
				if rapid.Bool().Draw(t, fmt.Sprintf("edge%d-%d", j, i)) {
					deps[i] = append(deps[i], fmt.Sprintf("t%d", j))
				}
			}
		}
		perm := rapid.Permutation(rangeInts(n)).Draw(t, "declaration")
		build := func(order []int) *Workflow {
			b := NewWorkflow("w")
			for _, i := range order {
				b.Task(fmt.Sprintf("t%d", i), wfNop, DependsOn(deps[i]...))
			}
			wf, err := b.Build()
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			return wf
		}

		wf := build(perm)
		got := taskIDs(wf)
		if len(got) != n {
			t.Fatalf("Tasks has %d entries, want %d", len(got), n)
		}
		pos := map[string]int{}
		for i, id := range got {
			if _, dup := pos[id]; dup {
				t.Fatalf("%s listed twice", id)
			}
			pos[id] = i
		}
		for _, ti := range wf.Tasks() {
			for _, d := range ti.Dependencies {
				if pos[d] >= pos[ti.ID] {
					t.Fatalf("%s listed before its dependency %s: %q", ti.ID, d, got)
				}
			}
		}

		// Already topological: the order is the declaration order.
		want := make([]string, n)
		for i := range want {
			want[i] = fmt.Sprintf("t%d", i)
		}
		if got := taskIDs(build(rangeInts(n))); !slices.Equal(got, want) {
			t.Fatalf("topological declaration reordered: %q", got)
		}
		// The same definition always gives the same order and version.
		again := build(perm)
		if !slices.Equal(taskIDs(again), got) || again.Version() != wf.Version() {
			t.Fatal("building the same definition twice differs")
		}
	})
}

func rangeInts(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func TestVersion(t *testing.T) {
	base := func(opts ...TaskOption) *WorkflowBuilder {
		return NewWorkflow("v").
			Task("a", wfNop).
			Task("b", wfNop).
			Task("c", wfNop, append([]TaskOption{DependsOn("a")}, opts...)...)
	}
	ref := base().MustBuild().Version()
	if !regexp.MustCompile(`^[0-9a-f]{12}$`).MatchString(ref) {
		t.Fatalf("Version = %q, want 12 lowercase hex characters", ref)
	}

	same := []struct {
		name string
		b    *WorkflowBuilder
	}{
		{"identical", base()},
		{"different task functions", NewWorkflow("v").
			Task("a", func(context.Context, *Context) error { return errors.New("x") }).
			Task("b", wfNop).Task("c", wfNop, DependsOn("a"))},
		{"descriptions", base(Describe("text")).Description("a workflow")},
		{"zero timeout is the default", base(Timeout(0))},
		{"nil option", base(nil)},
	}
	for _, s := range same {
		if got := s.b.MustBuild().Version(); got != ref {
			t.Errorf("%s: Version = %s, want %s", s.name, got, ref)
		}
	}

	retried := base(Retry(RetryPolicy{})).MustBuild().Version()
	if got := base(Retry(RetryPolicy{MaxAttempts: 3, Backoff: BackoffExponential, InitialDelay: time.Second, MaxDelay: 5 * time.Minute})).MustBuild().Version(); got != retried {
		t.Errorf("explicit default retry policy: Version %s, want %s (same as zero policy)", got, retried)
	}

	differ := []struct {
		name string
		b    *WorkflowBuilder
	}{
		{"workflow name", NewWorkflow("v2").Task("a", wfNop).Task("b", wfNop).Task("c", wfNop, DependsOn("a"))},
		{"task renamed", NewWorkflow("v").Task("a", wfNop).Task("b2", wfNop).Task("c", wfNop, DependsOn("a"))},
		{"extra task", base().Task("d", wfNop)},
		{"dependency changed", NewWorkflow("v").Task("a", wfNop).Task("b", wfNop).Task("c", wfNop, DependsOn("b"))},
		{"dependency added", base(DependsOn("b"))},
		{"dependency order", NewWorkflow("v").Task("a", wfNop).Task("b", wfNop).Task("c", wfNop, DependsOn("b", "a"))},
		{"timeout", base(Timeout(time.Second))},
		{"other timeout", base(Timeout(2 * time.Second))},
		{"retry policy", base(Retry(RetryPolicy{}))},
		{"retry attempts", base(Retry(RetryPolicy{MaxAttempts: 4}))},
		{"retry backoff", base(Retry(RetryPolicy{Backoff: BackoffLinear}))},
		{"retry delay", base(Retry(RetryPolicy{InitialDelay: 2 * time.Second}))},
		{"retry jitter", base(Retry(RetryPolicy{Jitter: 0.1}))},
		{"retry condition", base(Retry(RetryPolicy{RetryOn: RetryTransient()}))},
		{"trigger rule", base(When(Always()))},
		{"trigger condition", base(When(Any(Failed("a"))))},
		{"trigger value", base(When(All(ContextEquals("k", 1))))},
		{"trigger other value", base(When(All(ContextEquals("k", 2))))},
	}
	seen := map[string]string{ref: "base", retried: "retry policy"}
	for _, d := range differ {
		got := d.b.MustBuild().Version()
		if other, dup := seen[got]; dup && other != d.name {
			t.Errorf("%s: Version %s equals that of %s", d.name, got, other)
		}
		seen[got] = d.name
	}
}

func TestMustBuild(t *testing.T) {
	wf := NewWorkflow("ok").Task("a", wfNop).MustBuild()
	if wf == nil || wf.Name() != "ok" {
		t.Fatalf("MustBuild = %v", wf)
	}

	defer func() {
		r := recover()
		err, ok := r.(error)
		if !ok || !errors.Is(err, ErrMissingDependency) {
			t.Fatalf("MustBuild panicked with %v, want an ErrMissingDependency error", r)
		}
	}()
	NewWorkflow("bad").Task("a", wfNop, DependsOn("nope")).MustBuild()
	t.Fatal("MustBuild did not panic")
}

func TestBuilderOptionsDoNotAlias(t *testing.T) {
	ids := []string{"a"}
	b := NewWorkflow("w").Task("a", wfNop).Task("b", wfNop).Task("c", wfNop, DependsOn(ids...))
	conds := []Condition{Failed("a")}
	b.Task("d", wfNop, DependsOn("a"), When(Any(conds...)))
	wf := b.MustBuild()
	v := wf.Version()
	ids[0] = "b"
	conds[0] = Failed("c")
	if c, _ := wf.Task("c"); c.Dependencies[0] != "a" {
		t.Errorf("changing the DependsOn slice changed the workflow: %q", c.Dependencies)
	}
	if d, _ := wf.Task("d"); d.Trigger.String() != "any(failed(a))" {
		t.Errorf("changing the conditions slice changed the workflow: %s", d.Trigger)
	}
	if wf.Version() != v {
		t.Error("version changed")
	}
}

func TestAncestors(t *testing.T) {
	wf := NewWorkflow("w").
		Task("a", wfNop).
		Task("b", wfNop, DependsOn("a")).
		Task("c", wfNop).
		Task("d", wfNop, DependsOn("b", "c")).
		Task("e", wfNop, DependsOn("a")).
		MustBuild()
	tests := map[string][]string{
		"a": nil,
		"b": {"a"},
		"d": {"a", "b", "c"},
		"e": {"a"},
	}
	for id, want := range tests {
		got := slices.Sorted(func(yield func(string) bool) {
			for k, ok := range wf.ancestors(id) {
				if ok && !yield(k) {
					return
				}
			}
		})
		if !slices.Equal(got, want) {
			t.Errorf("ancestors(%s) = %q, want %q", id, got, want)
		}
	}
}
