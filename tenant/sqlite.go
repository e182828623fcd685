package tenant

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/internal/store"
)

// dbExt is the extension of a tenant's database file.
const dbExt = ".db"

// sidecarSuffixes are the files SQLite keeps next to a database: the
// write-ahead log, its shared-memory index and the rollback journal.
var sidecarSuffixes = []string{"-wal", "-shm", "-journal"}

// SQLiteApplicationID is the application id (PRAGMA application_id, bytes
// 68-71 of a SQLite file's header) of the tenant databases a
// [SQLiteManager] creates: "Cloa" in ASCII. It is the manager's marker: a
// file of the data folder without it is not a tenant (unless it holds the
// engine's cloacina_migrations table: a tenant created before the marker
// existed), and the manager never lists, opens or deletes it.
const SQLiteApplicationID int32 = 0x436c6f61

// DefaultSQLiteIdleTimeout is the default SQLiteConfig.IdleTimeout.
const DefaultSQLiteIdleTimeout = 2 * time.Minute

// DefaultSQLiteStartParallelism is the default
// SQLiteConfig.StartParallelism.
const DefaultSQLiteStartParallelism = 4

// SQLiteConfig configures a [SQLiteManager] beyond its runners' options.
// The zero value is the default configuration.
type SQLiteConfig struct {
	// IdleTimeout closes a tenant's runner (its database connections,
	// files and polling) once no call of the manager has used it for that
	// long and its database holds no unfinished work: no Pending or
	// Running execution and no task running in this process. Paused
	// executions do not keep it open (only a Resume, which goes through
	// the manager and reopens it, restarts them). The next use opens it
	// again. 0 means DefaultSQLiteIdleTimeout; a negative value keeps
	// every runner open until Remove or Close.
	IdleTimeout time.Duration
	// StartParallelism bounds how many tenant files the manager inspects
	// or opens at once when it starts (0: DefaultSQLiteStartParallelism).
	StartParallelism int
	// NoResume turns off the start scan: by default the manager looks at
	// every tenant database of the folder in the background when it
	// starts and opens each one holding unfinished work (Pending or
	// Running executions), so that work accepted or left by an earlier
	// process runs without waiting for a request. Tools that only read or
	// migrate the folder set it.
	NoResume bool
}

// SQLiteManager is a [Manager] that keeps each tenant in its own SQLite
// file, <dataDir>/<tenantID>.db. Tenant ids may contain hyphens (see
// [ValidateID]). It is safe for concurrent use.
//
// A tenant's runner is opened on first use, and closed again once it has
// been idle for SQLiteConfig.IdleTimeout with no unfinished work, so that
// an idle tenant costs no file descriptor, memory or polling; the next
// use reopens it. Runners handed out by Runner or ExistingRunner may thus
// be shut down between uses (their methods then return
// [cloacina.ErrRunnerClosed]: call Runner again); calls of the manager
// itself (Execute, ExecuteAsync, Metrics) keep theirs open while they run.
// When it starts, the manager opens, in the background, every tenant whose
// database holds Pending or Running executions (see [SQLiteManager.Resumed]):
// work accepted before a crash or released by a drain runs again without
// waiting for a request.
//
// Operations that create or remove one tenant's runner are serialised per
// tenant, and never block other tenants. Remove deletes the tenant's
// database file with its -wal, -shm and -journal files.
//
// The manager creates its data folder with mode 0700 and marks every
// database it creates (see [SQLiteApplicationID]); a file without the
// marker is never adopted, listed or deleted ([ErrForeignStorage]).
//
// Use one manager per data folder: two managers (or processes) on one folder
// would each open a runner per tenant. On a case-insensitive file system
// (macOS and Windows by default) ids that differ only in case name the same
// file; use lower-case ids there.
type SQLiteManager struct {
	manager
	files *sqliteFiles

	stopOnce sync.Once
	stop     context.CancelFunc
	// janitorDone is closed when the idle janitor has stopped (nil without
	// one); resumed when the start scan is over.
	janitorDone chan struct{}
	resumed     chan struct{}
}

var _ Manager = (*SQLiteManager)(nil)

// NewSQLiteManager returns a manager keeping its tenants in dataDir, with
// the default [SQLiteConfig] (see [NewSQLiteManagerWithConfig]).
//
// dataDir may not contain '?', '#' or '%', which a sqlite:// URL cannot
// carry, and opts may not include [cloacina.WithSchema].
func NewSQLiteManager(dataDir string, opts ...cloacina.Option) (*SQLiteManager, error) {
	return NewSQLiteManagerWithConfig(dataDir, SQLiteConfig{}, opts...)
}

// NewSQLiteManagerWithConfig returns a manager keeping its tenants in
// dataDir, which is created with mode 0700 when missing (an existing
// folder that its group or other users may access is used, with a
// warning). opts are passed to [cloacina.NewRunner] for every tenant's
// runner (workflows, limits, logger...); each runner's logger gets a
// "tenant_id" attribute. Unless cfg.NoResume is set, it starts the
// background scan that opens the tenants with unfinished work.
//
// dataDir may not contain '?', '#' or '%', which a sqlite:// URL cannot
// carry, and opts may not include [cloacina.WithSchema].
func NewSQLiteManagerWithConfig(dataDir string, cfg SQLiteConfig, opts ...cloacina.Option) (*SQLiteManager, error) {
	if dataDir == "" {
		return nil, errors.New("tenant: the data folder is empty")
	}
	if cfg.StartParallelism < 0 {
		return nil, fmt.Errorf("%w: negative SQLiteConfig.StartParallelism", cloacina.ErrInvalidOption)
	}
	dir, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, fmt.Errorf("tenant: data folder %s: %w", dataDir, err)
	}
	if strings.ContainsAny(dir, "?#%") {
		return nil, fmt.Errorf("tenant: data folder %q contains '?', '#' or '%%', which a sqlite:// URL cannot carry", dir)
	}
	// Read the options once, to learn the logger and the workflows.
	rc := readOptions(opts)
	if rc.Schema != "" {
		return nil, fmt.Errorf("%w: WithSchema: a SQLite tenant is a file, not a schema", cloacina.ErrInvalidOption)
	}
	log := rc.Logger
	if log == nil {
		log = slog.Default()
	}
	own := log.With("component", "tenant", "data_dir", dir)
	if err := makePrivateDir(dir, own); err != nil {
		return nil, err
	}
	files := &sqliteFiles{dir: dir, opts: slices.Clone(opts), base: log, log: own}
	m := &SQLiteManager{files: files, resumed: make(chan struct{})}
	m.init(files, rc, own)

	idle := cfg.IdleTimeout
	if idle == 0 {
		idle = DefaultSQLiteIdleTimeout
	}
	par := cfg.StartParallelism
	if par == 0 {
		par = DefaultSQLiteStartParallelism
	}
	ctx, stop := context.WithCancel(context.Background())
	m.stop = stop
	if idle > 0 {
		m.janitorDone = make(chan struct{})
		go m.janitor(ctx, idle)
	}
	if cfg.NoResume || rc.EnqueueOnly {
		close(m.resumed)
	} else {
		go m.resume(ctx, par)
	}
	return m, nil
}

// makePrivateDir creates dir with mode 0700, whatever the umask, or warns
// when an existing dir is open to its group or other users.
func makePrivateDir(dir string, log *slog.Logger) error {
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("tenant: creating data folder: %w", err)
		}
		// MkdirAll's mode goes through the umask, which can only remove
		// permissions; set it exactly.
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("tenant: data folder: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("tenant: data folder: %w", err)
	case !st.IsDir():
		return fmt.Errorf("tenant: data folder %s is not a folder", dir)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		log.Warn("the data folder is accessible to other users; tenants' data may be readable (chmod 700 it)",
			"mode", fmt.Sprintf("%#o", perm))
	}
	return nil
}

// Resumed returns a channel closed once the start scan is over: every
// tenant whose database held unfinished work when the manager started has
// been opened (or failed to open, which is logged), so that its runner
// runs that work. It is closed at once when the scan is off
// (SQLiteConfig.NoResume, or enqueue-only runners).
func (m *SQLiteManager) Resumed() <-chan struct{} { return m.resumed }

// Close stops the idle janitor and the start scan, then closes the
// manager (see [manager.Close]): every runner is shut down, each waiting
// for its running tasks until ctx ends. The tenants' data is kept.
func (m *SQLiteManager) Close(ctx context.Context) error {
	m.stopOnce.Do(func() {
		m.stop()
		if m.janitorDone != nil {
			<-m.janitorDone
		}
		<-m.resumed
	})
	return m.manager.Close(ctx)
}

// resume opens, at most par at a time, the runner of every tenant whose
// database holds unfinished work, then closes m.resumed.
func (m *SQLiteManager) resume(ctx context.Context, par int) {
	defer close(m.resumed)
	ids, err := m.files.list(ctx)
	if err != nil {
		m.log.Error("looking for tenants with unfinished work", "err", err)
		return
	}
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	var mu sync.Mutex
	opened, failed := 0, 0
	for _, id := range ids {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			busy, err := store.SQLiteHasUnfinishedWork(ctx, m.files.path(id))
			if err == nil && busy {
				_, err = m.ExistingRunner(ctx, id)
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil && ctx.Err() == nil && !errors.Is(err, ErrManagerClosed):
				failed++
				m.log.Warn("opening a tenant with unfinished work", "tenant", id, "err", err)
			case err == nil && busy:
				opened++
			}
		})
	}
	wg.Wait()
	if opened+failed > 0 || ctx.Err() == nil {
		m.log.Info("tenants with unfinished work opened", "tenants", len(ids), "opened", opened, "failed", failed)
	}
}

// janitor closes the runners of tenants idle for idle with no unfinished
// work, until ctx ends.
func (m *SQLiteManager) janitor(ctx context.Context, idle time.Duration) {
	defer close(m.janitorDone)
	every := min(max(idle/4, 10*time.Millisecond), 30*time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, id := range m.idleTenants(idle) {
			if ctx.Err() != nil {
				return
			}
			if m.evict(ctx, id, idle, m.files.busy(id), nil) {
				m.log.Debug("idle tenant runner closed", "tenant", id)
				m.reopenIfBusy(ctx, id, m.files.hasWork(id))
			}
		}
	}
}

// Path returns the database file of a tenant (which may not exist).
func (m *SQLiteManager) Path(tenantID string) (string, error) {
	if err := m.check(tenantID); err != nil {
		return "", err
	}
	return m.files.path(tenantID), nil
}

// sqliteFiles is the backend of SQLiteManager: one database file per
// tenant in a folder.
type sqliteFiles struct {
	dir  string
	opts []cloacina.Option
	base *slog.Logger // the options' logger, for the runners
	log  *slog.Logger // the manager's own logger
}

func (f *sqliteFiles) path(id string) string { return filepath.Join(f.dir, id+dbExt) }

func (f *sqliteFiles) validate(id string) error { return ValidateID(id, true) }

func (f *sqliteFiles) where(id string) []any { return []any{"path", f.path(id)} }

func (f *sqliteFiles) close(context.Context) error { return nil }

// busy returns the check that keeps an idle tenant's runner open: its
// database holds Pending or Running executions, or the runner runs a task
// (or the database cannot be read).
func (f *sqliteFiles) busy(id string) func(context.Context, *cloacina.Runner) bool {
	return func(ctx context.Context, r *cloacina.Runner) bool {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if f.hasWork(id)(ctx) {
			return true
		}
		mt, err := r.Metrics(ctx)
		return err != nil || mt.RunningTasks > 0
	}
}

// hasWork reports whether the tenant's database holds Pending or Running
// executions (or cannot be read).
func (f *sqliteFiles) hasWork(id string) func(context.Context) bool {
	return func(ctx context.Context) bool {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		work, err := store.SQLiteHasUnfinishedWork(ctx, f.path(id))
		return err != nil || work
	}
}

// fileKind is what a path of the data folder holds.
type fileKind int

const (
	fileMissing fileKind = iota // nothing
	fileTenant                  // a tenant database made by a manager
	fileForeign                 // anything else
)

// sqliteMagic opens every SQLite database file.
var sqliteMagic = []byte("SQLite format 3\x00")

// kind tells a tenant database (SQLiteApplicationID in its header, or, for
// a database made before the marker, the engine's migrations table) from
// anything else, reading the file's 100-byte header.
func (f *sqliteFiles) kind(ctx context.Context, path string) (fileKind, error) {
	fh, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fileMissing, nil
	}
	if err != nil {
		return 0, err
	}
	var hdr [100]byte
	_, err = io.ReadFull(fh, hdr[:])
	fh.Close()
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || (err == nil && !bytes.Equal(hdr[:16], sqliteMagic)) {
		return fileForeign, nil // not a SQLite database (or an empty file)
	}
	if err != nil {
		return 0, err
	}
	switch int32(binary.BigEndian.Uint32(hdr[68:72])) {
	case SQLiteApplicationID:
		return fileTenant, nil
	case 0:
		ok, err := store.SQLiteHasMigrationsTable(ctx, path)
		if err != nil {
			return 0, err
		}
		if ok {
			return fileTenant, nil
		}
	}
	return fileForeign, nil
}

func (f *sqliteFiles) foreign(ctx context.Context, id string) error {
	k, err := f.kind(ctx, f.path(id))
	if err != nil {
		return fmt.Errorf("tenant %q: %w", id, err)
	}
	if k == fileForeign {
		return foreignFile(id, f.path(id))
	}
	return nil
}

func foreignFile(id, path string) error {
	return fmt.Errorf("%w: tenant %q: %s is not a tenant database made by this service; it is left alone", ErrForeignStorage, id, path)
}

func (f *sqliteFiles) open(ctx context.Context, id string) (*cloacina.Runner, bool, error) {
	path := f.path(id)
	k, err := f.kind(ctx, path)
	if err != nil {
		return nil, false, fmt.Errorf("tenant %q: %w", id, err)
	}
	if k == fileForeign {
		return nil, false, foreignFile(id, path)
	}
	fresh := k == fileMissing
	if fresh {
		// A log left by a deleted database must not be replayed into the
		// new one.
		if err := removeFiles(path, false); err != nil {
			return nil, false, fmt.Errorf("tenant %q: removing stale files: %w", id, err)
		}
		if err := createMarked(ctx, path); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return nil, false, foreignFile(id, path)
			}
			if rmErr := removeFiles(path, true); rmErr != nil {
				f.log.Warn("removing the files of a tenant that failed to open", "tenant", id, "err", rmErr)
			}
			return nil, false, fmt.Errorf("tenant %q: creating its database: %w", id, err)
		}
	}
	// The engine logs a "tenant" attribute of its own (the PostgreSQL
	// schema, empty on SQLite): use another key.
	opts := append(slices.Clip(f.opts), cloacina.WithLogger(f.base.With("tenant_id", id)), cloacina.WithTenantLabel(id))
	r, err := cloacina.NewRunner(ctx, "sqlite://"+path, opts...)
	if err != nil {
		if fresh {
			// Leave no half-created tenant behind.
			if rmErr := removeFiles(path, true); rmErr != nil {
				f.log.Warn("removing the files of a tenant that failed to open", "tenant", id, "err", rmErr)
			}
		}
		return nil, false, fmt.Errorf("tenant %q: opening its database: %w", id, err)
	}
	return r, fresh, nil
}

// createMarked creates a new database file at path, with mode 0600 and
// its application id set to SQLiteApplicationID, and never replaces an
// existing file (an error wrapping fs.ErrExist). The database is made
// and marked under a temporary name in the same folder, then linked to
// path, so that path never holds an unmarked file: a crash half way
// leaves only a temporary file, which is not a tenant and is removed at
// the next creation of that tenant.
func createMarked(ctx context.Context, path string) error {
	tmp := creatingPath(path)
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	fh, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(tmp) //nolint:errcheck // gone after the link, or a leftover removed next time
	// The umask may only have removed bits from 0600; make it exact.
	err = fh.Chmod(0o600)
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := store.SQLiteSetApplicationID(ctx, tmp, SQLiteApplicationID); err != nil {
		return err
	}
	return os.Link(tmp, path)
}

// creatingPath is the temporary name under which createMarked makes a
// tenant's database: not a tenant file (its name does not end in .db).
func creatingPath(path string) string { return path + ".creating" }

// list returns the tenants that have a database file made by a manager.
// Files whose name is not a valid tenant id followed by ".db", and files
// without the marker, are ignored.
func (f *sqliteFiles) list(ctx context.Context) ([]string, error) {
	entries, err := os.ReadDir(f.dir)
	if err != nil {
		return nil, fmt.Errorf("tenant: listing tenants: %w", err)
	}
	ids := []string{}
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), dbExt)
		if !ok || ValidateID(id, true) != nil {
			continue
		}
		if e.Type().IsRegular() || (e.Type()&fs.ModeSymlink != 0 && isFile(filepath.Join(f.dir, e.Name()))) {
			k, err := f.kind(ctx, filepath.Join(f.dir, e.Name()))
			if err != nil {
				f.log.Warn("reading a database file's header", "file", e.Name(), "err", err)
				continue
			}
			if k == fileTenant {
				ids = append(ids, id)
			}
		}
	}
	return ids, nil
}

// exists reports whether the tenant has a database file made by a
// manager.
func (f *sqliteFiles) exists(ctx context.Context, id string) (bool, error) {
	st, err := os.Stat(f.path(id))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("tenant %q: %w", id, err)
	}
	if !st.Mode().IsRegular() {
		return false, nil
	}
	k, err := f.kind(ctx, f.path(id))
	if err != nil {
		return false, fmt.Errorf("tenant %q: %w", id, err)
	}
	return k == fileTenant, nil
}

// delete deletes the tenant's database file with its -wal, -shm and
// -journal files, unless the file is not a tenant database.
func (f *sqliteFiles) delete(ctx context.Context, id string) error {
	if err := f.foreign(ctx, id); err != nil {
		return err
	}
	return removeFiles(f.path(id), true)
}

// removeFiles deletes a database's side files and then, when withDB is
// set, the database itself: the database goes last, so that a failure
// leaves the tenant listed (Remove can be tried again) and no stale log can
// be replayed into a new database.
func removeFiles(dbPath string, withDB bool) error {
	for _, suffix := range sidecarSuffixes {
		if err := os.Remove(dbPath + suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if withDB {
		if err := os.Remove(dbPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

func isFile(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}
