package apikey

import (
	"database/sql"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cloacina-go/cloacina/internal/pgtest"
)

// TestNameFormatCharacters: names holding characters that are invisible
// or change how text is shown are refused with a *NameError.
func TestNameFormatCharacters(t *testing.T) {
	for _, name := range []string{
		"evil\u202egnp.exe", // right-to-left override
		"a\u2066b",          // left-to-right isolate
		"zero\u200bwidth",   // zero-width space
		"bom\ufeff",         // byte order mark
		"line\u2028sep",     // line separator
		"para\u2029sep",     // paragraph separator
		"private\ue000",     // private use
		"nul\x00", "tab\t", "del\x7f", "c1\u0085",
	} {
		err := checkName(name)
		ne, ok := errors.AsType[*NameError](err)
		if !errors.Is(err, ErrInvalidName) || !ok || ne.Offset < 0 || !strings.Contains(err.Error(), "U+") {
			t.Errorf("%q: %v, want a *NameError naming the character", name, err)
			continue
		}
		if strings.ContainsRune(err.Error(), ne.Rune) {
			t.Errorf("%q: the error shows the character itself: %q", name, err)
		}
	}
	for _, name := range []string{"ci", "déploiement", "日本語のキー", "a b-c_d.e", "emoji 🚀"} {
		if err := checkName(name); err != nil {
			t.Errorf("%q: %v", name, err)
		}
	}
}

// TestSQLiteFileModes: the key store's file (and its WAL files) are
// readable by their owner only, and a folder it creates is 0700, whatever
// the umask.
func TestSQLiteFileModes(t *testing.T) {
	old := syscall.Umask(0)
	t.Cleanup(func() { syscall.Umask(old) })
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, "server.sqlite")
	s := openStore(t, "sqlite://"+path)
	if _, _, err := s.Create(testCtx(t), "acme", "k", RoleWrite); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("folder %s is %v, want 0700", dir, fi.Mode().Perm())
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) && p != path {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s is %v, want 0600", p, fi.Mode().Perm())
		}
	}
	// An existing file readable by others is made private.
	s.Close()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	openStore(t, "sqlite://"+path)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("reopened: %v %v, want 0600", fi.Mode().Perm(), err)
	}
}

// pgExec runs statements on a database as the URL's role.
func pgExec(t *testing.T, u string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("pgx", u)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range stmts {
		if _, err := db.ExecContext(testCtx(t), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// limitedAdmin creates, in a fresh database, a role with CREATEROLE and
// CREATE on the database but no CREATE on schema public (PostgreSQL 15's
// default, made explicit for older servers), and returns the database's
// superuser URL and the role's URL.
func limitedAdmin(t *testing.T) (superURL, roleURL string) {
	t.Helper()
	superURL = pgtest.Shared(t).NewDatabase(t)
	u, err := url.Parse(superURL)
	if err != nil {
		t.Fatal(err)
	}
	dbName := strings.TrimPrefix(u.Path, "/")
	role := "keyadmin_" + strings.ToLower(strings.ReplaceAll(dbName, "-", "_"))
	if len(role) > 60 {
		role = role[:60]
	}
	pgExec(t, superURL,
		`CREATE ROLE "`+role+`" LOGIN PASSWORD 'limited-pw' CREATEROLE`,
		`GRANT CREATE, CONNECT ON DATABASE "`+dbName+`" TO "`+role+`"`,
		`REVOKE CREATE ON SCHEMA public FROM PUBLIC`,
	)
	t.Cleanup(func() {
		// Before the database is dropped (its cleanup runs after this one).
		pgExec(t, superURL, `DROP OWNED BY "`+role+`" CASCADE`, `DROP ROLE "`+role+`"`)
	})
	u.User = url.UserPassword(role, "limited-pw")
	return superURL, u.String()
}

// TestPostgresLimitedAdmin: a role without CREATE on schema public (but
// with CREATE on the database) opens the store: the table is in Schema,
// which holds no cloacina_migrations table (so no tenant listing shows
// it).
func TestPostgresLimitedAdmin(t *testing.T) {
	superURL, roleURL := limitedAdmin(t)
	s := openStore(t, roleURL)
	secret, k, err := s.Create(testCtx(t), "acme", "ci", RoleWrite)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Verify(testCtx(t), secret); err != nil || got.ID != k.ID {
		t.Fatalf("Verify: %v %v", got, err)
	}
	s.Close()
	s = openStore(t, roleURL) // again, with the schema and table there
	if ks, err := s.List(testCtx(t), "acme"); err != nil || len(ks) != 1 {
		t.Fatalf("reopened: %v %v", ks, err)
	}
	sup := openStore(t, superURL)
	var migrations bool
	if err := sup.db.QueryRowContext(testCtx(t), `SELECT to_regclass($1) IS NOT NULL`, `"`+Schema+`".cloacina_migrations`).Scan(&migrations); err != nil {
		t.Fatal(err)
	}
	if migrations {
		t.Fatal("the key schema holds a cloacina_migrations table: it would be listed as a tenant")
	}
}

// TestPostgresLegacyPublicTable: a database whose public schema has the
// key table (made by earlier versions) keeps using it, even for a role
// that cannot create anything in public: its keys still work.
func TestPostgresLegacyPublicTable(t *testing.T) {
	superURL, roleURL := limitedAdmin(t)
	// What earlier versions made: the table in public.
	pgExec(t, superURL, `CREATE TABLE public.`+TableName+` (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,
    key_hash     BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL DEFAULT 0
)`, `CREATE INDEX `+TableName+`_tenant_idx ON public.`+TableName+` (tenant_id, created_at)`)
	old := openStore(t, superURL)
	if old.Table() != `"public".`+TableName {
		t.Fatalf("setup: table %s", old.Table())
	}
	secret, k, err := old.Create(testCtx(t), "acme", "ci", RoleWrite)
	if err != nil {
		t.Fatal(err)
	}
	pgExec(t, superURL, `GRANT SELECT, INSERT, UPDATE, DELETE ON public.`+TableName+` TO PUBLIC`)
	s := openStore(t, roleURL)
	if s.Table() != `"public".`+TableName {
		t.Fatalf("table %s, want the legacy public one", s.Table())
	}
	if got, err := s.Verify(testCtx(t), secret); err != nil || got.ID != k.ID {
		t.Fatalf("a key of the legacy table: %v %v", got, err)
	}
}
