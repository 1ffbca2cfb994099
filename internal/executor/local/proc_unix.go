//go:build unix && !linux

package local

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"syscall"
)

const (
	sigTerm = syscall.SIGTERM
	sigKill = syscall.SIGKILL
)

// setSysProcAttr gives the command its own process group; there is no
// parent-death signal outside Linux.
func setSysProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

func signalGroup(pgid int, sig syscall.Signal) error {
	return syscall.Kill(-pgid, sig)
}

func isNoProcess(err error) bool { return errors.Is(err, syscall.ESRCH) }

// killLeftover needs /proc to tell the run's process from a reused pid,
// so elsewhere it leaves the process alone.
func killLeftover(int, int64) bool { return false }

// signalReason says how a process that did not exit ended.
func signalReason(st *os.ProcessState) string {
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "killed by signal " + strconv.Itoa(int(ws.Signal()))
	}
	return st.String()
}
