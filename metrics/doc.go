// Package metrics exports what cloacina does as Prometheus metrics.
//
// A [Collector] is a [prometheus.Collector]. It counts and times what the
// runners of this process do, through the [cloacina.Observer] returned by
// [Collector.Observer], and, when it watches a [tenant.Manager] (see
// [Collector.WatchManager]), reads the queues and connection pools of the
// tenants open in this process each time it is scraped. Wiring it into a
// service:
//
//	c := metrics.New()
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(c)
//	m, err := tenant.NewSQLiteManager("data",
//		cloacina.WithWorkflows(wfs...),
//		cloacina.WithObserver(c.Observer()))
//	if err != nil {
//		return err
//	}
//	c.WatchManager(m)
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// # Families
//
// Counted as things happen (only work done by this process):
//
//   - cloacina_executions_started_total{tenant,workflow}
//   - cloacina_executions_finished_total{tenant,workflow,status}: status is
//     the terminal status (Completed, Failed, Cancelled).
//   - cloacina_task_attempts_total{tenant,workflow,task,outcome}: outcome
//     is a [cloacina.TaskOutcome] (completed, failed, retry, skipped,
//     released).
//   - cloacina_task_duration_seconds{tenant,workflow}: a histogram of how
//     long attempts ran (every outcome but skipped, whose function did not
//     run), with [DurationBuckets] (1ms to 10min).
//   - cloacina_task_wait_seconds{tenant,workflow}: a histogram of the time
//     from a task becoming ready to its claim, per attempt, with
//     [DurationBuckets].
//
// Read at scrape time from the watched manager, for the tenants open in
// this process ([tenant.Manager.OpenTenants]):
//
//   - cloacina_queue_ready_tasks{tenant}, cloacina_queue_running_tasks{tenant}:
//     the tenant's Ready and Running tasks, from [tenant.Manager.Metrics]
//     (the whole database's, whoever runs them).
//   - cloacina_queue_oldest_ready_seconds{tenant}: how long the oldest Ready
//     task has waited (0 when none waits): the queue's lag.
//   - cloacina_db_connections{state}: the connection pools of the engines
//     serving the open tenants, summed; state is "open", "in_use" or "max".
//   - cloacina_running_tasks, cloacina_task_slots: task attempts running in
//     this process, and the engines' task slots
//     ([cloacina.WithMaxConcurrentTasks]), summed over the engines.
//   - cloacina_scrape_errors_total: tenants whose reading failed or did not
//     finish within the scrape timeout ([WithScrapeTimeout]); such a tenant
//     is left out of that scrape.
//
// Engines are counted once each: a [tenant.PostgresManager] serves every
// tenant from one engine (one pool, one set of task slots), while a
// [tenant.SQLiteManager] runs one engine per tenant, so its pool and slot
// gauges are sums over the open tenants.
//
// # Cardinality
//
// The workflow and task labels are bounded by the workflow definitions
// compiled into the program, and status and outcome by small fixed sets.
// The tenant label is not bounded: every tenant that runs work in this
// process adds series, and the counters and histograms keep a tenant's
// series until the process ends, even after the tenant is removed. A
// deployment with very many tenants should budget for that (or aggregate
// the tenant label away with a recording rule or relabelling). The queue
// gauges cover only the tenants open at the time of the scrape.
package metrics
