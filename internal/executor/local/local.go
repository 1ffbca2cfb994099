// Package local is the executor that runs a job's command as a
// subprocess of the scheduler.
//
// The command is an argv list run without a shell, so parameters are
// never pasted into a shell line. The process gets its own process group,
// so cancelling a run stops everything it started (SIGTERM to the group,
// SIGKILL after a grace period). On Linux the process also gets SIGKILL if
// the scheduler dies, since nobody would be left to wait for it; its own
// children are not covered by that signal, which is why Recover kills the
// group it finds after a restart.
//
// A restarted scheduler cannot re-attach to a process it did not start
// (it is not its child, and its output pipe is gone), so Recover always
// declares the run lost and the engine's retries apply.
//
// The executor is not registered by an init function, since it needs a
// logger: the program wiring Talon together calls
// executor.Register("local", local.New(logger)).
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/executor"
)

// Defaults of an Executor's fields.
const (
	DefaultGrace     = 5 * time.Second
	DefaultWaitDelay = 5 * time.Second
)

// Executor runs commands as local subprocesses.
type Executor struct {
	log *slog.Logger
	// Grace is how long Cancel waits after SIGTERM before it sends SIGKILL
	// to the run's process group. Zero means DefaultGrace.
	Grace time.Duration
	// WaitDelay bounds how long Wait keeps reading output after the
	// command exited, when a background child it left behind still holds
	// the output open. Zero means DefaultWaitDelay.
	WaitDelay time.Duration
}

var _ executor.Executor = (*Executor)(nil)

// New returns a local executor that logs to logger (nil discards).
func New(logger *slog.Logger) *Executor {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Executor{log: logger}
}

// Start runs s.Job.Command with the scheduler's environment plus the
// job's env plus s.Env (later entries win), in s.Job.Dir, appending its
// stdout and stderr to s.LogPath. It returns an error naming the program
// when it cannot be found or started.
func (e *Executor) Start(ctx context.Context, s executor.Spec) (executor.Process, error) {
	if s.Job == nil || len(s.Job.Command) == 0 || s.Job.Command[0] == "" {
		return nil, errors.New("start: job has no command")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start %s: %w", s.Job.Command[0], err)
	}
	argv := s.Job.Command
	cmd := exec.Command(argv[0], argv[1:]...)
	if errors.Is(cmd.Err, exec.ErrNotFound) {
		return nil, fmt.Errorf("start %s: program %q not found in PATH", s.Job.Name, argv[0])
	}
	cmd.Env = environ(s)
	cmd.Dir = s.Job.Dir
	setSysProcAttr(cmd)
	cmd.WaitDelay = e.WaitDelay
	if cmd.WaitDelay == 0 {
		cmd.WaitDelay = DefaultWaitDelay
	}

	out, err := newOutput(s.LogPath, s.OnLine)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", s.Job.Name, err)
	}
	if out != nil {
		// One writer for both streams makes exec share one pipe, so the
		// log keeps the order in which the command wrote.
		cmd.Stdout, cmd.Stderr = out, out
	}
	if err := cmd.Start(); err != nil {
		out.close()
		if errors.Is(err, os.ErrNotExist) {
			if s.Job.Dir != "" {
				if _, serr := os.Stat(s.Job.Dir); serr != nil {
					return nil, fmt.Errorf("start %s: directory %s not found", s.Job.Name, s.Job.Dir)
				}
			}
			return nil, fmt.Errorf("start %s: program %s not found", s.Job.Name, argv[0])
		}
		return nil, fmt.Errorf("start %s: %w", s.Job.Name, err)
	}
	p := &process{
		cmd:   cmd,
		out:   out,
		grace: e.Grace,
		log:   e.log.With("run", s.Run.ID, "job", s.Job.Name, "pid", cmd.Process.Pid),
		done:  make(chan struct{}),
	}
	if p.grace == 0 {
		p.grace = DefaultGrace
	}
	p.log.Debug("process started")
	go p.wait()
	return p, nil
}

// environ is the scheduler's environment, the job's env (sorted, so runs
// are reproducible) and the run's TALON_* variables; exec keeps the last
// of duplicate keys. TALON_RUN_ID is added when the engine left it out,
// since Recover relies on it to recognise the run's process.
func environ(s executor.Spec) []string {
	env := os.Environ()
	keys := make([]string, 0, len(s.Job.Env))
	for k := range s.Job.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+s.Job.Env[k])
	}
	env = append(env, s.Env...)
	hasID := false
	for _, kv := range s.Env {
		if strings.HasPrefix(kv, "TALON_RUN_ID=") {
			hasID = true
		}
	}
	if !hasID {
		env = append(env, "TALON_RUN_ID="+strconv.FormatInt(s.Run.ID, 10))
	}
	return env
}

// process is one started command.
type process struct {
	cmd   *exec.Cmd
	out   *output
	grace time.Duration
	log   *slog.Logger

	done    chan struct{}
	outcome executor.Outcome

	mu       sync.Mutex
	cause    error // set by the first Cancel before the end
	finished bool
}

func (p *process) Handle() string { return "pid:" + strconv.Itoa(p.cmd.Process.Pid) }

func (p *process) Wait() executor.Outcome {
	<-p.done
	return p.outcome
}

func (p *process) wait() {
	err := p.cmd.Wait()
	p.out.close()
	p.mu.Lock()
	p.finished = true
	cause := p.cause
	p.mu.Unlock()

	o := executor.Outcome{ExitCode: -1}
	st := p.cmd.ProcessState
	switch {
	case st == nil:
		o.Reason = fmt.Sprintf("wait: %v", err)
	case st.Exited():
		o.ExitCode = st.ExitCode()
		o.Succeeded = o.ExitCode == 0
		o.Reason = "exit status " + strconv.Itoa(o.ExitCode)
	default:
		o.Reason = signalReason(st)
	}
	if cause != nil {
		// A cancelled run failed, even if it exited cleanly on SIGTERM:
		// the user asked for it to stop, not to finish.
		o.Succeeded = false
		o.Reason = cause.Error()
	}
	if werr := p.out.err(); werr != nil {
		p.log.Warn("run log incomplete", "err", werr)
	}
	p.log.Debug("process ended", "reason", o.Reason)
	p.outcome = o
	close(p.done)
}

// Cancel sends SIGTERM to the run's process group and SIGKILL after the
// grace period. The cause becomes the outcome's reason, unless the
// command had already ended.
func (p *process) Cancel(cause error) {
	if cause == nil {
		cause = errors.New("cancelled")
	}
	p.mu.Lock()
	if p.finished || p.cause != nil {
		p.mu.Unlock()
		return
	}
	p.cause = cause
	p.mu.Unlock()

	pgid := p.cmd.Process.Pid
	if err := signalGroup(pgid, sigTerm); err != nil {
		p.log.Warn("terminate process group", "err", err)
	}
	// The timer is not stopped when the leader exits: children that
	// ignore SIGTERM belong to the run too. The group id cannot be reused
	// while any of them lives, so the late signal only reaches the run.
	time.AfterFunc(p.grace, func() {
		if err := signalGroup(pgid, sigKill); err != nil && !isNoProcess(err) {
			p.log.Warn("kill process group", "err", err)
		}
	})
}

// Recover declares the run lost: the process, if it still runs, is not
// this scheduler's child and its output has nowhere to go. As a best
// effort it kills the process group the handle names, when /proc shows
// that group's leader is still the run's process (its environment holds
// the run's TALON_RUN_ID), so a retry does not overlap it.
func (e *Executor) Recover(_ context.Context, run talon.Run, handle string) (executor.Process, error) {
	s, ok := strings.CutPrefix(handle, "pid:")
	pid, err := strconv.Atoi(s)
	if !ok || err != nil || pid <= 1 {
		return nil, fmt.Errorf("%w: scheduler restarted; handle %q is not a local pid", executor.ErrLost, handle)
	}
	if killed := killLeftover(pid, run.ID); killed {
		e.log.Warn("killed process group of a lost run", "run", run.ID, "job", run.Job, "pid", pid)
		return nil, fmt.Errorf("%w: scheduler restarted while pid %d was running; its process group was killed", executor.ErrLost, pid)
	}
	return nil, fmt.Errorf("%w: scheduler restarted while pid %d was running", executor.ErrLost, pid)
}

// output appends the command's output to the log file and hands each
// line to onLine. Every byte reaches the file as it arrives; lines longer
// than maxLine reach onLine cut short, since they are meant for short
// "::talon" directives.
type output struct {
	mu      sync.Mutex
	f       *os.File
	onLine  func(string)
	partial []byte
	werr    error
}

const maxLine = 64 << 10

func newOutput(path string, onLine func(string)) (*output, error) {
	if path == "" && onLine == nil {
		return nil, nil
	}
	o := &output{onLine: onLine}
	if path != "" {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("create log directory: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open log: %w", err)
		}
		o.f = f
	}
	return o, nil
}

// Write never fails: a full disk must not kill the command with SIGPIPE.
// The first write error is kept for the executor's log.
func (o *output) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.f != nil && o.werr == nil {
		if _, err := o.f.Write(b); err != nil {
			o.werr = err
		}
	}
	if o.onLine == nil {
		return len(b), nil
	}
	rest := b
	for len(rest) > 0 {
		i := indexNL(rest)
		if i < 0 {
			o.appendPartial(rest)
			break
		}
		o.appendPartial(rest[:i])
		o.emit()
		rest = rest[i+1:]
	}
	return len(b), nil
}

func indexNL(b []byte) int {
	for i, c := range b {
		if c == '\n' {
			return i
		}
	}
	return -1
}

func (o *output) appendPartial(b []byte) {
	if room := maxLine - len(o.partial); room > 0 {
		if len(b) > room {
			b = b[:room]
		}
		o.partial = append(o.partial, b...)
	}
}

func (o *output) emit() {
	line := strings.TrimSuffix(string(o.partial), "\r")
	o.partial = o.partial[:0]
	o.onLine(line)
}

// close flushes a last line without a newline and closes the file.
func (o *output) close() {
	if o == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.onLine != nil && len(o.partial) > 0 {
		o.emit()
	}
	if o.f != nil {
		if err := o.f.Close(); err != nil && o.werr == nil {
			o.werr = err
		}
		o.f = nil
	}
}

func (o *output) err() error {
	if o == nil {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.werr
}

var _ io.Writer = (*output)(nil)
