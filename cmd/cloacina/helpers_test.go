package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina/internal/pgtest"
)

func TestMain(m *testing.M) {
	code := pgtest.Main(m)
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

// binary builds the cloacina command once per test run and returns its
// path.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "cloacina-e2e-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "cloacina")
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// testCtx returns a context that ends after d or with the test.
func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// cleanEnv is the process environment without the variables the command
// reads, plus extra ("KEY=value").
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "CLOACINA_") || k == "DATABASE_URL" || k == "MAX_CONCURRENT_TASKS" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// syncBuffer is a bytes.Buffer safe for one writer and many readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serverProc is a running `cloacina serve`.
type serverProc struct {
	cmd    *exec.Cmd
	url    string
	stdout *syncBuffer
	stderr *syncBuffer
	done   chan struct{}
	err    error // of Wait, once done is closed
}

var listenRE = regexp.MustCompile(`listening on (http://\S+)`)

// startServe starts `cloacina serve --addr 127.0.0.1:0` in dir with the
// environment env and extra args, and waits until it is ready.
func startServe(t *testing.T, dir string, env []string, args ...string) *serverProc {
	t.Helper()
	cmd := exec.Command(binary(t), append([]string{"serve", "--addr", "127.0.0.1:0", "--shutdown-timeout", "10s"}, args...)...)
	cmd.Dir = dir
	cmd.Env = cleanEnv(env...)
	p := &serverProc{cmd: cmd, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urls := make(chan string, 1)
	// printStart's last line starts with "try: ", on every path.
	printed := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pipe)
		seen := false
		for sc.Scan() {
			line := sc.Text()
			p.stdout.Write([]byte(line + "\n"))
			if m := listenRE.FindStringSubmatch(line); m != nil {
				select {
				case urls <- m[1]:
				default:
				}
			}
			if !seen && strings.HasPrefix(line, "try: ") {
				seen = true
				close(printed)
			}
		}
		_, _ = io.Copy(io.Discard, pipe)
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop(t, 15*time.Second)
		if t.Failed() {
			t.Logf("serve stdout:\n%s\nserve stderr:\n%s", p.stdout, p.stderr)
		}
	})
	select {
	case p.url = <-urls:
	case <-p.done:
		t.Fatalf("serve exited at start: %v\nstdout:\n%s\nstderr:\n%s", p.err, p.stdout, p.stderr)
	case <-time.After(60 * time.Second):
		t.Fatalf("serve did not print its address in 60s\nstderr:\n%s", p.stderr)
	}
	waitReady(t, p.url, 30*time.Second)
	// What serve printed at start is all in p.stdout before it returns.
	select {
	case <-printed:
	case <-time.After(10 * time.Second):
		t.Fatalf("serve's start message has no try: line\nstdout:\n%s", p.stdout)
	}
	return p
}

// waitStderr waits up to 5 s for serve's stderr to hold sub (the log is
// copied from its pipe by another goroutine), and reports whether it did.
func (p *serverProc) waitStderr(sub string) bool {
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(p.stderr.String(), sub) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// waitReady polls /readyz until it answers 200.
func waitReady(t *testing.T, base string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/readyz not ready after %v (last: %v)", base, d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits up to d for the process to exit; it kills
// it after that. It returns how long the exit took.
func (p *serverProc) stop(t *testing.T, d time.Duration) time.Duration {
	t.Helper()
	select {
	case <-p.done:
		return 0
	default:
	}
	start := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return time.Since(start)
	case <-time.After(d):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("serve did not exit within %v of SIGTERM", d)
		return time.Since(start)
	}
}

// cliResult is the outcome of one run of the binary.
type cliResult struct {
	code           int
	stdout, stderr string
}

// cli runs the binary with args against the server base with key.
func cli(t *testing.T, ctx context.Context, base, key string, args ...string) cliResult {
	t.Helper()
	cmd := exec.CommandContext(ctx, binary(t), args...)
	cmd.Dir = t.TempDir()
	cmd.Env = cleanEnv("CLOACINA_SERVER="+base, "CLOACINA_API_KEY="+key)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := cliResult{stdout: stdout.String(), stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		res.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("cloacina %v: %v", args, err)
	}
	return res
}

// mustCLI runs the binary and fails the test unless it exits 0.
func mustCLI(t *testing.T, ctx context.Context, base, key string, args ...string) string {
	t.Helper()
	r := cli(t, ctx, base, key, args...)
	if r.code != 0 {
		t.Fatalf("cloacina %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}
