package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/cloacina-go/cloacina/server/apikey"
)

// adminKeyState is what serve knows, at start, of the admin keys: for
// printStart, which never prints a key.
type adminKeyState struct {
	// file is the admin key file's absolute path.
	file string
	// generated: this start generated the admin key and wrote it to file.
	generated bool
	// fileExists: no key was generated now, and file exists (from the
	// start that generated the stored key).
	fileExists bool
	// earlier, with --admin-key: the admin keys in the key store
	// (generated at earlier starts), valid beside --admin-key.
	earlier []apikey.Key
}

// AdminKeyFileError says that the admin key file exists while the key
// store holds no admin key: the file belongs to another store (a data
// folder reused with a new database...). serve refuses to overwrite it.
type AdminKeyFileError struct {
	Path string
}

func (e *AdminKeyFileError) Error() string {
	return fmt.Sprintf("the admin key file %s exists, but the key store holds no admin key: the file is not this store's. "+
		"Move it away and start again to generate a new key, or set --admin-key (CLOACINA_ADMIN_KEY)", e.Path)
}

// ensureAdminKeyFile makes sure the key store holds an admin key. When it
// holds none, it generates one and writes it to path, a file created for
// it alone (O_EXCL) with mode 0600, in a folder created with mode 0700 if
// missing; the key is shown nowhere else. If the file cannot be written
// the key is revoked, so that no key exists that nobody has.
func ensureAdminKeyFile(ctx context.Context, keys apikey.Store, path string) (adminKeyState, error) {
	st := adminKeyState{file: path}
	existing, err := keys.List(ctx, "")
	if err != nil {
		return st, fmt.Errorf("listing the stored admin keys: %w", err)
	}
	if len(existing) > 0 {
		_, err := os.Stat(path)
		st.fileExists = err == nil
		return st, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return st, fmt.Errorf("creating the admin key file's folder: %w", err)
	}
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		// Another process may have generated the key just now.
		if existing, lerr := keys.List(ctx, ""); lerr == nil && len(existing) > 0 {
			st.fileExists = true
			return st, nil
		}
		return st, &AdminKeyFileError{Path: path}
	}
	if err != nil {
		return st, fmt.Errorf("creating the admin key file: %w", err)
	}
	discard := func() {
		_ = fh.Close()
		_ = os.Remove(path)
	}
	key, created, err := apikey.EnsureAdminKey(ctx, keys)
	if err != nil {
		discard()
		return st, fmt.Errorf("creating the admin key: %w", err)
	}
	if !created {
		// Another process created one between the list and now.
		discard()
		return st, nil
	}
	_, err = fh.WriteString(key + "\n")
	if err == nil {
		err = fh.Sync()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		msg := "the key was revoked"
		if id, ok := apikey.ParseID(key); !ok {
			msg = "the key could not be revoked: start with --admin-key and revoke the stored admin key"
		} else if derr := keys.Delete(context.WithoutCancel(ctx), "", id); derr != nil {
			msg = fmt.Sprintf("revoking the key %s failed too (%v): revoke it with %s", id, derr, revokeAdminCommand(id))
		}
		return st, fmt.Errorf("writing the admin key file %s: %w (%s)", path, err, msg)
	}
	st.generated = true
	return st, nil
}
