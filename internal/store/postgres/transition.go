package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/store"
)

// current is what a transition batch knows of one run.
type current struct {
	state               talon.State
	job, period, reason string
}

const updateRun = `UPDATE runs SET state = $1, reason = $2, recheck_at = $3,
	started = COALESCE($4, started), finished = COALESCE($5, finished),
	owner = COALESCE($6, owner), handle = COALESCE($7, handle), executor = COALESCE($8, executor)
	WHERE id = $9 AND state = $10
	RETURNING ` + runCols

// Transition applies each transition as a compare-and-set within one
// transaction. It first locks every named run (in id order), then the
// jobs whose limits are fenced (in name order), so concurrent batches
// cannot deadlock and no one else moves these runs meanwhile; the checks
// then run in memory, and the writes go in pipelined batches, sent early
// only when a fence must count runs the batch itself has moved.
func (db *DB) Transition(ctx context.Context, ts []store.Transition) ([]store.Result, error) {
	if len(ts) == 0 {
		return nil, nil
	}
	ids := make([]int64, 0, len(ts))
	for _, t := range ts {
		ids = append(ids, t.RunID)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)

	var results []store.Result
	err := db.tx(ctx, func(tx pgx.Tx) error {
		results = make([]store.Result, len(ts))
		cur := make(map[int64]*current, len(ids))
		rows, err := tx.Query(ctx, `SELECT id, state, job, period, reason FROM runs
			WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`, ids)
		if err != nil {
			return fmt.Errorf("lock runs: %w", err)
		}
		for rows.Next() {
			var id int64
			c := &current{}
			if err := rows.Scan(&id, &c.state, &c.job, &c.period, &c.reason); err != nil {
				rows.Close()
				return err
			}
			cur[id] = c
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("lock runs: %w", err)
		}

		var fenced []string
		for _, t := range ts {
			if c := cur[t.RunID]; c != nil && t.To == talon.StateReady && t.Fence != nil {
				fenced = append(fenced, c.job)
			}
		}
		slices.Sort(fenced)
		for _, job := range slices.Compact(fenced) {
			// Per job and schema: schedulers fencing other jobs don't wait.
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.talon.job.' || $1))`, job); err != nil {
				return fmt.Errorf("lock job %s: %w", job, err)
			}
		}

		b := &pgx.Batch{}
		var pending []int // for each queued statement: the item whose run it returns, or -1
		flush := func() error {
			err := sendBatch(ctx, tx, b, func(br pgx.BatchResults, n int) error {
				i := pending[n]
				if i < 0 {
					_, err := br.Exec()
					return err
				}
				run, err := scanRun(br.QueryRow())
				if err != nil {
					// The row is locked, so the compare-and-set cannot lose.
					return fmt.Errorf("update run %d: %w", ts[i].RunID, err)
				}
				results[i].Run = run
				return nil
			})
			b, pending = &pgx.Batch{}, nil
			return err
		}
		for i, t := range ts {
			c := cur[t.RunID]
			if c == nil {
				results[i].Err = fmt.Errorf("run %d: %w", t.RunID, store.ErrNotFound)
				continue
			}
			if err := checkTransition(t, c.state); err != nil {
				results[i].Err = err
				continue
			}
			if t.To == talon.StateReady && t.Fence != nil {
				if err := flush(); err != nil {
					return err
				}
				fe, err := checkFence(ctx, tx, t.RunID, c.job, c.period, t.Fence)
				if err != nil {
					return err
				}
				if fe != nil {
					results[i].Err = fe
					continue
				}
			}
			now := nowOr(t.Now)
			var started, finished, owner any
			if t.To == talon.StateRunning && c.state != talon.StateRunning {
				started = now
			}
			if t.To.Terminal() {
				finished = now
			}
			if (t.To == talon.StateReady || t.To == talon.StateRunning) && t.Owner != "" {
				owner = t.Owner
			}
			b.Queue(updateRun, string(t.To), t.Reason, tstz(t.RecheckAt), started, finished, owner,
				nonEmpty(t.Handle), nonEmpty(t.Executor), t.RunID, string(c.state))
			pending = append(pending, i)
			if t.Decisions != nil {
				b.Queue(`DELETE FROM decisions WHERE run_id = $1`, t.RunID)
				pending = append(pending, -1)
				if len(t.Decisions) > 0 {
					n := len(t.Decisions)
					names, actions, reasons := make([]string, n), make([]string, n), make([]string, n)
					rechecks := make([]any, n)
					for j, d := range t.Decisions {
						names[j], actions[j], reasons[j], rechecks[j] = d.Constraint, string(d.Action), d.Reason, tstz(d.RecheckAt)
					}
					b.Queue(`INSERT INTO decisions (run_id, pos, constraint_name, action, reason, recheck_at)
						SELECT $1, d.ord - 1, d.c, d.a, d.r, d.t
						FROM unnest($2::text[], $3::text[], $4::text[], $5::timestamptz[]) WITH ORDINALITY AS d(c, a, r, t, ord)`,
						t.RunID, names, actions, reasons, rechecks)
					pending = append(pending, -1)
				}
			}
			if !(t.Quiet && c.state == t.To && c.reason == t.Reason) {
				b.Queue(`INSERT INTO events (run_id, time, from_state, to_state, reason) VALUES ($1, $2, $3, $4, $5)`,
					t.RunID, now, string(c.state), string(t.To), t.Reason)
				pending = append(pending, -1)
			}
			c.state, c.reason = t.To, t.Reason
		}
		return flush()
	})
	if err != nil {
		return nil, fmt.Errorf("transition: %w", err)
	}
	return results, nil
}

func nonEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// checkFence decides the fenced limits inside the transaction, which
// holds the job's advisory lock.
func checkFence(ctx context.Context, tx pgx.Tx, runID int64, job, period string, f *store.Fence) (*store.FenceError, error) {
	if f.OncePerPeriod {
		var id int64
		var state string
		err := tx.QueryRow(ctx, `SELECT id, state FROM runs
			WHERE job = $1 AND period = $2 AND id <> $3 AND state IN ('succeeded', 'running', 'ready')
			ORDER BY state = 'succeeded' DESC, id LIMIT 1`, job, period, runID).Scan(&id, &state)
		switch {
		case err == nil:
			return oncePerPeriodFence(period, id, talon.State(state)), nil
		case !errors.Is(err, pgx.ErrNoRows):
			return nil, fmt.Errorf("check once_per_period: %w", err)
		}
	}
	if f.MaxRunning > 0 {
		var n int
		var ids []int64
		err := tx.QueryRow(ctx, `SELECT count(*), (array_agg(id ORDER BY id))[1:$3]
			FROM runs WHERE job = $1 AND state IN ('ready', 'running') AND id <> $2`,
			job, runID, fenceListMax).Scan(&n, &ids)
		if err != nil {
			return nil, fmt.Errorf("check max_running: %w", err)
		}
		if n >= f.MaxRunning {
			return maxRunningFence(n, f.MaxRunning, ids), nil
		}
	}
	return nil, nil
}
