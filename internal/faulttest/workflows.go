package faulttest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"github.com/cloacina-go/cloacina"
)

// Names of the workflows and tasks a worker registers.
const (
	// ChainWorkflow is a chain of three tasks, a -> b -> c.
	ChainWorkflow = "chain"
	// PoisonWorkflow is boom -> after, where boom crashes its worker.
	PoisonWorkflow = "poison"

	// KeyField is the context field holding the execution's key, chosen by
	// the producer and unique among executions. Task bodies record it in
	// the ledger (they do not know the execution id).
	KeyField = "soak_key"
)

// ChainTasks are the tasks of ChainWorkflow, in order.
var ChainTasks = []string{"a", "b", "c"}

// Bodies configures the task bodies of the workflows.
type Bodies struct {
	// Ledger receives a record for every completed run of a chain task;
	// nil records nothing.
	Ledger *Ledger
	// A chain task sleeps a random duration in [MinSleep, MaxSleep],
	// returning early when its context ends.
	MinSleep, MaxSleep time.Duration
	// Crash is the body of the poison task "boom": it should end the
	// process (os.Exit). When nil, boom panics; a producer's bodies never
	// run.
	Crash func()
}

// Workflows builds the named workflows (ChainWorkflow, PoisonWorkflow).
func Workflows(b Bodies, names ...string) ([]*cloacina.Workflow, error) {
	var out []*cloacina.Workflow
	for _, name := range names {
		var wb *cloacina.WorkflowBuilder
		switch name {
		case ChainWorkflow:
			wb = cloacina.NewWorkflow(ChainWorkflow).Description("three sleeping tasks that record their runs in a ledger")
			for i, task := range ChainTasks {
				var opts []cloacina.TaskOption
				if i > 0 {
					opts = append(opts, cloacina.DependsOn(ChainTasks[i-1]))
				}
				wb = wb.Task(task, b.step(task), opts...)
			}
		case PoisonWorkflow:
			wb = cloacina.NewWorkflow(PoisonWorkflow).Description("a task that crashes its worker every time").
				Task("boom", b.boom).
				Task("after", func(context.Context, *cloacina.Context) error { return nil }, cloacina.DependsOn("boom"))
		default:
			return nil, fmt.Errorf("faulttest: unknown workflow %q (want %s or %s)", name, ChainWorkflow, PoisonWorkflow)
		}
		wf, err := wb.Build()
		if err != nil {
			return nil, err
		}
		out = append(out, wf)
	}
	return out, nil
}

// step is the body of a chain task.
func (b Bodies) step(task string) cloacina.TaskFunc {
	return func(ctx context.Context, c *cloacina.Context) error {
		start := time.Now()
		key, err := cloacina.GetAs[string](c, KeyField)
		if err != nil {
			return cloacina.Permanent(fmt.Errorf("the context has no %s: %w", KeyField, err))
		}
		d := b.MinSleep
		if b.MaxSleep > b.MinSleep {
			d += rand.N(b.MaxSleep - b.MinSleep + 1)
		}
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
			return ctx.Err()
		}
		if b.Ledger != nil {
			if err := b.Ledger.Record(key, task, start, time.Now()); err != nil {
				return cloacina.Permanent(err)
			}
		}
		return c.Set(task+"_pid", os.Getpid())
	}
}

// boom is the body of the poison task.
func (b Bodies) boom(context.Context, *cloacina.Context) error {
	if b.Crash == nil {
		panic("faulttest: the poison task ran in a process without a Crash function")
	}
	b.Crash()
	return errors.New("faulttest: Crash returned")
}
