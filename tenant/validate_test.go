package tenant_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/tenant"
)

func TestValidateID(t *testing.T) {
	long63 := "a" + strings.Repeat("b", 62)
	long64 := long63 + "c"
	tests := []struct {
		id           string
		hyphen       bool
		wantErr      bool
		wantInReason string
	}{
		{id: "acme", hyphen: false},
		{id: "acme", hyphen: true},
		{id: "Tenant_42", hyphen: false},
		{id: "_private", hyphen: false},
		{id: "x", hyphen: false},
		{id: long63, hyphen: false},
		{id: "acme-corp", hyphen: true},
		{id: "a-", hyphen: true},
		{id: "production_tenant_123", hyphen: false},
		{id: "publicity", hyphen: false},
		{id: "my_pg_tenant", hyphen: false},

		{id: "", wantErr: true, wantInReason: "empty"},
		{id: long64, wantErr: true, wantInReason: "64 bytes"},
		{id: long64, hyphen: true, wantErr: true, wantInReason: "64 bytes"},
		{id: strings.Repeat("x", 10000), hyphen: true, wantErr: true, wantInReason: "limit is 63"},
		{id: "acme-corp", hyphen: false, wantErr: true, wantInReason: `'-'`},
		{id: "-acme", hyphen: true, wantErr: true, wantInReason: "start with"},
		{id: "1acme", hyphen: false, wantErr: true, wantInReason: "start with"},
		{id: "9", hyphen: true, wantErr: true, wantInReason: "start with"},
		{id: "a;DROP SCHEMA x", hyphen: false, wantErr: true, wantInReason: `';'`},
		{id: "a;DROP SCHEMA x", hyphen: true, wantErr: true, wantInReason: `';'`},
		{id: `x"; DROP TABLE t; --`, hyphen: true, wantErr: true, wantInReason: `'"'`},
		{id: "a'b", hyphen: true, wantErr: true, wantInReason: `'\''`},
		{id: "../etc", hyphen: true, wantErr: true, wantInReason: "start with"},
		{id: "a/../../etc", hyphen: true, wantErr: true, wantInReason: `'/'`},
		{id: `a\b`, hyphen: true, wantErr: true, wantInReason: `'\\'`},
		{id: "acme.db", hyphen: true, wantErr: true, wantInReason: `'.'`},
		{id: "two words", hyphen: true, wantErr: true, wantInReason: `' '`},
		{id: "nul\x00byte", hyphen: true, wantErr: true, wantInReason: `'\x00'`},
		{id: "new\nline", hyphen: true, wantErr: true, wantInReason: `'\n'`},
		{id: "café", hyphen: true, wantErr: true, wantInReason: `'é'`},
		{id: "ａｃｍｅ", hyphen: true, wantErr: true, wantInReason: "start with"},
		{id: "a%2e", hyphen: true, wantErr: true, wantInReason: `'%'`},
		{id: "a?b", hyphen: true, wantErr: true, wantInReason: `'?'`},
		{id: "public", hyphen: false, wantErr: true, wantInReason: "reserved"},
		{id: "PUBLIC", hyphen: true, wantErr: true, wantInReason: "reserved"},
		{id: "information_schema", hyphen: false, wantErr: true, wantInReason: "reserved"},
		{id: "Information_Schema", hyphen: true, wantErr: true, wantInReason: "reserved"},
		{id: "pg_catalog", hyphen: false, wantErr: true, wantInReason: "reserved"},
		{id: "pg_", hyphen: false, wantErr: true, wantInReason: "reserved"},
		{id: "PG_toast", hyphen: true, wantErr: true, wantInReason: "reserved"},
	}
	for _, tt := range tests {
		err := tenant.ValidateID(tt.id, tt.hyphen)
		if !tt.wantErr {
			if err != nil {
				t.Errorf("ValidateID(%q, %v) = %v, want nil", tt.id, tt.hyphen, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("ValidateID(%q, %v) = nil, want an error", tt.id, tt.hyphen)
			continue
		}
		if !errors.Is(err, cloacina.ErrInvalidTenantID) {
			t.Errorf("ValidateID(%q, %v) = %v, want it to wrap ErrInvalidTenantID", tt.id, tt.hyphen, err)
		}
		if !strings.Contains(err.Error(), tt.wantInReason) {
			t.Errorf("ValidateID(%q, %v) = %q, want the reason to mention %s", tt.id, tt.hyphen, err, tt.wantInReason)
		}
		if len(err.Error()) > 300 {
			t.Errorf("ValidateID(%d-byte id): the message is %d bytes long", len(tt.id), len(err.Error()))
		}
	}
}

// TestInvalidIDTouchesNothing calls every method of a manager with invalid
// ids and checks that each fails with ErrInvalidTenantID and that no file
// or folder appeared, inside the data folder or next to it.
func TestInvalidIDTouchesNothing(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	m, dir := newManager(t)
	root := filepath.Dir(dir)
	// A file an escaping id would hit.
	if err := os.WriteFile(filepath.Join(root, "victim.db"), []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := tree(t, root)

	bad := []string{
		"", "a;DROP SCHEMA x", "../etc", "../victim", "..", ".", "/etc/passwd", "sub/acme", "acme.db",
		"public", "pg_x", "information_schema", strings.Repeat("a", 64), "a b", "-x", "x?mode=memory",
	}
	for _, id := range bad {
		checks := map[string]error{}
		_, checks["Runner"] = m.Runner(ctx, id)
		_, checks["Execute"] = m.Execute(ctx, id, "pipeline", nil)
		_, checks["ExecuteAsync"] = m.ExecuteAsync(ctx, id, "pipeline", nil)
		_, checks["Exists"] = m.Exists(ctx, id)
		checks["Remove"] = m.Remove(ctx, id)
		_, checks["Metrics"] = m.Metrics(ctx, id)
		_, checks["Path"] = m.Path(id)
		for method, err := range checks {
			if !errors.Is(err, cloacina.ErrInvalidTenantID) {
				t.Errorf("%s(%q) = %v, want ErrInvalidTenantID", method, id, err)
			}
		}
	}
	if after := tree(t, root); !slices.Equal(before, after) {
		t.Errorf("files changed:\nbefore %q\nafter  %q", before, after)
	}
	if b, err := os.ReadFile(filepath.Join(root, "victim.db")); err != nil || string(b) != "keep me" {
		t.Errorf("victim.db = %q, %v; want it untouched", b, err)
	}
	ids, err := m.Tenants(ctx)
	if err != nil || len(ids) != 0 {
		t.Errorf("Tenants() = %q, %v; want none", ids, err)
	}
}
