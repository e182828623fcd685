package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib"
)

// bouncerClients is how many client connections the concurrency tests open
// at once: more than the bouncer's server connections.
const bouncerClients = 4 * bouncerPoolSize

// withExecMode returns connURL with pgx's default_query_exec_mode set to
// mode.
func withExecMode(t *testing.T, connURL, mode string) string {
	t.Helper()
	u, err := url.Parse(connURL)
	if err != nil {
		t.Fatal("parsing a connection URL failed") // the error would show the password
	}
	q := u.Query()
	q.Set("default_query_exec_mode", mode)
	u.RawQuery = q.Encode()
	return u.String()
}

// execModes returns the pgx query exec modes that work through b: those
// using only the unnamed statement within one round trip, and pgx's default
// cache_statement, which prepares named statements, where b supports them.
func execModes(b *Bouncer) []string {
	modes := []string{"exec", "cache_describe"}
	if b.PreparedStatements() {
		modes = append(modes, "cache_statement")
	}
	return modes
}

// adminConsole connects to the bouncer's admin console, which supports only
// the simple query protocol.
func adminConsole(t *testing.T, b *Bouncer) *pgx.Conn {
	t.Helper()
	return connect(t, withExecMode(t, b.URL("pgbouncer"), "simple_protocol"))
}

// showRows runs a SHOW command of the admin console and returns its rows as
// column name to text value.
func showRows(t *testing.T, conn *pgx.Conn, cmd string) []map[string]string {
	t.Helper()
	rows, err := conn.Query(t.Context(), cmd)
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	var out []map[string]string
	for rows.Next() {
		values, err := rows.Values()
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		row := map[string]string{}
		for i, fd := range rows.FieldDescriptions() {
			row[fd.Name] = fmt.Sprint(values[i])
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	return out
}

// databaseOf returns the database name of connURL.
func databaseOf(t *testing.T, connURL string) string {
	t.Helper()
	u, err := url.Parse(connURL)
	if err != nil {
		t.Fatal("parsing a connection URL failed")
	}
	return strings.TrimPrefix(u.Path, "/")
}

// serverBackends returns how many client backends the server has for the
// database called name, counted over a direct connection.
func serverBackends(t *testing.T, s *Server, name string) int {
	t.Helper()
	conn := connect(t, s.URL())
	var n int
	err := conn.QueryRow(t.Context(),
		"SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend'",
		name).Scan(&n)
	if err != nil {
		t.Fatalf("counting backends: %v", err)
	}
	return n
}

// queryWorkload runs, on one client connection, parameterised queries with
// several statement texts, outside and inside transactions, checking each
// result. query runs sql with args and scans one int.
func queryWorkload(client int, query func(sql string, args ...any) (int, error), tx func(func() error) error) error {
	const rounds = 30
	for i := range rounds {
		sql := fmt.Sprintf("SELECT $1::int * 1000 + $2::int /* statement %d */", i%6)
		run := func() error {
			got, err := query(sql, client, i)
			if err != nil {
				return fmt.Errorf("client %d, round %d: %w", client, i, err)
			}
			if want := client*1000 + i; got != want {
				return fmt.Errorf("client %d, round %d: got %d, want %d", client, i, got, want)
			}
			return nil
		}
		var err error
		if i%3 == 2 {
			err = tx(func() error {
				if err := run(); err != nil {
					return err
				}
				return run() // a second statement on the same server connection
			})
		} else {
			err = run()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// runClients runs work for each of n clients at once, after all of them are
// ready, and reports the errors.
func runClients(t *testing.T, n int, work func(client int, ready func()) error) {
	t.Helper()
	var (
		wg       sync.WaitGroup
		barrier  sync.WaitGroup
		mu       sync.Mutex
		failures []error
	)
	barrier.Add(n)
	for client := range n {
		wg.Go(func() {
			once := sync.OnceFunc(barrier.Done)
			defer once() // a client failing before ready must not block the rest
			err := work(client, func() { once(); barrier.Wait() })
			if err != nil {
				mu.Lock()
				failures = append(failures, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for i, err := range failures {
		if i == 5 {
			t.Errorf("... and %d more errors", len(failures)-i)
			break
		}
		t.Error(err)
	}
}

func TestPgBouncerRunsInTransactionMode(t *testing.T) {
	b := StartPgBouncer(t, Shared(t))
	conn := adminConsole(t, b)

	config := map[string]string{}
	for _, row := range showRows(t, conn, "SHOW CONFIG") {
		config[row["key"]] = row["value"]
	}
	want := map[string]string{
		"pool_mode":                 "transaction",
		"default_pool_size":         strconv.Itoa(bouncerPoolSize),
		"auth_type":                 "scram-sha-256",
		"server_reset_query":        "",
		"ignore_startup_parameters": "extra_float_digits",
	}
	if b.PreparedStatements() {
		want["max_prepared_statements"] = strconv.Itoa(bouncerMaxPreparedStatements)
	}
	for key, value := range want {
		if got, ok := config[key]; !ok || got != value {
			t.Errorf("SHOW CONFIG: %s = %q (present: %v), want %q", key, got, ok, value)
		}
	}

	versionRows := showRows(t, conn, "SHOW VERSION")
	if len(versionRows) != 1 || !strings.Contains(fmt.Sprint(versionRows[0]), b.Version()) {
		t.Errorf("SHOW VERSION = %v, want PgBouncer %s", versionRows, b.Version())
	}
}

func TestPgBouncerConcurrentPgx(t *testing.T) {
	s := Shared(t)
	b := StartPgBouncer(t, s)
	dbURL := b.NewDatabase(t)
	for _, mode := range execModes(b) {
		t.Run(mode, func(t *testing.T) {
			connURL := withExecMode(t, dbURL, mode)
			runClients(t, bouncerClients, func(client int, ready func()) error {
				ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
				defer cancel()
				conn, err := pgx.Connect(ctx, connURL)
				if err != nil {
					return fmt.Errorf("client %d: connecting: %w", client, err)
				}
				defer conn.Close(context.WithoutCancel(ctx))
				ready() // every client is connected before any queries
				return queryWorkload(client,
					func(sql string, args ...any) (n int, err error) {
						err = conn.QueryRow(ctx, sql, args...).Scan(&n)
						return n, err
					},
					func(f func() error) error {
						return pgx.BeginFunc(ctx, conn, func(pgx.Tx) error { return f() })
					})
			})
			// All clients stayed connected throughout, yet the server never
			// had more connections than the pool allows.
			if n := serverBackends(t, s, databaseOf(t, dbURL)); n > bouncerPoolSize {
				t.Errorf("the server has %d connections to the database, more than default_pool_size %d",
					n, bouncerPoolSize)
			}
		})
	}
}

func TestPgBouncerConcurrentDatabaseSQL(t *testing.T) {
	s := Shared(t)
	b := StartPgBouncer(t, s)
	dbURL := b.NewDatabase(t)
	type variant struct {
		name    string
		mode    string
		prepare bool // use DB.Prepare, a named prepared statement
	}
	var variants []variant
	for _, mode := range execModes(b) {
		variants = append(variants, variant{name: mode, mode: mode})
	}
	if b.PreparedStatements() {
		variants = append(variants, variant{name: "prepared", mode: "cache_statement", prepare: true})
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			db, err := sql.Open("pgx", withExecMode(t, dbURL, v.mode))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			db.SetMaxOpenConns(bouncerClients)
			db.SetMaxIdleConns(bouncerClients)
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()

			runClients(t, bouncerClients, func(client int, ready func()) error {
				// Each client takes its own connection of the pool, so that
				// all of them are open at once.
				c, err := db.Conn(ctx)
				if err != nil {
					return fmt.Errorf("client %d: connecting: %w", client, err)
				}
				defer c.Close()
				stmts := map[string]*sql.Stmt{}
				defer func() {
					for _, st := range stmts {
						st.Close()
					}
				}()
				ready()
				return queryWorkload(client,
					func(query string, args ...any) (n int, err error) {
						if !v.prepare {
							err = c.QueryRowContext(ctx, query, args...).Scan(&n)
							return n, err
						}
						st, ok := stmts[query]
						if !ok {
							if st, err = c.PrepareContext(ctx, query); err != nil {
								return 0, err
							}
							stmts[query] = st
						}
						err = st.QueryRowContext(ctx, args...).Scan(&n)
						return n, err
					},
					func(f func() error) error {
						tx, err := c.BeginTx(ctx, nil)
						if err != nil {
							return err
						}
						defer tx.Rollback()
						if err := f(); err != nil {
							return err
						}
						return tx.Commit()
					})
			})
			if n := serverBackends(t, s, databaseOf(t, dbURL)); n > bouncerPoolSize {
				t.Errorf("the server has %d connections to the database, more than default_pool_size %d",
					n, bouncerPoolSize)
			}
		})
	}
}

// TestPgBouncerNeedsPreparedStatementSupport checks what the comment at the
// top of pgbouncer.go says: before PgBouncer 1.21, pgx's default query exec
// mode fails through it.
func TestPgBouncerNeedsPreparedStatementSupport(t *testing.T) {
	b := StartPgBouncer(t, Shared(t))
	if b.PreparedStatements() {
		t.Skipf("PgBouncer %s supports prepared statements", b.Version())
	}
	dbURL := b.NewDatabase(t)
	var (
		mu       sync.Mutex
		expected int
	)
	runClients(t, bouncerClients, func(client int, ready func()) error {
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, dbURL) // default mode: cache_statement
		if err != nil {
			return fmt.Errorf("client %d: connecting: %w", client, err)
		}
		defer conn.Close(context.WithoutCancel(ctx))
		ready()
		for i := range 20 {
			var n int
			err := conn.QueryRow(ctx, fmt.Sprintf("SELECT $1::int /* statement %d */", i%4), i).Scan(&n)
			var pgErr *pgconn.PgError
			switch {
			case err == nil:
			case errors.As(err, &pgErr) && (pgErr.Code == "42P05" || pgErr.Code == "26000"):
				// duplicate_prepared_statement, invalid_sql_statement_name
				mu.Lock()
				expected++
				mu.Unlock()
			default:
				return fmt.Errorf("client %d: unexpected error: %w", client, err)
			}
		}
		return nil
	})
	if expected == 0 {
		t.Error("pgx's default query exec mode worked through PgBouncer without prepared statement support;" +
			" update the comment at the top of pgbouncer.go")
	}
}

// TestPgBouncerSessionStateStaysOnServerConnection shows that server
// connections are shared between clients transaction by transaction: a
// session-level SET made by one client is seen by another client whose
// transaction runs on the same server connection, while the first client is
// still connected. In session pooling that could not happen.
func TestPgBouncerSessionStateStaysOnServerConnection(t *testing.T) {
	b := StartPgBouncer(t, Shared(t))
	connURL := withExecMode(t, b.NewDatabase(t), "exec")
	first := connect(t, connURL)
	second := connect(t, connURL)
	ctx := t.Context()

	var firstPID int
	err := first.QueryRow(ctx,
		"SELECT pg_backend_pid() FROM (SELECT set_config('cloacina.marker', 'first client', false)) AS s").
		Scan(&firstPID)
	if err != nil {
		t.Fatal(err)
	}
	// PgBouncer hands out the most recently released server connection
	// first, so this normally succeeds at once.
	seen := map[int]bool{}
	for range 200 {
		var (
			pid    int
			marker string
		)
		err := second.QueryRow(ctx,
			"SELECT pg_backend_pid(), coalesce(current_setting('cloacina.marker', true), '')").Scan(&pid, &marker)
		if err != nil {
			t.Fatal(err)
		}
		seen[pid] = true
		if pid == firstPID {
			if marker != "first client" {
				t.Fatalf("on the first client's server connection, cloacina.marker = %q, want %q",
					marker, "first client")
			}
			return
		}
	}
	t.Fatalf("the second client never ran on the server connection of the first (pid %d); it ran on %v",
		firstPID, slices.Sorted(maps.Keys(seen)))
}

func TestPgBouncerRefusesWrongPassword(t *testing.T) {
	s := Shared(t)
	b := StartPgBouncer(t, s)
	for _, database := range []string{databaseOf(t, s.URL()), "pgbouncer"} {
		t.Run(database, func(t *testing.T) {
			u, err := url.Parse(b.URL(database))
			if err != nil {
				t.Fatal("parsing the bouncer URL failed")
			}
			u.User = url.UserPassword(s.AdminUser(), "wrong-"+s.AdminPassword())
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			conn, err := pgx.Connect(ctx, withExecMode(t, u.String(), "simple_protocol"))
			if err == nil {
				conn.Close(ctx)
				t.Fatal("connecting with a wrong password succeeded")
			}
			// PgBouncer reports a failed SCRAM exchange as a protocol
			// violation (08P01), PostgreSQL as invalid_password (28P01).
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || (pgErr.Code != "08P01" && pgErr.Code != "28P01") ||
				!strings.Contains(pgErr.Message, "authentication failed") {
				t.Fatalf("connecting with a wrong password: %v; want an authentication failure", s.redact(err))
			}
		})
	}
	t.Run("unknown user", func(t *testing.T) {
		u, err := url.Parse(b.URL(databaseOf(t, s.URL())))
		if err != nil {
			t.Fatal("parsing the bouncer URL failed")
		}
		u.User = url.UserPassword("nobody", s.AdminPassword())
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, u.String()); err == nil {
			conn.Close(ctx)
			t.Fatal("connecting as a user missing from userlist.txt succeeded")
		}
	})
}

func TestPgBouncerCleanupStopsIt(t *testing.T) {
	outer := t
	var (
		dir  string
		addr string
		pid  int
	)
	t.Run("bouncer", func(t *testing.T) {
		b := StartPgBouncer(t, Shared(t))
		dir, addr = b.dir, net.JoinHostPort(b.host, strconv.Itoa(b.port))
		b.mu.Lock()
		pid = b.cmd.Process.Pid
		b.mu.Unlock()
		// A client left connected must not delay the cleanup.
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, b.URL(databaseOf(t, b.srv.URL())))
		if err != nil {
			t.Fatal(err)
		}
		outer.Cleanup(func() { conn.Close(context.Background()) })
		var one int
		if err := conn.QueryRow(t.Context(), "SELECT 1").Scan(&one); err != nil {
			t.Fatal(err)
		}
	})
	if dir == "" {
		t.SkipNow()
	}
	assertBouncerGone(t, dir, addr, pid)
}

func TestPgBouncerWatchdogCleansUpAfterProcessExit(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no watchdog on Windows")
	}
	b := StartPgBouncer(t, Shared(t))
	b.mu.Lock()
	b.stopping = true // the exit is expected: the cleanup must not report it
	pid := b.cmd.Process.Pid
	pipe := b.watchdogPipe
	b.mu.Unlock()
	// Closing the pipe is what the kernel does when the test process dies.
	if err := pipe.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(b.dir); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the watchdog did not remove %s", b.dir)
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case <-b.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("the watchdog did not stop pgbouncer")
	}
	assertBouncerGone(t, b.dir, net.JoinHostPort(b.host, strconv.Itoa(b.port)), pid)
}

// assertBouncerGone checks that a bouncer's directory is removed, its
// process has exited and nothing listens on its address.
func assertBouncerGone(t *testing.T, dir, addr string, pid int) {
	t.Helper()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pgbouncer directory %s still exists (stat: %v)", dir, err)
	}
	if runtime.GOOS == "linux" {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
			t.Errorf("pgbouncer (pid %d) is still running", pid)
		}
	}
	if conn, err := net.DialTimeout("tcp", addr, 5*time.Second); err == nil {
		conn.Close()
		t.Errorf("something still listens on %s", addr)
	}
}

func TestPgBouncerStartFailureReportsLog(t *testing.T) {
	s := Shared(t)
	b := StartPgBouncer(t, s)
	bin, err := findPgBouncer()
	if err != nil {
		t.Fatal(err)
	}
	// A second bouncer on the first one's port cannot listen.
	owner, err := clusterOwner()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(tempParent(owner != nil), "cloacina-pgbouncer-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	other := &Bouncer{srv: s, host: b.host, port: b.port, dir: dir, logPath: filepath.Join(dir, "pgbouncer.log"),
		stopSignal: b.stopSignal}
	ini := filepath.Join(dir, "pgbouncer.ini")
	userlist := filepath.Join(dir, "userlist.txt")
	if err := os.WriteFile(userlist, []byte(userlistLine(s.AdminUser(), s.AdminPassword())), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ini, []byte(other.config(userlist, owner != nil)), 0o600); err != nil {
		t.Fatal(err)
	}
	if owner != nil {
		for _, path := range []string{dir, userlist, ini} {
			if err := os.Chown(path, owner.uid, owner.gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	err = other.launch(t.Context(), bin, ini)
	if err == nil {
		other.close()
		t.Fatal("starting pgbouncer on a port in use succeeded")
	}
	if msg := err.Error(); !strings.Contains(msg, "pgbouncer log") || !strings.Contains(msg, "Address already in use") {
		t.Errorf("start error does not include the log tail:\n%s", msg)
	}
}

func TestPgBouncerConfig(t *testing.T) {
	s := &Server{host: "127.0.0.1", port: 5432, user: "cloacina_admin", password: "secret"}
	for _, tc := range []struct {
		prepared, asPostgres bool
	}{{false, false}, {true, true}} {
		b := &Bouncer{srv: s, host: "127.0.0.1", port: 6432, prepared: tc.prepared}
		c := b.config("/tmp/x/userlist.txt", tc.asPostgres)
		for _, line := range []string{
			"* = host=127.0.0.1 port=5432",
			"listen_addr = 127.0.0.1",
			"listen_port = 6432",
			"pool_mode = transaction",
			"auth_type = scram-sha-256",
			"auth_file = /tmp/x/userlist.txt",
			"admin_users = cloacina_admin",
			"server_reset_query =\n",
			"ignore_startup_parameters = extra_float_digits\n",
		} {
			if !strings.Contains(c, line) {
				t.Errorf("config lacks %q:\n%s", line, c)
			}
		}
		if got := strings.Contains(c, "max_prepared_statements = 200"); got != tc.prepared {
			t.Errorf("prepared=%v: max_prepared_statements set: %v\n%s", tc.prepared, got, c)
		}
		if got := strings.Contains(c, "user = postgres"); got != tc.asPostgres {
			t.Errorf("asPostgres=%v: user = postgres set: %v\n%s", tc.asPostgres, got, c)
		}
		if strings.Contains(c, "secret") {
			t.Error("the config holds the password")
		}
	}
	if got, want := userlistLine(`a"b`, "p w"), `"a""b" "p w"`+"\n"; got != want {
		t.Errorf("userlistLine = %q, want %q", got, want)
	}
}

func TestParsePgBouncerVersion(t *testing.T) {
	for _, tc := range []struct {
		out     string
		version string
		nums    []int
		atLeast bool // 1.21
	}{
		{"PgBouncer 1.18.0\nlibevent 2.1.12-stable\n", "1.18.0", []int{1, 18, 0}, false},
		{"PgBouncer 1.21.0\n", "1.21.0", []int{1, 21, 0}, true},
		{"PgBouncer 1.24.1\n", "1.24.1", []int{1, 24, 1}, true},
		{"pgbouncer version 1.9", "1.9", []int{1, 9}, false},
		{"PgBouncer 2.0", "2.0", []int{2, 0}, true},
	} {
		version, nums, err := parsePgBouncerVersion(tc.out)
		if err != nil || version != tc.version || !slices.Equal(nums, tc.nums) {
			t.Errorf("parsePgBouncerVersion(%q) = %q, %v, %v; want %q, %v", tc.out, version, nums, err, tc.version, tc.nums)
		}
		if got := versionAtLeast(nums, 1, 21); got != tc.atLeast {
			t.Errorf("versionAtLeast(%v, 1, 21) = %v", nums, got)
		}
	}
	if _, _, err := parsePgBouncerVersion("something else"); err == nil {
		t.Error("parsing output without a version succeeded")
	}
}

func TestFindPgBouncerFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	writeExecutable(t, dir, "pgbouncer", 0o755)

	t.Setenv(envPgBouncerBin, dir)
	if got, err := findPgBouncer(); err != nil || got != dir+"/pgbouncer" {
		t.Errorf("with %s a directory: findPgBouncer = %q, %v", envPgBouncerBin, got, err)
	}
	t.Setenv(envPgBouncerBin, dir+"/pgbouncer")
	if got, err := findPgBouncer(); err != nil || got != dir+"/pgbouncer" {
		t.Errorf("with %s a file: findPgBouncer = %q, %v", envPgBouncerBin, got, err)
	}
	t.Setenv(envPgBouncerBin, dir+"/missing")
	_, err := findPgBouncer()
	var unavailable *bouncerUnavailableError
	if err == nil || errors.As(err, &unavailable) {
		t.Errorf("with %s naming a missing file: findPgBouncer error = %v; want a setup error, not a skip", envPgBouncerBin, err)
	}
}

func runFailBouncerSetup(t *testing.T, err error) *fakeTB {
	f := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		failBouncerSetup(f, err)
	}()
	<-done
	return f
}

func TestFailBouncerSetup(t *testing.T) {
	missing := &bouncerUnavailableError{reason: "pgbouncer not found"}

	t.Setenv("CI", "")
	f := runFailBouncerSetup(t, missing)
	if !f.skipped || f.failed {
		t.Errorf("outside CI, missing pgbouncer: skipped=%v failed=%v; want a skip", f.skipped, f.failed)
	}
	if !strings.Contains(f.msg, "apt-get install pgbouncer") {
		t.Errorf("skip message %q does not mention apt-get install pgbouncer", f.msg)
	}

	t.Setenv("CI", "true")
	if f := runFailBouncerSetup(t, missing); !f.failed || f.skipped {
		t.Errorf("in CI, missing pgbouncer: skipped=%v failed=%v; want a failure", f.skipped, f.failed)
	}

	t.Setenv("CI", "")
	if f := runFailBouncerSetup(t, errors.New("pgbouncer exited at startup")); !f.failed || f.skipped {
		t.Errorf("startup error: skipped=%v failed=%v; want a failure", f.skipped, f.failed)
	}
}
