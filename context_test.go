package cloacina

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"pgregory.net/rapid"
)

// mustGet returns the value under key or fails the test.
func mustGet(t *testing.T, c *Context, key string) any {
	t.Helper()
	v, ok := c.Get(key)
	if !ok {
		t.Fatalf("Get(%q): key missing; context is %s", key, c)
	}
	return v
}

func TestContextInsert(t *testing.T) {
	c := NewContext()
	if err := c.Insert("a", 1); err != nil {
		t.Fatalf("Insert new key: %v", err)
	}
	if got := mustGet(t, c, "a"); got != 1.0 {
		t.Fatalf("Get after Insert = %#v, want 1.0", got)
	}
	err := c.Insert("a", 2)
	if !errors.Is(err, ErrKeyExists) {
		t.Fatalf("Insert existing key: err = %v, want ErrKeyExists", err)
	}
	if !strings.Contains(err.Error(), `"a"`) {
		t.Errorf("Insert error %q does not name the key", err)
	}
	if got := mustGet(t, c, "a"); got != 1.0 {
		t.Fatalf("value changed by failed Insert: %#v, want 1.0", got)
	}
	if c.Len() != 1 {
		t.Fatalf("Len = %d, want 1", c.Len())
	}
}

func TestContextUpdate(t *testing.T) {
	c := NewContext()
	err := c.Update("missing", 1)
	if !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("Update missing key: err = %v, want ErrKeyNotFound", err)
	}
	if c.Has("missing") {
		t.Fatal("failed Update created the key")
	}
	if err := c.Insert("k", "old"); err != nil {
		t.Fatal(err)
	}
	if err := c.Update("k", "new"); err != nil {
		t.Fatalf("Update existing key: %v", err)
	}
	if got := mustGet(t, c, "k"); got != "new" {
		t.Fatalf("Get after Update = %#v, want \"new\"", got)
	}
}

func TestContextSetHasDeleteKeys(t *testing.T) {
	c := NewContext()
	for _, k := range []string{"zeta", "alpha", "mid", "Beta", "alpha"} {
		if err := c.Set(k, k); err != nil {
			t.Fatalf("Set(%q): %v", k, err)
		}
	}
	if got, want := c.Keys(), []string{"Beta", "alpha", "mid", "zeta"}; !slices.Equal(got, want) {
		t.Fatalf("Keys = %q, want %q", got, want)
	}
	if c.Len() != 4 {
		t.Fatalf("Len = %d, want 4", c.Len())
	}
	if err := c.Set("mid", 42); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, c, "mid"); got != 42.0 {
		t.Fatalf("Set did not overwrite: %#v", got)
	}
	if !c.Has("zeta") || c.Has("nope") {
		t.Fatalf("Has wrong: zeta=%v nope=%v", c.Has("zeta"), c.Has("nope"))
	}
	c.Delete("zeta")
	c.Delete("never-there") // no-op
	if c.Has("zeta") {
		t.Fatal("Delete left the key")
	}
	if _, ok := c.Get("zeta"); ok {
		t.Fatal("Get finds a deleted key")
	}
	if got, want := c.Keys(), []string{"Beta", "alpha", "mid"}; !slices.Equal(got, want) {
		t.Fatalf("Keys after Delete = %q, want %q", got, want)
	}
}

func TestContextValuesAreNormalized(t *testing.T) {
	type point struct {
		X int    `json:"x"`
		Y string `json:"y,omitempty"`
	}
	tests := []struct {
		name string
		in   any
		want any
	}{
		{"int", 7, 7.0},
		{"int64", int64(-3), -3.0},
		{"float32", float32(1.5), 1.5},
		{"uint8", uint8(200), 200.0},
		{"bool", true, true},
		{"nil", nil, nil},
		{"string", "héllo", "héllo"},
		{"struct", point{X: 1}, map[string]any{"x": 1.0}},
		{"pointer to struct", &point{X: 2, Y: "b"}, map[string]any{"x": 2.0, "y": "b"}},
		{"typed map", map[string]int{"a": 1}, map[string]any{"a": 1.0}},
		{"slice", []int{1, 2}, []any{1.0, 2.0}},
		{"nil slice", []int(nil), nil},
		{"raw message", json.RawMessage(`{"z":[true,null]}`), map[string]any{"z": []any{true, nil}}},
		{"byte slice is base64", []byte("hi"), "aGk="},
		{"invalid utf-8 string", "a\xffb", "a\uFFFDb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewContext()
			if err := c.Set("v", tt.in); err != nil {
				t.Fatalf("Set: %v", err)
			}
			got := mustGet(t, c, "v")
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("stored %#v, want %#v", got, tt.want)
			}
			// What is stored is what a save and reload gives back.
			b, err := json.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			back, err := ContextFromJSON(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back.Map(), c.Map()) {
				t.Fatalf("round trip changed the value: %#v -> %#v", c.Map(), back.Map())
			}
		})
	}
}

func TestContextUnencodableValues(t *testing.T) {
	tests := []struct {
		name string
		v    any
	}{
		{"channel", make(chan int)},
		{"func", func() {}},
		{"complex", complex(1, 2)},
		{"NaN", math.NaN()},
		{"+Inf", math.Inf(1)},
		{"-Inf", math.Inf(-1)},
		{"NaN in a map", map[string]any{"x": math.NaN()}},
		{"func in a slice", []any{1, func() {}}},
		{"invalid raw message", json.RawMessage(`{"a":`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewContext()
			if err := c.Set("k", "before"); err != nil {
				t.Fatal(err)
			}
			if err := c.Set("k", tt.v); err == nil {
				t.Error("Set accepted an unencodable value")
			}
			if err := c.Update("k", tt.v); err == nil {
				t.Error("Update accepted an unencodable value")
			}
			if err := c.Insert("other", tt.v); err == nil {
				t.Error("Insert accepted an unencodable value")
			}
			if got := mustGet(t, c, "k"); got != "before" {
				t.Errorf("failed writes changed the value to %#v", got)
			}
			if c.Has("other") {
				t.Error("failed Insert created the key")
			}
			if _, err := c.MarshalJSON(); err != nil {
				t.Errorf("context no longer encodes: %v", err)
			}
		})
	}
}

func TestContextGetReturnsCopies(t *testing.T) {
	c := NewContext()
	if err := c.Set("obj", map[string]any{"inner": map[string]any{"n": 1}, "list": []any{1, 2}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Set("arr", []any{map[string]any{"x": 1}}); err != nil {
		t.Fatal(err)
	}
	before := c.String()

	obj := mustGet(t, c, "obj").(map[string]any)
	obj["new"] = true
	obj["inner"].(map[string]any)["n"] = 99
	obj["list"].([]any)[0] = "changed"
	arr := mustGet(t, c, "arr").([]any)
	arr[0].(map[string]any)["x"] = "changed"
	m := c.Map()
	m["added"] = 1
	m["obj"].(map[string]any)["inner"] = nil
	cl := c.Clone()
	if err := cl.Set("obj", 0); err != nil {
		t.Fatal(err)
	}

	if after := c.String(); after != before {
		t.Fatalf("mutating returned values changed the context:\nbefore %s\nafter  %s", before, after)
	}
}

func TestGetAs(t *testing.T) {
	type item struct {
		Name string `json:"name"`
		Qty  int    `json:"qty"`
	}
	c := NewContext()
	for k, v := range map[string]any{
		"n":     42,
		"f":     2.5,
		"s":     "text",
		"obj":   map[string]any{"name": "bolt", "qty": 3},
		"list":  []any{"a", "b"},
		"flag":  true,
		"null":  nil,
		"mixed": []any{1, "x"},
	} {
		if err := c.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}

	if got, err := GetAs[int](c, "n"); err != nil || got != 42 {
		t.Errorf("GetAs[int](n) = %v, %v; want 42", got, err)
	}
	if got, err := GetAs[int64](c, "n"); err != nil || got != 42 {
		t.Errorf("GetAs[int64](n) = %v, %v; want 42", got, err)
	}
	if got, err := GetAs[float64](c, "f"); err != nil || got != 2.5 {
		t.Errorf("GetAs[float64](f) = %v, %v; want 2.5", got, err)
	}
	if got, err := GetAs[string](c, "s"); err != nil || got != "text" {
		t.Errorf("GetAs[string](s) = %q, %v", got, err)
	}
	if got, err := GetAs[item](c, "obj"); err != nil || got != (item{"bolt", 3}) {
		t.Errorf("GetAs[item](obj) = %+v, %v", got, err)
	}
	if got, err := GetAs[*item](c, "obj"); err != nil || got == nil || *got != (item{"bolt", 3}) {
		t.Errorf("GetAs[*item](obj) = %+v, %v", got, err)
	}
	if got, err := GetAs[[]string](c, "list"); err != nil || !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("GetAs[[]string](list) = %q, %v", got, err)
	}
	if got, err := GetAs[map[string]any](c, "obj"); err != nil || got["qty"] != 3.0 {
		t.Errorf("GetAs[map](obj) = %v, %v", got, err)
	} else {
		got["qty"] = 100 // must not write through
		if again, _ := GetAs[item](c, "obj"); again.Qty != 3 {
			t.Errorf("GetAs result aliases the context: qty now %d", again.Qty)
		}
	}
	if got, err := GetAs[*int](c, "null"); err != nil || got != nil {
		t.Errorf("GetAs[*int](null) = %v, %v; want nil, nil", got, err)
	}
	if got, err := GetAs[any](c, "flag"); err != nil || got != true {
		t.Errorf("GetAs[any](flag) = %v, %v", got, err)
	}

	mismatches := []struct {
		name string
		get  func() error
	}{
		{"string as int", func() error { _, err := GetAs[int](c, "s"); return err }},
		{"fraction as int", func() error { _, err := GetAs[int](c, "f"); return err }},
		{"object as int", func() error { _, err := GetAs[int](c, "obj"); return err }},
		{"number as string", func() error { _, err := GetAs[string](c, "n"); return err }},
		{"array as struct", func() error { _, err := GetAs[item](c, "list"); return err }},
		{"bool as struct", func() error { _, err := GetAs[item](c, "flag"); return err }},
		{"mixed array as []string", func() error { _, err := GetAs[[]string](c, "mixed"); return err }},
		{"negative into uint", func() error {
			if err := c.Set("neg", -1); err != nil {
				return nil
			}
			_, err := GetAs[uint](c, "neg")
			return err
		}},
	}
	for _, m := range mismatches {
		err := m.get()
		if err == nil {
			t.Errorf("%s: no error", m.name)
			continue
		}
		if errors.Is(err, ErrKeyNotFound) {
			t.Errorf("%s: a type mismatch reported as ErrKeyNotFound: %v", m.name, err)
		}
		var ute *json.UnmarshalTypeError
		if !errors.As(err, &ute) {
			t.Errorf("%s: error %v does not wrap the decoding error", m.name, err)
		}
	}

	_, err := GetAs[int](c, "absent")
	if !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("GetAs on a missing key: err = %v, want ErrKeyNotFound", err)
	}
}

func TestContextJSONRoundTrip(t *testing.T) {
	src := `{"b":[1,"two",{"three":3}],"a":{"nested":{"deep":true}},"n":null,"f":-1.25e3,"s":"q\"uote\u00e9"}`
	c, err := ContextFromJSON([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"a":{"nested":{"deep":true}},"b":[1,"two",{"three":3}],"f":-1250,"n":null,"s":"q\"uoteé"}`
	if string(b) != want {
		t.Fatalf("MarshalJSON =\n%s\nwant\n%s", b, want)
	}
	if c.String() != want {
		t.Fatalf("String = %s, want %s", c.String(), want)
	}
	var back Context
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Map(), c.Map()) {
		t.Fatalf("round trip: %v != %v", back.Map(), c.Map())
	}

	// A Context embedded in another value encodes as an object too.
	type envelope struct {
		Ctx *Context `json:"ctx"`
	}
	eb, err := json.Marshal(envelope{c})
	if err != nil {
		t.Fatal(err)
	}
	if string(eb) != `{"ctx":`+want+`}` {
		t.Fatalf("embedded = %s", eb)
	}
	var env envelope
	if err := json.Unmarshal(eb, &env); err != nil {
		t.Fatal(err)
	}
	if env.Ctx.String() != want {
		t.Fatalf("embedded round trip = %s", env.Ctx)
	}

	var nilCtx *Context
	if b, err := nilCtx.MarshalJSON(); err != nil || string(b) != "{}" {
		t.Fatalf("nil context encodes as %s, %v; want {}", b, err)
	}
}

func TestContextUnmarshalJSONRejectsNonObjects(t *testing.T) {
	c := NewContext()
	if err := c.Set("keep", 1); err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{`[1]`, `"s"`, `null`, `3`, `{`} {
		if err := c.UnmarshalJSON([]byte(in)); !errors.Is(err, ErrInvalidContext) {
			t.Errorf("UnmarshalJSON(%s): err = %v, want ErrInvalidContext", in, err)
		}
	}
	if got := c.String(); got != `{"keep":1}` {
		t.Fatalf("failed UnmarshalJSON changed the context to %s", got)
	}
	if err := c.UnmarshalJSON([]byte(`{"other":2}`)); err != nil {
		t.Fatal(err)
	}
	if got := c.String(); got != `{"other":2}` {
		t.Fatalf("UnmarshalJSON does not replace the contents: %s", got)
	}
}

func TestContextFromJSONRejects(t *testing.T) {
	tests := []struct {
		name, in, mention string
	}{
		{"array", `[1,2]`, "array"},
		{"string", `"obj"`, "string"},
		{"null", `null`, "null"},
		{"number", `12.5`, "number"},
		{"negative number", `-1`, "number"},
		{"boolean", `true`, "boolean"},
		{"empty", ``, "empty"},
		{"whitespace", " \n\t", "empty"},
		{"invalid JSON", `{"a":}`, ""},
		{"truncated", `{"a":1`, ""},
		{"trailing data", `{"a":1} {"b":2}`, ""},
		{"garbage", `hello`, "invalid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ContextFromJSON([]byte(tt.in))
			if !errors.Is(err, ErrInvalidContext) {
				t.Fatalf("ContextFromJSON(%q) = %v, %v; want ErrInvalidContext", tt.in, c, err)
			}
			if c != nil {
				t.Errorf("returned a context with the error")
			}
			if !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("error %q does not mention %q", err, tt.mention)
			}
			// ContextFrom with the same bytes agrees.
			if _, err := ContextFrom(json.RawMessage(tt.in)); !errors.Is(err, ErrInvalidContext) {
				t.Errorf("ContextFrom(RawMessage) err = %v, want ErrInvalidContext", err)
			}
			if _, err := ContextFrom([]byte(tt.in)); !errors.Is(err, ErrInvalidContext) {
				t.Errorf("ContextFrom([]byte) err = %v, want ErrInvalidContext", err)
			}
		})
	}

	c, err := ContextFromJSON([]byte(" \n{\"a\": 1}\n "))
	if err != nil || c.String() != `{"a":1}` {
		t.Fatalf("ContextFromJSON with surrounding whitespace = %v, %v", c, err)
	}
	c, err = ContextFromJSON([]byte(`{}`))
	if err != nil || c.Len() != 0 {
		t.Fatalf("ContextFromJSON({}) = %v, %v", c, err)
	}
	if err := c.Set("x", 1); err != nil { // the map must be writable
		t.Fatal(err)
	}
}

func TestContextFromAccepts(t *testing.T) {
	type params struct {
		Day   string `json:"day"`
		Limit int    `json:"limit"`
	}
	orig := NewContext()
	if err := orig.Set("nested", map[string]any{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"nil", nil, `{}`},
		{"nil map", map[string]any(nil), `{}`},
		{"nil *Context", (*Context)(nil), `{}`},
		{"map", map[string]any{"a": 1, "b": []int{1}}, `{"a":1,"b":[1]}`},
		{"typed map", map[string]string{"x": "y"}, `{"x":"y"}`},
		{"struct", params{Day: "2026-11-26", Limit: 5}, `{"day":"2026-11-26","limit":5}`},
		{"pointer to struct", &params{Day: "d"}, `{"day":"d","limit":0}`},
		{"raw message", json.RawMessage(`{"r":true}`), `{"r":true}`},
		{"bytes", []byte(`{"b":null}`), `{"b":null}`},
		{"*Context", orig, `{"nested":{"k":"v"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ContextFrom(tt.in)
			if err != nil {
				t.Fatalf("ContextFrom: %v", err)
			}
			if got := c.String(); got != tt.want {
				t.Fatalf("ContextFrom = %s, want %s", got, tt.want)
			}
			if err := c.Set("written", 1); err != nil { // usable afterwards
				t.Fatal(err)
			}
		})
	}

	// A *Context is copied, deeply.
	cp, err := ContextFrom(orig)
	if err != nil {
		t.Fatal(err)
	}
	if cp == orig {
		t.Fatal("ContextFrom(*Context) returned the same context")
	}
	if err := orig.Set("nested", map[string]any{"k": "changed"}); err != nil {
		t.Fatal(err)
	}
	if err := cp.Set("only-in-copy", true); err != nil {
		t.Fatal(err)
	}
	if got := cp.String(); got != `{"nested":{"k":"v"},"only-in-copy":true}` {
		t.Fatalf("copy = %s", got)
	}
	if orig.Has("only-in-copy") {
		t.Fatal("writing the copy changed the original")
	}

	// A map passed in is not aliased.
	in := map[string]any{"inner": map[string]any{"n": 1}}
	c, err := ContextFrom(in)
	if err != nil {
		t.Fatal(err)
	}
	in["inner"].(map[string]any)["n"] = 2
	if got := c.String(); got != `{"inner":{"n":1}}` {
		t.Fatalf("ContextFrom aliases its map argument: %s", got)
	}
}

func TestContextFromRejects(t *testing.T) {
	tests := []struct {
		name string
		in   any
	}{
		{"slice", []any{1, 2}},
		{"int slice", []int{1}},
		{"string", `{"looks":"like an object"}`},
		{"int", 42},
		{"float", 1.5},
		{"bool", false},
		{"channel", make(chan int)},
		{"func", func() {}},
		{"map with NaN", map[string]any{"x": math.NaN()}},
		{"map with func", map[string]any{"f": func() {}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ContextFrom(tt.in)
			if !errors.Is(err, ErrInvalidContext) {
				t.Fatalf("ContextFrom(%T) = %v, %v; want ErrInvalidContext", tt.in, c, err)
			}
		})
	}
}

// TestContextZeroValue checks that a zero Context works as an empty one
// (it can be a field of a struct or a json.Unmarshal target).
func TestContextZeroValue(t *testing.T) {
	var c Context
	if c.Len() != 0 || c.Has("x") || len(c.Keys()) != 0 {
		t.Fatal("zero context is not empty")
	}
	if got := c.String(); got != "{}" {
		t.Fatalf("zero context encodes as %s, want {}", got)
	}
	if _, err := ContextFromJSON([]byte(c.String())); err != nil {
		t.Fatalf("zero context's JSON does not decode: %v", err)
	}
	if err := c.Update("x", 1); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("Update on zero context: %v", err)
	}
	if err := c.Insert("x", 1); err != nil {
		t.Fatalf("Insert on zero context: %v", err)
	}
	var d Context
	if err := d.Set("y", 2); err != nil {
		t.Fatalf("Set on zero context: %v", err)
	}
	if c.String() != `{"x":1}` || d.String() != `{"y":2}` {
		t.Fatalf("got %s and %s", c.String(), d.String())
	}
	var e Context
	if m := e.Map(); m == nil || len(m) != 0 {
		t.Fatalf("zero context Map = %#v", m)
	}
	if cl := e.Clone(); cl.String() != "{}" {
		t.Fatalf("zero context Clone = %s", cl)
	}
}

func TestContextConcurrentUse(t *testing.T) {
	c := NewContext()
	const workers, rounds = 16, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := fmt.Sprintf("w%d", w)
			for i := range rounds {
				shared := fmt.Sprintf("shared%d", i%5)
				if err := c.Set(shared, map[string]any{"w": w, "i": i}); err != nil {
					t.Error(err)
					return
				}
				if v, ok := c.Get(shared); ok {
					// Mutating the copy must not race with other readers.
					v.(map[string]any)["w"] = -1
				}
				_ = c.Insert(own, i)
				if err := c.Update(own, i); err != nil {
					t.Error(err)
					return
				}
				_ = c.Has(shared)
				_ = c.Keys()
				_ = c.Map()
				_ = c.String()
				if _, err := GetAs[map[string]int](c, shared); err != nil && !errors.Is(err, ErrKeyNotFound) {
					t.Error(err)
					return
				}
				_ = c.Clone().Len()
				if i%50 == 49 {
					c.Delete(shared)
				}
			}
		}()
	}
	wg.Wait()
	for w := range workers {
		got, err := GetAs[int](c, fmt.Sprintf("w%d", w))
		if err != nil || got != rounds-1 {
			t.Errorf("w%d = %d, %v; want %d", w, got, err, rounds-1)
		}
	}
}

func TestMergeJSON(t *testing.T) {
	tests := []struct {
		name      string
		dst, src  string // JSON objects; dst "nil" means a nil map
		want      string
		wantAlias bool
	}{
		{"nil dst", "nil", `{"a":1,"o":{"x":1}}`, `{"a":1,"o":{"x":1}}`, false},
		{"empty src", `{"a":1}`, `{}`, `{"a":1}`, false},
		{"disjoint keys", `{"a":1}`, `{"b":2}`, `{"a":1,"b":2}`, false},
		{"scalar replaced", `{"a":1}`, `{"a":"one"}`, `{"a":"one"}`, false},
		{"null replaces", `{"a":{"x":1}}`, `{"a":null}`, `{"a":null}`, false},
		{"object replaces scalar", `{"a":1}`, `{"a":{"x":1}}`, `{"a":{"x":1}}`, false},
		{"scalar replaces object", `{"a":{"x":1}}`, `{"a":2}`, `{"a":2}`, false},
		{"recursive merge", `{"a":{"x":1,"y":{"p":1,"q":2}},"k":0}`, `{"a":{"y":{"q":3,"r":4},"z":5}}`,
			`{"a":{"x":1,"y":{"p":1,"q":3,"r":4},"z":5},"k":0}`, false},
		{"arrays replaced", `{"l":[1,2,3]}`, `{"l":[4]}`, `{"l":[4]}`, false},
		{"array replaces object", `{"l":{"0":1}}`, `{"l":[1]}`, `{"l":[1]}`, false},
		{"object replaces array", `{"l":[1]}`, `{"l":{"0":1}}`, `{"l":{"0":1}}`, false},
		{"objects inside arrays not merged", `{"l":[{"a":1}]}`, `{"l":[{"b":2}]}`, `{"l":[{"b":2}]}`, false},
		{"empty object keeps dst", `{"o":{"x":1}}`, `{"o":{}}`, `{"o":{"x":1}}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var dst map[string]any
			if tt.dst != "nil" {
				dst = decodeTestObject(t, tt.dst)
			}
			src := decodeTestObject(t, tt.src)
			got := MergeJSON(dst, src)
			if dst != nil && reflect.ValueOf(got).Pointer() != reflect.ValueOf(dst).Pointer() {
				t.Error("MergeJSON did not return dst")
			}
			if enc := encodeTest(t, got); enc != tt.want {
				t.Fatalf("MergeJSON(%s, %s) = %s, want %s", tt.dst, tt.src, enc, tt.want)
			}
			if enc := encodeTest(t, src); enc != canonicalJSON(t, tt.src) {
				t.Fatalf("MergeJSON changed src to %s", enc)
			}
			// The result shares nothing with src.
			mutateDeep(src)
			if enc := encodeTest(t, got); enc != tt.want {
				t.Fatalf("mutating src after the merge changed the result to %s", enc)
			}
		})
	}

	if got := MergeJSON(nil, nil); got == nil || len(got) != 0 {
		t.Fatalf("MergeJSON(nil, nil) = %#v, want an empty non-nil map", got)
	}
}

// testFataler is the part of testing.TB that *rapid.T also implements.
type testFataler interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

func decodeTestObject(t testFataler, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("bad test JSON %s: %v", s, err)
	}
	return m
}

func encodeTest(t testFataler, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func canonicalJSON(t testFataler, s string) string {
	t.Helper()
	return encodeTest(t, decodeTestObject(t, s))
}

// mutateDeep changes every map and slice reachable from v in place.
func mutateDeep(v any) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			mutateDeep(e)
			if _, composite := e.(map[string]any); !composite {
				if _, composite := e.([]any); !composite {
					x[k] = "mutated"
				}
			}
		}
		x["mutated-key"] = true
	case []any:
		for i, e := range x {
			mutateDeep(e)
			if _, composite := e.(map[string]any); !composite {
				if _, composite := e.([]any); !composite {
					x[i] = "mutated"
				}
			}
		}
	}
}

// jsonValue generates JSON values in encoding/json's decoded form, with
// objects over a small key alphabet so that merges overlap.
func jsonValue(depth int) *rapid.Generator[any] {
	return rapid.Custom(func(t *rapid.T) any {
		kinds := 4
		if depth > 0 {
			kinds = 6
		}
		switch rapid.IntRange(0, kinds-1).Draw(t, "kind") {
		case 0:
			return nil
		case 1:
			return rapid.Bool().Draw(t, "bool")
		case 2:
			return float64(rapid.IntRange(-1000, 1000).Draw(t, "num")) / 4
		case 3:
			return rapid.StringMatching(`[a-z]{0,3}`).Draw(t, "str")
		case 4:
			n := rapid.IntRange(0, 3).Draw(t, "len")
			s := make([]any, n)
			for i := range s {
				s[i] = jsonValue(depth-1).Draw(t, "elem")
			}
			return s
		default:
			return jsonObject(depth-1).Draw(t, "obj")
		}
	})
}

func jsonObject(depth int) *rapid.Generator[map[string]any] {
	return rapid.Custom(func(t *rapid.T) map[string]any {
		m := map[string]any{}
		for range rapid.IntRange(0, 4).Draw(t, "size") {
			m[rapid.SampledFrom([]string{"a", "b", "c", "d"}).Draw(t, "key")] = jsonValue(depth).Draw(t, "val")
		}
		return m
	})
}

func TestMergeJSONProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		x := jsonObject(3).Draw(t, "x")
		y := jsonObject(3).Draw(t, "y")
		xs, ys := encodeTest(t, x), encodeTest(t, y)

		// Merging a value with itself (the same map, or a copy) gives it back.
		if got := encodeTest(t, MergeJSON(deepCopy(x).(map[string]any), x)); got != xs {
			t.Fatalf("merge(x, x) = %s, want %s", got, xs)
		}
		self := deepCopy(x).(map[string]any)
		if got := encodeTest(t, MergeJSON(self, self)); got != xs {
			t.Fatalf("merge(m, m) on one map = %s, want %s", got, xs)
		}
		// {} is an identity on both sides.
		if got := encodeTest(t, MergeJSON(deepCopy(x).(map[string]any), map[string]any{})); got != xs {
			t.Fatalf("merge(x, {}) = %s, want %s", got, xs)
		}
		if got := encodeTest(t, MergeJSON(nil, x)); got != xs {
			t.Fatalf("merge(nil, x) = %s, want %s", got, xs)
		}
		if got := encodeTest(t, MergeJSON(map[string]any{}, x)); got != xs {
			t.Fatalf("merge({}, x) = %s, want %s", got, xs)
		}

		r := MergeJSON(deepCopy(x).(map[string]any), y)
		if encodeTest(t, y) != ys {
			t.Fatal("merge changed src")
		}
		// Keys: the union of both; src's scalars and arrays win as they are.
		for k, yv := range y {
			rv, ok := r[k]
			if !ok {
				t.Fatalf("key %q of src missing from the result", k)
			}
			if _, isObj := yv.(map[string]any); !isObj && !reflect.DeepEqual(rv, yv) {
				t.Fatalf("result[%q] = %#v, want src's %#v", k, rv, yv)
			}
		}
		for k, xv := range x {
			rv, ok := r[k]
			if !ok {
				t.Fatalf("key %q of dst missing from the result", k)
			}
			if _, inSrc := y[k]; !inSrc && !reflect.DeepEqual(rv, xv) {
				t.Fatalf("result[%q] = %#v, want dst's %#v", k, rv, xv)
			}
		}
		if len(r) > len(x)+len(y) {
			t.Fatalf("result has %d keys, more than %d+%d", len(r), len(x), len(y))
		}
		// Merging src again changes nothing (idempotence).
		rs := encodeTest(t, r)
		if got := encodeTest(t, MergeJSON(r, y)); got != rs {
			t.Fatalf("merge(merge(x, y), y) = %s, want %s", got, rs)
		}
		// The result shares no storage with src.
		mutateDeep(y)
		if got := encodeTest(t, r); got != rs {
			t.Fatalf("mutating src changed the result: %s -> %s", rs, got)
		}
	})
}
