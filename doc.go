// Package cloacina is a durable, database-backed workflow engine with
// first-class multi-tenancy.
//
// A workflow is a directed acyclic graph of Go functions (tasks) that pass a
// JSON object (the [Context]) along their dependencies. A [Runner] executes
// workflows durably against a database chosen by URL: SQLite
// ("sqlite://path/app.db", the embedded default) or PostgreSQL
// ("postgres://..."). Every state change is written to the database together
// with an event row, so executions survive process restarts.
//
// Define a workflow with [NewWorkflow]:
//
//	wf, err := cloacina.NewWorkflow("etl").
//		Task("extract", extract).
//		Task("load", load, cloacina.DependsOn("extract")).
//		Build()
//
// and run it with a [Runner]:
//
//	r, err := cloacina.NewRunner(ctx, "sqlite://data/app.db", cloacina.WithWorkflows(wf))
//	res, err := r.Execute(ctx, "etl", map[string]any{"day": "2026-11-26"})
//
// # Context flow
//
// A root task (one without dependencies) sees the execution's input. A task
// with dependencies sees the saved contexts of its completed dependencies,
// merged in the order the dependencies were declared with [MergeJSON]'s rule:
// JSON objects merge key by key, recursively; for any other value the later
// one wins. If none of its dependencies completed (possible only with a
// trigger rule such as [Always]), the task sees the execution's input. A
// task's context is saved when it succeeds. The execution's final context is
// the merge, in topological order, of the saved contexts of the completed
// tasks that no completed task depends on.
//
// # Trigger rules and upstream failures
//
// By default a task runs only when all of its dependencies completed; if any
// dependency failed or was skipped, the task is skipped (and so, in turn, are
// its dependents). A [TriggerRule] set with [When] replaces that default: the
// rule is evaluated once every dependency is terminal, and the task is
// skipped when it is false. [Always] runs the task whatever its dependencies'
// outcomes, which is the original Rust Cloacina's default. An execution in
// which any task failed ends [ExecutionFailed].
package cloacina
