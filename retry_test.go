package cloacina

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseBackoff(t *testing.T) {
	tests := []struct {
		in   string
		want Backoff
	}{
		{"fixed", BackoffFixed},
		{"linear", BackoffLinear},
		{"exponential", BackoffExponential},
		{"Fixed", BackoffFixed},
		{"LINEAR", BackoffLinear},
		{"ExPoNeNtIaL", BackoffExponential},
		{" exponential\n", BackoffExponential},
	}
	for _, tt := range tests {
		got, err := ParseBackoff(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseBackoff(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"", "exponetial", "exp", "none", "fixed-rate", "fixedlinear"} {
		got, err := ParseBackoff(in)
		if !errors.Is(err, ErrInvalidOption) {
			t.Errorf("ParseBackoff(%q) err = %v, want ErrInvalidOption", in, err)
		}
		if got != "" {
			t.Errorf("ParseBackoff(%q) = %q with an error, want \"\"", in, got)
		}
		if err != nil && !strings.Contains(err.Error(), fmt.Sprintf("%q", in)) {
			t.Errorf("ParseBackoff(%q) error %q does not quote the input", in, err)
		}
	}
}

func TestRetryPolicyDefaults(t *testing.T) {
	got := RetryPolicy{}.withDefaults()
	if got.MaxAttempts != 3 || got.Backoff != BackoffExponential || got.InitialDelay != time.Second ||
		got.MaxDelay != 5*time.Minute || got.Jitter != 0 || got.RetryOn.String() != "all" {
		t.Fatalf("zero policy defaults = %+v", got)
	}
	// Set fields are kept.
	p := RetryPolicy{MaxAttempts: 7, Backoff: BackoffFixed, InitialDelay: time.Millisecond, MaxDelay: time.Hour, Jitter: 0.5}
	if d := p.withDefaults(); d.MaxAttempts != 7 || d.Backoff != BackoffFixed || d.InitialDelay != time.Millisecond || d.MaxDelay != time.Hour || d.Jitter != 0.5 {
		t.Fatalf("withDefaults changed set fields: %+v", d)
	}
	nr := NoRetry()
	if nr.MaxAttempts != 1 || nr.Backoff != BackoffExponential || nr.InitialDelay != time.Second {
		t.Fatalf("NoRetry = %+v", nr)
	}
	if (RetryPolicy{}).fingerprint() != (RetryPolicy{MaxAttempts: 3, Backoff: BackoffExponential, InitialDelay: time.Second, MaxDelay: 5 * time.Minute}).fingerprint() {
		t.Fatal("the zero policy and the explicit defaults have different fingerprints")
	}
	if (RetryPolicy{}).fingerprint() == (RetryPolicy{RetryOn: RetryNever()}).fingerprint() {
		t.Fatal("fingerprint ignores RetryOn")
	}
	// The zero policy's delays are the defaults'.
	for n := 1; n <= 3; n++ {
		if got, want := (RetryPolicy{}).Delay(n), time.Second<<(n-1); got != want {
			t.Errorf("zero policy Delay(%d) = %v, want %v", n, got, want)
		}
	}
}

func TestRetryPolicyValidate(t *testing.T) {
	valid := []RetryPolicy{
		{},
		NoRetry(),
		{MaxAttempts: 1},
		{MaxAttempts: 10, Backoff: BackoffLinear, InitialDelay: time.Second, MaxDelay: time.Second},
		{Backoff: BackoffFixed},
		{Jitter: 1},
		{Jitter: 0.25},
		{InitialDelay: time.Hour}, // MaxDelay zero: the default cap rises to 1h
	}
	for _, p := range valid {
		if err := p.validate(); err != nil {
			t.Errorf("validate(%+v) = %v, want nil", p, err)
		}
	}
	invalid := []struct {
		name    string
		p       RetryPolicy
		mention string
	}{
		{"negative attempts", RetryPolicy{MaxAttempts: -1}, "MaxAttempts -1"},
		{"misspelt backoff", RetryPolicy{Backoff: "exponetial"}, `"exponetial"`},
		{"unknown backoff", RetryPolicy{Backoff: "random"}, `"random"`},
		{"jitter 1.5", RetryPolicy{Jitter: 1.5}, "1.5"},
		{"negative jitter", RetryPolicy{Jitter: -0.1}, "-0.1"},
		{"NaN jitter", RetryPolicy{Jitter: math.NaN()}, "NaN"},
		{"negative initial delay", RetryPolicy{InitialDelay: -time.Second}, "negative"},
		{"negative max delay", RetryPolicy{MaxDelay: -time.Second}, "negative"},
		{"initial above max", RetryPolicy{InitialDelay: time.Minute, MaxDelay: time.Second}, "exceeds"},
	}
	for _, tt := range invalid {
		err := tt.p.validate()
		if !errors.Is(err, ErrInvalidRetryPolicy) {
			t.Errorf("%s: validate = %v, want ErrInvalidRetryPolicy", tt.name, err)
			continue
		}
		if !strings.Contains(err.Error(), tt.mention) {
			t.Errorf("%s: error %q does not mention %s", tt.name, err, tt.mention)
		}
	}
	// Every problem is listed.
	err := RetryPolicy{MaxAttempts: -1, Backoff: "x", Jitter: 2}.validate()
	for _, m := range []string{"MaxAttempts", `"x"`, "jitter 2"} {
		if err == nil || !strings.Contains(err.Error(), m) {
			t.Errorf("combined error %v does not mention %s", err, m)
		}
	}
}

func TestRetryPolicyDelay(t *testing.T) {
	s := time.Second
	tests := []struct {
		name string
		p    RetryPolicy
		want []time.Duration // for n = 1..5
	}{
		{"fixed", RetryPolicy{Backoff: BackoffFixed, InitialDelay: s}, []time.Duration{s, s, s, s, s}},
		{"linear", RetryPolicy{Backoff: BackoffLinear, InitialDelay: s}, []time.Duration{s, 2 * s, 3 * s, 4 * s, 5 * s}},
		{"exponential", RetryPolicy{Backoff: BackoffExponential, InitialDelay: s}, []time.Duration{s, 2 * s, 4 * s, 8 * s, 16 * s}},
		{"exponential default", RetryPolicy{}, []time.Duration{s, 2 * s, 4 * s, 8 * s, 16 * s}},
		{"fixed 250ms", RetryPolicy{Backoff: BackoffFixed, InitialDelay: 250 * time.Millisecond},
			[]time.Duration{250 * time.Millisecond, 250 * time.Millisecond, 250 * time.Millisecond, 250 * time.Millisecond, 250 * time.Millisecond}},
		{"linear 100ms", RetryPolicy{Backoff: BackoffLinear, InitialDelay: 100 * time.Millisecond},
			[]time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond, 400 * time.Millisecond, 500 * time.Millisecond}},
		{"exponential 100ms", RetryPolicy{Backoff: BackoffExponential, InitialDelay: 100 * time.Millisecond},
			[]time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond}},
		{"fixed capped", RetryPolicy{Backoff: BackoffFixed, InitialDelay: 3 * s, MaxDelay: 3 * s}, []time.Duration{3 * s, 3 * s, 3 * s, 3 * s, 3 * s}},
		{"linear capped", RetryPolicy{Backoff: BackoffLinear, InitialDelay: s, MaxDelay: 3 * s}, []time.Duration{s, 2 * s, 3 * s, 3 * s, 3 * s}},
		{"exponential capped", RetryPolicy{Backoff: BackoffExponential, InitialDelay: s, MaxDelay: 5 * s}, []time.Duration{s, 2 * s, 4 * s, 5 * s, 5 * s}},
		{"exponential capped by default 5m", RetryPolicy{InitialDelay: time.Minute}, []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 5 * time.Minute, 5 * time.Minute}},
		{"initial delay above the default cap", RetryPolicy{InitialDelay: time.Hour}, []time.Duration{time.Hour, time.Hour, time.Hour, time.Hour, time.Hour}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, want := range tt.want {
				if got := tt.p.Delay(i + 1); got != want {
					t.Errorf("Delay(%d) = %v, want %v", i+1, got, want)
				}
			}
			// n below 1 is treated as the first retry.
			if got := tt.p.Delay(0); got != tt.want[0] {
				t.Errorf("Delay(0) = %v, want %v", got, tt.want[0])
			}
			if got := tt.p.Delay(-3); got != tt.want[0] {
				t.Errorf("Delay(-3) = %v, want %v", got, tt.want[0])
			}
		})
	}

	if got := (RetryPolicy{Backoff: BackoffLinear, InitialDelay: time.Second, MaxDelay: time.Hour}).Delay(64); got != 64*time.Second {
		t.Errorf("linear Delay(64) = %v, want 64s", got)
	}
	if got := (RetryPolicy{InitialDelay: time.Second, MaxDelay: time.Hour}).Delay(64); got != time.Hour {
		t.Errorf("exponential Delay(64) = %v, want the 1h cap", got)
	}
	// Huge n never overflows: the cap holds.
	for _, b := range []Backoff{BackoffFixed, BackoffLinear, BackoffExponential} {
		p := RetryPolicy{Backoff: b, InitialDelay: time.Second, MaxDelay: time.Hour}
		for _, n := range []int{64, 1000, 1 << 20, math.MaxInt32, math.MaxInt} {
			got := p.Delay(n)
			if got <= 0 || got > time.Hour {
				t.Errorf("%s Delay(%d) = %v, want within (0, 1h]", b, n, got)
			}
			if b != BackoffFixed && n >= 1<<20 && got != time.Hour {
				t.Errorf("%s Delay(%d) = %v, want the 1h cap", b, n, got)
			}
		}
	}
}

func TestRetryPolicyJittered(t *testing.T) {
	const d = 10 * time.Second
	for _, jitter := range []float64{0.1, 0.5, 1} {
		p := RetryPolicy{Jitter: jitter}
		lo := time.Duration(float64(d) * (1 - jitter))
		hi := time.Duration(float64(d) * (1 + jitter))
		var below, above int
		minSeen, maxSeen := time.Duration(math.MaxInt64), time.Duration(0)
		for range 5000 {
			got := p.jittered(d)
			if got < lo || got > hi {
				t.Fatalf("jitter %v: jittered(%v) = %v, outside [%v, %v]", jitter, d, got, lo, hi)
			}
			if got < d {
				below++
			} else if got > d {
				above++
			}
			minSeen, maxSeen = min(minSeen, got), max(maxSeen, got)
		}
		// Uniform over ±jitter: both sides are hit, and the spread covers
		// most of the range.
		if below < 1000 || above < 1000 {
			t.Errorf("jitter %v: %d below and %d above %v of 5000; want both near 2500", jitter, below, above, d)
		}
		if spread := float64(maxSeen-minSeen) / float64(hi-lo); spread < 0.9 {
			t.Errorf("jitter %v: samples span only %.0f%% of the range", jitter, spread*100)
		}
	}
	if got := (RetryPolicy{}).jittered(d); got != d {
		t.Errorf("no jitter: jittered(%v) = %v", d, got)
	}
	if got := (RetryPolicy{Jitter: 0.5}).jittered(0); got != 0 {
		t.Errorf("jittered(0) = %v, want 0", got)
	}
}

// timeoutNetError is a net.Error; timeout says whether it is a timeout.
type timeoutNetError struct{ timeout bool }

func (e timeoutNetError) Error() string   { return fmt.Sprintf("net error (timeout=%v)", e.timeout) }
func (e timeoutNetError) Timeout() bool   { return e.timeout }
func (e timeoutNetError) Temporary() bool { return false }

var _ net.Error = timeoutNetError{}

func TestRetryConditions(t *testing.T) {
	plain := errors.New("boom: disk full")
	netTimeout := &net.OpError{Op: "dial", Net: "tcp", Err: timeoutNetError{timeout: true}}
	errs := []struct {
		name string
		err  error
	}{
		{"plain", plain},
		{"transient", Transient(plain)},
		{"wrapped transient", fmt.Errorf("step: %w", Transient(errors.New("flaky"))) /* message: "step: flaky" */},
		{"deadline", context.DeadlineExceeded},
		{"wrapped deadline", fmt.Errorf("query: %w", context.DeadlineExceeded)},
		{"net timeout", netTimeout},
		{"custom net timeout", timeoutNetError{timeout: true}},
		{"net error, not a timeout", timeoutNetError{timeout: false}},
		{"os deadline", os.ErrDeadlineExceeded},
		{"canceled", context.Canceled},
		{"EOF", io.EOF},
		{"joined with transient", errors.Join(plain, Transient(io.EOF))},
	}
	conds := []struct {
		name string
		c    RetryCondition
		want map[string]bool // error name -> retried; missing means false
	}{
		{"zero value", RetryCondition{}, allNames(errs)},
		{"all", RetryAllErrors(), allNames(errs)},
		{"never", RetryNever(), nil},
		{"transient", RetryTransient(), map[string]bool{
			"transient": true, "wrapped transient": true, "deadline": true, "wrapped deadline": true,
			"net timeout": true, "custom net timeout": true, "os deadline": true, "joined with transient": true,
		}},
		{"messages", RetryOnMessages("disk full", "flaky"), map[string]bool{
			"plain": true, "transient": true, "wrapped transient": true, "joined with transient": true,
		}},
		{"no messages", RetryOnMessages(), nil},
		{"if EOF", RetryIf("eof", func(err error) bool { return errors.Is(err, io.EOF) }), map[string]bool{
			"EOF": true, "joined with transient": true,
		}},
		{"if nil predicate", RetryIf("nothing", nil), nil},
	}
	for _, c := range conds {
		for _, e := range errs {
			if got := c.c.Retries(e.err); got != c.want[e.name] {
				t.Errorf("%s.Retries(%s: %v) = %v, want %v", c.name, e.name, e.err, got, c.want[e.name])
			}
			// Permanent wins over every condition, however it is wrapped.
			for _, p := range []error{
				Permanent(e.err),
				fmt.Errorf("ctx: %w", Permanent(e.err)),
				Transient(Permanent(e.err)),
				errors.Join(errors.New("other"), Permanent(e.err)),
			} {
				if c.c.Retries(p) {
					t.Errorf("%s retries permanent error %v (%s)", c.name, p, e.name)
				}
			}
		}
		if c.c.Retries(nil) {
			t.Errorf("%s retries a nil error", c.name)
		}
	}
}

func allNames(errs []struct {
	name string
	err  error
}) map[string]bool {
	m := map[string]bool{}
	for _, e := range errs {
		m[e.name] = true
	}
	return m
}

func TestRetryConditionString(t *testing.T) {
	tests := []struct {
		c    RetryCondition
		want string
	}{
		{RetryCondition{}, "all"},
		{RetryAllErrors(), "all"},
		{RetryNever(), "never"},
		{RetryTransient(), "transient"},
		{RetryOnMessages("a", `b"c`), `messages["a" "b\"c"]`},
		{RetryIf("is-eof", func(error) bool { return true }), "if:is-eof"},
	}
	for _, tt := range tests {
		if got := tt.c.String(); got != tt.want {
			t.Errorf("String = %q, want %q", got, tt.want)
		}
	}
	// The patterns are copied.
	ps := []string{"x"}
	c := RetryOnMessages(ps...)
	ps[0] = "y"
	if !c.Retries(errors.New("x")) || c.Retries(errors.New("y")) || c.String() != `messages["x"]` {
		t.Error("RetryOnMessages aliases its argument")
	}
}

type codeError struct{ code int }

func (e *codeError) Error() string { return fmt.Sprintf("code %d", e.code) }

func TestTransientPermanentWrappers(t *testing.T) {
	base := &codeError{code: 7}
	for _, wrapped := range []error{Transient(base), Permanent(base), Transient(Permanent(base)), Permanent(Transient(base))} {
		if !errors.Is(wrapped, base) {
			t.Errorf("errors.Is does not see through %T", wrapped)
		}
		var ce *codeError
		if !errors.As(wrapped, &ce) || ce.code != 7 {
			t.Errorf("errors.As does not see through %T", wrapped)
		}
		if wrapped.Error() != "code 7" {
			t.Errorf("wrapper changes the message to %q", wrapped.Error())
		}
	}
	if !errors.Is(Transient(io.EOF), io.EOF) || !errors.Is(Permanent(context.Canceled), context.Canceled) {
		t.Error("errors.Is does not see sentinels through the wrappers")
	}
	if Transient(nil) != nil || Permanent(nil) != nil {
		t.Error("wrapping nil does not return nil")
	}
	if !IsTransient(Transient(base)) || IsTransient(base) || IsTransient(nil) {
		t.Error("IsTransient is wrong")
	}
	if !IsTransient(Permanent(Transient(base))) {
		t.Error("IsTransient does not see through Permanent")
	}
}

func TestPanicError(t *testing.T) {
	err := error(&PanicError{Value: "oops", Stack: "goroutine 1"})
	if err.Error() != "task panicked: oops" {
		t.Fatalf("Error = %q", err.Error())
	}
	var pe *PanicError
	if !errors.As(fmt.Errorf("attempt: %w", err), &pe) || pe.Value != "oops" {
		t.Fatal("errors.As does not find the PanicError")
	}
}
