package client_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/internal/demo"
	"github.com/cloacina-go/cloacina/server"
	"github.com/cloacina-go/cloacina/server/apikey"
	"github.com/cloacina-go/cloacina/tenant"
)

// adminKey is the admin key of the test servers.
const adminKey = "client-test-admin-key-0123456789"

// startServer runs the real server over a SQLite tenant manager in a
// temporary folder, and returns its URL and a function that stops it.
func startServer(ctx context.Context, dir string, disableAuth bool) (string, func(), error) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	m, err := tenant.NewSQLiteManager(filepath.Join(dir, "tenants"),
		cloacina.WithWorkflows(demo.Workflows()...), cloacina.WithLogger(quiet))
	if err != nil {
		return "", nil, err
	}
	keys, err := apikey.Open(ctx, "sqlite://"+filepath.Join(dir, "keys.sqlite"))
	if err != nil {
		m.Close(ctx)
		return "", nil, err
	}
	srv, err := server.New(server.Config{
		Manager: m, Workflows: demo.Workflows(), Keys: keys,
		AdminKey: adminKey, DisableAuth: disableAuth, Logger: quiet,
	})
	if err != nil {
		m.Close(ctx)
		keys.Close()
		return "", nil, err
	}
	ts := httptest.NewServer(srv)
	return ts.URL, func() {
		ts.Close()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		m.Close(sctx)
		keys.Close()
	}, nil
}

// newServer starts a test server for t.
func newServer(t *testing.T) string {
	t.Helper()
	url, stop, err := startServer(context.Background(), t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return url
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// tempDir is os.MkdirTemp for the Example, which has no testing.T.
func tempDir() string {
	dir, err := os.MkdirTemp("", "cloacina-client-example-")
	if err != nil {
		panic(err)
	}
	return dir
}
