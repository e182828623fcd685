package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cloacina-go/cloacina/api"
)

// CreateTenant creates a tenant (admin key). An existing one is a 409
// tenant_exists, an invalid id a 400 invalid_tenant_id.
func (c *Client) CreateTenant(ctx context.Context, tenantID string) (*Tenant, error) {
	var out Tenant
	_, err := c.do(ctx, request{method: http.MethodPost, path: "/tenants", body: map[string]string{"tenant_id": tenantID}}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// ListTenants lists the tenants, sorted (admin key).
func (c *Client) ListTenants(ctx context.Context) ([]Tenant, error) {
	var out api.Tenants
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/tenants"}, &out); err != nil {
		return nil, err
	}
	return out.Tenants, nil
}

// GetTenant returns the tenant while it exists (admin key, or the
// tenant's keys); a 404 tenant_not_found ([IsNotFound]) once it does not.
func (c *Client) GetTenant(ctx context.Context, tenantID string) (*Tenant, error) {
	if tenantID == "" {
		return nil, errEmpty("tenant id")
	}
	var out Tenant
	if _, err := c.do(ctx, request{method: http.MethodGet, path: tenantPath(tenantID)}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// TenantExists reports whether the tenant exists (admin key): false for a
// 404 tenant_not_found, an error for any other failure. After a
// [Client.DeleteTenant] that failed without an answer from the server (a
// client timeout, a dropped connection), it tells "deleted" from "not
// deleted yet": the server goes on deleting when the client leaves, and
// takes at most its tenant delete grace (10 s by default) plus the time
// to delete the data, so poll it for a while.
func (c *Client) TenantExists(ctx context.Context, tenantID string) (bool, error) {
	_, err := c.GetTenant(ctx, tenantID)
	switch {
	case err == nil:
		return true, nil
	case ErrorCode(err) == "tenant_not_found":
		return false, nil
	}
	return false, err
}

// DeleteTenant deletes a tenant (admin key): the server revokes its keys,
// tells its running tasks to stop and gives them a bounded grace
// (server.Config.TenantDeleteGrace, 10 s by default), then deletes its
// data, and answers once it is done. The server finishes the deletion
// even when the client leaves first: give the call a timeout longer than
// the grace, and when it fails without an answer from the server
// (errors.As(err, new(*Error)) is false), ask [Client.TenantExists] what
// happened. A 503 unavailable means the tenant could not be removed in
// time (its keys are revoked): retry.
func (c *Client) DeleteTenant(ctx context.Context, tenantID string) error {
	if tenantID == "" {
		return errEmpty("tenant id")
	}
	_, err := c.do(ctx, request{method: http.MethodDelete, path: tenantPath(tenantID)}, nil)
	return err
}

// RotatePassword gives the tenant's database role a new password (admin
// key); a 409 not_supported without per-tenant roles.
func (c *Client) RotatePassword(ctx context.Context, tenantID string) (*PasswordRotation, error) {
	if tenantID == "" {
		return nil, errEmpty("tenant id")
	}
	var out PasswordRotation
	if _, err := c.do(ctx, request{method: http.MethodPost, path: tenantPath(tenantID, "rotate-password")}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CreateKey creates an API key of the tenant with role [RoleRead] or
// [RoleWrite] (admin key). The returned Key's Secret is the key to use;
// the server never shows it again.
func (c *Client) CreateKey(ctx context.Context, tenantID, name, role string) (*Key, error) {
	if tenantID == "" {
		return nil, errEmpty("tenant id")
	}
	var out Key
	body := map[string]string{"name": name, "role": role}
	if _, err := c.do(ctx, request{method: http.MethodPost, path: tenantPath(tenantID, "keys"), body: body}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListKeys lists the tenant's API keys, without their secrets (admin key).
func (c *Client) ListKeys(ctx context.Context, tenantID string) ([]Key, error) {
	if tenantID == "" {
		return nil, errEmpty("tenant id")
	}
	var out api.Keys
	if _, err := c.do(ctx, request{method: http.MethodGet, path: tenantPath(tenantID, "keys")}, &out); err != nil {
		return nil, err
	}
	return out.Keys, nil
}

// DeleteKey deletes one of the tenant's API keys (admin key); it stops
// working at once.
func (c *Client) DeleteKey(ctx context.Context, tenantID, keyID string) error {
	if tenantID == "" {
		return errEmpty("tenant id")
	}
	if keyID == "" {
		return errEmpty("key id")
	}
	_, err := c.do(ctx, request{method: http.MethodDelete, path: tenantPath(tenantID, "keys", seg(keyID))}, nil)
	return err
}

// CreateAdminKey creates another admin key named name (admin key). The
// returned Key's Secret is the key to use; the server never shows it
// again. To rotate an admin key: create one, switch to it, then
// [Client.DeleteAdminKey] the old one with the new one.
func (c *Client) CreateAdminKey(ctx context.Context, name string) (*Key, error) {
	var out Key
	body := map[string]string{"name": name}
	if _, err := c.do(ctx, request{method: http.MethodPost, path: "/admin/keys", body: body}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListAdminKeys lists the stored admin keys, oldest first, without their
// secrets (admin key). The server's configured admin key
// (CLOACINA_ADMIN_KEY) is not stored and not listed.
func (c *Client) ListAdminKeys(ctx context.Context) ([]Key, error) {
	var out api.Keys
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/admin/keys"}, &out); err != nil {
		return nil, err
	}
	return out.Keys, nil
}

// DeleteAdminKey revokes a stored admin key (admin key); it stops working
// at once. The key the client uses cannot revoke itself: a 409
// key_in_use. An unknown key is a 404 key_not_found.
func (c *Client) DeleteAdminKey(ctx context.Context, keyID string) error {
	if keyID == "" {
		return errEmpty("key id")
	}
	_, err := c.do(ctx, request{method: http.MethodDelete, path: "/admin/keys/" + seg(keyID)}, nil)
	return err
}

// StartRequest is what [Client.StartExecution] starts.
type StartRequest struct {
	// Workflow names the workflow (required).
	Workflow string
	// Context is the execution's input: anything that encodes as a JSON
	// object (a map, a struct, a json.RawMessage). Nil is an empty object.
	Context any
	// Wait, when positive, makes the server wait up to that long (at most
	// 5 minutes) for the execution to finish.
	Wait time.Duration
}

// StartExecution starts a workflow for a tenant (write key). Without Wait,
// or when the execution has not finished within it, the returned
// Execution has only its ExecutionID, WorkflowName and Status; when it
// finished within Wait, it is complete (context and tasks).
func (c *Client) StartExecution(ctx context.Context, tenantID string, req StartRequest) (*Execution, error) {
	if tenantID == "" {
		return nil, errEmpty("tenant id")
	}
	if req.Workflow == "" {
		return nil, errEmpty("workflow name")
	}
	body := struct {
		WorkflowName string `json:"workflow_name"`
		Context      any    `json:"context,omitempty"`
	}{req.Workflow, req.Context}
	var q url.Values
	if req.Wait > 0 {
		q = url.Values{"wait": {req.Wait.String()}}
	}
	var out Execution
	if _, err := c.do(ctx, request{method: http.MethodPost, path: tenantPath(tenantID, "workflows"), query: q, body: body}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetExecution returns an execution with its tasks, and its final context
// once it has ended (read key).
func (c *Client) GetExecution(ctx context.Context, tenantID, executionID string) (*Execution, error) {
	return c.execution(ctx, http.MethodGet, tenantID, executionID, "")
}

// ListExecutions lists a tenant's executions, newest first, one page at a
// time (read key).
func (c *Client) ListExecutions(ctx context.Context, tenantID string, opts ListOptions) (*ExecutionPage, error) {
	if tenantID == "" {
		return nil, errEmpty("tenant id")
	}
	q := url.Values{}
	if len(opts.Statuses) > 0 {
		q.Set("status", strings.Join(opts.Statuses, ","))
	}
	if opts.Workflow != "" {
		q.Set("workflow", opts.Workflow)
	}
	if opts.Limit != 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	if opts.Cursor != "" {
		q.Set("cursor", opts.Cursor)
	}
	var out ExecutionPage
	if _, err := c.do(ctx, request{method: http.MethodGet, path: tenantPath(tenantID, "executions"), query: q}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Events returns an execution's events, oldest first (read key).
func (c *Client) Events(ctx context.Context, tenantID, executionID string) ([]Event, error) {
	if tenantID == "" {
		return nil, errEmpty("tenant id")
	}
	if executionID == "" {
		return nil, errEmpty("execution id")
	}
	var out api.Events
	path := tenantPath(tenantID, "executions", seg(executionID), "events")
	if _, err := c.do(ctx, request{method: http.MethodGet, path: path}, &out); err != nil {
		return nil, err
	}
	return out.Events, nil
}

// Cancel cancels an execution and returns its new summary (write key);
// a 409 invalid_transition when it has already ended.
func (c *Client) Cancel(ctx context.Context, tenantID, executionID string) (*Execution, error) {
	return c.execution(ctx, http.MethodPost, tenantID, executionID, "cancel")
}

// Pause pauses an execution: no new task starts until Resume (write key).
func (c *Client) Pause(ctx context.Context, tenantID, executionID string) (*Execution, error) {
	return c.execution(ctx, http.MethodPost, tenantID, executionID, "pause")
}

// Resume resumes a paused execution (write key).
func (c *Client) Resume(ctx context.Context, tenantID, executionID string) (*Execution, error) {
	return c.execution(ctx, http.MethodPost, tenantID, executionID, "resume")
}

// execution calls /tenants/{t}/executions/{id}[/action], answered with an
// execution.
func (c *Client) execution(ctx context.Context, method, tenantID, executionID, action string) (*Execution, error) {
	if tenantID == "" {
		return nil, errEmpty("tenant id")
	}
	if executionID == "" {
		return nil, errEmpty("execution id")
	}
	parts := []string{"executions", seg(executionID)}
	if action != "" {
		parts = append(parts, action)
	}
	var out Execution
	if _, err := c.do(ctx, request{method: method, path: tenantPath(tenantID, parts...)}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// TenantMetrics returns a tenant's execution and queue figures (read key).
func (c *Client) TenantMetrics(ctx context.Context, tenantID string) (*TenantMetrics, error) {
	if tenantID == "" {
		return nil, errEmpty("tenant id")
	}
	var out TenantMetrics
	if _, err := c.do(ctx, request{method: http.MethodGet, path: tenantPath(tenantID, "metrics")}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Workflows lists the workflows the server runs, sorted by name (any
// key).
func (c *Client) Workflows(ctx context.Context) ([]Workflow, error) {
	var out api.Workflows
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/workflows"}, &out); err != nil {
		return nil, err
	}
	return out.Workflows, nil
}

// Workflow describes one workflow, with its Mermaid and DOT drawings (any
// key); an unknown one is a 404 workflow_not_found.
func (c *Client) Workflow(ctx context.Context, name string) (*Workflow, error) {
	if name == "" {
		return nil, errEmpty("workflow name")
	}
	var out Workflow
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/workflows/" + seg(name)}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Graph formats of [Client.WorkflowGraph].
const (
	FormatMermaid = "mermaid"
	FormatDOT     = "dot"
)

// WorkflowGraph returns a workflow's drawing as text: format is
// [FormatMermaid] or [FormatDOT] (any key).
func (c *Client) WorkflowGraph(ctx context.Context, name, format string) (string, error) {
	if name == "" {
		return "", errEmpty("workflow name")
	}
	return c.doText(ctx, request{method: http.MethodGet, path: "/workflows/" + seg(name),
		query: url.Values{"format": {format}}, accept: "text/plain"})
}

// Health asks /healthz whether the process serves (no key needed).
func (c *Client) Health(ctx context.Context) (*Health, error) {
	return c.health(ctx, "/healthz")
}

// Ready asks /readyz whether the server is ready to work: its database
// answers and it is not shutting down (a 503 unavailable otherwise).
func (c *Client) Ready(ctx context.Context) (*Health, error) {
	return c.health(ctx, "/readyz")
}

func (c *Client) health(ctx context.Context, path string) (*Health, error) {
	var out Health
	if _, err := c.do(ctx, request{method: http.MethodGet, path: path}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// PrometheusMetrics returns the server's /metrics page, in Prometheus's
// text format (admin key).
func (c *Client) PrometheusMetrics(ctx context.Context) (string, error) {
	return c.doText(ctx, request{method: http.MethodGet, path: "/metrics", accept: "text/plain"})
}

// OpenAPI returns the server's OpenAPI document, /openapi.json.
func (c *Client) OpenAPI(ctx context.Context) ([]byte, error) {
	s, err := c.doText(ctx, request{method: http.MethodGet, path: "/openapi.json"})
	return []byte(s), err
}
