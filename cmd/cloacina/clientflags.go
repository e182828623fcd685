package main

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"github.com/cloacina-go/cloacina/client"
)

// defaultServer is the server the client commands talk to by default.
const defaultServer = "http://127.0.0.1:8080"

// requestTimeout bounds one request of a client command (a ?wait
// request gets its wait on top).
const requestTimeout = 30 * time.Second

// clientFlags are the flags of the commands that talk to a server.
type clientFlags struct {
	server string
	apiKey string
	output string
}

// clientFlags adds --server, --api-key and -o to cmd and its
// subcommands.
func (a *app) clientFlags(cmd *cobra.Command) *clientFlags {
	cf := &clientFlags{}
	pf := cmd.PersistentFlags()
	pf.StringVar(&cf.server, "server", defaultServer, "URL of the cloacina server")
	bindEnv(pf, "server", "CLOACINA_SERVER")
	pf.StringVar(&cf.apiKey, "api-key", "", "API key (admin, or a tenant's write or read key)")
	bindEnv(pf, "api-key", "CLOACINA_API_KEY")
	pf.StringVarP(&cf.output, "output", "o", formatText, "output format: text or json")
	return cf
}

// client returns the API client, checking the flags; its requests may
// last requestTimeout plus wait (a ?wait request's wait).
func (cf *clientFlags) client(wait time.Duration) (*client.Client, error) {
	return cf.clientWithTimeout(requestTimeout + wait)
}

// clientWithTimeout returns the API client, checking the flags; its
// requests may last timeout.
func (cf *clientFlags) clientWithTimeout(timeout time.Duration) (*client.Client, error) {
	u, err := url.Parse(cf.server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("--server %q: want a URL such as %s", cf.server, defaultServer)
	}
	hc := &http.Client{Timeout: timeout}
	return client.New(cf.server, client.WithAPIKey(cf.apiKey), client.WithHTTPClient(hc)), nil
}

// printer returns the printer of -o on w.
func (cf *clientFlags) printer(cmd *cobra.Command) (printer, error) {
	switch cf.output {
	case formatText, formatJSON:
		return printer{w: cmd.OutOrStdout(), format: cf.output}, nil
	}
	return printer{}, usagef("-o %q: want text or json", cf.output)
}

// session is what a client command works with.
type session struct {
	c   *client.Client
	out printer
	cmd *cobra.Command // the command running
}

// clientRunE adapts a client command's body: it checks the flags, builds
// the client and printer, and runs fn.
func (cf *clientFlags) clientRunE(fn func(ctx context.Context, s session, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		out, err := cf.printer(cmd)
		if err != nil {
			return err
		}
		c, err := cf.client(0)
		if err != nil {
			return err
		}
		return fn(cmd.Context(), session{c: c, out: out, cmd: cmd}, args)
	}
}

// tenantFlag adds --tenant (falling back to $CLOACINA_TENANT) to cmd.
func tenantFlag(cmd *cobra.Command, dst *string) {
	cmd.Flags().StringVarP(dst, "tenant", "t", "", "tenant id (required)")
	bindEnv(cmd.Flags(), "tenant", "CLOACINA_TENANT")
}

// needTenant checks that --tenant was given.
func needTenant(id string) error {
	if id == "" {
		return usagef("--tenant is required (or set CLOACINA_TENANT)")
	}
	return nil
}
