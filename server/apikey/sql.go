package apikey

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // registers the "sqlite" database/sql driver

	"github.com/cloacina-go/cloacina/internal/store"
)

// TableName is the table keeping the keys: in the SQLite file, or in
// PostgreSQL's schema [Schema].
const TableName = "cloacina_api_keys"

// Schema is the PostgreSQL schema of the key table, which [Open] creates
// when missing: the role opening the store needs CREATE on the database
// (not on schema public, which PostgreSQL 15 and later do not grant).
// Tenant roles get no right on it. Its name holds a hyphen, which no
// tenant id on PostgreSQL may hold, so it is never a tenant's schema, and
// it holds no cloacina_migrations table, so no listing of tenants shows
// it.
//
// A database whose public schema already has the key table (made by
// earlier versions) keeps using that table, so that processes of both
// versions share the keys during an upgrade. To move it, stop every
// server and run, as the table's owner:
//
//	CREATE SCHEMA IF NOT EXISTS "cloacina-server";
//	ALTER TABLE public.cloacina_api_keys SET SCHEMA "cloacina-server";
const Schema = "cloacina-server"

// Private file modes of the SQLite key store (whatever the umask).
const (
	dirMode  = 0o700
	fileMode = 0o600
)

// touchEvery is how often, at most, Verify records a key's use.
const touchEvery = time.Minute

// SQLStore is a [Store] in a SQLite file or a PostgreSQL database. It is
// safe for concurrent use.
type SQLStore struct {
	db   *sql.DB
	d    dialect
	url  string // redacted
	path string // the SQLite file
	now  func() time.Time
}

var _ Store = (*SQLStore)(nil)

// dialect holds what differs between SQLite and PostgreSQL.
type dialect struct {
	name  string // "sqlite" or "postgres"
	table string // the qualified table name
	blob  string // the type of a byte string
	// lock, when set, is run first in a transaction that must not run
	// concurrently with another process's (PostgreSQL: an advisory lock;
	// SQLite's immediate transactions serialise writers already).
	lock string
}

// q turns a statement written with $N placeholders and {t} for the table
// into the dialect's text (SQLite's ?N numbers parameters as $N does).
func (d dialect) q(s string) string {
	s = strings.ReplaceAll(s, "{t}", d.table)
	if d.name != "sqlite" {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '$' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9' {
			b.WriteByte('?')
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Open opens the key store at databaseURL (sqlite://PATH, postgres:// or
// postgresql://), creating the SQLite file and the table when missing.
func Open(ctx context.Context, databaseURL string) (*SQLStore, error) {
	kind, err := store.Kind(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("apikey: %w", err)
	}
	s := &SQLStore{url: store.Redact(databaseURL), now: time.Now}
	switch kind {
	case "sqlite":
		path, err := store.SQLitePath(databaseURL)
		if err != nil {
			return nil, fmt.Errorf("apikey: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(path), dirMode); err != nil {
			return nil, fmt.Errorf("apikey: creating the folder of %s: %w", path, err)
		}
		if err := privateFile(path); err != nil {
			return nil, err
		}
		s.path = path
		v := url.Values{}
		v.Add("_pragma", "busy_timeout(10000)")
		v.Add("_pragma", "journal_mode(WAL)")
		v.Set("_txlock", "immediate")
		s.db, err = sql.Open("sqlite", "file:"+escapeSQLitePath(path)+"?"+v.Encode())
		if err != nil {
			return nil, fmt.Errorf("apikey: opening %s: %w", path, err)
		}
		s.db.SetMaxOpenConns(4)
		s.d = dialect{name: "sqlite", table: TableName, blob: "BLOB"}
	default:
		s.db, err = sql.Open("pgx", databaseURL)
		if err != nil {
			return nil, fmt.Errorf("apikey: opening %s: %w", s.url, err)
		}
		s.db.SetMaxOpenConns(4)
		s.db.SetConnMaxIdleTime(5 * time.Minute)
		// migrate chooses the table's schema.
		s.d = dialect{name: "postgres", blob: "BYTEA",
			lock: `SELECT pg_advisory_xact_lock(hashtext('` + TableName + `'))`}
	}
	if err := s.migrate(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	return s, nil
}

// escapeSQLitePath escapes what SQLite's URI file names give a meaning to.
func escapeSQLitePath(p string) string {
	return strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23").Replace(p)
}

// privateFile creates the SQLite file at path readable by its owner only
// (SQLite gives its -wal and -shm files the same mode), or makes an
// existing one so.
func privateFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, fileMode)
	if err != nil {
		return fmt.Errorf("apikey: creating %s: %w", path, err)
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("apikey: %w", err)
		}
		if fi.Mode().Perm()&^fileMode != 0 {
			if err := os.Chmod(p, fileMode); err != nil {
				return fmt.Errorf("apikey: making %s private: %w", p, err)
			}
		}
	}
	return nil
}

// pgTable chooses the PostgreSQL table: public's when it exists (made by
// an earlier version), else the one in Schema, creating the schema when
// missing. It runs under the store's advisory lock.
func (s *SQLStore) pgTable(ctx context.Context, tx *sql.Tx) error {
	legacy := `"public".` + TableName
	var found bool
	if err := tx.QueryRowContext(ctx, `SELECT to_regclass($1) IS NOT NULL`, legacy).Scan(&found); err != nil {
		return err
	}
	if found {
		s.d.table = legacy
		return nil
	}
	s.d.table = quoteIdent(Schema) + "." + TableName
	// CREATE SCHEMA IF NOT EXISTS would need CREATE on the database even
	// when the schema exists.
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, Schema).Scan(&found); err != nil {
		return err
	}
	if !found {
		if _, err := tx.ExecContext(ctx, `CREATE SCHEMA `+quoteIdent(Schema)); err != nil {
			return fmt.Errorf("creating schema %s (the role needs CREATE on the database): %w", Schema, err)
		}
	}
	return nil
}

// quoteIdent quotes a PostgreSQL identifier.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// migrate creates the table when missing.
func (s *SQLStore) migrate(ctx context.Context) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if s.d.name == "postgres" {
			if err := s.pgTable(ctx, tx); err != nil {
				return err
			}
			// CREATE TABLE IF NOT EXISTS would need CREATE on the schema
			// even when the table exists (a legacy one in public).
			var found bool
			if err := tx.QueryRowContext(ctx, `SELECT to_regclass($1) IS NOT NULL`, s.d.table).Scan(&found); err != nil {
				return err
			}
			if found {
				return nil
			}
		}
		for _, q := range []string{
			`CREATE TABLE IF NOT EXISTS {t} (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,
    key_hash     ` + s.d.blob + ` NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL DEFAULT 0
)`,
			`CREATE INDEX IF NOT EXISTS ` + TableName + `_tenant_idx ON {t} (tenant_id, created_at)`,
		} {
			if _, err := tx.ExecContext(ctx, s.d.q(q)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("apikey: creating table %s in %s: %w", TableName, s.url, err)
	}
	if s.d.name == "sqlite" {
		// The first write created the -wal and -shm files: check them too.
		if err := privateFile(s.path); err != nil {
			s.db.Close()
			return err
		}
	}
	return nil
}

// tx runs fn in a transaction (taking the dialect's lock first).
func (s *SQLStore) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if s.d.lock != "" {
		if _, err := tx.ExecContext(ctx, s.d.lock); err != nil {
			return err
		}
	}
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// execer is a *sql.DB or a *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Create creates a key; see [Store.Create].
func (s *SQLStore) Create(ctx context.Context, tenantID, name string, role Role) (string, Key, error) {
	return s.create(ctx, s.db, tenantID, name, role)
}

func (s *SQLStore) create(ctx context.Context, ex execer, tenantID, name string, role Role) (string, Key, error) {
	if err := checkTenant(tenantID, role); err != nil {
		return "", Key{}, err
	}
	if err := checkName(name); err != nil {
		return "", Key{}, err
	}
	id, key, err := newKey()
	if err != nil {
		return "", Key{}, err
	}
	k := Key{ID: id, TenantID: tenantID, Name: name, Role: role, CreatedAt: s.now().UTC().Truncate(time.Microsecond)}
	_, err = ex.ExecContext(ctx, s.d.q(`INSERT INTO {t} (id, tenant_id, name, role, key_hash, created_at, last_used_at)
VALUES ($1, $2, $3, $4, $5, $6, 0)`), id, tenantID, name, string(role), hashKey(key), k.CreatedAt.UnixMicro())
	if err != nil {
		return "", Key{}, fmt.Errorf("apikey: storing a new key: %w", err)
	}
	return key, k, nil
}

// checkTenant checks a tenant id and that the role fits it.
func checkTenant(tenantID string, role Role) error {
	if tenantID != "" {
		if p := store.NameProblem(tenantID, true); p != "" {
			return fmt.Errorf("%w: %q: %s", ErrInvalidTenant, tenantID, p)
		}
	}
	return checkRole(tenantID, role)
}

const keyColumns = `id, tenant_id, name, role, created_at, last_used_at`

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

func scanKey(sc scanner, extra ...any) (Key, error) {
	var k Key
	var role string
	var created, used int64
	if err := sc.Scan(append([]any{&k.ID, &k.TenantID, &k.Name, &role, &created, &used}, extra...)...); err != nil {
		return Key{}, err
	}
	k.Role = Role(role)
	k.CreatedAt = time.UnixMicro(created).UTC()
	if used != 0 {
		k.LastUsedAt = time.UnixMicro(used).UTC()
	}
	return k, nil
}

// Verify checks a presented key; see [Store.Verify].
func (s *SQLStore) Verify(ctx context.Context, presented string) (Key, error) {
	id, ok := ParseID(presented)
	if !ok {
		return Key{}, fmt.Errorf("%w: malformed", ErrInvalidKey)
	}
	var hash []byte
	k, err := scanKey(s.db.QueryRowContext(ctx, s.d.q(`SELECT `+keyColumns+`, key_hash FROM {t} WHERE id = $1`), id), &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return Key{}, fmt.Errorf("%w: unknown key id %s", ErrInvalidKey, id)
	}
	if err != nil {
		return Key{}, fmt.Errorf("apikey: reading key %s: %w", id, err)
	}
	if subtle.ConstantTimeCompare(hash, hashKey(presented)) != 1 {
		return Key{}, fmt.Errorf("%w: wrong secret for key id %s", ErrInvalidKey, id)
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	if now.Sub(k.LastUsedAt) >= touchEvery {
		// The guard keeps concurrent verifications (of any process) to one
		// write a minute. A failed write loses one use, not the request.
		res, err := s.db.ExecContext(ctx, s.d.q(`UPDATE {t} SET last_used_at = $1 WHERE id = $2 AND last_used_at <= $3`),
			now.UnixMicro(), id, now.Add(-touchEvery).UnixMicro())
		if err == nil {
			if n, _ := res.RowsAffected(); n == 1 {
				k.LastUsedAt = now
			}
		}
	}
	return k, nil
}

// List returns a tenant's keys; see [Store.List].
func (s *SQLStore) List(ctx context.Context, tenantID string) ([]Key, error) {
	rows, err := s.db.QueryContext(ctx, s.d.q(`SELECT `+keyColumns+` FROM {t} WHERE tenant_id = $1 ORDER BY created_at, id`), tenantID)
	if err != nil {
		return nil, fmt.Errorf("apikey: listing keys: %w", err)
	}
	defer rows.Close()
	keys := []Key{}
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("apikey: listing keys: %w", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("apikey: listing keys: %w", err)
	}
	return keys, nil
}

// Delete deletes a tenant's key; see [Store.Delete].
func (s *SQLStore) Delete(ctx context.Context, tenantID, keyID string) error {
	res, err := s.db.ExecContext(ctx, s.d.q(`DELETE FROM {t} WHERE tenant_id = $1 AND id = $2`), tenantID, keyID)
	if err != nil {
		return fmt.Errorf("apikey: deleting key %q: %w", keyID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("apikey: deleting key %q: %w", keyID, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %q", ErrNotFound, keyID)
	}
	return nil
}

// DeleteTenant deletes a tenant's keys; see [Store.DeleteTenant]. The
// tenant id may not be "" (the admin keys are deleted one by one).
func (s *SQLStore) DeleteTenant(ctx context.Context, tenantID string) (int, error) {
	if tenantID == "" {
		return 0, fmt.Errorf("%w: empty (admin keys are deleted one by one)", ErrInvalidTenant)
	}
	res, err := s.db.ExecContext(ctx, s.d.q(`DELETE FROM {t} WHERE tenant_id = $1`), tenantID)
	if err != nil {
		return 0, fmt.Errorf("apikey: deleting the keys of tenant %q: %w", tenantID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("apikey: deleting the keys of tenant %q: %w", tenantID, err)
	}
	return int(n), nil
}

// ensureAdmin creates an admin key named name unless one exists, in one
// transaction.
func (s *SQLStore) ensureAdmin(ctx context.Context, name string) (key string, created bool, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, s.d.q(`SELECT count(*) FROM {t} WHERE tenant_id = '' AND role = $1`), string(RoleAdmin)).Scan(&n); err != nil {
			return fmt.Errorf("apikey: looking for an admin key: %w", err)
		}
		if n > 0 {
			return nil
		}
		key, _, err = s.create(ctx, tx, "", name, RoleAdmin)
		created = err == nil
		return err
	})
	if err != nil {
		return "", false, err
	}
	return key, created, nil
}

// Table returns the key table's qualified name: TableName in SQLite, or
// in PostgreSQL "cloacina-server".cloacina_api_keys (see [Schema]), or
// "public".cloacina_api_keys in a database that had it already.
func (s *SQLStore) Table() string { return s.d.table }

// Ping checks that the database answers.
func (s *SQLStore) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("apikey: %s: %w", s.url, err)
	}
	return nil
}

// Close closes the database.
func (s *SQLStore) Close() error { return s.db.Close() }

// String describes the store, without secrets.
func (s *SQLStore) String() string {
	return "apikey.SQLStore{" + s.d.name + ", " + strconv.Quote(s.url) + "}"
}

// GoString is String, so that %#v shows no secrets either.
func (s *SQLStore) GoString() string { return "&" + s.String() }

// LogValue logs the store's kind and redacted URL.
func (s *SQLStore) LogValue() slog.Value {
	return slog.GroupValue(slog.String("backend", s.d.name), slog.String("url", s.url))
}
