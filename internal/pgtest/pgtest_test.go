package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func connect(t *testing.T, connURL string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, connURL)
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func queryString(t *testing.T, conn *pgx.Conn, sql string) string {
	t.Helper()
	var s string
	if err := conn.QueryRow(t.Context(), sql).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

// requireOwnCluster skips tests of behaviour only a throwaway cluster has.
func requireOwnCluster(t *testing.T, s *Server) {
	t.Helper()
	if s.cluster == nil {
		t.Skipf("%s is set: testing an external server", envDatabaseURL)
	}
}

func TestSharedServerAcceptsConnections(t *testing.T) {
	s := Shared(t)
	conn := connect(t, s.URL())
	var one int
	if err := conn.QueryRow(t.Context(), "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1 = %d, %v; want 1, nil", one, err)
	}
	if Shared(t) != s {
		t.Error("Shared returned a different server on the second call")
	}
}

func TestURLMatchesAccessors(t *testing.T) {
	s := Shared(t)
	requireOwnCluster(t, s)
	u, err := url.Parse(s.URL())
	if err != nil {
		t.Fatalf("parsing URL: %v", err)
	}
	password, _ := u.User.Password()
	if u.Scheme != "postgres" || u.Hostname() != "127.0.0.1" || u.Port() != fmt.Sprint(s.Port()) ||
		u.Path != "/postgres" || u.Query().Get("sslmode") != "disable" {
		t.Errorf("URL %s does not have the documented form", u.Redacted())
	}
	if u.User.Username() != "cloacina_admin" || s.AdminUser() != "cloacina_admin" {
		t.Errorf("admin user = %q, %q; want cloacina_admin", u.User.Username(), s.AdminUser())
	}
	if password == "" || password != s.AdminPassword() {
		t.Error("URL password is empty or differs from AdminPassword")
	}
	if s.Host() != "127.0.0.1" || s.Port() <= 0 {
		t.Errorf("Host, Port = %q, %d", s.Host(), s.Port())
	}
	if u.Query().Get("sslmode") != "disable" {
		t.Errorf("sslmode = %q", u.Query().Get("sslmode"))
	}
}

func TestPasswordIsEnforced(t *testing.T) {
	s := Shared(t)
	requireOwnCluster(t, s)

	socketURL := func(password string) string {
		return (&url.URL{
			Scheme: "postgres",
			User:   url.UserPassword(s.AdminUser(), password),
			Path:   "/postgres",
			RawQuery: url.Values{
				"host":    {s.cluster.dir},
				"port":    {fmt.Sprint(s.Port())},
				"sslmode": {"disable"},
			}.Encode(),
		}).String()
	}
	wrongTCP := s.databaseURL("postgres")
	wrongTCP.User = url.UserPassword(s.AdminUser(), "wrong-"+s.AdminPassword())

	for name, connURL := range map[string]string{
		"tcp":    wrongTCP.String(),
		"socket": socketURL("wrong"),
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			conn, err := pgx.Connect(ctx, connURL)
			if err == nil {
				conn.Close(ctx)
				t.Fatal("connecting with a wrong password succeeded")
			}
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "28P01" { // invalid_password
				t.Fatalf("connecting with a wrong password: %v; want SQLSTATE 28P01", err)
			}
		})
	}

	t.Run("socket with the right password", func(t *testing.T) {
		conn := connect(t, socketURL(s.AdminPassword()))
		if got := queryString(t, conn, "SELECT current_user"); got != adminUser {
			t.Errorf("current_user = %q, want %q", got, adminUser)
		}
	})
}

func TestNewDatabaseIsolatesTests(t *testing.T) {
	s := Shared(t)
	admin := connect(t, s.URL())
	exists := func(name string) bool {
		t.Helper()
		var n int
		err := admin.QueryRow(t.Context(), "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n)
		if err != nil {
			t.Fatalf("looking up database %s: %v", name, err)
		}
		return n == 1
	}

	var names []string
	t.Run("create", func(t *testing.T) {
		url1, url2 := s.NewDatabase(t), s.NewDatabase(t)
		if url1 == url2 {
			t.Fatalf("NewDatabase returned the same URL twice")
		}
		conn1, conn2 := connect(t, url1), connect(t, url2)
		names = []string{
			queryString(t, conn1, "SELECT current_database()"),
			queryString(t, conn2, "SELECT current_database()"),
		}
		if names[0] == names[1] {
			t.Fatalf("both URLs lead to database %s", names[0])
		}
		for _, name := range names {
			if !exists(name) {
				t.Errorf("database %s does not exist", name)
			}
		}
		if _, err := conn1.Exec(t.Context(), "CREATE TABLE only_in_first (id int)"); err != nil {
			t.Fatal(err)
		}
		if got := queryString(t, conn2, "SELECT coalesce(to_regclass('only_in_first')::text, 'none')"); got != "none" {
			t.Errorf("table created in the first database is visible in the second")
		}
		// The cleanup must drop the database despite this open connection.
	})
	if len(names) != 2 {
		t.FailNow()
	}
	for _, name := range names {
		if exists(name) {
			t.Errorf("database %s was not dropped when its test ended", name)
		}
	}
}

func TestNewDatabaseInParallel(t *testing.T) {
	s := Shared(t)
	t.Run("group", func(t *testing.T) {
		for i := range 12 {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				conn := connect(t, s.NewDatabase(t))
				if _, err := conn.Exec(t.Context(), "CREATE TABLE t (id int PRIMARY KEY)"); err != nil {
					t.Fatal(err)
				}
			})
		}
	})
}

func TestDatabaseName(t *testing.T) {
	seen := map[string]bool{}
	for _, testName := range []string{"TestX", "TestX", strings.Repeat("TestVeryLong/Sub test-name", 10), "Ünïcode/テスト"} {
		name := databaseName(testName)
		if len(name) > 63 {
			t.Errorf("databaseName(%q) = %q: longer than 63 bytes", testName, name)
		}
		if strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
			t.Errorf("databaseName(%q) = %q: want only [a-z0-9_]", testName, name)
		}
		if seen[name] {
			t.Errorf("databaseName returned %q twice", name)
		}
		seen[name] = true
	}
}

func TestStopStartAgainAndRestart(t *testing.T) {
	s := Start(t)
	requireOwnCluster(t, s)

	dbURL := s.NewDatabase(t)
	before := connect(t, dbURL)
	if _, err := before.Exec(t.Context(), "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('survives')"); err != nil {
		t.Fatal(err)
	}

	s.Restart(t)
	if _, err := before.Exec(t.Context(), "SELECT 1"); err == nil {
		t.Error("a connection from before Restart still works")
	}
	after := connect(t, dbURL)
	if got := queryString(t, after, "SELECT v FROM kept"); got != "survives" {
		t.Errorf("after Restart, kept.v = %q, want survives", got)
	}

	s.Stop(t)
	s.Stop(t) // stopping a stopped server does nothing
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, s.URL()); err == nil {
		conn.Close(ctx)
		t.Fatal("connecting to a stopped server succeeded")
	}

	s.StartAgain(t)
	s.StartAgain(t) // starting a running server does nothing
	if got := queryString(t, connect(t, dbURL), "SELECT v FROM kept"); got != "survives" {
		t.Errorf("after StartAgain, kept.v = %q, want survives", got)
	}
}

func TestStartFailureReportsServerLog(t *testing.T) {
	s := Start(t)
	requireOwnCluster(t, s)
	s.Stop(t)
	if err := s.cluster.appendConfig("shared_buffers = 'not a size'\n"); err != nil {
		t.Fatal(err)
	}
	err := s.cluster.start(t.Context(), s.URL())
	if err == nil {
		t.Fatal("starting with an invalid postgresql.conf succeeded")
	}
	msg := s.redact(err).Error()
	if !strings.Contains(msg, "server log") || !strings.Contains(msg, "shared_buffers") {
		t.Errorf("start error does not include the server log tail:\n%s", msg)
	}
	if strings.Contains(msg, s.AdminPassword()) {
		t.Errorf("start error reveals the password")
	}
	if s.cluster.isUp() {
		t.Error("the server counts as running after a failed start")
	}
}

func TestStartCleanupRemovesCluster(t *testing.T) {
	var (
		dir     string
		connURL string
	)
	t.Run("server", func(t *testing.T) {
		s := Start(t)
		requireOwnCluster(t, s)
		dir, connURL = s.cluster.dir, s.URL()
		s.NewDatabase(t)
		s.Stop(t) // the database cleanup must cope with a stopped server
		s.StartAgain(t)
		s.NewDatabase(t)
	})
	if dir == "" {
		t.SkipNow()
	}
	assertGone(t, dir, connURL)
}

func TestWatchdogCleansUpAfterProcessExit(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no watchdog on Windows")
	}
	s := Start(t)
	requireOwnCluster(t, s)
	// Closing the pipe is what the kernel does when the test process dies.
	if err := s.cluster.watchdogPipe.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(s.cluster.dir); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the watchdog did not remove %s", s.cluster.dir)
		}
		time.Sleep(50 * time.Millisecond)
	}
	assertGone(t, s.cluster.dir, s.URL())
}

// assertGone checks that a cluster's directory is removed and its server
// no longer accepts connections.
func assertGone(t *testing.T, dir, connURL string) {
	t.Helper()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cluster directory %s still exists (stat: %v)", dir, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, connURL); err == nil {
		conn.Close(ctx)
		t.Error("the server still accepts connections")
	}
}

func TestExternalServer(t *testing.T) {
	s := Shared(t)
	ext, err := newExternal(t.Context(), s.URL())
	if err != nil {
		t.Fatalf("newExternal: %v", err)
	}
	if ext.Host() != s.Host() || ext.Port() != s.Port() || ext.AdminUser() != s.AdminUser() ||
		ext.AdminPassword() != s.AdminPassword() || ext.URL() != s.URL() {
		t.Errorf("external server does not describe the server of its URL")
	}
	conn := connect(t, ext.NewDatabase(t))
	if got := queryString(t, conn, "SELECT current_user"); got != s.AdminUser() {
		t.Errorf("current_user = %q, want %q", got, s.AdminUser())
	}
	for name, method := range map[string]func(testing.TB){
		"Stop": ext.Stop, "StartAgain": ext.StartAgain, "Restart": ext.Restart,
	} {
		var skipped bool
		t.Run(name, func(t *testing.T) {
			defer func() { skipped = t.Skipped() }()
			method(t)
		})
		if !skipped {
			t.Errorf("%s on an external server did not skip", name)
		}
	}
	if err := ext.close(); err != nil {
		t.Errorf("close: %v", err)
	}
	ping := connect(t, s.URL())
	if got := queryString(t, ping, "SELECT 'still up'"); got != "still up" {
		t.Errorf("got %q", got)
	}
}

func TestExternalServerRejectsUnprivilegedRole(t *testing.T) {
	s := Shared(t)
	admin := connect(t, s.URL())
	role := databaseName("role")
	password := "pw-" + role
	ident := pgx.Identifier{role}.Sanitize()
	if _, err := admin.Exec(t.Context(), fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", ident, password)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec(context.Background(), "DROP ROLE "+ident); err != nil {
			t.Errorf("dropping role: %v", err)
		}
	})
	u := s.databaseURL("postgres")
	u.User = url.UserPassword(role, password)
	_, err := newExternal(t.Context(), u.String())
	if err == nil || !strings.Contains(err.Error(), "CREATEDB") {
		t.Fatalf("newExternal as an unprivileged role: %v; want an error about CREATEDB", err)
	}
}

func TestExternalServerErrorsHidePassword(t *testing.T) {
	for _, raw := range []string{
		"postgres://user:s3cretpw@127.0.0.1:notaport/db",
		"mysql://user:s3cretpw@127.0.0.1/db",
		"postgres://user:s3cretpw@127.0.0.1:1/db?sslmode=disable&connect_timeout=2",
	} {
		_, err := newExternal(t.Context(), raw)
		if err == nil {
			t.Errorf("newExternal(%q) succeeded", raw)
			continue
		}
		if strings.Contains(err.Error(), "s3cretpw") {
			t.Errorf("newExternal error reveals the password: %v", err)
		}
	}
}

// TestRedactSecret: redactSecret is internal/redact's ErrorEverywhere
// (tested there): the admin password goes wherever it stands, and the
// cause is kept.
func TestRedactSecret(t *testing.T) {
	cause := errors.New("boom")
	err := redactSecret(fmt.Errorf("connecting to postgres://u:hunter2@h/db (hunter2): %w", cause), "hunter2")
	if strings.Contains(err.Error(), "hunter2") || !errors.Is(err, cause) {
		t.Errorf("redacted error = %q (is cause: %v)", err, errors.Is(err, cause))
	}
}

// writeExecutable creates an executable (or, with mode 0o644, plain) file.
func writeExecutable(t *testing.T, dir, name string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), mode); err != nil {
		t.Fatal(err)
	}
}

func TestFindBinDir(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("uses Unix file modes")
	}
	root := t.TempDir()
	mkdir := func(name string, files map[string]os.FileMode) string {
		dir := filepath.Join(root, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for file, mode := range files {
			writeExecutable(t, dir, file, mode)
		}
		return dir
	}
	full := map[string]os.FileMode{"initdb": 0o755, "pg_ctl": 0o755, "postgres": 0o755}
	var (
		empty      = mkdir("empty", nil)
		clientOnly = mkdir("client", map[string]os.FileMode{"psql": 0o755, "pg_ctl": 0o755})
		notExec    = mkdir("notexec", map[string]os.FileMode{"initdb": 0o755, "pg_ctl": 0o755, "postgres": 0o644})
		first      = mkdir("first", full)
		second     = mkdir("second", full)
		missing    = filepath.Join(root, "missing")
	)
	// A relative directory with everything, which must be ignored.
	t.Chdir(root)
	relative := "relative"
	mkdir(relative, full)

	tests := []struct {
		name       string
		candidates []string
		want       string
	}{
		{"none", nil, ""},
		{"nothing usable", []string{"", relative, missing, empty, clientOnly, notExec}, ""},
		{"first complete wins", []string{"", relative, missing, empty, clientOnly, notExec, second, first}, second},
		{"order matters", []string{first, second}, first},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := findBinDir(tt.candidates)
			if got != tt.want || ok != (tt.want != "") {
				t.Errorf("findBinDir = %q, %v; want %q, %v", got, ok, tt.want, tt.want != "")
			}
		})
	}
}

func TestBinDirCandidatesOrder(t *testing.T) {
	envDir := t.TempDir()
	t.Setenv(envPGBin, envDir)
	t.Setenv("PATH", strings.Join([]string{"/path/one", "/path/two"}, string(os.PathListSeparator)))
	got := binDirCandidates()
	if len(got) < 3 || got[0] != envDir || !slices.Equal(got[len(got)-2:], []string{"/path/one", "/path/two"}) {
		t.Fatalf("binDirCandidates = %q; want %s first and $PATH last", got, envPGBin)
	}
	for _, dir := range got[1 : len(got)-2] {
		if !strings.HasPrefix(dir, "/usr/lib/postgresql/") {
			t.Errorf("unexpected candidate %q between %s and $PATH", dir, envPGBin)
		}
	}
}

func TestSortByVersionDesc(t *testing.T) {
	in := []string{
		"/usr/lib/postgresql/9.6/bin",
		"/usr/lib/postgresql/15/bin",
		"/usr/lib/postgresql/devel/bin",
		"/usr/lib/postgresql/16/bin",
		"/usr/lib/postgresql/10/bin",
		"/usr/lib/postgresql/9.10/bin",
	}
	want := []string{
		"/usr/lib/postgresql/16/bin",
		"/usr/lib/postgresql/15/bin",
		"/usr/lib/postgresql/10/bin",
		"/usr/lib/postgresql/9.10/bin",
		"/usr/lib/postgresql/9.6/bin",
		"/usr/lib/postgresql/devel/bin",
	}
	if got := sortByVersionDesc(in); !slices.Equal(got, want) {
		t.Errorf("sortByVersionDesc =\n%q\nwant\n%q", got, want)
	}
}

// fakeTB records how failSetup reports.
type fakeTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Skipf(format string, args ...any) {
	f.skipped, f.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed, f.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func runFailSetup(t *testing.T, err error) *fakeTB {
	f := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		failSetup(f, err)
	}()
	<-done
	return f
}

func TestFailSetup(t *testing.T) {
	unavailable := &unavailableError{reason: "no binaries"}

	t.Setenv("CI", "")
	f := runFailSetup(t, unavailable)
	if !f.skipped || f.failed {
		t.Errorf("outside CI, unavailable PostgreSQL: skipped=%v failed=%v; want a skip", f.skipped, f.failed)
	}
	for _, hint := range []string{"no binaries", "apt-get install postgresql", envDatabaseURL} {
		if !strings.Contains(f.msg, hint) {
			t.Errorf("skip message %q does not mention %q", f.msg, hint)
		}
	}

	t.Setenv("CI", "true")
	if f := runFailSetup(t, fmt.Errorf("wrapped: %w", unavailable)); !f.failed || f.skipped {
		t.Errorf("in CI, unavailable PostgreSQL: skipped=%v failed=%v; want a failure", f.skipped, f.failed)
	}

	t.Setenv("CI", "")
	if f := runFailSetup(t, errors.New("initdb failed")); !f.failed || f.skipped {
		t.Errorf("startup error: skipped=%v failed=%v; want a failure", f.skipped, f.failed)
	}
}
