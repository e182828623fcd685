package cloacina_test

import (
	"context"
	"testing"
	"time"

	"github.com/cloacina-go/cloacina"
)

// TestConfigApply checks that Apply applies options in order, later ones
// winning, adds workflows up, and ignores nil options.
func TestConfigApply(t *testing.T) {
	wf1 := mustWorkflowNamed(t, "one")
	wf2 := mustWorkflowNamed(t, "two")
	cfg := cloacina.Config{DatabaseURL: "sqlite://x.db"}
	cfg.Apply(
		cloacina.WithMaxConcurrentTasks(2),
		nil,
		cloacina.WithWorkflows(wf1),
		cloacina.WithMaxConcurrentTasks(7),
		cloacina.WithWorkflows(wf2),
		cloacina.WithHeartbeat(time.Second, 5*time.Second),
	)
	cfg.Apply()
	if cfg.DatabaseURL != "sqlite://x.db" || cfg.MaxConcurrentTasks != 7 ||
		cfg.HeartbeatInterval != time.Second || cfg.StaleClaimAfter != 5*time.Second {
		t.Errorf("Apply gave %+v", cfg)
	}
	if len(cfg.Workflows) != 2 || cfg.Workflows[0] != wf1 || cfg.Workflows[1] != wf2 {
		t.Errorf("Workflows = %v, want [one two]", cfg.Workflows)
	}
}

func mustWorkflowNamed(t *testing.T, name string) *cloacina.Workflow {
	t.Helper()
	wf, err := cloacina.NewWorkflow(name).Task("t", func(_ context.Context, _ *cloacina.Context) error { return nil }).Build()
	if err != nil {
		t.Fatal(err)
	}
	return wf
}
