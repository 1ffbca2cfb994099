package store

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/talonhq/talon"
)

// CountKey names one counter of the run_counts table both stores keep:
// how many runs of a job in a period are in a state.
type CountKey struct {
	Job, Period string
	State       talon.State
}

// CountChanges collects what a write transaction does to the run
// counters, so a store applies it in one statement at the end of the
// transaction. The counters answer Summaries in time independent of how
// many runs a period has: the after and once_per_period constraints ask
// for them at every check.
type CountChanges map[CountKey]int

// Created counts a new run.
func (c CountChanges) Created(job, period string, state talon.State) {
	c[CountKey{job, period, state}]++
}

// Moved counts a run leaving one state for another.
func (c CountChanges) Moved(job, period string, from, to talon.State) {
	if from == to {
		return
	}
	c[CountKey{job, period, from}]--
	c[CountKey{job, period, to}]++
}

// Sorted returns the counters that change, in key order: two transactions
// that update the same counters take their row locks in the same order,
// so they wait for each other rather than deadlock.
func (c CountChanges) Sorted() (keys []CountKey, deltas []int) {
	for k, d := range c {
		if d != 0 {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b CountKey) int {
		return cmp.Or(strings.Compare(a.Job, b.Job), strings.Compare(a.Period, b.Period), strings.Compare(string(a.State), string(b.State)))
	})
	deltas = make([]int, len(keys))
	for i, k := range keys {
		deltas[i] = c[k]
	}
	return keys, deltas
}

// LiveStates is the predicate of both stores' partial index of live runs
// (runs_live). A query whose states are all live adds it word for word,
// so the database can tell the index covers the query.
const LiveStates = `state IN ('blocked', 'ready', 'running')`

// OnlyLive reports whether states is non-empty and holds live states only.
func OnlyLive(states []talon.State) bool {
	for _, s := range states {
		if s.Terminal() {
			return false
		}
	}
	return len(states) > 0
}

// Stamps is the rule both stores apply to the times and owner a
// transition writes, given the state it leaves and when it happens: a run
// entering running starts then; a run entering a final state finishes
// then, except that a mark of a finished run changes its outcome, not
// when it ended; a run entering ready or running gets the transition's
// owner when it names one. Nil and "" keep what the run has.
func Stamps(t Transition, from talon.State, at time.Time) (started, finished *time.Time, owner string) {
	if t.To == talon.StateRunning && from != talon.StateRunning {
		started = &at
	}
	if t.To.Terminal() && !(t.Mark && from.Terminal()) {
		finished = &at
	}
	if t.To == talon.StateReady || t.To == talon.StateRunning {
		owner = t.Owner
	}
	return started, finished, owner
}

// Settles is the rule both stores apply to a run's resources when a
// transition moves it from the state it leaves: release says its holds
// are released (it ended, or went back to blocked from ready or running);
// unwait says it leaves the resource queue (it is released, it left
// blocked, or a new decision of a blocked run no longer waits for
// resources).
func Settles(t Transition, from talon.State) (release, unwait bool) {
	release = t.To.Terminal() || t.To == talon.StateBlocked && (from == talon.StateReady || from == talon.StateRunning)
	unwait = release || from == talon.StateBlocked && t.To != talon.StateBlocked ||
		from == talon.StateBlocked && t.To == talon.StateBlocked && t.Decisions != nil && !WaitsForResources(t.Decisions)
	return release, unwait
}

// WaitsForResources reports whether decisions say the run waits for
// resources.
func WaitsForResources(ds []talon.Decision) bool {
	for _, d := range ds {
		if d.Constraint == "resources" && d.Action == talon.ActionBlock {
			return true
		}
	}
	return false
}
