//go:build !unix

package local

import (
	"errors"
	"os"
	"os/exec"
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

func killLeftover(int, int64) bool { return false }

func signalReason(st *os.ProcessState) string { return st.String() }
