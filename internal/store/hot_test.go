package store_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"github.com/cloacina-go/cloacina/internal/store"
	"github.com/google/uuid"
)

// An execution's plain life (Pending, Running, Completed) updates its row
// in place (HOT), which no index on status may prevent, while listing the
// rare statuses keeps an index (migration 0002).
func TestPostgresExecutionUpdatesAreHOT(t *testing.T) {
	ctx := openCtx(t)
	u := postgresURL(t)
	s := openPG(t, u, "hot")
	id := uuid.Must(uuid.NewV7()).String()
	if err := s.Write(ctx, func(tx store.Tx) error {
		return tx.InsertExecutions(ctx, []*store.Execution{{ID: id, WorkflowName: "wf", WorkflowVersion: "v", Status: "Pending",
			Input: []byte(`{}`)}}, nil)
	}); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", u)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// The statistics of the current transaction count its HOT updates at
	// once; the same statement as the store's, run inside it.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for _, st := range []string{"Running", "Completed"} {
		if _, err := tx.ExecContext(ctx, `UPDATE hot.executions SET status = $1, updated_at = updated_at + 1 WHERE id = $2`, st, id); err != nil {
			t.Fatal(err)
		}
	}
	var hot int
	if err := tx.QueryRowContext(ctx, `SELECT pg_stat_get_xact_tuples_hot_updated('hot.executions'::regclass)`).Scan(&hot); err != nil {
		t.Fatal(err)
	}
	if hot != 2 {
		t.Errorf("%d of 2 status updates were HOT", hot)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}

	// Listing failures can use an index rather than walk every execution
	// (on a table this small the planner would rather scan it, so
	// sequential scans are turned off to see what it can use).
	var plan []string
	etx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer etx.Rollback()
	if _, err := etx.ExecContext(ctx, "SET LOCAL enable_seqscan = off"); err != nil {
		t.Fatal(err)
	}
	rows, err := etx.QueryContext(ctx, `EXPLAIN SELECT id FROM hot.executions
WHERE status IN ('Failed') AND exceptional ORDER BY id DESC LIMIT 20`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, line)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if p := strings.Join(plan, "\n"); !strings.Contains(p, "executions_exceptional_idx") {
		t.Errorf("listing failures does not use executions_exceptional_idx:\n%s", p)
	}
	// And the store's listing finds them (the column follows the status).
	if err := s.Write(ctx, func(tx store.Tx) error {
		_, err := tx.UpdateExecutions(ctx, []store.ExecutionUpdate{{ID: id, From: []string{"Pending"}, To: "Failed", Error: "boom"}})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, statuses := range [][]string{{"Failed"}, {"Failed", "Cancelled"}, {"Failed", "Completed"}} {
		got, err := s.ListExecutions(context.Background(), store.ExecutionFilter{Statuses: statuses})
		if err != nil || len(got) != 1 || got[0].ID != id {
			t.Errorf("ListExecutions(%v) = %d executions, %v; want the failed one", statuses, len(got), err)
		}
	}
}
