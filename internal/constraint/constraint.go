// Package constraint is the contract of a constraint — something checked
// against a run that answers block, fail, pass or cancel with a human
// reason — plus the registry of kinds named in schedules and the built-in
// kinds (docs/model.md#built-in-constraints).
//
// Constraints are pure where they can be: the input is the run, the job,
// the period, the related runs (through Lookup) and now; the output is an
// action, a reason and when a re-check can change the answer, so the
// engine sleeps until then instead of polling. The command constraint is
// the exception: it runs a sensor process.
package constraint

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/talonhq/talon"
)

// Constraint is one compiled constraint of a job.
type Constraint interface {
	// Name is the kind as written in the schedule ("not_before", …); it
	// labels the run's stored decisions.
	Name() string
	// Check answers for one run at in.Now. It never panics on input;
	// trouble it cannot resolve (a lookup error) is an answer of block
	// with the error as reason, so the run waits and is re-checked.
	Check(ctx context.Context, in Input) Answer
}

// Slow is implemented by constraints whose Check may take long: it runs a
// process or calls out. The engine checks the runs of jobs that have one
// off its loop goroutine, a few at a time, so one slow sensor never holds
// up the rest of the schedule.
type Slow interface {
	Slow() bool
}

// Answer is a constraint's verdict.
type Answer struct {
	Action talon.Action
	Reason string
	// RecheckAt, when non-zero, is the instant at which the answer can
	// change by the passing of time alone (a not_before time, a deadline);
	// the engine wakes then. Zero means only an event or the poll can
	// change it.
	RecheckAt time.Time
}

// Input is what a constraint sees.
type Input struct {
	Now    time.Time
	Run    talon.Run
	Job    *talon.Job
	Period talon.Period
	Lookup Lookup
}

// Counts is the number of runs in each state.
type Counts map[talon.State]int

// Lookup answers questions about other runs. The engine implements it
// over the store (caching within one step); tests use a map.
type Lookup interface {
	// Summary counts the runs of job in the period with the given key.
	Summary(ctx context.Context, job, period string) (Counts, error)
	// Active counts the runs of job that are ready or running.
	Active(ctx context.Context, job string) (int, error)
	// BlockedBefore counts the blocked runs of job created before run id.
	BlockedBefore(ctx context.Context, job string, id int64) (int, error)
	// PeriodKey returns the key of job's period that contains instant at,
	// moved by offset periods (-1: the previous one). It returns an error
	// for unknown jobs.
	PeriodKey(ctx context.Context, job string, at time.Time, offset int) (string, error)
	// Artifacts returns the artifacts of the period with the given key
	// (environment included) that job's runs added, or every job's when
	// job is empty.
	Artifacts(ctx context.Context, job, period string) ([]talon.Artifact, error)
}

// Factory compiles a constraint from its schedule value (plain Go values
// decoded from YAML: string, bool, int, float64, []any, map[string]any).
// Errors should say what was expected; the schedule loader adds the
// position.
type Factory func(value any) (Constraint, error)

var (
	mu        sync.RWMutex
	factories = map[string]Factory{}
)

// Register makes a constraint kind available to schedules under name, so a
// program embedding Talon can add its own. Registering a name twice
// replaces the earlier factory.
func Register(name string, f Factory) {
	mu.Lock()
	defer mu.Unlock()
	factories[name] = f
}

// Compile builds the constraint of the given kind.
func Compile(kind string, value any) (Constraint, error) {
	mu.RLock()
	f := factories[kind]
	mu.RUnlock()
	if f == nil {
		return nil, fmt.Errorf("unknown constraint %q", kind)
	}
	return f(value)
}

// Kinds lists the registered constraint kinds, sorted.
func Kinds() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(factories))
	for k := range factories {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Decide combines answers by precedence (cancel > fail > block > pass) and
// returns the winning action, the reason of the first answer with that
// action, and the earliest non-zero RecheckAt among the blocking answers.
func Decide(names []string, answers []Answer) (talon.Action, string, time.Time, []talon.Decision) {
	action := talon.ActionPass
	reason := ""
	var recheck time.Time
	ds := make([]talon.Decision, len(answers))
	for i, a := range answers {
		ds[i] = talon.Decision{Constraint: names[i], Action: a.Action, Reason: a.Reason, RecheckAt: a.RecheckAt}
		if a.Action.Rank() > action.Rank() {
			action, reason = a.Action, names[i]+": "+a.Reason
		}
		if !a.RecheckAt.IsZero() && (recheck.IsZero() || a.RecheckAt.Before(recheck)) {
			recheck = a.RecheckAt
		}
	}
	if action == talon.ActionPass {
		reason = "all constraints pass"
	}
	return action, reason, recheck, ds
}
