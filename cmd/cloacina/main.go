// Command cloacina runs the multi-tenant Cloacina HTTP service and talks
// to it.
//
//	cloacina serve                       # SQLite, one file per tenant in ./cloacina-data
//	cloacina serve --database-url postgres://...   # one schema per tenant
//	cloacina tenant create acme          # with CLOACINA_API_KEY set to the admin key
//	cloacina keys create --tenant acme --name ci --role write
//	cloacina run hello --tenant acme --context '{"name":"Ada"}' --watch
//	cloacina executions list --tenant acme -o json
//	cloacina migrate --database-url postgres://...
//	cloacina bench --shape fanout
//
// Settings come from flags, then environment variables (CLOACINA_ADDR,
// DATABASE_URL, CLOACINA_API_KEY, ...; each flag's help names its
// variable), then an optional .env file (--env-file, default ./.env), then
// defaults. See docs/cli.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	// The first signal asks for a graceful stop. The signals' default
	// action (ending the process at once) is restored before ctx ends, so
	// that a second signal during the drain always finds it.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-sigs
		signal.Reset(os.Interrupt, syscall.SIGTERM)
		cancel()
	}()
	a := &app{
		stdin:         os.Stdin,
		stdinTerminal: isTerminal(os.Stdin),
		stdout:        os.Stdout,
		stderr:        os.Stderr,
		lookupEnv:     os.LookupEnv,
	}
	code := run(ctx, a, os.Args[1:])
	cancel()
	os.Exit(code)
}

// run runs the command line args with a's streams and environment and
// returns the process's exit code.
func run(ctx context.Context, a *app, args []string) int {
	stderr := a.stderr
	if a.stdin == nil {
		a.stdin = strings.NewReader("")
	}
	root := a.rootCmd()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ec *exitError
	if errors.As(err, &ec) {
		if ec.err != nil {
			fmt.Fprintf(stderr, "cloacina: %v\n", ec.err)
		}
		return ec.code
	}
	fmt.Fprintf(stderr, "cloacina: %v\n", err)
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// exitError ends the program with code, printing err when it is not nil.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit code %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageError is a mistake on the command line (exit code 2).
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}
