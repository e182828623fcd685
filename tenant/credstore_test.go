package tenant_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina/tenant"
)

func credsFor(id string) *tenant.TenantCredentials {
	pw := "pw-" + id + "-Zq9xSecret"
	return &tenant.TenantCredentials{Username: "user_" + id, Password: pw, Schema: "tenant_" + id,
		ConnectionString: "postgres://user_" + id + ":" + pw + "@localhost/db"}
}

// testCredentialStore checks the CredentialStore contract on a fresh store.
func testCredentialStore(t *testing.T, s tenant.CredentialStore) {
	ctx := testCtx(t, 10*time.Second)
	if _, err := s.Get(ctx, "acme"); !errors.Is(err, tenant.ErrTenantNotFound) {
		t.Errorf("Get(missing) = %v; want ErrTenantNotFound", err)
	}
	if ids, err := s.List(ctx); err != nil || len(ids) != 0 {
		t.Errorf("List(empty) = %v, %v; want none", ids, err)
	}
	for _, id := range []string{"zeta", "acme", "mid"} {
		if err := s.Put(ctx, id, credsFor(id)); err != nil {
			t.Fatalf("Put(%s): %v", id, err)
		}
	}
	if ids, err := s.List(ctx); err != nil || !slices.Equal(ids, []string{"acme", "mid", "zeta"}) {
		t.Errorf("List = %v, %v; want [acme mid zeta]", ids, err)
	}
	got, err := s.Get(ctx, "acme")
	if err != nil || *got != *credsFor("acme") {
		t.Fatalf("Get(acme) = %v, %v", got, err)
	}
	got.Password = "changed" // a copy: the store keeps its own
	if again, _ := s.Get(ctx, "acme"); again.Password != credsFor("acme").Password {
		t.Error("changing the returned credentials changed the store")
	}
	in := credsFor("mid")
	in.Password = "second"
	if err := s.Put(ctx, "mid", in); err != nil {
		t.Fatal(err)
	}
	in.Password = "third" // a copy was stored
	if got, _ := s.Get(ctx, "mid"); got.Password != "second" {
		t.Errorf("Put did not replace or copy: password %q", got.Password)
	}
	if err := s.Delete(ctx, "mid"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "mid"); err != nil {
		t.Errorf("deleting missing credentials: %v", err)
	}
	if _, err := s.Get(ctx, "mid"); !errors.Is(err, tenant.ErrTenantNotFound) {
		t.Errorf("Get after Delete = %v; want ErrTenantNotFound", err)
	}
	if err := s.Put(ctx, "x", nil); err == nil {
		t.Error("Put(nil) succeeded")
	}
	if err := s.Put(ctx, "", credsFor("x")); err == nil {
		t.Error("Put with an empty id succeeded")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Get(cancelled, "acme"); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with an ended context = %v; want context.Canceled", err)
	}
	// Concurrent use (run with -race).
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			id := fmt.Sprintf("c%02d", i)
			if err := s.Put(ctx, id, credsFor(id)); err != nil {
				t.Errorf("Put(%s): %v", id, err)
			}
			if _, err := s.Get(ctx, id); err != nil {
				t.Errorf("Get(%s): %v", id, err)
			}
			if _, err := s.List(ctx); err != nil {
				t.Errorf("List: %v", err)
			}
		})
	}
	wg.Wait()
	if ids, _ := s.List(ctx); len(ids) != 22 {
		t.Errorf("after concurrent Puts, %d tenants; want 22", len(ids))
	}
	for _, text := range []string{fmt.Sprint(s), fmt.Sprintf("%+v", s), fmt.Sprintf("%#v", s)} {
		if strings.Contains(text, "Secret") {
			t.Errorf("printing the store shows a password: %s", text)
		}
	}
}

func TestMemoryCredentialStore(t *testing.T) {
	testCredentialStore(t, tenant.NewMemoryCredentialStore())
}

func TestFileCredentialStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "creds")
	path := filepath.Join(dir, "tenants.json")
	s, err := tenant.NewFileCredentialStore(path)
	if err != nil {
		t.Fatal(err)
	}
	testCredentialStore(t, s)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("file mode %04o; want 0600", perm)
	}
	if d, err := os.Stat(dir); err != nil || d.Mode().Perm() != 0o700 {
		t.Errorf("folder mode %v, %v; want 0700", d.Mode().Perm(), err)
	}
	// No temporary file is left behind.
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("folder holds %v; want only tenants.json", names)
	}
	// Reopened, the store has the same content.
	ctx := testCtx(t, 10*time.Second)
	s2, err := tenant.NewFileCredentialStore(path)
	if err != nil {
		t.Fatalf("reopening: %v", err)
	}
	want, _ := s.List(ctx)
	if got, err := s2.List(ctx); err != nil || !slices.Equal(got, want) {
		t.Errorf("reopened List = %v, %v; want %v", got, err, want)
	}
	if got, err := s2.Get(ctx, "acme"); err != nil || *got != *credsFor("acme") {
		t.Errorf("reopened Get(acme) = %v, %v", got, err)
	}
	if _, err := s2.Get(ctx, "mid"); !errors.Is(err, tenant.ErrTenantNotFound) {
		t.Errorf("a deleted tenant came back: %v", err)
	}
	// A file others may read is refused.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := tenant.NewFileCredentialStore(path); !errors.Is(err, tenant.ErrInsecureCredentialFile) {
		t.Errorf("opening a 0644 file: %v; want ErrInsecureCredentialFile", err)
	}
	// A write puts the mode back to 0600.
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	// A corrupt file is refused without quoting its content.
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"version":1,"tenants":{"a":{"password":"Zq9xSecret"`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := tenant.NewFileCredentialStore(bad); err == nil || strings.Contains(err.Error(), "Secret") {
		t.Errorf("opening a corrupt file: %v; want an error without its content", err)
	}
	// A write that cannot happen leaves the store unchanged.
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })
	if os.Geteuid() != 0 { // root ignores the folder's mode
		if err := s2.Put(ctx, "new", credsFor("new")); err == nil {
			t.Error("Put into a read-only folder succeeded")
		}
		if _, err := s2.Get(ctx, "new"); !errors.Is(err, tenant.ErrTenantNotFound) {
			t.Errorf("a failed Put changed the store: %v", err)
		}
	}
}
