package scheduler

import (
	"io"

	"github.com/talonhq/talon/internal/executor"
)

// Executor runs the runs of jobs that name it (executor: NAME), for a
// program with its own way to run work (a batch system, a queue, a
// container API): register it in Config.Executors. Start starts a run
// and returns once it has started; Recover re-attaches, after a restart,
// to a run an earlier scheduler started, from the handle it stored, or
// returns an error wrapping ErrLost.
//
// The engine also looks for these optional capabilities on an executor
// or its processes, and uses them when present: Quick, Prestarter,
// Locator, Reattacher (executors) and Fencer (processes).
type Executor = executor.Executor

// Process is one started run: its Handle (stored, for Recover), Wait
// (blocks until it ends and says how) and Cancel (stops it; the cause
// becomes the reason, and Wait then returns).
type Process = executor.Process

// Spec is everything an executor needs to start a run: the run and its
// job, the TALON_* environment, where its log goes, its parameters, the
// secret values to mask in its output, and OnLine, which reads
// "::talon progress" and "::talon artifact" lines from it.
type Spec = executor.Spec

// Outcome is how a run ended: succeeded or not, its exit code, and a
// short reason ("exit status 3").
type Outcome = executor.Outcome

// ErrLost is wrapped by Recover's error when a run cannot be re-attached:
// the run fails with reason "lost: …" and retries apply. Before
// returning it, an executor that can stops what is left of the run, so a
// retry never overlaps it.
var ErrLost = executor.ErrLost

// Locator is implemented by executors that can find a run from the run
// alone (Locate returns a handle for Recover, or ""): for a run whose
// scheduler died between starting it and recording its handle.
type Locator = executor.Locator

// Reattacher is implemented by executors that can re-attach to a run
// still going and carry on with its output (a remote job outlives its
// scheduler): a restarted engine calls Reattach instead of Recover, with
// the spec it would start the run with; the run's stored log goes on at
// its size (NewOutput with OutputOptions.Offset).
type Reattacher = executor.Reattacher

// Output is where an executor writes a run's output: secrets masked,
// then the run's log file, its log in the state store (readable from any
// scheduler) and OnLine. Close it before the run's end is reported.
type Output = executor.Output

// OutputOptions says where an Output starts: Offset, the size of the
// run's stored log when carrying on after a re-attach.
type OutputOptions = executor.OutputOptions

// NewOutput returns the Output of the run s describes.
func NewOutput(s Spec, o OutputOptions) (*Output, error) { return executor.NewOutput(s, o) }

// Quick is implemented by executors whose Start returns at once (it only
// starts a goroutine): the engine then calls Start on its loop. Other
// executors are started off the loop, a few at a time, since a start may
// fork or connect.
type Quick = executor.Quick

// Prestarter is implemented by Quick executors that know a run's handle
// before they start it (HandleOf): the engine then records the run
// running in the same transaction that lets it in, one transaction fewer
// per run, and starts it once that has committed.
type Prestarter = executor.Prestarter

// Fencer is implemented by processes that stop their run by themselves
// when their scheduler stops renewing them (FenceIn sets the deadline),
// so a run never overlaps its retry even when the scheduler is frozen or
// cut off from the store. Spec.FenceIn gives the first deadline.
type Fencer = executor.Fencer

// Masker writes a run's output with the job's secret values (Spec.Secrets)
// replaced by "***", also when a value is split across writes; Flush
// writes what it held back. Executors put one in front of a run's log.
type Masker = executor.Masker

// NewMasker returns a Masker writing to w that hides secrets.
func NewMasker(w io.Writer, secrets []string) *Masker { return executor.NewMasker(w, secrets) }
