package faulttest

import (
	"os/exec"
	"syscall"
)

// setDeathSignal asks Linux to kill the child when the thread that started
// it dies, so that a crashed test or soak run leaves no orphan workers.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
