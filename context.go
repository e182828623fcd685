package cloacina

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"unicode/utf8"
)

// Context is the JSON object that flows through a workflow. Tasks read and
// write it; it is saved to the database when a task succeeds.
//
// Values are kept in the form encoding/json decodes them to (map[string]any,
// []any, float64, string, bool, nil); values of other types are converted to
// that form when they are stored. Use [GetAs] to read a value into a Go type.
//
// A Context is safe for concurrent use. The zero value is an empty context
// ready to use, but a Context must not be copied after first use.
type Context struct {
	mu   sync.RWMutex
	data map[string]any
}

// NewContext returns an empty context.
func NewContext() *Context {
	return &Context{data: map[string]any{}}
}

// ContextFromJSON parses a JSON object into a new Context. Anything other
// than a JSON object (an array, a string, null, invalid JSON) returns an
// error wrapping [ErrInvalidContext].
func ContextFromJSON(b []byte) (*Context, error) {
	m, err := decodeObject(b)
	if err != nil {
		return nil, err
	}
	return &Context{data: m}, nil
}

// ContextFrom builds a Context from v: nil (an empty context), a *Context (a
// copy), a json.RawMessage or []byte holding a JSON object, a
// map[string]any (a nil map gives an empty context), or any value that
// encodes to a JSON object (a struct, a map with string keys). Anything else
// returns an error wrapping [ErrInvalidContext].
func ContextFrom(v any) (*Context, error) {
	switch x := v.(type) {
	case nil:
		return NewContext(), nil
	case *Context:
		if x == nil {
			return NewContext(), nil
		}
		return x.Clone(), nil
	case map[string]any:
		if x == nil {
			return NewContext(), nil
		}
	case json.RawMessage:
		return ContextFromJSON(x)
	case []byte:
		return ContextFromJSON(x)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidContext, err)
	}
	return ContextFromJSON(b)
}

func decodeObject(b []byte) (map[string]any, error) {
	b = bytes.TrimSpace(b)
	if string(b) == "{}" {
		return map[string]any{}, nil // the most common input, decoded for free
	}
	if len(b) == 0 || b[0] != '{' {
		return nil, fmt.Errorf("%w: got %s", ErrInvalidContext, describeJSON(b))
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidContext, err)
	}
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}

func describeJSON(b []byte) string {
	if len(b) == 0 {
		return "empty input"
	}
	switch b[0] {
	case '[':
		return "a JSON array"
	case '"':
		return "a JSON string"
	case 'n':
		return "null"
	case 't', 'f':
		return "a JSON boolean"
	}
	if b[0] == '-' || (b[0] >= '0' && b[0] <= '9') {
		return "a JSON number"
	}
	return "invalid JSON"
}

// normalize converts v to the form encoding/json decodes values to.
func normalize(v any) (any, error) {
	switch x := v.(type) {
	case nil, bool:
		return x, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("cloacina: context value cannot be encoded as JSON: unsupported number %v", x)
		}
		return x, nil
	case string:
		// Invalid UTF-8 is replaced by U+FFFD when the context is encoded;
		// store the string in that form now, as json.Marshal would.
		if utf8.ValidString(x) {
			return x, nil
		}
	case json.RawMessage:
		var out any
		if err := json.Unmarshal(x, &out); err != nil {
			return nil, fmt.Errorf("cloacina: context value is not valid JSON: %w", err)
		}
		return out, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("cloacina: context value cannot be encoded as JSON: %w", err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("cloacina: context value cannot be decoded from JSON: %w", err)
	}
	return out, nil
}

// Insert adds key with value v. It fails with [ErrKeyExists] if the key is
// already present, and with an error if v cannot be encoded as JSON.
func (c *Context) Insert(key string, v any) error {
	nv, err := normalize(v)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.data[key]; ok {
		return fmt.Errorf("%w: %q", ErrKeyExists, key)
	}
	if c.data == nil {
		c.data = map[string]any{}
	}
	c.data[key] = nv
	return nil
}

// Update replaces the value of an existing key. It fails with
// [ErrKeyNotFound] if the key is missing.
func (c *Context) Update(key string, v any) error {
	nv, err := normalize(v)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.data[key]; !ok {
		return fmt.Errorf("%w: %q", ErrKeyNotFound, key)
	}
	c.data[key] = nv
	return nil
}

// Set stores v under key, whether or not the key exists. It fails only if v
// cannot be encoded as JSON.
func (c *Context) Set(key string, v any) error {
	nv, err := normalize(v)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.data == nil {
		c.data = map[string]any{}
	}
	c.data[key] = nv
	return nil
}

// Get returns the value stored under key and whether it was present.
// Composite values are returned as copies: changing them does not change
// the context.
func (c *Context) Get(key string) (any, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v, ok := c.data[key]
	return deepCopy(v), ok
}

// Has reports whether key is present.
func (c *Context) Has(key string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	_, ok := c.data[key]
	return ok
}

// Delete removes key. Deleting a missing key does nothing.
func (c *Context) Delete(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.data, key)
}

// Keys returns the context's keys in sorted order.
func (c *Context) Keys() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Sorted(maps.Keys(c.data))
}

// Len returns the number of keys.
func (c *Context) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.data)
}

// Map returns a deep copy of the context as a map.
func (c *Context) Map() map[string]any {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return deepCopy(c.data).(map[string]any)
}

// Clone returns a deep copy of c.
func (c *Context) Clone() *Context {
	return &Context{data: c.Map()}
}

// MarshalJSON encodes the context as a JSON object (keys sorted).
func (c *Context) MarshalJSON() ([]byte, error) {
	if c == nil {
		return []byte("{}"), nil
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.data == nil {
		return []byte("{}"), nil
	}
	return json.Marshal(c.data)
}

// UnmarshalJSON replaces the context's contents with a JSON object. Anything
// other than an object returns an error wrapping [ErrInvalidContext].
func (c *Context) UnmarshalJSON(b []byte) error {
	m, err := decodeObject(b)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.data = m
	return nil
}

// String returns the context as JSON.
func (c *Context) String() string {
	b, err := c.MarshalJSON()
	if err != nil {
		return fmt.Sprintf("<invalid context: %v>", err)
	}
	return string(b)
}

// GetAs reads the value under key into a T (through its JSON form, so a
// number can be read as an int and an object as a struct). It fails with
// [ErrKeyNotFound] when the key is missing and with a decoding error when
// the value does not fit T.
func GetAs[T any](c *Context, key string) (T, error) {
	var out T
	c.mu.RLock()
	v, ok := c.data[key]
	var b []byte
	var err error
	if ok {
		b, err = json.Marshal(v)
	}
	c.mu.RUnlock()
	if !ok {
		return out, fmt.Errorf("%w: %q", ErrKeyNotFound, key)
	}
	if err != nil {
		return out, fmt.Errorf("cloacina: encoding context value %q: %w", key, err)
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return out, fmt.Errorf("cloacina: context value %q does not fit %T: %w", key, out, err)
	}
	return out, nil
}

// MergeJSON merges src into dst and returns dst: for each key of src, when
// both values are JSON objects they are merged recursively; otherwise src's
// value replaces dst's. This is the one merge rule used everywhere contexts
// are combined. dst may be nil.
func MergeJSON(dst, src map[string]any) map[string]any {
	if dst == nil {
		dst = make(map[string]any, len(src))
	}
	for k, sv := range src {
		if sm, ok := sv.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				dst[k] = MergeJSON(dm, sm)
				continue
			}
			dst[k] = MergeJSON(nil, sm)
			continue
		}
		dst[k] = deepCopy(sv)
	}
	return dst
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = deepCopy(e)
		}
		return s
	}
	return v
}
