package cloacina_test

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina"
)

// NewRunnerWithSchema(url, "") would run in the default (public) schema,
// which no caller of it means: it is refused, before anything is opened.
func TestNewRunnerWithSchemaRefusesEmptySchema(t *testing.T) {
	url, path := sqliteURL(t)
	for _, u := range []string{url, "postgres://cloacina@127.0.0.1:1/none?connect_timeout=1"} {
		ctx := testCtx(t, 10*time.Second)
		r, err := cloacina.NewRunnerWithSchema(ctx, u, "", runnerOpts()...)
		if err == nil {
			shutdown(t, r)
			t.Fatalf("NewRunnerWithSchema(%s, \"\") started a runner", cloacina.RedactURL(u))
		}
		if !errors.Is(err, cloacina.ErrInvalidTenantID) || !errors.Is(err, cloacina.ErrInvalidOption) {
			t.Errorf("NewRunnerWithSchema(%s, \"\"): %v; want ErrInvalidTenantID and ErrInvalidOption", cloacina.RedactURL(u), err)
		}
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused runner created its database file (%v)", err)
	}
}
