package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // registers the "sqlite" database/sql driver

	"github.com/cloacina-go/cloacina/internal/redact"
)

// Errors about opening a store.
var (
	ErrUnsupportedURL = errors.New("store: unsupported database URL (want sqlite://PATH, postgres:// or postgresql://)")
	ErrInvalidSchema  = errors.New("store: invalid schema name")
	ErrSchemaOnSQLite = errors.New("store: a schema can only be used with PostgreSQL")
)

// ErrPreparedStatementConflict: PostgreSQL refused a named prepared
// statement because one of that name already exists on the server
// connection (SQLSTATE 42P05, such as pgx's "stmtcache_..."), or could not
// find one the client had prepared (26000, once retries are spent). A
// client alone never does that: its statements went to a server
// connection that other clients use too, through a pooler in transaction
// mode (PgBouncer before 1.21, or without max_prepared_statements). The
// cure is default_query_exec_mode=exec in the database URL, which keeps
// pgx to unnamed statements. The error wraps the server's.
var ErrPreparedStatementConflict = errors.New("cloacina: prepared statements clash on a pooled server connection " +
	"(a transaction pooler such as PgBouncer between client and server): add default_query_exec_mode=exec to the database URL")

// poolerHint wraps a PostgreSQL error that says the connection goes through
// a transaction pooler unable to carry named prepared statements in
// ErrPreparedStatementConflict; other errors are returned as they are.
func poolerHint(err error) error {
	if err == nil || errors.Is(err, ErrPreparedStatementConflict) {
		return err
	}
	var se interface{ SQLState() string }
	if !errors.As(err, &se) {
		return err
	}
	switch se.SQLState() {
	case "42P05", "26000": // duplicate prepared statement; one that does not exist
		return fmt.Errorf("%w: %w", ErrPreparedStatementConflict, err)
	}
	return err
}

// Config says which database to open.
type Config struct {
	// URL is sqlite://PATH (relative, or sqlite:///ABSOLUTE) or a
	// postgres:// / postgresql:// URL.
	URL string
	// Schema selects a PostgreSQL schema; empty means "public".
	Schema string
	// PoolSize is the maximum number of open connections (default 10).
	PoolSize int
	// Role, when set, is the PostgreSQL role every transaction switches to
	// (see DB.StoreAs).
	Role string
}

// Open opens the database and the store of cfg.Schema in it, creating
// the SQLite file (and its folder) or the PostgreSQL schema when missing,
// and applies pending migrations. Closing the store closes the database.
func Open(ctx context.Context, cfg Config) (Store, error) {
	db, err := Connect(ctx, cfg)
	if err != nil {
		return nil, err
	}
	st, err := db.StoreAs(ctx, cfg.Schema, cfg.Role)
	if err != nil {
		db.Close()
		return nil, err
	}
	st.(*sqlStore).close = func() error { return errors.Join(st.(*sqlStore).closeStmts(), db.Close()) }
	return st, nil
}

// DB is an open database: one connection pool shared by the stores of its
// schemas (on SQLite, one store).
type DB struct {
	kind string
	url  string
	w, r *sql.DB
	// prepare: the URL lets pgx use named prepared statements (its default
	// query mode; not through PgBouncer), which role stores' reads then use.
	prepare  bool
	prepared connStatements
}

// Connect opens the database's connection pool (cfg.Schema is ignored).
func Connect(ctx context.Context, cfg Config) (*DB, error) {
	if cfg.PoolSize <= 0 {
		cfg.PoolSize = 10
	}
	kind, err := Kind(cfg.URL)
	if err != nil {
		return nil, err
	}
	if kind == "sqlite" {
		return connectSQLite(cfg)
	}
	return connectPostgres(ctx, cfg)
}

// Backend is "sqlite" or "postgres".
func (db *DB) Backend() string { return db.kind }

// Close closes the connection pool.
func (db *DB) Close() error {
	if db.w == db.r {
		return db.w.Close()
	}
	return errors.Join(db.r.Close(), db.w.Close())
}

// Store returns the store of a schema ("" is the default: the SQLite file,
// or PostgreSQL's public schema), creating and migrating the schema when
// needed. Closing it releases its prepared statements, not the pool.
func (db *DB) Store(ctx context.Context, schema string) (Store, error) {
	return db.StoreAs(ctx, schema, "")
}

// StoreAs is Store for a store whose every transaction switches to a
// PostgreSQL role first (SET LOCAL ROLE), so that the database enforces that
// role's privileges while the connections stay shared. The pool's user must
// be a member of the role. role "" is Store.
func (db *DB) StoreAs(ctx context.Context, schema, role string) (Store, error) {
	return db.StoreWith(ctx, schema, StoreOptions{Role: role})
}

// StoreOptions are the options of [DB.StoreWith].
type StoreOptions struct {
	// Role is the PostgreSQL role every transaction switches to (see
	// StoreAs); "" switches to none.
	Role string
	// RefuseForeign refuses a PostgreSQL schema that exists but holds no
	// cloacina_migrations table with ErrForeignSchema, instead of adding
	// the engine's tables to it. The check and the schema's creation are
	// one transaction, under the schema's migration lock.
	RefuseForeign bool
}

// StoreWith is StoreAs with options.
func (db *DB) StoreWith(ctx context.Context, schema string, o StoreOptions) (Store, error) {
	role := o.Role
	d := dialect{name: db.kind}
	if role != "" {
		if db.kind != "postgres" {
			return nil, fmt.Errorf("%w: a role", ErrSchemaOnSQLite)
		}
		if err := ValidateSchema(role); err != nil {
			return nil, fmt.Errorf("role: %w", err)
		}
	}
	if db.kind == "sqlite" {
		if schema != "" {
			return nil, ErrSchemaOnSQLite
		}
		// Before the first connection, which the migration opens (a
		// refused store creates nothing).
		path, err := SQLitePath(db.url)
		if err != nil {
			return nil, err
		}
		if err := createPrivate(path); err != nil {
			return nil, err
		}
	} else {
		if schema != "" {
			if err := ValidateSchema(schema); err != nil {
				return nil, err
			}
			d.prefix = quoteIdent(schema) + "."
		} else {
			d.prefix = quoteIdent("public") + "."
		}
		d.lockSkip = "FOR UPDATE OF c SKIP LOCKED"
	}
	s := &sqlStore{d: d, schema: schema, role: role, w: db.w, r: db.r, q: buildQueries(d)}
	if db.prepare {
		s.prepared = &db.prepared
	}
	if db.kind == "postgres" {
		s.begin = pgBegin(role)
	}
	s.close = s.closeStmts
	if err := migrate(ctx, s, schema, o.RefuseForeign); err != nil {
		return nil, err
	}
	if err := s.prepareAll(ctx); err != nil {
		s.closeStmts()
		return nil, err
	}
	return s, nil
}

// Kind returns "sqlite" or "postgres" for a database URL.
func Kind(rawURL string) (string, error) {
	switch {
	case strings.HasPrefix(rawURL, "sqlite://"):
		return "sqlite", nil
	case strings.HasPrefix(rawURL, "postgres://"), strings.HasPrefix(rawURL, "postgresql://"):
		return "postgres", nil
	}
	return "", fmt.Errorf("%w: %q", ErrUnsupportedURL, Redact(rawURL))
}

// Redact hides the secrets in a database URL or connection string (see
// [redact.URL]).
func Redact(rawURL string) string { return redact.URL(rawURL) }

// SQLitePath returns the file path of a sqlite:// URL: everything after
// the scheme (sqlite://data/app.db is relative, sqlite:///var/app.db
// absolute). Query parameters are refused rather than ignored.
func SQLitePath(rawURL string) (string, error) {
	if !strings.HasPrefix(rawURL, "sqlite://") {
		return "", fmt.Errorf("%w: %q", ErrUnsupportedURL, Redact(rawURL))
	}
	p := strings.TrimPrefix(rawURL, "sqlite://")
	if p == "" {
		return "", fmt.Errorf("%w: %q has no file path", ErrUnsupportedURL, rawURL)
	}
	if strings.Contains(p, "?") {
		return "", fmt.Errorf("%w: %q: sqlite URLs take no query parameters (the engine sets its own pragmas)", ErrUnsupportedURL, rawURL)
	}
	return p, nil
}

// sqliteURIPath escapes the characters that SQLite's URI file names give a
// meaning to, so that any path opens the file it names.
var sqliteURIPath = strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23")

func connectSQLite(cfg Config) (*DB, error) {
	path, err := SQLitePath(cfg.URL)
	if err != nil {
		return nil, err
	}
	dsn := func(txlock string) string {
		v := url.Values{}
		v.Add("_pragma", "busy_timeout(10000)")
		v.Add("_pragma", "journal_mode(WAL)")
		v.Add("_pragma", "synchronous(NORMAL)")
		v.Add("_pragma", "foreign_keys(ON)")
		v.Set("_txlock", txlock)
		return "file:" + sqliteURIPath.Replace(path) + "?" + v.Encode()
	}
	w, err := sql.Open("sqlite", dsn("immediate"))
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	// One writer connection: writes queue in Go, not in SQLite's busy loop.
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	r, err := sql.Open("sqlite", dsn("deferred"))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	r.SetMaxOpenConns(cfg.PoolSize)
	r.SetMaxIdleConns(cfg.PoolSize)
	r.SetConnMaxIdleTime(0)
	return &DB{kind: "sqlite", url: cfg.URL, w: w, r: r}, nil
}

// createPrivate creates the folders of a SQLite database's path that are
// missing, with mode 0700, and the database file, when missing, empty
// with mode 0600 (an empty file is a new database to SQLite), whatever
// the process's umask: the file holds tenants' contexts, and SQLite gives
// the -wal and -shm files it derives from it the same mode. What exists
// already keeps its mode.
func createPrivate(path string) error {
	dir := filepath.Dir(path)
	// The folders to create, innermost first.
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil || !errors.Is(err, fs.ErrNotExist) {
			break
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if len(missing) > 0 {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("store: creating folder for %s: %w", path, err)
		}
		for _, d := range missing {
			if err := os.Chmod(d, 0o700); err != nil {
				return fmt.Errorf("store: creating folder for %s: %w", path, err)
			}
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: creating %s: %w", path, err)
	}
	// The umask may have taken bits away (it cannot add any).
	err = f.Chmod(0o600)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("store: creating %s: %w", path, err)
	}
	return nil
}

// MaxNameLength is the longest schema (tenant) name: PostgreSQL's
// identifier limit.
const MaxNameLength = 63

// NameProblem says what is wrong with a schema or tenant name, or "" when
// it is valid: 1-63 bytes, an ASCII letter or underscore first, then ASCII
// letters, digits and underscores (and hyphens when allowHyphen, for
// SQLite file names); "public", "information_schema" and names starting
// with "pg_" are reserved, whatever their case. It is the one rule every
// layer applies.
func NameProblem(id string, allowHyphen bool) string {
	if id == "" {
		return "it is empty"
	}
	if len(id) > MaxNameLength {
		return fmt.Sprintf("it is %d bytes long, the limit is %d", len(id), MaxNameLength)
	}
	allowed := "letters, digits and underscores"
	if allowHyphen {
		allowed = "letters, digits, underscores and hyphens"
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
			continue
		case i == 0:
			return "it must start with an ASCII letter or an underscore"
		case c >= '0' && c <= '9', allowHyphen && c == '-':
			continue
		default:
			r, _ := utf8.DecodeRuneInString(id[i:])
			return fmt.Sprintf("character %q at offset %d is not allowed (only ASCII %s)", r, i, allowed)
		}
	}
	lower := strings.ToLower(id)
	if lower == "public" || lower == "information_schema" || strings.HasPrefix(lower, "pg_") {
		return "the name is reserved"
	}
	return ""
}

// ValidateSchema checks a PostgreSQL schema (tenant) name with NameProblem.
func ValidateSchema(name string) error {
	if p := NameProblem(name, false); p != "" {
		return fmt.Errorf("%w: %q: %s", ErrInvalidSchema, name, p)
	}
	return nil
}

func connectPostgres(ctx context.Context, cfg Config) (*DB, error) {
	db, err := sql.Open("pgx", cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", Redact(cfg.URL), err)
	}
	db.SetMaxOpenConns(cfg.PoolSize)
	db.SetMaxIdleConns(cfg.PoolSize)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, poolerHint(fmt.Errorf("store: connecting to %s: %w", Redact(cfg.URL), err))
	}
	pcfg, err := pgx.ParseConfig(cfg.URL)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: parsing %s: %w", Redact(cfg.URL), err)
	}
	prepare := pcfg.DefaultQueryExecMode == pgx.QueryExecModeCacheStatement
	return &DB{kind: "postgres", url: cfg.URL, w: db, r: db, prepare: prepare}, nil
}

//go:embed migrations
var migrationFS embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations(backend string) ([]migration, error) {
	dir := "migrations/" + backend
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, fmt.Errorf("store: reading migrations: %w", err)
	}
	var out []migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("store: migration file %s has no version prefix", name)
		}
		b, err := fs.ReadFile(migrationFS, dir+"/"+name)
		if err != nil {
			return nil, fmt.Errorf("store: reading migration %s: %w", name, err)
		}
		out = append(out, migration{version: v, name: name, sql: string(b)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	return out, nil
}

// ErrMigrationRequired is returned when a schema needs migrations that the
// connecting role may not apply.
var ErrMigrationRequired = errors.New("store: the schema needs migrations that this role may not apply")

// migrate applies pending migrations in one transaction. On PostgreSQL a
// transaction-scoped advisory lock per schema makes concurrent starts safe
// (and works through PgBouncer's transaction pooling); on SQLite the
// immediate write transaction serialises them. A schema that is up to date
// needs no privilege beyond reading its migrations table, so a tenant role
// without DDL rights can start a runner on it.
func migrate(ctx context.Context, s *sqlStore, schema string, refuseForeign bool) error {
	return poolerHint(migrateOnce(ctx, s, schema, refuseForeign))
}

func migrateOnce(ctx context.Context, s *sqlStore, schema string, refuseForeign bool) error {
	tx, err := s.w.BeginTx(ctx, nil)
	// SQLite answers a writer that starts while another connection sets
	// up a new file (its WAL, or a migration's schema change) with
	// SQLITE_BUSY at once, without waiting out busy_timeout: several
	// processes opening one new file at once must wait their turn here.
	for wait := time.Duration(0); err != nil && sqliteBusy(err) && wait < 10*time.Second; wait += 20 * time.Millisecond {
		select {
		case <-ctx.Done():
			return fmt.Errorf("store: migrate: begin: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
		tx, err = s.w.BeginTx(ctx, nil)
	}
	if err != nil {
		return fmt.Errorf("store: migrate: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit this is a no-op
	if err := s.setRole(ctx, tx); err != nil {
		return err
	}
	n, err := applyMigrations(ctx, tx, s.d, schema, refuseForeign)
	if err != nil || n == 0 {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: migrate: commit: %w", err)
	}
	return nil
}

// MigrateTx applies the pending migrations of a PostgreSQL schema inside
// the caller's transaction (for an admin creating a tenant), returning how
// many it applied.
func MigrateTx(ctx context.Context, tx *sql.Tx, schema string) (int, error) {
	if err := ValidateSchema(schema); err != nil {
		return 0, err
	}
	d := dialect{name: "postgres", prefix: quoteIdent(schema) + "."}
	return applyMigrations(ctx, tx, d, schema, false)
}

// applyMigrations applies the pending migrations in tx. With
// refuseForeign, an existing PostgreSQL schema without a migrations table
// is refused with ErrForeignSchema.
func applyMigrations(ctx context.Context, tx *sql.Tx, d dialect, schema string, refuseForeign bool) (int, error) {
	ms, err := loadMigrations(d.name)
	if err != nil {
		return 0, err
	}
	var tableExists string
	if d.name == "postgres" {
		lockKey := "cloacina:migrate:" + schema
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, lockKey); err != nil {
			return 0, fmt.Errorf("store: migrate: lock: %w", err)
		}
		if schema != "" {
			var exists bool
			if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists); err != nil {
				return 0, fmt.Errorf("store: migrate: %w", err)
			}
			if !exists {
				if _, err := tx.ExecContext(ctx, "CREATE SCHEMA "+quoteIdent(schema)); err != nil {
					if refuseForeign && pgCode(err) == "42P06" {
						// duplicate_schema: made by someone else (who does
						// not take our lock) since the look above.
						return 0, fmt.Errorf("%w: schema %s", ErrForeignSchema, schema)
					}
					return 0, migrationError(schema, "creating the schema", err)
				}
			} else if refuseForeign {
				// The marker as DropSchema reads it: a table (not a view
				// or sequence of that name), found in the catalog without
				// any privilege on the schema.
				var marked bool
				if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = $1 AND c.relname = 'cloacina_migrations' AND c.relkind IN ('r', 'p'))`, schema).Scan(&marked); err != nil {
					return 0, fmt.Errorf("store: migrate: %w", err)
				}
				if !marked {
					return 0, fmt.Errorf("%w: schema %s", ErrForeignSchema, schema)
				}
			}
		}
		tableExists = `SELECT to_regclass($1) IS NOT NULL`
	} else {
		tableExists = `SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = $1`
	}
	table := d.prefix + "cloacina_migrations"
	if d.name == "sqlite" {
		table = "cloacina_migrations"
	}
	var exists bool
	if err := tx.QueryRowContext(ctx, d.sql(tableExists), table).Scan(&exists); err != nil {
		return 0, fmt.Errorf("store: migrate: %w", err)
	}
	applied := map[int]bool{}
	if !exists {
		if _, err := tx.ExecContext(ctx, d.sql(`CREATE TABLE {t}cloacina_migrations (
  version integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)`)); err != nil {
			return 0, migrationError(schema, "creating the migrations table", err)
		}
	} else {
		rows, err := tx.QueryContext(ctx, d.sql(`SELECT version FROM {t}cloacina_migrations`))
		if err != nil {
			return 0, fmt.Errorf("store: migrate: %w", err)
		}
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return 0, fmt.Errorf("store: migrate: %w", err)
			}
			applied[v] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, fmt.Errorf("store: migrate: %w", err)
		}
	}
	n := 0
	for _, m := range ms {
		if applied[m.version] {
			continue
		}
		n++
		text := strings.ReplaceAll(m.sql, "{schema}", d.prefix)
		if _, err := tx.ExecContext(ctx, text); err != nil {
			return 0, migrationError(schema, "applying "+m.name, err)
		}
		if _, err := tx.ExecContext(ctx, d.sql(`INSERT INTO {t}cloacina_migrations (version, name, applied_at) VALUES ($1, $2, $3)`),
			m.version, m.name, time.Now().UnixMicro()); err != nil {
			return 0, migrationError(schema, "recording "+m.name, err)
		}
	}
	return n, nil
}

// migrationError names the way out when the role lacks the privilege.
func migrationError(schema, what string, err error) error {
	var se interface{ SQLState() string }
	if errors.As(err, &se) && se.SQLState() == "42501" {
		return fmt.Errorf("%w: schema %q: %s: %w; apply them as an admin: (*tenant.Admin).Migrate(ctx, %q)",
			ErrMigrationRequired, schema, what, err, schema)
	}
	return fmt.Errorf("store: migrate schema %q: %s: %w", schema, what, err)
}

// retryable reports whether a transaction failed for a reason that a retry
// can cure: a PostgreSQL serialization failure or deadlock, or a connection
// the server ended (a restart, pg_terminate_backend): the pool drops the
// dead connection and the retry gets a fresh one.
func retryable(err error) bool {
	var se interface{ SQLState() string }
	if errors.As(err, &se) {
		switch se.SQLState() {
		case "40001", "40P01": // serialization failure, deadlock
			return true
		case "26000": // a prepared statement gone from the server (prepared again)
			return true
		}
	}
	return connectionLost(err)
}

// sqliteBusy reports whether err is SQLite's SQLITE_BUSY (any extended
// code of it).
func sqliteBusy(err error) bool {
	var c interface{ Code() int }
	return errors.As(err, &c) && c.Code()&0xff == 5
}

// connectionLost reports whether err says a connection to the server was
// ended or could not be made.
func connectionLost(err error) bool {
	var se interface{ SQLState() string }
	if errors.As(err, &se) {
		code := se.SQLState()
		if code == "57P01" || code == "57P02" || code == "57P03" || strings.HasPrefix(code, "08") {
			return true
		}
	}
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE)
}

// PoolStats sums the statistics of the database's connection pools.
func (db *DB) PoolStats() sql.DBStats {
	s := db.w.Stats()
	if db.r != db.w {
		r := db.r.Stats()
		s.MaxOpenConnections += r.MaxOpenConnections
		s.OpenConnections += r.OpenConnections
		s.InUse += r.InUse
		s.Idle += r.Idle
		s.WaitCount += r.WaitCount
		s.WaitDuration += r.WaitDuration
	}
	return s
}

// pgCode returns the SQLSTATE of a PostgreSQL error in err's chain, or "".
func pgCode(err error) string {
	var se interface{ SQLState() string }
	if errors.As(err, &se) {
		return se.SQLState()
	}
	return ""
}
