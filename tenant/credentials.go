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
	"strings"

	"github.com/cloacina-go/cloacina/internal/redact"
)

// ErrInvalidPassword is returned for a password that [Admin] cannot set.
// The error never contains the password.
var ErrInvalidPassword = errors.New("tenant: invalid password")

// MaxPasswordLength is the longest password [Admin] sets, in bytes.
const MaxPasswordLength = 512

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
		pw = redact.Marker
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
		c.Username, redact.Marker, c.Schema, redact.CredentialURL(c.ConnectionString, c.Password))
}

// GoString is String, so that %#v hides the password too.
func (c TenantCredentials) GoString() string { return "tenant." + c.String() }

// LogValue logs c without its password.
func (c TenantCredentials) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("username", c.Username),
		slog.String("password", redact.Marker),
		slog.String("schema", c.Schema),
		slog.String("connection_string", redact.CredentialURL(c.ConnectionString, c.Password)))
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
