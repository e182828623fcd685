package tenant

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/internal/redact"
	"github.com/cloacina-go/cloacina/internal/store"
)

// ErrTenantExists is returned by [Admin.CreateTenant] when the tenant's
// schema or role already exists.
var ErrTenantExists = errors.New("tenant: tenant already exists")

// ErrNotTenant is returned when a schema or role exists but is not a
// tenant's made by [Admin.CreateTenant] (or belongs to another tenant):
// Admin refuses to drop it or change its password.
var ErrNotTenant = errors.New("tenant: not a tenant created by this admin")

// adminMaxConns bounds the admin's connection pool.
const adminMaxConns = 4

// Markers: the comments CreateTenant puts on a tenant's schema and role.
// Only the schema's owner (the admin) can comment on the schema, and only a
// role with CREATEROLE (PostgreSQL 16: with ADMIN OPTION on the role) can
// comment on a role, so a tenant cannot forge them.
const (
	schemaMarkerPrefix = "cloacina tenant schema: role="
	roleMarkerPrefix   = "cloacina tenant role: "
)

func schemaMarker(username string) string { return schemaMarkerPrefix + username }

func roleMarker(database, schema string) string {
	return roleMarkerPrefix + "database=" + database + " schema=" + schema
}

// Admin creates and removes tenants with their own PostgreSQL login roles,
// over an admin connection: a role with CREATEROLE (or a superuser) that
// may create schemas in the database.
//
// Each tenant is a schema owned by the admin role, holding the engine's
// tables, and a login role that may use them and nothing else:
//
//   - the role is LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT
//     NOREPLICATION NOBYPASSRLS, with CONNECT on the database;
//   - on its schema it has USAGE (not CREATE): it can neither create, alter
//     nor drop objects there;
//   - SELECT, INSERT, UPDATE and DELETE on the engine's tables, and SELECT
//     only on the migrations table (cloacina_migrations), so it cannot
//     fake or undo migrations; USAGE, SELECT and UPDATE on the sequences;
//   - the same by default on tables and sequences the admin role creates
//     later in the schema (ALTER DEFAULT PRIVILEGES), for later migrations;
//   - nothing on other schemas. Database-wide defaults are left alone:
//     PUBLIC keeps CONNECT and TEMPORARY on the database, and on
//     PostgreSQL 15 and later PUBLIC has no CREATE on the public schema
//     (on older servers, revoke it: REVOKE CREATE ON SCHEMA public FROM
//     PUBLIC).
//
// A runner started with a tenant's credentials only reads the migrations
// table of its up-to-date schema; it cannot apply migrations, so after an
// engine upgrade the admin applies them with [Admin.Migrate].
//
// The schema carries the comment "cloacina tenant schema: role=USERNAME"
// and the role "cloacina tenant role: database=DB schema=SCHEMA": that is
// how [Admin.ListTenants] finds tenants, and how [Admin.RemoveTenant],
// [Admin.RotatePassword] and [Admin.Migrate] make sure they only touch a
// tenant's schema and role. Schema and role names are tenant ids (see [ValidateID]).
//
// An Admin is safe for concurrent use. Close it when done.
type Admin struct {
	pool *pgxpool.Pool
	// db is pool seen through database/sql, for the transactions that
	// apply migrations with store.MigrateTx.
	db *sql.DB
	// base is the admin URL without its user and password: the base of
	// tenants' connection strings.
	base     *url.URL
	database string   // current_database()
	user     string   // the admin role
	secrets  []string // the admin password, to hide in errors
}

// TenantInfo describes a tenant found by [Admin.ListTenants].
type TenantInfo struct {
	Schema   string
	Username string
}

// NewAdmin connects to the database at adminURL, a postgres:// or
// postgresql:// URL of a role with CREATEROLE (or a superuser) that may
// create schemas in the database. Other URLs are refused with an error
// wrapping [cloacina.ErrUnsupportedDatabase]; a role lacking a privilege
// (see [Admin.CheckPrivileges]) with a [*PrivilegeError] naming it.
// Errors never contain the URL's password.
func NewAdmin(ctx context.Context, adminURL string) (*Admin, error) {
	if !strings.HasPrefix(adminURL, "postgres://") && !strings.HasPrefix(adminURL, "postgresql://") {
		return nil, fmt.Errorf("%w: tenant admin needs a postgres:// or postgresql:// URL, got %s",
			cloacina.ErrUnsupportedDatabase, cloacina.RedactURL(adminURL))
	}
	u, err := url.Parse(adminURL)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // *url.Error quotes the URL, password included
		}
		return nil, fmt.Errorf("tenant: admin URL %s: %w", cloacina.RedactURL(adminURL), err)
	}
	secret, _ := u.User.Password()
	cfg, err := pgxpool.ParseConfig(adminURL)
	if err != nil {
		return nil, redactError(fmt.Errorf("tenant: admin URL %s: %w", cloacina.RedactURL(adminURL), err), secret)
	}
	cfg.MaxConns = adminMaxConns
	base := *u
	base.User = nil
	// The password may also come from a password= parameter.
	a := &Admin{base: &base, secrets: []string{secret, cfg.ConnConfig.Password}}
	a.pool, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, a.redact(fmt.Errorf("tenant: connecting to %s: %w", cloacina.RedactURL(adminURL), err))
	}
	err = a.pool.QueryRow(ctx, `SELECT current_database(), current_user`).Scan(&a.database, &a.user)
	if err != nil {
		a.pool.Close()
		return nil, a.redact(fmt.Errorf("tenant: connecting to %s: %w", cloacina.RedactURL(adminURL), err))
	}
	if err := a.CheckPrivileges(ctx); err != nil {
		a.pool.Close()
		return nil, err
	}
	a.db = stdlib.OpenDBFromPool(a.pool)
	return a, nil
}

// CheckPrivileges checks that the admin role has what [Admin] needs, and
// returns a [*PrivilegeError] (wrapping [ErrMissingPrivilege]) naming the
// first privilege it lacks:
//
//   - CREATEROLE (or SUPERUSER), to create, alter and drop tenant roles;
//   - CREATE on the database, to create the tenants' schemas;
//   - CONNECT on the database (PUBLIC has it by default), which it grants
//     to each tenant role.
//
// Nothing else is needed: the admin owns the schemas it creates, and on
// PostgreSQL 16 and later a CREATEROLE role holds ADMIN OPTION on the
// roles it creates, which GrantTenantRole and RemoveTenant use. [NewAdmin]
// calls it.
func (a *Admin) CheckPrivileges(ctx context.Context) error {
	var super, createRole, createDB, connect bool
	err := a.pool.QueryRow(ctx, `SELECT rolsuper, rolcreaterole,
  has_database_privilege(current_database(), 'CREATE'), has_database_privilege(current_database(), 'CONNECT')
FROM pg_roles WHERE rolname = current_user`).Scan(&super, &createRole, &createDB, &connect)
	if err != nil {
		return a.redact(fmt.Errorf("tenant: checking the admin role's privileges: %w", err))
	}
	db := fmt.Sprintf("database %q", a.database)
	switch {
	case super:
		return nil
	case !createRole:
		return &PrivilegeError{Role: a.user, Privilege: "CREATEROLE",
			Why: "to create tenant roles: ALTER ROLE " + pgx.Identifier{a.user}.Sanitize() + " CREATEROLE"}
	case !createDB:
		return &PrivilegeError{Role: a.user, Privilege: "CREATE", On: db,
			Why: "to create tenant schemas: GRANT CREATE ON DATABASE " + pgx.Identifier{a.database}.Sanitize() + " TO " + pgx.Identifier{a.user}.Sanitize()}
	case !connect:
		return &PrivilegeError{Role: a.user, Privilege: "CONNECT", On: db,
			Why: "to let tenant roles connect: GRANT CONNECT ON DATABASE " + pgx.Identifier{a.database}.Sanitize() + " TO " + pgx.Identifier{a.user}.Sanitize()}
	}
	return nil
}

// Close closes the admin's connections.
func (a *Admin) Close() {
	_ = a.db.Close() // returns its connections to the pool; never fails
	a.pool.Close()
}

// CreateTenant creates a tenant: its login role, with cfg.Password or a
// generated password (see [GeneratePassword]), and its schema, migrated to
// the engine's current version and granted to the role as [Admin]
// describes. It all happens in one transaction: on any error nothing is
// left behind.
//
// An existing role or schema of the same name is an error wrapping
// [ErrTenantExists], and nothing changes. Invalid names are errors
// wrapping [cloacina.ErrInvalidTenantID], and an invalid password one
// wrapping [ErrInvalidPassword], returned before any SQL runs.
//
// The password never reaches the server: CreateTenant sends the
// SCRAM-SHA-256 verifier PostgreSQL stores, computed here, so the password
// cannot show in the server's logs (log_statement, pg_stat_statements) or
// be stored with a weaker method should password_encryption be md5.
//
// The returned ConnectionString is the admin URL (host, port, database and
// parameters) with the tenant's user name and password, less the
// parameters that carry the admin's own credentials (user, password,
// passfile, sslcert, sslkey, sslpassword).
func (a *Admin) CreateTenant(ctx context.Context, cfg TenantConfig) (*TenantCredentials, error) {
	if err := ValidateID(cfg.Schema, false); err != nil {
		return nil, fmt.Errorf("tenant: schema: %w", err)
	}
	if err := ValidateID(cfg.Username, false); err != nil {
		return nil, fmt.Errorf("tenant: username: %w", err)
	}
	password := cfg.Password
	if password == "" {
		var err error
		if password, err = GeneratePassword(); err != nil {
			return nil, err
		}
	} else if err := checkPassword(password); err != nil {
		return nil, err
	}
	verifier, err := newScramVerifier(password)
	if err != nil {
		return nil, err
	}
	creds := &TenantCredentials{
		Username:         cfg.Username,
		Password:         password,
		Schema:           cfg.Schema,
		ConnectionString: a.tenantURL(cfg.Username, password),
	}
	if err := a.createTenant(ctx, cfg.Schema, cfg.Username, verifier); err != nil {
		return nil, redactError(a.redact(err), password, verifier)
	}
	return creds, nil
}

func (a *Admin) createTenant(ctx context.Context, schema, username, verifier string) (err error) {
	role := pgx.Identifier{username}.Sanitize()
	sch := pgx.Identifier{schema}.Sanitize()
	tx, err := a.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("tenant: creating tenant %s: %w", schema, err)
	}
	defer func() {
		if err != nil {
			// The rollback undoes everything; should it fail, the
			// connection is closed, which aborts the transaction all the
			// same.
			_ = tx.Rollback()
		}
	}()

	_, err = tx.ExecContext(ctx, "CREATE ROLE "+role+" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT"+
		" NOREPLICATION NOBYPASSRLS PASSWORD "+sqlLiteral(verifier))
	if isDuplicate(err) {
		return fmt.Errorf("%w: role %q exists", ErrTenantExists, username)
	}
	if err != nil {
		return fmt.Errorf("tenant: creating role %s: %w", username, err)
	}
	_, err = tx.ExecContext(ctx, "CREATE SCHEMA "+sch)
	if isDuplicate(err) {
		return fmt.Errorf("%w: schema %q exists", ErrTenantExists, schema)
	}
	if err != nil {
		return fmt.Errorf("tenant: creating schema %s: %w", schema, err)
	}
	if _, err = store.MigrateTx(ctx, tx, schema); err != nil {
		return fmt.Errorf("tenant: migrating schema %s: %w", schema, err)
	}
	for _, q := range []string{
		"COMMENT ON ROLE " + role + " IS " + sqlLiteral(roleMarker(a.database, schema)),
		"COMMENT ON SCHEMA " + sch + " IS " + sqlLiteral(schemaMarker(username)),
	} {
		if _, err = tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("tenant: creating tenant %s: %s: %w", schema, firstWords(q), err)
		}
	}
	if err = a.grant(ctx, tx, schema, username); err != nil {
		return err
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("tenant: creating tenant %s: commit: %w", schema, err)
	}
	return nil
}

// grant gives the tenant role its privileges on its schema (see [Admin]).
// Granting again changes nothing, so Migrate repeats it for the tables a
// migration adds, whichever admin role applies it.
func (a *Admin) grant(ctx context.Context, tx *sql.Tx, schema, username string) error {
	role := pgx.Identifier{username}.Sanitize()
	sch := pgx.Identifier{schema}.Sanitize()
	for _, q := range []string{
		// PUBLIC has CONNECT by default; granting it to the role keeps the
		// tenant working where a database revoked it from PUBLIC. (Without
		// the right to grant it, PostgreSQL only warns.)
		"GRANT CONNECT ON DATABASE " + pgx.Identifier{a.database}.Sanitize() + " TO " + role,
		"GRANT USAGE ON SCHEMA " + sch + " TO " + role,
		"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA " + sch + " TO " + role,
		"REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON " + sch + ".cloacina_migrations FROM " + role,
		"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA " + sch + " TO " + role,
		"ALTER DEFAULT PRIVILEGES IN SCHEMA " + sch + " GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO " + role,
		"ALTER DEFAULT PRIVILEGES IN SCHEMA " + sch + " GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO " + role,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("tenant: granting tenant %s: %s: %w", schema, firstWords(q), err)
		}
	}
	return nil
}

// Analyze refreshes the planner statistics of a tenant schema's executions
// and tasks tables. The admin owns them; a tenant's role, which may not
// ANALYZE them, has a SecureManager call this instead.
func (a *Admin) Analyze(ctx context.Context, schema string) error {
	if err := ValidateID(schema, false); err != nil {
		return fmt.Errorf("tenant: schema: %w", err)
	}
	q := "ANALYZE " + pgx.Identifier{schema, "executions"}.Sanitize() + ", " + pgx.Identifier{schema, "tasks"}.Sanitize()
	if _, err := a.db.ExecContext(ctx, q); err != nil {
		return a.redact(fmt.Errorf("tenant: analyzing %s: %w", schema, err))
	}
	return nil
}

// Migrate applies the engine's pending migrations to a tenant's schema, as
// the admin role, and grants the tenant role the tables they add; it
// returns how many migrations it applied. A runner started with a
// tenant's credentials cannot apply migrations itself (it fails with
// [cloacina.ErrMigrationRequired]): run Migrate for every tenant (see
// [Admin.ListTenants]) after upgrading the engine.
//
// An unknown schema is an error wrapping [ErrTenantNotFound], a schema
// that is not a tenant's one wrapping [ErrNotTenant].
func (a *Admin) Migrate(ctx context.Context, schema string) (n int, err error) {
	if err := ValidateID(schema, false); err != nil {
		return 0, fmt.Errorf("tenant: schema: %w", err)
	}
	tx, err := a.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, a.redact(fmt.Errorf("tenant: migrating %s: %w", schema, err))
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	var ownedByAdmin bool
	var comment string
	err = tx.QueryRowContext(ctx, `SELECT pg_get_userbyid(nspowner) = current_user,
  coalesce(obj_description(oid, 'pg_namespace'), '')
FROM pg_namespace WHERE nspname = $1`, schema).Scan(&ownedByAdmin, &comment)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("%w: schema %q does not exist", ErrTenantNotFound, schema)
	}
	if err != nil {
		return 0, a.redact(fmt.Errorf("tenant: migrating %s: %w", schema, err))
	}
	username, marked := strings.CutPrefix(comment, schemaMarkerPrefix)
	if !ownedByAdmin || !marked || ValidateID(username, false) != nil {
		return 0, fmt.Errorf("%w: schema %q is not a tenant schema of admin role %q", ErrNotTenant, schema, a.user)
	}
	if n, err = store.MigrateTx(ctx, tx, schema); err != nil {
		return 0, a.redact(fmt.Errorf("tenant: migrating %s: %w", schema, err))
	}
	if err = a.grant(ctx, tx, schema, username); err != nil {
		return 0, a.redact(err)
	}
	if err = tx.Commit(); err != nil {
		return 0, a.redact(fmt.Errorf("tenant: migrating %s: commit: %w", schema, err))
	}
	return n, nil
}

// RemoveTenant deletes a tenant: its schema with all of its data, then
// what its role owns or was granted in this database, then the role.
// Removing a tenant that is already gone (or partly gone) is not an error.
//
// A schema that exists but is not the tenant schema of username (not
// owned by the admin role, or without the marker naming username), or a
// role that exists but is not the tenant role of schema in this database,
// is refused with an error wrapping [ErrNotTenant], before anything is
// dropped.
//
// Each step is tried even when an earlier one fails, and every failure is
// reported (joined). A role with privileges or objects in other databases
// cannot be dropped from here. Sessions of the role are not ended; stop
// the tenant's runners first (dropping the schema waits for their open
// transactions).
//
// A non-superuser admin that does not have the privileges of the role
// cannot DROP OWNED BY it; it then revokes the CONNECT privilege it granted
// instead, which, the schema being gone, is all a tenant role holds.
func (a *Admin) RemoveTenant(ctx context.Context, schema, username string) error {
	if err := ValidateID(schema, false); err != nil {
		return fmt.Errorf("tenant: schema: %w", err)
	}
	if err := ValidateID(username, false); err != nil {
		return fmt.Errorf("tenant: username: %w", err)
	}
	schemaExists, err := a.checkSchema(ctx, schema, username)
	if err != nil {
		return a.redact(err)
	}
	roleExists, err := a.checkRole(ctx, username, roleMarker(a.database, schema))
	if err != nil {
		return a.redact(err)
	}
	role := pgx.Identifier{username}.Sanitize()
	var errs []error
	if schemaExists {
		if _, err := a.pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			errs = append(errs, fmt.Errorf("tenant: dropping schema %s: %w", schema, err))
		}
	}
	if roleExists {
		var actsAs bool
		err := a.pool.QueryRow(ctx, `SELECT pg_has_role(current_user, $1::name, 'USAGE')`, username).Scan(&actsAs)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("tenant: role %s: %w", username, err))
		case actsAs:
			if _, err := a.pool.Exec(ctx, "DROP OWNED BY "+role); err != nil {
				errs = append(errs, fmt.Errorf("tenant: dropping what role %s owns: %w", username, err))
			}
		default:
			if _, err := a.pool.Exec(ctx, "REVOKE CONNECT ON DATABASE "+pgx.Identifier{a.database}.Sanitize()+" FROM "+role); err != nil {
				errs = append(errs, fmt.Errorf("tenant: revoking CONNECT from role %s: %w", username, err))
			}
		}
		if _, err := a.pool.Exec(ctx, "DROP ROLE IF EXISTS "+role); err != nil {
			errs = append(errs, fmt.Errorf("tenant: dropping role %s: %w", username, err))
		}
	}
	return a.redact(errors.Join(errs...))
}

// checkSchema reports whether schema exists, and refuses one that is not
// the tenant schema of username.
func (a *Admin) checkSchema(ctx context.Context, schema, username string) (bool, error) {
	var ownedByAdmin bool
	var comment string
	err := a.pool.QueryRow(ctx, `SELECT pg_get_userbyid(nspowner) = current_user,
  coalesce(obj_description(oid, 'pg_namespace'), '')
FROM pg_namespace WHERE nspname = $1`, schema).Scan(&ownedByAdmin, &comment)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("tenant: schema %s: %w", schema, err)
	}
	if !ownedByAdmin || comment != schemaMarker(username) {
		return false, fmt.Errorf("%w: schema %q is not the tenant schema of role %q", ErrNotTenant, schema, username)
	}
	return true, nil
}

// checkRole reports whether the role exists, and refuses one whose marker
// is not marker.
func (a *Admin) checkRole(ctx context.Context, username, marker string) (bool, error) {
	return a.checkRoleMarker(ctx, username, func(c string) bool { return c == marker })
}

// checkRoleMarker reports whether the role exists, and refuses one whose
// comment ok rejects.
func (a *Admin) checkRoleMarker(ctx context.Context, username string, ok func(comment string) bool) (bool, error) {
	var comment string
	err := a.pool.QueryRow(ctx, `SELECT coalesce(shobj_description(oid, 'pg_authid'), '')
FROM pg_roles WHERE rolname = $1`, username).Scan(&comment)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("tenant: role %s: %w", username, err)
	}
	if !ok(comment) {
		return false, fmt.Errorf("%w: role %q is not a tenant role of database %q", ErrNotTenant, username, a.database)
	}
	return true, nil
}

// RotatePassword sets a tenant role's password to password, or to a
// generated one when password is empty, and returns it. New connections
// must use it at once; open sessions are not ended. Other roles are
// untouched.
//
// An unknown role is an error wrapping [ErrTenantNotFound], a role that is
// not a tenant role of this database one wrapping [ErrNotTenant]. As in
// CreateTenant, only a SCRAM-SHA-256 verifier of the password is sent.
func (a *Admin) RotatePassword(ctx context.Context, username, password string) (string, error) {
	if err := ValidateID(username, false); err != nil {
		return "", fmt.Errorf("tenant: username: %w", err)
	}
	if password == "" {
		var err error
		if password, err = GeneratePassword(); err != nil {
			return "", err
		}
	} else if err := checkPassword(password); err != nil {
		return "", err
	}
	verifier, err := newScramVerifier(password)
	if err != nil {
		return "", err
	}
	prefix := roleMarkerPrefix + "database=" + a.database + " schema="
	exists, err := a.checkRoleMarker(ctx, username, func(c string) bool { return strings.HasPrefix(c, prefix) })
	if err != nil {
		return "", redactError(a.redact(err), password, verifier)
	}
	if !exists {
		return "", fmt.Errorf("%w: role %q does not exist", ErrTenantNotFound, username)
	}
	if _, err := a.pool.Exec(ctx, "ALTER ROLE "+pgx.Identifier{username}.Sanitize()+" PASSWORD "+sqlLiteral(verifier)); err != nil {
		return "", redactError(a.redact(fmt.Errorf("tenant: changing the password of role %s: %w", username, err)), password, verifier)
	}
	return password, nil
}

// ListTenants lists the tenants of the database, sorted by schema: the
// schemas owned by the admin role whose comment is the marker
// CreateTenant sets, "cloacina tenant schema: role=USERNAME". Schemas made
// otherwise (by a runner, or by another role) are not listed.
func (a *Admin) ListTenants(ctx context.Context) ([]TenantInfo, error) {
	rows, err := a.pool.Query(ctx, `SELECT n.nspname, d.description
FROM pg_namespace n
JOIN pg_description d ON d.objoid = n.oid AND d.classoid = 'pg_namespace'::regclass AND d.objsubid = 0
WHERE pg_get_userbyid(n.nspowner) = current_user AND starts_with(d.description, $1)
ORDER BY n.nspname`, schemaMarkerPrefix)
	if err != nil {
		return nil, a.redact(fmt.Errorf("tenant: listing tenants: %w", err))
	}
	type row struct{ Schema, Comment string }
	found, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
	if err != nil {
		return nil, a.redact(fmt.Errorf("tenant: listing tenants: %w", err))
	}
	out := []TenantInfo{}
	for _, r := range found {
		username := strings.TrimPrefix(r.Comment, schemaMarkerPrefix)
		if ValidateID(username, false) != nil || ValidateID(r.Schema, false) != nil {
			continue // not a marker CreateTenant wrote
		}
		out = append(out, TenantInfo{Schema: r.Schema, Username: username})
	}
	return out, nil
}

// tenantURL is the admin URL with the tenant's credentials instead of the
// admin's.
func (a *Admin) tenantURL(username, password string) string {
	u := *a.base
	u.User = url.UserPassword(username, password)
	if u.RawQuery != "" {
		q := u.Query()
		changed := false
		for k := range q {
			switch strings.ToLower(k) {
			case "user", "password", "passfile", "sslcert", "sslkey", "sslpassword":
				q.Del(k)
				changed = true
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	return u.String()
}

// redact hides the admin password should it appear in err's message.
func (a *Admin) redact(err error) error { return redactError(err, a.secrets...) }

// sqlState returns err's SQLSTATE, or "".
func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// isDuplicate reports whether CREATE ROLE or CREATE SCHEMA failed because
// the name is taken: duplicate_object (42710) or duplicate_schema (42P06),
// or unique_violation (23505) on the catalog's index when a concurrent
// transaction created the same name first.
func isDuplicate(err error) bool {
	switch sqlState(err) {
	case "42710", "42P06", "23505":
		return true
	}
	return false
}

// firstWords names a statement in an error by its first words, leaving out
// any literal.
func firstWords(q string) string {
	if i := strings.IndexAny(q, `'"`); i >= 0 {
		q = q[:i]
	}
	return strings.TrimSpace(q)
}

// redactError is [redact.Error]: err with every secret removed from its
// message where it stands as a password, and SCRAM verifiers wherever
// they appear.
func redactError(err error, secrets ...string) error { return redact.Error(err, secrets...) }

// GrantTenantRole makes member (a service role, such as the user of a
// [SecureManager]'s shared pool) a member of the tenant role username, so
// that member may SET ROLE to it (see [cloacina.WithTenantRole]). On
// PostgreSQL 16 and later the membership is granted WITH INHERIT FALSE,
// SET TRUE: member gains none of the tenant's privileges outside SET ROLE.
// On older servers that holds when member is NOINHERIT; otherwise member
// inherits the privileges of every tenant role it is granted.
// Granting twice changes nothing.
//
// An unknown role is an error wrapping [ErrTenantNotFound], a role that is
// not a tenant role of this database one wrapping [ErrNotTenant].
func (a *Admin) GrantTenantRole(ctx context.Context, username, member string) error {
	if err := ValidateID(username, false); err != nil {
		return fmt.Errorf("tenant: username: %w", err)
	}
	if member == "" || len(member) > MaxIDLength || strings.ContainsRune(member, 0) {
		return fmt.Errorf("%w: member role %s", cloacina.ErrInvalidOption, quoteID(member))
	}
	prefix := roleMarkerPrefix + "database=" + a.database + " schema="
	exists, err := a.checkRoleMarker(ctx, username, func(c string) bool { return strings.HasPrefix(c, prefix) })
	if err != nil {
		return a.redact(err)
	}
	if !exists {
		return fmt.Errorf("%w: role %q does not exist", ErrTenantNotFound, username)
	}
	var version int
	if err := a.pool.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		return a.redact(fmt.Errorf("tenant: granting role %s: %w", username, err))
	}
	q := "GRANT " + pgx.Identifier{username}.Sanitize() + " TO " + pgx.Identifier{member}.Sanitize()
	if version >= 160000 {
		q += " WITH INHERIT FALSE, SET TRUE"
	}
	if _, err := a.pool.Exec(ctx, q); err != nil {
		return a.redact(fmt.Errorf("tenant: granting role %s to %s: %w", username, member, err))
	}
	return nil
}
