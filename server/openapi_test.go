package server

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// TestOpenAPI checks that /openapi.json is valid JSON, an OpenAPI 3.1
// document whose references all resolve, and that it describes exactly
// the routes the server serves.
func TestOpenAPI(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	if doc["openapi"] != "3.1.0" {
		t.Fatalf("openapi = %v, want 3.1.0", doc["openapi"])
	}
	paths, _ := doc["paths"].(map[string]any)
	documented := map[string]bool{}
	for path, item := range paths {
		ops, _ := item.(map[string]any)
		for method, op := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
			o, _ := op.(map[string]any)
			if o["operationId"] == nil || o["responses"] == nil {
				t.Errorf("%s %s lacks an operationId or responses", method, path)
			}
		}
	}
	s := &Server{}
	served := map[string]bool{}
	for _, rt := range s.routes() {
		served[rt.pattern] = true
		if !documented[rt.pattern] {
			t.Errorf("route %q is not in openapi.json", rt.pattern)
		}
		for _, q := range rt.query {
			if !hasQueryParam(paths, rt.pattern, q) {
				t.Errorf("route %q: query parameter %q is not in openapi.json", rt.pattern, q)
			}
		}
	}
	for d := range documented {
		if !served[d] {
			t.Errorf("openapi.json describes %q, which is not served", d)
		}
	}
	// Every $ref names something in the document.
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok && resolve(doc, ref) == nil {
				t.Errorf("unresolved $ref %q", ref)
			}
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(doc)
	// Every error code the server uses is in the Error schema's enum.
	codes := resolve(doc, "#/components/schemas/Error/properties/error/properties/code/enum").([]any)
	for _, c := range []string{codeInvalidJSON, codeInvalidTenantID, codeInvalidArgument, codeUnauthorized, codeForbidden, codeNotFound,
		codeTenantNotFound, codeWorkflowNotFound, codeExecutionNotFound, codeKeyNotFound, codeMethodNotAllowed, codeTenantExists,
		codeInvalidTransition, codeNotSupported, codePayloadTooLarge, codeUnsupportedMediaType, codeInternal, codeUnavailable,
		codeRequestTimeout, codeKeyInUse, codeForeignStorage} {
		if !slices.Contains(codes, any(c)) {
			t.Errorf("error code %q is not in the Error schema", c)
		}
	}
}

func hasQueryParam(paths map[string]any, pattern, name string) bool {
	method, path, _ := strings.Cut(pattern, " ")
	op, _ := paths[path].(map[string]any)[strings.ToLower(method)].(map[string]any)
	params, _ := op["parameters"].([]any)
	for _, p := range params {
		if m, _ := p.(map[string]any); m["in"] == "query" && m["name"] == name {
			return true
		}
	}
	return false
}

// resolve follows a local JSON pointer ("#/a/b").
func resolve(doc map[string]any, ref string) any {
	if !strings.HasPrefix(ref, "#/") {
		return nil
	}
	var cur any = doc
	for part := range strings.SplitSeq(ref[2:], "/") {
		part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		if cur, ok = m[part]; !ok {
			return nil
		}
	}
	return cur
}
