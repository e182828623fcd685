package cloacina_test

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina"
)

func eventTypes(evs []cloacina.Event) []cloacina.EventType {
	var out []cloacina.EventType
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

// Under EventLogExceptions a runner records what departs from the plain
// course (here a retry) and nothing of it (created, ready, started,
// completed), while EventLogAll records both.
func TestEventLogExceptions(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	build := func() *cloacina.Workflow {
		var calls atomic.Int32
		return cloacina.NewWorkflow("flaky").
			Task("once", func(context.Context, *cloacina.Context) error {
				if calls.Add(1) == 1 {
					return errors.New("first attempt fails")
				}
				return nil
			}, cloacina.Retry(cloacina.RetryPolicy{MaxAttempts: 2, InitialDelay: time.Millisecond})).
			Task("after", okTask, cloacina.DependsOn("once")).
			MustBuild()
	}
	plain := []cloacina.EventType{cloacina.EventExecutionCreated, cloacina.EventExecutionStarted, cloacina.EventExecutionCompleted,
		cloacina.EventTaskReady, cloacina.EventTaskStarted, cloacina.EventTaskCompleted}
	for _, tc := range []struct {
		log       cloacina.EventLog
		wantPlain bool
	}{{cloacina.EventLogAll, true}, {cloacina.EventLogExceptions, false}} {
		t.Run(tc.log.String(), func(t *testing.T) {
			r := newRunner(t, []*cloacina.Workflow{build()}, cloacina.WithEventLog(tc.log))
			res := execute(t, ctx, r, "flaky", nil)
			wantStatus(t, res, cloacina.ExecutionCompleted)
			wantTask(t, res, "once", cloacina.TaskCompleted, 2)
			types := eventTypes(eventsOf(t, ctx, r, res.ExecutionID))
			if !slices.Contains(types, cloacina.EventTaskRetryScheduled) {
				t.Errorf("events %v: no %s", types, cloacina.EventTaskRetryScheduled)
			}
			for _, p := range plain {
				if slices.Contains(types, p) != tc.wantPlain {
					t.Errorf("events %v: %s recorded = %v, want %v", types, p, !tc.wantPlain, tc.wantPlain)
				}
			}
			// The result still says when each task ran.
			for _, task := range res.Tasks {
				if task.StartedAt.IsZero() || task.CompletedAt.IsZero() {
					t.Errorf("task %s: started %v, completed %v", task.Name, task.StartedAt, task.CompletedAt)
				}
			}
		})
	}
}

func TestParseEventLog(t *testing.T) {
	for _, l := range []cloacina.EventLog{cloacina.EventLogAll, cloacina.EventLogExceptions} {
		if got, err := cloacina.ParseEventLog(l.String()); err != nil || got != l {
			t.Errorf("ParseEventLog(%q) = %v, %v", l.String(), got, err)
		}
	}
	if _, err := cloacina.ParseEventLog("some"); !errors.Is(err, cloacina.ErrInvalidOption) {
		t.Errorf("ParseEventLog(some) error = %v, want ErrInvalidOption", err)
	}
	url, _ := sqliteURL(t)
	_, err := cloacina.NewRunner(testCtx(t, 10*time.Second), url, cloacina.WithEventLog(cloacina.EventLog(7)))
	if !errors.Is(err, cloacina.ErrInvalidOption) {
		t.Errorf("NewRunner with EventLog(7) error = %v, want ErrInvalidOption", err)
	}
}
