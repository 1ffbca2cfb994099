package local

import (
	"bytes"
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

// setSysProcAttr gives the command its own process group, so Cancel can
// signal everything it started, and asks the kernel to SIGKILL it when the
// scheduler dies. Pdeathsig fires when the OS thread that started the
// child exits; the Go runtime does not retire threads of goroutines that
// did not lock them, so in practice that is the scheduler's death.
func setSysProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func signalGroup(pgid int, sig syscall.Signal) error {
	return syscall.Kill(-pgid, sig)
}

func isNoProcess(err error) bool { return errors.Is(err, syscall.ESRCH) }

// killLeftover kills the process group led by pid if /proc shows that pid
// still leads its own group and carries the run's id in its environment,
// so a reused pid is never killed by mistake. It reports whether it sent
// the signal.
func killLeftover(pid int, runID int64) bool {
	pgid, err := syscall.Getpgid(pid)
	if err != nil || pgid != pid {
		return false
	}
	env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return false
	}
	want := []byte("TALON_RUN_ID=" + strconv.FormatInt(runID, 10))
	found := false
	for kv := range bytes.SplitSeq(env, []byte{0}) {
		if bytes.Equal(kv, want) {
			found = true
			break
		}
	}
	if !found {
		return false
	}
	return syscall.Kill(-pid, syscall.SIGKILL) == nil
}

// signalReason says how a process that did not exit ended.
func signalReason(st *os.ProcessState) string {
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "killed by signal " + strconv.Itoa(int(ws.Signal()))
	}
	return st.String()
}
