package faulttest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ReadyLine starts the line a worker prints on its standard output once its
// runner is started.
const ReadyLine = "READY"

// Process is a worker (or other) process started by [StartProcess].
type Process struct {
	cmd       *exec.Cmd
	ready     chan struct{}
	readyOnce sync.Once
	done      chan struct{}
	waitErr   error // set before done is closed
}

// StartProcess starts bin with args and env. The process's standard error,
// and the lines of its standard output other than the ready line, go to
// logs. On Linux the process is killed if the goroutine's thread that
// started it dies (best effort against orphans).
func StartProcess(bin string, args, env []string, logs io.Writer) (*Process, error) {
	if logs == nil {
		logs = io.Discard
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stderr = logs
	setDeathSignal(cmd)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{cmd: cmd, ready: make(chan struct{}), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, ReadyLine) {
				p.readyOnce.Do(func() { close(p.ready) })
				continue
			}
			fmt.Fprintln(logs, line)
		}
		_, _ = io.Copy(io.Discard, stdout) // after a too long line
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// PID returns the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ExitCode returns the exit code of the exited process, -1 if a signal
// ended it.
func (p *Process) ExitCode() int {
	<-p.done
	return p.cmd.ProcessState.ExitCode()
}

// ExitStatus describes how the exited process ended.
func (p *Process) ExitStatus() string {
	<-p.done
	if p.waitErr == nil {
		return "exit status 0"
	}
	return p.waitErr.Error()
}

// WaitReady waits until the process printed its ready line. It fails if
// the process exits first or ctx ends.
func (p *Process) WaitReady(ctx context.Context) error {
	select {
	case <-p.ready:
		return nil
	case <-p.done:
		select {
		case <-p.ready:
			return nil
		default:
		}
		return fmt.Errorf("faulttest: pid %d exited before it was ready: %s", p.PID(), p.ExitStatus())
	case <-ctx.Done():
		return fmt.Errorf("faulttest: waiting for pid %d to be ready: %w", p.PID(), ctx.Err())
	}
}

// Kill sends SIGKILL and waits until the process has exited.
func (p *Process) Kill() {
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		_ = p.cmd.Process.Kill()
	}
	<-p.done
}

// Freeze stops the process with SIGSTOP (as a long GC pause, a stalled VM
// or a suspended laptop would).
func (p *Process) Freeze() error { return p.cmd.Process.Signal(syscall.SIGSTOP) }

// Thaw resumes a frozen process with SIGCONT.
func (p *Process) Thaw() error { return p.cmd.Process.Signal(syscall.SIGCONT) }

// Terminate sends SIGTERM and waits up to timeout for the process to exit,
// then kills it. It returns the exit code (-1 when a signal ended it) and
// whether the process exited by itself in time.
func (p *Process) Terminate(timeout time.Duration) (code int, clean bool) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.ExitCode(), true
	case <-time.After(timeout):
		p.Kill()
		return p.ExitCode(), false
	}
}
