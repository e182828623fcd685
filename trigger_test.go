package cloacina

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestTriggerDefaultRule(t *testing.T) {
	deps := []string{"a", "b"}
	tests := []struct {
		name   string
		states map[string]TaskStatus
		want   bool
	}{
		{"all completed", map[string]TaskStatus{"a": TaskCompleted, "b": TaskCompleted}, true},
		{"one failed", map[string]TaskStatus{"a": TaskCompleted, "b": TaskFailed}, false},
		{"one skipped", map[string]TaskStatus{"a": TaskSkipped, "b": TaskCompleted}, false},
		{"one running", map[string]TaskStatus{"a": TaskCompleted, "b": TaskRunning}, false},
		{"one unknown", map[string]TaskStatus{"a": TaskCompleted}, false},
		{"unrelated failure", map[string]TaskStatus{"a": TaskCompleted, "b": TaskCompleted, "x": TaskFailed}, true},
	}
	var rule TriggerRule
	if !rule.IsDefault() {
		t.Fatal("zero TriggerRule is not the default")
	}
	for _, tt := range tests {
		if got := rule.evaluate(deps, tt.states, nil); got != tt.want {
			t.Errorf("%s: default rule = %v, want %v", tt.name, got, tt.want)
		}
	}
	if !rule.evaluate(nil, nil, nil) {
		t.Error("default rule with no dependencies is false")
	}
	if rule.needsContext() {
		t.Error("default rule needs the context")
	}
}

func TestTriggerAlways(t *testing.T) {
	r := Always()
	if r.IsDefault() {
		t.Fatal("Always is the default rule")
	}
	for _, s := range []TaskStatus{TaskCompleted, TaskFailed, TaskSkipped} {
		if !r.evaluate([]string{"a"}, map[string]TaskStatus{"a": s}, nil) {
			t.Errorf("Always is false with the dependency %s", s)
		}
	}
	if r.needsContext() {
		t.Error("Always needs the context")
	}
}

func TestTriggerAllAnyNone(t *testing.T) {
	states := map[string]TaskStatus{"ok": TaskCompleted, "bad": TaskFailed, "skip": TaskSkipped}
	ctx := map[string]any{"mode": "full"}
	tests := []struct {
		name string
		rule TriggerRule
		want bool
	}{
		{"succeeded holds", All(Succeeded("ok")), true},
		{"succeeded on failed", All(Succeeded("bad")), false},
		{"succeeded on skipped", All(Succeeded("skip")), false},
		{"succeeded on unknown", All(Succeeded("ghost")), false},
		{"failed holds", All(Failed("bad")), true},
		{"failed on completed", All(Failed("ok")), false},
		{"failed on skipped", All(Failed("skip")), false},
		{"skipped holds", All(Skipped("skip")), true},
		{"skipped on failed", All(Skipped("bad")), false},
		{"skipped on completed", All(Skipped("ok")), false},

		{"all: every holds", All(Succeeded("ok"), Failed("bad"), Skipped("skip"), ContextEquals("mode", "full")), true},
		{"all: one false", All(Succeeded("ok"), Failed("ok")), false},
		{"all: context false", All(Succeeded("ok"), ContextEquals("mode", "partial")), false},
		{"any: one holds", Any(Failed("ok"), Succeeded("bad"), Skipped("skip")), true},
		{"any: context holds", Any(Failed("ok"), ContextEquals("mode", "full")), true},
		{"any: none holds", Any(Failed("ok"), Succeeded("bad"), Skipped("ok")), false},
		{"none: none holds", None(Failed("ok"), Succeeded("bad")), true},
		{"none: one holds", None(Failed("ok"), Failed("bad")), false},
		{"none: context holds", None(ContextExists("mode")), false},
		{"none: context does not hold", None(ContextExists("other")), true},
	}
	for _, tt := range tests {
		if got := tt.rule.evaluate([]string{"ok", "bad", "skip"}, states, ctx); got != tt.want {
			t.Errorf("%s: %s = %v, want %v", tt.name, tt.rule, got, tt.want)
		}
	}
	// The zero Condition never holds.
	if (Condition{}).holds(states, ctx) {
		t.Error("zero Condition holds")
	}
	// An unknown rule kind is false.
	if (TriggerRule{kind: ruleKind(99)}).evaluate(nil, nil, nil) {
		t.Error("invalid rule evaluates to true")
	}
}

func TestTriggerNeedsContext(t *testing.T) {
	tests := []struct {
		rule TriggerRule
		want bool
	}{
		{TriggerRule{}, false},
		{Always(), false},
		{All(Succeeded("a"), Failed("b")), false},
		{Any(Skipped("a")), false},
		{Any(Skipped("a"), ContextExists("k")), true},
		{None(ContextEquals("k", 1)), true},
	}
	for _, tt := range tests {
		if got := tt.rule.needsContext(); got != tt.want {
			t.Errorf("%s.needsContext() = %v, want %v", tt.rule, got, tt.want)
		}
	}
}

func TestContextComparisons(t *testing.T) {
	ctx := map[string]any{}
	for k, v := range map[string]any{
		"n":     3,
		"neg":   -2.5,
		"s":     "banana",
		"empty": "",
		"arr":   []any{1, "x", map[string]any{"k": 1}, []any{true}},
		"obj":   map[string]any{"k": 1, "inner": map[string]any{"z": nil}},
		"b":     true,
		"null":  nil,
	} {
		nv, err := normalize(v)
		if err != nil {
			t.Fatal(err)
		}
		ctx[k] = nv
	}
	type point struct {
		K int `json:"k"`
	}
	tests := []struct {
		name string
		c    Condition
		want bool
	}{
		// Equals compares JSON forms.
		{"3 == 3", ContextEquals("n", 3), true},
		{"3 == 3.0", ContextEquals("n", 3.0), true},
		{"3 == int64(3)", ContextEquals("n", int64(3)), true},
		{"3 == float32(3)", ContextEquals("n", float32(3)), true},
		{"3 != 4", ContextEquals("n", 4), false},
		{"3 != \"3\"", ContextEquals("n", "3"), false},
		{"string equal", ContextEquals("s", "banana"), true},
		{"string case differs", ContextEquals("s", "Banana"), false},
		{"bool", ContextEquals("b", true), true},
		{"bool false", ContextEquals("b", false), false},
		{"null equals nil", ContextEquals("null", nil), true},
		{"missing equals nil", ContextEquals("missing", nil), false},
		{"missing", ContextEquals("missing", 1), false},
		{"array", ContextEquals("arr", []any{1, "x", map[string]int{"k": 1}, []bool{true}}), true},
		{"array order matters", ContextEquals("arr", []any{"x", 1, map[string]int{"k": 1}, []bool{true}}), false},
		{"object from struct", ContextEquals("obj", map[string]any{"k": 1, "inner": map[string]any{"z": nil}}), true},
		{"object subset", ContextEquals("obj", point{K: 1}), false},
		{"unencodable value", ContextEquals("n", make(chan int)), false},

		{"not equals differs", ContextNotEquals("n", 4), true},
		{"not equals same", ContextNotEquals("n", 3.0), false},
		{"not equals type differs", ContextNotEquals("n", "3"), true},
		{"not equals on missing key", ContextNotEquals("missing", 1), true},
		{"not equals nil on missing key", ContextNotEquals("missing", nil), true},
		{"not equals null with nil", ContextNotEquals("null", nil), false},

		{"3 > 2", ContextGreaterThan("n", 2), true},
		{"3 > 2.99", ContextGreaterThan("n", 2.99), true},
		{"3 > 3", ContextGreaterThan("n", 3), false},
		{"3 > 4", ContextGreaterThan("n", 4), false},
		{"-2.5 > -3", ContextGreaterThan("neg", -3), true},
		{"banana > apple", ContextGreaterThan("s", "apple"), true},
		{"banana > cherry", ContextGreaterThan("s", "cherry"), false},
		{"banana > banana", ContextGreaterThan("s", "banana"), false},
		{"banana > Banana (bytewise)", ContextGreaterThan("s", "Banana"), true},
		{"\"\" > \"\"", ContextGreaterThan("empty", ""), false},
		{"number > string", ContextGreaterThan("n", "2"), false},
		{"string > number", ContextGreaterThan("s", 1), false},
		{"bool > number", ContextGreaterThan("b", 0), false},
		{"null > number", ContextGreaterThan("null", 0), false},
		{"array > number", ContextGreaterThan("arr", 0), false},
		{"missing >", ContextGreaterThan("missing", 0), false},

		{"3 < 4", ContextLessThan("n", 4), true},
		{"3 < 3", ContextLessThan("n", 3), false},
		{"3 < 2", ContextLessThan("n", 2), false},
		{"-2.5 < 0", ContextLessThan("neg", 0), true},
		{"banana < cherry", ContextLessThan("s", "cherry"), true},
		{"banana < apple", ContextLessThan("s", "apple"), false},
		{"\"\" < a", ContextLessThan("empty", "a"), true},
		{"number < string", ContextLessThan("n", "9"), false},
		{"string < number", ContextLessThan("s", 9), false},
		{"missing <", ContextLessThan("missing", 9), false},

		{"string contains substring", ContextContains("s", "nan"), true},
		{"string contains itself", ContextContains("s", "banana"), true},
		{"string contains empty", ContextContains("s", ""), true},
		{"string lacks substring", ContextContains("s", "x"), false},
		{"string vs number needle", ContextContains("s", 1), false},
		{"array has string", ContextContains("arr", "x"), true},
		{"array has number (3 == 3.0 form)", ContextContains("arr", 1), true},
		{"array has object", ContextContains("arr", map[string]any{"k": 1.0}), true},
		{"array has nested array", ContextContains("arr", []any{true}), true},
		{"array lacks", ContextContains("arr", "y"), false},
		{"array lacks substring element", ContextContains("arr", "X"), false},
		{"object has key", ContextContains("obj", "k"), true},
		{"object has other key", ContextContains("obj", "inner"), true},
		{"object lacks key", ContextContains("obj", "z"), false},
		{"object vs number needle", ContextContains("obj", 1), false},
		{"number contains", ContextContains("n", 3), false},
		{"bool contains", ContextContains("b", true), false},
		{"null contains", ContextContains("null", nil), false},
		{"missing contains", ContextContains("missing", "a"), false},

		{"not contains absent substring", ContextNotContains("s", "x"), true},
		{"not contains present substring", ContextNotContains("s", "nan"), false},
		{"not contains array element", ContextNotContains("arr", "x"), false},
		{"not contains array non-element", ContextNotContains("arr", "q"), true},
		{"not contains object key", ContextNotContains("obj", "k"), false},
		{"not contains number", ContextNotContains("n", 3), true},
		{"not contains on missing key", ContextNotContains("missing", "a"), true},

		{"exists", ContextExists("n"), true},
		{"exists null", ContextExists("null"), true},
		{"exists empty string", ContextExists("empty"), true},
		{"exists missing", ContextExists("missing"), false},
		{"not exists missing", ContextNotExists("missing"), true},
		{"not exists present", ContextNotExists("n"), false},
		{"not exists null", ContextNotExists("null"), false},
		{"exists ignores the value", ContextValue("n", OpExists, "whatever"), true},

		{"unknown op", ContextValue("n", CompareOp("matches"), 3), false},
	}
	for _, tt := range tests {
		if got := tt.c.holds(nil, ctx); got != tt.want {
			t.Errorf("%s: %s = %v, want %v", tt.name, tt.c, got, tt.want)
		}
	}
	// With no context at all, only the negative and absence tests hold.
	for _, tt := range []struct {
		c    Condition
		want bool
	}{
		{ContextEquals("k", 1), false},
		{ContextNotEquals("k", 1), true},
		{ContextNotContains("k", 1), true},
		{ContextNotExists("k"), true},
		{ContextExists("k"), false},
	} {
		if got := tt.c.holds(nil, nil); got != tt.want {
			t.Errorf("%s on a nil context = %v, want %v", tt.c, got, tt.want)
		}
	}
}

func TestTriggerString(t *testing.T) {
	tests := []struct {
		rule TriggerRule
		want string
	}{
		{TriggerRule{}, "all_dependencies_completed"},
		{Always(), "always"},
		{All(Succeeded("a"), ContextEquals("mode", "full")), `all(succeeded(a), context(mode equals "full"))`},
		{Any(Failed("x.y"), Skipped("z-1")), "any(failed(x.y), skipped(z-1))"},
		{None(ContextGreaterThan("n", 3)), "none(context(n greater_than 3))"},
		{All(ContextLessThan("n", 2.5), ContextNotEquals("o", map[string]any{"b": 1, "a": []int{1}})),
			`all(context(n less_than 2.5), context(o not_equals {"a":[1],"b":1}))`},
		{Any(ContextContains("tags", "x"), ContextNotContains("tags", nil)),
			`any(context(tags contains "x"), context(tags not_contains null))`},
		{All(ContextExists("k"), ContextNotExists("j")), "all(context(k exists), context(j not_exists))"},
		{All(ContextValue("k", OpExists, 123)), "all(context(k exists))"},
		{All(ContextEquals("q", `say "hi"`)), `all(context(q equals "say \"hi\""))`},
		{All(Condition{}), "all(invalid)"},
		{Any(), "any()"},
		{TriggerRule{kind: ruleKind(42)}, "invalid"},
	}
	for _, tt := range tests {
		if got := tt.rule.String(); got != tt.want {
			t.Errorf("String = %s, want %s", got, tt.want)
		}
		// Stable: the same rule always prints the same.
		if again := tt.rule.String(); again != tt.rule.String() {
			t.Errorf("String is not stable: %s vs %s", again, tt.rule.String())
		}
	}
}

func TestTriggerValidate(t *testing.T) {
	wf := NewWorkflow("w").
		Task("a", wfNop).
		Task("b", wfNop, DependsOn("a")).
		Task("c", wfNop, DependsOn("b")).
		Task("x", wfNop).
		MustBuild()
	valid := []TriggerRule{
		{},
		Always(),
		All(Succeeded("b")),
		Any(Failed("a"), Skipped("b")), // a is a transitive ancestor
		None(ContextEquals("k", map[string]any{"n": 1})),
		All(ContextGreaterThan("n", 1), ContextLessThan("s", "m"), ContextGreaterThan("f", 2.5)),
		All(ContextContains("k", 1), ContextNotContains("k", "x"), ContextNotEquals("k", nil)),
		All(ContextExists("k"), ContextNotExists("j")),
	}
	for _, r := range valid {
		if err := r.validate(wf, "c"); err != nil {
			t.Errorf("%s: validate = %v, want nil", r, err)
		}
	}
	invalid := []struct {
		name    string
		rule    TriggerRule
		mention string
	}{
		{"empty all", All(), "all()"},
		{"empty any", Any(), "any()"},
		{"empty none", None(), "none()"},
		{"unknown rule kind", TriggerRule{kind: ruleKind(9)}, "unknown rule"},
		{"zero condition", All(Condition{}), "zero Condition"},
		{"zero condition among valid ones", Any(Succeeded("b"), Condition{}), "zero Condition"},
		{"unknown op", All(ContextValue("k", "approx", 1)), `"approx"`},
		{"empty op", All(ContextValue("k", "", 1)), "unknown comparison"},
		{"greater than bool", All(ContextGreaterThan("k", true)), "neither a number nor a string"},
		{"less than nil", All(ContextLessThan("k", nil)), "neither a number nor a string"},
		{"less than array", All(ContextLessThan("k", []int{1})), "neither a number nor a string"},
		{"greater than object", All(ContextGreaterThan("k", map[string]any{})), "neither a number nor a string"},
		{"greater than NaN", All(ContextGreaterThan("k", math.NaN())), "neither a number nor a string"},
		{"equals channel", All(ContextEquals("k", make(chan int))), "k"},
		{"equals Inf", All(ContextEquals("k", math.Inf(1))), "k"},
		{"empty key", All(ContextEquals("", 1)), "empty key"},
		{"empty task", All(Succeeded("")), "names no task"},
		{"sibling task", All(Succeeded("x")), `"x"`},
		{"unknown task", Any(Failed("ghost")), `"ghost"`},
		{"itself", None(Skipped("c")), `"c"`},
		{"downstream task", All(Succeeded("c")), `"c"`},
	}
	for _, tt := range invalid {
		taskID := "c"
		if tt.name == "downstream task" {
			taskID = "b"
		}
		err := tt.rule.validate(wf, taskID)
		if !errors.Is(err, ErrInvalidTriggerRule) {
			t.Errorf("%s: validate = %v, want ErrInvalidTriggerRule", tt.name, err)
			continue
		}
		if !strings.Contains(err.Error(), tt.mention) {
			t.Errorf("%s: error %q does not mention %s", tt.name, err, tt.mention)
		}
	}
	// Every bad condition is reported.
	err := All(Succeeded("x"), Condition{}, ContextGreaterThan("k", false)).validate(wf, "c")
	for _, m := range []string{`"x"`, "zero Condition", "neither"} {
		if err == nil || !strings.Contains(err.Error(), m) {
			t.Errorf("combined error %v does not mention %s", err, m)
		}
	}
}
