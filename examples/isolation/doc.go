// Package isolation holds a copyable test showing that one tenant cannot
// see or touch another tenant's executions, on SQLite files and, when
// CLOACINA_ISOLATION_DATABASE_URL names a PostgreSQL database, on schemas:
//
//	go test ./examples/isolation/
//	CLOACINA_ISOLATION_DATABASE_URL=postgres://user:pass@localhost/app go test ./examples/isolation/
package isolation
