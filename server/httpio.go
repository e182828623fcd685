package server

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strings"
)

// maxRequestIDLength bounds a client's X-Request-Id.
const maxRequestIDLength = 128

// requestID returns the client's request id when it is sane (1-128 of
// [A-Za-z0-9._-]), else a new one.
func requestID(client string) string {
	if n := len(client); n > 0 && n <= maxRequestIDLength && strings.Trim(client, idChars) == "" {
		return client
	}
	return strings.ToLower(rand.Text())
}

const idChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"

// writeJSON answers v as JSON with the given status. encoding/json
// encodes it whole in its pooled buffer before it writes anything, and
// writes that buffer to w: a big execution context is not copied again.
// Encoding fails only for a bug (every answer is made of plain types and
// valid JSON): that is logged by the caller's access log as the status
// written, and the body is cut.
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeText answers text/plain.
func writeText(w http.ResponseWriter, status int, text string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, text)
}

// readBody reads the request's body (at most MaxBodyBytes) and checks its
// Content-Type: unset or JSON when there is a body. A body with a
// Content-Length is read into one buffer of that size, with no other
// copy.
func (s *Server) readBody(r *http.Request) ([]byte, error) {
	limit := s.cfg.MaxBodyBytes
	var b []byte
	var err error
	if n := r.ContentLength; n >= 0 {
		if n > limit {
			return nil, &http.MaxBytesError{Limit: limit}
		}
		b = make([]byte, n)
		_, err = io.ReadFull(r.Body, b)
	} else {
		b, err = io.ReadAll(io.LimitReader(r.Body, limit+1))
		if err == nil && int64(len(b)) > limit {
			return nil, &http.MaxBytesError{Limit: limit}
		}
	}
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, errorf(http.StatusRequestTimeout, codeRequestTimeout, "the body did not arrive within %v", s.cfg.BodyReadTimeout)
		}
		return nil, errorf(http.StatusBadRequest, codeInvalidJSON, "reading the body: %v", err)
	}
	if len(b) > 0 {
		if ct := r.Header.Get("Content-Type"); ct != "" {
			mt, _, err := mime.ParseMediaType(ct)
			if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
				hint := ""
				if mt == "application/x-www-form-urlencoded" {
					// What curl -d sends unless told otherwise.
					hint = " (with curl, add -H 'Content-Type: application/json')"
				}
				return nil, errorf(http.StatusUnsupportedMediaType, codeUnsupportedMediaType, "the body's Content-Type is %q, want application/json%s", ct, hint)
			}
		}
	}
	return b, nil
}

// decode decodes the request's body strictly into v: one JSON value,
// field names exactly as documented (case included), no unknown or
// repeated field at any depth, nothing after the value. An empty body is
// an error unless optional. Values of type rawJSON keep a slice of the
// body, uncopied.
func decode(rq *request, v any, optional bool) error {
	b := rq.body
	if len(bytes.TrimSpace(b)) == 0 {
		if optional {
			return nil
		}
		return errorf(http.StatusBadRequest, codeInvalidJSON, "the body is empty, want a JSON object")
	}
	if !json.Valid(b) {
		// Valid says no more than that: encoding/json's syntax error
		// says where.
		err := json.Unmarshal(b, &struct{}{})
		return errorf(http.StatusBadRequest, codeInvalidJSON, "the body is not the JSON expected: %s", jsonProblem(err))
	}
	if err := checkStrict(b, reflect.TypeOf(v)); err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return errorf(http.StatusBadRequest, codeInvalidJSON, "the body is not the JSON expected: %s", jsonProblem(err))
	}
	return nil
}

// rawJSON is a JSON value of a body kept as it is: a slice of the body
// (json.RawMessage would copy it).
type rawJSON []byte

// UnmarshalJSON keeps b, a slice of the body that decode owns.
func (r *rawJSON) UnmarshalJSON(b []byte) error {
	*r = b
	return nil
}

// checkQuery refuses a malformed query, unknown parameters and repeated
// ones (every parameter but status is single).
func checkQuery(r *http.Request, allowed []string) error {
	if r.URL.RawQuery == "" {
		return nil
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return errorf(http.StatusBadRequest, codeInvalidArgument, "malformed query: %v", err)
	}
	for k, vs := range q {
		if !slices.Contains(allowed, k) {
			if len(allowed) == 0 {
				return errorf(http.StatusBadRequest, codeInvalidArgument, "unknown query parameter %q: this route takes none", k)
			}
			return errorf(http.StatusBadRequest, codeInvalidArgument, "unknown query parameter %q (this route takes %s)", k, strings.Join(allowed, ", "))
		}
		if len(vs) > 1 && k != "status" {
			return errorf(http.StatusBadRequest, codeInvalidArgument, "query parameter %q is given %d times", k, len(vs))
		}
	}
	return nil
}

// location is the path of a resource, its segments escaped.
func location(segments ...string) string {
	var b strings.Builder
	for _, s := range segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

// jsonProblem says what is wrong with a body in the API's terms: the
// field and the JSON type wanted, never a Go type.
func jsonProblem(err error) string {
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		want := jsonKind(te.Type)
		if te.Field == "" {
			return fmt.Sprintf("want %s, got %s", want, te.Value)
		}
		return fmt.Sprintf("field %q: want %s, got %s", te.Field, want, te.Value)
	}
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		switch msg := se.Error(); {
		case strings.Contains(msg, "unexpected end of JSON input"):
			return "it ends too soon"
		case strings.Contains(msg, "after top-level value"):
			return "it has data after its JSON value"
		}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "it ends too soon"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// jsonKind names the JSON value a Go type decodes from.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "another value"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "a JSON object"
	}
	return "another value"
}
