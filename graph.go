package cloacina

import (
	"fmt"
	"strings"
)

// Mermaid returns the workflow's DAG as a Mermaid flowchart ("flowchart TD"):
// one node per task and one edge per dependency (dependency --> dependent).
//
// Nodes are named t0, t1, ... in topological order and labelled with the
// quoted task id, so task ids containing '-' or '.' are safe. A task with a
// non-default trigger rule has the rule on a second line of its label.
// Characters that Mermaid would interpret inside a label ('"', '#', '<', '>',
// '&') are written as Mermaid entity codes. The output is deterministic:
// nodes in topological order, then edges in topological order of the
// dependent and declaration order of its dependencies.
func (w *Workflow) Mermaid() string {
	var b strings.Builder
	b.WriteString("flowchart TD\n")
	fmt.Fprintf(&b, "    %%%% workflow: %s\n", mermaidEscape(w.name))
	node := make(map[string]string, len(w.tasks))
	for i, t := range w.tasks {
		id := fmt.Sprintf("t%d", i)
		node[t.id] = id
		label := mermaidEscape(t.id)
		if t.trigger != nil && !t.trigger.IsDefault() {
			label += "<br/>when: " + mermaidEscape(t.trigger.String())
		}
		fmt.Fprintf(&b, "    %s[\"%s\"]\n", id, label)
	}
	for _, t := range w.tasks {
		for _, d := range t.deps {
			fmt.Fprintf(&b, "    %s --> %s\n", node[d], node[t.id])
		}
	}
	return b.String()
}

// mermaidEscaper writes the characters Mermaid interprets inside a quoted
// label as entity codes. strings.Replacer makes a single pass over the
// input, so the '#' of an inserted code is not escaped again.
var mermaidEscaper = strings.NewReplacer(
	"#", "#35;",
	`"`, "#quot;",
	"<", "#60;",
	">", "#62;",
	"&", "#38;",
	"\r", " ",
	"\n", " ",
)

func mermaidEscape(s string) string { return mermaidEscaper.Replace(s) }

// DOT returns the workflow's DAG in Graphviz DOT syntax
// ("digraph \"name\" { ... }"): one node per task, labelled with its id and,
// for a task with a non-default trigger rule, the rule on a second line; and
// one edge per dependency (dependency -> dependent). Every id is a quoted
// string with backslashes and quotes escaped. The output is deterministic,
// in the same order as [Workflow.Mermaid].
func (w *Workflow) DOT() string {
	var b strings.Builder
	fmt.Fprintf(&b, "digraph %s {\n", dotQuote(w.name))
	b.WriteString("    rankdir=TB;\n")
	b.WriteString("    node [shape=box];\n")
	for _, t := range w.tasks {
		if t.trigger != nil && !t.trigger.IsDefault() {
			fmt.Fprintf(&b, "    %s [label=%s];\n", dotQuote(t.id), dotQuote(t.id+"\n"+"when: "+t.trigger.String()))
			continue
		}
		fmt.Fprintf(&b, "    %s;\n", dotQuote(t.id))
	}
	for _, t := range w.tasks {
		for _, d := range t.deps {
			fmt.Fprintf(&b, "    %s -> %s;\n", dotQuote(d), dotQuote(t.id))
		}
	}
	b.WriteString("}\n")
	return b.String()
}

var dotEscaper = strings.NewReplacer(
	`\`, `\\`,
	`"`, `\"`,
	"\r", "",
	"\n", `\n`,
)

// dotQuote returns s as a DOT quoted string. A newline becomes the label
// escape \n (a centred line break).
func dotQuote(s string) string { return `"` + dotEscaper.Replace(s) + `"` }
