package store

import (
	"slices"
	"testing"
	"time"
)

// Events packed into one row come back as they went in, whatever their
// text: the hand-written encoder must write JSON that encoding/json reads
// back to the same strings.
func TestPackEventsRoundTrip(t *testing.T) {
	base := time.UnixMicro(1_700_000_000_000_000)
	texts := []string{"", "plain", `quote " and \ backslash`, "tab\tnewline\n", "<html>&amp;", "ünïcode 🎉", "\x00\x1f\x7f", "NULL", "{a,b}"}
	var events []*Event
	for i, s := range texts {
		events = append(events,
			&Event{ExecutionID: "e1", TaskName: s, Type: "T" + s, Attempt: i, Message: s, Worker: s, CreatedAt: base.Add(time.Duration(i%3) * time.Second)},
			&Event{ExecutionID: "e2", Type: "X", Worker: "w", CreatedAt: base})
	}
	rows := packEvents(events)
	if len(rows) != 2 {
		t.Fatalf("%d rows for two executions' %d events, want 2", len(rows), len(events))
	}
	got := map[string][]*Event{}
	for i, r := range rows {
		evs, err := unpackRow(r.ExecutionID, int64(i+1), r)
		if err != nil {
			t.Fatalf("row %d (more %v): %v", i, r.More, err)
		}
		got[r.ExecutionID] = append(got[r.ExecutionID], evs...)
	}
	var want1, want2 []*Event
	for _, e := range events {
		if e.ExecutionID == "e1" {
			want1 = append(want1, e)
		} else {
			want2 = append(want2, e)
		}
	}
	for id, want := range map[string][]*Event{"e1": want1, "e2": want2} {
		if len(got[id]) != len(want) {
			t.Fatalf("%s: %d events back, want %d", id, len(got[id]), len(want))
		}
		for i, g := range got[id] {
			w := want[i]
			if g.TaskName != w.TaskName || g.Type != w.Type || g.Attempt != w.Attempt || g.Message != w.Message || g.Worker != w.Worker || !g.CreatedAt.Equal(w.CreatedAt) {
				t.Errorf("%s event %d = %+v, want %+v", id, i, g, w)
			}
		}
	}
}

func BenchmarkPackEvents(b *testing.B) {
	now := time.Now()
	var events []*Event
	for i := range 1000 {
		id := "0190a6c2-1111-7000-8000-" + string(rune('a'+i%26)) + "00000000000"
		events = append(events,
			&Event{ExecutionID: id + string(rune('a'+i/26%26)), TaskName: "t", Type: "task_started", Attempt: 1, Worker: "worker-1234abcd", CreatedAt: now},
		)
	}
	for _, e := range slices.Clone(events) {
		events = append(events, &Event{ExecutionID: e.ExecutionID, Type: "execution_started", Worker: "worker-1234abcd", CreatedAt: now})
	}
	b.ReportAllocs()
	for b.Loop() {
		packEvents(events)
	}
}
