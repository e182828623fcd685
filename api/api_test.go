package api_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina/api"
)

func TestExecutionJSON(t *testing.T) {
	// A summary: zero times, nil Context and nil Tasks are left out;
	// empty strings and zero numbers are not.
	b, err := json.Marshal(api.Execution{ExecutionID: "x", WorkflowName: "w", Status: "Running", DurationMS: 1500})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"execution_id":"x","workflow_name":"w","workflow_version":"","status":"Running","error":"","duration_ms":1500}`
	if string(b) != want {
		t.Fatalf("summary =\n%s\nwant\n%s", b, want)
	}
	// An execution: a null context and an empty task list are shown.
	b, err = json.Marshal(api.Execution{Context: json.RawMessage("null"), Tasks: []api.Task{}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"context":null,"tasks":[]`) || strings.Contains(string(b), "created_at") {
		t.Fatalf("execution = %s", b)
	}

	var e api.Execution
	if err := json.Unmarshal([]byte(`{"duration_ms":1500,"context":{"n":2}}`), &e); err != nil {
		t.Fatal(err)
	}
	if d := e.Duration(); d != 1500*time.Millisecond {
		t.Fatalf("Duration = %v", d)
	}
	var ctx struct{ N int }
	if err := e.DecodeContext(&ctx); err != nil || ctx.N != 2 {
		t.Fatalf("DecodeContext = %v, %+v", err, ctx)
	}
	empty := api.Execution{Context: json.RawMessage("null")}
	if err := empty.DecodeContext(&ctx); err != nil || ctx.N != 2 {
		t.Fatalf("DecodeContext of null = %v, %+v (want v untouched)", err, ctx)
	}
}

func TestKeyJSON(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	b, err := json.Marshal(api.Key{KeyID: "k", Name: "ci", Role: "read", TenantID: "acme", CreatedAt: at})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"key_id":"k","name":"ci","role":"read","tenant_id":"acme","created_at":"2026-01-02T03:04:05Z"}`
	if string(b) != want {
		t.Fatalf("key =\n%s\nwant\n%s", b, want)
	}
}
