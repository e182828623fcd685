//go:build unix

package store_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina/internal/store"
)

// A new SQLite database and the folders created for it are private to
// their owner (0600 files, 0700 folders) whatever the umask, -wal and -shm
// included: they hold tenants' contexts. Not parallel: the umask is the
// process's.
func TestSQLiteCreatesPrivateFiles(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	root := t.TempDir()
	path := filepath.Join(root, "new", "sub", "app.db")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := store.Open(ctx, store.Config{URL: "sqlite://" + path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A write, so that the WAL and its index exist.
	e := &store.Execution{ID: "0190b5a4-1111-7000-8000-0000000000aa", WorkflowName: "wf", WorkflowVersion: "v", Status: "Pending",
		Input: []byte(`{"secret":1}`), CreatedAt: time.Now()}
	if err := s.Write(ctx, func(tx store.Tx) error { return tx.InsertExecutions(ctx, []*store.Execution{e}, nil) }); err != nil {
		t.Fatal(err)
	}
	want := map[string]fs.FileMode{
		filepath.Join(root, "new"):        0o700 | fs.ModeDir,
		filepath.Join(root, "new", "sub"): 0o700 | fs.ModeDir,
		path:                              0o600,
		path + "-wal":                     0o600,
		path + "-shm":                     0o600,
	}
	for p, mode := range want {
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if got := fi.Mode() & (fs.ModePerm | fs.ModeDir); got != mode {
			t.Errorf("%s: mode %v, want %v", p, got, mode)
		}
	}
}

// An existing database file keeps its mode: the store only creates.
func TestSQLiteKeepsExistingFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	if err := os.WriteFile(path, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := store.Open(ctx, store.Config{URL: "sqlite://" + path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("existing file's mode became %v, want -rw-r-----", fi.Mode().Perm())
	}
}
