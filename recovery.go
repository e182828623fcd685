package cloacina

import (
	"context"
	"fmt"
	"time"

	"github.com/cloacina-go/cloacina/internal/store"
)

// DefaultMaxRecoveries is how often a task interrupted by a vanished
// runner is put back to Ready before it fails as abandoned.
const DefaultMaxRecoveries = 3

// recoverTasks puts interrupted Running tasks back to Ready (without using
// up an attempt) or, once they were recovered MaxRecoveries times, fails
// them as abandoned, so a task that kills its worker cannot loop forever.
// Each update is guarded by the claim it found, so a runner that is in fact
// alive and finishing the task wins or loses cleanly.
//
// It returns the executions whose tasks were abandoned (to advance), how
// many tasks went back to Ready, and the events.
func (tn *tenant) recoverTasks(ctx context.Context, tx store.Tx, tasks []*store.Task, why string, now time.Time) (map[string]bool, int, []*store.Event, error) {
	touched := map[string]bool{}
	if len(tasks) == 0 {
		return touched, 0, nil, nil
	}
	ups := make([]store.TaskUpdate, len(tasks))
	for i, t := range tasks {
		u := store.TaskUpdate{ID: t.ID, From: string(TaskRunning), Attempt: t.Attempt, ClaimedBy: t.ClaimedBy,
			ClaimedAt: t.StartedAt, Release: true}
		if t.RecoveryCount >= tn.e.cfg.MaxRecoveries {
			u.To, u.CompletedAt = string(TaskFailed), now
			u.Error = fmt.Sprintf("ABANDONED: %s; the task was recovered %d times", why, t.RecoveryCount)
		} else {
			u.To, u.ReadyAt, u.UndoAttempt, u.Recovered = string(TaskReady), now, true, true
		}
		ups[i] = u
	}
	changed, err := tx.UpdateTasks(ctx, ups)
	if err != nil {
		return nil, 0, nil, err
	}
	readied := 0
	var events []*store.Event
	for i, t := range tasks {
		if !changed[t.ID] {
			continue
		}
		// The interrupted attempt's start, which its claim did not write
		// (see startExecutions), by the worker that claimed it.
		events = append(events, startedEvent(t, t.ClaimedBy))
		ev := &store.Event{ExecutionID: t.ExecutionID, TaskName: t.Name, Attempt: t.Attempt, Worker: tn.e.cfg.WorkerID, CreatedAt: now}
		if ups[i].To == string(TaskFailed) {
			ev.Type, ev.Message = string(EventTaskAbandoned), ups[i].Error
			touched[t.ExecutionID] = true
		} else {
			ev.Type, ev.Message = string(EventTaskRecovered), fmt.Sprintf("%s (claimed by %s)", why, t.ClaimedBy)
			readied++
		}
		events = append(events, ev)
	}
	return touched, readied, events, nil
}
