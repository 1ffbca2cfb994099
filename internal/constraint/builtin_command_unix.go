//go:build unix

package constraint

import (
	"os/exec"
	"syscall"
)

// setProcessGroup puts the sensor in its own process group, so a timeout
// kills the children it started too.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

func killProcessGroup(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	// The group id is the sensor's pid, as Setpgid made it the leader.
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
		return cmd.Process.Kill()
	}
	return nil
}
