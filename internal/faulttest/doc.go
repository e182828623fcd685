// Package faulttest proves with real processes and real databases that work
// survives crashes.
//
// The package has two halves. Its non-test files are a small harness shared
// with the cmd/cloacina-soak command:
//
//   - [Workflows]: the fixed workflows a worker process registers. The
//     "chain" workflow is a three-task chain (a -> b -> c) whose task bodies
//     sleep a little, so that kills land mid-task, and then append one line
//     per completed run to a [Ledger]. The "poison" workflow's first task
//     calls os.Exit(3), crashing its worker every time it runs.
//   - [Ledger]: an append-only file shared by all processes (one O_APPEND
//     write per record), independent of the database under test, so that it
//     keeps recording through database outages and shows how often each task
//     body really ran to completion.
//   - [Inspect]: compares the ledger with the engine's view of every
//     execution (through the public API) and counts violations: lost
//     executions, duplicate runs, concurrent runs, completed tasks without a
//     run.
//   - [Process]: starts, kills and terminates worker processes.
//
// Its tests build cmd/cloacina-soak once and run it as separate worker
// processes against SQLite and PostgreSQL, killing them with SIGKILL,
// freezing them with SIGSTOP, stopping them with SIGTERM, restarting the
// database or terminating its connections, and checking the recovery
// guarantees documented
// on [cloacina.Config]: one runner per claimed attempt, recovery of stale
// claims by any runner and of a restarted runner's own claims at once,
// abandonment after MaxRecoveries, completed tasks never run again.
package faulttest
