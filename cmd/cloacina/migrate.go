package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/server/apikey"
	"github.com/cloacina-go/cloacina/tenant"
)

// migration is what migrate did to one tenant (or the key store).
type migration struct {
	Tenant string `json:"tenant,omitempty"`
	Where  string `json:"where"`
	// Applied counts the migrations applied, when known (nil, and no
	// "applied" in JSON, when not).
	Applied *int   `json:"applied,omitempty"`
	Result  string `json:"result"`
}

func (a *app) migrateCmd() *cobra.Command {
	var (
		sf       storageFlags
		tenantID string
		output   string
	)
	cmd := &cobra.Command{
		Use:   "migrate [--database-url URL | --data-dir DIR] [--tenant TENANT] [--tenant-roles]",
		Short: "Bring every tenant's tables up to this version's schema (directly, not through a server)",
		Long: `Apply the engine's pending migrations to every tenant's storage (or one
tenant's, with --tenant), and create the API key table, working on the
database directly.

SQLite (--data-dir): opens each <tenant>.db file, which migrates it.
PostgreSQL (--database-url): opens each tenant schema, which migrates it.
PostgreSQL with --tenant-roles: applies the migrations as the admin role
(tenant.Admin.Migrate) and grants the tenant roles the new tables: run it
after upgrading, since a tenant's own role cannot migrate.

No task runs meanwhile. Run it while no server is running on an older
version.`,
		Example: `  cloacina migrate                       # ./cloacina-data
  cloacina migrate --database-url "$DATABASE_URL" --tenant-roles
  cloacina migrate --database-url "$DATABASE_URL" --tenant acme -o json`,
		Args: noArgs,
	}
	sf.add(cmd)
	tenantFlag(cmd, &tenantID)
	cmd.Flag("tenant").Usage = "only this tenant (default: every tenant) [$CLOACINA_TENANT]"
	cmd.Flags().StringVarP(&output, "output", "o", formatText, "output format: text or json")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := a.refuseVars("cloacina migrate", singleTenantVars(), singleTenantWhy("cloacina migrate")); err != nil {
			return err
		}
		if err := sf.check(); err != nil {
			return err
		}
		out := printer{w: cmd.OutOrStdout(), format: output}
		if output != formatText && output != formatJSON {
			return usagef("-o %q: want text or json", output)
		}
		done, err := sf.migrate(cmd.Context(), tenantID)
		if err != nil && len(done) == 0 {
			return err
		}
		if perr := out.print(map[string]any{"migrations": done}, func(w io.Writer) {
			row(w, "TENANT", "WHERE", "APPLIED", "RESULT")
			for _, m := range done {
				applied := "-"
				if m.Applied != nil {
					applied = fmt.Sprint(*m.Applied)
				}
				row(w, orDash(m.Tenant), m.Where, applied, m.Result)
			}
		}); perr != nil {
			return errors.Join(err, perr)
		}
		return err
	}
	return cmd
}

// migrate migrates the tenants (all, or tenantID) and the key store, and
// returns what it did, stopping at the first error.
func (sf *storageFlags) migrate(ctx context.Context, tenantID string) ([]migration, error) {
	var (
		done []migration
		err  error
	)
	switch {
	case sf.databaseURL == "":
		done, err = sf.migrateSQLite(ctx, tenantID)
	case sf.tenantRoles:
		done, err = sf.migrateSecure(ctx, tenantID)
	default:
		done, err = sf.migrateSchemas(ctx, tenantID)
	}
	if err != nil {
		return done, err
	}
	keysURL, err := sf.keyStoreURL()
	if err != nil {
		return done, err
	}
	keys, err := apikey.Open(ctx, keysURL)
	if err != nil {
		return done, fmt.Errorf("API key store: %w", err)
	}
	if err := keys.Close(); err != nil {
		return done, fmt.Errorf("API key store: %w", err)
	}
	return append(done, migration{Where: "API keys: " + cloacina.RedactURL(keysURL), Result: "up to date"}), nil
}

// quietLogger drops the engine's info logs while migrating.
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// pick returns the tenants to migrate: tenantID alone (checked to exist),
// or every tenant listed.
func pick(ctx context.Context, tenantID string, list func(context.Context) ([]string, error), exists func(context.Context, string) (bool, error)) ([]string, error) {
	if tenantID == "" {
		return list(ctx)
	}
	ok, err := exists(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("tenant %q not found", tenantID)
	}
	return []string{tenantID}, nil
}

// migrateSQLite opens every tenant file through a SQLite manager, which
// migrates it.
func (sf *storageFlags) migrateSQLite(ctx context.Context, tenantID string) ([]migration, error) {
	if _, err := os.Stat(sf.dataDir); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("--data-dir %s does not exist: nothing to migrate", sf.dataDir)
	}
	// No start scan (which would open the tenants with unfinished work,
	// and which enqueue-only runners skip anyway) and no idle closing:
	// migrate opens the tenants it migrates, one after the other, and
	// closes them all at the end.
	m, err := tenant.NewSQLiteManagerWithConfig(sf.dataDir, tenant.SQLiteConfig{NoResume: true, IdleTimeout: -1},
		cloacina.WithEnqueueOnly(), cloacina.WithLogger(quietLogger()))
	if err != nil {
		return nil, err
	}
	defer m.Close(context.WithoutCancel(ctx))
	if tenantID != "" {
		if err := tenant.ValidateID(tenantID, true); err != nil {
			return nil, err
		}
	}
	ids, err := pick(ctx, tenantID, m.Tenants, m.Exists)
	if err != nil {
		return nil, err
	}
	var done []migration
	for _, id := range ids {
		path, _ := m.Path(id)
		if _, err := m.Runner(ctx, id); err != nil {
			return done, err
		}
		done = append(done, migration{Tenant: id, Where: path, Result: "up to date"})
	}
	return done, nil
}

// migrateSchemas attaches every tenant schema to an engine that runs no
// task, which migrates it.
func (sf *storageFlags) migrateSchemas(ctx context.Context, tenantID string) ([]migration, error) {
	if tenantID != "" {
		if err := tenant.ValidateID(tenantID, false); err != nil {
			return nil, err
		}
	}
	e, err := cloacina.NewEngine(ctx, sf.databaseURL, cloacina.WithEnqueueOnly(), cloacina.WithLogger(quietLogger()), cloacina.WithoutListen())
	if err != nil {
		return nil, err
	}
	defer e.Shutdown(context.WithoutCancel(ctx))
	list := func(ctx context.Context) ([]string, error) {
		schemas, err := e.Schemas(ctx)
		var ids []string
		for _, s := range schemas {
			if tenant.ValidateID(s, false) == nil {
				ids = append(ids, s)
			}
		}
		return ids, err
	}
	ids, err := pick(ctx, tenantID, list, e.SchemaExists)
	if err != nil {
		return nil, err
	}
	var done []migration
	for _, id := range ids {
		if _, err := e.Runner(ctx, id); err != nil {
			return done, fmt.Errorf("tenant %q: %w", id, err)
		}
		done = append(done, migration{Tenant: id, Where: "schema " + id, Result: "up to date"})
	}
	return done, nil
}

// migrateSecure applies the migrations of every tenant schema as the
// admin role (the tenants' roles may not).
func (sf *storageFlags) migrateSecure(ctx context.Context, tenantID string) ([]migration, error) {
	admin, err := tenant.NewAdmin(ctx, sf.databaseURL)
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	infos, err := admin.ListTenants(ctx)
	if err != nil {
		return nil, err
	}
	var done []migration
	for _, ti := range infos {
		id, _ := strings.CutPrefix(ti.Schema, tenant.SecureSchemaPrefix)
		if tenantID != "" && id != tenantID {
			continue
		}
		n, err := admin.Migrate(ctx, ti.Schema)
		if err != nil {
			return done, err
		}
		done = append(done, migration{Tenant: id, Where: "schema " + ti.Schema + ", role " + ti.Username, Applied: &n, Result: "up to date"})
	}
	if tenantID != "" && len(done) == 0 {
		return nil, fmt.Errorf("tenant %q not found (no schema %s%s made by the admin role)", tenantID, tenant.SecureSchemaPrefix, tenantID)
	}
	return done, nil
}
