package redact

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	// want is the exact result where it is certain; otherwise only the
	// password's absence and the kept parts are checked.
	for _, tc := range []struct {
		name, url, password, want string
		keep                      []string
	}{
		{name: "password", url: "postgres://u:Hunter2xyz@db.example:5432/app?sslmode=disable", password: "Hunter2xyz",
			want: "postgres://u:REDACTED@db.example:5432/app?sslmode=disable"},
		{name: "postgresql scheme", url: "postgresql://u:Hunter2xyz@db.example/app", password: "Hunter2xyz",
			want: "postgresql://u:REDACTED@db.example/app"},
		{name: "empty user", url: "postgres://:Hunter2xyz@db.example/app", password: "Hunter2xyz", keep: []string{"db.example/app"}},
		{name: "percent-encoded", url: "postgres://u:p%40ss%2Fw%3Ard%23@db.example/app", password: "p%40ss%2Fw%3Ard%23", keep: []string{"db.example/app"}},
		{name: "at sign", url: "postgres://u:p@ssw0rd@db.example/app", password: "p@ssw0rd", keep: []string{"db.example/app"}},
		{name: "slash", url: "postgres://u:se/cr3t@db.example/app", password: "se/cr3t", keep: []string{"db.example/app"}},
		{name: "digits and slash", url: "postgres://u:1234/5678@db.example/app", password: "1234/5678", keep: []string{"db.example/app"}},
		{name: "question mark", url: "postgres://u:se?cr3t@db.example/app", password: "se?cr3t", keep: []string{"db.example/app"}},
		{name: "hash", url: "postgres://u:se#cr3t@db.example/app", password: "se#cr3t", keep: []string{"db.example/app"}},
		{name: "space", url: "postgres://u:se cr3t@db.example/app", password: "se cr3t", keep: []string{"db.example/app"}},
		{name: "at sign and space", url: "postgres://u:p@ss w0rd@db.example/app", password: "ss w0rd", keep: []string{"db.example/app"}},
		{name: "IPv6 host", url: "postgres://u:Hunter2xyz@[::1]:5432/app", password: "Hunter2xyz", want: "postgres://u:REDACTED@[::1]:5432/app"},
		{name: "password query parameter", url: "postgres://u@db.example/app?password=Hunter2xyz&sslmode=disable", password: "Hunter2xyz", keep: []string{"db.example/app", "sslmode=disable"}},
		{name: "no scheme", url: "u:Hunter2xyz@db.example/app", password: "Hunter2xyz"},
		{name: "bad escape in the query", url: "postgres://h/db?sslmode=disable&password=Hunter2%zz", password: "Hunter2"},
		{name: "hash in a password parameter", url: "postgres://h/db?password=Hunter2#xyz", password: "xyz"},
		{name: "keyword/value DSN", url: "host=db.example user=u password=Hunter2xyz dbname=app", password: "Hunter2xyz"},
		{name: "no password", url: "postgres://u@db.example/app", want: "postgres://u@db.example/app"},
		{name: "no user", url: "postgres://db.example:5432/app?sslmode=disable", want: "postgres://db.example:5432/app?sslmode=disable"},
		{name: "sqlite", url: "sqlite://data/cloacina.db", want: "sqlite://data/cloacina.db"},
		{name: "sqlite absolute", url: "sqlite:///var/lib/cloacina.db", want: "sqlite:///var/lib/cloacina.db"},
		{name: "empty", url: "", want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := URL(tc.url)
			if tc.password != "" && strings.Contains(got, tc.password) {
				t.Errorf("URL(…) = %q still shows the password", got)
			}
			if tc.want != "" && got != tc.want || tc.url == "" && got != "" {
				t.Errorf("URL = %q, want %q", got, tc.want)
			}
			for _, k := range tc.keep {
				if !strings.Contains(got, k) {
					t.Errorf("URL = %q, want it to keep %q", got, k)
				}
			}
			if again := URL(got); again != got {
				t.Errorf("URL is not idempotent: %q then %q", got, again)
			}
		})
	}
}

// TestCredentialURL: a connection string holding a known password loses
// it, also where URL cannot parse the string, and keeps its host.
func TestCredentialURL(t *testing.T) {
	const pw = `Sekr1t'/@:%pw`
	for _, cs := range []string{
		"postgres://tenant_user:Sekr1t%27%2F%40%3A%25pw@db.example:5432/app?sslmode=require",
		// Not a parsable URL: the password itself is removed all the same.
		"postgres://tenant_user:" + pw + "@db.example/app",
		"host=db.example user=tenant_user password=" + pw,
	} {
		got := CredentialURL(cs, pw)
		if strings.Contains(got, "Sekr1t") {
			t.Errorf("CredentialURL(%s) = %q shows the password", Secret(cs, pw), got)
		}
		if !strings.Contains(got, "db.example") {
			t.Errorf("CredentialURL(%s) = %q lost the host", Secret(cs, pw), got)
		}
	}
}

// TestErrorOnlyWherePasswordsStand: a password is removed where it stands
// as a password (a URL's user information, a password parameter, a SQL
// password literal), and a role name or word that merely equals it is
// left alone.
func TestErrorOnlyWherePasswordsStand(t *testing.T) {
	const pw = "appuser"
	for _, tt := range []struct{ in, want string }{
		{`tenant: role "appuser" is not a tenant role of database "db"`, `tenant: role "appuser" is not a tenant role of database "db"`},
		{`connecting to postgres://appuser:appuser@h/db: boom`, `connecting to postgres://appuser:REDACTED@h/db: boom`},
		{`dsn host=h user=appuser password=appuser sslmode=disable`, `dsn host=h user=appuser password=REDACTED sslmode=disable`},
		{`dsn host=h password='appuser' user=appuser`, `dsn host=h password='REDACTED' user=appuser`},
		{`url postgres://h/db?user=appuser&password=appuser`, `url postgres://h/db?user=appuser&password=REDACTED`},
		{`ALTER ROLE appuser PASSWORD 'appuser'`, `ALTER ROLE appuser PASSWORD 'REDACTED'`},
	} {
		err := Error(errors.New(tt.in), pw)
		if err.Error() != tt.want {
			t.Errorf("Error(%q) = %q; want %q", tt.in, err, tt.want)
		}
		if got := Password(tt.in, pw); got != tt.want {
			t.Errorf("Password(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
	// A verifier is never a name: it goes wherever it is.
	v := "SCRAM-SHA-256$4096:c2FsdA==$a2V5:a2V5"
	if err := Error(fmt.Errorf("setting %s failed", v), v); strings.Contains(err.Error(), "SCRAM") {
		t.Errorf("the verifier survived: %v", err)
	}
}

func TestErrorEscapedPassword(t *testing.T) {
	const pw = `p@ss w'rd/x`
	base := errors.New("boom")
	err := Error(fmt.Errorf("connecting to postgres://u:%s@h/db: %w", "p%40ss%20w%27rd%2Fx", base), pw)
	if strings.Contains(err.Error(), "ss") || !errors.Is(err, base) {
		t.Errorf("Error = %q (is base: %v); want the escaped password gone and the cause kept", err, errors.Is(err, base))
	}
	if err := Error(base, pw); err != base {
		t.Errorf("Error changed an error without the password")
	}
	if Error(nil, pw) != nil {
		t.Error("Error(nil) is not nil")
	}
}

func TestErrorEverywhere(t *testing.T) {
	cause := errors.New("boom")
	err := ErrorEverywhere(fmt.Errorf("connecting to postgres://u:hunter2@h/db (hunter2): %w", cause), "hunter2")
	if strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), Marker) {
		t.Errorf("redacted error = %q", err)
	}
	if !errors.Is(err, cause) {
		t.Error("redacted error does not wrap its cause")
	}
	if ErrorEverywhere(nil, "x") != nil {
		t.Error("ErrorEverywhere(nil) != nil")
	}
	if err := ErrorEverywhere(cause, ""); err != cause {
		t.Errorf("ErrorEverywhere with an empty secret changed the error to %v", err)
	}
}

// TestSecretForms: Secret removes a secret plain, URL-escaped and with its
// single quotes doubled, wherever it stands.
func TestSecretForms(t *testing.T) {
	const pw = `a b'c/d@e`
	for _, in := range []string{
		pw,
		"postgres://u:a%20b%27c%2Fd%40e@h/db",
		"?password=a+b%27c%2Fd%40e",
		"/a%20b%27c%2Fd@e",
		"PASSWORD 'a b''c/d@e'",
		"role a b'c/d@e",
	} {
		if got := Secret(in, pw); strings.Contains(got, "b'c") || strings.Contains(got, "c%2Fd") || strings.Contains(got, "b''c") || !strings.Contains(got, Marker) {
			t.Errorf("Secret(%q) = %q", in, got)
		}
	}
	if got := Secret("x", ""); got != "x" {
		t.Errorf("Secret with an empty secret = %q", got)
	}
}
