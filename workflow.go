package cloacina

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// TaskFunc is the body of a task. It reads and writes c; returning an error
// fails the attempt (and may schedule a retry, see [RetryPolicy]). ctx is
// cancelled when the task's timeout passes, when its execution is cancelled,
// or when the runner shuts down.
type TaskFunc func(ctx context.Context, c *Context) error

// TaskOption configures one task of a workflow.
type TaskOption func(*taskDef)

// DependsOn declares that the task runs after the named tasks. The order of
// ids is the order in which their contexts are merged into the task's input.
func DependsOn(ids ...string) TaskOption {
	return func(t *taskDef) { t.deps = append(t.deps, ids...) }
}

// Timeout bounds one attempt of the task. Zero means the runner's default
// (see [WithTaskTimeout]); a negative value is invalid.
func Timeout(d time.Duration) TaskOption {
	return func(t *taskDef) { t.timeout = d }
}

// Retry sets the task's retry policy. Without it a task is attempted once.
func Retry(p RetryPolicy) TaskOption {
	return func(t *taskDef) { pp := p; t.retry = &pp }
}

// When sets the rule that decides, once all dependencies are terminal,
// whether the task runs or is skipped. See the package documentation for the
// default.
func When(rule TriggerRule) TaskOption {
	return func(t *taskDef) { t.trigger = &rule }
}

// Describe sets a human-readable description of the task.
func Describe(text string) TaskOption {
	return func(t *taskDef) { t.description = text }
}

type taskDef struct {
	id          string
	fn          TaskFunc
	deps        []string
	timeout     time.Duration
	retry       *RetryPolicy
	trigger     *TriggerRule
	description string
}

// TaskInfo describes one task of a built workflow.
type TaskInfo struct {
	ID           string
	Description  string
	Dependencies []string
	Timeout      time.Duration // zero: the runner's default
	Retry        RetryPolicy   // the effective policy, defaults filled in
	Trigger      TriggerRule
}

// Workflow is a validated, immutable DAG of tasks. Build one with
// [NewWorkflow].
type Workflow struct {
	name        string
	description string
	version     string
	tasks       []*taskDef // topological order (stable: declaration order where free)
	byID        map[string]*taskDef
}

// Name returns the workflow's name.
func (w *Workflow) Name() string { return w.name }

// Description returns the workflow's description.
func (w *Workflow) Description() string { return w.description }

// Version returns a short hash of the workflow's structure (tasks,
// dependencies, timeouts, retry policies and trigger rules). It changes when
// the structure changes and is recorded with every execution.
func (w *Workflow) Version() string { return w.version }

// Tasks describes the workflow's tasks in topological order.
func (w *Workflow) Tasks() []TaskInfo {
	out := make([]TaskInfo, len(w.tasks))
	for i, t := range w.tasks {
		out[i] = t.info()
	}
	return out
}

// Task describes the task with the given id.
func (w *Workflow) Task(id string) (TaskInfo, bool) {
	t, ok := w.byID[id]
	if !ok {
		return TaskInfo{}, false
	}
	return t.info(), true
}

func (t *taskDef) info() TaskInfo {
	ti := TaskInfo{
		ID:           t.id,
		Description:  t.description,
		Dependencies: slices.Clone(t.deps),
		Timeout:      t.timeout,
	}
	if t.retry != nil {
		ti.Retry = t.retry.withDefaults()
	} else {
		ti.Retry = NoRetry()
	}
	if t.trigger != nil {
		ti.Trigger = *t.trigger
	}
	return ti
}

// WorkflowBuilder assembles a [Workflow]. Its methods record problems and
// Build reports them, so calls can be chained.
type WorkflowBuilder struct {
	name        string
	description string
	tasks       []*taskDef
}

// NewWorkflow starts a workflow definition. Names are 1-128 characters of
// letters, digits, '_', '-' and '.'.
func NewWorkflow(name string) *WorkflowBuilder {
	return &WorkflowBuilder{name: name}
}

// Description sets the workflow's description.
func (b *WorkflowBuilder) Description(text string) *WorkflowBuilder {
	b.description = text
	return b
}

// Task adds a task with the given id and body.
func (b *WorkflowBuilder) Task(id string, fn TaskFunc, opts ...TaskOption) *WorkflowBuilder {
	t := &taskDef{id: id, fn: fn}
	for _, o := range opts {
		if o != nil {
			o(t)
		}
	}
	b.tasks = append(b.tasks, t)
	return b
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_.\-]{1,128}$`)

// validName reports whether s may be used as a workflow or task name.
func validName(s string) bool { return nameRE.MatchString(s) }

// Build validates the definition and returns the workflow. Errors wrap
// [ErrEmptyWorkflow], [ErrDuplicateTask], [ErrMissingDependency], [ErrCycle]
// (naming the tasks on the cycle), [ErrNilTask], [ErrInvalidName],
// [ErrInvalidRetryPolicy] or [ErrInvalidTriggerRule]; several problems are
// joined with errors.Join.
func (b *WorkflowBuilder) Build() (*Workflow, error) {
	var errs []error
	if !validName(b.name) {
		errs = append(errs, fmt.Errorf("%w: workflow name %q (1-128 letters, digits, '_', '-', '.')", ErrInvalidName, b.name))
	}
	if len(b.tasks) == 0 {
		errs = append(errs, fmt.Errorf("%w: %q", ErrEmptyWorkflow, b.name))
		return nil, errors.Join(errs...)
	}
	byID := make(map[string]*taskDef, len(b.tasks))
	for _, t := range b.tasks {
		if !validName(t.id) {
			errs = append(errs, fmt.Errorf("%w: task id %q (1-128 letters, digits, '_', '-', '.')", ErrInvalidName, t.id))
		}
		if _, dup := byID[t.id]; dup {
			errs = append(errs, fmt.Errorf("%w: %q", ErrDuplicateTask, t.id))
			continue
		}
		byID[t.id] = t
		if t.fn == nil {
			errs = append(errs, fmt.Errorf("%w: task %q", ErrNilTask, t.id))
		}
		if t.timeout < 0 {
			errs = append(errs, fmt.Errorf("%w: task %q has a negative timeout", ErrInvalidOption, t.id))
		}
		if t.retry != nil {
			if err := t.retry.validate(); err != nil {
				errs = append(errs, fmt.Errorf("task %q: %w", t.id, err))
			}
		}
	}
	for _, t := range b.tasks {
		seen := map[string]bool{}
		for _, d := range t.deps {
			if _, ok := byID[d]; !ok {
				errs = append(errs, fmt.Errorf("%w: task %q depends on %q", ErrMissingDependency, t.id, d))
			}
			if seen[d] {
				errs = append(errs, fmt.Errorf("%w: task %q lists dependency %q twice", ErrDuplicateTask, t.id, d))
			}
			seen[d] = true
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	order, err := topoSort(b.tasks, byID)
	if err != nil {
		return nil, err
	}
	wf := &Workflow{name: b.name, description: b.description, tasks: order, byID: byID}
	for _, t := range order {
		if t.trigger != nil {
			if err := t.trigger.validate(wf, t.id); err != nil {
				errs = append(errs, fmt.Errorf("task %q: %w", t.id, err))
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	wf.version = wf.computeVersion()
	return wf, nil
}

// MustBuild is like Build but panics on error. It is meant for workflows
// defined in package-level code and tests.
func (b *WorkflowBuilder) MustBuild() *Workflow {
	wf, err := b.Build()
	if err != nil {
		panic(err)
	}
	return wf
}

// topoSort orders tasks so that every task follows its dependencies, keeping
// declaration order among tasks that are free to move (Kahn's algorithm with
// a stable queue). A cycle is reported with the ids on it.
func topoSort(tasks []*taskDef, byID map[string]*taskDef) ([]*taskDef, error) {
	indeg := make(map[string]int, len(tasks))
	dependents := make(map[string][]string, len(tasks))
	for _, t := range tasks {
		indeg[t.id] = len(t.deps)
		for _, d := range t.deps {
			dependents[d] = append(dependents[d], t.id)
		}
	}
	pos := make(map[string]int, len(tasks))
	for i, t := range tasks {
		pos[t.id] = i
	}
	var ready []string
	for _, t := range tasks {
		if indeg[t.id] == 0 {
			ready = append(ready, t.id)
		}
	}
	order := make([]*taskDef, 0, len(tasks))
	for len(ready) > 0 {
		// take the earliest-declared ready task
		best := 0
		for i := range ready {
			if pos[ready[i]] < pos[ready[best]] {
				best = i
			}
		}
		id := ready[best]
		ready = slices.Delete(ready, best, best+1)
		order = append(order, byID[id])
		for _, dep := range dependents[id] {
			indeg[dep]--
			if indeg[dep] == 0 {
				ready = append(ready, dep)
			}
		}
	}
	if len(order) == len(tasks) {
		return order, nil
	}
	cycle := findCycle(tasks, byID, indeg)
	return nil, fmt.Errorf("%w: %s", ErrCycle, strings.Join(cycle, " -> "))
}

// findCycle returns one cycle among the tasks left with a positive in-degree,
// as a path that starts and ends with the same id.
func findCycle(tasks []*taskDef, byID map[string]*taskDef, indeg map[string]int) []string {
	const (
		unvisited = iota
		onStack
		done
	)
	state := map[string]int{}
	var stack []string
	var found []string
	var visit func(id string) bool
	visit = func(id string) bool {
		state[id] = onStack
		stack = append(stack, id)
		for _, d := range byID[id].deps {
			switch state[d] {
			case onStack:
				i := slices.Index(stack, d)
				found = append(slices.Clone(stack[i:]), d)
				return true
			case unvisited:
				if visit(d) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[id] = done
		return false
	}
	for _, t := range tasks {
		if indeg[t.id] > 0 && state[t.id] == unvisited {
			if visit(t.id) {
				// report the cycle in dependency-flow order (a -> b means b depends on a)
				slices.Reverse(found)
				return found
			}
		}
	}
	return nil
}

func (w *Workflow) computeVersion() string {
	h := sha256.New()
	fmt.Fprintf(h, "workflow %q\n", w.name)
	for _, t := range w.tasks {
		fmt.Fprintf(h, "task %q deps %q timeout %d\n", t.id, t.deps, t.timeout)
		if t.retry != nil {
			fmt.Fprintf(h, " retry %s\n", t.retry.fingerprint())
		}
		if t.trigger != nil {
			fmt.Fprintf(h, " when %s\n", t.trigger.String())
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// ancestors returns the ids of all tasks that id depends on, directly or
// transitively.
func (w *Workflow) ancestors(id string) map[string]bool {
	out := map[string]bool{}
	var walk func(string)
	walk = func(x string) {
		for _, d := range w.byID[x].deps {
			if !out[d] {
				out[d] = true
				walk(d)
			}
		}
	}
	walk(id)
	return out
}
