package scheduler

import "github.com/talonhq/talon/internal/constraint"

// Constraint is one compiled constraint of a job: checked against a run,
// it answers pass, block, fail or cancel with a reason (Answer). Name is
// the kind as written in the schedule; it labels the run's stored
// decisions. Check never panics on input: trouble it cannot resolve is
// an answer of block with the trouble as reason, so the run waits and is
// checked again.
//
// A Constraint is pure where it can be: the input is the run, its job,
// its period, other runs (through Lookup) and now; the answer says when
// the passing of time alone can change it (Answer.RecheckAt), so the
// engine sleeps until then instead of polling.
//
// The engine looks for these optional capabilities on a constraint:
// Slow, ArtifactWaiter, Fenced, Dependent and PeriodDependent.
type Constraint = constraint.Constraint

// ConstraintFactory compiles a constraint from its value in the
// schedule: plain Go values decoded from YAML (string, bool, int,
// float64, []any, map[string]any). Its errors say what was expected; the
// schedule loader adds where.
type ConstraintFactory = constraint.Factory

// ConstraintInput is what a constraint sees: now, the run, its job, its
// period, and Lookup for other runs.
type ConstraintInput = constraint.Input

// Answer is a constraint's verdict: the action, a reason for people, and
// RecheckAt, the instant the answer can change by the passing of time
// alone (zero: only an event or the job's poll can change it).
type Answer = constraint.Answer

// Lookup answers a constraint's questions about other runs, over the
// state store.
type Lookup = constraint.Lookup

// Counts is a number of runs by state (Lookup.Summary).
type Counts = constraint.Counts

// Slow is implemented by constraints whose Check may take long (it runs
// a process, it calls a service): the engine checks them off its loop, a
// few at a time, so one slow check never holds up the rest.
type Slow = constraint.Slow

// ArtifactWaiter is implemented by constraints whose answer can change
// when an artifact is added: the engine checks their runs again the
// moment one is, rather than at the next poll.
type ArtifactWaiter = constraint.ArtifactWaiter

// Fenced is implemented by constraints whose limit must also hold inside
// the store's transaction (max running runs, one success per period), so
// that it holds with several schedulers at once: Check sees a snapshot,
// the fence is decided where the run is let in.
type Fenced = constraint.Fenced

// Dependent is implemented by constraints that wait for other jobs
// (Upstreams): the loader checks that those jobs exist, and the engine
// checks a run again when one of them changes.
type Dependent = constraint.Dependent

// PeriodDependent is implemented by Dependent constraints that know
// which periods of their upstreams they read, so the engine reads those
// only.
type PeriodDependent = constraint.PeriodDependent

// UpstreamPeriod is one period a PeriodDependent constraint reads: of job
// Job, the period Offset from the run's (0 the same, -1 the one before).
type UpstreamPeriod = constraint.UpstreamPeriod

// RegisterConstraint makes a constraint kind available to schedules
// under kind, in every Scheduler of the program (constraints: {KIND:
// VALUE} in YAML, talon.ConstraintSpec{Kind: KIND} in Go). Register
// before Open, typically from main or an init function; registering a
// kind again replaces it, the built-in ones included.
func RegisterConstraint(kind string, f ConstraintFactory) { constraint.Register(kind, f) }
