//go:build !unix

package local

import (
	"errors"
	"log/slog"
	"os"
	"os/exec"

	"github.com/talonhq/talon/internal/executor"
)

// Without process groups, the command alone is signalled, and a cancel
// kills it at once.
const (
	sigTerm = 0
	sigKill = 0
)

func setSysProcAttr(*exec.Cmd) {}

func signalGroup(pid int, _ int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}

func isNoProcess(err error) bool { return errors.Is(err, os.ErrProcessDone) }

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

func signalReason(st *os.ProcessState) string { return st.String() }
