package apikey

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cloacina-go/cloacina/internal/pgtest"
)

func TestMain(m *testing.M) {
	code := pgtest.Main(m)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// opener opens a store on the test's database: a fresh one on the first
// call for a test, the same database on later calls.
type opener func(t *testing.T) *SQLStore

func sqliteOpener() opener {
	var mu sync.Mutex
	dirs := map[*testing.T]string{}
	return func(t *testing.T) *SQLStore {
		mu.Lock()
		dir, ok := dirs[t]
		if !ok {
			dir = t.TempDir()
			dirs[t] = dir
		}
		mu.Unlock()
		return openStore(t, "sqlite://"+filepath.Join(dir, "sub", "keys.db"))
	}
}

func postgresOpener() opener {
	var mu sync.Mutex
	urls := map[*testing.T]string{}
	return func(t *testing.T) *SQLStore {
		mu.Lock()
		u, ok := urls[t]
		mu.Unlock()
		if !ok {
			u = pgtest.Shared(t).NewDatabase(t)
			mu.Lock()
			urls[t] = u
			mu.Unlock()
		}
		return openStore(t, u)
	}
}

func openStore(t *testing.T, url string) *SQLStore {
	t.Helper()
	s, err := Open(testCtx(t), url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestSQLite(t *testing.T)   { runSuite(t, sqliteOpener()) }
func TestPostgres(t *testing.T) { runSuite(t, postgresOpener()) }

// runSuite is the conformance suite every backend passes.
func runSuite(t *testing.T, open opener) {
	tests := []struct {
		name string
		fn   func(*testing.T, opener)
	}{
		{"CreateVerify", testCreateVerify},
		{"VerifyRejects", testVerifyRejects},
		{"CreateChecks", testCreateChecks},
		{"ListDelete", testListDelete},
		{"DeleteTenant", testDeleteTenant},
		{"LastUsedThrottled", testLastUsed},
		{"OnlyHashesStored", testOnlyHashes},
		{"EnsureAdminKey", testEnsureAdminKey},
		{"EnsureAdminKeyConcurrent", testEnsureAdminKeyConcurrent},
		{"Reopen", testReopen},
		{"NoSecretsPrinted", testNoSecretsPrinted},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open)
		})
	}
}

func testCreateVerify(t *testing.T, open opener) {
	ctx := testCtx(t)
	s := open(t)
	secret, k, err := s.Create(ctx, "acme", "ci", RoleWrite)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, "ck_"+k.ID+"_") || len(secret) != presentedLen {
		t.Fatalf("secret %q does not have the form ck_%s_<43 chars>", secret, k.ID)
	}
	if k.TenantID != "acme" || k.Name != "ci" || k.Role != RoleWrite || k.CreatedAt.IsZero() || !k.LastUsedAt.IsZero() {
		t.Fatalf("Create returned %+v", k)
	}
	got, err := s.Verify(ctx, secret)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if got.ID != k.ID || got.TenantID != "acme" || got.Role != RoleWrite || !got.CreatedAt.Equal(k.CreatedAt) || got.LastUsedAt.IsZero() {
		t.Fatalf("Verify = %+v, want %+v with LastUsedAt set", got, k)
	}
	admin, ak, err := s.Create(ctx, "", "root", RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Verify(ctx, admin); err != nil || got.Role != RoleAdmin || got.TenantID != "" || got.ID != ak.ID {
		t.Fatalf("Verify(admin) = %+v, %v", got, err)
	}
}

func testVerifyRejects(t *testing.T, open opener) {
	ctx := testCtx(t)
	s := open(t)
	secret, k, err := s.Create(ctx, "acme", "ci", RoleRead)
	if err != nil {
		t.Fatal(err)
	}
	_, other, err := s.Create(ctx, "acme", "other", RoleRead)
	if err != nil {
		t.Fatal(err)
	}
	flip := []byte(secret)
	if flip[len(flip)-2] == 'A' {
		flip[len(flip)-2] = 'B'
	} else {
		flip[len(flip)-2] = 'A'
	}
	_, unknownKey, err := newKey()
	if err != nil {
		t.Fatal(err)
	}
	for name, presented := range map[string]string{
		"empty":           "",
		"garbage":         "garbage",
		"no prefix":       secret[3:],
		"upper id":        "ck_" + strings.ToUpper(k.ID) + secret[3+idLen:],
		"truncated":       secret[:len(secret)-1],
		"longer":          secret + "A",
		"wrong secret":    string(flip),
		"unknown id":      unknownKey,
		"other key's id":  "ck_" + other.ID + secret[3+idLen:],
		"padded base64":   secret[:len(secret)-1] + "=",
		"not base64":      secret[:len(secret)-1] + "!",
		"space":           " " + secret[1:],
		"sql in the id":   "ck_'; DROP TABLE x" + secret[3+18:],
		"unicode in id":   "ck_" + strings.Repeat("é", idLen/2) + secret[3+idLen:],
		"bearer included": "Bearer " + secret,
	} {
		if _, err := s.Verify(ctx, presented); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Verify(%s) = %v, want ErrInvalidKey", name, err)
		}
	}
	if _, err := s.Verify(ctx, secret); err != nil {
		t.Fatalf("the right key: %v", err)
	}
}

func testCreateChecks(t *testing.T, open opener) {
	ctx := testCtx(t)
	s := open(t)
	for _, tc := range []struct {
		tenant, name string
		role         Role
		want         error
	}{
		{"acme", "x", "owner", ErrInvalidRole},
		{"acme", "x", "", ErrInvalidRole},
		{"acme", "x", RoleAdmin, ErrInvalidRole},
		{"", "x", RoleRead, ErrInvalidRole},
		{"", "x", RoleWrite, ErrInvalidRole},
		{"a;DROP SCHEMA x", "x", RoleRead, ErrInvalidTenant},
		{"public", "x", RoleRead, ErrInvalidTenant},
		{"acme", "", RoleRead, ErrInvalidName},
		{"acme", strings.Repeat("n", MaxNameLength+1), RoleRead, ErrInvalidName},
		{"acme", "a\nb", RoleRead, ErrInvalidName},
		{"acme", "\xff", RoleRead, ErrInvalidName},
	} {
		if _, _, err := s.Create(ctx, tc.tenant, tc.name, tc.role); !errors.Is(err, tc.want) {
			t.Errorf("Create(%q, %q, %q) = %v, want %v", tc.tenant, tc.name, tc.role, err, tc.want)
		}
	}
	if keys, err := s.List(ctx, "acme"); err != nil || len(keys) != 0 {
		t.Fatalf("refused creations stored keys: %v, %v", keys, err)
	}
	if _, _, err := s.Create(ctx, "with-hyphen_1", strings.Repeat("n", MaxNameLength), RoleRead); err != nil {
		t.Fatalf("a valid SQLite tenant id and a name of the longest length: %v", err)
	}
}

func testListDelete(t *testing.T, open opener) {
	ctx := testCtx(t)
	s := open(t)
	var ids []string
	secrets := map[string]string{}
	for i := range 3 {
		secret, k, err := s.Create(ctx, "acme", fmt.Sprintf("k%d", i), RoleRead)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, k.ID)
		secrets[k.ID] = secret
	}
	if _, _, err := s.Create(ctx, "globex", "g", RoleWrite); err != nil {
		t.Fatal(err)
	}
	keys, err := s.List(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3 {
		t.Fatalf("List(acme) = %d keys, want 3", len(keys))
	}
	for i, k := range keys {
		if k.Name != fmt.Sprintf("k%d", i) || k.TenantID != "acme" {
			t.Errorf("List(acme)[%d] = %+v, want k%d of acme (oldest first)", i, k, i)
		}
	}
	if keys, err := s.List(ctx, "nobody"); err != nil || keys == nil || len(keys) != 0 {
		t.Fatalf("List(nobody) = %#v, %v; want an empty, non-nil list", keys, err)
	}
	if keys, err := s.List(ctx, ""); err != nil || len(keys) != 0 {
		t.Fatalf("List(admin) = %v, %v; want none", keys, err)
	}
	if err := s.Delete(ctx, "globex", ids[0]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting acme's key as globex: %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "acme", ids[0]); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "acme", ids[0]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting twice: %v, want ErrNotFound", err)
	}
	if _, err := s.Verify(ctx, secrets[ids[0]]); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("a deleted key verifies: %v", err)
	}
	if _, err := s.Verify(ctx, secrets[ids[1]]); err != nil {
		t.Fatalf("another key of the tenant stopped working: %v", err)
	}
}

func testDeleteTenant(t *testing.T, open opener) {
	ctx := testCtx(t)
	s := open(t)
	var acme []string
	for range 2 {
		secret, _, err := s.Create(ctx, "acme", "k", RoleWrite)
		if err != nil {
			t.Fatal(err)
		}
		acme = append(acme, secret)
	}
	globex, _, err := s.Create(ctx, "globex", "g", RoleWrite)
	if err != nil {
		t.Fatal(err)
	}
	admin, _, err := s.Create(ctx, "", "root", RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.DeleteTenant(ctx, "acme")
	if err != nil || n != 2 {
		t.Fatalf("DeleteTenant(acme) = %d, %v; want 2", n, err)
	}
	for _, k := range acme {
		if _, err := s.Verify(ctx, k); !errors.Is(err, ErrInvalidKey) {
			t.Fatalf("a key of a deleted tenant verifies: %v", err)
		}
	}
	for _, k := range []string{globex, admin} {
		if _, err := s.Verify(ctx, k); err != nil {
			t.Fatalf("another tenant's or an admin key stopped working: %v", err)
		}
	}
	if n, err := s.DeleteTenant(ctx, "acme"); err != nil || n != 0 {
		t.Fatalf("DeleteTenant again = %d, %v", n, err)
	}
	if _, err := s.DeleteTenant(ctx, ""); !errors.Is(err, ErrInvalidTenant) {
		t.Fatalf(`DeleteTenant("") = %v, want ErrInvalidTenant (it would delete the admin keys)`, err)
	}
}

func testLastUsed(t *testing.T, open opener) {
	ctx := testCtx(t)
	s := open(t)
	var mu sync.Mutex
	now := time.Date(2026, 11, 26, 18, 0, 0, 0, time.UTC)
	s.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	secret, _, err := s.Create(ctx, "acme", "k", RoleRead)
	if err != nil {
		t.Fatal(err)
	}
	lastUsed := func() time.Time {
		keys, err := s.List(ctx, "acme")
		if err != nil || len(keys) != 1 {
			t.Fatalf("List = %v, %v", keys, err)
		}
		return keys[0].LastUsedAt
	}
	if !lastUsed().IsZero() {
		t.Fatal("a new key has a LastUsedAt")
	}
	advance(time.Second)
	first := now
	if _, err := s.Verify(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if got := lastUsed(); !got.Equal(first) {
		t.Fatalf("LastUsedAt = %v, want %v", got, first)
	}
	advance(30 * time.Second)
	if _, err := s.Verify(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if got := lastUsed(); !got.Equal(first) {
		t.Fatalf("LastUsedAt moved within a minute: %v, want %v", got, first)
	}
	advance(31 * time.Second)
	if _, err := s.Verify(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if got := lastUsed(); !got.Equal(now) {
		t.Fatalf("LastUsedAt after a minute = %v, want %v", got, now)
	}
}

// rawTable returns every stored column of every key as text.
func rawTable(t *testing.T, s *SQLStore) string {
	t.Helper()
	rows, err := s.db.QueryContext(testCtx(t), s.d.q(`SELECT * FROM {t}`))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			fmt.Fprintf(&b, "%v|%s|", v, v)
		}
		b.WriteByte('\n')
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func testOnlyHashes(t *testing.T, open opener) {
	ctx := testCtx(t)
	s := open(t)
	secret, k, err := s.Create(ctx, "acme", "ci", RoleWrite)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(ctx, secret); err != nil {
		t.Fatal(err)
	}
	raw := rawTable(t, s)
	if !strings.Contains(raw, k.ID) {
		t.Fatalf("the raw table does not show key id %s: %q", k.ID, raw)
	}
	secretPart := secret[len(secret)-secretLen:]
	if strings.Contains(raw, secretPart) || strings.Contains(raw, secret) {
		t.Fatalf("the table holds the key's secret: %q", raw)
	}
	var hash []byte
	if err := s.db.QueryRowContext(ctx, s.d.q(`SELECT key_hash FROM {t} WHERE id = $1`), k.ID).Scan(&hash); err != nil {
		t.Fatal(err)
	}
	if want := hashKey(secret); string(hash) != string(want) || len(hash) != 32 {
		t.Fatalf("stored hash %x, want SHA-256 %x", hash, want)
	}
}

func testEnsureAdminKey(t *testing.T, open opener) {
	ctx := testCtx(t)
	s := open(t)
	key, created, err := EnsureAdminKey(ctx, s)
	if err != nil || !created || key == "" {
		t.Fatalf("first EnsureAdminKey = %q, %v, %v; want a new key", key, created, err)
	}
	k, err := s.Verify(ctx, key)
	if err != nil || k.Role != RoleAdmin || k.TenantID != "" {
		t.Fatalf("Verify(new admin key) = %+v, %v", k, err)
	}
	for range 2 {
		again, created, err := EnsureAdminKey(ctx, open(t))
		if err != nil || created || again != "" {
			t.Fatalf("EnsureAdminKey again = %q, %v, %v; want \"\", false", again, created, err)
		}
	}
	if keys, err := s.List(ctx, ""); err != nil || len(keys) != 1 {
		t.Fatalf("admin keys = %v, %v; want one", keys, err)
	}
}

func testEnsureAdminKeyConcurrent(t *testing.T, open opener) {
	ctx := testCtx(t)
	const n = 4
	stores := make([]*SQLStore, n)
	for i := range stores {
		stores[i] = open(t)
	}
	var wg sync.WaitGroup
	results := make([]bool, n)
	errs := make([]error, n)
	for i, s := range stores {
		wg.Go(func() { _, results[i], errs[i] = EnsureAdminKey(ctx, s) })
	}
	wg.Wait()
	made := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("EnsureAdminKey: %v", errs[i])
		}
		if results[i] {
			made++
		}
	}
	if made != 1 {
		t.Fatalf("%d concurrent EnsureAdminKey calls created %d keys, want 1", n, made)
	}
}

func testReopen(t *testing.T, open opener) {
	ctx := testCtx(t)
	secret, _, err := open(t).Create(ctx, "acme", "k", RoleRead)
	if err != nil {
		t.Fatal(err)
	}
	s := open(t)
	if _, err := s.Verify(ctx, secret); err != nil {
		t.Fatalf("a key stopped working in a reopened store: %v", err)
	}
}

func testNoSecretsPrinted(t *testing.T, open opener) {
	ctx := testCtx(t)
	s := open(t)
	secret, k, err := s.Create(ctx, "acme", "k", RoleRead)
	if err != nil {
		t.Fatal(err)
	}
	var logged strings.Builder
	log := slog.New(slog.NewTextHandler(&logged, nil))
	log.Info("x", "key", k, "store", s)
	out := fmt.Sprintf("%v %+v %#v %v %#v %s", k, k, k, s, s, logged.String())
	if strings.Contains(out, secret[len(secret)-secretLen:]) {
		t.Fatalf("printing shows the secret: %s", out)
	}
	if !strings.Contains(out, k.ID) {
		t.Fatalf("printing does not show the key id: %s", out)
	}
}

// TestPostgresTableSchema: on a fresh database the table is in Schema.
func TestPostgresTableSchema(t *testing.T) {
	ctx := testCtx(t)
	u := pgtest.Shared(t).NewDatabase(t)
	s := openStore(t, u)
	var schema string
	if err := s.db.QueryRowContext(ctx, `SELECT table_schema FROM information_schema.tables WHERE table_name = $1`, TableName).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	if schema != Schema || s.Table() != `"`+Schema+`".`+TableName {
		t.Fatalf("table in schema %q (%s), want %s", schema, s.Table(), Schema)
	}
}

func TestOpenRejects(t *testing.T) {
	ctx := testCtx(t)
	for _, u := range []string{"", "mysql://x", "sqlite://", "sqlite://x.db?mode=ro"} {
		if s, err := Open(ctx, u); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", u)
		}
	}
	_, err := Open(ctx, "postgres://u:s3cr3t-pw@127.0.0.1:1/db?connect_timeout=1")
	if err == nil || strings.Contains(err.Error(), "s3cr3t-pw") {
		t.Fatalf("Open on an unreachable server = %v; want an error without the password", err)
	}
}

func TestParseID(t *testing.T) {
	id, key, err := newKey()
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := ParseID(key); !ok || got != id {
		t.Fatalf("ParseID(%q) = %q, %v; want %q", key, got, ok, id)
	}
	for range 100 {
		if _, key, _ := newKey(); !strings.HasPrefix(key, "ck_") {
			t.Fatal(key)
		} else if _, ok := ParseID(key); !ok {
			t.Fatalf("ParseID refuses a generated key %q", key)
		}
	}
}
