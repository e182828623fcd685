package main

import (
	"errors"
	"fmt"
	"github.com/cloacina-go/cloacina/tenant"
	"io"
	"io/fs"
	"runtime/debug"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// app holds what every command shares: the output streams and the
// environment. Commands are built by its methods; nothing is global.
type app struct {
	stdout, stderr io.Writer
	lookupEnv      func(string) (string, bool)
	envFile        string // --env-file
}

// envAnnotation is the flag annotation naming the environment variables
// a flag falls back to.
const envAnnotation = "cloacina_env"

// defaultEnvFile is the .env file read when --env-file is not given.
const defaultEnvFile = ".env"

// rootCmd builds the command tree.
func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "cloacina",
		Short: "Run the multi-tenant Cloacina workflow service, and talk to it",
		Long: `cloacina runs the multi-tenant Cloacina workflow service (serve), talks to a
running one (run, executions, tenant, keys, workflows, health), and works
on a database directly (migrate, bench).

Settings come from flags, then environment variables (each flag's help
names its variable), then a .env file (--env-file), then defaults.`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return a.applyEnv(cmd) },
	}
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	root.PersistentFlags().StringVar(&a.envFile, "env-file", "", "read settings from this .env file (default ./.env when it exists)")
	root.AddCommand(
		a.serveCmd(),
		a.runCmd(),
		a.executionsCmd(),
		a.tenantCmd(),
		a.keysCmd(),
		a.workflowsCmd(),
		a.healthCmd(),
		a.migrateCmd(),
		a.benchCmd(),
		a.versionCmd(),
	)
	addCompletions(root)
	return root
}

// bindEnv makes flag name of fs fall back to the environment variables
// envs (the first one set wins), and says so in its help.
func bindEnv(fs *pflag.FlagSet, name string, envs ...string) {
	f := fs.Lookup(name)
	if f == nil {
		panic("bindEnv: no flag " + name) // a programming error
	}
	if err := fs.SetAnnotation(name, envAnnotation, envs); err != nil {
		panic(err)
	}
	f.Usage += " [$" + envs[0] + "]"
}

// applyEnv sets every flag of cmd that was not given on the command line
// from its environment variables, then from the .env file.
func (a *app) applyEnv(cmd *cobra.Command) error {
	fileVars, err := a.readEnvFile()
	if err != nil {
		return err
	}
	var errs []error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		envs := f.Annotations[envAnnotation]
		if f.Changed || len(envs) == 0 {
			return
		}
		for _, env := range envs {
			v, ok := a.lookupEnv(env)
			if !ok || v == "" {
				v, ok = fileVars[env]
			}
			if !ok || v == "" {
				continue
			}
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, usagef("%s (the default of --%s): %w", env, f.Name, err))
			}
			return
		}
	})
	return errors.Join(errs...)
}

// readEnvFile reads --env-file, or ./.env when it exists.
func (a *app) readEnvFile() (map[string]string, error) {
	path := a.envFile
	if path == "" {
		path = defaultEnvFile
	}
	vars, err := tenant.ReadEnvFile(path)
	if a.envFile == "" && errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return vars, err
}

// versionCmd prints the build's version.
func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of this build",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), "cloacina", buildVersion())
			return nil
		},
	}
}

// buildVersion describes the build: the module version, or the VCS
// revision of a build from a checkout.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	v := bi.Main.Version
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+dirty"
			}
		}
	}
	if (v == "" || v == "(devel)") && rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		v = "devel " + rev + modified
	}
	if v == "" {
		v = "(devel)"
	}
	return v + " " + bi.GoVersion
}

// noArgs refuses positional arguments.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("%s takes no arguments, got %q", cmd.CommandPath(), args)
	}
	return nil
}

// exactArgs wants n positional arguments, named in what.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("usage: %s (%s expects %s)", cmd.UseLine(), cmd.CommandPath(), what)
		}
		return nil
	}
}
