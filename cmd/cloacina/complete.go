package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/cloacina-go/cloacina/client"
)

// flagValues are the values shell completion offers for the flags that
// take one of a few words, by flag name.
var flagValues = map[string][]string{
	"output":     {formatText, formatJSON},
	"format":     {client.FormatMermaid, client.FormatDOT},
	"role":       {"read", "write"},
	"shape":      {shapeSingle, shapeChain, shapeFanout},
	"status":     {client.StatusPending, client.StatusRunning, client.StatusPaused, client.StatusCompleted, client.StatusFailed, client.StatusCancelled},
	"log-format": {"text", "json"},
	"log-level":  {"debug", "info", "warn", "error"},
}

// completionTimeout bounds the request a completion makes to the server.
const completionTimeout = 2 * time.Second

// addCompletions registers, on every command of the tree under cmd, the
// completion of the flags of flagValues.
func addCompletions(cmd *cobra.Command) {
	for name, values := range flagValues {
		if cmd.Flag(name) != nil {
			// A persistent flag is registered once, by the command that
			// declares it; the error of its subcommands is that one.
			_ = cmd.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
		}
	}
	for _, c := range cmd.Commands() {
		addCompletions(c)
	}
}

// completionClient returns the client of cmd's --server and --api-key (or
// their variables) and a context bounded by completionTimeout, or false
// when there is none.
func (a *app) completionClient(cmd *cobra.Command) (*client.Client, context.Context, context.CancelFunc, bool) {
	if a.applyEnv(cmd) != nil {
		return nil, nil, nil, false
	}
	server, key := cmd.Flag("server"), cmd.Flag("api-key")
	if server == nil || key == nil {
		return nil, nil, nil, false
	}
	cf := clientFlags{server: server.Value.String(), apiKey: key.Value.String()}
	c, err := cf.client(0)
	if err != nil {
		return nil, nil, nil, false
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, completionTimeout)
	return c, ctx, cancel, true
}

// completeWorkflow completes a command's one workflow name argument with
// the workflows of the server of --server and --api-key (or their
// variables); nothing when the server cannot tell.
func (a *app) completeWorkflow(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
	const none = cobra.ShellCompDirectiveNoFileComp
	if len(args) > 0 {
		return nil, none
	}
	c, ctx, cancel, ok := a.completionClient(cmd)
	if !ok {
		return nil, none
	}
	defer cancel()
	wfs, err := c.Workflows(ctx)
	if err != nil {
		return nil, none
	}
	out := make([]cobra.Completion, len(wfs))
	for i, wf := range wfs {
		out[i] = cobra.CompletionWithDesc(wf.Name, wf.Description)
	}
	return out, none
}

// completeKeyID completes the key id argument of keys delete (revoke)
// with the ids of the admin keys (--admin) or of --tenant's keys, with
// their names; nothing when the server cannot tell.
func (a *app) completeKeyID(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
	const none = cobra.ShellCompDirectiveNoFileComp
	if len(args) > 0 {
		return nil, none
	}
	c, ctx, cancel, ok := a.completionClient(cmd)
	if !ok {
		return nil, none
	}
	defer cancel()
	admin, _ := cmd.Flags().GetBool("admin")
	tenantID, _ := cmd.Flags().GetString("tenant")
	var (
		keys []client.Key
		err  error
	)
	switch {
	case admin:
		keys, err = c.ListAdminKeys(ctx)
	case tenantID != "":
		keys, err = c.ListKeys(ctx, tenantID)
	default:
		return nil, none
	}
	if err != nil {
		return nil, none
	}
	out := make([]cobra.Completion, len(keys))
	for i, k := range keys {
		out[i] = cobra.CompletionWithDesc(k.KeyID, orDash(k.Name))
	}
	return out, none
}
