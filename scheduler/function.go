package scheduler

import "github.com/talonhq/talon/internal/executor/inprocess"

// Func is the work of a job of the inprocess executor: a Go function
// registered in Config.Functions under the name the job gives
// (function: NAME). Returning nil means the run succeeded; an error's
// text becomes the run's failure reason, and a panic fails the run with
// the panic's text (its stack goes to the run's log).
//
// ctx is cancelled when the run must stop: an operator's cancel, the
// job's timeout, the scheduler shutting down. context.Cause(ctx) says
// why ("cancelled by alice", "timeout after 2h", "scheduler shut down"),
// and the run fails even if the function then returns nil. A function
// that ignores ctx cannot be stopped: Go has no way to stop a goroutine
// from outside.
//
// Functions run in the scheduler's process, so nothing of them survives
// it: after a crash, the next scheduler declares their runs lost, and
// retries apply. Make them idempotent.
type Func = inprocess.Func

// Run is what a Func knows about its run: the run row (its id, job,
// period, attempt), the run's parameters as JSON (TALON_PARAMS), the
// TALON_* variables, and Log, the run's output.
//
// Progress reports how far the run has come, in percent: the API, the
// CLI and the dashboard show it at once. Lines written to Log are the
// run's log (talon logs RUN); a line "::talon artifact URL [NAME]"
// records an artifact of the run, and "::talon progress 3/10 loading"
// reports items done with a message, as a subprocess's output would.
type Run = inprocess.Run

// Log is a run's output (Run.Log): an io.Writer, safe for concurrent
// use, that also accepts writes when the run has no log.
type Log = inprocess.Log
