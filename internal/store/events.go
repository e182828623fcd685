package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
)

// An events row holds the events that one call to InsertEvents writes for
// one execution, up to eventsPerRow of them: the first in the row's own
// columns, the others in its more column, as JSON. A row costs the
// database far more than a few bytes in it, and a round's events of one
// execution come together (a task's start and end, its execution's end):
// a one-task execution's six events take two rows instead of six.
//
// An event's id is its row's id times eventsPerRow plus its place in the
// row, so ids still grow in the order events were written.
const eventsPerRow = 16

type eventRow struct {
	ExecutionID string  `json:"execution_id" pg:"uuid"`
	TaskName    string  `json:"task_name" pg:"text"`
	Type        string  `json:"type" pg:"text"`
	Attempt     int     `json:"attempt" pg:"integer"`
	Message     string  `json:"message" pg:"text"`
	Worker      string  `json:"worker" pg:"text"`
	CreatedAt   int64   `json:"created_at" pg:"bigint"`
	More        *string `json:"more" pg:"text"`
}

// moreEvent is an event in a row's more column. Zero fields are left
// out, and so are a worker and a time equal to the row's own (nil here).
type moreEvent struct {
	TaskName  string  `json:"task,omitempty"`
	Type      string  `json:"type"`
	Attempt   int     `json:"attempt,omitempty"`
	Message   string  `json:"message,omitempty"`
	Worker    *string `json:"worker,omitempty"`
	CreatedAt *int64  `json:"at,omitempty"`
}

// packEvents groups events by execution, in the order of each execution's
// first event and keeping the order of each execution's events, into rows
// of at most eventsPerRow events.
func packEvents(events []*Event) []eventRow {
	// The events of an execution are chained by index (next), from its
	// first (a head) to its last: no slice per execution.
	last := make(map[string]int, len(events))
	next := make([]int, len(events))
	head := make([]bool, len(events))
	for i, e := range events {
		next[i] = -1
		if l, ok := last[e.ExecutionID]; ok {
			next[l] = i
		} else {
			head[i] = true
		}
		last[e.ExecutionID] = i
	}
	rows := make([]eventRow, 0, len(last))
	evs := make([]*Event, 0, eventsPerRow)
	var buf []byte
	for i := range events {
		if !head[i] {
			continue
		}
		evs = evs[:0]
		for j := i; j >= 0; j = next[j] {
			if len(evs) == eventsPerRow {
				rows = append(rows, packRow(evs, &buf))
				evs = evs[:0]
			}
			evs = append(evs, events[j])
		}
		rows = append(rows, packRow(evs, &buf))
	}
	return rows
}

// packRow makes one row of up to eventsPerRow events of one execution,
// encoding the others into buf (reused from row to row).
func packRow(evs []*Event, buf *[]byte) eventRow {
	first := evs[0]
	row := eventRow{first.ExecutionID, first.TaskName, first.Type, first.Attempt, first.Message, first.Worker,
		micros(first.CreatedAt), nil}
	if len(evs) == 1 {
		return row
	}
	b := append((*buf)[:0], '[')
	for i, e := range evs[1:] {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendMoreEvent(b, e, first.Worker, row.CreatedAt)
	}
	b = append(b, ']')
	*buf = b
	more := string(b)
	row.More = &more
	return row
}

// appendMoreEvent appends e as a moreEvent object, as encoding/json would
// write it: a round's events are mostly this, so they are written
// directly rather than through reflection.
func appendMoreEvent(b []byte, e *Event, rowWorker string, rowAt int64) []byte {
	b = append(b, '{')
	if e.TaskName != "" {
		b = append(b, `"task":`...)
		b = appendJSONString(b, e.TaskName)
		b = append(b, ',')
	}
	b = append(b, `"type":`...)
	b = appendJSONString(b, e.Type)
	if e.Attempt != 0 {
		b = append(b, `,"attempt":`...)
		b = strconv.AppendInt(b, int64(e.Attempt), 10)
	}
	if e.Message != "" {
		b = append(b, `,"message":`...)
		b = appendJSONString(b, e.Message)
	}
	if e.Worker != rowWorker {
		b = append(b, `,"worker":`...)
		b = appendJSONString(b, e.Worker)
	}
	if at := micros(e.CreatedAt); at != rowAt {
		b = append(b, `,"at":`...)
		b = strconv.AppendInt(b, at, 10)
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string. Plain printable ASCII (the
// names, types and worker ids of events) is quoted as it is; anything
// else goes through encoding/json, which escapes it.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// unpackRow returns the events of a row read back: the row's own, then
// those in more.
func unpackRow(executionID string, rowID int64, row eventRow) ([]*Event, error) {
	first := &Event{ID: rowID * eventsPerRow, ExecutionID: executionID, TaskName: row.TaskName, Type: row.Type,
		Attempt: row.Attempt, Message: row.Message, Worker: row.Worker, CreatedAt: fromMicros(row.CreatedAt)}
	if row.More == nil {
		return []*Event{first}, nil
	}
	var more []moreEvent
	if err := json.Unmarshal([]byte(*row.More), &more); err != nil {
		return nil, fmt.Errorf("store: event row %d: %w", rowID, err)
	}
	if len(more) >= eventsPerRow {
		return nil, fmt.Errorf("store: event row %d holds %d events (at most %d)", rowID, len(more)+1, eventsPerRow)
	}
	out := make([]*Event, 0, len(more)+1)
	out = append(out, first)
	for i, m := range more {
		e := &Event{ID: rowID*eventsPerRow + int64(i+1), ExecutionID: executionID, TaskName: m.TaskName, Type: m.Type,
			Attempt: m.Attempt, Message: m.Message, Worker: first.Worker, CreatedAt: first.CreatedAt}
		if m.Worker != nil {
			e.Worker = *m.Worker
		}
		if m.CreatedAt != nil {
			e.CreatedAt = fromMicros(*m.CreatedAt)
		}
		out = append(out, e)
	}
	return out, nil
}

func (t *sqlTx) InsertEvents(ctx context.Context, events []*Event) error {
	if len(events) == 0 {
		return nil
	}
	args, err := t.s.d.rowArgs(packEvents(events))
	if err != nil {
		return err
	}
	if err := t.exec(ctx, t.s.q.insertEvents, args...); err != nil {
		return fmt.Errorf("store: insert events: %w", err)
	}
	return nil
}

func (s *sqlStore) ListEvents(ctx context.Context, executionID string, afterID int64, limit int) ([]*Event, error) {
	if limit <= 0 {
		limit = 1000
	}
	return read(ctx, s, func(r reader) ([]*Event, error) { return s.listEvents(ctx, r, executionID, afterID, limit) })
}

// listEvents reads the rows from the one that holds event afterID on.
// Each row holds at least one event, so limit+1 rows hold at least limit
// events after afterID, or all there are.
func (s *sqlStore) listEvents(ctx context.Context, r reader, executionID string, afterID int64, limit int) ([]*Event, error) {
	firstRow := max(afterID, 0) / eventsPerRow
	rows, err := r.query(ctx, s.q.listEvents, executionID, firstRow, limit+1)
	if err != nil {
		return nil, fmt.Errorf("store: list events: %w", err)
	}
	defer rows.Close()
	var out []*Event
	for rows.Next() {
		var id int64
		var row eventRow
		var more sql.NullString
		if err := rows.Scan(&id, &row.TaskName, &row.Type, &row.Attempt, &row.Message, &row.Worker, &row.CreatedAt, &more); err != nil {
			return nil, fmt.Errorf("store: scan event: %w", err)
		}
		if more.Valid {
			row.More = &more.String
		}
		evs, err := unpackRow(executionID, id, row)
		if err != nil {
			return nil, err
		}
		for _, e := range evs {
			if e.ID > afterID && len(out) < limit {
				out = append(out, e)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list events: %w", err)
	}
	return out, nil
}
