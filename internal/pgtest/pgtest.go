// Package pgtest gives tests a real PostgreSQL server.
//
// By default it starts a throwaway cluster from locally installed PostgreSQL
// server binaries (initdb, pg_ctl, postgres). Setting
// CLOACINA_TEST_DATABASE_URL makes it use an existing server instead.
//
// Typical use in a test package:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
//	func TestSomething(t *testing.T) {
//		dbURL := pgtest.Shared(t).NewDatabase(t)
//		// connect to dbURL; the database is dropped when the test ends
//	}
//
// Environment variables:
//
//   - CLOACINA_TEST_DATABASE_URL: a postgres:// URL of an existing server,
//     connecting as a role that can create databases (a superuser is
//     recommended). pgtest never stops or restarts that server.
//   - CLOACINA_PG_BIN: a directory holding initdb, pg_ctl and postgres. It is
//     searched before /usr/lib/postgresql/*/bin (highest version first) and
//     $PATH.
//   - CI: when "true", a missing PostgreSQL installation fails the tests
//     instead of skipping them.
//
// When the tests run as root, the throwaway cluster runs as the "postgres"
// system user (PostgreSQL refuses to run as root), started through runuser.
package pgtest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cloacina-go/cloacina/internal/redact"
)

const (
	envDatabaseURL = "CLOACINA_TEST_DATABASE_URL"
	envPGBin       = "CLOACINA_PG_BIN"

	adminUser = "cloacina_admin"

	// readyTimeout bounds how long starting a server may take, both for
	// pg_ctl -w and for the following connection check.
	readyTimeout = 60 * time.Second
	// setupTimeout bounds creating and starting a cluster, initdb included.
	setupTimeout = 3 * time.Minute
	// stopTimeout bounds stopping a cluster.
	stopTimeout = 60 * time.Second
	// sqlTimeout bounds the administrative SQL statements pgtest runs.
	sqlTimeout = 30 * time.Second

	// startAttempts is how often a new cluster is started on a fresh port
	// when the chosen port was taken before PostgreSQL could bind it.
	startAttempts = 3
)

// Server is a running PostgreSQL server usable by tests.
//
// It is either a throwaway cluster owned by pgtest or an existing server named
// by CLOACINA_TEST_DATABASE_URL. Its methods are safe for concurrent use.
type Server struct {
	adminURL *url.URL // contains the password: never print it unredacted
	host     string
	port     int
	user     string
	password string

	// cluster is nil for an external server.
	cluster *cluster
}

// Start returns a server for tb.
//
// If CLOACINA_TEST_DATABASE_URL is set, Start uses that existing server; the
// URL must name a superuser or a role that can create databases, and the
// server is never stopped.
//
// Otherwise Start creates and starts a throwaway cluster in a fresh temporary
// directory, with a superuser named "cloacina_admin" whose random password is
// enforced (scram-sha-256) for TCP and unix-socket connections, listening on a
// free port of 127.0.0.1. The cluster is tuned for speed, not durability. A
// cleanup registered on tb stops it and removes its directory.
//
// When no PostgreSQL server binaries can be found, Start skips tb, or fails it
// if the environment variable CI is "true".
func Start(tb testing.TB) *Server {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	began := time.Now()
	s, err := newServer(ctx)
	if err != nil {
		failSetup(tb, err)
	}
	tb.Cleanup(func() {
		if err := s.close(); err != nil {
			tb.Errorf("pgtest: %v", err)
		}
	})
	s.logStarted(tb, time.Since(began))
	return s
}

// shared holds the server returned by Shared. It is package-level state on
// purpose: sharing one server across all tests of a test binary is the point
// of Shared, and this package is only linked into test binaries. once guards
// the start; Main stops srv after all tests have run.
var shared struct {
	once sync.Once
	srv  *Server
	err  error
}

// Shared returns one server shared by all tests of the test binary. It is
// started on first use, as Start would start it, and stopped by Main; use
// Main in TestMain. Should Main not run, the throwaway cluster is still
// stopped and removed when the test process exits.
//
// Tests that stop or restart a server should use Start instead, since
// stopping the shared server affects every test using it. Use NewDatabase to
// isolate tests from each other.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	var took time.Duration // set only in the call that starts the server
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		began := time.Now()
		shared.srv, shared.err = newServer(ctx)
		took = time.Since(began)
	})
	if shared.err != nil {
		failSetup(tb, shared.err)
	}
	if took > 0 {
		shared.srv.logStarted(tb, took)
	}
	return shared.srv
}

// Main runs the tests of m, stops the server started by Shared if there is
// one, and returns the exit code to pass to os.Exit. Use it as
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	// Completing once here keeps a late Shared call from starting a server
	// that nothing would stop, and orders the read of shared.srv after any
	// start.
	shared.once.Do(func() {})
	if shared.srv != nil {
		if err := shared.srv.close(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: stopping the shared server: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// URL returns the admin connection URL of the server, for the "postgres"
// database of a throwaway cluster:
// postgres://cloacina_admin:PASSWORD@127.0.0.1:PORT/postgres?sslmode=disable.
// For an external server it is CLOACINA_TEST_DATABASE_URL. The URL contains
// the password, so do not log it.
func (s *Server) URL() string { return s.adminURL.String() }

// Host returns the host name or address the server listens on.
func (s *Server) Host() string { return s.host }

// Port returns the TCP port the server listens on.
func (s *Server) Port() int { return s.port }

// AdminUser returns the name of the admin role in URL.
func (s *Server) AdminUser() string { return s.user }

// AdminPassword returns the password of the admin role in URL.
func (s *Server) AdminPassword() string { return s.password }

// NewDatabase creates a fresh, uniquely named database owned by the admin
// role and returns its admin connection URL. A cleanup registered on tb drops
// the database, terminating any remaining connections to it.
func (s *Server) NewDatabase(tb testing.TB) string {
	tb.Helper()
	name := databaseName(tb.Name())
	ident := pgx.Identifier{name}.Sanitize()

	ctx, cancel := context.WithTimeout(context.Background(), sqlTimeout)
	defer cancel()
	if err := s.exec(ctx, "CREATE DATABASE "+ident); err != nil {
		tb.Fatalf("pgtest: creating database %s: %v", name, err)
	}
	tb.Cleanup(func() {
		if s.cluster != nil && !s.cluster.isUp() {
			return // stopped or removed by the test: nothing to drop
		}
		ctx, cancel := context.WithTimeout(context.Background(), sqlTimeout)
		defer cancel()
		if err := s.exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			tb.Errorf("pgtest: dropping database %s: %v", name, err)
		}
	})
	return s.databaseURL(name).String()
}

// Stop stops the server (pg_ctl stop -m fast), for tests of how code copes
// with a database outage. Stopping a stopped server does nothing. It skips tb
// for an external server.
func (s *Server) Stop(tb testing.TB) {
	tb.Helper()
	c := s.requireCluster(tb)
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	if err := c.stop(ctx); err != nil {
		tb.Fatalf("pgtest: stopping the server: %v", s.redact(err))
	}
}

// StartAgain starts the server after Stop, on the same data directory and
// port, and waits until it accepts connections. Starting a running server
// does nothing. It skips tb for an external server.
func (s *Server) StartAgain(tb testing.TB) {
	tb.Helper()
	c := s.requireCluster(tb)
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	if err := c.start(ctx, s.URL()); err != nil {
		tb.Fatalf("pgtest: starting the server again: %v", s.redact(err))
	}
}

// Restart stops the server and starts it again, as Stop and StartAgain do.
// Existing connections are broken; data is kept. It skips tb for an external
// server.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.Stop(tb)
	s.StartAgain(tb)
}

func (s *Server) requireCluster(tb testing.TB) *cluster {
	tb.Helper()
	if s.cluster == nil {
		tb.Skip("cannot restart an external server")
	}
	return s.cluster
}

func (s *Server) logStarted(tb testing.TB, took time.Duration) {
	tb.Helper()
	if s.cluster == nil {
		tb.Logf("pgtest: using the external server at %s:%d (%s)", s.host, s.port, envDatabaseURL)
		return
	}
	tb.Logf("pgtest: started PostgreSQL at %s:%d in %v (data in %s)",
		s.host, s.port, took.Round(time.Millisecond), s.cluster.dataDir)
}

// databaseURL returns the admin URL for the database called name.
func (s *Server) databaseURL(name string) *url.URL {
	u := *s.adminURL
	u.Path = "/" + name
	u.RawPath = ""
	return &u
}

// exec runs one statement on a fresh admin connection.
func (s *Server) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, s.URL())
	if err != nil {
		return s.redact(fmt.Errorf("connecting to %s: %w", s.adminURL.Redacted(), err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, sql); err != nil {
		return s.redact(err)
	}
	return nil
}

// close releases the server: a throwaway cluster is stopped and removed.
func (s *Server) close() error {
	if s.cluster == nil {
		return nil
	}
	return s.redact(s.cluster.shutdown())
}

// redact hides the admin password should it appear in err's message.
func (s *Server) redact(err error) error { return redactSecret(err, s.password) }

// newServer returns the external server named by the environment, or else
// starts a throwaway cluster.
func newServer(ctx context.Context) (*Server, error) {
	if raw := os.Getenv(envDatabaseURL); raw != "" {
		return newExternal(ctx, raw)
	}
	binDir, ok := findBinDir(binDirCandidates())
	if !ok {
		return nil, &unavailableError{reason: fmt.Sprintf(
			"no PostgreSQL server binaries (initdb, pg_ctl, postgres) found in $%s, /usr/lib/postgresql/*/bin or $PATH",
			envPGBin)}
	}
	return startCluster(ctx, binDir)
}

// newExternal checks and describes the existing server at rawURL.
func newExternal(ctx context.Context, rawURL string) (*Server, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // *url.Error quotes the URL, password included
		}
		return nil, fmt.Errorf("%s is not a valid URL: %w", envDatabaseURL, err)
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return nil, fmt.Errorf("%s must be a postgres:// URL, got scheme %q", envDatabaseURL, u.Scheme)
	}
	password, _ := u.User.Password()
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		return nil, redactSecret(fmt.Errorf("parsing %s: %w", envDatabaseURL, err), password)
	}
	s := &Server{
		adminURL: u,
		host:     cfg.Host,
		port:     int(cfg.Port),
		user:     cfg.User,
		password: cfg.Password,
	}

	conn, err := pgx.Connect(ctx, rawURL)
	if err != nil {
		return nil, s.redact(fmt.Errorf("connecting to %s (%s): %w", u.Redacted(), envDatabaseURL, err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var canCreate bool
	err = conn.QueryRow(ctx,
		"SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user").Scan(&canCreate)
	if err != nil {
		return nil, s.redact(fmt.Errorf("checking the privileges of %s: %w", u.Redacted(), err))
	}
	if !canCreate {
		return nil, fmt.Errorf("%s must connect as a superuser or a role with CREATEDB; %q is neither",
			envDatabaseURL, cfg.User)
	}
	return s, nil
}

// unavailableError reports that PostgreSQL cannot be provided in this
// environment, as opposed to failing to start.
type unavailableError struct{ reason string }

func (e *unavailableError) Error() string {
	return e.reason + "; to run these tests, install the PostgreSQL server binaries" +
		" (e.g. apt-get install postgresql) or set " + envDatabaseURL +
		" to the admin URL of an existing server"
}

// failSetup reports err from starting a server: a skip when PostgreSQL is
// unavailable outside CI, a failure otherwise.
func failSetup(tb testing.TB, err error) {
	tb.Helper()
	var unavailable *unavailableError
	if errors.As(err, &unavailable) {
		if os.Getenv("CI") != "true" {
			tb.Skipf("pgtest: %v", err)
		}
		tb.Fatalf("pgtest: %v (CI=true, so this fails instead of skipping)", err)
	}
	tb.Fatalf("pgtest: %v", err)
}

// cluster is a throwaway PostgreSQL cluster in a temporary directory.
type cluster struct {
	binDir  string
	dir     string // temporary root directory, removed on shutdown
	dataDir string
	logPath string
	owner   *osUser // nil when the cluster runs as the current user

	// watchdog stops the cluster and removes dir once watchdogPipe, which
	// only this process holds, is closed: at the latest when the process
	// exits, however it exits.
	watchdog     *exec.Cmd
	watchdogPipe *os.File

	mu      sync.Mutex
	running bool
	closed  bool
}

// osUser is a system user the cluster runs as, through prefix.
type osUser struct {
	uid, gid int
	prefix   []string // e.g. runuser -u postgres --
}

// startCluster creates a cluster with the binaries in binDir and starts it.
func startCluster(ctx context.Context, binDir string) (_ *Server, err error) {
	owner, err := clusterOwner()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(tempParent(owner != nil), "cloacina-pgtest-")
	if err != nil {
		return nil, fmt.Errorf("creating the cluster directory: %w", err)
	}
	c := &cluster{
		binDir:  binDir,
		dir:     dir,
		dataDir: filepath.Join(dir, "data"),
		logPath: filepath.Join(dir, "postgres.log"),
		owner:   owner,
	}
	password := rand.Text()
	defer func() {
		if err != nil {
			err = redactSecret(errors.Join(err, c.shutdown()), password)
		}
	}()
	if err := c.chown(dir); err != nil {
		return nil, err
	}
	if err := c.startWatchdog(); err != nil {
		return nil, err
	}
	if err := c.initdb(ctx, password); err != nil {
		return nil, err
	}

	var port int
	for attempt := 1; ; attempt++ {
		if port, err = freePort(); err != nil {
			return nil, err
		}
		if err := c.appendConfig(fmt.Sprintf("port = %d\n", port)); err != nil {
			return nil, err
		}
		err = c.pgCtlStart(ctx)
		if err == nil {
			break
		}
		if attempt == startAttempts || !strings.Contains(tailFile(c.logPath), "Address already in use") {
			return nil, err
		}
		// Another process took the port: try again with a fresh one and log.
		if err := os.Truncate(c.logPath, 0); err != nil {
			return nil, fmt.Errorf("truncating the server log: %w", err)
		}
	}

	s := &Server{
		adminURL: &url.URL{
			Scheme:   "postgres",
			User:     url.UserPassword(adminUser, password),
			Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
			Path:     "/postgres",
			RawQuery: "sslmode=disable",
		},
		host:     "127.0.0.1",
		port:     port,
		user:     adminUser,
		password: password,
		cluster:  c,
	}
	if err := waitReady(ctx, s.URL()); err != nil {
		return nil, c.withLog(err)
	}
	return s, nil
}

// clusterOwner returns the user PostgreSQL must run as: nil for the current
// user, or the "postgres" system user when running as root.
func clusterOwner() (*osUser, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, &unavailableError{reason: fmt.Sprintf(
			"running as root, so PostgreSQL must run as the \"postgres\" system user, but looking it up failed: %v", err)}
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return nil, fmt.Errorf("parsing the uid of the postgres user: %w", err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return nil, fmt.Errorf("parsing the gid of the postgres user: %w", err)
	}
	runuser, err := lookPathOrDirs("runuser", "/usr/sbin", "/sbin")
	if err != nil {
		return nil, &unavailableError{reason: "running as root, so PostgreSQL must run as the \"postgres\" system user, but runuser (util-linux) was not found"}
	}
	return &osUser{uid: uid, gid: gid, prefix: []string{runuser, "-u", u.Username, "--"}}, nil
}

// tempParent returns the directory to create the cluster directory in. A
// cluster run as another user needs every ancestor to be searchable by it.
func tempParent(otherUser bool) string {
	dir := os.TempDir()
	if !otherUser || searchableByOthers(dir) {
		return dir
	}
	return "/tmp"
}

// searchableByOthers reports whether dir and all its ancestors can be
// traversed by any user.
func searchableByOthers(dir string) bool {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	for {
		fi, err := os.Stat(dir)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return true
		}
		dir = parent
	}
}

// chown gives path to the cluster's owner, if it is not the current user.
func (c *cluster) chown(path string) error {
	if c.owner == nil {
		return nil
	}
	if err := os.Chown(path, c.owner.uid, c.owner.gid); err != nil {
		return fmt.Errorf("handing %s to the postgres user: %w", path, err)
	}
	return nil
}

// initdb creates the data directory, with password as the admin password,
// and configures the server.
func (c *cluster) initdb(ctx context.Context, password string) error {
	pwfile := filepath.Join(c.dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(password+"\n"), 0o600); err != nil {
		return fmt.Errorf("writing the password file: %w", err)
	}
	defer os.Remove(pwfile)
	if err := c.chown(pwfile); err != nil {
		return err
	}
	if _, err := c.run(ctx, "initdb",
		"-D", c.dataDir,
		"-U", adminUser,
		"--pwfile="+pwfile,
		"--auth-local=scram-sha-256",
		"--auth-host=scram-sha-256",
		"-E", "UTF8",
		"--locale=C",
		"--no-sync",
	); err != nil {
		return err
	}
	return c.appendConfig(fmt.Sprintf(`
# Added by pgtest: a throwaway cluster tuned for speed, not durability.
listen_addresses = '127.0.0.1'
unix_socket_directories = %s
fsync = off
full_page_writes = off
synchronous_commit = off
max_connections = 300
shared_buffers = 128MB
`, quoteConfig(c.dir)))
}

// appendConfig appends lines to postgresql.conf; later settings win.
func (c *cluster) appendConfig(lines string) error {
	f, err := os.OpenFile(filepath.Join(c.dataDir, "postgresql.conf"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("opening postgresql.conf: %w", err)
	}
	if _, err := f.WriteString(lines); err != nil {
		f.Close()
		return fmt.Errorf("writing postgresql.conf: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing postgresql.conf: %w", err)
	}
	return nil
}

// pgCtlStart starts the server with pg_ctl -w, with the log tail in the
// error when it fails. Starting a running server does nothing.
func (c *cluster) pgCtlStart(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return errors.New("the server has been shut down")
	case c.running:
		return nil
	}
	if _, err := c.run(ctx, "pg_ctl", "start",
		"-D", c.dataDir,
		"-l", c.logPath,
		"-w", "-t", strconv.Itoa(int(readyTimeout/time.Second)),
	); err != nil {
		return c.withLog(err)
	}
	c.running = true
	return nil
}

// start starts a stopped server and waits until readyURL accepts connections.
func (c *cluster) start(ctx context.Context, readyURL string) error {
	if err := c.pgCtlStart(ctx); err != nil {
		return err
	}
	if err := waitReady(ctx, readyURL); err != nil {
		return c.withLog(err)
	}
	return nil
}

// stop stops a running server with pg_ctl stop -m fast.
func (c *cluster) stop(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return errors.New("the server has been shut down")
	case !c.running:
		return nil
	}
	if _, err := c.run(ctx, "pg_ctl", "stop", "-D", c.dataDir, "-m", "fast", "-w"); err != nil {
		return c.withLog(err)
	}
	c.running = false
	return nil
}

// isUp reports whether the server was started and not stopped since.
func (c *cluster) isUp() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.running && !c.closed
}

// shutdown stops the server at once (pg_ctl stop -m immediate) and removes
// the cluster directory. Later calls do nothing.
func (c *cluster) shutdown() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	c.running = false

	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	var errs []error
	if up, err := c.postmasterAlive(ctx); err != nil {
		errs = append(errs, err)
	} else if up {
		if _, err := c.run(ctx, "pg_ctl", "stop", "-D", c.dataDir, "-m", "immediate", "-w"); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(c.dir); err != nil {
		errs = append(errs, fmt.Errorf("removing the cluster directory: %w", err))
	}
	c.stopWatchdog()
	return errors.Join(errs...)
}

// postmasterAlive asks pg_ctl status whether a server runs on the data
// directory.
func (c *cluster) postmasterAlive(ctx context.Context) (bool, error) {
	if _, err := os.Stat(filepath.Join(c.dataDir, "postmaster.pid")); errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	_, err := c.run(ctx, "pg_ctl", "status", "-D", c.dataDir)
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &exitErr) && exitErr.ExitCode() == 3: // not running
		return false, nil
	default:
		return false, err
	}
}

// startWatchdog starts a shell that waits for end of file on a pipe whose
// write end only this process holds, then stops the cluster and removes its
// directory. It cleans up after a test process that exits without running
// its cleanups: a test timeout, os.Exit, a signal, or Main not being used.
//
// The shell ignores terminal signals so that Ctrl-C reaches the test process
// only, and runs in its own session where setsid(1) exists (Linux), so that
// a SIGKILL sent to the test's whole process group spares it too.
func (c *cluster) startWatchdog() error {
	if runtime.GOOS == "windows" {
		return nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("starting the watchdog: %w", err)
	}
	const script = `trap '' HUP INT QUIT TERM
read -r _
"$@" stop -D "$PGTEST_DATA" -m immediate -w >/dev/null 2>&1
rm -rf -- "$PGTEST_DIR"`
	argv := []string{"/bin/sh", "-c", script, "pgtest-watchdog"}
	if setsid, err := exec.LookPath("setsid"); err == nil {
		argv = append([]string{setsid}, argv...)
	}
	argv = append(argv, c.command("pg_ctl")...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = r
	cmd.Dir = "/"
	cmd.Env = append(environWithoutPG(), "PGTEST_DATA="+c.dataDir, "PGTEST_DIR="+c.dir)
	err = cmd.Start()
	r.Close()
	if err != nil {
		w.Close()
		return fmt.Errorf("starting the watchdog: %w", err)
	}
	c.watchdog, c.watchdogPipe = cmd, w
	return nil
}

// stopWatchdog ends the watchdog without letting it act.
func (c *cluster) stopWatchdog() {
	if c.watchdog == nil {
		return
	}
	_ = c.watchdog.Process.Kill()
	_ = c.watchdog.Wait() // reports the kill
	c.watchdogPipe.Close()
	c.watchdog, c.watchdogPipe = nil, nil
}

// command returns the argv prefix that runs the PostgreSQL program name as
// the cluster's owner.
func (c *cluster) command(name string) []string {
	var argv []string
	if c.owner != nil {
		argv = append(argv, c.owner.prefix...)
	}
	return append(argv, filepath.Join(c.binDir, name))
}

// run runs the PostgreSQL program name and returns its combined output,
// which the error includes.
func (c *cluster) run(ctx context.Context, name string, args ...string) (string, error) {
	argv := append(c.command(name), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = c.dir
	cmd.Env = environWithoutPG()
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err,
			strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// withLog adds the tail of the server log to err.
func (c *cluster) withLog(err error) error {
	tail := tailFile(c.logPath)
	if tail == "" {
		return err
	}
	return fmt.Errorf("%w\nserver log %s (tail):\n%s", err, c.logPath, tail)
}

// waitReady waits until connURL accepts connections and runs a query.
func waitReady(ctx context.Context, connURL string) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		err := ping(ctx, connURL)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the server to accept connections: %w (last attempt: %w)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func ping(ctx context.Context, connURL string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, connURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, "SELECT 1")
	return err
}

// binDirCandidates returns the directories to look for PostgreSQL server
// binaries in, in order: $CLOACINA_PG_BIN, /usr/lib/postgresql/*/bin from the
// highest version down, then $PATH.
func binDirCandidates() []string {
	var dirs []string
	if d := os.Getenv(envPGBin); d != "" {
		if abs, err := filepath.Abs(d); err == nil {
			dirs = append(dirs, abs)
		}
	}
	versioned, _ := filepath.Glob("/usr/lib/postgresql/*/bin") // the pattern is valid
	dirs = append(dirs, sortByVersionDesc(versioned)...)
	return append(dirs, filepath.SplitList(os.Getenv("PATH"))...)
}

// findBinDir returns the first of candidates that holds initdb, pg_ctl and
// postgres executables. Relative candidates are ignored, as exec ignores
// relative $PATH entries.
func findBinDir(candidates []string) (string, bool) {
	for _, dir := range candidates {
		if filepath.IsAbs(dir) && hasServerBinaries(dir) {
			return dir, true
		}
	}
	return "", false
}

func hasServerBinaries(dir string) bool {
	for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
		if _, err := exec.LookPath(filepath.Join(dir, name)); err != nil {
			return false
		}
	}
	return true
}

// sortByVersionDesc orders directories like /usr/lib/postgresql/VERSION/bin
// from the highest version down, comparing versions numerically (16 > 9.6).
// Directories without a numeric version come last.
func sortByVersionDesc(binDirs []string) []string {
	sorted := slices.Clone(binDirs)
	slices.SortStableFunc(sorted, func(a, b string) int {
		return slices.Compare(binDirVersion(b), binDirVersion(a))
	})
	return sorted
}

// binDirVersion returns the numeric components of the name of binDir's
// parent, such as [9 6] for /usr/lib/postgresql/9.6/bin, or nil.
func binDirVersion(binDir string) []int {
	var version []int
	for _, part := range strings.Split(filepath.Base(filepath.Dir(binDir)), ".") {
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 {
			return nil
		}
		version = append(version, n)
	}
	return version
}

// lookPathOrDirs finds the executable name in $PATH, then in dirs.
func lookPathOrDirs(name string, dirs ...string) (string, error) {
	path, err := exec.LookPath(name)
	if err == nil {
		return path, nil
	}
	for _, dir := range dirs {
		if p, err := exec.LookPath(filepath.Join(dir, name)); err == nil {
			return p, nil
		}
	}
	return "", err
}

// environWithoutPG returns the environment without PG* variables, which
// could point PostgreSQL programs at another server or data directory.
func environWithoutPG() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "PG")
	})
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// databaseName returns a new database name: a prefix derived from the test
// name, for recognisability, and a random suffix, for uniqueness.
func databaseName(testName string) string {
	var b strings.Builder
	b.WriteString("t_")
	for _, r := range strings.ToLower(testName) {
		if b.Len() >= 40 {
			break
		}
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	b.WriteByte('_')
	b.WriteString(strings.ToLower(rand.Text()[:12]))
	return b.String()
}

// quoteConfig quotes s as a postgresql.conf string value.
func quoteConfig(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// tailFile returns about the last 30 lines of the file at path, or "".
func tailFile(path string) string {
	const maxBytes = 4 << 10
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > maxBytes {
		if _, err := f.Seek(-maxBytes, io.SeekEnd); err != nil {
			return ""
		}
	}
	data, err := io.ReadAll(io.LimitReader(f, maxBytes))
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}

// redactSecret removes secret, in every form a URL or SQL text may hold
// it, from err's message wherever it appears (see [redact.ErrorEverywhere]).
func redactSecret(err error, secret string) error { return redact.ErrorEverywhere(err, secret) }
