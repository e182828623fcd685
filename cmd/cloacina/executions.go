package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cloacina-go/cloacina/client"
)

// defaultWatchInterval is how often --watch polls the execution's events.
const defaultWatchInterval = 250 * time.Millisecond

// maxWait is the longest ?wait the server accepts.
const maxWait = 5 * time.Minute

// runCmd starts a workflow.
func (a *app) runCmd() *cobra.Command {
	var (
		tenantID, input string
		wait, interval  time.Duration
		watchIt, quiet  bool
	)
	cmd := &cobra.Command{
		Use:   "run WORKFLOW --tenant TENANT [--context JSON] [--watch | --wait DURATION]",
		Short: "Start a workflow for a tenant (needs a write key)",
		Long: `Start a workflow for a tenant.

--context is the execution's input, a JSON object: inline, @FILE to read a
file, or - to read standard input. --wait asks the server to wait up to that
long (at most 5m) for the result. --watch follows the execution's events,
printing every change of the execution and its tasks at the time it
happened, then the final status and context; the command then exits 1
unless the execution completed.

-q prints only the execution id, for ID=$(cloacina run ... -q); with
--wait, once the wait is over, exiting 1 if the execution failed or was
cancelled.`,
		Example: `  cloacina run hello --tenant acme --context '{"name":"Ada"}' --watch
  cloacina run etl --tenant acme --context @input.json --wait 30s -o json
  ID=$(cloacina run wait --tenant acme -c '{"seconds":60}' -q)`,
		Args:              exactArgs(1, "one workflow name"),
		ValidArgsFunction: a.completeWorkflow,
	}
	cf := a.clientFlags(cmd)
	tenantFlag(cmd, &tenantID)
	fl := cmd.Flags()
	fl.StringVarP(&input, "context", "c", "", "input context: a JSON object, @FILE or - (stdin)")
	fl.BoolVarP(&watchIt, "watch", "w", false, "follow the execution until it ends; exit 1 unless it completed")
	fl.DurationVar(&wait, "wait", 0, "let the server wait this long (at most 5m) for the result")
	fl.DurationVar(&interval, "interval", defaultWatchInterval, "how often --watch polls")
	fl.BoolVarP(&quiet, "quiet", "q", false, "print only the execution id")
	cmd.RunE = cf.clientRunE(func(ctx context.Context, s session, args []string) error {
		if err := needTenant(tenantID); err != nil {
			return err
		}
		switch {
		case watchIt && wait > 0:
			return usagef("--watch and --wait do not go together")
		case quiet && watchIt:
			return usagef("-q and --watch do not go together (-q prints only the id)")
		case quiet && s.out.json():
			return usagef("-q and -o json do not go together (-q prints only the id)")
		case wait < 0 || wait > maxWait:
			return usagef("--wait %v: want 0 to %v", wait, maxWait)
		case interval <= 0:
			return usagef("--interval %v: want a positive duration", interval)
		}
		body, err := readContext(input, cmd.InOrStdin())
		if err != nil {
			return err
		}
		if wait > 0 {
			if s.c, err = cf.client(wait); err != nil {
				return err
			}
		}
		req := client.StartRequest{Workflow: args[0], Wait: wait}
		if body != nil {
			req.Context = body
		}
		ex, err := s.c.StartExecution(ctx, tenantID, req)
		if err != nil {
			return err
		}
		if watchIt {
			return a.watch(ctx, s, tenantID, ex.ExecutionID, interval)
		}
		if quiet {
			if _, err := fmt.Fprintln(s.out.w, ex.ExecutionID); err != nil {
				return err
			}
			return finishedBadly(ex)
		}
		err = s.out.print(ex, func(w io.Writer) {
			writeExecution(w, ex)
			if !client.Terminal(ex.Status) {
				fmt.Fprintf(w, "\nfollow it: cloacina executions watch %s --tenant %s\n", ex.ExecutionID, tenantID)
			}
		})
		if err != nil {
			return err
		}
		return finishedBadly(ex)
	})
	return cmd
}

// readContext reads --context: inline JSON, @FILE or - for stdin. It
// returns nil for an empty flag, and an error unless it is a JSON object.
func readContext(arg string, stdin io.Reader) (json.RawMessage, error) {
	var (
		data []byte
		err  error
		from = "--context"
	)
	switch {
	case arg == "":
		return nil, nil
	case arg == "-":
		data, err = io.ReadAll(stdin)
		from = "--context - (standard input)"
	case strings.HasPrefix(arg, "@"):
		data, err = os.ReadFile(arg[1:])
		from = "--context " + arg
	default:
		data = []byte(arg)
	}
	if err != nil {
		return nil, usagef("%s: %w", from, err)
	}
	data = bytes.TrimSpace(data)
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil || obj == nil {
		if err == nil {
			err = errors.New("null")
		}
		return nil, usagef("%s: want a JSON object such as '{\"name\":\"Ada\"}': %v", from, err)
	}
	return json.RawMessage(data), nil
}

// finishedBadly returns an exit error (code 1) for an execution that
// ended Failed or Cancelled, and nil otherwise.
func finishedBadly(ex *client.Execution) error {
	switch ex.Status {
	case client.StatusFailed, client.StatusCancelled:
		msg := fmt.Sprintf("execution %s %s", ex.ExecutionID, strings.ToLower(ex.Status))
		if ex.Error != "" {
			msg += ": " + ex.Error
		}
		return &exitError{code: 1, err: errors.New(msg)}
	}
	return nil
}

// watch follows an execution until it ends, printing each of its events
// (every state change of the execution and of its tasks, with the time it
// happened) as it appears, polling every interval; then it prints the
// execution. Progress goes to stdout, or to stderr with -o json (stdout
// then holds only the final JSON).
func (a *app) watch(ctx context.Context, s session, tenantID, id string, interval time.Duration) error {
	progress := s.out.w
	if s.out.json() {
		progress = a.stderr
	}
	fmt.Fprintf(progress, "watching execution %s (tenant %s); Ctrl-C stops watching, not the execution\n", id, tenantID)
	stopped := func() error {
		return fmt.Errorf("stopped watching execution %s; it goes on (cloacina executions get %s --tenant %s)", id, id, tenantID)
	}
	// Events come in time order, and an attempt's start is written only
	// when the attempt ends (ID 0 until then), so an event is known by
	// what it says, not by its ID.
	type seenKey struct {
		typ, task string
		attempt   int
		at        time.Time
	}
	printed := map[seenKey]bool{}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		events, err := s.c.Events(ctx, tenantID, id)
		if err != nil {
			if ctx.Err() != nil {
				return stopped()
			}
			return err
		}
		ended := false
		for _, e := range events {
			ended = ended || terminalEvent(e.Type)
			k := seenKey{e.Type, e.Task, e.Attempt, e.At}
			if printed[k] {
				continue
			}
			printed[k] = true
			fmt.Fprintln(progress, eventLine(e))
		}
		if ended {
			ex, err := s.c.GetExecution(ctx, tenantID, id)
			if err != nil {
				return err
			}
			if !s.out.json() {
				fmt.Fprintln(progress)
			}
			if err := s.out.print(ex, func(w io.Writer) { writeExecution(w, ex) }); err != nil {
				return err
			}
			return finishedBadly(ex)
		}
		select {
		case <-ctx.Done():
			return stopped()
		case <-tick.C:
		}
	}
}

// terminalEvent reports whether an event type ends its execution.
func terminalEvent(typ string) bool {
	switch typ {
	case "execution_completed", "execution_failed", "execution_cancelled":
		return true
	}
	return false
}

// eventLine formats an event for watch: its time, what changed (the
// execution or a task), how, the task and attempt, and the message.
func eventLine(e client.Event) string {
	kind, what, ok := strings.Cut(e.Type, "_")
	if !ok {
		kind, what = "", e.Type
	}
	at, what := e.At.Local().Format("15:04:05.000"), strings.ReplaceAll(what, "_", " ")
	line := fmt.Sprintf("%s  %-10s %s", at, kind, what)
	if e.Task != "" {
		line = fmt.Sprintf("%s  %-10s %-16s %s", at, kind, what, e.Task)
		if e.Attempt > 0 {
			line += fmt.Sprintf(" (attempt %d)", e.Attempt)
		}
	}
	if e.Message != "" {
		line += ": " + oneLine(e.Message, 120)
	}
	return line
}

// writeExecution writes an execution for people: its fields, its tasks
// and its context.
func writeExecution(w io.Writer, ex *client.Execution) {
	row(w, "execution", ex.ExecutionID)
	wf := ex.WorkflowName
	if ex.WorkflowVersion != "" {
		wf += " (version " + ex.WorkflowVersion + ")"
	}
	row(w, "workflow", wf)
	row(w, "status", ex.Status)
	if ex.Error != "" {
		row(w, "error", oneLine(ex.Error, 200))
	}
	if !ex.CreatedAt.IsZero() {
		row(w, "created", ts(ex.CreatedAt))
		row(w, "started", ts(ex.StartedAt))
		row(w, "completed", ts(ex.CompletedAt))
		row(w, "duration", ms(ex.DurationMS))
	}
	if len(ex.Tasks) > 0 {
		io.WriteString(w, "\n")
		row(w, "TASK", "STATUS", "ATTEMPTS", "DURATION", "ERROR")
		for _, t := range ex.Tasks {
			row(w, t.Name, t.Status, t.Attempts, ms(t.DurationMS), orDash(oneLine(t.Error, 80)))
		}
	}
	if len(ex.Context) > 0 && string(ex.Context) != "null" {
		var buf bytes.Buffer
		if json.Indent(&buf, ex.Context, "", "  ") == nil {
			// The context goes after the table: a tab in it must not
			// become a column.
			io.WriteString(w, "\ncontext:\n")
			io.WriteString(w, strings.ReplaceAll(buf.String(), "\t", " ")+"\n")
		}
	}
}

// executionsCmd groups the commands on existing executions.
func (a *app) executionsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "executions",
		Aliases: []string{"execution", "exec"},
		Short:   "List, inspect, follow, cancel, pause and resume executions",
		Args:    noArgs,
	}
	cf := a.clientFlags(cmd)
	cmd.AddCommand(
		a.executionsListCmd(cf),
		a.executionGetCmd(cf),
		a.executionWatchCmd(cf),
		a.executionEventsCmd(cf),
		a.executionActionCmd(cf, "cancel", "Cancel an execution (write key)", (*client.Client).Cancel),
		a.executionActionCmd(cf, "pause", "Pause an execution: no new task starts until resume (write key)", (*client.Client).Pause),
		a.executionActionCmd(cf, "resume", "Resume a paused execution (write key)", (*client.Client).Resume),
	)
	return cmd
}

func (a *app) executionsListCmd(cf *clientFlags) *cobra.Command {
	var (
		tenantID string
		opts     client.ListOptions
		all      bool
	)
	cmd := &cobra.Command{
		Use:     "list --tenant TENANT [--status S,...] [--workflow W] [--limit N] [--cursor C | --all]",
		Short:   "List a tenant's executions, newest first (read key)",
		Example: "  cloacina executions list --tenant acme --status Running,Failed --limit 20",
		Args:    noArgs,
	}
	tenantFlag(cmd, &tenantID)
	fl := cmd.Flags()
	fl.StringSliceVar(&opts.Statuses, "status", nil, "keep these statuses: Pending, Running, Paused, Completed, Failed, Cancelled")
	fl.StringVar(&opts.Workflow, "workflow", "", "keep this workflow's executions")
	fl.IntVar(&opts.Limit, "limit", 0, "page size, 1-1000 (server default 50)")
	fl.StringVar(&opts.Cursor, "cursor", "", "continue from a previous page's next cursor")
	fl.BoolVar(&all, "all", false, "follow the cursor through every page")
	cmd.RunE = cf.clientRunE(func(ctx context.Context, s session, _ []string) error {
		if err := needTenant(tenantID); err != nil {
			return err
		}
		page, err := s.c.ListExecutions(ctx, tenantID, opts)
		if err != nil {
			return err
		}
		for all && page.NextCursor != "" {
			o := opts
			o.Cursor = page.NextCursor
			next, err := s.c.ListExecutions(ctx, tenantID, o)
			if err != nil {
				return err
			}
			page.Executions = append(page.Executions, next.Executions...)
			page.NextCursor = next.NextCursor
		}
		return s.out.print(page, func(w io.Writer) {
			row(w, "EXECUTION", "WORKFLOW", "STATUS", "CREATED", "DURATION", "ERROR")
			for _, ex := range page.Executions {
				row(w, ex.ExecutionID, ex.WorkflowName, ex.Status, ts(ex.CreatedAt), ms(ex.DurationMS), orDash(oneLine(ex.Error, 60)))
			}
			if page.NextCursor != "" {
				fmt.Fprintf(w, "\nmore: --cursor %s\n", page.NextCursor)
			}
		})
	})
	return cmd
}

func (a *app) executionGetCmd(cf *clientFlags) *cobra.Command {
	var tenantID string
	cmd := &cobra.Command{
		Use:   "get EXECUTION_ID --tenant TENANT",
		Short: "Show an execution with its tasks and final context (read key)",
		Args:  exactArgs(1, "one execution id"),
	}
	tenantFlag(cmd, &tenantID)
	cmd.RunE = cf.clientRunE(func(ctx context.Context, s session, args []string) error {
		if err := needTenant(tenantID); err != nil {
			return err
		}
		ex, err := s.c.GetExecution(ctx, tenantID, args[0])
		if err != nil {
			return err
		}
		return s.out.print(ex, func(w io.Writer) { writeExecution(w, ex) })
	})
	return cmd
}

func (a *app) executionWatchCmd(cf *clientFlags) *cobra.Command {
	var (
		tenantID string
		interval time.Duration
	)
	cmd := &cobra.Command{
		Use:   "watch EXECUTION_ID --tenant TENANT",
		Short: "Follow an execution until it ends; exit 1 unless it completed (read key)",
		Args:  exactArgs(1, "one execution id"),
	}
	tenantFlag(cmd, &tenantID)
	cmd.Flags().DurationVar(&interval, "interval", defaultWatchInterval, "how often to poll")
	cmd.RunE = cf.clientRunE(func(ctx context.Context, s session, args []string) error {
		if err := needTenant(tenantID); err != nil {
			return err
		}
		if interval <= 0 {
			return usagef("--interval %v: want a positive duration", interval)
		}
		return a.watch(ctx, s, tenantID, args[0], interval)
	})
	return cmd
}

func (a *app) executionEventsCmd(cf *clientFlags) *cobra.Command {
	var tenantID string
	cmd := &cobra.Command{
		Use:   "events EXECUTION_ID --tenant TENANT",
		Short: "Show an execution's event log, oldest first (read key)",
		Args:  exactArgs(1, "one execution id"),
	}
	tenantFlag(cmd, &tenantID)
	cmd.RunE = cf.clientRunE(func(ctx context.Context, s session, args []string) error {
		if err := needTenant(tenantID); err != nil {
			return err
		}
		events, err := s.c.Events(ctx, tenantID, args[0])
		if err != nil {
			return err
		}
		return s.out.print(map[string]any{"events": events}, func(w io.Writer) {
			row(w, "AT", "TASK", "EVENT", "ATTEMPT", "WORKER", "MESSAGE")
			for _, e := range events {
				attempt := "-"
				if e.Attempt > 0 {
					attempt = fmt.Sprint(e.Attempt)
				}
				row(w, ts(e.At), orDash(e.Task), e.Type, attempt, orDash(e.Worker), orDash(oneLine(e.Message, 80)))
			}
		})
	})
	return cmd
}

// executionActionCmd builds cancel, pause or resume.
func (a *app) executionActionCmd(cf *clientFlags, name, short string,
	do func(*client.Client, context.Context, string, string) (*client.Execution, error)) *cobra.Command {
	var tenantID string
	cmd := &cobra.Command{
		Use:   name + " EXECUTION_ID --tenant TENANT",
		Short: short,
		Args:  exactArgs(1, "one execution id"),
	}
	tenantFlag(cmd, &tenantID)
	cmd.RunE = cf.clientRunE(func(ctx context.Context, s session, args []string) error {
		if err := needTenant(tenantID); err != nil {
			return err
		}
		ex, err := do(s.c, ctx, tenantID, args[0])
		if err != nil {
			return err
		}
		return s.out.print(ex, func(w io.Writer) {
			row(w, "EXECUTION", "WORKFLOW", "STATUS")
			row(w, ex.ExecutionID, ex.WorkflowName, ex.Status)
		})
	})
	return cmd
}
