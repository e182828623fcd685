package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"unicode/utf8"
)

// checkStrict checks a body that is valid JSON against the shape of t (the
// Go type it decodes into) more strictly than encoding/json does: object
// keys must be unique at every depth (inside free-form values such as a
// submitted context too), and the fields of a struct must be named
// exactly as their json tags say (encoding/json matches them ignoring
// case, and lets a repeated field's last value win). It reads b in place,
// allocates only for the keys it compares, and takes time in proportion
// to len(b) whatever the nesting (a value's path is built only for an
// error message).
func checkStrict(b []byte, t reflect.Type) error {
	sc := strictScanner{b: b}
	return sc.value(t)
}

// strictScanner walks a valid JSON text.
type strictScanner struct {
	b []byte
	i int
	// path is where the scanner is: object keys, and "[]" for an array
	// element.
	path []string
}

// name is the path of the current value joined for a message, such as
// context.rows[].id.
func (s *strictScanner) name() string {
	var b strings.Builder
	for i, seg := range s.path {
		if i > 0 && seg != "[]" {
			b.WriteByte('.')
		}
		b.WriteString(seg)
	}
	return b.String()
}

func (s *strictScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

// value walks one value; t is the Go type it decodes into, nil when it is
// free-form.
func (s *strictScanner) value(t reflect.Type) error {
	s.ws()
	if s.i >= len(s.b) {
		return nil
	}
	t = shapeOf(t)
	switch s.b[s.i] {
	case '{':
		return s.object(t)
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		s.i++
		for n := 0; ; n++ {
			s.ws()
			if s.b[s.i] == ']' {
				s.i++
				return nil
			}
			if n > 0 { // ','
				s.i++
			}
			s.path = append(s.path, "[]")
			err := s.value(elem)
			s.path = s.path[:len(s.path)-1]
			if err != nil {
				return err
			}
			s.ws()
			if s.b[s.i] == ']' {
				s.i++
				return nil
			}
		}
	case '"':
		s.skipString()
	default: // a number, true, false or null
		for s.i < len(s.b) && !strings.ContainsRune(",]} \t\r\n", rune(s.b[s.i])) {
			s.i++
		}
	}
	return nil
}

// object walks an object; t is a struct type or nil.
func (s *strictScanner) object(t reflect.Type) error {
	var fields map[string]reflect.Type
	if t != nil && t.Kind() == reflect.Struct {
		fields = jsonFields(t)
	}
	seen := map[string]bool{}
	s.i++ // '{'
	for {
		s.ws()
		switch s.b[s.i] {
		case '}':
			s.i++
			return nil
		case ',':
			s.i++
			s.ws()
		}
		start := s.i
		s.skipString()
		raw := s.b[start:s.i]
		var key string
		if bytes.IndexByte(raw, '\\') >= 0 || !utf8.Valid(raw) {
			// Decoded as encoding/json will (escapes, invalid UTF-8
			// replaced), so that keys it would merge count as repeated.
			if err := json.Unmarshal(raw, &key); err != nil {
				return errorf(http.StatusBadRequest, codeInvalidJSON, "the body is not JSON: %v", err)
			}
		} else {
			key = string(raw[1 : len(raw)-1])
		}
		s.path = append(s.path, key)
		if seen[key] {
			return errorf(http.StatusBadRequest, codeInvalidJSON, "field %q is given twice", s.name())
		}
		seen[key] = true
		var ft reflect.Type
		if t != nil && t.Kind() == reflect.Struct {
			var ok bool
			if ft, ok = fields[key]; !ok {
				return errorf(http.StatusBadRequest, codeInvalidJSON, "unknown field %q (field names are case-sensitive)", s.name())
			}
		}
		s.ws()
		s.i++ // ':'
		if err := s.value(ft); err != nil {
			return err
		}
		s.path = s.path[:len(s.path)-1]
	}
}

// skipString moves past the string starting at s.i.
func (s *strictScanner) skipString() {
	s.i++ // '"'
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '\\':
			s.i += 2
		case '"':
			s.i++
			return
		default:
			s.i++
		}
	}
}

// shapeOf is the type whose shape the scanner checks: t without pointers;
// nil for a free-form value (an interface, a map, a type that decodes
// itself, such as json.RawMessage).
func shapeOf(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() == reflect.Interface || t.Kind() == reflect.Map {
		return nil
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil
	}
	return t
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// jsonFields maps a struct's JSON field names to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}
