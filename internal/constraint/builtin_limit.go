package constraint

import (
	"context"
	"fmt"

	"github.com/talonhq/talon"
)

func init() {
	Register("once_per_period", newOncePerPeriod)
	Register("max_running", newMaxRunning)
	Register("max_blocked", newMaxBlocked)
}

// Fenced is implemented by constraints whose limit must also hold inside
// the store's transaction (docs/guarantees.md#fenced-limits): Check only sees a snapshot,
// and another scheduler may start a run between the check and the
// transition. The engine builds store.Fence from it.
type Fenced interface {
	// Fence returns the limit: maxRunning > 0 caps the job's ready and
	// running runs; oncePerPeriod forbids a second run in the period.
	Fence() (maxRunning int, oncePerPeriod bool)
}

// Fences combines the fences of a job's constraints: the smallest
// max_running wins, and once_per_period holds if any says so.
func Fences(cs []Constraint) (maxRunning int, oncePerPeriod bool) {
	for _, c := range cs {
		f, ok := c.(Fenced)
		if !ok {
			continue
		}
		m, o := f.Fence()
		if m > 0 && (maxRunning == 0 || m < maxRunning) {
			maxRunning = m
		}
		oncePerPeriod = oncePerPeriod || o
	}
	return maxRunning, oncePerPeriod
}

// oncePerPeriod cancels a run whose period already has a succeeded run
// of the job: the work is done, so the run is skipped rather than failed.
type oncePerPeriod struct {
	on bool
}

func newOncePerPeriod(v any) (Constraint, error) {
	b, ok := v.(bool)
	if !ok {
		return nil, wantError("once_per_period", "true or false", v)
	}
	return oncePerPeriod{on: b}, nil
}

func (oncePerPeriod) Name() string { return "once_per_period" }

func (o oncePerPeriod) Fence() (int, bool) { return 0, o.on }

func (o oncePerPeriod) Check(ctx context.Context, in Input) Answer {
	if !o.on {
		return Answer{Action: talon.ActionPass, Reason: "off"}
	}
	if in.Lookup == nil {
		return Answer{Action: talon.ActionBlock, Reason: "no lookup of other runs"}
	}
	period := runPeriod(in)
	counts, err := in.Lookup.Summary(ctx, runJob(in), period)
	if err != nil {
		return Answer{Action: talon.ActionBlock, Reason: fmt.Sprintf("count runs of %s: %v", period, err)}
	}
	if counts[talon.StateSucceeded] > 0 {
		return Answer{Action: talon.ActionCancel, Reason: period + " already has a succeeded run"}
	}
	return Answer{Action: talon.ActionPass, Reason: period + " has no succeeded run"}
}

// MaxLimit bounds max_running and max_blocked: more runs of one job at
// once than this is a typo, not a plan.
const MaxLimit = 10000

// readLimit reads the integer of max_running and max_blocked.
func readLimit(kind string, v any) (int, error) {
	n, ok := asInt(v)
	if !ok || n < 1 || n > MaxLimit {
		return 0, wantError(kind, fmt.Sprintf("an integer from 1 to %d", MaxLimit), v)
	}
	return n, nil
}

// maxRunning blocks a run while the job already has n runs ready or
// running. The engine re-checks the limit inside the store's transaction
// (see Fenced).
type maxRunning struct {
	n int
}

func newMaxRunning(v any) (Constraint, error) {
	n, err := readLimit("max_running", v)
	if err != nil {
		return nil, err
	}
	return maxRunning{n: n}, nil
}

func (maxRunning) Name() string { return "max_running" }

func (m maxRunning) Fence() (int, bool) { return m.n, false }

func (m maxRunning) Check(ctx context.Context, in Input) Answer {
	if in.Lookup == nil {
		return Answer{Action: talon.ActionBlock, Reason: "no lookup of other runs"}
	}
	job := runJob(in)
	active, err := in.Lookup.Active(ctx, job)
	if err != nil {
		return Answer{Action: talon.ActionBlock, Reason: fmt.Sprintf("count running runs of %s: %v", job, err)}
	}
	reason := fmt.Sprintf("%d of %d running", active, m.n)
	if active >= m.n {
		return Answer{Action: talon.ActionBlock, Reason: reason}
	}
	return Answer{Action: talon.ActionPass, Reason: reason}
}

// maxBlocked cancels a new run while n older runs of the job are blocked,
// so a slow job does not pile up a queue of runs. Older runs are kept:
// they were asked for first.
type maxBlocked struct {
	n int
}

func newMaxBlocked(v any) (Constraint, error) {
	n, err := readLimit("max_blocked", v)
	if err != nil {
		return nil, err
	}
	return maxBlocked{n: n}, nil
}

func (maxBlocked) Name() string { return "max_blocked" }

func (m maxBlocked) Check(ctx context.Context, in Input) Answer {
	if in.Lookup == nil {
		return Answer{Action: talon.ActionBlock, Reason: "no lookup of other runs"}
	}
	job := runJob(in)
	older, err := in.Lookup.BlockedBefore(ctx, job, in.Run.ID)
	if err != nil {
		return Answer{Action: talon.ActionBlock, Reason: fmt.Sprintf("count blocked runs of %s: %v", job, err)}
	}
	if older >= m.n {
		if older == 1 {
			return Answer{Action: talon.ActionCancel, Reason: fmt.Sprintf("another run of %s is blocked (max_blocked %d)", job, m.n)}
		}
		return Answer{Action: talon.ActionCancel, Reason: fmt.Sprintf("%d older runs of %s are blocked (max_blocked %d)", older, job, m.n)}
	}
	runs := "runs"
	if older == 1 {
		runs = "run"
	}
	return Answer{Action: talon.ActionPass, Reason: fmt.Sprintf("%d older %s of %s blocked (max_blocked %d)", older, runs, job, m.n)}
}
