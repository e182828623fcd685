package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/cloacina-go/cloacina/internal/pgtest"
	"github.com/cloacina-go/cloacina/tenant"
)

// TestMain runs the tests, stops the shared PostgreSQL server (if one was
// started) and checks that no goroutine was left behind: every manager is
// closed, and a scrape that gave up on a tenant leaves no reader running.
func TestMain(m *testing.M) {
	code := pgtest.Main(m)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

var discardLogger = slog.New(slog.DiscardHandler)

// testCtx returns a context that ends after d, so that a bug fails a test
// instead of hanging it.
func testCtx(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// closeManager closes m when the test ends.
func closeManager(t testing.TB, m tenant.Manager) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.Close(ctx); err != nil && !errors.Is(err, tenant.ErrManagerClosed) {
			t.Errorf("Close: %v", err)
		}
	})
}

// scrape is one Gather of a registry, indexed for look-ups.
type scrape map[string]*dto.MetricFamily

func gather(t testing.TB, g prometheus.Gatherer) scrape {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	s := scrape{}
	for _, f := range fams {
		s[f.GetName()] = f
	}
	return s
}

// labels is a label set written "k=v,k=v", as in the test tables.
func labelString(m *dto.Metric) string {
	var parts []string
	for _, l := range m.GetLabel() {
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// find returns the series of family name whose labels are exactly want
// ("k=v,k=v" in any order; "" for none).
func (s scrape) find(name, want string) (*dto.Metric, bool) {
	var parts []string
	if want != "" {
		parts = strings.Split(want, ",")
	}
	slices.Sort(parts)
	key := strings.Join(parts, ",")
	for _, m := range s[name].GetMetric() {
		if labelString(m) == key {
			return m, true
		}
	}
	return nil, false
}

// value returns a counter's or gauge's value, or, for a histogram, its
// sample count; ok is false when the series is absent.
func (s scrape) value(name, labels string) (float64, bool) {
	m, ok := s.find(name, labels)
	switch {
	case !ok:
		return 0, false
	case m.Counter != nil:
		return m.GetCounter().GetValue(), true
	case m.Gauge != nil:
		return m.GetGauge().GetValue(), true
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount()), true
	}
	return 0, false
}

// series lists the label sets of a family, sorted.
func (s scrape) series(name string) []string {
	var out []string
	for _, m := range s[name].GetMetric() {
		out = append(out, labelString(m))
	}
	slices.Sort(out)
	return out
}

// want is an expected value of one series.
type want struct {
	name, labels string
	value        float64
}

// mismatches lists how s differs from wants.
func (s scrape) mismatches(wants []want) []string {
	var out []string
	for _, w := range wants {
		got, ok := s.value(w.name, w.labels)
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s{%s} is missing, want %g", w.name, w.labels, w.value))
		case got != w.value:
			out = append(out, fmt.Sprintf("%s{%s} = %g, want %g", w.name, w.labels, got, w.value))
		}
	}
	return out
}

// expect gathers g until it shows wants (observations arrive just after
// the changes they report are committed), failing the test with the
// differences if it does not within a few seconds. It returns the last
// scrape.
func expect(t testing.TB, g prometheus.Gatherer, wants []want) scrape {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := gather(t, g)
		bad := s.mismatches(wants)
		if len(bad) == 0 {
			return s
		}
		if time.Now().After(deadline) {
			t.Errorf("metrics differ:\n  %s", strings.Join(bad, "\n  "))
			return s
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitUntil polls cond until it holds, failing the test when ctx ends.
func waitUntil(t testing.TB, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}
