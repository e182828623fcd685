// Package apikey keeps the API keys of the cloacina HTTP server.
//
// A key looks like ck_<id>_<secret>: the id (16 hex digits) is public and
// names the key in listings; the secret is 32 random bytes, base64url
// encoded. Only the SHA-256 hash of the whole key is stored. Keys are 256-bit
// random values, so a fast hash is enough: no password-hashing function is
// needed to resist guessing.
//
// An admin key (TenantID "") may use every route; a tenant's write key its
// tenant's routes; a tenant's read key its tenant's GET routes.
package apikey

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Role says what a key may do.
type Role string

// Roles.
const (
	// RoleAdmin may use every route. Admin keys belong to no tenant.
	RoleAdmin Role = "admin"
	// RoleWrite may use its tenant's routes.
	RoleWrite Role = "write"
	// RoleRead may use its tenant's GET routes.
	RoleRead Role = "read"
)

// Valid reports whether r is one of the defined roles.
func (r Role) Valid() bool { return r == RoleAdmin || r == RoleWrite || r == RoleRead }

// Errors of a [Store]. Test for them with errors.Is.
var (
	// ErrNotFound: no such key (of that tenant).
	ErrNotFound = errors.New("apikey: key not found")
	// ErrInvalidKey: a presented key is malformed, unknown or wrong.
	ErrInvalidKey = errors.New("apikey: invalid key")
	// ErrInvalidRole: the role is unknown, or does not fit the tenant (an
	// admin key has no tenant, a read or write key has one).
	ErrInvalidRole = errors.New("apikey: invalid role")
	// ErrInvalidName: a key's name is empty, longer than MaxNameLength
	// bytes, not UTF-8, or holds a control or format character (such as
	// U+202E, which reverses how the text after it is shown) or a line
	// or paragraph separator. The error is a *NameError.
	ErrInvalidName = errors.New("apikey: invalid key name")
	// ErrInvalidTenant: a tenant id is not a valid tenant id (see
	// tenant.ValidateID; "" is valid only for admin keys).
	ErrInvalidTenant = errors.New("apikey: invalid tenant id")
)

// MaxNameLength is the longest key name, in bytes.
const MaxNameLength = 128

// Key describes a stored key. It holds no secret.
type Key struct {
	ID string
	// TenantID is "" for admin keys.
	TenantID   string
	Name       string
	Role       Role
	CreatedAt  time.Time
	LastUsedAt time.Time // zero until first used
}

// String describes the key (it holds no secret).
func (k Key) String() string {
	return fmt.Sprintf("apikey.Key{ID: %q, TenantID: %q, Name: %q, Role: %q}", k.ID, k.TenantID, k.Name, k.Role)
}

// LogValue logs the key's id, tenant and role.
func (k Key) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", k.ID), slog.String("tenant", k.TenantID), slog.String("role", string(k.Role)))
}

// Store keeps API keys. Implementations are safe for concurrent use.
type Store interface {
	// Create creates a key and returns it whole ("ck_<id>_<secret>"),
	// which is shown only this once, with its description. tenantID is ""
	// for an admin key.
	Create(ctx context.Context, tenantID, name string, role Role) (secret string, k Key, err error)
	// Verify returns the key presented, or an error wrapping ErrInvalidKey
	// when it is malformed, unknown or wrong. It compares hashes in
	// constant time and records the use (LastUsedAt) at most about once a
	// minute per key.
	Verify(ctx context.Context, presented string) (Key, error)
	// List returns the keys of a tenant ("" for the admin keys), oldest
	// first.
	List(ctx context.Context, tenantID string) ([]Key, error)
	// Delete deletes a tenant's key; ErrNotFound when the tenant has no
	// such key.
	Delete(ctx context.Context, tenantID, keyID string) error
	// DeleteTenant deletes every key of a tenant and returns how many.
	DeleteTenant(ctx context.Context, tenantID string) (int, error)
	// Close releases the store.
	Close() error
}

// EnsureAdminKey creates an admin key if the store holds none, and returns
// it with created true: the caller shows it once. When an admin key exists
// it returns "", false. With an [*SQLStore] the check and the creation are
// one transaction, so concurrent first starts create one key.
func EnsureAdminKey(ctx context.Context, s Store) (key string, created bool, err error) {
	if es, ok := s.(interface {
		ensureAdmin(ctx context.Context, name string) (string, bool, error)
	}); ok {
		return es.ensureAdmin(ctx, bootstrapName)
	}
	keys, err := s.List(ctx, "")
	if err != nil {
		return "", false, err
	}
	if len(keys) > 0 {
		return "", false, nil
	}
	key, _, err = s.Create(ctx, "", bootstrapName, RoleAdmin)
	if err != nil {
		return "", false, err
	}
	return key, true, nil
}

// bootstrapName names the admin key EnsureAdminKey creates.
const bootstrapName = "bootstrap admin"

// Key format.
const (
	keyPrefix    = "ck_"
	idBytes      = 8
	idLen        = 2 * idBytes
	secretBytes  = 32
	secretLen    = 43 // base64.RawURLEncoding of 32 bytes
	presentedLen = len(keyPrefix) + idLen + 1 + secretLen
)

// newKey returns a fresh key id and the whole key.
func newKey() (id, key string, err error) {
	b := make([]byte, idBytes+secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("apikey: random key: %w", err)
	}
	id = hex.EncodeToString(b[:idBytes])
	return id, keyPrefix + id + "_" + base64.RawURLEncoding.EncodeToString(b[idBytes:]), nil
}

// ParseID returns the id of a presented key, checking its form (not its
// secret): ok is false for anything that cannot be a key.
func ParseID(presented string) (id string, ok bool) {
	if len(presented) != presentedLen || !strings.HasPrefix(presented, keyPrefix) {
		return "", false
	}
	id = presented[len(keyPrefix) : len(keyPrefix)+idLen]
	rest := presented[len(keyPrefix)+idLen:]
	if rest[0] != '_' {
		return "", false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", false
		}
	}
	if b, err := base64.RawURLEncoding.Strict().DecodeString(rest[1:]); err != nil || len(b) != secretBytes {
		return "", false
	}
	return id, true
}

// hashKey is what is stored of a key.
func hashKey(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

// NameError says why a key name is refused. errors.Is(err,
// ErrInvalidName) holds for it.
type NameError struct {
	// Reason says what is wrong, in words.
	Reason string
	// Rune is the refused character, and Offset its byte offset in the
	// name (-1 when the reason is not one character).
	Rune   rune
	Offset int
}

// Error describes the problem; a refused character is shown as U+XXXX,
// never as itself.
func (e *NameError) Error() string { return ErrInvalidName.Error() + ": " + e.Reason }

// Unwrap returns ErrInvalidName.
func (e *NameError) Unwrap() error { return ErrInvalidName }

// checkName checks a key's name.
func checkName(name string) error {
	switch {
	case name == "":
		return &NameError{Reason: "it is empty", Offset: -1}
	case len(name) > MaxNameLength:
		return &NameError{Reason: fmt.Sprintf("it is %d bytes long, the limit is %d", len(name), MaxNameLength), Offset: -1}
	case !utf8.ValidString(name):
		return &NameError{Reason: "it is not UTF-8", Offset: -1}
	}
	for i, r := range name {
		if kind := refusedRune(r); kind != "" {
			return &NameError{Reason: fmt.Sprintf("it holds %s U+%04X at byte %d", kind, r, i), Rune: r, Offset: i}
		}
	}
	return nil
}

// refusedRune names the kind of a character that a key name may not hold
// (one that is invisible, or changes how the text around it is shown),
// or returns "".
func refusedRune(r rune) string {
	switch {
	case unicode.IsControl(r): // Cc
		return "the control character"
	case unicode.Is(unicode.Cf, r): // bidi overrides and isolates, zero-width characters, BOM...
		return "the format character"
	case unicode.In(r, unicode.Zl, unicode.Zp):
		return "the separator"
	case unicode.Is(unicode.Co, r) || unicode.Is(unicode.Noncharacter_Code_Point, r):
		return "the private or non-character"
	}
	return ""
}

// checkRole checks that role fits tenantID.
func checkRole(tenantID string, role Role) error {
	switch {
	case !role.Valid():
		return fmt.Errorf("%w: %q (want %q, %q or %q)", ErrInvalidRole, role, RoleRead, RoleWrite, RoleAdmin)
	case role == RoleAdmin && tenantID != "":
		return fmt.Errorf("%w: an admin key belongs to no tenant", ErrInvalidRole)
	case role != RoleAdmin && tenantID == "":
		return fmt.Errorf("%w: a %s key belongs to a tenant", ErrInvalidRole, role)
	}
	return nil
}
