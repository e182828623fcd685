package tenant

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRedactErrorOnlyWherePasswordsStand: redactError, which the
// managers and the Admin use, is internal/redact's Error (tested there): a
// password goes where it stands as one, a role name that equals it stays,
// a verifier goes wherever it is, and the cause is kept.
func TestRedactErrorOnlyWherePasswordsStand(t *testing.T) {
	const pw = "appuser"
	base := errors.New("boom")
	err := redactError(fmt.Errorf(`role "appuser": connecting to postgres://appuser:appuser@h/db: %w`, base), pw)
	if want := `role "appuser": connecting to postgres://appuser:REDACTED@h/db: boom`; err.Error() != want || !errors.Is(err, base) {
		t.Errorf("redactError = %q (is base: %v); want %q", err, errors.Is(err, base), want)
	}
	v := "SCRAM-SHA-256$4096:c2FsdA==$a2V5:a2V5"
	if err := redactError(fmt.Errorf("setting %s failed", v), v); strings.Contains(err.Error(), "SCRAM") {
		t.Errorf("the verifier survived: %v", err)
	}
}

// TestReadEnvFileNamesTheBadLine: a malformed .env file's error gives the
// line, not its content; a quoted value spanning lines is no error.
func TestReadEnvFileNamesTheBadLine(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		text string
		line int
	}{
		{"A=1\nB=2\nSECRET=\"s3cr3t-value\nC=3\n", 3},
		{"A=1\n# comment\n\nB 'x' s3cr3t-value\nC=3\n", 4},
		{"A=1\nM=\"multi\nline\"\nB=oops\"s3cr3t-value\nX\n", 5},
	} {
		path := filepath.Join(dir, fmt.Sprintf("bad%d.env", tt.line))
		if err := os.WriteFile(path, []byte(tt.text), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := ReadEnvFile(path)
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), fmt.Sprintf("at line %d", tt.line)) {
			t.Errorf("ReadEnvFile(%q) = %v; want ErrInvalidConfig at line %d", tt.text, err, tt.line)
		}
		if err != nil && strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("the error quotes the file: %v", err)
		}
	}
	good := filepath.Join(dir, "good.env")
	if err := os.WriteFile(good, []byte("A=1\nM=\"multi\nline\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if vars, err := ReadEnvFile(good); err != nil || vars["M"] != "multi\nline" {
		t.Errorf("ReadEnvFile(good) = %q, %v", vars, err)
	}
}
