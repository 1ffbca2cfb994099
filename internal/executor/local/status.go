package local

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/talonhq/talon/internal/executor"
)

// Why a supervisor killed its command (runStatus.Killed).
const (
	killedCancel        = "cancelled"      // the scheduler cancelled the run (timeout, user)
	killedSchedulerDied = "scheduler died" // its end of the control socket closed
	killedLease         = "lease expired"  // the fencing deadline passed
)

// runStatus is how a run's command ended, as its supervisor saw it. The
// supervisor sends it to the scheduler and writes it to the run's status
// file, so it outlives the scheduler.
type runStatus struct {
	// Nonce is the execution's TALON_RUN_NONCE: a status file is only
	// believed for the execution that wrote it.
	Nonce string `json:"nonce"`
	// Pid is the command's process.
	Pid int `json:"pid"`
	// Run and Started say which run's execution this is and when it
	// started, so a file left by an earlier life of the log directory is
	// never taken for this run's.
	Run     int64     `json:"run,omitempty"`
	Started time.Time `json:"started,omitzero"`
	// Exited is set when the command exited; ExitCode is then its code,
	// else Signal is the signal that killed it.
	Exited   bool `json:"exited"`
	ExitCode int  `json:"exit_code"`
	Signal   int  `json:"signal,omitempty"`
	// Killed says why the supervisor stopped the command before it ended
	// by itself; empty when it did not. Cause is the scheduler's reason
	// for a cancel.
	Killed string `json:"killed,omitempty"`
	Cause  string `json:"cause,omitempty"`
	// Ended is when the last process of the run was gone.
	Ended time.Time `json:"ended"`
}

// outcome turns the status into the run's outcome. The exit code is the
// command's even when the supervisor killed it.
func (st runStatus) outcome() executor.Outcome {
	o := executor.Outcome{ExitCode: -1}
	if st.Exited {
		o.ExitCode = st.ExitCode
		o.Succeeded = st.ExitCode == 0
		o.Reason = "exit status " + strconv.Itoa(st.ExitCode)
	} else {
		o.Reason = "killed by signal " + strconv.Itoa(st.Signal)
	}
	switch {
	case st.endedByItself():
		return o
	case st.Killed == killedCancel:
		o.Reason = "cancelled"
		if st.Cause != "" {
			o.Reason = st.Cause
		}
	default:
		// The run is lost as any run whose scheduler could not keep it:
		// the reason says so the way the engine's does ("lost: …").
		o.Reason = "lost: " + st.killedWhy() + "; its supervisor killed it"
	}
	o.Succeeded = false
	return o
}

// endedByItself reports whether the command's own end is its outcome:
// nothing stopped it, or its supervisor's kill (the scheduler died, the
// lease expired) came when the command had already exited — a SIGKILL
// never makes a process exit with a status, so an exit status is the
// command's own, even when the kill raced with it.
func (st runStatus) endedByItself() bool {
	switch st.Killed {
	case "":
		return true
	case killedSchedulerDied, killedLease:
		return st.Exited
	}
	return false
}

// killedWhy ends the sentences "lost: …" and "its supervisor killed
// pid N when …".
func (st runStatus) killedWhy() string {
	switch st.Killed {
	case killedSchedulerDied:
		return "its scheduler died"
	case killedLease:
		return "its scheduler's lease expired"
	}
	return st.Killed
}

// statusPath is the status file of the run logging to logPath: beside
// the log, with the extension .status. It is absolute, so a scheduler
// started in another directory finds it.
func statusPath(logPath string) (string, error) {
	p, err := filepath.Abs(strings.TrimSuffix(logPath, filepath.Ext(logPath)) + ".status")
	if err != nil {
		return "", fmt.Errorf("status file of %s: %w", logPath, err)
	}
	return p, nil
}

// readStatus reads the status file at path written for the execution
// with the given nonce (any, when nonce is ""). It returns an error
// wrapping fs.ErrNotExist when there is none.
//
// The supervisor appends a record (one line of JSON) at each change, so
// the status is the last complete line: a reader never takes a record
// half written for one. A file without a complete line is one the
// supervisor has just created, for a command it has not started yet.
// A file written whole with one record, as supervisors of protocol 1
// wrote it, reads the same.
func readStatus(path, nonce string) (runStatus, error) {
	var st runStatus
	b, err := os.ReadFile(path)
	if err != nil {
		return st, fmt.Errorf("read status: %w", err)
	}
	end := bytes.LastIndexByte(b, '\n')
	if end < 0 {
		return st, fmt.Errorf("read status %s: no record yet: %w", path, os.ErrNotExist)
	}
	b = b[:end]
	b = b[bytes.LastIndexByte(b, '\n')+1:]
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("read status %s: %w", path, err)
	}
	if nonce != "" && st.Nonce != nonce {
		return runStatus{}, fmt.Errorf("read status %s: written for another execution: %w", path, os.ErrNotExist)
	}
	return st, nil
}
