package cloacina

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// TriggerRule decides whether a task runs once all of its dependencies are
// terminal. Build one with [Always], [All], [Any] or [None]. The zero value
// is the default rule: run only if every dependency completed.
type TriggerRule struct {
	kind  ruleKind
	conds []Condition
}

type ruleKind int

const (
	ruleDefault ruleKind = iota
	ruleAlways
	ruleAll
	ruleAny
	ruleNone
)

// Always runs the task whatever the outcome of its dependencies.
func Always() TriggerRule { return TriggerRule{kind: ruleAlways} }

// All runs the task when every condition holds.
func All(conds ...Condition) TriggerRule {
	return TriggerRule{kind: ruleAll, conds: slices.Clone(conds)}
}

// Any runs the task when at least one condition holds.
func Any(conds ...Condition) TriggerRule {
	return TriggerRule{kind: ruleAny, conds: slices.Clone(conds)}
}

// None runs the task when no condition holds.
func None(conds ...Condition) TriggerRule {
	return TriggerRule{kind: ruleNone, conds: slices.Clone(conds)}
}

// IsDefault reports whether r is the default rule.
func (r TriggerRule) IsDefault() bool { return r.kind == ruleDefault }

// String describes the rule, e.g. all(succeeded(a), context(mode equals "full")).
func (r TriggerRule) String() string {
	var name string
	switch r.kind {
	case ruleDefault:
		return "all_dependencies_completed"
	case ruleAlways:
		return "always"
	case ruleAll:
		name = "all"
	case ruleAny:
		name = "any"
	case ruleNone:
		name = "none"
	default:
		return "invalid"
	}
	parts := make([]string, len(r.conds))
	for i, c := range r.conds {
		parts[i] = c.String()
	}
	return name + "(" + strings.Join(parts, ", ") + ")"
}

func (r TriggerRule) validate(wf *Workflow, taskID string) error {
	switch r.kind {
	case ruleDefault, ruleAlways:
		return nil
	case ruleAll, ruleAny, ruleNone:
	default:
		return fmt.Errorf("%w: unknown rule", ErrInvalidTriggerRule)
	}
	if len(r.conds) == 0 {
		return fmt.Errorf("%w: %s has no conditions", ErrInvalidTriggerRule, r)
	}
	anc := wf.ancestors(taskID)
	var errs []error
	for _, c := range r.conds {
		if err := c.validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if c.kind <= condTaskSkipped && !anc[c.task] {
			errs = append(errs, fmt.Errorf("%w: %s refers to %q, which is not an upstream task of %q", ErrInvalidTriggerRule, c, c.task, taskID))
		}
	}
	return errors.Join(errs...)
}

// evaluate applies the rule given the states of the workflow's tasks and the
// context the task would see. deps are the task's direct dependencies.
func (r TriggerRule) evaluate(deps []string, states map[string]TaskStatus, ctx map[string]any) bool {
	switch r.kind {
	case ruleDefault:
		for _, d := range deps {
			if states[d] != TaskCompleted {
				return false
			}
		}
		return true
	case ruleAlways:
		return true
	case ruleAll:
		for _, c := range r.conds {
			if !c.holds(states, ctx) {
				return false
			}
		}
		return true
	case ruleAny:
		for _, c := range r.conds {
			if c.holds(states, ctx) {
				return true
			}
		}
		return false
	case ruleNone:
		for _, c := range r.conds {
			if c.holds(states, ctx) {
				return false
			}
		}
		return true
	}
	return false
}

// needsContext reports whether evaluating r reads the context.
func (r TriggerRule) needsContext() bool {
	for _, c := range r.conds {
		if c.kind >= condContext {
			return true
		}
	}
	return false
}

// Condition is one test inside a [TriggerRule]: the outcome of an upstream
// task, or a comparison on a value of the task's input context.
type Condition struct {
	kind  condKind
	task  string
	key   string
	op    CompareOp
	value any
}

type condKind int

const (
	condInvalid condKind = iota
	condTaskSucceeded
	condTaskFailed
	condTaskSkipped
	condContext
)

// CompareOp is a comparison applied to a context value.
type CompareOp string

// Comparison operators for [ContextValue].
const (
	OpEquals      CompareOp = "equals"
	OpNotEquals   CompareOp = "not_equals"
	OpGreaterThan CompareOp = "greater_than"
	OpLessThan    CompareOp = "less_than"
	OpContains    CompareOp = "contains"
	OpNotContains CompareOp = "not_contains"
	OpExists      CompareOp = "exists"
	OpNotExists   CompareOp = "not_exists"
)

// Succeeded holds when the upstream task id completed.
func Succeeded(id string) Condition { return Condition{kind: condTaskSucceeded, task: id} }

// Failed holds when the upstream task id failed.
func Failed(id string) Condition { return Condition{kind: condTaskFailed, task: id} }

// Skipped holds when the upstream task id was skipped.
func Skipped(id string) Condition { return Condition{kind: condTaskSkipped, task: id} }

// ContextValue compares the value under key in the task's input context
// with value. Equality compares JSON forms (so 3 equals 3.0). Greater and
// less compare numbers, or strings lexically. Contains holds when a string
// contains value as a substring, an array has an element equal to value, or
// an object has value as a key. Exists and NotExists ignore value.
func ContextValue(key string, op CompareOp, value any) Condition {
	return Condition{kind: condContext, key: key, op: op, value: value}
}

// ContextEquals is ContextValue(key, OpEquals, value).
func ContextEquals(key string, value any) Condition { return ContextValue(key, OpEquals, value) }

// ContextNotEquals is ContextValue(key, OpNotEquals, value).
func ContextNotEquals(key string, value any) Condition {
	return ContextValue(key, OpNotEquals, value)
}

// ContextGreaterThan is ContextValue(key, OpGreaterThan, value).
func ContextGreaterThan(key string, value any) Condition {
	return ContextValue(key, OpGreaterThan, value)
}

// ContextLessThan is ContextValue(key, OpLessThan, value).
func ContextLessThan(key string, value any) Condition {
	return ContextValue(key, OpLessThan, value)
}

// ContextContains is ContextValue(key, OpContains, value).
func ContextContains(key string, value any) Condition {
	return ContextValue(key, OpContains, value)
}

// ContextNotContains is ContextValue(key, OpNotContains, value).
func ContextNotContains(key string, value any) Condition {
	return ContextValue(key, OpNotContains, value)
}

// ContextExists holds when key is present.
func ContextExists(key string) Condition { return ContextValue(key, OpExists, nil) }

// ContextNotExists holds when key is absent.
func ContextNotExists(key string) Condition { return ContextValue(key, OpNotExists, nil) }

// String describes the condition.
func (c Condition) String() string {
	switch c.kind {
	case condTaskSucceeded:
		return fmt.Sprintf("succeeded(%s)", c.task)
	case condTaskFailed:
		return fmt.Sprintf("failed(%s)", c.task)
	case condTaskSkipped:
		return fmt.Sprintf("skipped(%s)", c.task)
	case condContext:
		if c.op == OpExists || c.op == OpNotExists {
			return fmt.Sprintf("context(%s %s)", c.key, c.op)
		}
		v, _ := json.Marshal(c.value)
		return fmt.Sprintf("context(%s %s %s)", c.key, c.op, v)
	}
	return "invalid"
}

func (c Condition) validate() error {
	switch c.kind {
	case condTaskSucceeded, condTaskFailed, condTaskSkipped:
		if c.task == "" {
			return fmt.Errorf("%w: %s names no task", ErrInvalidTriggerRule, c)
		}
		return nil
	case condContext:
	default:
		return fmt.Errorf("%w: zero Condition", ErrInvalidTriggerRule)
	}
	if c.key == "" {
		return fmt.Errorf("%w: context condition with an empty key", ErrInvalidTriggerRule)
	}
	switch c.op {
	case OpEquals, OpNotEquals, OpContains, OpNotContains, OpExists, OpNotExists:
	case OpGreaterThan, OpLessThan:
		nv, _ := normalize(c.value)
		switch nv.(type) {
		case float64, string:
		default:
			return fmt.Errorf("%w: %s compares with a value that is neither a number nor a string", ErrInvalidTriggerRule, c)
		}
	default:
		return fmt.Errorf("%w: unknown comparison %q", ErrInvalidTriggerRule, c.op)
	}
	if _, err := normalize(c.value); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrInvalidTriggerRule, c.key, err)
	}
	return nil
}

func (c Condition) holds(states map[string]TaskStatus, ctx map[string]any) bool {
	switch c.kind {
	case condTaskSucceeded:
		return states[c.task] == TaskCompleted
	case condTaskFailed:
		return states[c.task] == TaskFailed
	case condTaskSkipped:
		return states[c.task] == TaskSkipped
	case condContext:
		return compare(ctx, c.key, c.op, c.value)
	}
	return false
}

func compare(ctx map[string]any, key string, op CompareOp, want any) bool {
	got, ok := ctx[key]
	switch op {
	case OpExists:
		return ok
	case OpNotExists:
		return !ok
	}
	w, err := normalize(want)
	if err != nil {
		return false
	}
	switch op {
	case OpEquals:
		return ok && reflect.DeepEqual(got, w)
	case OpNotEquals:
		return !ok || !reflect.DeepEqual(got, w)
	case OpGreaterThan, OpLessThan:
		if !ok {
			return false
		}
		c, comparable := order(got, w)
		if !comparable {
			return false
		}
		if op == OpGreaterThan {
			return c > 0
		}
		return c < 0
	case OpContains:
		return ok && contains(got, w)
	case OpNotContains:
		return !ok || !contains(got, w)
	}
	return false
}

func order(a, b any) (int, bool) {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		if !ok {
			return 0, false
		}
		switch {
		case x < y:
			return -1, true
		case x > y:
			return 1, true
		}
		return 0, true
	case string:
		y, ok := b.(string)
		if !ok {
			return 0, false
		}
		return strings.Compare(x, y), true
	}
	return 0, false
}

func contains(haystack, needle any) bool {
	switch h := haystack.(type) {
	case string:
		n, ok := needle.(string)
		return ok && strings.Contains(h, n)
	case []any:
		for _, e := range h {
			if reflect.DeepEqual(e, needle) {
				return true
			}
		}
	case map[string]any:
		n, ok := needle.(string)
		if ok {
			_, found := h[n]
			return found
		}
	}
	return false
}
