package cloacina

// ExecutionStatus is the state of a workflow execution.
type ExecutionStatus string

// Execution states. Completed, Failed and Cancelled are terminal.
const (
	ExecutionPending   ExecutionStatus = "Pending"
	ExecutionRunning   ExecutionStatus = "Running"
	ExecutionPaused    ExecutionStatus = "Paused"
	ExecutionCompleted ExecutionStatus = "Completed"
	ExecutionFailed    ExecutionStatus = "Failed"
	ExecutionCancelled ExecutionStatus = "Cancelled"
)

// Terminal reports whether no further change can happen to an execution in
// state s.
func (s ExecutionStatus) Terminal() bool {
	return s == ExecutionCompleted || s == ExecutionFailed || s == ExecutionCancelled
}

// Valid reports whether s is one of the defined execution states.
func (s ExecutionStatus) Valid() bool {
	switch s {
	case ExecutionPending, ExecutionRunning, ExecutionPaused, ExecutionCompleted, ExecutionFailed, ExecutionCancelled:
		return true
	}
	return false
}

// TaskStatus is the state of one task within an execution.
type TaskStatus string

// Task states. Completed, Failed and Skipped are terminal.
const (
	TaskNotStarted TaskStatus = "NotStarted"
	TaskReady      TaskStatus = "Ready"
	TaskRunning    TaskStatus = "Running"
	TaskCompleted  TaskStatus = "Completed"
	TaskFailed     TaskStatus = "Failed"
	TaskSkipped    TaskStatus = "Skipped"
)

// Terminal reports whether a task in state s will not run again.
func (s TaskStatus) Terminal() bool {
	return s == TaskCompleted || s == TaskFailed || s == TaskSkipped
}

// Valid reports whether s is one of the defined task states.
func (s TaskStatus) Valid() bool {
	switch s {
	case TaskNotStarted, TaskReady, TaskRunning, TaskCompleted, TaskFailed, TaskSkipped:
		return true
	}
	return false
}
