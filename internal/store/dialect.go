package store

import (
	"fmt"
	"regexp"
	"strings"
)

// col describes one field of the JSON rows passed as a single parameter to
// set-based statements. pgType is its PostgreSQL type; SQLite needs none.
type col struct {
	name   string
	pgType string
}

// dialect holds the few SQL fragments that differ between the backends.
// Everything else is shared.
type dialect struct {
	name string
	// prefix qualifies table names: `"tenant_a".` on PostgreSQL schemas,
	// empty on SQLite.
	prefix string
	// lockSkip follows the claim's inner SELECT: row locks that skip rows
	// other workers hold (PostgreSQL); SQLite serialises writers instead.
	lockSkip string
}

var placeholderRE = regexp.MustCompile(`\$(\d+)`)

// sql turns a statement written with PostgreSQL placeholders ($1) and the
// {t} table prefix into this dialect's text.
func (d dialect) sql(q string) string {
	q = strings.ReplaceAll(q, "{t}", d.prefix)
	q = strings.ReplaceAll(q, "{lockskip}", d.lockSkip)
	if d.name == "sqlite" {
		// SQLite numbers ?NNN parameters by their number, as PostgreSQL does
		// with $N; plain $N would be numbered by first appearance.
		q = placeholderRE.ReplaceAllString(q, "?$1")
	}
	return q
}

// rows returns a table expression that unpacks the JSON array of objects
// in parameter param into rows with the given columns.
func (d dialect) rows(param string, cols ...col) string {
	var b strings.Builder
	if d.name == "sqlite" {
		b.WriteString("(SELECT ")
		for i, c := range cols {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "json_extract(value, '$.%s') AS %s", c.name, c.name)
		}
		fmt.Fprintf(&b, " FROM json_each(%s))", param)
		return b.String()
	}
	fmt.Fprintf(&b, "(SELECT * FROM json_to_recordset(%s::json) AS r(", param)
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %s", c.name, c.pgType)
	}
	b.WriteString("))")
	return b.String()
}

// returning qualifies the columns of a RETURNING clause: PostgreSQL needs
// the target's alias where a FROM item has columns of the same name;
// SQLite refuses qualified names there.
func (d dialect) returning(alias, cols string) string {
	if d.name == "sqlite" {
		return cols
	}
	parts := strings.Split(cols, ", ")
	for i := range parts {
		parts[i] = alias + parts[i]
	}
	return strings.Join(parts, ", ")
}

// list returns a subquery yielding the elements of the JSON array of
// scalars in parameter param, as pgType on PostgreSQL.
func (d dialect) list(param, pgType string) string {
	if d.name == "sqlite" {
		return fmt.Sprintf("(SELECT value FROM json_each(%s))", param)
	}
	return fmt.Sprintf("(SELECT value::%s FROM json_array_elements_text(%s::json))", pgType, param)
}

// quoteIdent quotes a PostgreSQL identifier.
func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
