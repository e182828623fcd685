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
// Remove deletes the tenant's database file with its -wal, -shm and
// -journal files.
//
// Use one manager per data folder: two managers (or processes) on one folder
// would each open a runner per tenant. On a case-insensitive file system
// (macOS and Windows by default) ids that differ only in case name the same
// file; use lower-case ids there.
type SQLiteManager struct {
	manager
	files *sqliteFiles
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
	cfg := readOptions(opts)
	if cfg.Schema != "" {
		return nil, fmt.Errorf("%w: WithSchema: a SQLite tenant is a file, not a schema", cloacina.ErrInvalidOption)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	own := log.With("component", "tenant", "data_dir", dir)
	files := &sqliteFiles{dir: dir, opts: slices.Clone(opts), base: log, log: own}
	m := &SQLiteManager{files: files}
	m.init(files, cfg, own)
	return m, nil
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

func (f *sqliteFiles) open(ctx context.Context, id string) (*cloacina.Runner, bool, error) {
	path := f.path(id)
	_, err := os.Lstat(path)
	fresh := errors.Is(err, fs.ErrNotExist)
	if err != nil && !fresh {
		return nil, false, fmt.Errorf("tenant %q: %w", id, err)
	}
	if fresh {
		// A log left by a deleted database must not be replayed into the
		// new one.
		if err := removeFiles(path, false); err != nil {
			return nil, false, fmt.Errorf("tenant %q: removing stale files: %w", id, err)
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

// list returns the tenants that have a database file. Files whose name is
// not a valid tenant id followed by ".db" are ignored.
func (f *sqliteFiles) list(context.Context) ([]string, error) {
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
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// exists reports whether the tenant has a database file.
func (f *sqliteFiles) exists(_ context.Context, id string) (bool, error) {
	st, err := os.Stat(f.path(id))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("tenant %q: %w", id, err)
	}
	return st.Mode().IsRegular(), nil
}

// delete deletes the tenant's database file with its -wal, -shm and
// -journal files.
func (f *sqliteFiles) delete(_ context.Context, id string) error {
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
