package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/resource"
	"github.com/talonhq/talon/internal/store"
)

// Transition applies each transition as a compare-and-set within one
// write transaction. Per-item failures (ErrNotFound, ErrConflict, a
// *store.FenceError) leave that run unchanged and do not stop the others.
func (db *DB) Transition(ctx context.Context, ts []store.Transition) ([]store.Result, error) {
	if len(ts) == 0 {
		return nil, nil
	}
	results := make([]store.Result, len(ts))
	added := false
	err := db.write(ctx, func(tx *sql.Tx) error {
		added = false
		st, err := prepareTransition(ctx, tx)
		if err != nil {
			return err
		}
		defer st.close()
		st.counts = store.CountChanges{}
		for i, t := range ts {
			run, err := st.apply(ctx, t)
			if err != nil && !itemError(err) {
				return fmt.Errorf("run %d: %w", t.RunID, err)
			}
			results[i] = store.Result{Run: run, Err: err}
			added = added || (err == nil && st.evented)
		}
		return addCounts(ctx, tx, st.counts)
	})
	if err != nil {
		return nil, fmt.Errorf("transition: %w", err)
	}
	if added {
		db.notify.Wake()
	}
	return results, nil
}

// itemError reports whether err belongs to one item rather than the batch.
func itemError(err error) bool {
	return errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrFenced)
}

type transitionStmts struct {
	cur, update, delDecisions, addDecision, event *sql.Stmt
	paused                                        *sql.Stmt
	addHold, addHeld, delHolds, delWaiter         *sql.Stmt
	tx                                            *sql.Tx
	evented                                       bool // the last apply wrote an event
	counts                                        store.CountChanges
	led                                           *resource.Ledger // loaded by the first allocation
}

func prepareTransition(ctx context.Context, tx *sql.Tx) (*transitionStmts, error) {
	st := &transitionStmts{tx: tx}
	var err error
	prep := func(q string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var s *sql.Stmt
		s, err = tx.PrepareContext(ctx, q)
		return s
	}
	st.cur = prep(`SELECT state, job, period, reason, answer FROM runs WHERE id = ?`)
	// COALESCE keeps a column when its parameter is NULL ("not given").
	st.update = prep(`UPDATE runs SET state = ?, reason = ?, recheck_at = ?,
		started = COALESCE(?, started), finished = COALESCE(?, finished),
		owner = COALESCE(?, owner), handle = COALESCE(?, handle), executor = COALESCE(?, executor),
		answer = COALESCE(?, answer)
		WHERE id = ? AND state = ? RETURNING ` + runCols)
	st.delDecisions = prep(`DELETE FROM decisions WHERE run_id = ?`)
	st.addDecision = prep(`INSERT INTO decisions (run_id, pos, constraint_name, action, reason, recheck_at)
		VALUES (?, ?, ?, ?, ?, ?)`)
	st.paused = prep(`SELECT job, paused_by, reason, since FROM paused_jobs WHERE job = ?`)
	st.event = prep(`INSERT INTO events (run_id, time, from_state, to_state, reason, type, job, period)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	st.addHold = prep(`INSERT INTO allocations (run_id, path, units, period, created) VALUES (?, ?, ?, ?, ?)`)
	st.addHeld = prep(`INSERT INTO held (run_id, path, units, period, created) VALUES (?, ?, ?, ?, ?)`)
	st.delHolds = prep(`DELETE FROM allocations WHERE run_id = ? AND period = ''`)
	st.delWaiter = prep(`DELETE FROM waiters WHERE run_id = ?`)
	if err != nil {
		st.close()
		return nil, err
	}
	return st, nil
}

func (st *transitionStmts) close() {
	for _, s := range []*sql.Stmt{st.cur, st.paused, st.update, st.delDecisions, st.addDecision, st.event, st.addHold, st.addHeld, st.delHolds, st.delWaiter} {
		if s != nil {
			s.Close()
		}
	}
}

func nonEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (st *transitionStmts) apply(ctx context.Context, t store.Transition) (talon.Run, error) {
	var cur, job, period, reason, answer string
	err := st.cur.QueryRowContext(ctx, t.RunID).Scan(&cur, &job, &period, &reason, &answer)
	if errors.Is(err, sql.ErrNoRows) {
		return talon.Run{}, fmt.Errorf("run %d: %w", t.RunID, store.ErrNotFound)
	}
	if err != nil {
		return talon.Run{}, err
	}
	from := talon.State(cur)
	if err := store.CheckTransition(t, from); err != nil {
		return talon.Run{}, err
	}
	if t.To == talon.StateReady && !t.Mark {
		// A paused job's runs stay blocked; deciding it here, under the
		// write lock, means none slips through as the pause is written.
		var p talon.Pause
		var since int64
		err := st.paused.QueryRowContext(ctx, job).Scan(&p.Job, &p.By, &p.Reason, &since)
		switch {
		case err == nil:
			p.Since = fromMicros(since)
			return talon.Run{}, store.PausedFence(p)
		case !errors.Is(err, sql.ErrNoRows):
			return talon.Run{}, fmt.Errorf("check pause: %w", err)
		}
	}
	if t.To == talon.StateReady && t.Fence != nil {
		if ferr, err := checkFence(ctx, st.tx, st.counts, t.RunID, job, period, t.Fence); err != nil {
			return talon.Run{}, err
		} else if ferr != nil {
			return talon.Run{}, ferr
		}
	}
	now := store.NowOr(t.Now)
	if t.To == talon.StateReady && t.Allocate != nil {
		if ferr, err := st.allocate(ctx, t, now); err != nil {
			return talon.Run{}, err
		} else if ferr != nil {
			return talon.Run{}, ferr
		}
	}
	var started, finished, owner any
	if t.To == talon.StateRunning && from != talon.StateRunning {
		started = micros(now)
	}
	if t.To.Terminal() && !(t.Mark && from.Terminal()) {
		// A mark of a finished run changes its outcome, not when it ended.
		finished = micros(now)
	}
	if t.To == talon.StateReady || t.To == talon.StateRunning {
		owner = nonEmpty(t.Owner)
	}
	evented, newAnswer := store.Evented(t, from, reason, answer)
	run, err := scanRun(st.update.QueryRowContext(ctx, string(t.To), t.Reason, nullMicros(t.RecheckAt),
		started, finished, owner, nonEmpty(t.Handle), nonEmpty(t.Executor), nonEmpty(newAnswer), t.RunID, cur))
	if errors.Is(err, sql.ErrNoRows) {
		// Cannot happen while this transaction holds the write lock, but
		// the compare-and-set is the guarantee, not the lock.
		return talon.Run{}, fmt.Errorf("run %d: %w", t.RunID, store.ErrConflict)
	}
	if err != nil {
		return talon.Run{}, err
	}
	st.counts.Moved(job, period, from, t.To)
	if err := st.settle(ctx, t, from); err != nil {
		return talon.Run{}, err
	}
	if t.Decisions != nil {
		if _, err := st.delDecisions.ExecContext(ctx, t.RunID); err != nil {
			return talon.Run{}, fmt.Errorf("replace decisions: %w", err)
		}
		for i, d := range t.Decisions {
			if _, err := st.addDecision.ExecContext(ctx, t.RunID, i, d.Constraint, string(d.Action), d.Reason,
				nullMicros(d.RecheckAt)); err != nil {
				return talon.Run{}, fmt.Errorf("replace decisions: %w", err)
			}
		}
	}
	st.evented = evented
	if st.evented {
		if _, err := st.event.ExecContext(ctx, t.RunID, micros(now), cur, string(t.To), t.Reason,
			string(talon.TransitionEvent(from, t.To)), job, period); err != nil {
			return talon.Run{}, fmt.Errorf("record event: %w", err)
		}
	}
	return run, nil
}

// checkFence decides the fenced limits inside the write transaction.
// pending holds the batch's changes to the counters, not yet written.
func checkFence(ctx context.Context, tx *sql.Tx, pending store.CountChanges, runID int64, job, period string, f *store.Fence) (*store.FenceError, error) {
	if f.OncePerPeriod {
		// A succeeded run first, counted by the run counters; then the
		// lowest run ready or running, through the index of live runs. No
		// query walks the period's history.
		var n int64
		err := tx.QueryRowContext(ctx, `SELECT n FROM run_counts WHERE job = ? AND period = ? AND state = 'succeeded'`,
			job, period).Scan(&n)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("check once_per_period: %w", err)
		}
		n += int64(pending[store.CountKey{Job: job, Period: period, State: talon.StateSucceeded}])
		if n > 0 {
			var id int64
			err := tx.QueryRowContext(ctx, `SELECT id FROM runs
				WHERE job = ? AND period = ? AND state = 'succeeded' AND id <> ? LIMIT 1`, job, period, runID).Scan(&id)
			switch {
			case err == nil:
				return store.OncePerPeriodFence(period, id, talon.StateSucceeded), nil
			case !errors.Is(err, sql.ErrNoRows):
				return nil, fmt.Errorf("check once_per_period: %w", err)
			}
		}
		var id int64
		var state string
		// +period keeps SQLite from walking the (job, period) index,
		// which holds the period's history, instead of the live runs.
		err = tx.QueryRowContext(ctx, `SELECT id, state FROM runs
			WHERE `+store.LiveStates+` AND state IN ('ready', 'running') AND job = ? AND +period = ? AND id <> ?
			ORDER BY id LIMIT 1`, job, period, runID).Scan(&id, &state)
		switch {
		case err == nil:
			return store.OncePerPeriodFence(period, id, talon.State(state)), nil
		case !errors.Is(err, sql.ErrNoRows):
			return nil, fmt.Errorf("check once_per_period: %w", err)
		}
	}
	if f.MaxRunning > 0 {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM runs
			WHERE `+store.LiveStates+` AND state IN ('ready', 'running') AND job = ? AND id <> ?`, job, runID).Scan(&n); err != nil {
			return nil, fmt.Errorf("check max_running: %w", err)
		}
		if n >= f.MaxRunning {
			rows, err := tx.QueryContext(ctx, `SELECT id FROM runs
				WHERE `+store.LiveStates+` AND state IN ('ready', 'running') AND job = ? AND id <> ? ORDER BY id LIMIT ?`,
				job, runID, store.FenceListMax)
			if err != nil {
				return nil, fmt.Errorf("check max_running: %w", err)
			}
			defer rows.Close()
			var ids []int64
			for rows.Next() {
				var id int64
				if err := rows.Scan(&id); err != nil {
					return nil, err
				}
				ids = append(ids, id)
			}
			if err := rows.Err(); err != nil {
				return nil, err
			}
			return store.MaxRunningFence(n, f.MaxRunning, ids), nil
		}
	}
	return nil, nil
}
