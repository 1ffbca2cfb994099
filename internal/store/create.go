package store

import (
	"fmt"
	"strconv"
	"time"

	"github.com/talonhq/talon"
)

// ValidateCreate checks the i-th CreateRun of a batch and fills its
// defaults (state blocked, attempt 1, Now). Both stores call it, so the
// rules are the contract's.
func ValidateCreate(i int, p CreateRun) (CreateRun, error) {
	if p.Job == "" || p.Period == "" {
		return p, fmt.Errorf("create run #%d: job and period are required", i)
	}
	switch p.State {
	case "":
		p.State = talon.StateBlocked
	case talon.StateBlocked, talon.StateSkipped:
	default:
		return p, fmt.Errorf("create run #%d: initial state %q: want blocked or skipped", i, p.State)
	}
	switch p.IfPaused {
	case PauseIgnore, PauseSkip, PauseRefuse:
	default:
		return p, fmt.Errorf("create run #%d: if paused %q: want skip or refuse", i, p.IfPaused)
	}
	if p.Attempt <= 0 {
		p.Attempt = 1
	}
	// A run is retried at most once: every retry of run N, automatic or
	// asked for, takes the idempotency key "retry-of:N", so the unique
	// (job, key) index lets one through and returns it to the others.
	if p.RetryOf != 0 {
		want := RetryKey(p.RetryOf)
		switch p.Key {
		case "":
			p.Key = want
		case want:
		default:
			return p, fmt.Errorf("create run #%d: a retry of run %d takes the key %q, not %q", i, p.RetryOf, want, p.Key)
		}
	}
	p.Now = NowOr(p.Now)
	return p, nil
}

// ValidateThen validates the runs a transition creates when it applies
// (Transition.Then) and returns them with their defaults set.
func ValidateThen(t Transition) ([]CreateRun, error) {
	if len(t.Then) == 0 {
		return nil, nil
	}
	if t.Mark || !t.To.Terminal() {
		return nil, fmt.Errorf("run %d: runs to create are allowed only with a transition into a terminal state, not a mark", t.RunID)
	}
	out := make([]CreateRun, len(t.Then))
	for i, c := range t.Then {
		v, err := ValidateCreate(i, c)
		if err != nil {
			return nil, fmt.Errorf("run %d: %w", t.RunID, err)
		}
		if v.Key == "" && v.FireTime.IsZero() {
			return nil, fmt.Errorf("run %d: create run #%d: a run created with a transition needs a unique key (Key or FireTime)", t.RunID, i)
		}
		if v.IfPaused == PauseRefuse {
			return nil, fmt.Errorf("run %d: create run #%d: PauseRefuse is not allowed with a transition", t.RunID, i)
		}
		out[i] = v
	}
	return out, nil
}

// RetryKey is the idempotency key every retry of run id carries.
func RetryKey(id int64) string { return "retry-of:" + strconv.FormatInt(id, 10) }

// NowOr returns t, or the current time when t is zero, as stores keep
// times: UTC, truncated to microseconds.
func NowOr(t time.Time) time.Time {
	if t.IsZero() {
		t = time.Now()
	}
	return t.UTC().Truncate(time.Microsecond)
}
