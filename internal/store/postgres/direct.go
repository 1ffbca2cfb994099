package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/store"
)

// direct reports whether a batch can be applied without first locking
// and reading its runs: nothing in it is decided from what the store
// holds (no fence, allocation, pause or quiet re-decision), each item
// expects one state and moves to another, and no run appears twice. A
// compare-and-set UPDATE then says by itself which items apply. The
// batches that record starts and ends (ready → running, running →
// succeeded or failed, lost runs) are such batches.
func direct(ts []store.Transition) bool {
	seen := make(map[int64]bool, len(ts))
	for _, t := range ts {
		if t.Mark || t.Quiet || t.To == talon.StateReady || t.Fence != nil || t.Allocate != nil || t.Decisions != nil ||
			len(t.From) != 1 || t.From[0] == t.To || seen[t.RunID] {
			return false
		}
		seen[t.RunID] = true
	}
	return true
}

// updateDirect applies a direct batch in one statement: the
// compare-and-set updates, their events, the resources the runs release
// and the queue rows they leave (of the runs updated only), and the
// counters, which it takes last and in key order, as every transaction
// does.
var updateDirect = `WITH u AS (
	SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::timestamptz[],
		$6::timestamptz[], $7::timestamptz[], $8::text[], $9::text[], $10::text[], $11::timestamptz[], $12::text[],
		$13::bool[], $14::bool[])
		WITH ORDINALITY AS u(id, from_state, to_state, reason, recheck_at, started, finished, owner, handle, executor, at,
			type, release, unwait, ord)
	ORDER BY id
), upd AS (
	UPDATE runs AS r SET state = u.to_state, reason = u.reason, recheck_at = u.recheck_at,
		started = COALESCE(u.started, r.started), finished = COALESCE(u.finished, r.finished),
		owner = COALESCE(u.owner, r.owner), handle = COALESCE(u.handle, r.handle), executor = COALESCE(u.executor, r.executor)
	FROM u WHERE r.id = u.id AND r.state = u.from_state
	RETURNING ` + qualified("r", runCols) + `
), ev AS (
	INSERT INTO events (run_id, time, from_state, to_state, reason, type, job, period)
	SELECT u.id, u.at, u.from_state, u.to_state, u.reason, u.type, upd.job, upd.period FROM u JOIN upd ON upd.id = u.id
	ORDER BY u.ord
), rel AS (
	DELETE FROM allocations AS a USING u JOIN upd ON upd.id = u.id
	WHERE a.run_id = u.id AND u.release AND a.period = ''
), unq AS (
	DELETE FROM waiters AS w USING u JOIN upd ON upd.id = u.id
	WHERE w.run_id = u.id AND u.unwait
), cnt AS (
	INSERT INTO run_counts (job, period, state, n)
	SELECT job, period, state, sum(d) FROM (
		SELECT upd.job, upd.period, u.from_state AS state, -1 AS d FROM u JOIN upd ON upd.id = u.id
		UNION ALL SELECT upd.job, upd.period, upd.state, 1 FROM upd) AS x
	GROUP BY job, period, state HAVING sum(d) <> 0
	ORDER BY job, period, state
	ON CONFLICT (job, period, state) DO UPDATE SET n = run_counts.n + EXCLUDED.n
)
SELECT * FROM upd`

// directRows holds the columns of updateDirect, one item each.
type directRows struct {
	items                 []int // index in the batch of each row
	ids                   []int64
	from, to, reason      []string
	recheck, started, fin []*time.Time
	owner, handle, exec   []*string
	at                    []time.Time
	typ                   []string
}

func (w *directRows) add(i int, t store.Transition, from talon.State, at time.Time) {
	started, finished, owner := store.Stamps(t, from, at)
	w.items = append(w.items, i)
	w.ids = append(w.ids, t.RunID)
	w.from = append(w.from, string(from))
	w.to = append(w.to, string(t.To))
	w.reason = append(w.reason, t.Reason)
	w.recheck = append(w.recheck, timePtr(t.RecheckAt))
	w.started = append(w.started, started)
	w.fin = append(w.fin, finished)
	w.owner = append(w.owner, strPtr(owner))
	w.handle = append(w.handle, strPtr(t.Handle))
	w.exec = append(w.exec, strPtr(t.Executor))
	w.at = append(w.at, at)
	w.typ = append(w.typ, string(talon.TransitionEvent(from, t.To)))
}

// transitionDirect applies a direct batch (see direct) in one round trip.
func (db *DB) transitionDirect(ctx context.Context, ts []store.Transition, tb *thenBatch) ([]store.Result, error) {
	results := make([]store.Result, len(ts))
	var w directRows
	var release, unwait []bool
	index := map[int64]int{}
	for i, t := range ts {
		from := t.From[0]
		if err := store.CheckTransition(t, from); err != nil {
			results[i].Err = err
			continue
		}
		index[t.RunID] = i
		w.add(i, t, from, store.NowOr(t.Now))
		rel, unw := store.Settles(t, from)
		release, unwait = append(release, rel), append(unwait, unw)
	}
	if len(w.ids) > 0 {
		err := db.pipeTx(ctx, func(tx *pipe) error {
			for _, i := range w.items {
				results[i] = store.Result{}
			}
			b := &pgx.Batch{}
			b.Queue(updateDirect, w.ids, w.from, w.to, w.reason, w.recheck, w.started, w.fin,
				w.owner, w.handle, w.exec, w.at, w.typ, release, unwait)
			if tb != nil {
				tb.queue(b)
			}
			return tx.send(ctx, b, true, func(br pgx.BatchResults, n int) error {
				if n == 1 {
					return tb.read(br)
				}
				rows, err := br.Query()
				if err != nil {
					return fmt.Errorf("update runs: %w", err)
				}
				return collectRuns(rows, func(r talon.Run) { results[index[r.ID]].Run = r })
			})
		})
		if err != nil {
			return nil, fmt.Errorf("transition: %w", err)
		}
		if tb != nil {
			if err := tb.results(ctx, db, results); err != nil {
				return nil, fmt.Errorf("transition: %w", err)
			}
		}
	}
	// The items that did not apply: the run is missing, or in another
	// state, which the error names.
	var missed []int64
	for _, i := range w.items {
		if results[i].Run.ID == 0 {
			missed = append(missed, ts[i].RunID)
		}
	}
	if len(missed) == 0 {
		return results, nil
	}
	states := map[int64]talon.State{}
	err := db.read(ctx, func(q querier) error {
		rows, err := q.Query(ctx, `SELECT id, state FROM runs WHERE id = ANY($1)`, missed)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			var s string
			if err := rows.Scan(&id, &s); err != nil {
				return err
			}
			states[id] = talon.State(s)
		}
		return rows.Err()
	})
	if err != nil {
		// The batch is applied; only the words of its refusals are
		// missing.
		for _, id := range missed {
			results[index[id]].Err = fmt.Errorf("run %d is not %s: %w", id, ts[index[id]].From[0], store.ErrConflict)
		}
		return results, nil
	}
	for _, id := range missed {
		i := index[id]
		s, ok := states[id]
		if !ok {
			results[i].Err = fmt.Errorf("run %d: %w", id, store.ErrNotFound)
			continue
		}
		results[i].Err = store.CheckTransition(ts[i], s)
		if results[i].Err == nil {
			// It moved to the expected state after the update looked.
			results[i].Err = fmt.Errorf("run %d left %s meanwhile: %w", id, ts[i].From[0], store.ErrConflict)
		}
	}
	return results, nil
}
