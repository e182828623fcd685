package tenant_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/tenant"
)

// BenchmarkSecureSharedPool measures what database-enforced isolation on a
// shared pool costs: the same workload (10 tenants, one-task workflows, 32
// concurrent Execute calls spread over the tenants) on a plain
// PostgresManager (superuser pool, no role switch) and on a SecureManager
// in SharedPoolSwitchRole mode (a NOINHERIT service role's pool, SET LOCAL
// ROLE to the tenant's role in every transaction). Both use one engine
// with the same pool size and task budget. The paired sub-benchmark
// alternates the two and reports the overhead of switch-role in percent.
func BenchmarkSecureSharedPool(b *testing.B) {
	const tenants, conc = 10, 32
	ctx := context.Background()
	one, err := cloacina.NewWorkflow("one").
		Task("only", func(context.Context, *cloacina.Context) error { return nil }).Build()
	if err != nil {
		b.Fatal(err)
	}
	opts := []cloacina.Option{cloacina.WithWorkflows(one), cloacina.WithMaxConcurrentTasks(64),
		cloacina.WithDBPoolSize(20), cloacina.WithLogger(discardLogger)}

	env := newSecEnv(b)
	plain, err := tenant.NewPostgresManager(ctx, env.dbURL, opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = plain.Close(context.Background()) })
	var plainIDs []string
	for i := range tenants {
		plainIDs = append(plainIDs, fmt.Sprintf("plain_%d", i))
	}

	secure, err := tenant.NewSecureManager(ctx, tenant.SecureConfig{Mode: tenant.SharedPoolSwitchRole,
		Admin: env.admin, Credentials: tenant.NewMemoryCredentialStore(), ServiceURL: env.serviceURL}, opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = secure.Close(context.Background()) })
	var secureIDs []string
	for range tenants {
		id, _ := env.create(b, secure, "bench")
		secureIDs = append(secureIDs, id)
	}

	type mode struct {
		name string
		m    tenant.Manager
		ids  []string
	}
	modes := []mode{{"plain", plain, plainIDs}, {"switch-role", secure, secureIDs}}
	// run executes n one-task workflows over a mode's tenants, conc at a
	// time, and returns how long they took.
	run := func(b *testing.B, c mode, n int) time.Duration {
		var next atomic.Int64
		start := time.Now()
		var wg sync.WaitGroup
		for range conc {
			wg.Go(func() {
				for {
					i := next.Add(1)
					if i > int64(n) {
						return
					}
					id := c.ids[int(i)%len(c.ids)]
					res, err := c.m.Execute(ctx, id, "one", nil)
					if err != nil {
						b.Error(err)
						return
					}
					if res.Status != cloacina.ExecutionCompleted {
						b.Errorf("status %s", res.Status)
						return
					}
				}
			})
		}
		wg.Wait()
		return time.Since(start)
	}
	for _, c := range modes {
		// Warm up: attach every tenant before timing.
		for _, id := range c.ids {
			if _, err := c.m.Execute(ctx, id, "one", nil); err != nil {
				b.Fatalf("%s: warming up %s: %v", c.name, id, err)
			}
		}
	}
	for _, c := range modes {
		b.Run(c.name, func(b *testing.B) {
			b.ResetTimer()
			b.ReportMetric(float64(b.N)/run(b, c, b.N).Seconds(), "workflows/s")
		})
	}
	// paired alternates the two modes in ten slices each (plain first in
	// even slices, switch-role first in odd ones), so that both see the
	// same machine load and the same table sizes: the fair comparison.
	b.Run("paired", func(b *testing.B) {
		const slices = 10
		per := max(b.N/slices, conc)
		var took [2]time.Duration
		b.ResetTimer()
		for i := range slices {
			for k := range 2 {
				m := (i + k) % 2
				took[m] += run(b, modes[m], per)
			}
		}
		plainRate := float64(slices*per) / took[0].Seconds()
		roleRate := float64(slices*per) / took[1].Seconds()
		b.ReportMetric(plainRate, "plain-workflows/s")
		b.ReportMetric(roleRate, "switch-role-workflows/s")
		b.ReportMetric(100*(plainRate-roleRate)/plainRate, "overhead-%")
	})
}
