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
