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
	taken  map[jobPeriod]map[int64]talon.State // (job, period) → runs running or ready
	// succeeded counts the succeeded runs of a (job, period), with one of
	// them to name (0 when the batch moved the one it knew away).
	succeeded map[jobPeriod]*succeededRuns
}

type succeededRuns struct {
	n  int64
	id int64
}

type jobPeriod struct{ job, period string }

func newFenceState() *fenceState {
	return &fenceState{active: map[string]map[int64]bool{}, taken: map[jobPeriod]map[int64]talon.State{}, succeeded: map[jobPeriod]*succeededRuns{}}
}

// load marks the job and period of a fenced run as loaded, so that the
// batch's moves update them even when the database had no row to count.
func (f *fenceState) load(c *current, fe *store.Fence) {
	if fe.MaxRunning > 0 && f.active[c.job] == nil {
		f.active[c.job] = map[int64]bool{}
	}
	if k := (jobPeriod{c.job, c.period}); fe.OncePerPeriod {
		if f.taken[k] == nil {
			f.taken[k] = map[int64]talon.State{}
		}
		if f.succeeded[k] == nil {
			f.succeeded[k] = &succeededRuns{}
		}
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
		var id, n int64
		var state string
		if err := rows.Scan(&k.job, &k.period, &id, &state, &n); err != nil {
			return fmt.Errorf("check once_per_period: %w", err)
		}
		if f.taken[k] == nil {
			f.taken[k] = map[int64]talon.State{}
		}
		if talon.State(state) == talon.StateSucceeded {
			f.succeeded[k] = &succeededRuns{n: n, id: id}
			continue
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
		k := jobPeriod{job, period}
		if s := f.succeeded[k]; s != nil && s.n > 0 && s.id != id {
			return store.OncePerPeriodFence(period, s.id, talon.StateSucceeded)
		}
		// Else the lowest run ready or running.
		var (
			found bool
			best  int64
		)
		for other := range f.taken[k] {
			if other != id && (!found || other < best) {
				found, best = true, other
			}
		}
		if found {
			return store.OncePerPeriodFence(period, best, f.taken[k][best])
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
	k := jobPeriod{job, period}
	if set := f.taken[k]; set != nil {
		switch to {
		case talon.StateRunning, talon.StateReady:
			set[id] = to
		default:
			delete(set, id)
		}
	}
	if s := f.succeeded[k]; s != nil {
		if from == talon.StateSucceeded {
			s.n--
			if s.id == id {
				s.id = 0
			}
		}
		if to == talon.StateSucceeded {
			s.n++
			if s.id == 0 {
				s.id = id
			}
		}
	}
}
