package faulttest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"
)

// Run is one completed run of a task body, as recorded in the ledger.
type Run struct {
	// Key is the producer-chosen key of the execution (see KeyField).
	Key    string `json:"key"`
	Task   string `json:"task"`
	PID    int    `json:"pid"`
	Worker string `json:"worker"`
	// Start is when the body began, End when it finished (and the record
	// was written).
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Ledger appends the runs of one process to a file shared by all processes.
//
// Every record is written with one write(2) on a file opened with O_APPEND,
// so records of different processes never interleave, and a record a
// process wrote survives the process being killed (it is in the page cache).
// Each record is framed by newlines on both sides, so that a record torn by
// a kill in the middle of its write (possible only across a page boundary)
// stays on a line of its own, which [ReadLedger] counts as torn.
type Ledger struct {
	f      *os.File
	worker string
	pid    int
}

// OpenLedger opens (creating it when missing) the ledger at path for a
// process running under worker id worker.
func OpenLedger(path, worker string) (*Ledger, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("faulttest: opening the ledger: %w", err)
	}
	return &Ledger{f: f, worker: worker, pid: os.Getpid()}, nil
}

// Record appends one completed run. It is safe for concurrent use.
func (l *Ledger) Record(key, task string, start, end time.Time) error {
	b, err := json.Marshal(Run{Key: key, Task: task, PID: l.pid, Worker: l.worker, Start: start, End: end})
	if err != nil {
		return err
	}
	rec := make([]byte, 0, len(b)+2)
	rec = append(rec, '\n')
	rec = append(rec, b...)
	rec = append(rec, '\n')
	if _, err := l.f.Write(rec); err != nil {
		return fmt.Errorf("faulttest: writing the ledger: %w", err)
	}
	return nil
}

// Close closes the ledger file.
func (l *Ledger) Close() error { return l.f.Close() }

// ReadLedger reads every run recorded at path, in file order, and counts
// the torn records (left by a process killed while writing one). A missing
// file is an empty ledger.
func ReadLedger(path string) (runs []Run, torn int, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("faulttest: reading the ledger: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var r Run
		if err := json.Unmarshal(line, &r); err != nil || r.Key == "" || r.Task == "" {
			torn++
			continue
		}
		runs = append(runs, r)
	}
	if err := sc.Err(); err != nil {
		return nil, 0, fmt.Errorf("faulttest: reading the ledger: %w", err)
	}
	return runs, torn, nil
}
