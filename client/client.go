// Package client is a typed Go client for the Cloacina HTTP API served by
// `cloacina serve` (see docs/http-api.md).
//
//	c := client.New("http://127.0.0.1:8080", client.WithAPIKey(os.Getenv("CLOACINA_API_KEY")))
//	ex, err := c.StartExecution(ctx, "acme", client.StartRequest{
//		Workflow: "hello",
//		Context:  map[string]any{"name": "Ada"},
//		Wait:     10 * time.Second,
//	})
//	if client.IsNotFound(err) {
//		// no such tenant (or not this key's), or no such workflow
//	}
//
// Every method takes a context first and returns an *[Error] for a
// response that is not a success; errors.Is(err, [ErrNotFound]) and the
// other sentinels match by HTTP status, errors.As gives the code, message
// and request id.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/cloacina-go/cloacina/api"
)

// Client talks to one Cloacina server. It is safe for concurrent use.
type Client struct {
	base   *url.URL
	apiKey string
	hc     *http.Client
	err    error // a bad base URL, returned by every call
}

// Option configures a Client.
type Option func(*Client)

// WithAPIKey sends key as "Authorization: Bearer <key>" on every request.
func WithAPIKey(key string) Option { return func(c *Client) { c.apiKey = key } }

// WithHTTPClient makes the client send its requests with hc instead of
// http.DefaultClient (for timeouts, proxies, TLS settings, tests).
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// New returns a client of the server at baseURL, such as
// "http://127.0.0.1:8080" (a path prefix is kept: "https://host/cloacina").
// A malformed baseURL is reported by every call of the client.
func New(baseURL string, opts ...Option) *Client {
	c := &Client{hc: http.DefaultClient}
	for _, o := range opts {
		o(c)
	}
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	switch {
	case err != nil:
		c.err = fmt.Errorf("client: server URL: %w", err)
	case u.Scheme != "http" && u.Scheme != "https":
		c.err = fmt.Errorf("client: server URL %q: want http:// or https://", baseURL)
	case u.Host == "":
		c.err = fmt.Errorf("client: server URL %q has no host", baseURL)
	default:
		c.base = u
	}
	return c
}

// BaseURL returns the server URL the client was made with, without a
// trailing slash ("" when it was malformed).
func (c *Client) BaseURL() string {
	if c.base == nil {
		return ""
	}
	return c.base.String()
}

// request describes one API call.
type request struct {
	method string
	path   string     // escaped path, starting with '/'
	query  url.Values // may be nil
	body   any        // marshalled as JSON when not nil
	accept string     // "" for application/json
}

// do sends req and decodes a JSON success body into out (when out is not
// nil). It returns the response status.
func (c *Client) do(ctx context.Context, req request, out any) (int, error) {
	resp, err := c.send(ctx, req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return resp.StatusCode, fmt.Errorf("client: %s %s: decoding the response: %w", req.method, req.path, err)
	}
	return resp.StatusCode, nil
}

// doText sends req and returns the success body as text.
func (c *Client) doText(ctx context.Context, req request) (string, error) {
	resp, err := c.send(ctx, req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("client: %s %s: reading the response: %w", req.method, req.path, err)
	}
	return string(b), nil
}

// send sends req and returns a 2xx response, or an *Error built from any
// other response.
func (c *Client) send(ctx context.Context, req request) (*http.Response, error) {
	if c.err != nil {
		return nil, c.err
	}
	var body io.Reader
	if req.body != nil {
		b, err := json.Marshal(req.body)
		if err != nil {
			return nil, fmt.Errorf("client: %s %s: encoding the request: %w", req.method, req.path, err)
		}
		body = bytes.NewReader(b)
	}
	target := c.base.String() + req.path
	if len(req.query) > 0 {
		target += "?" + req.query.Encode()
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, target, body)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", req.method, req.path, err)
	}
	if req.body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	accept := req.accept
	if accept == "" {
		accept = "application/json"
	}
	hr.Header.Set("Accept", accept)
	if c.apiKey != "" {
		hr.Header.Set("Authorization", "Bearer "+c.apiKey)
	}
	resp, err := c.hc.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", req.method, req.path, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, readError(resp)
}

// maxErrorBody bounds how much of an error response is read.
const maxErrorBody = 64 << 10

// readError builds an *Error from a response that is not a success.
func readError(resp *http.Response) *Error {
	e := &Error{Status: resp.StatusCode, RequestID: resp.Header.Get("X-Request-Id")}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var env struct {
		Error *api.ErrorDetail `json:"error"`
	}
	if json.Unmarshal(b, &env) == nil && env.Error != nil {
		e.Code, e.Message = env.Error.Code, env.Error.Message
		if env.Error.RequestID != "" {
			e.RequestID = env.Error.RequestID
		}
		return e
	}
	// Not the API's error shape (a proxy's page, say): keep a short text.
	msg := strings.TrimSpace(string(b))
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	e.Message = msg
	return e
}

// seg escapes one path segment.
func seg(s string) string { return url.PathEscape(s) }

// tenantPath returns /tenants/{id} followed by more segments.
func tenantPath(tenantID string, more ...string) string {
	var b strings.Builder
	b.WriteString("/tenants/")
	b.WriteString(seg(tenantID))
	for _, m := range more {
		b.WriteByte('/')
		b.WriteString(m)
	}
	return b.String()
}

// errEmpty reports an empty required argument before any request is sent.
func errEmpty(what string) error {
	return fmt.Errorf("client: %w: %s is empty", ErrInvalidArgument, what)
}

// ErrInvalidArgument is returned, before any request is sent, for an
// argument the client can tell is wrong (an empty tenant id, say).
var ErrInvalidArgument = errors.New("invalid argument")
