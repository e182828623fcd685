package server

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
)

// checkStrict checks a body that is valid JSON against the shape of t (the
// Go type it decodes into) more strictly than encoding/json does: object
// keys must be unique at every depth (inside free-form values such as a
// submitted context too), and the fields of a struct must be named
// exactly as their json tags say (encoding/json matches them ignoring
// case, and lets a repeated field's last value win). It reads b in place
// and allocates only for the keys it compares.
func checkStrict(b []byte, t reflect.Type) error {
	sc := strictScanner{b: b}
	return sc.value("", t)
}

// strictScanner walks a valid JSON text.
type strictScanner struct {
	b []byte
	i int
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
func (s *strictScanner) value(path string, t reflect.Type) error {
	s.ws()
	if s.i >= len(s.b) {
		return nil
	}
	t = shapeOf(t)
	switch s.b[s.i] {
	case '{':
		return s.object(path, t)
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
			if err := s.value(path+"[]", elem); err != nil {
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
func (s *strictScanner) object(path string, t reflect.Type) error {
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
		if strings.IndexByte(string(raw), '\\') >= 0 {
			if err := json.Unmarshal(raw, &key); err != nil {
				return errorf(http.StatusBadRequest, codeInvalidJSON, "the body is not JSON: %v", err)
			}
		} else {
			key = string(raw[1 : len(raw)-1])
		}
		name := key
		if path != "" {
			name = path + "." + key
		}
		if seen[key] {
			return errorf(http.StatusBadRequest, codeInvalidJSON, "field %q is given twice", name)
		}
		seen[key] = true
		var ft reflect.Type
		if t != nil && t.Kind() == reflect.Struct {
			var ok bool
			if ft, ok = fields[key]; !ok {
				return errorf(http.StatusBadRequest, codeInvalidJSON, "unknown field %q (field names are case-sensitive)", name)
			}
		}
		s.ws()
		s.i++ // ':'
		if err := s.value(name, ft); err != nil {
			return err
		}
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
