package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
)

// ErrForeignSchema is returned by DropSchema for a schema that exists but
// holds no migrations table of the engine: the engine did not create it,
// and does not drop it.
var ErrForeignSchema = errors.New("store: the schema was not created by the engine (it has no cloacina_migrations table)")

// Schemas lists the PostgreSQL schemas other than public that hold this
// engine's tables (a migrations table), sorted. SQLite has none.
func (db *DB) Schemas(ctx context.Context) ([]string, error) {
	if db.kind != "postgres" {
		return nil, nil
	}
	rows, err := db.r.QueryContext(ctx, `SELECT table_schema FROM information_schema.tables
WHERE table_name = 'cloacina_migrations' AND table_type = 'BASE TABLE' AND table_schema <> 'public'
ORDER BY table_schema`)
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
WHERE table_name = 'cloacina_migrations' AND table_type = 'BASE TABLE' AND table_schema = $1`, schema).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("store: schema %s: %w", schema, err)
	}
	return n > 0, nil
}

// DropSchema drops a PostgreSQL schema with everything in it, if it holds
// the engine's migrations table. It reports whether the schema existed. A
// schema without that table is refused with ErrForeignSchema and left
// alone. The check and the drop are one transaction, which holds the
// schema's migration lock (as migrating does) and a lock on the
// migrations table, so that the table cannot go between them.
func (db *DB) DropSchema(ctx context.Context, schema string) (existed bool, err error) {
	if err := ValidateSchema(schema); err != nil {
		return false, err
	}
	if db.kind != "postgres" {
		return false, ErrSchemaOnSQLite
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("store: dropping schema %s: %w", schema, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit this is a no-op
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, "cloacina:migrate:"+schema); err != nil {
		return false, fmt.Errorf("store: dropping schema %s: lock: %w", schema, err)
	}
	var exists, marked bool
	err = tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1),
  EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = $1 AND c.relname = 'cloacina_migrations' AND c.relkind IN ('r', 'p'))`, schema).Scan(&exists, &marked)
	if err != nil {
		return false, fmt.Errorf("store: schema %s: %w", schema, err)
	}
	if !exists {
		return false, nil
	}
	if !marked {
		return true, fmt.Errorf("%w: schema %s", ErrForeignSchema, schema)
	}
	// Hold the marker until the drop: a concurrent DROP TABLE of it waits,
	// and a drop that already happened fails this statement.
	if _, err := tx.ExecContext(ctx, "LOCK TABLE "+quoteIdent(schema)+".cloacina_migrations IN SHARE MODE"); err != nil {
		return true, fmt.Errorf("store: dropping schema %s: %w", schema, err)
	}
	if _, err := tx.ExecContext(ctx, "DROP SCHEMA "+quoteIdent(schema)+" CASCADE"); err != nil {
		return true, fmt.Errorf("store: dropping schema %s: %w", schema, err)
	}
	if err := tx.Commit(); err != nil {
		return true, fmt.Errorf("store: dropping schema %s: commit: %w", schema, err)
	}
	return true, nil
}

// SQLiteHasUnfinishedWork reports whether the engine's SQLite database at
// path holds an execution that is Pending or Running: work that a runner
// opened on it would run or recover. Paused executions do not count (only
// a Resume restarts them). It opens the file read-only, queries it through
// the executions' status index and closes it; a database without the
// engine's tables has none.
func SQLiteHasUnfinishedWork(ctx context.Context, path string) (bool, error) {
	v := url.Values{}
	v.Set("mode", "ro")
	v.Add("_pragma", "busy_timeout(5000)")
	db, err := sql.Open("sqlite", "file:"+sqliteURIPath.Replace(path)+"?"+v.Encode())
	if err != nil {
		return false, fmt.Errorf("store: open %s: %w", path, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	var tables int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'executions'`).Scan(&tables); err != nil {
		return false, fmt.Errorf("store: reading %s: %w", path, err)
	}
	if tables == 0 {
		return false, nil
	}
	var found bool
	if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM executions WHERE status IN ('Pending', 'Running'))`).Scan(&found); err != nil {
		return false, fmt.Errorf("store: reading %s: %w", path, err)
	}
	return found, nil
}

// SQLiteHasMigrationsTable reports whether the SQLite database at path
// holds the engine's migrations table, opening it read-only. A file that
// is not a SQLite database is an error.
func SQLiteHasMigrationsTable(ctx context.Context, path string) (bool, error) {
	v := url.Values{}
	v.Set("mode", "ro")
	v.Add("_pragma", "busy_timeout(5000)")
	db, err := sql.Open("sqlite", "file:"+sqliteURIPath.Replace(path)+"?"+v.Encode())
	if err != nil {
		return false, fmt.Errorf("store: open %s: %w", path, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'cloacina_migrations'`).Scan(&n); err != nil {
		return false, fmt.Errorf("store: reading %s: %w", path, err)
	}
	return n > 0, nil
}

// SQLiteSetApplicationID sets the application id (PRAGMA application_id,
// a big-endian 32-bit integer at offset 68 of the file's header) of the
// SQLite database at path, creating the database in an empty file. Call it
// before the file is put in WAL mode, so that the header on disk holds it
// at once.
func SQLiteSetApplicationID(ctx context.Context, path string, id int32) error {
	v := url.Values{}
	v.Add("_pragma", "busy_timeout(5000)")
	db, err := sql.Open("sqlite", "file:"+sqliteURIPath.Replace(path)+"?"+v.Encode())
	if err != nil {
		return fmt.Errorf("store: open %s: %w", path, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, fmt.Sprintf("PRAGMA application_id = %d", id)); err != nil {
		return fmt.Errorf("store: setting the application id of %s: %w", path, err)
	}
	return db.Close()
}
