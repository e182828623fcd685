package store_test

import (
	"context"
	"database/sql"
	"fmt"
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
	// An open transaction would keep the old row versions below alive.
	if err := etx.Rollback(); err != nil {
		t.Fatal(err)
	}
	// A round updates many executions in one statement, most rows of each
	// page: the updates must still find room on their page (migration 5),
	// for each of the two updates of a plain life.
	const batch = 300
	var ids []string
	var execs []*store.Execution
	for range batch {
		e := &store.Execution{ID: uuid.Must(uuid.NewV7()).String(), WorkflowName: "wf", WorkflowVersion: "0123456789abcdef",
			Status: "Pending", Input: []byte(`{}`)}
		execs = append(execs, e)
		ids = append(ids, e.ID)
	}
	if err := s.Write(ctx, func(tx store.Tx) error { return tx.InsertExecutions(ctx, execs, nil) }); err != nil {
		t.Fatal(err)
	}
	// An update is HOT here exactly when the new version stays on the old
	// one's page: no indexed column changes, so only the lack of room on
	// the page makes it otherwise.
	before := pages(t, db)
	for _, step := range [][2]string{{"Pending", "Running"}, {"Running", "Completed"}} {
		ups := make([]store.ExecutionUpdate, len(ids))
		for i, id := range ids {
			ups[i] = store.ExecutionUpdate{ID: id, From: []string{step[0]}, To: step[1], Output: []byte(`{"done":true}`)}
		}
		if err := s.Write(ctx, func(tx store.Tx) error {
			changed, err := tx.UpdateExecutions(ctx, ups)
			if err == nil && len(changed) != len(ids) {
				err = fmt.Errorf("%d of %d executions moved to %s", len(changed), len(ids), step[1])
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		after := pages(t, db)
		moved := 0
		for _, id := range ids {
			if after[id] != before[id] {
				moved++
			}
		}
		// A row that grows (here by its output) may still outgrow the
		// room; at fillfactor 80, 223 and 299 of the 300 left their page.
		if moved*10 > len(ids) {
			t.Errorf("%s -> %s in one statement: %d of %d rows left their page (not HOT), want at most 1 in 10", step[0], step[1], moved, len(ids))
		}
	}

	// And the store's listing finds them (the column follows the status).
	if err := s.Write(ctx, func(tx store.Tx) error {
		_, err := tx.UpdateExecutions(ctx, []store.ExecutionUpdate{{ID: id, From: []string{"Pending"}, To: "Failed", Error: "boom"}})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, statuses := range [][]string{{"Failed"}, {"Failed", "Cancelled"}} {
		got, err := s.ListExecutions(context.Background(), store.ExecutionFilter{Statuses: statuses})
		if err != nil || len(got) != 1 || got[0].ID != id {
			t.Errorf("ListExecutions(%v) = %d executions, %v; want the failed one", statuses, len(got), err)
		}
	}
	if got, err := s.ListExecutions(context.Background(), store.ExecutionFilter{Statuses: []string{"Failed", "Completed"}, Limit: 1000}); err != nil || len(got) != batch+1 {
		t.Errorf("ListExecutions(Failed, Completed) = %d executions, %v; want %d", len(got), err, batch+1)
	}
}

// pages returns the page each row of hot.executions is on.
func pages(t *testing.T, db *sql.DB) map[string]int64 {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), `SELECT id::text, (ctid::text::point)[0]::bigint FROM hot.executions`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var id string
		var page int64
		if err := rows.Scan(&id, &page); err != nil {
			t.Fatal(err)
		}
		out[id] = page
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
