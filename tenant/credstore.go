package tenant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
)

// CredentialStore keeps the credentials of the tenants of a
// [SecureManager], by tenant id. Implementations must be safe for
// concurrent use and must never print or log a password.
//
// [NewMemoryCredentialStore] keeps them in memory (tests, or credentials
// re-created at each start), [NewFileCredentialStore] in a JSON file only
// its owner may read. In production, keep them in a secrets manager by
// implementing the four methods over its client, for instance with
// HashiCorp Vault's KV engine or AWS Secrets Manager:
//
//	type vaultStore struct{ kv *vault.KVv2 } // path "cloacina/tenants/<id>"
//
//	func (s vaultStore) Get(ctx context.Context, id string) (*tenant.TenantCredentials, error) {
//		sec, err := s.kv.Get(ctx, "cloacina/tenants/"+id)
//		if errors.Is(err, vault.ErrSecretNotFound) {
//			return nil, fmt.Errorf("%w: %q", tenant.ErrTenantNotFound, id)
//		}
//		if err != nil {
//			return nil, err
//		}
//		return &tenant.TenantCredentials{
//			Username: sec.Data["username"].(string), Password: sec.Data["password"].(string),
//			Schema: sec.Data["schema"].(string), ConnectionString: sec.Data["connection_string"].(string),
//		}, nil
//	}
//	// Put writes the four fields (kv.Put), Delete removes the secret and
//	// all its versions (kv.DeleteMetadata; a missing one is no error),
//	// List lists the keys under "cloacina/tenants/" (sorted).
//
// With AWS Secrets Manager, Get is GetSecretValue of "cloacina/tenants/<id>"
// (ResourceNotFoundException means [ErrTenantNotFound]), Put is
// PutSecretValue (or CreateSecret the first time) of the JSON of the
// fields, Delete is DeleteSecret, and List is ListSecrets filtered on the
// name prefix.
type CredentialStore interface {
	// Get returns the tenant's credentials, or an error wrapping
	// [ErrTenantNotFound] when the store has none.
	Get(ctx context.Context, tenantID string) (*TenantCredentials, error)
	// Put stores the tenant's credentials, replacing any.
	Put(ctx context.Context, tenantID string, creds *TenantCredentials) error
	// Delete forgets the tenant's credentials; deleting missing ones is no
	// error.
	Delete(ctx context.Context, tenantID string) error
	// List returns the ids of the tenants with credentials, sorted.
	List(ctx context.Context) ([]string, error)
}

// ErrInsecureCredentialFile is returned by [NewFileCredentialStore] for a
// file that its group or other users may read or write.
var ErrInsecureCredentialFile = errors.New("tenant: credential file is accessible to other users")

// checkPut checks the arguments of Put.
func checkPut(tenantID string, creds *TenantCredentials) error {
	if tenantID == "" {
		return errors.New("tenant: credential store: empty tenant id")
	}
	if creds == nil {
		return fmt.Errorf("tenant: credential store: nil credentials for tenant %q", tenantID)
	}
	return nil
}

// MemoryCredentialStore is a [CredentialStore] in memory. It is safe for
// concurrent use.
type MemoryCredentialStore struct {
	mu    sync.RWMutex
	creds map[string]TenantCredentials
}

var _ CredentialStore = (*MemoryCredentialStore)(nil)

// NewMemoryCredentialStore returns an empty store in memory.
func NewMemoryCredentialStore() *MemoryCredentialStore {
	return &MemoryCredentialStore{creds: map[string]TenantCredentials{}}
}

// Get returns a copy of the tenant's credentials.
func (s *MemoryCredentialStore) Get(ctx context.Context, tenantID string) (*TenantCredentials, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	c, ok := s.creds[tenantID]
	s.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: no credentials for %s", ErrTenantNotFound, quoteID(tenantID))
	}
	return &c, nil
}

// Put stores a copy of creds.
func (s *MemoryCredentialStore) Put(ctx context.Context, tenantID string, creds *TenantCredentials) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkPut(tenantID, creds); err != nil {
		return err
	}
	s.mu.Lock()
	s.creds[tenantID] = *creds
	s.mu.Unlock()
	return nil
}

// Delete forgets the tenant's credentials.
func (s *MemoryCredentialStore) Delete(ctx context.Context, tenantID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.creds, tenantID)
	s.mu.Unlock()
	return nil
}

// List returns the tenant ids, sorted.
func (s *MemoryCredentialStore) List(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Sorted(maps.Keys(s.creds)), nil
}

// String describes the store without its secrets.
func (s *MemoryCredentialStore) String() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return fmt.Sprintf("MemoryCredentialStore{tenants: %d}", len(s.creds))
}

// GoString is String, so that %#v hides the secrets too.
func (s *MemoryCredentialStore) GoString() string { return "&tenant." + s.String() }

// FileCredentialStore is a [CredentialStore] in one JSON file, readable and
// writable by its owner only (mode 0600). Every change rewrites the whole
// file atomically: a temporary file in the same folder, synced, then
// renamed over the old one, so a crash leaves the old file or the new
// one, never a torn one. It is safe for concurrent use within one
// process; the file is read once, when the store is opened, so it must
// not be shared by several processes that write it.
//
// The file holds passwords in clear: keep it on an encrypted disk, out of
// backups that others can read, or use a secrets manager (see
// [CredentialStore]).
type FileCredentialStore struct {
	path  string
	mu    sync.Mutex
	creds map[string]TenantCredentials
}

var _ CredentialStore = (*FileCredentialStore)(nil)

// credentialFile is the JSON form of the file.
type credentialFile struct {
	Version int                        `json:"version"`
	Tenants map[string]credentialEntry `json:"tenants"`
}

type credentialEntry struct {
	Username         string `json:"username"`
	Password         string `json:"password"`
	Schema           string `json:"schema"`
	ConnectionString string `json:"connection_string"`
}

// credentialFileMode is the mode of the file: its owner's alone.
const credentialFileMode fs.FileMode = 0o600

// NewFileCredentialStore opens the store kept in the file at path, reading
// the file when it exists (it is created at the first Put; its folder is
// created with mode 0700 when missing). A file that its group or others
// may access (mode & 0077 != 0) is refused with an error wrapping
// [ErrInsecureCredentialFile], and so is a path that is not a regular file.
func NewFileCredentialStore(path string) (*FileCredentialStore, error) {
	if path == "" {
		return nil, errors.New("tenant: credential file: empty path")
	}
	s := &FileCredentialStore{path: path, creds: map[string]TenantCredentials{}}
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("tenant: credential file: %w", err)
		}
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tenant: credential file: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("tenant: credential file %s is not a regular file", path)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o; want 0600 (chmod 600 it)", ErrInsecureCredentialFile, path, perm)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tenant: credential file: %w", err)
	}
	var f credentialFile
	if err := json.Unmarshal(data, &f); err != nil {
		// The JSON error may quote the file's content: leave it out.
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return nil, fmt.Errorf("tenant: credential file %s: invalid JSON at offset %d", path, syn.Offset)
		}
		return nil, fmt.Errorf("tenant: credential file %s: invalid content", path)
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("tenant: credential file %s: unknown version %d", path, f.Version)
	}
	for id, e := range f.Tenants {
		s.creds[id] = TenantCredentials(e)
	}
	return s, nil
}

// Path returns the file's path.
func (s *FileCredentialStore) Path() string { return s.path }

// Get returns a copy of the tenant's credentials.
func (s *FileCredentialStore) Get(ctx context.Context, tenantID string) (*TenantCredentials, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	c, ok := s.creds[tenantID]
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: no credentials for %s", ErrTenantNotFound, quoteID(tenantID))
	}
	return &c, nil
}

// Put stores a copy of creds and rewrites the file. Should writing fail,
// the store is unchanged.
func (s *FileCredentialStore) Put(ctx context.Context, tenantID string, creds *TenantCredentials) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkPut(tenantID, creds); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	next := maps.Clone(s.creds)
	next[tenantID] = *creds
	if err := s.write(next); err != nil {
		return err
	}
	s.creds = next
	return nil
}

// Delete forgets the tenant's credentials and rewrites the file.
func (s *FileCredentialStore) Delete(ctx context.Context, tenantID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.creds[tenantID]; !ok {
		return nil
	}
	next := maps.Clone(s.creds)
	delete(next, tenantID)
	if err := s.write(next); err != nil {
		return err
	}
	s.creds = next
	return nil
}

// List returns the tenant ids, sorted.
func (s *FileCredentialStore) List(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.creds)), nil
}

// String describes the store without its secrets.
func (s *FileCredentialStore) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("FileCredentialStore{path: %q, tenants: %d}", s.path, len(s.creds))
}

// GoString is String, so that %#v hides the secrets too.
func (s *FileCredentialStore) GoString() string { return "&tenant." + s.String() }

// write replaces the file with creds, atomically. The caller holds s.mu.
func (s *FileCredentialStore) write(creds map[string]TenantCredentials) (err error) {
	f := credentialFile{Version: 1, Tenants: make(map[string]credentialEntry, len(creds))}
	for id, c := range creds {
		f.Tenants[id] = credentialEntry(c)
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("tenant: credential file: encoding: %w", err)
	}
	dir := filepath.Dir(s.path)
	// os.CreateTemp creates the file with mode 0600: the secrets are never
	// readable by others, not even for a moment.
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(s.path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("tenant: credential file: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(credentialFileMode); err != nil {
		return fmt.Errorf("tenant: credential file: %w", err)
	}
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("tenant: credential file: writing: %w", err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("tenant: credential file: syncing: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("tenant: credential file: %w", err)
	}
	if err = os.Rename(tmp.Name(), s.path); err != nil {
		return fmt.Errorf("tenant: credential file: replacing: %w", err)
	}
	// Make the rename durable; a folder that cannot be synced (some file
	// systems) is no error: the data is written.
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
