package client_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cloacina-go/cloacina/client"
)

// Start the demo workflow hello for a tenant and wait for its result.
func Example() {
	ctx := context.Background()
	dir := tempDir()
	defer os.RemoveAll(dir)
	// A server of your own: `cloacina serve` prints its URL and admin key.
	url, stop, err := startServer(ctx, dir, false)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()

	admin := client.New(url, client.WithAPIKey(adminKey))
	if _, err := admin.CreateTenant(ctx, "acme"); err != nil {
		fmt.Println(err)
		return
	}
	key, err := admin.CreateKey(ctx, "acme", "example", client.RoleWrite)
	if err != nil {
		fmt.Println(err)
		return
	}

	c := client.New(url, client.WithAPIKey(key.Secret))
	ex, err := c.StartExecution(ctx, "acme", client.StartRequest{
		Workflow: "hello",
		Context:  map[string]any{"name": "Ada"},
		Wait:     10 * time.Second,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	var out struct {
		Greeting string `json:"greeting"`
	}
	if err := ex.DecodeContext(&out); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ex.Status, out.Greeting)

	// Errors carry the API's status, code and request id.
	_, err = c.GetExecution(ctx, "acme", "00000000-0000-0000-0000-000000000000")
	var apiErr *client.Error
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.Status, apiErr.Code, client.IsNotFound(err))
	}
	// Output:
	// Completed Hello, Ada!
	// 404 execution_not_found true
}
