package tenant

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/cloacina-go/cloacina"
)

// dbExt is the extension of a tenant's database file.
const dbExt = ".db"

// sidecarSuffixes are the files SQLite keeps next to a database: the
// write-ahead log, its shared-memory index and the rollback journal.
var sidecarSuffixes = []string{"-wal", "-shm", "-journal"}

// SQLiteManager is a [Manager] that keeps each tenant in its own SQLite
// file, <dataDir>/<tenantID>.db. Tenant ids may contain hyphens (see
// [ValidateID]). It is safe for concurrent use.
//
// A tenant's runner is opened on first use and kept until [SQLiteManager.Remove]
// or [SQLiteManager.Close]. Operations that create or remove one tenant's
// runner are serialised per tenant, and never block other tenants.
//
// Use one manager per data folder: two managers (or processes) on one folder
// would each open a runner per tenant. On a case-insensitive file system
// (macOS and Windows by default) ids that differ only in case name the same
// file; use lower-case ids there.
type SQLiteManager struct {
	dir       string
	opts      []cloacina.Option
	workflows map[string]bool
	base      *slog.Logger // the options' logger, for the runners
	log       *slog.Logger // the manager's own logger

	mu     sync.Mutex
	closed bool
	slots  map[string]*slot
	// ops counts the goroutines holding or waiting for a slot's lock, so
	// that Close can wait for creations and removals in progress.
	ops sync.WaitGroup
}

// slot is one tenant's place in the manager.
type slot struct {
	// lock (a channel, so that waiting for it can end with a context) is
	// held while the tenant's runner is created or removed.
	lock chan struct{}
	// refs counts the goroutines holding or waiting for lock; guarded by
	// SQLiteManager.mu. A slot with no refs and no runner is dropped.
	refs int
	// runner is the tenant's open runner, or nil. Guarded by
	// SQLiteManager.mu, and set only by the holder of lock.
	runner *cloacina.Runner
}

var _ Manager = (*SQLiteManager)(nil)

// NewSQLiteManager returns a manager keeping its tenants in dataDir, which
// is created when missing. opts are passed to [cloacina.NewRunner] for every
// tenant's runner (workflows, limits, logger...); each runner's logger gets
// a "tenant_id" attribute.
//
// dataDir may not contain '?', '#' or '%', which a sqlite:// URL cannot
// carry, and opts may not include [cloacina.WithSchema].
func NewSQLiteManager(dataDir string, opts ...cloacina.Option) (*SQLiteManager, error) {
	if dataDir == "" {
		return nil, errors.New("tenant: the data folder is empty")
	}
	dir, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, fmt.Errorf("tenant: data folder %s: %w", dataDir, err)
	}
	if strings.ContainsAny(dir, "?#%") {
		return nil, fmt.Errorf("tenant: data folder %q contains '?', '#' or '%%', which a sqlite:// URL cannot carry", dir)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("tenant: creating data folder: %w", err)
	}
	// Read the options once, to learn the logger and the workflows.
	var cfg cloacina.Config
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if cfg.Schema != "" {
		return nil, fmt.Errorf("%w: WithSchema: a SQLite tenant is a file, not a schema", cloacina.ErrInvalidOption)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	wfs := make(map[string]bool, len(cfg.Workflows))
	for _, wf := range cfg.Workflows {
		if wf != nil {
			wfs[wf.Name()] = true
		}
	}
	return &SQLiteManager{
		dir:       dir,
		opts:      slices.Clone(opts),
		workflows: wfs,
		base:      log,
		log:       log.With("component", "tenant", "data_dir", dir),
		slots:     map[string]*slot{},
	}, nil
}

// Path returns the database file of a tenant (which may not exist).
func (m *SQLiteManager) Path(tenantID string) (string, error) {
	if err := m.check(tenantID); err != nil {
		return "", err
	}
	return m.path(tenantID), nil
}

func (m *SQLiteManager) path(id string) string { return filepath.Join(m.dir, id+dbExt) }

// check returns ErrManagerClosed after Close, and the error of an invalid
// id.
func (m *SQLiteManager) check(tenantID string) error {
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return ErrManagerClosed
	}
	return ValidateID(tenantID, true)
}

// Runner returns the tenant's runner, opening the tenant's database on
// first use (creating and migrating it when missing). Concurrent first
// calls for one tenant open exactly one runner; a failed opening is not
// remembered, so the next call tries again.
func (m *SQLiteManager) Runner(ctx context.Context, tenantID string) (*cloacina.Runner, error) {
	if err := m.check(tenantID); err != nil {
		return nil, err
	}
	m.mu.Lock()
	if s := m.slots[tenantID]; s != nil && s.runner != nil {
		r := s.runner
		m.mu.Unlock()
		return r, nil
	}
	m.mu.Unlock()

	s, err := m.lock(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	defer m.unlock(tenantID, s)
	m.mu.Lock()
	r := s.runner // opened while this call waited
	m.mu.Unlock()
	if r != nil {
		return r, nil
	}
	r, err = m.open(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	if m.closed {
		// Close ran while the runner was being opened and could not see it.
		m.mu.Unlock()
		// The runner was never handed out, so no task runs: nothing to wait for.
		if err := r.Shutdown(context.WithoutCancel(ctx)); err != nil {
			m.log.Warn("shutting down a runner opened during Close", "tenant", tenantID, "err", err)
		}
		return nil, ErrManagerClosed
	}
	s.runner = r
	m.mu.Unlock()
	return r, nil
}

// open opens the tenant's runner. The caller holds the tenant's lock.
func (m *SQLiteManager) open(ctx context.Context, id string) (*cloacina.Runner, error) {
	path := m.path(id)
	_, err := os.Lstat(path)
	fresh := errors.Is(err, fs.ErrNotExist)
	if err != nil && !fresh {
		return nil, fmt.Errorf("tenant %q: %w", id, err)
	}
	if fresh {
		// A log left by a deleted database must not be replayed into the
		// new one.
		if err := removeFiles(path, false); err != nil {
			return nil, fmt.Errorf("tenant %q: removing stale files: %w", id, err)
		}
	}
	// The engine logs a "tenant" attribute of its own (the PostgreSQL
	// schema, empty on SQLite): use another key.
	opts := append(slices.Clip(m.opts), cloacina.WithLogger(m.base.With("tenant_id", id)))
	r, err := cloacina.NewRunner(ctx, "sqlite://"+path, opts...)
	if err != nil {
		if fresh {
			// Leave no half-created tenant behind.
			if rmErr := removeFiles(path, true); rmErr != nil {
				m.log.Warn("removing the files of a tenant that failed to open", "tenant", id, "err", rmErr)
			}
		}
		return nil, fmt.Errorf("tenant %q: opening its database: %w", id, err)
	}
	if fresh {
		m.log.Info("tenant created", "tenant", id, "path", path)
	} else {
		m.log.Debug("tenant opened", "tenant", id, "path", path)
	}
	return r, nil
}

// lock takes the tenant's lock, waiting until ctx ends.
func (m *SQLiteManager) lock(ctx context.Context, id string) (*slot, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrManagerClosed
	}
	s := m.slots[id]
	if s == nil {
		s = &slot{lock: make(chan struct{}, 1)}
		m.slots[id] = s
	}
	s.refs++
	m.ops.Add(1)
	m.mu.Unlock()
	select {
	case s.lock <- struct{}{}:
		return s, nil
	case <-ctx.Done():
		m.release(id, s)
		return nil, fmt.Errorf("tenant %q: waiting for another operation on the tenant: %w", id, ctx.Err())
	}
}

// unlock releases the tenant's lock taken by lock.
func (m *SQLiteManager) unlock(id string, s *slot) {
	<-s.lock
	m.release(id, s)
}

func (m *SQLiteManager) release(id string, s *slot) {
	m.mu.Lock()
	s.refs--
	if s.refs == 0 && s.runner == nil {
		delete(m.slots, id)
	}
	m.mu.Unlock()
	m.ops.Done()
}

// Execute runs a workflow for a tenant and waits for the result (see
// [cloacina.Runner.Execute]). An unknown workflow is refused before the
// tenant's storage is created.
func (m *SQLiteManager) Execute(ctx context.Context, tenantID, workflow string, input any) (*cloacina.Result, error) {
	r, err := m.runnerFor(ctx, tenantID, workflow)
	if err != nil {
		return nil, err
	}
	res, err := r.Execute(ctx, workflow, input)
	if err != nil {
		return nil, fmt.Errorf("tenant %q: %w", tenantID, err)
	}
	return res, nil
}

// ExecuteAsync starts a workflow for a tenant (see
// [cloacina.Runner.ExecuteAsync]). An unknown workflow is refused before
// the tenant's storage is created.
func (m *SQLiteManager) ExecuteAsync(ctx context.Context, tenantID, workflow string, input any) (*cloacina.ExecutionHandle, error) {
	r, err := m.runnerFor(ctx, tenantID, workflow)
	if err != nil {
		return nil, err
	}
	h, err := r.ExecuteAsync(ctx, workflow, input)
	if err != nil {
		return nil, fmt.Errorf("tenant %q: %w", tenantID, err)
	}
	return h, nil
}

func (m *SQLiteManager) runnerFor(ctx context.Context, tenantID, workflow string) (*cloacina.Runner, error) {
	if err := m.check(tenantID); err != nil {
		return nil, err
	}
	if !m.workflows[workflow] {
		return nil, fmt.Errorf("%w: %q", cloacina.ErrUnknownWorkflow, workflow)
	}
	return m.Runner(ctx, tenantID)
}

// Tenants lists the tenants that have a database file, sorted. Files whose
// name is not a valid tenant id followed by ".db" are ignored.
func (m *SQLiteManager) Tenants(ctx context.Context) ([]string, error) {
	if err := m.checkClosed(ctx); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(m.dir)
	if err != nil {
		return nil, fmt.Errorf("tenant: listing tenants: %w", err)
	}
	ids := []string{}
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), dbExt)
		if !ok || ValidateID(id, true) != nil {
			continue
		}
		if e.Type().IsRegular() || (e.Type()&fs.ModeSymlink != 0 && isFile(filepath.Join(m.dir, e.Name()))) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// Exists reports whether the tenant has a database file.
func (m *SQLiteManager) Exists(ctx context.Context, tenantID string) (bool, error) {
	if err := m.checkClosed(ctx); err != nil {
		return false, err
	}
	if err := ValidateID(tenantID, true); err != nil {
		return false, err
	}
	st, err := os.Stat(m.path(tenantID))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("tenant %q: %w", tenantID, err)
	}
	return st.Mode().IsRegular(), nil
}

func (m *SQLiteManager) checkClosed(ctx context.Context) error {
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return ErrManagerClosed
	}
	return ctx.Err()
}

// Remove shuts the tenant's runner down, waiting for its running tasks
// until ctx ends (tasks still running then are interrupted), and deletes
// the tenant's database file with its -wal, -shm and -journal files.
// Removing a tenant that has neither a runner nor a database file returns
// [ErrTenantNotFound]. A later [SQLiteManager.Runner] for the tenant
// creates a new, empty database.
//
// Remove returns nil once the files are deleted: an error of the runner's
// shutdown (such as interrupted tasks) is logged.
func (m *SQLiteManager) Remove(ctx context.Context, tenantID string) error {
	if err := m.check(tenantID); err != nil {
		return err
	}
	s, err := m.lock(ctx, tenantID)
	if err != nil {
		return err
	}
	defer m.unlock(tenantID, s)
	path := m.path(tenantID)
	exists, err := m.Exists(ctx, tenantID)
	if err != nil {
		return err
	}
	m.mu.Lock()
	r := s.runner
	s.runner = nil
	m.mu.Unlock()
	if r == nil && !exists {
		return fmt.Errorf("%w: %q", ErrTenantNotFound, tenantID)
	}
	if r != nil {
		if err := r.Shutdown(ctx); err != nil {
			m.log.Warn("shutting down the runner of a removed tenant", "tenant", tenantID, "err", err)
		}
	}
	if err := removeFiles(path, true); err != nil {
		return fmt.Errorf("tenant %q: deleting its data: %w", tenantID, err)
	}
	m.log.Info("tenant removed", "tenant", tenantID, "path", path)
	return nil
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

// Metrics returns the tenant's metrics, computed in SQL by
// [cloacina.Runner.Metrics]. Like every use of a tenant, it opens the
// tenant's database, creating it when missing.
func (m *SQLiteManager) Metrics(ctx context.Context, tenantID string) (*cloacina.Metrics, error) {
	r, err := m.Runner(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	mt, err := r.Metrics(ctx)
	if err != nil {
		return nil, fmt.Errorf("tenant %q: metrics: %w", tenantID, err)
	}
	return mt, nil
}

// Close shuts every tenant's runner down (see [cloacina.Runner.Shutdown]),
// all at once, each waiting for its running tasks until ctx ends, then
// waits for creations and removals in progress. The errors of the
// shutdowns are joined. After Close, every method, Close included, returns
// [ErrManagerClosed].
func (m *SQLiteManager) Close(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrManagerClosed
	}
	m.closed = true
	type open struct {
		id string
		r  *cloacina.Runner
	}
	var runners []open
	for id, s := range m.slots {
		if s.runner != nil {
			runners = append(runners, open{id, s.runner})
			s.runner = nil
		}
	}
	m.mu.Unlock()
	slices.SortFunc(runners, func(a, b open) int { return strings.Compare(a.id, b.id) })

	errs := make([]error, len(runners)+1)
	var wg sync.WaitGroup
	for i, o := range runners {
		wg.Go(func() {
			if err := o.r.Shutdown(ctx); err != nil {
				errs[i] = fmt.Errorf("tenant %q: shutting down: %w", o.id, err)
			}
		})
	}
	wg.Wait()
	// A runner being opened now is shut down by its opener, which sees
	// that the manager is closed; a removal in progress finishes.
	idle := make(chan struct{})
	go func() { m.ops.Wait(); close(idle) }()
	select {
	case <-idle:
	case <-ctx.Done():
		errs[len(runners)] = fmt.Errorf("tenant: waiting for tenant operations in progress: %w", ctx.Err())
	}
	m.log.Info("tenant manager closed", "runners", len(runners))
	return errors.Join(errs...)
}
