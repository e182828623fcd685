package faulttest_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// soakResult is the part of the soak's SOAK_RESULT line the test reads.
type soakResult struct {
	Started          int  `json:"started"`
	Executions       int  `json:"executions"`
	Completed        int  `json:"completed"`
	Lost             int  `json:"lost"`
	Duplicates       int  `json:"duplicates"`
	Concurrent       int  `json:"concurrent"`
	Missing          int  `json:"missing"`
	Kills            int  `json:"kills"`
	Recoveries       int  `json:"recoveries"`
	UncleanShutdowns int  `json:"unclean_shutdowns"`
	OK               bool `json:"ok"`
}

// TestSoakShort is the short version of the soak for CI: 20s of three
// SQLite workers killed about every 2s, then the backlog drains.
func TestSoakShort(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	dir := t.TempDir()
	cmd := exec.CommandContext(ctx, soakBin, "-mode", "soak",
		"-db", "sqlite://"+filepath.Join(dir, "soak.db"), "-logdir", filepath.Join(dir, "logs"),
		"-duration", "20s", "-workers", "3", "-rate", "15", "-kill-every", "2s",
		"-heartbeat", "500ms", "-stale", "3s", "-drain-timeout", "90s")
	cmd.Env = os.Environ()
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	t.Logf("soak output:\n%s", stdout.String())
	if stderr.Len() > 0 {
		t.Logf("soak stderr:\n%s", stderr.String())
	}
	var res *soakResult
	for _, line := range strings.Split(stdout.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, "SOAK_RESULT "); ok {
			res = &soakResult{}
			if err := json.Unmarshal([]byte(rest), res); err != nil {
				t.Fatalf("parsing the SOAK_RESULT line: %v", err)
			}
		}
	}
	if res == nil {
		t.Fatalf("no SOAK_RESULT line (exit: %v)", err)
	}
	if res.Lost != 0 || res.Duplicates != 0 {
		t.Errorf("lost %d, duplicates %d; want 0 and 0", res.Lost, res.Duplicates)
	}
	if res.Concurrent != 0 || res.Missing != 0 || res.UncleanShutdowns != 0 {
		t.Errorf("concurrent %d, missing %d, unclean shutdowns %d; want 0", res.Concurrent, res.Missing, res.UncleanShutdowns)
	}
	if res.Kills == 0 || res.Started == 0 || res.Completed != res.Executions {
		t.Errorf("kills %d, started %d, completed %d of %d: want kills and every execution completed",
			res.Kills, res.Started, res.Completed, res.Executions)
	}
	if !res.OK || err != nil {
		t.Errorf("soak verdict ok=%v, exit %v; want ok and exit status 0", res.OK, err)
	}
}
