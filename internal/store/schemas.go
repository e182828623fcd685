package store

import (
	"context"
	"fmt"
)

// Schemas lists the PostgreSQL schemas other than public that hold this
// engine's tables (a migrations table), sorted. SQLite has none.
func (db *DB) Schemas(ctx context.Context) ([]string, error) {
	if db.kind != "postgres" {
		return nil, nil
	}
	rows, err := db.r.QueryContext(ctx, `SELECT table_schema FROM information_schema.tables
WHERE table_name = 'cloacina_migrations' AND table_schema <> 'public' ORDER BY table_schema`)
	if err != nil {
		return nil, fmt.Errorf("store: listing schemas: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("store: listing schemas: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: listing schemas: %w", err)
	}
	return out, nil
}

// SchemaExists reports whether a PostgreSQL schema holds this engine's
// tables.
func (db *DB) SchemaExists(ctx context.Context, schema string) (bool, error) {
	if err := ValidateSchema(schema); err != nil {
		return false, err
	}
	if db.kind != "postgres" {
		return false, ErrSchemaOnSQLite
	}
	var n int
	err := db.r.QueryRowContext(ctx, `SELECT count(*) FROM information_schema.tables
WHERE table_name = 'cloacina_migrations' AND table_schema = $1`, schema).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("store: schema %s: %w", schema, err)
	}
	return n > 0, nil
}

// DropSchema drops a PostgreSQL schema with everything in it. It reports
// whether the schema existed.
func (db *DB) DropSchema(ctx context.Context, schema string) (bool, error) {
	if err := ValidateSchema(schema); err != nil {
		return false, err
	}
	if db.kind != "postgres" {
		return false, ErrSchemaOnSQLite
	}
	var n int
	if err := db.w.QueryRowContext(ctx, `SELECT count(*) FROM pg_namespace WHERE nspname = $1`, schema).Scan(&n); err != nil {
		return false, fmt.Errorf("store: schema %s: %w", schema, err)
	}
	if n == 0 {
		return false, nil
	}
	if _, err := db.w.ExecContext(ctx, "DROP SCHEMA IF EXISTS "+quoteIdent(schema)+" CASCADE"); err != nil {
		return false, fmt.Errorf("store: dropping schema %s: %w", schema, err)
	}
	return true, nil
}
