package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/resource"
	"github.com/talonhq/talon/internal/store"
)

// allocate decides t.Allocate for a run entering ready. The ledger is
// read once per batch, under the write lock every write transaction
// holds, and kept up to date by the batch's own items.
func (st *transitionStmts) allocate(ctx context.Context, t store.Transition, now time.Time) (*store.FenceError, error) {
	a := t.Allocate
	if err := st.loadLedger(ctx, a.Tree, now); err != nil {
		return nil, err
	}
	// The live agents' nodes join the schedule's tree, by the
	// database's clock: a run is never given an agent that is gone.
	tree := st.db.agentTrees.With(a.Tree, st.agents)
	holds, reason := st.led.Allocate(tree, t.RunID, a.Priority, a.Requests)
	if reason != "" {
		reqs, err := json.Marshal(a.Requests)
		if err != nil {
			return nil, fmt.Errorf("queue run for resources: %w", err)
		}
		if _, err := st.tx.ExecContext(ctx, `INSERT INTO waiters (run_id, priority, requests, since, reason)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (run_id) DO UPDATE SET
			priority = excluded.priority, requests = excluded.requests, reason = excluded.reason`,
			t.RunID, a.Priority, string(reqs), micros(now), reason); err != nil {
			return nil, fmt.Errorf("queue run for resources: %w", err)
		}
		st.waiting[t.RunID] = true
		return &store.FenceError{Constraint: "resources", Reason: reason}, nil
	}
	for _, h := range holds {
		// allocations has the live holds; held keeps them for the run's
		// history after they are released.
		for _, ins := range []*sql.Stmt{st.addHold, st.addHeld} {
			if _, err := ins.ExecContext(ctx, h.RunID, h.Path, h.Units, h.Period, micros(now)); err != nil {
				return nil, fmt.Errorf("record resource holds: %w", err)
			}
		}
		if h.Period == "" {
			st.holding[h.RunID] = true
		}
	}
	return nil, nil
}

func (st *transitionStmts) loadLedger(ctx context.Context, tree *resource.Tree, now time.Time) error {
	if st.led != nil {
		return nil
	}
	keys := tree.PeriodKeys(now)
	args := []any{}
	q := `SELECT run_id, path, units, period FROM allocations WHERE period = ''`
	if len(keys) > 0 {
		q += ` OR period IN (?` + strings.Repeat(", ?", len(keys)-1) + `)`
		for _, k := range keys {
			args = append(args, k)
		}
	}
	holds, err := queryHolds(ctx, st.tx, q, args...)
	if err != nil {
		return fmt.Errorf("read resource holds: %w", err)
	}
	ws, err := queryWaiters(ctx, st.tx, resource.HeadMax)
	if err != nil {
		return err
	}
	if st.agents, err = liveAgents(ctx, st.tx, store.NowOr(time.Time{})); err != nil {
		return err
	}
	st.led = resource.NewLedger(holds, ws, now)
	return nil
}

// settle keeps the holds and the queue right after a run moved: holds
// are released when it ends or goes back to blocked, and it leaves the
// queue when it leaves blocked or is blocked by something else than
// resources.
func (st *transitionStmts) settle(ctx context.Context, t store.Transition, from talon.State) error {
	release, unwait := store.Settles(t, from)
	// Rows exist only for the runs load found, and those the batch
	// gave some: a DELETE for any other run would find nothing.
	if release {
		if st.led != nil {
			st.led.Release(t.RunID)
		}
		if st.holding[t.RunID] {
			if _, err := st.delHolds.ExecContext(ctx, t.RunID); err != nil {
				return fmt.Errorf("release resources: %w", err)
			}
		}
	}
	if unwait {
		if st.led != nil {
			st.led.Unwait(t.RunID)
		}
		if st.waiting[t.RunID] {
			if _, err := st.delWaiter.ExecContext(ctx, t.RunID); err != nil {
				return fmt.Errorf("leave resource queue: %w", err)
			}
			delete(st.waiting, t.RunID)
		}
	}
	return nil
}

type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

func queryHolds(ctx context.Context, db querier, q string, args ...any) ([]resource.Hold, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []resource.Hold
	for rows.Next() {
		var h resource.Hold
		if err := rows.Scan(&h.RunID, &h.Path, &h.Units, &h.Period); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

func queryWaiters(ctx context.Context, db querier, limit int) ([]resource.Waiter, error) {
	q := `SELECT run_id, priority, requests, since, reason FROM waiters ORDER BY priority DESC, run_id`
	var args []any
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read resource queue: %w", err)
	}
	defer rows.Close()
	var out []resource.Waiter
	for rows.Next() {
		var w resource.Waiter
		var reqs string
		var since int64
		if err := rows.Scan(&w.RunID, &w.Priority, &reqs, &since, &w.Reason); err != nil {
			return nil, fmt.Errorf("read resource queue: %w", err)
		}
		if err := json.Unmarshal([]byte(reqs), &w.Requests); err != nil {
			return nil, fmt.Errorf("read resource queue: run %d: %w", w.RunID, err)
		}
		w.Since = time.UnixMicro(since).UTC()
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read resource queue: %w", err)
	}
	return out, nil
}

// Holds returns the resource holds of runs, or all of them.
func (db *DB) Holds(ctx context.Context, runIDs []int64) ([]resource.Hold, error) {
	q := `SELECT run_id, path, units, period FROM allocations`
	var args []any
	if len(runIDs) > 0 {
		q += ` WHERE run_id IN (?` + strings.Repeat(", ?", len(runIDs)-1) + `)`
		for _, id := range runIDs {
			args = append(args, id)
		}
	}
	q += ` ORDER BY path, run_id, period`
	hs, err := queryHolds(ctx, db.r, q, args...)
	if err != nil {
		return nil, classify(fmt.Errorf("read resource holds: %w", err))
	}
	return hs, nil
}

// Held returns every hold a run has taken, released or not.
func (db *DB) Held(ctx context.Context, runID int64) ([]resource.Hold, error) {
	hs, err := queryHolds(ctx, db.r, `SELECT run_id, path, units, period FROM held
		WHERE run_id = ? ORDER BY created, path, period`, runID)
	if err != nil {
		return nil, classify(fmt.Errorf("read resources held by run %d: %w", runID, err))
	}
	return hs, nil
}

// Waiters returns the runs queued for resources.
func (db *DB) Waiters(ctx context.Context) ([]resource.Waiter, error) {
	ws, err := queryWaiters(ctx, db.r, 0)
	return ws, classify(err)
}
