package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cloacina-go/cloacina/tenant"
)

// app holds what every command shares: the standard streams and the
// environment. Commands are built by its methods; nothing is global.
type app struct {
	stdin          io.Reader
	stdinTerminal  bool // whether stdin is a terminal (someone may answer a question)
	stdout, stderr io.Writer
	lookupEnv      func(string) (string, bool)
	envFile        string // --env-file

	// Set by applyEnv: the variables of the .env file read, and its path
	// ("" when none was read).
	fileVars     map[string]string
	fileVarsPath string
}

// envAnnotation is the flag annotation naming the environment variables
// a flag falls back to.
const envAnnotation = "cloacina_env"

// secondsAnnotation names, among a duration flag's variables, those that
// hold a whole number of seconds (TASK_TIMEOUT_SECONDS=300) rather than a
// Go duration (CLOACINA_TASK_TIMEOUT=5m).
const secondsAnnotation = "cloacina_env_seconds"

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
	root.SetIn(a.stdin)
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

// bindSecondsEnv is bindEnv for a duration flag whose variables secs
// (among envs) hold whole seconds.
func bindSecondsEnv(fs *pflag.FlagSet, name string, envs []string, secs ...string) {
	bindEnv(fs, name, envs...)
	if err := fs.SetAnnotation(name, secondsAnnotation, secs); err != nil {
		panic(err)
	}
}

// applyEnv sets every flag of cmd that was not given on the command line
// from its environment variables (the first one set, in the order bound),
// then from the same variables in the .env file.
func (a *app) applyEnv(cmd *cobra.Command) error {
	if _, err := a.readEnvFile(); err != nil {
		return err
	}
	var errs []error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		envs := f.Annotations[envAnnotation]
		if f.Changed || len(envs) == 0 {
			return
		}
		env, v, from, ok := a.firstSet(envs)
		if !ok {
			return
		}
		if slices.Contains(f.Annotations[secondsAnnotation], env) {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil || n < 0 || n > int64(time.Duration(1<<63-1)/time.Second) {
				errs = append(errs, usagef("%s=%q (from %s, the default of --%s): want a whole number of seconds", env, v, from, f.Name))
				return
			}
			v = (time.Duration(n) * time.Second).String()
		}
		if err := f.Value.Set(v); err != nil {
			errs = append(errs, usagef("%s (from %s, the default of --%s): %w", env, from, f.Name, err))
		}
	})
	return errors.Join(errs...)
}

// firstSet returns the first of envs set in the environment, or else the
// first set in the .env file, with its value and where it came from. An
// empty variable counts as unset.
func (a *app) firstSet(envs []string) (env, value, from string, ok bool) {
	for _, env := range envs {
		if v, ok := a.lookupEnv(env); ok && v != "" {
			return env, v, "the environment", true
		}
	}
	for _, env := range envs {
		if v := a.fileVars[env]; v != "" {
			return env, v, "the env file " + a.fileVarsPath, true
		}
	}
	return "", "", "", false
}

// readEnvFile reads --env-file, or ./.env when it exists, and keeps its
// variables in a.fileVars.
func (a *app) readEnvFile() (map[string]string, error) {
	path := a.envFile
	if path == "" {
		path = defaultEnvFile
	}
	vars, err := tenant.ReadEnvFile(path)
	if a.envFile == "" && errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	a.fileVars, a.fileVarsPath = vars, path
	return vars, nil
}

// isSet reports whether cmd's flag name was given: on the command line, or
// by one of its variables (in the environment or the .env file). Call it
// after applyEnv.
func (a *app) isSet(cmd *cobra.Command, name string) bool {
	f := cmd.Flags().Lookup(name)
	if f == nil {
		return false
	}
	if f.Changed {
		return true
	}
	_, _, _, ok := a.firstSet(f.Annotations[envAnnotation])
	return ok
}

// refuseVars returns a usage error naming the first of vars that is set
// (in the environment or the .env file), its value and where it came
// from, with why(name): why it is refused and what to do instead. Only
// for variables that hold no secret: the value is shown.
func (a *app) refuseVars(command string, vars []string, why func(name string) string) error {
	for _, name := range vars {
		if _, v, from, ok := a.firstSet([]string{name}); ok {
			return usagef("%s=%q (from %s) is refused by %s: %s", name, v, from, command, why(name))
		}
	}
	return nil
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
