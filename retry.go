package cloacina

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"strings"
	"time"
)

// Backoff names how the delay between attempts grows.
type Backoff string

// Backoff kinds. With initial delay d, the delay before retry n (n = 1 for
// the first retry) is d for fixed, n*d for linear and d*2^(n-1) for
// exponential, capped at the policy's MaxDelay.
const (
	BackoffFixed       Backoff = "fixed"
	BackoffLinear      Backoff = "linear"
	BackoffExponential Backoff = "exponential"
)

// ParseBackoff returns the Backoff named s ("fixed", "linear" or
// "exponential"). Any other name is an error wrapping [ErrInvalidOption];
// nothing falls back to a default silently.
func ParseBackoff(s string) (Backoff, error) {
	switch b := Backoff(strings.ToLower(strings.TrimSpace(s))); b {
	case BackoffFixed, BackoffLinear, BackoffExponential:
		return b, nil
	}
	return "", fmt.Errorf("%w: unknown backoff %q (want fixed, linear or exponential)", ErrInvalidOption, s)
}

// RetryCondition decides which errors are retried. Use [RetryAllErrors],
// [RetryNever], [RetryTransient], [RetryOnMessages] or [RetryIf]. The zero
// value retries all errors.
type RetryCondition struct {
	name  string
	match func(error) bool
}

// String names the condition.
func (c RetryCondition) String() string {
	if c.name == "" {
		return "all"
	}
	return c.name
}

// Retries reports whether err should be retried under c.
func (c RetryCondition) Retries(err error) bool {
	if err == nil {
		return false
	}
	var pe *permanentError
	if errors.As(err, &pe) {
		return false
	}
	if c.match == nil {
		return true
	}
	return c.match(err)
}

// RetryAllErrors retries every error (except those wrapped with [Permanent]).
func RetryAllErrors() RetryCondition { return RetryCondition{} }

// RetryNever retries nothing.
func RetryNever() RetryCondition {
	return RetryCondition{name: "never", match: func(error) bool { return false }}
}

// RetryTransient retries only transient errors (see [IsTransient]).
func RetryTransient() RetryCondition {
	return RetryCondition{name: "transient", match: IsTransient}
}

// RetryOnMessages retries errors whose message contains any of the
// patterns (plain substrings).
func RetryOnMessages(patterns ...string) RetryCondition {
	ps := append([]string(nil), patterns...)
	return RetryCondition{
		name: fmt.Sprintf("messages%q", ps),
		match: func(err error) bool {
			msg := err.Error()
			for _, p := range ps {
				if strings.Contains(msg, p) {
					return true
				}
			}
			return false
		},
	}
}

// RetryIf retries the errors for which pred returns true. name identifies
// the predicate in the workflow's version hash and in descriptions. A nil
// pred retries nothing.
func RetryIf(name string, pred func(error) bool) RetryCondition {
	if pred == nil {
		pred = func(error) bool { return false }
	}
	return RetryCondition{name: "if:" + name, match: pred}
}

// RetryPolicy says how often and how soon a failed task is tried again. A
// retry is durable: the task goes back to Ready with the time of its next
// attempt stored in the database, so it survives a restart.
//
// Zero fields take defaults: MaxAttempts 3, Backoff exponential,
// InitialDelay 1s, MaxDelay 5m (or InitialDelay, if that is longer), no
// jitter, all errors retried.
type RetryPolicy struct {
	// MaxAttempts is the total number of executions, the first included.
	// 1 means no retries.
	MaxAttempts int
	// Backoff is how the delay grows between attempts.
	Backoff Backoff
	// InitialDelay is the delay before the first retry.
	InitialDelay time.Duration
	// MaxDelay caps every delay.
	MaxDelay time.Duration
	// Jitter in [0, 1] spreads each delay uniformly by up to that fraction
	// either way (0.1 means ±10%).
	Jitter float64
	// RetryOn selects the errors that are retried.
	RetryOn RetryCondition
}

// NoRetry is the policy of a task without [Retry]: one attempt.
func NoRetry() RetryPolicy { return RetryPolicy{MaxAttempts: 1}.withDefaults() }

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts == 0 {
		p.MaxAttempts = 3
	}
	if p.Backoff == "" {
		p.Backoff = BackoffExponential
	}
	if p.InitialDelay == 0 {
		p.InitialDelay = time.Second
	}
	if p.MaxDelay == 0 {
		// An explicit InitialDelay above the default cap is not silently
		// lowered to it.
		p.MaxDelay = max(5*time.Minute, p.InitialDelay)
	}
	return p
}

func (p RetryPolicy) validate() error {
	var errs []error
	if p.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("MaxAttempts %d is negative", p.MaxAttempts))
	}
	if p.Backoff != "" {
		if _, err := ParseBackoff(string(p.Backoff)); err != nil || Backoff(strings.ToLower(string(p.Backoff))) != p.Backoff {
			errs = append(errs, fmt.Errorf("unknown backoff %q (want fixed, linear or exponential)", p.Backoff))
		}
	}
	if p.InitialDelay < 0 || p.MaxDelay < 0 {
		errs = append(errs, errors.New("delays must not be negative"))
	}
	if p.MaxDelay > 0 && p.InitialDelay > p.MaxDelay {
		errs = append(errs, fmt.Errorf("InitialDelay %v exceeds MaxDelay %v", p.InitialDelay, p.MaxDelay))
	}
	if p.Jitter < 0 || p.Jitter > 1 || math.IsNaN(p.Jitter) {
		errs = append(errs, fmt.Errorf("jitter %v is outside [0, 1]", p.Jitter))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidRetryPolicy, errors.Join(errs...))
}

// Delay returns the delay before retry n (n = 1 for the first retry),
// without jitter.
func (p RetryPolicy) Delay(n int) time.Duration {
	p = p.withDefaults()
	if n < 1 {
		n = 1
	}
	var d float64
	base := float64(p.InitialDelay)
	switch p.Backoff {
	case BackoffFixed:
		d = base
	case BackoffLinear:
		d = base * float64(n)
	default:
		d = base * math.Pow(2, float64(n-1))
	}
	if d > float64(p.MaxDelay) || math.IsInf(d, 0) {
		return p.MaxDelay
	}
	return time.Duration(d)
}

// jittered applies the policy's jitter to d.
func (p RetryPolicy) jittered(d time.Duration) time.Duration {
	if p.Jitter <= 0 || d <= 0 {
		return d
	}
	f := 1 + p.Jitter*(2*rand.Float64()-1)
	return time.Duration(float64(d) * f)
}

func (p RetryPolicy) fingerprint() string {
	p = p.withDefaults()
	return fmt.Sprintf("max=%d backoff=%s initial=%d max=%d jitter=%g on=%s",
		p.MaxAttempts, p.Backoff, p.InitialDelay, p.MaxDelay, p.Jitter, p.RetryOn)
}

type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

// Transient marks err as transient, so that [RetryTransient] retries it.
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return &transientError{err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as permanent: the task fails at once, whatever its
// retry policy.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsTransient reports whether err is transient: marked with [Transient], a
// task timeout (context.DeadlineExceeded), or a network timeout.
func IsTransient(err error) bool {
	var te *transientError
	if errors.As(err, &te) {
		return true
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// PanicError is the error of a task attempt that panicked.
type PanicError struct {
	Value any    // the value passed to panic
	Stack string // the goroutine's stack at the panic
}

func (e *PanicError) Error() string { return fmt.Sprintf("task panicked: %v", e.Value) }
