package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Output formats of -o.
const (
	formatText = "text"
	formatJSON = "json"
)

// printer writes a command's result as aligned text for people or as
// JSON for scripts.
type printer struct {
	w      io.Writer
	format string
}

// json reports whether the output is JSON.
func (p printer) json() bool { return p.format == formatJSON }

// print writes v as indented JSON, or calls text with a tab-aligned
// writer (columns separated by '\t').
func (p printer) print(v any, text func(w io.Writer)) error {
	if p.json() {
		enc := json.NewEncoder(p.w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	text(tw)
	return tw.Flush()
}

// row writes one tab-separated line.
func row(w io.Writer, cols ...any) {
	for i, c := range cols {
		if i > 0 {
			io.WriteString(w, "\t")
		}
		fmt.Fprint(w, c)
	}
	io.WriteString(w, "\n")
}

// ts formats a time for a table: local, to the millisecond; "-" when zero.
func ts(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05.000")
}

// ms formats milliseconds for a table.
func ms(v float64) string {
	switch {
	case v == 0:
		return "-"
	case v < 10:
		return fmt.Sprintf("%.2fms", v)
	case v < 10000:
		return fmt.Sprintf("%.0fms", v)
	}
	return (time.Duration(v) * time.Millisecond).Round(100 * time.Millisecond).String()
}

// orDash returns s, or "-" when it is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine shortens a message to one line of at most n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
