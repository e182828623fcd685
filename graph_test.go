package cloacina

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func diamondWorkflow(t *testing.T) *Workflow {
	t.Helper()
	wf, err := NewWorkflow("diamond").
		Task("start", wfNop).
		Task("left", wfNop, DependsOn("start")).
		Task("right", wfNop, DependsOn("start")).
		Task("join", wfNop, DependsOn("left", "right"), When(Any(Succeeded("left"), ContextEquals("mode", "full")))).
		Build()
	if err != nil {
		t.Fatal(err)
	}
	return wf
}

func TestMermaidDiamond(t *testing.T) {
	want := `flowchart TD
    %% workflow: diamond
    t0["start"]
    t1["left"]
    t2["right"]
    t3["join<br/>when: any(succeeded(left), context(mode equals #quot;full#quot;))"]
    t0 --> t1
    t0 --> t2
    t1 --> t3
    t2 --> t3
`
	if got := diamondWorkflow(t).Mermaid(); got != want {
		t.Fatalf("Mermaid() =\n%s\nwant\n%s", got, want)
	}
}

func TestDOTDiamond(t *testing.T) {
	want := `digraph "diamond" {
    rankdir=TB;
    node [shape=box];
    "start";
    "left";
    "right";
    "join" [label="join\nwhen: any(succeeded(left), context(mode equals \"full\"))"];
    "start" -> "left";
    "start" -> "right";
    "left" -> "join";
    "right" -> "join";
}
`
	if got := diamondWorkflow(t).DOT(); got != want {
		t.Fatalf("DOT() =\n%s\nwant\n%s", got, want)
	}
}

func TestGraphSingleTask(t *testing.T) {
	wf := NewWorkflow("one").Task("only", wfNop).MustBuild()
	if got, want := wf.Mermaid(), "flowchart TD\n    %% workflow: one\n    t0[\"only\"]\n"; got != want {
		t.Errorf("Mermaid() = %q, want %q", got, want)
	}
	if got, want := wf.DOT(), "digraph \"one\" {\n    rankdir=TB;\n    node [shape=box];\n    \"only\";\n}\n"; got != want {
		t.Errorf("DOT() = %q, want %q", got, want)
	}
}

// awkwardWorkflow has names with '-', '.', '_' and leading digits, and a
// trigger rule whose value holds quotes, a backslash and a '#'.
func awkwardWorkflow(t *testing.T) *Workflow {
	t.Helper()
	wf, err := NewWorkflow("etl-v1.2_x").
		Task("fetch-data.v1", wfNop).
		Task("2nd_step", wfNop, DependsOn("fetch-data.v1")).
		Task("a.b-c", wfNop, DependsOn("2nd_step", "fetch-data.v1"),
			When(None(Failed("fetch-data.v1"), ContextEquals("note", `say "hi" \ #1;`)))).
		Task("-", wfNop, DependsOn("a.b-c")).
		Build()
	if err != nil {
		t.Fatal(err)
	}
	return wf
}

func TestMermaidQuoting(t *testing.T) {
	wf := awkwardWorkflow(t)
	want := `flowchart TD
    %% workflow: etl-v1.2_x
    t0["fetch-data.v1"]
    t1["2nd_step"]
    t2["a.b-c<br/>when: none(failed(fetch-data.v1), context(note equals #quot;say \#quot;hi\#quot; \\ #35;1;#quot;))"]
    t3["-"]
    t0 --> t1
    t1 --> t2
    t0 --> t2
    t2 --> t3
`
	got := wf.Mermaid()
	if got != want {
		t.Fatalf("Mermaid() =\n%s\nwant\n%s", got, want)
	}
	checkMermaidStructure(t, wf, got)
}

// checkMermaidStructure parses out the nodes and edges of a Mermaid
// flowchart and compares them with the workflow.
func checkMermaidStructure(t *testing.T, wf *Workflow, out string) {
	t.Helper()
	nodeRE := regexp.MustCompile(`^    (t[0-9]+)\["([^"]*)"\]$`)
	edgeRE := regexp.MustCompile(`^    (t[0-9]+) --> (t[0-9]+)$`)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if lines[0] != "flowchart TD" {
		t.Fatalf("first line %q", lines[0])
	}
	label := map[string]string{} // node id -> task id
	var edges []string
	for _, l := range lines[1:] {
		switch {
		case strings.HasPrefix(l, "    %% "):
		case nodeRE.MatchString(l):
			m := nodeRE.FindStringSubmatch(l)
			id, _, _ := strings.Cut(m[2], "<br/>")
			label[m[1]] = id
		case edgeRE.MatchString(l):
			m := edgeRE.FindStringSubmatch(l)
			edges = append(edges, label[m[1]]+" -> "+label[m[2]])
		default:
			t.Fatalf("unexpected line %q", l)
		}
	}
	var wantEdges []string
	var ids []string
	for _, ti := range wf.Tasks() {
		ids = append(ids, ti.ID)
		for _, d := range ti.Dependencies {
			wantEdges = append(wantEdges, d+" -> "+ti.ID)
		}
	}
	var gotIDs []string
	for i := range len(label) {
		gotIDs = append(gotIDs, label[fmt.Sprintf("t%d", i)])
	}
	if !slices.Equal(gotIDs, ids) {
		t.Errorf("nodes %q, want %q", gotIDs, ids)
	}
	if !slices.Equal(edges, wantEdges) {
		t.Errorf("edges %q, want %q", edges, wantEdges)
	}
}

func TestDOTQuoting(t *testing.T) {
	wf := awkwardWorkflow(t)
	want := `digraph "etl-v1.2_x" {
    rankdir=TB;
    node [shape=box];
    "fetch-data.v1";
    "2nd_step";
    "a.b-c" [label="a.b-c\nwhen: none(failed(fetch-data.v1), context(note equals \"say \\\"hi\\\" \\\\ #1;\"))"];
    "-";
    "fetch-data.v1" -> "2nd_step";
    "2nd_step" -> "a.b-c";
    "fetch-data.v1" -> "a.b-c";
    "a.b-c" -> "-";
}
`
	got := wf.DOT()
	if got != want {
		t.Fatalf("DOT() =\n%s\nwant\n%s", got, want)
	}

	// Reading the quoted strings back gives the names and the rule text.
	toks := dotStrings(t, got)
	var wantToks []string
	wantToks = append(wantToks, wf.Name())
	for _, ti := range wf.Tasks() {
		wantToks = append(wantToks, ti.ID)
		if !ti.Trigger.IsDefault() {
			wantToks = append(wantToks, ti.ID+"\nwhen: "+ti.Trigger.String())
		}
	}
	for _, ti := range wf.Tasks() {
		for _, d := range ti.Dependencies {
			wantToks = append(wantToks, d, ti.ID)
		}
	}
	if !slices.Equal(toks, wantToks) {
		t.Fatalf("quoted strings read back as\n%q\nwant\n%q", toks, wantToks)
	}
}

// dotStrings returns the quoted strings of a DOT text, unescaped as a DOT
// reader does for labels: \" is a quote, \\ a backslash and \n a newline.
// It fails if a string is not terminated or a backslash escapes anything
// else.
func dotStrings(t *testing.T, s string) []string {
	t.Helper()
	var out []string
	for i := 0; i < len(s); i++ {
		if s[i] != '"' {
			continue
		}
		var b strings.Builder
		i++
		for ; ; i++ {
			if i >= len(s) {
				t.Fatalf("unterminated string in %s", s)
			}
			c := s[i]
			if c == '"' {
				break
			}
			if c == '\n' {
				t.Fatalf("raw newline inside a quoted string")
			}
			if c == '\\' {
				i++
				switch s[i] {
				case '"', '\\':
					b.WriteByte(s[i])
				case 'n':
					b.WriteByte('\n')
				default:
					t.Fatalf("unexpected escape \\%c", s[i])
				}
				continue
			}
			b.WriteByte(c)
		}
		out = append(out, b.String())
	}
	return out
}

func TestMermaidEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain-id.v2_x", "plain-id.v2_x"},
		{`"q"`, "#quot;q#quot;"},
		{"#quot;", "#35;quot;"},
		{"a<b>c", "a#60;b#62;c"},
		{"x & y", "x #38; y"},
		{"two\nlines\r\n", "two lines  "},
		{`back\slash`, `back\slash`},
	}
	for _, tt := range tests {
		if got := mermaidEscape(tt.in); got != tt.want {
			t.Errorf("mermaidEscape(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDOTQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", `"plain"`},
		{"", `""`},
		{`a"b`, `"a\"b"`},
		{`a\b`, `"a\\b"`},
		{`ends with \`, `"ends with \\"`},
		{`\"`, `"\\\""`},
		{"line\nbreak\r", `"line\nbreak"`},
	}
	for _, tt := range tests {
		if got := dotQuote(tt.in); got != tt.want {
			t.Errorf("dotQuote(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestGraphDeterministic(t *testing.T) {
	build := func() *Workflow {
		b := NewWorkflow("fan")
		b.Task("root", wfNop)
		var all []string
		for i := range 20 {
			id := fmt.Sprintf("n%02d", i)
			b.Task(id, wfNop, DependsOn("root"))
			all = append(all, id)
		}
		b.Task("sink", wfNop, DependsOn(all...), When(All(ContextEquals("cfg", map[string]any{"z": 1, "a": 2, "m": []any{3}}))))
		return b.MustBuild()
	}
	wf := build()
	m, d := wf.Mermaid(), wf.DOT()
	for range 20 {
		again := build()
		if again.Mermaid() != m || again.DOT() != d {
			t.Fatal("graph output differs between identical workflows")
		}
	}
	if !strings.Contains(m, `{#quot;a#quot;:2,#quot;m#quot;:[3],#quot;z#quot;:1}`) {
		t.Errorf("object value not rendered with sorted keys:\n%s", m)
	}
	checkMermaidStructure(t, wf, m)
}
