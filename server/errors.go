package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/api"
	"github.com/cloacina-go/cloacina/server/apikey"
	"github.com/cloacina-go/cloacina/tenant"
)

// Error codes of the API (docs/http-api.md, "Errors").
const (
	codeInvalidJSON          = "invalid_json"
	codeInvalidTenantID      = "invalid_tenant_id"
	codeInvalidArgument      = "invalid_argument"
	codeUnauthorized         = "unauthorized"
	codeForbidden            = "forbidden"
	codeNotFound             = "not_found"
	codeTenantNotFound       = "tenant_not_found"
	codeWorkflowNotFound     = "workflow_not_found"
	codeExecutionNotFound    = "execution_not_found"
	codeKeyNotFound          = "key_not_found"
	codeMethodNotAllowed     = "method_not_allowed"
	codeTenantExists         = "tenant_exists"
	codeInvalidTransition    = "invalid_transition"
	codeNotSupported         = "not_supported"
	codePayloadTooLarge      = "payload_too_large"
	codeUnsupportedMediaType = "unsupported_media_type"
	codeInternal             = "internal"
	codeUnavailable          = "unavailable"
	codeRequestTimeout       = "request_timeout"
	codeKeyInUse             = "key_in_use"
	codeForeignStorage       = "foreign_storage"
)

// apiError is an error answered with its status and code.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.status, e.code, e.message) }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

// classes maps the library's errors to statuses and codes; the first
// match wins. Their messages are safe to show: they name what the request
// named.
var classes = []struct {
	target error
	status int
	code   string
}{
	{cloacina.ErrInvalidTenantID, http.StatusBadRequest, codeInvalidTenantID},
	{apikey.ErrInvalidTenant, http.StatusBadRequest, codeInvalidTenantID},
	{cloacina.ErrUnknownWorkflow, http.StatusNotFound, codeWorkflowNotFound},
	{cloacina.ErrExecutionNotFound, http.StatusNotFound, codeExecutionNotFound},
	{tenant.ErrTenantNotFound, http.StatusNotFound, codeTenantNotFound},
	{apikey.ErrNotFound, http.StatusNotFound, codeKeyNotFound},
	{cloacina.ErrInvalidTransition, http.StatusConflict, codeInvalidTransition},
	{tenant.ErrTenantExists, http.StatusConflict, codeTenantExists},
	{tenant.ErrForeignStorage, http.StatusConflict, codeForeignStorage},
	{cloacina.ErrContextTooLarge, http.StatusRequestEntityTooLarge, codePayloadTooLarge},
	{cloacina.ErrInvalidContext, http.StatusBadRequest, codeInvalidArgument},
	{cloacina.ErrInvalidOption, http.StatusBadRequest, codeInvalidArgument},
	{apikey.ErrInvalidRole, http.StatusBadRequest, codeInvalidArgument},
	{apikey.ErrInvalidName, http.StatusBadRequest, codeInvalidArgument},
}

// unavailable are the errors of a manager or runner shutting down, or out
// of connections: the request may succeed later.
var unavailable = []error{tenant.ErrManagerClosed, cloacina.ErrRunnerClosed, tenant.ErrConnectionLimit}

// toAPIError maps err to the answer; internal reports a server-side
// failure whose details go only to the log.
func toAPIError(err error) (ae *apiError, internal bool) {
	if ae, ok := errors.AsType[*apiError](err); ok {
		// A 503 of the server's own is a deliberate answer (draining, the
		// in-flight limit), logged where it is decided.
		return ae, ae.status >= 500 && ae.status != http.StatusServiceUnavailable
	}
	if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return errorf(http.StatusRequestEntityTooLarge, codePayloadTooLarge, "the body is larger than %d bytes", mbe.Limit), false
	}
	for _, c := range classes {
		if errors.Is(err, c.target) {
			return &apiError{status: c.status, code: c.code, message: err.Error()}, false
		}
	}
	for _, target := range unavailable {
		if errors.Is(err, target) {
			return errorf(http.StatusServiceUnavailable, codeUnavailable, "the service is unavailable, try again"), true
		}
	}
	return errorf(http.StatusInternalServerError, codeInternal, "internal error"), true
}

// writeError answers err, logging server-side failures with their details.
func (s *Server) writeError(w http.ResponseWriter, rq *request, err error) {
	ae, internal := toAPIError(err)
	switch {
	case internal && errors.Is(err, context.Canceled):
		rq.log.Info("request cancelled", "route", rq.route, "err", err)
	case internal:
		rq.log.Error("request failed", "route", rq.route, "tenant", rq.tenant, "status", ae.status, "err", err)
	default:
		rq.log.Debug("request refused", "route", rq.route, "status", ae.status, "code", ae.code, "err", err)
	}
	switch ae.status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="cloacina"`)
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, ae.status, api.ErrorBody{Error: api.ErrorDetail{Code: ae.code, Message: ae.message, RequestID: rq.id}})
}
