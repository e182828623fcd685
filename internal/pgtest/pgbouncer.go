package pgtest

// PgBouncer in front of a test server.
//
// StartPgBouncer starts a throwaway PgBouncer in transaction-pooling mode, so
// that tests can prove code works through it. In that mode a client holds a
// server connection only for the length of a transaction (or of a single
// statement outside one): consecutive transactions of one client connection
// may run on different server connections, and a server connection serves
// many clients in turn. Hence, through it:
//
//   - Session state does not follow the client: SET (without LOCAL), session
//     advisory locks, LISTEN, temporary tables and WITH HOLD cursors stay on
//     whichever server connection ran the statement, where the next client
//     may see them. Use SET LOCAL, set_config(..., true) and
//     pg_advisory_xact_lock inside a transaction. (PgBouncer itself tracks
//     client_encoding, DateStyle, TimeZone, standard_conforming_strings and
//     application_name per client.)
//
//   - Protocol-level named prepared statements need PgBouncer 1.21 or later,
//     which tracks them per client and prepares them on each server
//     connection as needed when max_prepared_statements is non-zero.
//     StartPgBouncer sets it to 200 when the installed version supports it;
//     Bouncer.PreparedStatements reports whether it did. pgx should then work
//     unchanged, with its default query exec mode (cache_statement), and so
//     should DB.Prepare with the stdlib driver; the tests use both there.
//
//   - With an older PgBouncer (Debian 12 ships 1.18), pgx's default
//     QueryExecModeCacheStatement fails under concurrency: a statement pgx
//     prepared on one server connection is missing on the next ("prepared
//     statement \"stmtcache_...\" does not exist", SQLSTATE 26000) or was
//     already prepared there by another client ("... already exists",
//     42P05). Set ConnConfig.DefaultQueryExecMode to QueryExecModeExec: in a
//     URL, default_query_exec_mode=exec, which pgx.ParseConfig,
//     pgxpool.ParseConfig and sql.Open("pgx", url) all honour.
//     QueryExecModeCacheDescribe and QueryExecModeSimpleProtocol work too;
//     they, like exec, use only the unnamed statement within one round trip.
//     QueryExecModeDescribeExec does not: its two round trips may reach
//     different server connections ("unnamed prepared statement does not
//     exist", 26000). Whatever the mode, an explicit Prepare (pgx's
//     Conn.Prepare, database/sql's DB.Prepare, Conn.PrepareContext,
//     Tx.Prepare) creates a named statement, which needs PgBouncer 1.21 or
//     later. Conn.Exec without arguments uses the simple protocol in every
//     mode. TestPgBouncerNeedsPreparedStatementSupport and the concurrency
//     tests check these claims against the installed PgBouncer.
//
// pgx sends no startup parameters PgBouncer would refuse: only user and
// database, plus run-time parameters given in the URL (application_name is
// supported). ignore_startup_parameters lists extra_float_digits, which other
// drivers (lib/pq, JDBC) send; it deliberately leaves out search_path and
// options, which PgBouncer would then drop silently rather than refuse.
//
// The admin console is the database "pgbouncer" (URL("pgbouncer")), for the
// admin user; it speaks only the simple query protocol, so connect to it with
// default_query_exec_mode=simple_protocol. A failed password check through
// PgBouncer is SQLSTATE 08P01 ("SASL authentication failed"), not 28P01.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	envPgBouncerBin = "CLOACINA_PGBOUNCER_BIN"

	// bouncerPoolSize is default_pool_size: server connections per database
	// and user. Small, so that tests easily have more clients than server
	// connections.
	bouncerPoolSize = 5
	// bouncerMaxPreparedStatements is max_prepared_statements, where
	// supported.
	bouncerMaxPreparedStatements = 200
	// bouncerStopTimeout bounds waiting for PgBouncer to exit after the stop
	// signal; it is then killed.
	bouncerStopTimeout = 10 * time.Second
)

// Bouncer is a PgBouncer in transaction-pooling mode in front of a Server.
//
// It listens on 127.0.0.1 and forwards every database name to the server,
// authenticating clients with the server's admin user and password
// (scram-sha-256). The comment at the top of pgbouncer.go says what code
// needs to work through it. Its methods are safe for concurrent use.
type Bouncer struct {
	srv      *Server
	host     string
	port     int
	version  string // e.g. "1.18.0"
	prepared bool   // max_prepared_statements is set

	dir        string // temporary directory, removed on close
	logPath    string
	stopSignal os.Signal

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{} // closed once cmd has been waited for
	waitErr  error         // cmd.Wait's result, set before exited is closed
	stopping bool          // the exit of cmd was requested
	closed   bool

	// watchdog stops PgBouncer and removes dir once watchdogPipe, which only
	// this process holds, is closed, as in cluster.startWatchdog.
	watchdog     *exec.Cmd
	watchdogPipe *os.File
}

// StartPgBouncer starts PgBouncer in front of srv and returns it; a cleanup
// registered on tb stops it and removes its temporary directory.
//
// The pgbouncer executable is $CLOACINA_PGBOUNCER_BIN (its path, or a
// directory holding it), else pgbouncer in $PATH, else /usr/sbin/pgbouncer.
// PgBouncer runs with pool_mode=transaction, default_pool_size=5, an empty
// server_reset_query, ignore_startup_parameters=extra_float_digits and, from
// version 1.21, max_prepared_statements=200; see the comment at the top of
// this file for what that means for pgx. When the tests run as root it runs
// as the "postgres" system user, like the throwaway clusters.
//
// When pgbouncer is not installed, StartPgBouncer skips tb, or fails it if
// the environment variable CI is "true".
func StartPgBouncer(tb testing.TB, srv *Server) *Bouncer {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	began := time.Now()
	bin, err := findPgBouncer()
	if err != nil {
		failBouncerSetup(tb, err)
	}
	b, err := startBouncer(ctx, bin, srv)
	if err != nil {
		failBouncerSetup(tb, err)
	}
	tb.Cleanup(func() {
		if err := b.close(); err != nil {
			tb.Errorf("pgtest: %v", err)
		}
	})
	prepared := "unsupported before 1.21"
	if b.prepared {
		prepared = fmt.Sprintf("max_prepared_statements=%d", bouncerMaxPreparedStatements)
	}
	tb.Logf("pgtest: started PgBouncer %s at %s:%d in front of %s:%d in %v (pool_mode=transaction, prepared statements: %s)",
		b.version, b.host, b.port, srv.host, srv.port, time.Since(began).Round(time.Millisecond), prepared)
	return b
}

// URL returns the connection URL of the database called database through
// the bouncer, for the server's admin user:
// postgres://cloacina_admin:PASSWORD@127.0.0.1:PORT/DATABASE?sslmode=disable.
// URL("pgbouncer") is PgBouncer's admin console. The URL contains the
// password, so do not log it.
func (b *Bouncer) URL(database string) string {
	return (&url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(b.srv.user, b.srv.password),
		Host:     net.JoinHostPort(b.host, strconv.Itoa(b.port)),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}).String()
}

// NewDatabase creates a fresh database with the server's NewDatabase, which
// drops it when tb ends, and returns its URL through the bouncer.
func (b *Bouncer) NewDatabase(tb testing.TB) string {
	tb.Helper()
	direct := b.srv.NewDatabase(tb)
	u, err := url.Parse(direct)
	if err != nil {
		tb.Fatalf("pgtest: parsing a database URL: %v", b.srv.redact(err))
	}
	return b.URL(strings.TrimPrefix(u.Path, "/"))
}

// Version returns the PgBouncer version, such as "1.18.0".
func (b *Bouncer) Version() string { return b.version }

// PreparedStatements reports whether the bouncer supports protocol-level
// named prepared statements (PgBouncer 1.21 or later, run with
// max_prepared_statements). Without them, pgx needs a query exec mode other
// than its default; see the comment at the top of this file.
func (b *Bouncer) PreparedStatements() bool { return b.prepared }

// bouncerUnavailableError reports that PgBouncer is not installed.
type bouncerUnavailableError struct{ reason string }

func (e *bouncerUnavailableError) Error() string {
	return e.reason + "; apt-get install pgbouncer (or setting " + envPgBouncerBin +
		" to the path of pgbouncer) enables this test"
}

// failBouncerSetup reports err from starting PgBouncer: a skip when PgBouncer
// (or the postgres system user it runs as under root) is unavailable outside
// CI, a failure otherwise.
func failBouncerSetup(tb testing.TB, err error) {
	tb.Helper()
	var noBouncer *bouncerUnavailableError
	var noUser *unavailableError
	if errors.As(err, &noBouncer) || errors.As(err, &noUser) {
		if os.Getenv("CI") != "true" {
			tb.Skipf("pgtest: %v", err)
		}
		tb.Fatalf("pgtest: %v (CI=true, so this fails instead of skipping)", err)
	}
	tb.Fatalf("pgtest: %v", err)
}

// findPgBouncer returns the path of the pgbouncer executable.
func findPgBouncer() (string, error) {
	if p := os.Getenv(envPgBouncerBin); p != "" {
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			p = filepath.Join(p, "pgbouncer")
		}
		path, err := exec.LookPath(p)
		if err != nil {
			// Set explicitly, so a mistake rather than a missing package.
			return "", fmt.Errorf("%s=%q does not name a pgbouncer executable: %w", envPgBouncerBin, p, err)
		}
		return filepath.Abs(path)
	}
	path, err := lookPathOrDirs("pgbouncer", "/usr/sbin")
	if err != nil {
		return "", &bouncerUnavailableError{reason: fmt.Sprintf(
			"pgbouncer not found ($%s, $PATH, /usr/sbin/pgbouncer)", envPgBouncerBin)}
	}
	return filepath.Abs(path)
}

var pgbouncerVersionRE = regexp.MustCompile(`(?i)pgbouncer\D*(\d+)\.(\d+)(?:\.(\d+))?`)

// pgbouncerVersion runs pgbouncer --version and returns the version, such as
// "1.18.0", and its numeric components.
func pgbouncerVersion(ctx context.Context, bin string) (string, []int, error) {
	cmd := exec.CommandContext(ctx, bin, "--version")
	cmd.Env = environWithoutPG()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", nil, fmt.Errorf("%s --version: %w\n%s", bin, err, strings.TrimSpace(string(out)))
	}
	return parsePgBouncerVersion(string(out))
}

func parsePgBouncerVersion(out string) (string, []int, error) {
	m := pgbouncerVersionRE.FindStringSubmatch(out)
	if m == nil {
		return "", nil, fmt.Errorf("no version in the output of pgbouncer --version: %q", strings.TrimSpace(out))
	}
	var nums []int
	for _, part := range m[1:] {
		if part == "" {
			break
		}
		n, err := strconv.Atoi(part)
		if err != nil {
			return "", nil, fmt.Errorf("parsing the pgbouncer version %q: %w", m[0], err)
		}
		nums = append(nums, n)
	}
	parts := make([]string, len(nums))
	for i, n := range nums {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, "."), nums, nil
}

// versionAtLeast reports whether version is at least major.minor.
func versionAtLeast(version []int, major, minor int) bool {
	return slices.Compare(version, []int{major, minor}) >= 0
}

// startBouncer starts the pgbouncer executable bin in front of srv.
func startBouncer(ctx context.Context, bin string, srv *Server) (_ *Bouncer, err error) {
	version, nums, err := pgbouncerVersion(ctx, bin)
	if err != nil {
		return nil, err
	}
	owner, err := clusterOwner()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(tempParent(owner != nil), "cloacina-pgbouncer-")
	if err != nil {
		return nil, fmt.Errorf("creating the pgbouncer directory: %w", err)
	}
	b := &Bouncer{
		srv:      srv,
		host:     "127.0.0.1",
		version:  version,
		prepared: versionAtLeast(nums, 1, 21),
		dir:      dir,
		logPath:  filepath.Join(dir, "pgbouncer.log"),
		// From 1.23, SIGTERM waits for all clients to disconnect and SIGQUIT
		// is the immediate shutdown that SIGTERM was before.
		stopSignal: syscall.SIGTERM,
	}
	if versionAtLeast(nums, 1, 23) {
		b.stopSignal = syscall.SIGQUIT
	}
	defer func() {
		if err != nil {
			err = srv.redact(errors.Join(err, b.close()))
		}
	}()
	chown := func(path string) error {
		if owner == nil {
			return nil
		}
		if err := os.Chown(path, owner.uid, owner.gid); err != nil {
			return fmt.Errorf("handing %s to the postgres user: %w", path, err)
		}
		return nil
	}
	if err := chown(dir); err != nil {
		return nil, err
	}

	userlist := filepath.Join(dir, "userlist.txt")
	if err := os.WriteFile(userlist, []byte(userlistLine(srv.user, srv.password)), 0o600); err != nil {
		return nil, fmt.Errorf("writing userlist.txt: %w", err)
	}
	if err := chown(userlist); err != nil {
		return nil, err
	}

	ini := filepath.Join(dir, "pgbouncer.ini")
	for attempt := 1; ; attempt++ {
		if b.port, err = freePort(); err != nil {
			return nil, err
		}
		if err := os.WriteFile(ini, []byte(b.config(userlist, owner != nil)), 0o600); err != nil {
			return nil, fmt.Errorf("writing pgbouncer.ini: %w", err)
		}
		if err := chown(ini); err != nil {
			return nil, err
		}
		err = b.launch(ctx, bin, ini)
		if err == nil {
			break
		}
		if attempt == startAttempts || !strings.Contains(tailFile(b.logPath), "Address already in use") {
			return nil, err
		}
		// Another process took the port: try again with a fresh one.
		if err := os.Truncate(b.logPath, 0); err != nil {
			return nil, fmt.Errorf("truncating the pgbouncer log: %w", err)
		}
	}

	// Check the whole path: client authentication, then the login to the
	// server.
	pingCtx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if err := ping(pingCtx, b.URL(strings.TrimPrefix(srv.adminURL.Path, "/"))); err != nil {
		return nil, b.withLog(fmt.Errorf("connecting through pgbouncer: %w", err))
	}
	return b, nil
}

// userlistLine returns the auth_file line for user and password. PgBouncer
// hashes a plain password itself for scram-sha-256 and uses it to log in to
// the server too.
func userlistLine(user, password string) string {
	quote := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
	return quote(user) + " " + quote(password) + "\n"
}

// config returns the contents of pgbouncer.ini.
func (b *Bouncer) config(userlist string, asPostgres bool) string {
	var c strings.Builder
	fmt.Fprintf(&c, `; Written by pgtest.
[databases]
* = host=%s port=%d

[pgbouncer]
listen_addr = %s
listen_port = %d
unix_socket_dir =
auth_type = scram-sha-256
auth_file = %s
admin_users = %s
pool_mode = transaction
default_pool_size = %d
max_client_conn = 500
server_reset_query =
ignore_startup_parameters = extra_float_digits
server_tls_sslmode = prefer
log_connections = 0
log_disconnections = 0
`, b.srv.host, b.srv.port, b.host, b.port, userlist, b.srv.user, bouncerPoolSize)
	if b.prepared {
		fmt.Fprintf(&c, "max_prepared_statements = %d\n", bouncerMaxPreparedStatements)
	}
	if asPostgres {
		// PgBouncer refuses to run as root; started as root, it switches to
		// this user.
		c.WriteString("user = postgres\n")
	}
	return c.String()
}

// launch starts pgbouncer with the configuration file ini and its watchdog,
// and waits until its admin console answers (see pingSelf). On failure
// pgbouncer is stopped and the error includes its log.
func (b *Bouncer) launch(ctx context.Context, bin, ini string) (err error) {
	logFile, err := os.OpenFile(b.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("creating the pgbouncer log: %w", err)
	}
	defer logFile.Close() // the child has its own copy
	cmd := exec.Command(bin, ini)
	cmd.Dir = b.dir
	cmd.Env = environWithoutPG()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting pgbouncer: %w", err)
	}
	exited := make(chan struct{})
	b.mu.Lock()
	b.cmd, b.exited, b.stopping = cmd, exited, false
	b.mu.Unlock()
	go func() {
		err := cmd.Wait()
		b.mu.Lock()
		b.waitErr = err
		b.mu.Unlock()
		close(exited)
	}()
	defer func() {
		if err != nil {
			b.mu.Lock()
			b.stopping = true // an exit at startup is reported as err
			b.mu.Unlock()
			err = errors.Join(b.withLog(err), b.stopProcess())
		}
	}()
	if err := b.startWatchdog(cmd.Process.Pid); err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		select {
		case <-exited:
			return fmt.Errorf("pgbouncer exited at startup: %w", b.waitErr)
		default:
		}
		pingErr := b.pingSelf(ctx, ini)
		if pingErr == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("pgbouncer exited at startup: %w", b.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("waiting for pgbouncer to accept connections on %s:%d: %w (last attempt: %w)",
				b.host, b.port, ctx.Err(), pingErr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// pingSelf checks that the PgBouncer answering on the bouncer's port is the
// one started with the configuration file ini, not a process that took the
// port first: its admin console must accept the password and report the
// auth_file next to ini.
func (b *Bouncer) pingSelf(ctx context.Context, ini string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	u, err := url.Parse(b.URL("pgbouncer"))
	if err != nil {
		return err
	}
	q := u.Query()
	q.Set("default_query_exec_mode", "simple_protocol") // all the admin console speaks
	u.RawQuery = q.Encode()
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var authFile string
	rows, err := conn.Query(ctx, "SHOW CONFIG")
	if err != nil {
		return err
	}
	for rows.Next() {
		values, err := rows.Values()
		if err != nil {
			return err
		}
		if len(values) >= 2 && fmt.Sprint(values[0]) == "auth_file" {
			authFile = fmt.Sprint(values[1])
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if want := filepath.Join(filepath.Dir(ini), "userlist.txt"); authFile != want {
		return fmt.Errorf("another PgBouncer (auth_file %q) answers on %s:%d", authFile, b.host, b.port)
	}
	return nil
}

// stopProcess stops pgbouncer with the stop signal, killing it if it does
// not exit in time, then stops the watchdog. It reports an unexpected earlier
// exit. Stopping a stopped process does nothing.
func (b *Bouncer) stopProcess() error {
	b.mu.Lock()
	cmd, exited, stopping := b.cmd, b.exited, b.stopping
	b.cmd, b.stopping = nil, true
	b.mu.Unlock()
	if cmd == nil {
		return nil
	}
	defer b.stopWatchdog()

	var err error
	select {
	case <-exited:
		if !stopping {
			b.mu.Lock()
			err = fmt.Errorf("pgbouncer exited unexpectedly: %v", b.waitErr)
			b.mu.Unlock()
		}
		return err
	default:
	}
	if sigErr := cmd.Process.Signal(b.stopSignal); sigErr != nil {
		_ = cmd.Process.Kill()
	}
	select {
	case <-exited:
	case <-time.After(bouncerStopTimeout):
		_ = cmd.Process.Kill()
		<-exited
		err = fmt.Errorf("pgbouncer did not exit within %v of %v; killed it", bouncerStopTimeout, b.stopSignal)
	}
	return err
}

// close stops pgbouncer and removes its directory. Later calls do nothing.
func (b *Bouncer) close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()

	var errs []error
	if err := b.stopProcess(); err != nil {
		errs = append(errs, b.withLog(err))
	}
	if err := os.RemoveAll(b.dir); err != nil {
		errs = append(errs, fmt.Errorf("removing the pgbouncer directory: %w", err))
	}
	b.stopWatchdog()
	return errors.Join(errs...)
}

// withLog adds the tail of the pgbouncer log to err.
func (b *Bouncer) withLog(err error) error {
	tail := tailFile(b.logPath)
	if tail == "" {
		return err
	}
	return fmt.Errorf("%w\npgbouncer log %s (tail):\n%s", err, b.logPath, tail)
}

// startWatchdog starts a shell that waits for end of file on a pipe whose
// write end only this process holds, then stops pgbouncer (process pid) and
// removes the directory, like cluster.startWatchdog does for a cluster.
func (b *Bouncer) startWatchdog(pid int) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	sig := "TERM"
	if b.stopSignal == syscall.SIGQUIT {
		sig = "QUIT"
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("starting the pgbouncer watchdog: %w", err)
	}
	// The loop gives pgbouncer 5 seconds to exit before it is killed; once
	// orphaned it is reaped at once, so kill -0 fails as soon as it exits.
	const script = `trap '' HUP INT QUIT TERM
read -r _
kill -"$PGTEST_SIGNAL" "$PGTEST_PID" 2>/dev/null
i=0
while [ "$i" -lt 50 ] && kill -0 "$PGTEST_PID" 2>/dev/null; do
	sleep 0.1
	i=$((i + 1))
done
kill -0 "$PGTEST_PID" 2>/dev/null && kill -KILL "$PGTEST_PID" 2>/dev/null
rm -rf -- "$PGTEST_DIR"`
	argv := []string{"/bin/sh", "-c", script, "pgtest-pgbouncer-watchdog"}
	if setsid, err := exec.LookPath("setsid"); err == nil {
		argv = append([]string{setsid}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = r
	cmd.Dir = "/"
	cmd.Env = append(environWithoutPG(),
		"PGTEST_PID="+strconv.Itoa(pid), "PGTEST_SIGNAL="+sig, "PGTEST_DIR="+b.dir)
	err = cmd.Start()
	r.Close()
	if err != nil {
		w.Close()
		return fmt.Errorf("starting the pgbouncer watchdog: %w", err)
	}
	b.mu.Lock()
	b.watchdog, b.watchdogPipe = cmd, w
	b.mu.Unlock()
	return nil
}

// stopWatchdog ends the watchdog without letting it act.
func (b *Bouncer) stopWatchdog() {
	b.mu.Lock()
	wd, pipe := b.watchdog, b.watchdogPipe
	b.watchdog, b.watchdogPipe = nil, nil
	b.mu.Unlock()
	if wd == nil {
		return
	}
	_ = wd.Process.Kill()
	_ = wd.Wait() // reports the kill
	pipe.Close()
}
