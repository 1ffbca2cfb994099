// Package executor is the contract of an executor — who runs and owns a
// run — and the registry of executors named in schedules (local,
// inprocess, and later ssh, sge, agent). Implementations live in
// sub-packages and import only talon and this package.
//
// A run's output reaches its log through an Output (NewOutput(spec, …)),
// wherever the run runs: the executor copies what the run prints into it
// as it comes (a pipe, an SSH session, an agent's reports) and closes it
// before it reports the run's end. Output masks the job's secrets, then
// appends to the log file on the scheduler's host, hands lines to OnLine
// ("::talon progress" directives) and copies the bytes, in batches, to
// the LogStore (the state store, Spec.Logs), from which every scheduler
// sharing it serves `talon logs`. LogWriter is the batching part alone,
// for output that arrives already masked.
package executor

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/talonhq/talon"
)

// ErrLost is returned by Recover when a run started by an earlier
// scheduler cannot be re-attached; the engine fails it with reason
// "lost: …" and retries apply.
var ErrLost = errors.New("lost")

// Executor starts runs and re-attaches to them after a restart.
type Executor interface {
	// Start starts the run described by s and returns once it has started
	// (or could not start: the error becomes the run's failure reason).
	Start(ctx context.Context, s Spec) (Process, error)
	// Recover re-attaches to a run that an earlier scheduler started, from
	// the handle it stored, or returns an error wrapping ErrLost. A run
	// that ended while no scheduler watched it may be re-attached too: the
	// process's Wait then returns its real outcome at once. Before it
	// returns ErrLost, an executor that can stops what is left of the run,
	// so a retry never overlaps it.
	Recover(ctx context.Context, run talon.Run, handle string) (Process, error)
}

// Process is one started run.
type Process interface {
	// Handle is the executor's id for the run (a pid, an SGE job id),
	// stored so a restarted scheduler can Recover it.
	Handle() string
	// Wait blocks until the run ends and says how.
	Wait() Outcome
	// Cancel stops the run (its whole process group, remote job, …); the
	// cause becomes the reason. Wait then returns.
	Cancel(cause error)
}

// Reattacher is implemented by executors that can re-attach to a run
// that is still going and carry on with its output (ssh, agent: the
// remote job outlives its scheduler). For a run whose scheduler died, the
// engine calls Reattach instead of Recover, with the spec it would start
// the run with now: its log file and log store, OnLine, Secrets, a fresh
// FenceIn and the job (s.Env is the new scheduler's and is not sent: the
// run has its own). The stored log goes on at its size (NewOutput(s,
// OutputOptions{Offset: size}), size from s.Logs.LogSize), so nothing is
// stored twice. Reattach follows Recover's contract otherwise; executors
// that cannot re-attach to a running run need only Recover.
type Reattacher interface {
	Reattach(ctx context.Context, s Spec, handle string) (Process, error)
}

// Locator is implemented by executors that can find a run they started
// from the run alone: for a run whose scheduler died between starting it
// and recording its handle. Locate returns a handle for Recover, or "".
type Locator interface {
	Locate(run talon.Run, logPath string) string
}

// Quick is implemented by executors whose Start returns at once (it only
// starts a goroutine): the engine calls them on its loop. Others (a
// process to fork, a connection to open) are started off the loop, a few
// at a time.
type Quick interface {
	Quick() bool
}

// Prestarter is implemented by Quick executors that know a run's handle
// before they start it (the in-process executor: the function's name).
// The engine then records such a run running in the transaction that
// lets it in (blocked → ready → running), and starts it once that
// transaction has committed: one transaction fewer per run. A start that
// fails afterwards is recorded as the run's failure ("could not start");
// a scheduler that dies in between leaves a running run without a
// process, which the next scheduler declares lost, as it would had the
// process started.
type Prestarter interface {
	Quick
	HandleOf(job *talon.Job) string
}

// Fencer is implemented by processes that stop their run by themselves
// when their scheduler stops renewing them, even while the scheduler is
// frozen (SIGSTOP) or cut off from the state store: the promise that a run
// never overlaps its retry then holds across hosts, where no peer can
// clean up. The engine calls FenceIn on every process it owns after each
// heartbeat that reached the store, with the time its lease still holds.
type Fencer interface {
	// FenceIn moves the run's deadline to d from now, measured on the
	// process's own monotonic clock: when it passes without another
	// FenceIn, the run is killed with everything it started, and Wait
	// returns an outcome saying so. A d of zero or less is ignored (the
	// deadline set before stands), so a late call never kills a run and
	// never extends a lapsed lease. FenceIn after the run ended does
	// nothing.
	FenceIn(d time.Duration)
}

// Detacher is implemented by processes that go on without their
// scheduler (a run on a remote agent): a scheduler that shuts down
// detaches them instead of stopping them, and their runs stay running in
// the store for the scheduler that recovers them (a restarted one
// re-attaches at once). After Detach the process's Wait may never return.
type Detacher interface {
	Detach()
}

// Outcome is how a run ended.
type Outcome struct {
	Succeeded bool
	ExitCode  int
	// Ended, when set, is when the run ended, for an outcome learned
	// after the fact (a run that ended while no scheduler watched it);
	// zero means "now".
	Ended time.Time
	// Reason is a short human sentence: "exit status 3", "killed: timeout
	// after 2h", "cancelled by alice".
	Reason string
}

// Spec is everything an executor needs to start a run.
type Spec struct {
	Run talon.Run
	Job *talon.Job
	// Env holds the TALON_* variables (TALON_RUN_ID, TALON_JOB,
	// TALON_PERIOD, TALON_URL, TALON_TOKEN, TALON_PARAMS, …) as KEY=VALUE,
	// to be added to the job's own env.
	Env []string
	// LogPath is the file that receives the run's stdout and stderr, on
	// the scheduler's host; empty for none.
	LogPath string
	// Logs, when set, is the log store: the run's output (masked) is
	// copied to it, so every scheduler sharing the state store can show
	// it (talon logs). Executors write output through an Output, which
	// does so.
	Logs LogStore
	// LogLimit is how many bytes of the run's output Logs keeps; zero
	// means DefaultLogLimit.
	LogLimit int64
	// Params is the JSON of the run's parameters (job params overlaid with
	// the trigger's), also in Env as TALON_PARAMS.
	Params []byte
	// FenceIn, when > 0, is how long the run may go on without its
	// scheduler renewing it (see Fencer); zero: no deadline, the run is
	// then stopped only when the scheduler dies or cancels it. Executors
	// whose processes are not Fencers ignore it.
	FenceIn time.Duration
	// Secrets are the values of the job's secret env (in Env as KEY=VALUE):
	// an executor masks them in the run's log (Output does, see Masker)
	// and never shows them elsewhere.
	Secrets []string
	// OnLine, when set, receives each output line, so the engine can read
	// "::talon progress 40%" lines from executors that cannot reach the
	// server.
	OnLine func(line string)
	// Resources are what the run holds, with each node's attributes as
	// the schedule declares them, so an executor can go where the
	// allocation says (ssh: the address of its hosts/... resource).
	Resources []Resource
}

// Resource is units of a resource a run holds.
type Resource struct {
	Path       string
	Units      int
	Attributes map[string]string
}

var (
	mu        sync.RWMutex
	executors = map[string]Executor{}
)

// Register makes an executor available to jobs under name.
func Register(name string, e Executor) {
	mu.Lock()
	defer mu.Unlock()
	executors[name] = e
}

// Get returns the executor registered under name.
func Get(name string) (Executor, error) {
	mu.RLock()
	defer mu.RUnlock()
	e := executors[name]
	if e == nil {
		return nil, fmt.Errorf("unknown executor %q (known: %v)", name, namesLocked())
	}
	return e, nil
}

// Names lists registered executors, sorted.
func Names() []string {
	mu.RLock()
	defer mu.RUnlock()
	return namesLocked()
}

func namesLocked() []string {
	out := make([]string, 0, len(executors))
	for k := range executors {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
