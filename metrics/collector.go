package metrics

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cloacina-go/cloacina"
	"github.com/cloacina-go/cloacina/tenant"
)

// DurationBuckets are the histogram buckets, in seconds, of
// cloacina_task_duration_seconds and cloacina_task_wait_seconds: from 1ms
// to 10 minutes, for tasks that range from quick lookups to long batch
// jobs.
var DurationBuckets = []float64{
	0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
	1, 2.5, 5, 10, 30, 60, 120, 300, 600,
}

// Defaults of the scrape-time reading of a watched manager.
const (
	// DefaultScrapeTimeout bounds the reading of the tenants' queues and
	// pools during one scrape.
	DefaultScrapeTimeout = 5 * time.Second
	// DefaultScrapeParallelism is how many tenants are read at once.
	DefaultScrapeParallelism = 8
)

// Option configures a [Collector].
type Option func(*Collector)

// WithScrapeTimeout bounds the reading of the watched manager's tenants in
// one scrape (default [DefaultScrapeTimeout]). A tenant not read in time is
// left out of the scrape and counted in cloacina_scrape_errors_total.
// A value <= 0 keeps the default.
func WithScrapeTimeout(d time.Duration) Option {
	return func(c *Collector) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// WithScrapeParallelism sets how many tenants a scrape reads at once
// (default [DefaultScrapeParallelism]). A value <= 0 keeps the default.
func WithScrapeParallelism(n int) Option {
	return func(c *Collector) {
		if n > 0 {
			c.parallelism = n
		}
	}
}

// Collector is a [prometheus.Collector] of cloacina's metrics (see the
// package documentation for the families). Build one with [New], register
// it once, give its [Collector.Observer] to the runners or managers to
// observe, and let it watch a manager with [Collector.WatchManager]. It is
// safe for concurrent use, and concurrent scrapes are allowed.
type Collector struct {
	timeout     time.Duration
	parallelism int

	started    *prometheus.CounterVec
	finished   *prometheus.CounterVec
	attempts   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	wait       *prometheus.HistogramVec
	scrapeErrs prometheus.Counter

	readyDesc   *prometheus.Desc
	runningDesc *prometheus.Desc
	oldestDesc  *prometheus.Desc
	connsDesc   *prometheus.Desc
	inflight    *prometheus.Desc
	slotsDesc   *prometheus.Desc

	observer *cloacina.Observer

	mu      sync.Mutex
	manager tenant.Manager
}

var _ prometheus.Collector = (*Collector)(nil)

// New returns a collector with no manager watched. opts tune the reading
// of a watched manager at scrape time.
func New(opts ...Option) *Collector {
	twl := []string{"tenant", "workflow"}
	c := &Collector{
		timeout:     DefaultScrapeTimeout,
		parallelism: DefaultScrapeParallelism,
		started: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cloacina_executions_started_total",
			Help: "Executions started by this process.",
		}, twl),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cloacina_executions_finished_total",
			Help: "Executions whose end (Completed, Failed or Cancelled) this process recorded.",
		}, []string{"tenant", "workflow", "status"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cloacina_task_attempts_total",
			Help: "Task attempts run by this process, by outcome (completed, failed, retry, skipped, released).",
		}, []string{"tenant", "workflow", "task", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cloacina_task_duration_seconds",
			Help:    "How long task attempts run by this process took (skipped attempts excluded).",
			Buckets: DurationBuckets,
		}, twl),
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cloacina_task_wait_seconds",
			Help:    "Time from a task becoming ready to its claim by this process.",
			Buckets: DurationBuckets,
		}, twl),
		scrapeErrs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cloacina_scrape_errors_total",
			Help: "Tenants left out of a scrape because reading them failed or timed out.",
		}),
		readyDesc: prometheus.NewDesc("cloacina_queue_ready_tasks",
			"Tasks ready to run, of the tenants open in this process.", []string{"tenant"}, nil),
		runningDesc: prometheus.NewDesc("cloacina_queue_running_tasks",
			"Tasks running (in any process), of the tenants open in this process.", []string{"tenant"}, nil),
		oldestDesc: prometheus.NewDesc("cloacina_queue_oldest_ready_seconds",
			"How long the oldest ready task has waited (0 when none waits), of the tenants open in this process.", []string{"tenant"}, nil),
		connsDesc: prometheus.NewDesc("cloacina_db_connections",
			"Database connections of the engines serving the open tenants: open, in_use, and the pools' max.", []string{"state"}, nil),
		inflight: prometheus.NewDesc("cloacina_running_tasks",
			"Task attempts running in this process.", nil, nil),
		slotsDesc: prometheus.NewDesc("cloacina_task_slots",
			"Task slots (the most concurrent attempts) of the engines serving the open tenants.", nil, nil),
	}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	c.observer = &cloacina.Observer{
		TaskFinished:      c.taskFinished,
		ExecutionStarted:  c.executionStarted,
		ExecutionFinished: c.executionFinished,
	}
	return c
}

// Observer returns the observer that feeds the collector's counters and
// histograms. Pass it to [cloacina.WithObserver] when building runners,
// engines or tenant managers; one observer may serve any number of them.
func (c *Collector) Observer() *cloacina.Observer { return c.observer }

// WatchManager makes every scrape read the queues of the tenants open in m
// and the pools and task slots of the engines serving them. It watches one
// manager at a time: a later call replaces the earlier, and nil stops
// watching.
func (c *Collector) WatchManager(m tenant.Manager) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.manager = m
}

func (c *Collector) taskFinished(o cloacina.TaskObservation) {
	c.attempts.WithLabelValues(o.Tenant, o.Workflow, o.Task, string(o.Outcome)).Inc()
	c.wait.WithLabelValues(o.Tenant, o.Workflow).Observe(o.Waited.Seconds())
	if o.Outcome != cloacina.OutcomeSkipped {
		c.duration.WithLabelValues(o.Tenant, o.Workflow).Observe(o.Duration.Seconds())
	}
}

func (c *Collector) executionStarted(o cloacina.ExecutionObservation) {
	c.started.WithLabelValues(o.Tenant, o.Workflow).Inc()
}

func (c *Collector) executionFinished(o cloacina.ExecutionObservation) {
	c.finished.WithLabelValues(o.Tenant, o.Workflow, string(o.Status)).Inc()
}

// Describe implements [prometheus.Collector].
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	c.started.Describe(ch)
	c.finished.Describe(ch)
	c.attempts.Describe(ch)
	c.duration.Describe(ch)
	c.wait.Describe(ch)
	c.scrapeErrs.Describe(ch)
	for _, d := range []*prometheus.Desc{c.readyDesc, c.runningDesc, c.oldestDesc, c.connsDesc, c.inflight, c.slotsDesc} {
		ch <- d
	}
}

// Collect implements [prometheus.Collector]. It reads the watched manager
// (bounded by the scrape timeout), then reports every family.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.collectManager(ch)
	c.started.Collect(ch)
	c.finished.Collect(ch)
	c.attempts.Collect(ch)
	c.duration.Collect(ch)
	c.wait.Collect(ch)
	c.scrapeErrs.Collect(ch)
}

// tenantRead is what a scrape learnt about one tenant.
type tenantRead struct {
	id     string
	m      *cloacina.Metrics
	engine *cloacina.Engine
	err    error
}

// engineOwner is a manager with one engine for all its tenants
// (PostgresManager, SecureManager in a shared-pool mode).
type engineOwner interface {
	Engine() *cloacina.Engine
}

// collectManager reports the scrape-time gauges of the watched manager.
func (c *Collector) collectManager(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	m := c.manager
	c.mu.Unlock()
	if m == nil {
		return
	}
	reads := c.readTenants(m, m.OpenTenants())

	engines := map[*cloacina.Engine]bool{}
	if eo, ok := m.(engineOwner); ok {
		if e := eo.Engine(); e != nil {
			// Counted even with no tenant open: the pool exists.
			engines[e] = true
		}
	}
	now := time.Now()
	for _, r := range reads {
		if r.err != nil {
			c.scrapeErrs.Inc()
			continue
		}
		if r.engine != nil {
			engines[r.engine] = true
		}
		if r.m == nil {
			continue // closed since it was listed
		}
		ch <- prometheus.MustNewConstMetric(c.readyDesc, prometheus.GaugeValue, float64(r.m.ReadyTasks), r.id)
		ch <- prometheus.MustNewConstMetric(c.runningDesc, prometheus.GaugeValue, float64(r.m.RunningTasks), r.id)
		var oldest float64
		if !r.m.OldestReadyTask.IsZero() {
			oldest = max(0, now.Sub(r.m.OldestReadyTask).Seconds())
		}
		ch <- prometheus.MustNewConstMetric(c.oldestDesc, prometheus.GaugeValue, oldest, r.id)
	}
	if len(engines) == 0 {
		return
	}
	var sum cloacina.EngineStats
	for e := range engines {
		s := e.Stats()
		sum.OpenConnections += s.OpenConnections
		sum.InUseConnections += s.InUseConnections
		sum.MaxOpenConnections += s.MaxOpenConnections
		sum.RunningTasks += s.RunningTasks
		sum.MaxConcurrentTasks += s.MaxConcurrentTasks
	}
	ch <- prometheus.MustNewConstMetric(c.connsDesc, prometheus.GaugeValue, float64(sum.OpenConnections), "open")
	ch <- prometheus.MustNewConstMetric(c.connsDesc, prometheus.GaugeValue, float64(sum.InUseConnections), "in_use")
	ch <- prometheus.MustNewConstMetric(c.connsDesc, prometheus.GaugeValue, float64(sum.MaxOpenConnections), "max")
	ch <- prometheus.MustNewConstMetric(c.inflight, prometheus.GaugeValue, float64(sum.RunningTasks))
	ch <- prometheus.MustNewConstMetric(c.slotsDesc, prometheus.GaugeValue, float64(sum.MaxConcurrentTasks))
}

// errScrapeTimeout marks a tenant the scrape had no time to read.
var errScrapeTimeout = errors.New("metrics: scrape timeout")

// readTenants reads the metrics and engine of each tenant, at most
// c.parallelism at once, until c.timeout. It returns when every tenant is
// read or the timeout passes, whichever comes first: a tenant not read by
// then has errScrapeTimeout (its reading goroutine ends on its own, as
// its context has ended).
func (c *Collector) readTenants(m tenant.Manager, ids []string) []tenantRead {
	out := make([]tenantRead, len(ids))
	for i, id := range ids {
		out[i] = tenantRead{id: id, err: errScrapeTimeout}
	}
	if len(ids) == 0 {
		return out
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()

	type result struct {
		i int
		r tenantRead
	}
	// Buffered for every tenant, so that a reader finishing after the
	// scrape gave up never blocks.
	results := make(chan result, len(ids))
	go func() {
		sem := make(chan struct{}, c.parallelism)
		for i, id := range ids {
			if ctx.Err() != nil {
				return
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			go func() {
				defer func() { <-sem }()
				results <- result{i, readTenant(ctx, m, id)}
			}()
		}
	}()
	for range ids {
		select {
		case r := <-results:
			out[r.i] = r.r
		case <-ctx.Done():
			return out
		}
	}
	return out
}

// readTenant reads one open tenant's queue metrics and engine.
func readTenant(ctx context.Context, m tenant.Manager, id string) tenantRead {
	r := tenantRead{id: id}
	// OpenRunner never opens a tenant, so a scrape cannot bring back one
	// removed since OpenTenants listed it.
	runner, ok := m.OpenRunner(id)
	if !ok {
		return r // closed since it was listed: nothing to report
	}
	r.engine = runner.Engine()
	if om, ok := m.(openMetricser); ok {
		// Never reopens a tenant closed since it was listed, and is not
		// activity that would keep an idle tenant open.
		var open bool
		r.m, open, r.err = om.OpenMetrics(ctx, id)
		if !open {
			r.m, r.err = nil, nil
		}
		return r
	}
	// The manager's Metrics creates no tenant either.
	r.m, r.err = m.Metrics(ctx, id)
	return r
}

// openMetricser is a manager that reads an open tenant's metrics without
// opening it (the tenant package's managers).
type openMetricser interface {
	OpenMetrics(ctx context.Context, tenantID string) (*cloacina.Metrics, bool, error)
}
