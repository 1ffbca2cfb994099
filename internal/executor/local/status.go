package local

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/executor"
)

// Why a supervisor killed its command (runStatus.Killed).
const (
	killedCancel        = "cancelled"      // the scheduler cancelled the run (timeout, user)
	killedSchedulerDied = "scheduler died" // its end of the control socket closed
	killedLease         = "lease expired"  // the fencing deadline passed
)

// runStatus is how a run's command ended, as its supervisor saw it. The
// supervisor sends it to the scheduler and appends it to the status
// stream of the run's log directory, so it outlives the scheduler.
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

// appendJSON appends the status in JSON, as json.Marshal writes it, to
// b: the supervisor writes two records a run, and reflection made up a
// good part of its own cost.
func (st runStatus) appendJSON(b []byte) []byte {
	b = append(b, `{"nonce":`...)
	b = appendJSONString(b, st.Nonce)
	b = append(b, `,"pid":`...)
	b = strconv.AppendInt(b, int64(st.Pid), 10)
	if st.Run != 0 {
		b = append(b, `,"run":`...)
		b = strconv.AppendInt(b, st.Run, 10)
	}
	if !st.Started.IsZero() {
		b = append(b, `,"started":`...)
		b = appendJSONTime(b, st.Started)
	}
	b = append(b, `,"exited":`...)
	b = strconv.AppendBool(b, st.Exited)
	b = append(b, `,"exit_code":`...)
	b = strconv.AppendInt(b, int64(st.ExitCode), 10)
	if st.Signal != 0 {
		b = append(b, `,"signal":`...)
		b = strconv.AppendInt(b, int64(st.Signal), 10)
	}
	if st.Killed != "" {
		b = append(b, `,"killed":`...)
		b = appendJSONString(b, st.Killed)
	}
	if st.Cause != "" {
		b = append(b, `,"cause":`...)
		b = appendJSONString(b, st.Cause)
	}
	b = append(b, `,"ended":`...)
	b = appendJSONTime(b, st.Ended)
	return append(b, '}')
}

// appendJSONString appends s as a JSON string, as json.Marshal does.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			// Not plain: encoding/json's escapes.
			j, _ := json.Marshal(s) // a string always encodes
			return append(b, j...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendJSONTime appends t as time.Time's MarshalJSON does, for the
// years it accepts (0 to 9999: a clock's, or the zero time).
func appendJSONTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
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

// streamName is this host's status stream in a log directory: the file,
// beside the logs, to which the supervisors of this host's runs logging
// there append their records, runs.HOST.status. One file for all the
// runs of a directory, opened once by each supervisor, rather than one
// per run: creating a file costs about as much as starting a small
// command. One per host, since appends are atomic only on a local file
// system: a log directory shared between hosts (NFS) gets a stream from
// each.
var streamName = sync.OnceValue(func() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		return "runs.status"
	}
	host = strings.Map(func(r rune) rune {
		if r == '/' || r == 0 || r == filepath.Separator {
			return '_'
		}
		return r
	}, host)
	return "runs." + host + ".status"
})

// isStreamName says whether a file name is a status stream's, of any
// host.
func isStreamName(name string) bool {
	return strings.HasPrefix(name, "runs.") && strings.HasSuffix(name, ".status")
}

// streamPath is this host's status stream for the run logging to
// logPath. It is absolute, so a scheduler started in another directory
// finds it.
func streamPath(logPath string) (string, error) {
	p, err := filepath.Abs(filepath.Join(filepath.Dir(logPath), streamName()))
	if err != nil {
		return "", fmt.Errorf("status stream of %s: %w", logPath, err)
	}
	return p, nil
}

// streamsIn lists the status streams in dir, this host's first.
func streamsIn(dir string) []string {
	own := filepath.Join(dir, streamName())
	out := []string{own}
	d, err := os.Open(dir)
	if err != nil {
		return out
	}
	defer d.Close()
	for {
		names, err := d.Readdirnames(1024)
		for _, n := range names {
			if isStreamName(n) && n != streamName() {
				out = append(out, filepath.Join(dir, n))
			}
		}
		if err != nil {
			return out
		}
	}
}

// statusPath is the status file that supervisors of protocols 1 and 2
// kept for the run logging to logPath alone: beside the log, with the
// extension .status.
func statusPath(logPath string) (string, error) {
	p, err := filepath.Abs(strings.TrimSuffix(logPath, filepath.Ext(logPath)) + ".status")
	if err != nil {
		return "", fmt.Errorf("status file of %s: %w", logPath, err)
	}
	return p, nil
}

// readStatus reads the status that the file at path holds for the
// execution with the given nonce (any, when nonce is ""). It returns an
// error wrapping fs.ErrNotExist when there is none.
//
// Supervisors append a record (one line of JSON) at each change, so the
// status is the execution's last complete line: a reader never takes a
// record half written for one. The file is a directory's status stream,
// holding the records of many executions, or the file of one execution
// that supervisors of protocols 1 and 2 wrote; both read the same.
func readStatus(path, nonce string) (runStatus, error) {
	hint := ""
	if nonce != "" {
		hint = `"nonce":"` + nonce + `"`
	}
	st, err := lastStatus(path, hint, func(st runStatus) bool { return nonce == "" || st.Nonce == nonce })
	if errors.Is(err, fs.ErrNotExist) && nonce != "" {
		return st, fmt.Errorf("read status %s: nothing recorded for this execution: %w", path, err)
	}
	return st, err
}

// readRunStatus reads the last status that the status stream at path
// holds for an execution of run, started after the run was created: a
// record of another deployment's run of the same id, from before, is not
// the run's.
func readRunStatus(path string, run talon.Run) (runStatus, error) {
	return lastStatus(path, `"run":`+strconv.FormatInt(run.ID, 10)+`,`, func(st runStatus) bool {
		return st.Run == run.ID && !st.Started.Before(run.Created.Add(-time.Second)) && validNonce(st.Nonce) && st.Pid > 1
	})
}

// statusChunk is how much of a status stream is read at once, from its
// end.
const statusChunk = 64 << 10

// lastStatus returns the last complete record of the file at path that
// keep accepts; only the lines holding hint are decoded. It reads the
// file backwards from its end, so the records of a recent execution are
// found at once however long the file. It returns an error wrapping
// fs.ErrNotExist when the file or such a record does not exist.
func lastStatus(path, hint string, keep func(runStatus) bool) (runStatus, error) {
	f, err := os.Open(path)
	if err != nil {
		return runStatus{}, fmt.Errorf("read status: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return runStatus{}, fmt.Errorf("read status: %w", err)
	}
	pos := fi.Size()
	// data is the file from pos to the end of the last complete line not
	// yet looked at (without its newline); the tail after the file's last
	// newline is a record being written, and dropped.
	var data []byte
	complete := false
	for {
		if pos > 0 {
			n := min(pos, statusChunk)
			buf := make([]byte, n, n+int64(len(data)))
			if _, err := f.ReadAt(buf, pos-n); err != nil {
				return runStatus{}, fmt.Errorf("read status %s: %w", path, err)
			}
			data = append(buf, data...)
			pos -= n
		}
		if !complete {
			i := bytes.LastIndexByte(data, '\n')
			if i < 0 {
				if pos == 0 {
					return runStatus{}, fmt.Errorf("read status %s: no record: %w", path, fs.ErrNotExist)
				}
				continue
			}
			data, complete = data[:i], true
		}
		for {
			i := bytes.LastIndexByte(data, '\n')
			if i < 0 && pos > 0 {
				break // the line's start is in the next chunk
			}
			line := data[i+1:]
			if st, ok := decodeStatus(line, hint); ok && keep(st) {
				return st, nil
			}
			if i < 0 {
				return runStatus{}, fmt.Errorf("read status %s: no record: %w", path, fs.ErrNotExist)
			}
			data = data[:i]
		}
	}
}

// recordStart is how every record begins (the first field of runStatus).
var recordStart = []byte(`{"nonce":`)

// decodeStatus decodes a line of a status file that holds hint. Should a
// supervisor's write have been cut short (a full disk), the next record
// follows the part written on the same line: the last record on the line
// is taken.
func decodeStatus(line []byte, hint string) (runStatus, bool) {
	var st runStatus
	if hint != "" && !bytes.Contains(line, []byte(hint)) {
		return st, false
	}
	if err := json.Unmarshal(line, &st); err == nil {
		return st, true
	}
	if i := bytes.LastIndex(line, recordStart); i > 0 {
		st = runStatus{}
		if err := json.Unmarshal(line[i:], &st); err == nil {
			return st, true
		}
	}
	return runStatus{}, false
}
