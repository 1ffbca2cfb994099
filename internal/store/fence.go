package store

// Helpers both implementations use, so the rules and the wording of
// conflicts and fences are the contract's; only the SQL differs.

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/talonhq/talon"
)

// FenceListMax is how many blocking runs a fence reason names.
const FenceListMax = 10

// CheckTransition reports why a run in state from cannot take t: the run
// left the states the caller expected, or the move is not a legal one.
// Both are conflicts: the caller's picture of the run is wrong.
func CheckTransition(t Transition, from talon.State) error {
	if !slices.Contains(t.From, from) {
		return fmt.Errorf("run %d is %s, expected %s: %w", t.RunID, from, statesList(t.From), ErrConflict)
	}
	if t.Mark {
		if !talon.CanMark(from, t.To) {
			return fmt.Errorf("run %d: %s → %s is not a legal mark: %w", t.RunID, from, t.To, ErrConflict)
		}
		return nil
	}
	if !talon.CanTransition(from, t.To) {
		return fmt.Errorf("run %d: %s → %s is not a legal transition: %w", t.RunID, from, t.To, ErrConflict)
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

// OncePerPeriodFence is the fence of a period that already has run id in
// state.
func OncePerPeriodFence(period string, id int64, state talon.State) *FenceError {
	reason := fmt.Sprintf("run %d already %s in %s", id, state, period)
	if state != talon.StateSucceeded {
		reason = fmt.Sprintf("run %d is %s in %s", id, state, period)
	}
	return &FenceError{Constraint: "once_per_period", Reason: reason}
}

// MaxRunningFence is the fence of a job with n of limit runs active,
// naming up to FenceListMax of them.
func MaxRunningFence(n, limit int, ids []int64) *FenceError {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.FormatInt(id, 10)
	}
	list := strings.Join(parts, ", ")
	if n > len(ids) {
		list += ", …"
	}
	return &FenceError{
		Constraint: "max_running",
		Reason:     fmt.Sprintf("%d of %d running (runs %s)", n, limit, list),
	}
}
