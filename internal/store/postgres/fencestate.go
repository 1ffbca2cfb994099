package postgres

import (
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/store"
)

// fenceState is what the fenced limits of a transition batch count, read
// once under the jobs' advisory locks and then kept up to date in memory
// as the batch's own items move runs, so the fences are decided without
// a round trip per item. Only the jobs and periods of fenced items are
// loaded; moves of other runs are not tracked.
type fenceState struct {
	active map[string]map[int64]bool           // job → runs ready or running
	taken  map[jobPeriod]map[int64]talon.State // (job, period) → runs succeeded, running or ready
}

type jobPeriod struct{ job, period string }

func newFenceState() *fenceState {
	return &fenceState{active: map[string]map[int64]bool{}, taken: map[jobPeriod]map[int64]talon.State{}}
}

// load marks the job and period of a fenced run as loaded, so that the
// batch's moves update them even when the database had no row to count.
func (f *fenceState) load(c *current, fe *store.Fence) {
	if fe.MaxRunning > 0 && f.active[c.job] == nil {
		f.active[c.job] = map[int64]bool{}
	}
	if k := (jobPeriod{c.job, c.period}); fe.OncePerPeriod && f.taken[k] == nil {
		f.taken[k] = map[int64]talon.State{}
	}
}

func (f *fenceState) readActive(br pgx.BatchResults) error {
	rows, err := br.Query()
	if err != nil {
		return fmt.Errorf("check max_running: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var job string
		var id int64
		if err := rows.Scan(&job, &id); err != nil {
			return fmt.Errorf("check max_running: %w", err)
		}
		if f.active[job] == nil {
			f.active[job] = map[int64]bool{}
		}
		f.active[job][id] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("check max_running: %w", err)
	}
	return nil
}

func (f *fenceState) readTaken(br pgx.BatchResults) error {
	rows, err := br.Query()
	if err != nil {
		return fmt.Errorf("check once_per_period: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k jobPeriod
		var id int64
		var state string
		if err := rows.Scan(&k.job, &k.period, &id, &state); err != nil {
			return fmt.Errorf("check once_per_period: %w", err)
		}
		if f.taken[k] == nil {
			f.taken[k] = map[int64]talon.State{}
		}
		f.taken[k][id] = talon.State(state)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("check once_per_period: %w", err)
	}
	return nil
}

// check decides the fenced limits for run id entering ready.
func (f *fenceState) check(id int64, job, period string, fe *store.Fence) *store.FenceError {
	if fe.OncePerPeriod {
		// The same pick as ordering by (state = succeeded) first, then id.
		rank := func(s talon.State) int {
			if s == talon.StateSucceeded {
				return 0
			}
			return 1
		}
		var (
			found     bool
			best      int64
			bestState talon.State
		)
		for other, st := range f.taken[jobPeriod{job, period}] {
			if other == id {
				continue
			}
			if !found || rank(st) < rank(bestState) || rank(st) == rank(bestState) && other < best {
				found, best, bestState = true, other, st
			}
		}
		if found {
			return store.OncePerPeriodFence(period, best, bestState)
		}
	}
	if fe.MaxRunning > 0 {
		var ids []int64
		for other := range f.active[job] {
			if other != id {
				ids = append(ids, other)
			}
		}
		if n := len(ids); n >= fe.MaxRunning {
			slices.Sort(ids)
			return store.MaxRunningFence(n, fe.MaxRunning, ids[:min(n, store.FenceListMax)])
		}
	}
	return nil
}

// moved records that the batch moved run id from one state to another.
func (f *fenceState) moved(id int64, job, period string, from, to talon.State) {
	if from == to {
		return
	}
	if set := f.active[job]; set != nil {
		if to == talon.StateReady || to == talon.StateRunning {
			set[id] = true
		} else {
			delete(set, id)
		}
	}
	if set := f.taken[jobPeriod{job, period}]; set != nil {
		switch to {
		case talon.StateSucceeded, talon.StateRunning, talon.StateReady:
			set[id] = to
		default:
			delete(set, id)
		}
	}
}
