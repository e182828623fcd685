package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cloacina-go/cloacina/client"
	"github.com/cloacina-go/cloacina/internal/pgtest"
)

// pgExec runs statements on dbURL.
func pgExec(t *testing.T, dbURL string, stmts ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// roleExists reports whether the PostgreSQL server of dbURL has the role.
func roleExists(t *testing.T, dbURL, role string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_roles WHERE rolname = $1", role).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// uniqueID returns a tenant id (and role suffix) unlikely to be in use on
// a shared PostgreSQL server, whose roles outlive its databases.
func uniqueID(prefix string) string {
	return prefix + strings.ToLower(rand.Text()[:10])
}

// TestServeTenantRolePrefix: --tenant-role-prefix names the tenants'
// roles (d2_<id>, not user_<id>), as pg_roles and rotate-password show;
// the tenant works, and its deletion drops the role. An invalid prefix is
// refused as a usage error.
func TestServeTenantRolePrefix(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.Shared(t).NewDatabase(t)
	ctx := testCtx(t, 90*time.Second)
	dir := t.TempDir()
	id := uniqueID("rp")
	p := startServe(t, dir, []string{"CLOACINA_ADMIN_KEY=" + testAdminKey, "DATABASE_URL=" + dbURL, "CLOACINA_TENANT_ROLES=true"},
		"--data-dir", filepath.Join(dir, "data"), "--tenant-role-prefix", "d2_")
	if !strings.Contains(p.stdout.String(), "a schema and a role d2_<id> per tenant") {
		t.Errorf("serve's start does not name the role prefix:\n%s", p.stdout)
	}
	mustCLI(t, ctx, p.url, testAdminKey, "tenant", "create", id)
	t.Cleanup(func() { _ = cli(t, context.Background(), p.url, testAdminKey, "tenant", "delete", id, "--yes") })
	if !roleExists(t, dbURL, "d2_"+id) || roleExists(t, dbURL, "user_"+id) {
		t.Fatalf("roles after tenant create: d2_%s %v, user_%s %v; want d2_ only", id, roleExists(t, dbURL, "d2_"+id), id, roleExists(t, dbURL, "user_"+id))
	}
	var rot client.PasswordRotation
	if err := json.Unmarshal([]byte(mustCLI(t, ctx, p.url, testAdminKey, "tenant", "rotate-password", id, "-o", "json")), &rot); err != nil || rot.Username != "d2_"+id {
		t.Errorf("rotate-password: %+v (%v), want role d2_%s", rot, err, id)
	}
	c := client.New(p.url, client.WithAPIKey(testAdminKey))
	if ex, err := c.StartExecution(ctx, id, client.StartRequest{Workflow: "hello", Wait: 10 * time.Second}); err != nil || ex.Status != client.StatusCompleted {
		t.Errorf("hello as role d2_%s: %+v, %v", id, ex, err)
	}
	mustCLI(t, ctx, p.url, testAdminKey, "tenant", "delete", id, "--yes")
	if roleExists(t, dbURL, "d2_"+id) {
		t.Errorf("role d2_%s still exists after tenant delete", id)
	}

	code, _, stderr := runCLI(t, nil, "serve", "--addr", "127.0.0.1:0", "--database-url", dbURL, "--tenant-roles",
		"--data-dir", t.TempDir(), "--tenant-role-prefix", "9d")
	t.Logf("prefix: %s", stderr)
	if code != 2 || !strings.Contains(stderr, `--tenant-role-prefix "9d"`) {
		t.Errorf("an invalid prefix: exit %d, stderr %q; want 2 naming --tenant-role-prefix", code, stderr)
	}
}

// TestServePrivilegeErrors: serve started with a role that lacks a
// privilege it needs exits 1 at once with one line naming the role and the
// privilege, and never the password: CREATEROLE for --tenant-roles, CREATE
// on the database for a schema per tenant.
func TestServePrivilegeErrors(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.Shared(t).NewDatabase(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	db := pgx.Identifier{strings.TrimPrefix(u.Path, "/")}.Sanitize()
	role := func(name, attrs string) (roleURL, password string) {
		t.Helper()
		password = rand.Text()
		ident := pgx.Identifier{name}.Sanitize()
		pgExec(t, dbURL, fmt.Sprintf("CREATE ROLE %s LOGIN %s PASSWORD '%s'", ident, attrs, password))
		t.Cleanup(func() { pgExec(t, dbURL, "DROP OWNED BY "+ident+" CASCADE", "DROP ROLE "+ident) })
		ru := *u
		ru.User = url.UserPassword(name, password)
		return ru.String(), password
	}

	noRoles := uniqueID("norole")
	noRolesURL, pw := role(noRoles, "NOCREATEROLE")
	pgExec(t, dbURL, "GRANT CREATE ON DATABASE "+db+" TO "+pgx.Identifier{noRoles}.Sanitize())
	code, stdout, stderr := runCLI(t, nil, "serve", "--addr", "127.0.0.1:0", "--database-url", noRolesURL, "--tenant-roles", "--data-dir", t.TempDir())
	if code != 1 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, fmt.Sprintf("%q lacks CREATEROLE", noRoles)) ||
		strings.Contains(stderr+stdout, pw) {
		t.Errorf("--tenant-roles as a role without CREATEROLE: exit %d, stderr %q; want one line naming CREATEROLE", code, stderr)
	}

	t.Logf("CREATEROLE: %s", stderr)
	noCreate := uniqueID("nocreate")
	noCreateURL, pw := role(noCreate, "")
	code, stdout, stderr = runCLI(t, nil, "serve", "--addr", "127.0.0.1:0", "--database-url", noCreateURL, "--data-dir", t.TempDir())
	if code != 1 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, fmt.Sprintf("%q lacks CREATE on database", noCreate)) ||
		strings.Contains(stderr+stdout, pw) {
		t.Errorf("a role without CREATE on the database: exit %d, stderr %q; want one line naming CREATE", code, stderr)
	}
}
