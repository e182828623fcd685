package isolation_test

import (
	"os"
	"testing"

	"github.com/cloacina-go/cloacina/internal/pgtest"
)

// TestMain runs the copyable test above on this repository's throwaway
// PostgreSQL cluster when CLOACINA_ISOLATION_DATABASE_URL is not set, so
// that its PostgreSQL half runs in CI too. (A copy of isolation_test.go
// in another module needs only that variable.)
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func TestTenantIsolationOnTestCluster(t *testing.T) {
	if os.Getenv("CLOACINA_ISOLATION_DATABASE_URL") != "" {
		t.Skip("TestTenantIsolation runs on CLOACINA_ISOLATION_DATABASE_URL")
	}
	t.Setenv("CLOACINA_ISOLATION_DATABASE_URL", pgtest.Shared(t).NewDatabase(t))
	TestTenantIsolation(t)
}
