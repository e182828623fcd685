package server

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// TestStrictScanDoesNotCopyPaths: the scanner's work does not grow with
// nesting depth times items (a value's path was copied for every element,
// which made a deeply nested 1 MiB body cost seconds of CPU): scanning
// 10,000 elements 5,000 arrays deep allocates about as much as scanning
// them flat.
func TestStrictScanDoesNotCopyPaths(t *testing.T) {
	items := strings.Repeat("0,", 10000) + "0"
	deep := []byte(strings.Repeat("[", 5000) + items + strings.Repeat("]", 5000))
	flat := []byte("[" + items + "]")
	if !json.Valid(deep) || !json.Valid(flat) {
		t.Fatal("test bodies are not JSON")
	}
	var anyT = reflect.TypeFor[any]()
	deepAllocs := testing.AllocsPerRun(3, func() {
		if err := checkStrict(deep, anyT); err != nil {
			t.Fatal(err)
		}
	})
	flatAllocs := testing.AllocsPerRun(3, func() {
		if err := checkStrict(flat, anyT); err != nil {
			t.Fatal(err)
		}
	})
	if deepAllocs > flatAllocs+100 {
		t.Errorf("deep nesting: %v allocations, flat: %v; want about the same", deepAllocs, flatAllocs)
	}
	// Paths still name the field in messages.
	err := checkStrict([]byte(`{"a":[{"b":1},{"c":{"d":1,"d":2}}]}`), anyT)
	if err == nil || !strings.Contains(err.Error(), `"a[].c.d" is given twice`) {
		t.Errorf("repeated nested key: %v", err)
	}
	// Keys that encoding/json would merge count as repeated.
	if err := checkStrict([]byte("{\"a\xff\":1,\"a\xfe\":2}"), anyT); err == nil || !strings.Contains(err.Error(), "given twice") {
		t.Errorf("keys with invalid UTF-8 that decode alike: %v", err)
	}
}
