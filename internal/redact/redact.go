// Package redact removes secrets from text meant for logs and errors: the
// password of a database URL or connection string, a known password where
// it stands as a password, and PostgreSQL SCRAM verifiers.
//
// It is the one place that knows what a secret looks like in a URL, a
// key=value connection string or SQL text: the store, the tenant managers
// and their Admin, and the test clusters of internal/pgtest call it.
package redact

import (
	"net/url"
	"regexp"
	"strings"
)

// Marker stands for a removed secret.
const Marker = "REDACTED"

// scramPrefix starts every SCRAM-SHA-256 verifier.
const scramPrefix = "SCRAM-SHA-256$"

var secretKV = regexp.MustCompile(`(?i)((?:ssl)?password\s*=\s*)('[^']*'|\S+)`)

// URL hides the secrets in a database URL or connection string: the
// password of user:password@, every query parameter whose name contains
// "password", and password= in key/value connection strings. What it
// cannot parse it redacts generously: an '@' outside the user part means a
// password with an unescaped character, and everything before it goes.
func URL(rawURL string) string {
	scheme, rest, hasScheme := strings.Cut(rawURL, "://")
	if !hasScheme {
		if strings.Contains(rawURL, "=") {
			return secretKV.ReplaceAllString(rawURL, "${1}"+Marker)
		}
		if strings.Contains(rawURL, "@") {
			return Marker
		}
		return rawURL
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" || (u.User == nil && strings.Contains(rawURL, "@")) {
		if at := strings.LastIndexByte(rest, '@'); at >= 0 {
			rest = Marker + rest[at:]
		}
		if q := strings.IndexAny(rest, "?#"); q >= 0 {
			rest = rest[:q] + "?" + Marker
		}
		return scheme + "://" + rest
	}
	changed := false
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), Marker)
			changed = true
		}
	}
	if u.RawQuery != "" {
		// A query that does not decode (a bad %-escape) may still hold a
		// password: hide it whole.
		if q, err := url.ParseQuery(u.RawQuery); err != nil {
			u.RawQuery = Marker
			changed = true
		} else {
			qc := false
			for k := range q {
				if strings.Contains(strings.ToLower(k), "password") {
					q[k] = []string{Marker}
					qc = true
				}
			}
			if qc {
				u.RawQuery = q.Encode()
				changed = true
			}
		}
	}
	if u.Fragment != "" {
		// Database URLs have no fragment: it is a password's stray '#'.
		u.Fragment, u.RawFragment = Marker, ""
		changed = true
	}
	if !changed {
		return rawURL
	}
	return u.String()
}

// CredentialURL redacts a connection string with [URL] and, should
// password survive that (a string URL could not parse), removes the
// password itself where it stands as one (see [Password]).
func CredentialURL(raw, password string) string {
	return Password(URL(raw), password)
}

// Secret replaces secret in s wherever it appears, in every form a URL or
// SQL text may hold it (see [Password] for the forms). An empty secret
// changes nothing.
func Secret(s, secret string) string {
	if secret == "" {
		return s
	}
	for _, form := range secretForms(secret) {
		s = strings.ReplaceAll(s, form, Marker)
	}
	return s
}

// Password replaces password in s where it stands as a password: the
// password of a URL's user information (":" before it, "@" after it), the
// value of a password parameter (password=, in a URL query or a key=value
// connection string, quoted or not) and a SQL string after the PASSWORD
// keyword. Elsewhere, such as in a role name that happens to equal the
// password, s is left as it is. It knows the password plain, escaped as
// URL user information, as a query value or a path, and with its single
// quotes doubled as in a SQL string. An empty password changes nothing.
func Password(s, password string) string {
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
				b.WriteString(Marker)
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

// Error returns err with every secret removed from its message where it
// stands as a password (see [Password]): a name or word that merely
// equals a password is left alone. A SCRAM verifier ("SCRAM-SHA-256$...")
// is removed wherever it appears. errors.Is and errors.As still see the
// original error; an error whose message holds no secret is returned as
// it is, and nil stays nil.
func Error(err error, secrets ...string) error {
	return rewrite(err, func(msg string) string {
		for _, s := range secrets {
			if strings.HasPrefix(s, scramPrefix) {
				msg = Secret(msg, s)
			} else {
				msg = Password(msg, s)
			}
		}
		return msg
	})
}

// ErrorEverywhere is [Error] for secrets that can stand for nothing else,
// such as random passwords: each is removed wherever it appears in err's
// message (see [Secret]), not only where it stands as a password.
func ErrorEverywhere(err error, secrets ...string) error {
	return rewrite(err, func(msg string) string {
		for _, s := range secrets {
			msg = Secret(msg, s)
		}
		return msg
	})
}

// rewrite returns err with its message passed through f, or err itself
// when f changes nothing.
func rewrite(err error, f func(string) string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	redacted := f(msg)
	if redacted == msg {
		return err
	}
	return &redactedError{msg: redacted, cause: err}
}

// redactedError is an error whose message has secrets removed; it wraps
// the original.
type redactedError struct {
	msg   string
	cause error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.cause }
