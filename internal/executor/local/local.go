// Package local is the executor that runs a job's command as a
// subprocess of the scheduler.
//
// The command is an argv list run without a shell, so parameters are
// never pasted into a shell line. It gets its own process group, so
// cancelling a run stops everything it started (SIGTERM, SIGKILL after a
// grace period).
//
// On Linux the runs have a supervisor: the executor starts its own
// executable again, once (with its first run, and again after the
// supervisor ended or sat idle), as a small process that starts each
// run's command on request, stays its parent, and is the subreaper of
// everything the commands start. It tells a run's processes by their
// process group and by the run's TALON_RUN_ID and a nonce unique to the
// execution (TALON_RUN_NONCE) in their environment, so descendants that
// leave the process group (setsid, double fork) are still the run's.
// Through a socket to the scheduler it notices the scheduler's death
// (even a SIGKILL) and then kills every run's whole tree at once; it
// also kills a run's tree when its self-fencing deadline passes
// (executor.Fencer) while the scheduler is frozen or cut off from the
// state store. When a command exits, the supervisor stops what it left
// running (SIGTERM, SIGKILL after the grace period) before the outcome is
// reported, so nothing of a run outlives it and a retry never overlaps
// it. It keeps the outcome in a status file beside the run's log,
// recorded when the command starts, when it exits and when the run ends.
// Should the supervisor itself die, its commands get SIGKILL from the
// kernel, and the scheduler kills what they left and reports the runs
// ended.
//
// One supervisor for every run, rather than one per run: starting a
// second Go program per run cost more than starting the command. The price is a process that leaves its group and also drops
// TALON_RUN_ID and the nonce from its environment (an orphan of env -i):
// nothing tells it from another run's, so the supervisor stops it only
// once no run is going, or when the scheduler dies.
//
// A restarted scheduler cannot re-attach to a run still going: the
// command is not its child and its output pipe is gone. Recover kills
// whatever is left of the run (after checking it is the run's, by
// TALON_RUN_ID and the nonce in its environment), its supervisor first,
// and declares it lost; but a run that ended while no scheduler watched
// it is re-attached with the outcome its supervisor recorded, so a
// success is never recorded as a failure.
//
// Elsewhere the command is started directly: there is no supervisor, no
// fencing deadline, and nothing survives a restart.
//
// The executor is not registered by an init function, since it needs a
// logger: the program wiring Talon together calls
// executor.Register("local", local.New(logger)).
package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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

// nonceEnv is the variable holding a random value unique to one
// execution of a run. With TALON_RUN_ID it tells the run's processes from
// a reused pid or another Talon deployment's run of the same id.
const nonceEnv = "TALON_RUN_NONCE"

// Executor runs commands as local subprocesses.
type Executor struct {
	log *slog.Logger
	// Grace is how long a cancel waits after SIGTERM before it sends
	// SIGKILL to the run's processes; the supervisor gives what a command
	// leaves running when it exits as long. Zero means DefaultGrace.
	Grace time.Duration
	// WaitDelay bounds how long Wait keeps reading output after the
	// command exited, when a process it left behind still holds the
	// output open. Zero means DefaultWaitDelay.
	WaitDelay time.Duration

	supState // the supervisor of its runs, where there is one
}

var _ executor.Executor = (*Executor)(nil)

// New returns a local executor that logs to logger (nil discards).
func New(logger *slog.Logger) *Executor {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Executor{log: logger}
}

func (e *Executor) grace() time.Duration {
	if e.Grace == 0 {
		return DefaultGrace
	}
	return e.Grace
}

func (e *Executor) waitDelay() time.Duration {
	if e.WaitDelay == 0 {
		return DefaultWaitDelay
	}
	return e.WaitDelay
}

// Start runs s.Job.Command with the scheduler's environment plus the
// job's env plus s.Env (later entries win), in s.Job.Dir, appending its
// stdout and stderr to s.LogPath. It returns an error naming the program
// when it cannot be found or started. On Linux the process it returns is
// an executor.Fencer, and s.FenceIn is its first deadline.
func (e *Executor) Start(ctx context.Context, s executor.Spec) (executor.Process, error) {
	if s.Job == nil || len(s.Job.Command) == 0 || s.Job.Command[0] == "" {
		return nil, errors.New("start: job has no command")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start %s: %w", s.Job.Command[0], err)
	}
	argv := s.Job.Command
	// The program is looked up in the scheduler's PATH, here, whether or
	// not a supervisor starts it.
	cmd := exec.Command(argv[0], argv[1:]...)
	if errors.Is(cmd.Err, exec.ErrNotFound) {
		return nil, fmt.Errorf("start %s: program %q not found in PATH", s.Job.Name, argv[0])
	}
	if cmd.Err != nil {
		return nil, fmt.Errorf("start %s: %w", s.Job.Name, cmd.Err)
	}
	out, err := executor.NewOutput(s, executor.OutputOptions{Logger: e.log})
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", s.Job.Name, err)
	}
	log := e.log.With("run", s.Run.ID, "job", s.Job.Name)
	var p executor.Process
	if supervised {
		p, err = e.startSupervised(s, cmd, out, log)
	} else {
		p, err = e.startDirect(s, cmd, out, log)
	}
	if err != nil {
		_ = out.Close()
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
	return p, nil
}

// environ is the scheduler's environment, the job's literal env (sorted,
// so runs are reproducible), s.Env (the job's secrets, resolved by the
// engine when the run starts, and the run's TALON_* variables) and extra;
// of entries with the same key, only the last is kept, in its place
// among the others, as os/exec does (execve passes every duplicate on,
// and getenv finds the first). TALON_RUN_ID is added when the engine
// left it out, since Recover relies on it to recognise the run's
// processes.
func environ(s executor.Spec, extra ...string) []string {
	keys := make([]string, 0, len(s.Job.Env))
	for k := range s.Job.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	add := make([]string, 0, len(keys)+len(s.Env)+1+len(extra))
	for _, k := range keys {
		if v := s.Job.Env[k]; !v.Secret() {
			add = append(add, k+"="+v.Value)
		}
	}
	add = append(add, s.Env...)
	hasID := false
	for _, kv := range s.Env {
		if strings.HasPrefix(kv, "TALON_RUN_ID=") {
			hasID = true
		}
	}
	if !hasID {
		add = append(add, "TALON_RUN_ID="+strconv.FormatInt(s.Run.ID, 10))
	}
	add = dedupEnv(append(add, extra...))
	base, baseKeys := schedulerEnv()
	for _, kv := range add {
		if k, ok := envKey(kv); ok && baseKeys[k] {
			// The job or the run replaces a variable of the scheduler.
			return dedupEnv(append(slices.Clip(base), add...))
		}
	}
	return append(slices.Clip(base), add...)
}

// schedEnv is the scheduler's environment without duplicates, and its
// keys, kept while os.Environ returns the same: deduplicated at every
// run, it cost a good part of a start.
var schedEnv struct {
	sync.Mutex
	raw  []string
	env  []string
	keys map[string]bool
}

// schedulerEnv returns the scheduler's environment without duplicates,
// and its keys. Neither may be modified.
func schedulerEnv() ([]string, map[string]bool) {
	raw := os.Environ()
	schedEnv.Lock()
	defer schedEnv.Unlock()
	if schedEnv.keys == nil || !slices.Equal(raw, schedEnv.raw) {
		schedEnv.raw = raw
		schedEnv.env = dedupEnv(raw)
		schedEnv.keys = make(map[string]bool, len(schedEnv.env))
		for _, kv := range schedEnv.env {
			if k, ok := envKey(kv); ok {
				schedEnv.keys[k] = true
			}
		}
	}
	return schedEnv.env, schedEnv.keys
}

// envKey is the key of an environment entry, if it has one. A key may
// start with "=" (as Windows' "=C:" do).
func envKey(kv string) (string, bool) {
	if i := strings.IndexByte(kv[min(1, len(kv)):], '='); i >= 0 {
		return kv[:i+min(1, len(kv))], true
	}
	return "", false
}

// dedupEnv returns env without the entries whose key a later entry
// repeats. Entries without "=" are kept.
func dedupEnv(env []string) []string {
	seen := make(map[string]bool, len(env))
	out := make([]string, len(env))
	i := len(env)
	for j := len(env) - 1; j >= 0; j-- {
		kv := env[j]
		if k, ok := envKey(kv); ok {
			if seen[k] {
				continue
			}
			seen[k] = true
		}
		i--
		out[i] = kv
	}
	return out[i:]
}

// handle is what the local executor stores for a run:
//
//	pid:PID [nonce:NONCE [status:PATH]]
//
// PID is the command's process, which leads the run's process group;
// NONCE is the execution's TALON_RUN_NONCE; PATH is the status file to
// which the supervisor appends the execution's records, among those of
// other executions (it may hold spaces, so it comes last). Runs started without a supervisor, and by Talon versions
// before it, store "pid:PID" alone.
type handle struct {
	pid    int
	nonce  string
	status string
}

func (h handle) String() string {
	s := "pid:" + strconv.Itoa(h.pid)
	if h.nonce != "" {
		s += " nonce:" + h.nonce
		if h.status != "" {
			s += " status:" + h.status
		}
	}
	return s
}

func parseHandle(s string) (handle, error) {
	var h handle
	if path, ok := strings.CutPrefix(s, "status:"); ok && path != "" {
		// Located, not recorded (see Locate): the pid and nonce are in
		// the status file.
		h.status = path
		return h, nil
	}
	rest, ok := strings.CutPrefix(s, "pid:")
	if !ok {
		return h, errors.New("no pid")
	}
	pid, rest, _ := strings.Cut(rest, " ")
	n, err := strconv.Atoi(pid)
	if err != nil || n <= 1 {
		return h, fmt.Errorf("bad pid %q", pid)
	}
	h.pid = n
	if rest == "" {
		return h, nil
	}
	nonce, ok := strings.CutPrefix(rest, "nonce:")
	if !ok {
		return h, errors.New("no nonce")
	}
	nonce, rest, _ = strings.Cut(nonce, " ")
	if !validNonce(nonce) {
		return h, fmt.Errorf("bad nonce %q", nonce)
	}
	h.nonce = nonce
	if rest == "" {
		return h, nil
	}
	h.status, ok = strings.CutPrefix(rest, "status:")
	if !ok || h.status == "" {
		return h, errors.New("no status path")
	}
	return h, nil
}

func validNonce(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Locate is the handle of the run's execution found from the run alone,
// for a run whose scheduler died before it recorded the run running:
// the status stream beside the run's log, in which the run's supervisor
// records the command as soon as it starts. The handle names the status
// file that supervisors of protocols 1 and 2 kept for the run alone;
// Recover looks in the stream of its directory first.
func (e *Executor) Locate(run talon.Run, logPath string) string {
	p, err := statusPath(logPath)
	if err != nil || logPath == "" {
		return ""
	}
	return "status:" + p
}

var _ executor.Locator = (*Executor)(nil)

// locate finds the execution of a located run (see Locate): in the
// status streams of the directory of the run's status file (this
// host's, then other hosts' if it is shared), else in that file, written
// by a supervisor of an earlier protocol. It returns the handle of the
// execution, or an error wrapping executor.ErrLost.
func locate(run talon.Run, file string) (handle, error) {
	for _, stream := range streamsIn(filepath.Dir(file)) {
		st, err := readRunStatus(stream, run)
		if err == nil {
			return handle{pid: st.Pid, nonce: st.Nonce, status: stream}, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return handle{}, fmt.Errorf("%w: %v", executor.ErrLost, err)
		}
	}
	st, err := readStatus(file, "")
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return handle{}, fmt.Errorf("%w: its scheduler died before it started", executor.ErrLost)
	case err != nil:
		return handle{}, fmt.Errorf("%w: %v", executor.ErrLost, err)
	case st.Run != run.ID || st.Started.Before(run.Created.Add(-time.Second)) || !validNonce(st.Nonce) || st.Pid <= 1:
		return handle{}, fmt.Errorf("%w: its scheduler died before it started (%s is another execution's)", executor.ErrLost, file)
	}
	return handle{pid: st.Pid, nonce: st.Nonce, status: file}, nil
}

// Recover first kills whatever is left of the run on this host: with a
// handle that carries the run's nonce, every process whose environment
// holds the run's TALON_RUN_ID and nonce, its descendants, and the
// members of the run's process group (the supervisor first, so it
// records nothing about kills it did not make; its other runs' commands
// die with it, but Recover is only asked about runs whose scheduler is
// gone, and those are all recovered); with an old "pid:N"
// handle, the process group N if one of its members holds the run's
// TALON_RUN_ID. It returns only when they are gone, so a retry never
// overlaps them.
//
// Then, if the run's supervisor recorded that the command ended by
// itself (or was cancelled) while no scheduler watched it, Recover
// returns a process whose Wait returns that outcome at once. Otherwise
// the run is lost: Recover returns an error wrapping executor.ErrLost
// that says why.
func (e *Executor) Recover(_ context.Context, run talon.Run, hs string) (executor.Process, error) {
	h, err := parseHandle(hs)
	if err != nil {
		return nil, fmt.Errorf("%w: scheduler restarted; handle %q is not a local pid", executor.ErrLost, hs)
	}
	if h.pid == 0 {
		// A located run: believe a status only for this run, started
		// after the run was created.
		if h, err = locate(run, h.status); err != nil {
			return nil, err
		}
		hs = h.String()
	}
	log := e.log.With("run", run.ID, "job", run.Job, "pid", h.pid)
	killed := killRun(log, run.ID, h)
	if killed > 0 {
		log.Warn("killed processes of a lost run", "count", killed)
	}
	if h.status != "" {
		st, err := readStatus(h.status, h.nonce)
		switch {
		case err == nil && st.Ended.IsZero() && !st.Exited && st.Signal == 0:
			// The first record only: the command never reached its end.
		case err == nil && (st.endedByItself() || st.Killed == killedCancel):
			o := st.outcome()
			o.Ended = st.Ended
			log.Info("re-attached to a run that ended while no scheduler watched it", "reason", o.Reason)
			return &endedProcess{handle: hs, outcome: o}, nil
		case err == nil:
			return nil, fmt.Errorf("%w: its supervisor killed pid %d when %s", executor.ErrLost, h.pid, st.killedWhy())
		case !errors.Is(err, fs.ErrNotExist):
			log.Warn("read the status of a run", "err", err)
		}
	}
	if killed > 0 {
		return nil, fmt.Errorf("%w: scheduler restarted while pid %d was running; its %s killed", executor.ErrLost, h.pid, plural(killed, "process was", "processes were"))
	}
	return nil, fmt.Errorf("%w: scheduler restarted while pid %d was running", executor.ErrLost, h.pid)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// endedProcess is a recovered run that had already ended.
type endedProcess struct {
	handle  string
	outcome executor.Outcome
}

func (p *endedProcess) Handle() string         { return p.handle }
func (p *endedProcess) Wait() executor.Outcome { return p.outcome }
func (p *endedProcess) Cancel(error)           {}
