package tenant

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRedactErrorOnlyWherePasswordsStand: a password is removed where it
// stands as a password (a URL's user information, a password parameter, a
// SQL password literal), and a role name or word that merely equals it is
// left alone.
func TestRedactErrorOnlyWherePasswordsStand(t *testing.T) {
	const pw = "appuser"
	for _, tt := range []struct{ in, want string }{
		{`tenant: role "appuser" is not a tenant role of database "db"`, `tenant: role "appuser" is not a tenant role of database "db"`},
		{`connecting to postgres://appuser:appuser@h/db: boom`, `connecting to postgres://appuser:REDACTED@h/db: boom`},
		{`dsn host=h user=appuser password=appuser sslmode=disable`, `dsn host=h user=appuser password=REDACTED sslmode=disable`},
		{`dsn host=h password='appuser' user=appuser`, `dsn host=h password='REDACTED' user=appuser`},
		{`url postgres://h/db?user=appuser&password=appuser`, `url postgres://h/db?user=appuser&password=REDACTED`},
		{`ALTER ROLE appuser PASSWORD 'appuser'`, `ALTER ROLE appuser PASSWORD 'REDACTED'`},
	} {
		err := redactError(errors.New(tt.in), pw)
		if err.Error() != tt.want {
			t.Errorf("redactError(%q) = %q; want %q", tt.in, err, tt.want)
		}
	}
	// A verifier is never a name: it goes wherever it is.
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
