package tenant

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/cloacina-go/cloacina"
)

// ErrInvalidPassword is returned for a password that [Admin] cannot set.
// The error never contains the password.
var ErrInvalidPassword = errors.New("tenant: invalid password")

// MaxPasswordLength is the longest password [Admin] sets, in bytes.
const MaxPasswordLength = 512

// redactedPassword stands for a password in printed values.
const redactedPassword = "REDACTED"

// TenantConfig describes a tenant for [Admin.CreateTenant].
type TenantConfig struct {
	// Schema is the tenant's PostgreSQL schema (a tenant id: see
	// [ValidateID]).
	Schema string
	// Username is the tenant's login role (a tenant id too).
	Username string
	// Password is the role's password; empty means "generate one" (see
	// [GeneratePassword]). A given password must be 1 to
	// [MaxPasswordLength] printable ASCII characters.
	Password string
}

// String describes c without its password.
func (c TenantConfig) String() string {
	pw := ""
	if c.Password != "" {
		pw = redactedPassword
	}
	return fmt.Sprintf("TenantConfig{Schema: %q, Username: %q, Password: %q}", c.Schema, c.Username, pw)
}

// GoString is String, so that %#v hides the password too.
func (c TenantConfig) GoString() string { return "tenant." + c.String() }

// LogValue logs c without its password.
func (c TenantConfig) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("schema", c.Schema),
		slog.String("username", c.Username),
		slog.Bool("password_set", c.Password != ""))
}

// TenantCredentials are what a tenant needs to run its workflows: its role,
// password and schema, and a connection string for
// [cloacina.NewRunnerWithSchema].
//
// Printing them (fmt's %v, %+v, %#v, %s) or logging them with log/slog
// hides the password, in the Password field and in ConnectionString; read
// the fields to store them, e.g. in a secrets manager.
type TenantCredentials struct {
	Username string
	Password string
	Schema   string
	// ConnectionString is the admin URL with the tenant's user and
	// password (see [Admin.CreateTenant]).
	ConnectionString string
}

// String describes c without its password.
func (c TenantCredentials) String() string {
	return fmt.Sprintf("TenantCredentials{Username: %q, Password: %q, Schema: %q, ConnectionString: %q}",
		c.Username, redactedPassword, c.Schema, redactCredentialURL(c.ConnectionString, c.Password))
}

// GoString is String, so that %#v hides the password too.
func (c TenantCredentials) GoString() string { return "tenant." + c.String() }

// LogValue logs c without its password.
func (c TenantCredentials) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("username", c.Username),
		slog.String("password", redactedPassword),
		slog.String("schema", c.Schema),
		slog.String("connection_string", redactCredentialURL(c.ConnectionString, c.Password)))
}

// redactCredentialURL redacts a connection string with
// [cloacina.RedactURL] and, should the password survive that (a string it
// could not parse), removes the password itself, plain or escaped.
func redactCredentialURL(raw, password string) string {
	return redactPasswordText(cloacina.RedactURL(raw), password)
}

// redactSecretText replaces secret in s, in the forms a URL or SQL text may
// hold it.
func redactSecretText(s, secret string) string {
	if secret == "" {
		return s
	}
	for _, form := range secretForms(secret) {
		s = strings.ReplaceAll(s, form, redactedPassword)
	}
	return s
}

// scramPrefix starts every SCRAM-SHA-256 verifier.
const scramPrefix = "SCRAM-SHA-256$"

// redactPasswordText replaces password in s where it stands as a
// password, in any of the forms redactSecretText knows: the password of a
// URL's user information (":" before it, "@" after it), the value of a
// password parameter (password=, in a URL query or a key=value connection
// string, quoted or not) and a SQL string after the PASSWORD keyword.
// Elsewhere, such as in a role name that happens to equal the password, s
// is left as it is.
func redactPasswordText(s, password string) string {
	if password == "" {
		return s
	}
	for _, form := range secretForms(password) {
		var b strings.Builder
		rest := s
		for {
			i := strings.Index(rest, form)
			if i < 0 {
				b.WriteString(rest)
				break
			}
			before, after := s[:len(s)-len(rest)+i], rest[i+len(form):]
			b.WriteString(rest[:i])
			if passwordSlot(before, after) {
				b.WriteString(redactedPassword)
			} else {
				b.WriteString(form)
			}
			rest = after
		}
		s = b.String()
	}
	return s
}

// passwordSlot reports whether text between before and after stands as a
// password.
func passwordSlot(before, after string) bool {
	lower := strings.ToLower(before)
	ends := func(suffixes ...string) bool {
		for _, x := range suffixes {
			if strings.HasSuffix(lower, x) {
				return true
			}
		}
		return false
	}
	endsValue := after == "" || strings.ContainsRune(" \t\n&'\";)`,", rune(after[0]))
	switch {
	case strings.HasSuffix(before, ":") && strings.HasPrefix(after, "@"):
		return true // scheme://user:PASSWORD@host
	case ends("password=", "password = ", "password='", "password = '", `password="`, "password:", "password: "):
		return endsValue
	case ends("password '", "password e'"):
		return strings.HasPrefix(after, "'")
	}
	return false
}

// secretForms returns the forms a URL or SQL text may hold secret in.
func secretForms(secret string) []string {
	return []string{
		secret,
		strings.TrimPrefix(url.UserPassword("", secret).String(), ":"),
		url.QueryEscape(secret),
		url.PathEscape(secret),
		strings.ReplaceAll(secret, "'", "''"),
	}
}

// generatedPasswordBytes is the entropy of a generated password: 256 bits.
const generatedPasswordBytes = 32

// GeneratePassword returns a new random password: 256 bits from
// crypto/rand in unpadded base64url (43 characters of A-Z, a-z, 0-9, '-'
// and '_'), safe in URLs, connection strings and shells.
func GeneratePassword() (string, error) {
	b := make([]byte, generatedPasswordBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("tenant: generating a password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// checkPassword refuses a password Admin cannot set. Only printable ASCII
// is accepted: SCRAM clients normalize passwords with SASLprep, which
// leaves printable ASCII unchanged, so the verifier Admin computes matches
// what every client (libpq, pgx, JDBC...) derives. Control characters
// (NUL in particular) are refused as no client can send them reliably.
// The error never contains the password.
func checkPassword(password string) error {
	if password == "" {
		return fmt.Errorf("%w: it is empty", ErrInvalidPassword)
	}
	if len(password) > MaxPasswordLength {
		return fmt.Errorf("%w: it is %d bytes long, the limit is %d", ErrInvalidPassword, len(password), MaxPasswordLength)
	}
	for i := 0; i < len(password); i++ {
		if c := password[i]; c < 0x20 || c > 0x7e {
			return fmt.Errorf("%w: the byte at offset %d is not printable ASCII", ErrInvalidPassword, i)
		}
	}
	return nil
}

// SCRAM-SHA-256 parameters of the verifiers Admin computes: PostgreSQL's
// defaults (scram_iterations, SCRAM_DEFAULT_SALT_LEN).
const (
	scramIterations = 4096
	scramSaltLen    = 16
)

// newScramVerifier returns a PostgreSQL SCRAM-SHA-256 password verifier of
// password with a fresh random salt.
func newScramVerifier(password string) (string, error) {
	salt := make([]byte, scramSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("tenant: generating a salt: %w", err)
	}
	return scramVerifier(password, salt, scramIterations)
}

// scramVerifier computes the verifier PostgreSQL stores for a password
// (RFC 5802/7677, as in pg_authid.rolpassword):
//
//	SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
//
// with base64 (standard, padded) salt and keys. password must already be
// SASLprep-normalized; checkPassword ensures it is.
func scramVerifier(password string, salt []byte, iterations int) (string, error) {
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return "", fmt.Errorf("tenant: deriving the password verifier: %w", err)
	}
	clientKey := hmacSHA256(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	serverKey := hmacSHA256(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s",
		iterations, b64(salt), b64(storedKey[:]), b64(serverKey)), nil
}

func hmacSHA256(key []byte, msg string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}

// sqlLiteral quotes s as a PostgreSQL string constant, as quote_literal
// does: single quotes are doubled and, when s holds a backslash, it is
// doubled and the E'...' form is used, so the result means s whatever
// standard_conforming_strings is set to.
func sqlLiteral(s string) string {
	q := "'" + strings.ReplaceAll(s, "'", "''") + "'"
	if strings.Contains(s, `\`) {
		q = "E" + strings.ReplaceAll(q, `\`, `\\`)
	}
	return q
}
