package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/resource"
	"github.com/talonhq/talon/internal/store"
)

// lockResources serializes allocations across schedulers: one advisory
// lock per schema, taken only by batches that allocate. The holds are
// read after it, in a new snapshot, so they include every allocation
// committed before the lock was granted. Releases do not take it:
// removing a hold can only make a concurrent allocator more cautious.
const lockResources = `SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.talon.resources'))`

const readHolds = `SELECT run_id, path, units, period FROM allocations WHERE period = '' OR period = ANY($1)`

const readWaiters = `SELECT run_id, priority, requests, since, reason FROM waiters ORDER BY priority DESC, run_id`

// allocState is what a transition batch does to holds and the queue,
// decided in memory and written in the batch's one write round trip.
type allocState struct {
	led      *resource.Ledger
	release  []int64                   // runs whose live holds are deleted, before inserts
	inserts  map[int64][]resource.Hold // final new holds per run
	waits    map[int64]*resource.Waiter
	order    []int64 // runs with a queue change, in first-change order
	insOrder []int64
	// agents are the live agents, read with the holds; trees adds their
	// nodes to the schedule's tree.
	agents []store.Agent
	trees  *store.AgentTrees
}

func newAllocState(trees *store.AgentTrees) *allocState {
	return &allocState{inserts: map[int64][]resource.Hold{}, waits: map[int64]*resource.Waiter{}, trees: trees}
}

func (a *allocState) setWait(id int64, w *resource.Waiter) {
	if _, ok := a.waits[id]; !ok {
		a.order = append(a.order, id)
	}
	a.waits[id] = w
}

// allocate decides one item's allocation.
func (a *allocState) allocate(t store.Transition, now time.Time) *store.FenceError {
	al := t.Allocate
	holds, reason := a.led.Allocate(a.trees.With(al.Tree, a.agents), t.RunID, al.Priority, al.Requests)
	if reason != "" {
		for _, w := range a.led.Waiters() {
			if w.RunID == t.RunID {
				w := w
				a.setWait(t.RunID, &w)
			}
		}
		return &store.FenceError{Constraint: "resources", Reason: reason}
	}
	if _, ok := a.inserts[t.RunID]; !ok {
		a.insOrder = append(a.insOrder, t.RunID)
	}
	a.inserts[t.RunID] = append(a.inserts[t.RunID], holds...)
	return nil
}

// settle records the release and queue effects of an applied item (the
// rules of store.Transition.Allocate).
func (a *allocState) settle(t store.Transition, from talon.State) {
	release, unwait := store.Settles(t, from)
	if release {
		if a.led != nil {
			a.led.Release(t.RunID)
		}
		a.release = append(a.release, t.RunID)
		if hs := a.inserts[t.RunID]; hs != nil {
			var kept []resource.Hold
			for _, h := range hs {
				if h.Period != "" {
					kept = append(kept, h)
				}
			}
			a.inserts[t.RunID] = kept
		}
	}
	if unwait {
		if a.led != nil {
			a.led.Unwait(t.RunID)
		}
		a.setWait(t.RunID, nil)
	}
}

// queueWrites adds the batch's hold and queue changes to the write batch.
func (a *allocState) queueWrites(b *pgx.Batch, now time.Time) error {
	if len(a.release) > 0 {
		b.Queue(`DELETE FROM allocations WHERE run_id = ANY($1) AND period = ''`, sortedIDs(a.release))
	}
	var (
		runs          []int64
		paths, period []string
		units         []int32
	)
	for _, id := range a.insOrder {
		for _, h := range a.inserts[id] {
			runs, paths, units, period = append(runs, h.RunID), append(paths, h.Path), append(units, int32(h.Units)), append(period, h.Period)
		}
	}
	if len(runs) > 0 {
		// allocations has the live holds; held keeps them for the run's
		// history after they are released.
		for _, table := range []string{"allocations", "held"} {
			b.Queue(`INSERT INTO `+table+` (run_id, path, units, period, created)
			SELECT r, p, u, k, $5 FROM unnest($1::bigint[], $2::text[], $3::int[], $4::text[]) AS x(r, p, u, k)`,
				runs, paths, units, period, now.UTC())
		}
	}
	var del, wids []int64
	var prios []int32
	var reqs, reasons []string
	for _, id := range a.order {
		w := a.waits[id]
		if w == nil {
			del = append(del, id)
			continue
		}
		j, err := json.Marshal(w.Requests)
		if err != nil {
			return fmt.Errorf("queue run %d for resources: %w", id, err)
		}
		wids, prios, reqs, reasons = append(wids, id), append(prios, int32(w.Priority)), append(reqs, string(j)), append(reasons, w.Reason)
	}
	if len(del) > 0 {
		b.Queue(`DELETE FROM waiters WHERE run_id = ANY($1)`, del)
	}
	if len(wids) > 0 {
		b.Queue(`INSERT INTO waiters (run_id, priority, requests, since, reason)
			SELECT r, p, q::jsonb, $5, s FROM unnest($1::bigint[], $2::int[], $3::text[], $4::text[]) AS x(r, p, q, s)
			ON CONFLICT (run_id) DO UPDATE SET priority = excluded.priority, requests = excluded.requests, reason = excluded.reason`,
			wids, prios, reqs, reasons, now.UTC())
	}
	return nil
}

func scanHolds(rows pgx.Rows) ([]resource.Hold, error) {
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (resource.Hold, error) {
		var h resource.Hold
		var units int32
		err := row.Scan(&h.RunID, &h.Path, &units, &h.Period)
		h.Units = int(units)
		return h, err
	})
}

func scanWaiters(rows pgx.Rows) ([]resource.Waiter, error) {
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (resource.Waiter, error) {
		var w resource.Waiter
		var prio int32
		var reqs []byte
		if err := row.Scan(&w.RunID, &prio, &reqs, &w.Since, &w.Reason); err != nil {
			return w, err
		}
		w.Priority, w.Since = int(prio), w.Since.UTC()
		if err := json.Unmarshal(reqs, &w.Requests); err != nil {
			return w, fmt.Errorf("run %d: %w", w.RunID, err)
		}
		return w, nil
	})
}

// Holds returns the resource holds of runs, or all of them.
func (db *DB) Holds(ctx context.Context, runIDs []int64) ([]resource.Hold, error) {
	var out []resource.Hold
	err := db.read(ctx, func(tx querier) error {
		q := `SELECT run_id, path, units, period FROM allocations`
		var args []any
		if len(runIDs) > 0 {
			q += ` WHERE run_id = ANY($1)`
			args = append(args, runIDs)
		}
		rows, err := tx.Query(ctx, q+` ORDER BY path, run_id, period`, args...)
		if err != nil {
			return err
		}
		out, err = scanHolds(rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read resource holds: %w", err)
	}
	return out, nil
}

// Held returns every hold a run has taken, released or not.
func (db *DB) Held(ctx context.Context, runID int64) ([]resource.Hold, error) {
	var out []resource.Hold
	err := db.read(ctx, func(tx querier) error {
		rows, err := tx.Query(ctx, `SELECT run_id, path, units, period FROM held
			WHERE run_id = $1 ORDER BY created, path, period`, runID)
		if err != nil {
			return err
		}
		out, err = scanHolds(rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read resources held by run %d: %w", runID, err)
	}
	return out, nil
}

// Waiters returns the runs queued for resources.
func (db *DB) Waiters(ctx context.Context) ([]resource.Waiter, error) {
	var out []resource.Waiter
	err := db.read(ctx, func(tx querier) error {
		rows, err := tx.Query(ctx, readWaiters)
		if err != nil {
			return err
		}
		out, err = scanWaiters(rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read resource queue: %w", err)
	}
	return out, nil
}
