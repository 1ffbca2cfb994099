//go:build unix && !linux

package local

import (
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"syscall"

	"github.com/talonhq/talon/internal/executor"
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

// killRun needs /proc to tell the run's processes from a reused pid, so
// elsewhere it leaves them alone.
func killRun(*slog.Logger, int64, handle) int { return 0 }

// supState is an Executor's supervisor: there is none here.
type supState struct{}

// supervised says whether runs are started under a supervisor: only on
// Linux, which has subreapers and /proc.
const supervised = false

func (e *Executor) startSupervised(executor.Spec, *exec.Cmd, *executor.Output, *slog.Logger) (executor.Process, error) {
	return nil, errors.New("no local supervisor on this system")
}

// signalReason says how a process that did not exit ended.
func signalReason(st *os.ProcessState) string {
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "killed by signal " + strconv.Itoa(int(ws.Signal()))
	}
	return st.String()
}
