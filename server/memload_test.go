//go:build memload

// The memory measurement of the HTTP service under big submissions (not in
// the default test run). Build a cloacina binary, then:
//
//	CLOACINA_BIN=/tmp/cloacina go test -tags memload -run TestMemLoad -v -count=1 ./server/
//
// It starts `$CLOACINA_BIN serve` on SQLite in a temporary data folder,
// sends MEMLOAD_N (default 100) concurrent submissions of the hello
// workflow with a context of about 1 MiB and ?wait=60s, and reports the
// server's peak resident memory (VmHWM) and the answers' statuses. A 503
// (the server's in-flight limit) is retried after a second, as its
// Retry-After says, and counted.
package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMemLoad(t *testing.T) {
	bin := os.Getenv("CLOACINA_BIN")
	if bin == "" {
		t.Skip("set CLOACINA_BIN to a cloacina binary")
	}
	n := 100
	if v := os.Getenv("MEMLOAD_N"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--log-level", "error")
	cmd.Env = append(os.Environ(), "CLOACINA_ADMIN_KEY="+testAdminKey)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	sc := bufio.NewScanner(out)
	base := ""
	re := regexp.MustCompile(`listening on (http://\S+)`)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			base = m[1]
			break
		}
	}
	if base == "" {
		t.Fatal("the server printed no address")
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()

	hc := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: n}}
	do := func(method, path, key, body string) (int, []byte) {
		req, _ := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return 0, []byte(err.Error())
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if code, b := do("POST", "/tenants", testAdminKey, `{"tenant_id":"acme"}`); code != 201 {
		t.Fatalf("create tenant: %d %s", code, b)
	}
	code, b := do("POST", "/tenants/acme/keys", testAdminKey, `{"name":"load","role":"write"}`)
	if code != 201 {
		t.Fatalf("create key: %d %s", code, b)
	}
	var k struct {
		Key string `json:"key"`
	}
	_ = json.Unmarshal(b, &k)
	hwm0 := vmHWM(t, cmd.Process.Pid)

	body := `{"workflow_name":"hello","context":{"name":"Ada","blob":"` + strings.Repeat("x", 1_000_000) + `"}}`
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	retries := 0
	start := time.Now()
	for range n {
		wg.Go(func() {
			code, b := do("POST", "/tenants/acme/workflows?wait=60s", k.Key, body)
			for code == http.StatusServiceUnavailable && ctx.Err() == nil {
				// Over the server's in-flight limit: retry as told.
				mu.Lock()
				retries++
				mu.Unlock()
				time.Sleep(time.Second)
				code, b = do("POST", "/tenants/acme/workflows?wait=60s", k.Key, body)
			}
			mu.Lock()
			defer mu.Unlock()
			statuses[code]++
			if code != 200 && statuses[code] == 1 {
				t.Logf("first %d answer: %.300s", code, b)
			}
			if code == 200 && !bytes.Contains(b, []byte(`"Hello, Ada!"`)) {
				t.Errorf("200 without the greeting")
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	hwm := vmHWM(t, cmd.Process.Pid)
	fmt.Printf("MEMLOAD n=%d took=%v statuses=%v retries_after_503=%d VmHWM before=%d MiB after=%d MiB\n", n, took.Round(time.Millisecond), statuses, retries, hwm0>>10, hwm>>10)
}

// vmHWM returns a process's peak resident memory in KiB.
func vmHWM(t *testing.T, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			v, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return v
		}
	}
	t.Fatal("no VmHWM")
	return 0
}
