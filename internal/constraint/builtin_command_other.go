//go:build !unix

package constraint

import "os/exec"

// Without process groups, a timeout kills the sensor itself only.
func setProcessGroup(*exec.Cmd) {}

func killProcessGroup(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	return cmd.Process.Kill()
}
