package client

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is a response of the server that is not a success: its HTTP
// status and the API's error body (see docs/http-api.md, "Errors").
//
//	var apiErr *client.Error
//	if errors.As(err, &apiErr) {
//		log.Printf("%d %s: %s (request %s)", apiErr.Status, apiErr.Code, apiErr.Message, apiErr.RequestID)
//	}
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Code is the API's error code, such as "execution_not_found" (empty
	// when the body was not the API's error shape, e.g. from a proxy).
	Code string
	// Message is the server's explanation.
	Message string
	// RequestID is the request's X-Request-Id, to find it in the server's
	// log.
	RequestID string
}

// Error returns "<status> <code>: <message> (request id <id>)".
func (e *Error) Error() string {
	code := e.Code
	if code == "" {
		code = http.StatusText(e.Status)
	}
	s := fmt.Sprintf("%d %s: %s", e.Status, code, e.Message)
	if e.RequestID != "" {
		s += " (request id " + e.RequestID + ")"
	}
	return s
}

// Is reports whether target is the sentinel of e's status, so that
// errors.Is(err, client.ErrNotFound) holds for every 404.
func (e *Error) Is(target error) bool {
	s, ok := statusSentinels[e.Status]
	return ok && s == target
}

// Sentinels matched by errors.Is against an *Error of the status.
var (
	ErrBadRequest       = errors.New("bad request")         // 400
	ErrUnauthorized     = errors.New("unauthorized")        // 401
	ErrForbidden        = errors.New("forbidden")           // 403
	ErrNotFound         = errors.New("not found")           // 404
	ErrConflict         = errors.New("conflict")            // 409
	ErrPayloadTooLarge  = errors.New("payload too large")   // 413
	ErrRequestTimeout   = errors.New("request timeout")     // 408
	ErrUnavailable      = errors.New("service unavailable") // 503
	ErrMethodNotAllowed = errors.New("method not allowed")  // 405
)

var statusSentinels = map[int]error{
	http.StatusBadRequest:            ErrBadRequest,
	http.StatusUnauthorized:          ErrUnauthorized,
	http.StatusForbidden:             ErrForbidden,
	http.StatusNotFound:              ErrNotFound,
	http.StatusMethodNotAllowed:      ErrMethodNotAllowed,
	http.StatusConflict:              ErrConflict,
	http.StatusRequestEntityTooLarge: ErrPayloadTooLarge,
	http.StatusRequestTimeout:        ErrRequestTimeout,
	http.StatusServiceUnavailable:    ErrUnavailable,
}

// IsNotFound reports whether err is a 404 from the server: an unknown
// tenant (or another tenant's), workflow, execution, key or route.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// IsConflict reports whether err is a 409 from the server: a tenant that
// exists, a transition not allowed (pausing a finished execution...).
func IsConflict(err error) bool { return errors.Is(err, ErrConflict) }

// ErrorCode returns the API error code of err ("execution_not_found"...),
// or "" when err is not an *Error.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
