package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/server"
	"github.com/cloacina-go/cloacina/server/apikey"
	"github.com/cloacina-go/cloacina/tenant"
)

// Example mounts the HTTP API in a program of its own, with its own
// workflow: one SQLite file per tenant, keys in another SQLite file.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "cloacina-server-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	quiet := slog.New(slog.DiscardHandler)

	greet := cloacina.NewWorkflow("greet").
		Task("hello", func(_ context.Context, c *cloacina.Context) error {
			name, err := cloacina.GetAs[string](c, "name")
			if err != nil {
				return err
			}
			return c.Set("greeting", "Hello, "+name+"!")
		}).
		MustBuild()

	m, err := tenant.NewSQLiteManager(filepath.Join(dir, "tenants"), cloacina.WithWorkflows(greet), cloacina.WithLogger(quiet))
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close(ctx)
	// Keep the keys out of the tenants' folder: every *.db file there is a
	// tenant.
	keys, err := apikey.Open(ctx, "sqlite://"+filepath.Join(dir, "keys.sqlite"))
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close()
	adminKey, _, err := apikey.EnsureAdminKey(ctx, keys) // show it once to the operator
	if err != nil {
		log.Fatal(err)
	}
	srv, err := server.New(server.Config{Manager: m, Workflows: []*cloacina.Workflow{greet}, Keys: keys, Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	ts := httptest.NewServer(srv) // a real program: http.Server{Addr: ":8080", Handler: srv}
	defer ts.Close()

	call := func(method, path, key, body string) (int, map[string]any) {
		r, err := http.NewRequestWithContext(ctx, method, ts.URL+path, strings.NewReader(body))
		if err != nil {
			log.Fatal(err)
		}
		r.Header.Set("Authorization", "Bearer "+key)
		r.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			log.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			log.Fatal(err)
		}
		return resp.StatusCode, out
	}

	status, _ := call("POST", "/tenants", adminKey, `{"tenant_id": "acme"}`)
	fmt.Println("tenant created:", status)
	status, k := call("POST", "/tenants/acme/keys", adminKey, `{"name": "app", "role": "write"}`)
	fmt.Println("key created:", status, k["role"])
	appKey := k["key"].(string)
	status, ex := call("POST", "/tenants/acme/workflows?wait=30s", appKey, `{"workflow_name": "greet", "context": {"name": "Ada"}}`)
	fmt.Println("run:", status, ex["status"], ex["context"].(map[string]any)["greeting"])
	status, e := call("GET", "/tenants/globex/executions", appKey, "")
	fmt.Println("another tenant:", status, e["error"].(map[string]any)["code"])

	// Output:
	// tenant created: 201
	// key created: 201 write
	// run: 200 Completed Hello, Ada!
	// another tenant: 404 tenant_not_found
}
