package postgres

// This file is the same in store/sqlite and store/postgres: the rules are
// the contract's, only the SQL differs.

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/store"
)

// fenceListMax is how many blocking runs a fence reason names.
const fenceListMax = 10

// checkTransition reports why a run in state from cannot take t: the run
// left the states the caller expected, or the move is not a legal one.
// Both are conflicts: the caller's picture of the run is wrong.
func checkTransition(t store.Transition, from talon.State) error {
	if !slices.Contains(t.From, from) {
		return fmt.Errorf("run %d is %s, expected %s: %w", t.RunID, from, statesList(t.From), store.ErrConflict)
	}
	if !talon.CanTransition(from, t.To) {
		return fmt.Errorf("run %d: %s → %s is not a legal transition: %w", t.RunID, from, t.To, store.ErrConflict)
	}
	return nil
}

func statesList(ss []talon.State) string {
	if len(ss) == 0 {
		return "no state"
	}
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = string(s)
	}
	return strings.Join(parts, " or ")
}

func oncePerPeriodFence(period string, id int64, state talon.State) *store.FenceError {
	reason := fmt.Sprintf("run %d already %s in %s", id, state, period)
	if state != talon.StateSucceeded {
		reason = fmt.Sprintf("run %d is %s in %s", id, state, period)
	}
	return &store.FenceError{Constraint: "once_per_period", Reason: reason}
}

func maxRunningFence(n, limit int, ids []int64) *store.FenceError {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.FormatInt(id, 10)
	}
	list := strings.Join(parts, ", ")
	if n > len(ids) {
		list += ", …"
	}
	return &store.FenceError{
		Constraint: "max_running",
		Reason:     fmt.Sprintf("%d of %d running (runs %s)", n, limit, list),
	}
}
