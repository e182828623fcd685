package store

import "context"

// ExecOnPool runs a statement on the store's write pool, outside the
// engine's transactions, for tests that tamper with a connection.
func ExecOnPool(ctx context.Context, s Store, query string) error {
	_, err := s.(*sqlStore).w.ExecContext(ctx, query)
	return err
}

// MetricsTasksQuery is the text of the statement Metrics reads tasks with.
func MetricsTasksQuery(s Store) string { return s.(*sqlStore).q.metricsTasks }

// ExecForTest runs a statement on the database's write pool.
func ExecForTest(ctx context.Context, db *DB, query string) error {
	_, err := db.w.ExecContext(ctx, query)
	return err
}

// QueryIntForTest reads one integer.
func QueryIntForTest(ctx context.Context, db *DB, query string, n *int) error {
	return db.r.QueryRowContext(ctx, query).Scan(n)
}
