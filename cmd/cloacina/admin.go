package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cloacina-go/cloacina/client"
)

// tenantCmd groups the tenant commands (admin key).
func (a *app) tenantCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "tenant",
		Aliases: []string{"tenants"},
		Short:   "Create, list and delete tenants (admin key)",
		Args:    noArgs,
	}
	cf := a.clientFlags(cmd)
	create := &cobra.Command{
		Use:     "create TENANT",
		Short:   "Create a tenant: its SQLite file or PostgreSQL schema (and role)",
		Example: "  cloacina tenant create acme",
		Args:    exactArgs(1, "one tenant id"),
		RunE: cf.clientRunE(func(ctx context.Context, s session, args []string) error {
			t, err := s.c.CreateTenant(ctx, args[0])
			if err != nil {
				return err
			}
			return s.out.print(t, func(w io.Writer) {
				row(w, "TENANT", "CREATED")
				row(w, t.TenantID, ts(t.CreatedAt))
			})
		}),
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the tenants",
		Args:  noArgs,
		RunE: cf.clientRunE(func(ctx context.Context, s session, _ []string) error {
			ts, err := s.c.ListTenants(ctx)
			if err != nil {
				return err
			}
			return s.out.print(map[string]any{"tenants": ts}, func(w io.Writer) {
				row(w, "TENANT")
				for _, t := range ts {
					row(w, t.TenantID)
				}
			})
		}),
	}
	var (
		delTimeout time.Duration
		delYes     bool
	)
	del := &cobra.Command{
		Use:   "delete TENANT [--yes] [--timeout DURATION]",
		Short: "Delete a tenant: stop its work, revoke its keys, remove its data",
		Long: `Delete a tenant: stop its work, revoke its keys, remove its data.

A tenant with work in progress (active executions or running tasks) is
deleted only after confirmation: the command asks when standard input is a
terminal, and otherwise refuses (exit 1) unless --yes.

The server may take a while: it revokes the tenant's keys, tells its running
tasks to stop and gives them its --tenant-delete-grace (10s by default),
then removes the data, even if some have not stopped. Only when the
removal cannot even start within the grace (another operation on the
tenant holds it) does it answer 503 unavailable: the tenant is not
deleted yet (its keys are revoked), and running the command again
finishes it.

--timeout bounds the request: keep it above the server's grace. When it
ends without an answer (or the connection is lost), the command asks the
server whether the tenant still exists and says what happened: deleted
(exit 0), or still there, its deletion perhaps still under way (exit 1).`,
		Example: `  cloacina tenant delete acme
  cloacina tenant delete acme --yes --timeout 2m`,
		Args: exactArgs(1, "one tenant id"),
		RunE: cf.clientRunE(func(ctx context.Context, s session, args []string) error {
			if delTimeout <= 0 {
				return usagef("--timeout %v: want a positive duration", delTimeout)
			}
			return a.deleteTenant(ctx, s, cf, args[0], delTimeout, delYes)
		}),
	}
	del.Flags().DurationVar(&delTimeout, "timeout", requestTimeout, "how long to wait for the server to delete the tenant (keep it above the server's --tenant-delete-grace)")
	del.Flags().BoolVarP(&delYes, "yes", "y", false, "delete without asking, even a tenant with work in progress")
	rotate := &cobra.Command{
		Use:   "rotate-password TENANT",
		Short: "Give the tenant's database role a new password (server with --tenant-roles)",
		Args:  exactArgs(1, "one tenant id"),
		RunE: cf.clientRunE(func(ctx context.Context, s session, args []string) error {
			r, err := s.c.RotatePassword(ctx, args[0])
			if err != nil {
				return err
			}
			return s.out.print(r, func(w io.Writer) {
				row(w, "TENANT", "ROLE", "ROTATED")
				row(w, r.TenantID, r.Username, ts(r.RotatedAt))
			})
		}),
	}
	cmd.AddCommand(create, list, del, rotate, a.keysSubcommands(cf, &cobra.Command{
		Use:   "keys",
		Short: "Create, list and revoke API keys (same as cloacina keys)",
		Args:  noArgs,
	}))
	return cmd
}

// keysCmd groups the API key commands (admin key).
func (a *app) keysCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "keys",
		Aliases: []string{"key"},
		Short:   "Create, list and revoke a tenant's API keys or the admin keys (admin key)",
		Args:    noArgs,
	}
	return a.keysSubcommands(a.clientFlags(cmd), cmd)
}

// keysSubcommands adds create, list and delete (alias revoke) to parent.
// Each works on a tenant's keys (--tenant) or on the stored admin keys
// (--admin).
func (a *app) keysSubcommands(cf *clientFlags, parent *cobra.Command) *cobra.Command {
	var (
		tenantID   string
		admin      bool
		name, role string
	)
	create := &cobra.Command{
		Use:   "create (--tenant TENANT --role read|write | --admin) [--name NAME]",
		Short: "Create an API key, a tenant's or an admin key; its secret is shown only now",
		Example: `  cloacina keys create --tenant acme --role write --name ci
  export CLOACINA_API_KEY=$(cloacina keys create --tenant acme --role read -o json | jq -r .key)
  cloacina keys create --admin --name ops-2026     # another admin key (to rotate one)`,
		Args: noArgs,
		RunE: cf.clientRunE(func(ctx context.Context, s session, _ []string) error {
			isAdmin, err := keyScope(s.cmd, tenantID, admin)
			if err != nil {
				return err
			}
			var k *client.Key
			if isAdmin {
				if s.cmd.Flags().Changed("role") {
					return usagef("--role goes with --tenant: an admin key may do anything")
				}
				k, err = s.c.CreateAdminKey(ctx, name)
			} else {
				if role != client.RoleRead && role != client.RoleWrite {
					return usagef("--role %q: want read or write", role)
				}
				k, err = s.c.CreateKey(ctx, tenantID, name, role)
			}
			if err != nil {
				return err
			}
			return s.out.print(k, func(w io.Writer) {
				row(w, "KEY ID", "TENANT", "NAME", "ROLE")
				row(w, k.KeyID, orDash(k.TenantID), orDash(k.Name), k.Role)
				fmt.Fprintf(w, "\nkey (shown only once): %s\n", k.Secret)
			})
		}),
	}
	create.Flags().StringVar(&name, "name", "", "a name to tell the key by")
	create.Flags().StringVar(&role, "role", "", "with --tenant: read (GET routes) or write (also starts, cancels...) (required)")

	list := &cobra.Command{
		Use:   "list (--tenant TENANT | --admin)",
		Short: "List a tenant's API keys, or the stored admin keys (never their secrets)",
		Args:  noArgs,
		RunE: cf.clientRunE(func(ctx context.Context, s session, _ []string) error {
			isAdmin, err := keyScope(s.cmd, tenantID, admin)
			if err != nil {
				return err
			}
			var keys []client.Key
			if isAdmin {
				keys, err = s.c.ListAdminKeys(ctx)
			} else {
				keys, err = s.c.ListKeys(ctx, tenantID)
			}
			if err != nil {
				return err
			}
			return s.out.print(map[string]any{"keys": keys}, func(w io.Writer) {
				row(w, "KEY ID", "NAME", "ROLE", "CREATED", "LAST USED")
				for _, k := range keys {
					row(w, k.KeyID, orDash(k.Name), k.Role, ts(k.CreatedAt), ts(k.LastUsedAt))
				}
			})
		}),
	}

	del := &cobra.Command{
		Use:     "delete KEY_ID (--tenant TENANT | --admin)",
		Aliases: []string{"revoke"},
		Short:   "Delete (revoke) an API key; it stops working at once",
		Long: `Delete (revoke) an API key; it stops working at once.

With --admin it revokes a stored admin key, such as the one serve generated
at its first start. A key cannot revoke itself (the server answers 409
key_in_use): revoke it with another admin key (cloacina keys create --admin
makes one, or use the server's --admin-key).`,
		Example: `  cloacina keys delete 3f2a9c0d1e4b5a6f --tenant acme
  cloacina keys revoke --admin 65701ab8ff833c70`,
		Args: exactArgs(1, "one key id"),
		RunE: cf.clientRunE(func(ctx context.Context, s session, args []string) error {
			isAdmin, err := keyScope(s.cmd, tenantID, admin)
			if err != nil {
				return err
			}
			what := "key " + args[0]
			if isAdmin {
				what = "admin key " + args[0]
				err = s.c.DeleteAdminKey(ctx, args[0])
			} else {
				err = s.c.DeleteKey(ctx, tenantID, args[0])
			}
			if client.ErrorCode(err) == codeKeyInUse {
				return fmt.Errorf("%s is the key this command uses (--api-key or CLOACINA_API_KEY), and a key cannot revoke itself: "+
					"revoke it with another admin key (cloacina keys create --admin makes one): %w", what, err)
			}
			if err != nil {
				return err
			}
			return s.out.print(map[string]any{"key_id": args[0], "admin": isAdmin, "deleted": true}, func(w io.Writer) {
				fmt.Fprintf(w, "%s deleted\n", what)
			})
		}),
	}
	del.ValidArgsFunction = a.completeKeyID
	for _, c := range []*cobra.Command{create, list, del} {
		tenantFlag(c, &tenantID)
		c.Flag("tenant").Usage = "tenant id (required unless --admin) [$CLOACINA_TENANT]"
		c.Flags().BoolVar(&admin, "admin", false, "the stored admin keys instead of a tenant's (not with --tenant)")
	}
	parent.AddCommand(create, list, del)
	return parent
}

// codeKeyInUse is the server's error code for a key that would revoke
// itself.
const codeKeyInUse = "key_in_use"

// keyScope checks --admin and --tenant, and reports whether the command
// works on the admin keys. --tenant given on the command line does not go
// with --admin; one from CLOACINA_TENANT (often in a .env file) is
// ignored by --admin.
func keyScope(cmd *cobra.Command, tenantID string, admin bool) (bool, error) {
	switch {
	case admin && cmd.Flags().Changed("tenant"):
		return false, usagef("--admin and --tenant do not go together: --admin works on the admin keys, --tenant on one tenant's keys")
	case admin:
		return true, nil
	case tenantID == "":
		return false, usagef("--tenant is required (or set CLOACINA_TENANT), or --admin for the admin keys")
	}
	return false, nil
}

// workflowsCmd groups the workflow commands (any key).
func (a *app) workflowsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "workflows",
		Aliases: []string{"workflow", "wf"},
		Short:   "List the server's workflows and draw them",
		Args:    noArgs,
	}
	cf := a.clientFlags(cmd)
	list := &cobra.Command{
		Use:   "list",
		Short: "List the workflows with their tasks",
		Args:  noArgs,
		RunE: cf.clientRunE(func(ctx context.Context, s session, _ []string) error {
			wfs, err := s.c.Workflows(ctx)
			if err != nil {
				return err
			}
			return s.out.print(map[string]any{"workflows": wfs}, func(w io.Writer) {
				row(w, "WORKFLOW", "VERSION", "TASKS")
				for _, wf := range wfs {
					names := make([]string, len(wf.Tasks))
					for i, t := range wf.Tasks {
						names[i] = t.Name
					}
					row(w, wf.Name, wf.Version, strings.Join(names, ", "))
				}
			})
		}),
	}
	get := &cobra.Command{
		Use:   "get NAME",
		Short: "Show a workflow's tasks and dependencies",
		Args:  exactArgs(1, "one workflow name"),
		RunE: cf.clientRunE(func(ctx context.Context, s session, args []string) error {
			wf, err := s.c.Workflow(ctx, args[0])
			if err != nil {
				return err
			}
			return s.out.print(wf, func(w io.Writer) {
				row(w, "workflow", wf.Name)
				row(w, "version", wf.Version)
				if wf.Description != "" {
					row(w, "about", oneLine(wf.Description, 200))
				}
				io.WriteString(w, "\n")
				row(w, "TASK", "DEPENDS ON", "DESCRIPTION")
				for _, t := range wf.Tasks {
					row(w, t.Name, orDash(strings.Join(t.DependsOn, ", ")), orDash(oneLine(t.Description, 80)))
				}
			})
		}),
	}
	var format string
	graph := &cobra.Command{
		Use:     "graph NAME [--format mermaid|dot]",
		Short:   "Print a workflow's graph as Mermaid or Graphviz DOT text",
		Example: "  cloacina workflows graph etl --format dot | dot -Tsvg > etl.svg",
		Args:    exactArgs(1, "one workflow name"),
		RunE: cf.clientRunE(func(ctx context.Context, s session, args []string) error {
			if format != client.FormatMermaid && format != client.FormatDOT {
				return usagef("--format %q: want mermaid or dot", format)
			}
			text, err := s.c.WorkflowGraph(ctx, args[0], format)
			if err != nil {
				return err
			}
			if s.out.json() {
				return s.out.print(map[string]string{"name": args[0], "format": format, "graph": text}, nil)
			}
			// Not through the table writer: the drawing's tabs are its own.
			_, err = io.WriteString(s.out.w, strings.TrimRight(text, "\n")+"\n")
			return err
		}),
	}
	graph.Flags().StringVar(&format, "format", client.FormatMermaid, "mermaid or dot")
	get.ValidArgsFunction = a.completeWorkflow
	graph.ValidArgsFunction = a.completeWorkflow
	cmd.AddCommand(list, get, graph)
	return cmd
}

// healthCmd asks the server whether it is ready.
func (a *app) healthCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Ask the server whether it is ready (/readyz; no key needed)",
		Args:  noArgs,
	}
	cf := a.clientFlags(cmd)
	cmd.RunE = cf.clientRunE(func(ctx context.Context, s session, _ []string) error {
		h, err := s.c.Ready(ctx)
		if err != nil {
			return err
		}
		return s.out.print(h, func(w io.Writer) {
			fmt.Fprintf(w, "%s: %s\n", s.c.BaseURL(), h.Status)
			if h.Warning != "" {
				fmt.Fprintf(w, "warning: %s\n", h.Warning)
			}
		})
	})
	return cmd
}
