package tenant

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/cloacina-go/cloacina/internal/redact"
)

const urlSafeAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func TestGeneratePasswordIsRandomAndURLSafe(t *testing.T) {
	const n = 2000
	seen := make(map[string]bool, n)
	used := map[rune]bool{}
	for range n {
		p, err := GeneratePassword()
		if err != nil {
			t.Fatalf("GeneratePassword: %v", err)
		}
		if len(p) != 43 {
			t.Fatalf("GeneratePassword() = %d characters; want 43 (256 bits in base64url)", len(p))
		}
		raw, err := base64.RawURLEncoding.DecodeString(p)
		if err != nil || len(raw) != 32 {
			t.Fatalf("GeneratePassword() does not decode to 32 bytes of base64url: %d, %v", len(raw), err)
		}
		for _, r := range p {
			if !strings.ContainsRune(urlSafeAlphabet, r) {
				t.Fatalf("GeneratePassword() holds %q, which is not URL-safe", r)
			}
			used[r] = true
		}
		if err := checkPassword(p); err != nil {
			t.Fatalf("a generated password is refused: %v", err)
		}
		if seen[p] {
			t.Fatal("GeneratePassword returned the same password twice")
		}
		seen[p] = true
	}
	// 2000 passwords of 43 characters use every one of the 64 characters
	// unless the source is badly skewed.
	if len(used) != len(urlSafeAlphabet) {
		t.Errorf("generated passwords use %d distinct characters; want all %d", len(used), len(urlSafeAlphabet))
	}
}

// TestPasswordSCRAMVerifierMatchesPostgreSQL checks scramVerifier against
// verifiers PostgreSQL 15 computed (SET password_encryption =
// 'scram-sha-256'; CREATE ROLE ... PASSWORD '...'; then pg_authid), with
// their salts.
func TestPasswordSCRAMVerifierMatchesPostgreSQL(t *testing.T) {
	for _, tc := range []struct{ password, stored string }{
		{"pencil", "SCRAM-SHA-256$4096:VHR/LyXlp0Izp7xmIwI8YQ==$LtlJG25DBXpMbtnanw4uLWLumqP6H2PynjKfEjNjP+E=:+Mmw+j180sA+QKiFhXzrIBs1Z376Kpbmv0pU/SgsMXs="},
		{`it's a \ test`, "SCRAM-SHA-256$4096:djE/c5jTMPJK4N4aF0fabw==$EIrRSjRCNMbcT/5KJBnXtPutQXd0GYcPoOO7kAg6Frw=:Lb8FxVWjex5c2sofp3qAWrDMZFgdtHrsfhTecSsniBA="},
	} {
		saltB64 := strings.Split(strings.Split(tc.stored, ":")[1], "$")[0]
		salt, err := base64.StdEncoding.DecodeString(saltB64)
		if err != nil {
			t.Fatal(err)
		}
		got, err := scramVerifier(tc.password, salt, 4096)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.stored {
			t.Errorf("scramVerifier(%q) =\n%s\nwant\n%s", tc.password, got, tc.stored)
		}
	}
	a, err := newScramVerifier("pencil")
	if err != nil {
		t.Fatal(err)
	}
	b, err := newScramVerifier("pencil")
	if err != nil {
		t.Fatal(err)
	}
	if a == b || !strings.HasPrefix(a, "SCRAM-SHA-256$4096:") || strings.Contains(a, "pencil") {
		t.Errorf("newScramVerifier: %q and %q; want distinct salted verifiers", a, b)
	}
	if strings.ContainsAny(a, `'\`) {
		t.Errorf("a verifier holds a quote or backslash: %q", a)
	}
}

func TestPasswordSQLLiteral(t *testing.T) {
	for in, want := range map[string]string{
		"":            "''",
		"plain":       "'plain'",
		"it's":        "'it''s'",
		`back\slash`:  `E'back\\slash'`,
		`'; DROP --`:  `'''; DROP --'`,
		`\'; x`:       `E'\\''; x'`,
		"db name \"q": `'db name "q'`,
	} {
		if got := sqlLiteral(in); got != want {
			t.Errorf("sqlLiteral(%q) = %s; want %s", in, got, want)
		}
	}
}

func TestPasswordCheck(t *testing.T) {
	for _, ok := range []string{"x", `all printable: !"#$%&'()*+,-./09:;<=>?@AZ[\]^_` + "`az{|}~ ", strings.Repeat("a", MaxPasswordLength)} {
		if err := checkPassword(ok); err != nil {
			t.Errorf("checkPassword(%q) = %v; want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "Secret\x00", "Secret\t", "Secret\x7f", "Secrét", strings.Repeat("S", MaxPasswordLength+1)} {
		err := checkPassword(bad)
		if !errors.Is(err, ErrInvalidPassword) {
			t.Errorf("checkPassword(%q) = %v; want ErrInvalidPassword", bad, err)
			continue
		}
		if bad != "" && strings.Contains(err.Error(), "Secr") {
			t.Errorf("checkPassword's error shows the password: %v", err)
		}
	}
}

func TestCredentialsRedaction(t *testing.T) {
	const pw = `Sekr1t'/@:%pw`
	for _, cs := range []string{
		"postgres://tenant_user:Sekr1t%27%2F%40%3A%25pw@db.example:5432/app?sslmode=require",
		// Not a parsable URL: the password itself is removed all the same.
		"postgres://tenant_user:" + pw + "@db.example/app",
		"host=db.example user=tenant_user password=" + pw,
	} {
		c := TenantCredentials{Username: "tenant_user", Password: pw, Schema: "tenant_s", ConnectionString: cs}
		var text, js bytes.Buffer
		slog.New(slog.NewTextHandler(&text, nil)).Info("x", "c", c)
		slog.New(slog.NewJSONHandler(&js, nil)).Info("x", "c", &c)
		for name, out := range map[string]string{
			"%v": fmt.Sprintf("%v", c), "%+v": fmt.Sprintf("%+v", &c), "%#v": fmt.Sprintf("%#v", c),
			"%s": c.String(), "text": text.String(), "json": js.String(),
		} {
			if strings.Contains(out, "Sekr1t") {
				t.Errorf("%s of %s shows the password: %s", name, redact.Secret(cs, pw), out)
			}
			if !strings.Contains(out, "tenant_user") || !strings.Contains(out, "tenant_s") || !strings.Contains(out, "db.example") {
				t.Errorf("%s lost the user, schema or host: %s", name, out)
			}
		}
	}
	cfg := TenantConfig{Schema: "s", Username: "u", Password: pw}
	for _, out := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", &cfg)} {
		if strings.Contains(out, "Sekr1t") {
			t.Errorf("TenantConfig printed with its password: %s", out)
		}
	}
}
