package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/cloacina-go/cloacina/client"
)

// deleteOutcome is what tenant delete prints with -o json.
type deleteOutcome struct {
	TenantID string `json:"tenant_id"`
	Deleted  bool   `json:"deleted"`
	// StillExists: the request got no answer and the tenant still existed
	// afterwards (its deletion may still be under way).
	StillExists bool `json:"still_exists,omitempty"`
	// AnswerLost says why the server's answer never came, when it did not.
	AnswerLost string `json:"answer_lost,omitempty"`
}

// deleteTenant deletes tenant id, asking first when it has work in
// progress (unless yes), within timeout. When no answer comes, it asks the
// server whether the tenant still exists and reports that, rather than the
// transport's error.
func (a *app) deleteTenant(ctx context.Context, s session, cf *clientFlags, id string, timeout time.Duration, yes bool) error {
	m, err := s.c.TenantMetrics(ctx, id)
	if err != nil {
		return err
	}
	if m.ActiveExecutions > 0 || m.RunningTasks > 0 {
		work := fmt.Sprintf("tenant %s has work in progress: %d active execution(s), %d running task(s); deleting it stops them and removes its data",
			id, m.ActiveExecutions, m.RunningTasks)
		switch {
		case yes:
		case !a.stdinTerminal:
			return &exitError{code: 1, err: fmt.Errorf("%s. Not deleted: pass --yes to delete it anyway", work)}
		default:
			ok, err := confirm(a.stdin, a.stderr, work+". Delete it? [y/N] ")
			if err != nil {
				return fmt.Errorf("reading the answer: %w", err)
			}
			if !ok {
				return &exitError{code: 1, err: fmt.Errorf("tenant %s not deleted", id)}
			}
		}
	}
	dc, err := cf.clientWithTimeout(timeout)
	if err != nil {
		return err
	}
	err = dc.DeleteTenant(ctx, id)
	var apiErr *client.Error
	switch {
	case err == nil:
		return printDeleted(s.out, deleteOutcome{TenantID: id, Deleted: true})
	case errors.Is(err, client.ErrUnavailable):
		// The server could not finish in its grace (--tenant-delete-grace),
		// or is draining, or full: the tenant may be half deleted (its keys
		// revoked), and the same command finishes it.
		return fmt.Errorf("tenant %s is not deleted yet: %w. Run cloacina tenant delete %s again to finish", id, err, id)
	case errors.As(err, &apiErr):
		return err // the server answered: that is what happened
	}

	// No answer: the request timed out, the connection broke, or we were
	// interrupted. The server may have deleted the tenant, or may still be
	// at it: ask it.
	lost := noAnswer(ctx, err, timeout)
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), requestTimeout)
	defer cancel()
	exists, xerr := s.c.TenantExists(cctx, id)
	if xerr != nil {
		return fmt.Errorf("tenant %s: %s, and asking the server whether the tenant still exists failed too (%w): "+
			"whether it was deleted is not known; check with cloacina tenant list", id, lost, xerr)
	}
	if exists {
		out := deleteOutcome{TenantID: id, StillExists: true, AnswerLost: lost}
		if s.out.json() {
			if err := s.out.print(out, nil); err != nil {
				return err
			}
		}
		return &exitError{code: 1, err: fmt.Errorf("tenant %s: %s; the tenant still exists: the server is probably still deleting it "+
			"(it gives the tenant's running tasks its --tenant-delete-grace to stop), or the deletion failed. Check later with cloacina tenant list, "+
			"or run cloacina tenant delete %s again", id, lost, id)}
	}
	fmt.Fprintf(a.stderr, "cloacina: %s, but the tenant no longer exists: it was deleted\n", lost)
	return printDeleted(s.out, deleteOutcome{TenantID: id, Deleted: true, AnswerLost: lost})
}

// printDeleted prints a successful deletion.
func printDeleted(out printer, o deleteOutcome) error {
	return out.print(o, func(w io.Writer) {
		fmt.Fprintf(w, "tenant %s deleted\n", o.TenantID)
	})
}

// noAnswer says why a request got no answer.
func noAnswer(ctx context.Context, err error, timeout time.Duration) string {
	var ne net.Error
	switch {
	case ctx.Err() != nil:
		return "the delete request was interrupted before the server answered"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("the server did not answer the delete request within --timeout %v", timeout)
	}
	return fmt.Sprintf("the connection was lost before the server answered the delete request (%v)", err)
}

// confirm writes question to w and reads a line from r: true for y or
// yes (any case).
func confirm(r io.Reader, w io.Writer, question string) (bool, error) {
	fmt.Fprint(w, question)
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}
