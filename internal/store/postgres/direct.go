package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/store"
)

// direct reports whether a batch can be applied without first locking
// and reading its runs: nothing in it is decided from what the store
// holds in Go (no allocation, once_per_period, mark or quiet
// re-decision; max_running is decided in SQL), and
// each run's first item expects one state, its later items the state the
// one before left. A compare-and-set UPDATE of each run's net change
// then says by itself which runs apply; a run entering ready is guarded
// against its job's pause in SQL, after its job's lock. The batches that
// start runs (blocked → ready → running, decided and started at once),
// record ends and lost runs are such batches.
func direct(ts []store.Transition) bool {
	last := make(map[int64]talon.State, len(ts))
	limit, leaves := 0, false
	for _, t := range ts {
		if t.Fence != nil && t.Fence.MaxRunning > 0 {
			// One limit for the batch, which SQL applies per job; the
			// lock path replays batches that mix limits.
			if limit != 0 && limit != t.Fence.MaxRunning {
				return false
			}
			limit = t.Fence.MaxRunning
		}
		// A run leaving ready or running makes room for the items after
		// it, which the statement's snapshot would not see.
		if !activeState(t.To) && slices.ContainsFunc(t.From, activeState) {
			leaves = true
		}
		if limit != 0 && leaves {
			return false
		}
		if t.Mark || t.Quiet || t.Allocate != nil || t.From == nil ||
			t.Fence != nil && (t.Fence.OncePerPeriod || t.To != talon.StateReady) {
			return false
		}
		if prev, seen := last[t.RunID]; seen {
			if !slices.Contains(t.From, prev) {
				return false
			}
		} else if len(t.From) != 1 {
			return false
		}
		if t.From[0] == t.To && t.Decisions == nil {
			return false
		}
		last[t.RunID] = t.To
	}
	return true
}

// refusedEarlier is the error of an item of run id after one of the
// batch's earlier items of the same run was refused.
func refusedEarlier(id int64) error {
	return fmt.Errorf("run %d: an earlier transition of the batch was refused: %w", id, store.ErrConflict)
}

// activeState reports whether a run in s counts toward max_running.
func activeState(s talon.State) bool { return s == talon.StateReady || s == talon.StateRunning }

// directParts says which parts of updateDirect a batch needs: a part
// for no row of the batch is left out of the statement. The executor's
// set-up of a statement (each write opens its table and indexes, each
// join builds its state) was about a fifth of the server's CPU in a
// profile of one-at-a-time triggers, whose batches move one run and
// rarely write decisions.
type directParts struct {
	deleteDecisions bool // a run's decisions are replaced (ndec ≥ 0)
	setDecisions    bool // decisions to write
	release         bool // a run may release resources
	unwait          bool // a run may leave the resource queue
	limit           bool // a run enters ready under max_running
	one             bool // the batch moves one run: $1–$15 and $22 are scalars
}

// directStmts holds updateDirect's text for each combination of parts,
// built once: each is a statement of its own in the connection's cache.
var directStmts = func() map[directParts]string {
	m := map[directParts]string{}
	for i := range 1 << 6 {
		p := directParts{i&1 != 0, i&2 != 0, i&4 != 0, i&8 != 0, i&16 != 0, i&32 != 0}
		m[p] = updateDirect(p)
	}
	return m
}()

// updateDirect applies a direct batch in one statement: the
// compare-and-set of each run's net change, the events of its items, its
// decisions (upserted by position, the extra ones deleted), the
// resources the runs release and the queue rows they leave (of the runs
// updated only; not looked for at all while no run holds or waits), and
// the counters, which it takes last and in key order,
// as every transaction does. A run entering ready is not updated while
// its job is paused: the statement before it (lockJobs) took the jobs'
// locks, which PauseJob takes too, so this statement's snapshot sees a
// pause written meanwhile, and counts every run another scheduler let in
// before it released them: a run whose job has max_running enters when
// the job's active runs, plus those of the batch that may enter before
// it (rank: in its state, job not paused), stay within the limit. A
// batch takes this path with one limit only, and with no run leaving
// ready or running, which would make room the snapshot does not show. The
// update finds its runs by "id = ANY", which every plan answers from the
// primary key: a join on c alone may be planned, and cached, as a scan
// of the whole table. The read of the runs that ranks them joins on c's
// ids: "id = ANY" there was evaluated again for every row of c (without
// it the statement's server time in BenchmarkEndToEnd fell by about 6 %).
//
// $1–$21 are the runs' changes and the items' events, $22 their limits,
// $23–$28 the decisions (only with p.setDecisions).
func updateDirect(p directParts) string {
	var sb strings.Builder
	ids := "ANY($1::bigint[])"
	u := `unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::timestamptz[],
		$6::timestamptz[], $7::timestamptz[], $8::text[], $9::text[], $10::text[], $11::text[],
		$12::bool[], $13::bool[], $14::bool[], $15::int[], $22::int[])
		WITH ORDINALITY AS u(id, from_state, to_state, reason, recheck_at, started, finished, owner, handle, executor, answer,
			ready, release, unwait, ndec, max_running, ord)`
	if p.one {
		// One run: c is one row the planner knows as one, so every join
		// on it is a nested loop with nothing to build.
		ids = "$1::bigint"
		u = `(SELECT $1::bigint AS id, $2::text AS from_state, $3::text AS to_state, $4::text AS reason, $5::timestamptz AS recheck_at,
		$6::timestamptz AS started, $7::timestamptz AS finished, $8::text AS owner, $9::text AS handle, $10::text AS executor,
		$11::text AS answer, $12::bool AS ready, $13::bool AS release, $14::bool AS unwait, $15::int AS ndec,
		$22::int AS max_running, 1::bigint AS ord) AS u`
	}
	if p.limit {
		// rank: the run's place among the batch's runs of its job that
		// may enter (in their state, job not paused). It is computed with
		// c, from one read of each run: as a subquery joined to c, a plan
		// that expected one row of it ran it again for every run (500
		// runs: 130 ms).
		sb.WriteString(`WITH c AS (
	SELECT x.*, CASE WHEN x.ok THEN row_number() OVER (PARTITION BY x.ok, x.rjob ORDER BY x.ord) END AS rank
	FROM (SELECT u.*, r.job AS rjob, u.max_running > 0 AND r.state = u.from_state
			AND NOT EXISTS (SELECT 1 FROM paused_jobs AS p WHERE p.job = r.job) AS ok
		FROM ` + u + `
		LEFT JOIN runs AS r ON r.id = u.id) AS x
	ORDER BY x.id
)`)
	} else {
		sb.WriteString(`WITH c AS (
	SELECT * FROM ` + u + `
	ORDER BY id
)`)
	}
	sb.WriteString(`, upd AS (
	UPDATE runs AS r SET state = c.to_state, reason = c.reason, recheck_at = c.recheck_at,
		started = COALESCE(c.started, r.started), finished = COALESCE(c.finished, r.finished),
		owner = COALESCE(c.owner, r.owner), handle = COALESCE(c.handle, r.handle), executor = COALESCE(c.executor, r.executor),
		answer = COALESCE(c.answer, r.answer)
	FROM c
	WHERE r.id = ` + ids + ` AND r.id = c.id AND r.state = c.from_state
		AND NOT (c.ready AND EXISTS (SELECT 1 FROM paused_jobs AS p WHERE p.job = r.job))`)
	if p.limit {
		sb.WriteString(`
		AND (c.max_running = 0 OR c.rank + (SELECT count(*) FROM runs AS a
			WHERE a.job = r.job AND a.state IN ('ready', 'running') AND a.` + store.LiveStates + `) <= c.max_running)`)
	}
	sb.WriteString(`
	RETURNING ` + qualified("r", runCols) + `
), ev AS (
	INSERT INTO events (run_id, time, from_state, to_state, reason, type, job, period)
	SELECT e.id, e.at, e.from_state, e.to_state, e.reason, e.type, upd.job, upd.period
	FROM unnest($16::bigint[], $17::timestamptz[], $18::text[], $19::text[], $20::text[], $21::text[])
		WITH ORDINALITY AS e(id, at, from_state, to_state, reason, type, ord)
	JOIN upd ON upd.id = e.id
	ORDER BY e.ord
)`)
	if p.deleteDecisions {
		sb.WriteString(`, ddel AS (
	DELETE FROM decisions AS d USING c JOIN upd ON upd.id = c.id
	WHERE d.run_id = c.id AND c.ndec >= 0 AND d.pos >= c.ndec
)`)
	}
	if p.setDecisions {
		sb.WriteString(`, dset AS (
	INSERT INTO decisions (run_id, pos, constraint_name, action, reason, recheck_at)
	SELECT x.run_id, x.pos, x.name, x.action, x.reason, x.recheck_at
	FROM unnest($23::bigint[], $24::int[], $25::text[], $26::text[], $27::text[], $28::timestamptz[])
		AS x(run_id, pos, name, action, reason, recheck_at)
	JOIN upd ON upd.id = x.run_id
	ORDER BY x.run_id, x.pos
	ON CONFLICT (run_id, pos) DO UPDATE SET constraint_name = EXCLUDED.constraint_name, action = EXCLUDED.action,
		reason = EXCLUDED.reason, recheck_at = EXCLUDED.recheck_at
)`)
	}
	if p.release {
		sb.WriteString(`, rel AS (
	DELETE FROM allocations AS a USING c JOIN upd ON upd.id = c.id
	WHERE a.run_id = c.id AND c.release AND a.period = ''
		AND EXISTS (SELECT FROM allocations WHERE period = '')
)`)
	}
	if p.unwait {
		sb.WriteString(`, unq AS (
	DELETE FROM waiters AS w USING c JOIN upd ON upd.id = c.id
	WHERE w.run_id = c.id AND c.unwait AND EXISTS (SELECT FROM waiters)
)`)
	}
	sb.WriteString(`, cnt AS (
	INSERT INTO run_counts (job, period, state, shard, n)
	SELECT job, period, state, ` + countShard + `, sum(d) FROM (
		SELECT upd.job, upd.period, c.from_state AS state, -1 AS d FROM c JOIN upd ON upd.id = c.id
		UNION ALL SELECT upd.job, upd.period, upd.state, 1 FROM upd) AS x
	GROUP BY job, period, state HAVING sum(d) <> 0
	ORDER BY job, period, state
	ON CONFLICT (job, period, state, shard) DO UPDATE SET n = run_counts.n + EXCLUDED.n
)
SELECT * FROM upd`)
	return sb.String()
}

// directRows holds the arguments of updateDirect.
type directRows struct {
	// by run: its net change
	runs                  []*change
	ready, release, unwai []bool
	ndec                  []int32
	maxRunning            []int32
	// by item: its event
	ev struct {
		ids                   []int64
		at                    []time.Time
		from, to, reason, typ []string
	}
	// by decision
	dec struct {
		ids                  []int64
		pos                  []int32
		name, action, reason []string
		recheck              []*time.Time
	}
}

// transitionDirect applies a direct batch (see direct) in one round trip.
func (db *DB) transitionDirect(ctx context.Context, ts []store.Transition, ae *afterEnds) ([]store.Result, error) {
	results := make([]store.Result, len(ts))
	var w directRows
	byID := map[int64]*change{}
	at := make(map[int64]int) // run → its index in w.runs
	var readyIDs []int64
	failed := map[int64]bool{}  // runs with an item refused before the store is asked
	decided := map[int64]bool{} // runs with decisions queued
	for i, t := range ts {
		ch := byID[t.RunID]
		from := t.From[0]
		if ch != nil {
			from = ch.to
		}
		if err := store.CheckTransition(t, from); err != nil || failed[t.RunID] {
			if err == nil {
				err = refusedEarlier(t.RunID)
			}
			results[i].Err = err
			failed[t.RunID] = true
			continue
		}
		now := store.NowOr(t.Now)
		if ch == nil {
			ch = &change{id: t.RunID, from: from}
			byID[t.RunID] = ch
			at[t.RunID] = len(w.runs)
			w.runs = append(w.runs, ch)
			w.ready, w.release, w.unwai, w.ndec = append(w.ready, false), append(w.release, false), append(w.unwai, false), append(w.ndec, -1)
			w.maxRunning = append(w.maxRunning, 0)
		}
		k := at[t.RunID]
		_, answer := store.Evented(t, from, "", "")
		ch.fold(i, t, from, now, answer)
		if t.To == talon.StateReady && !w.ready[k] {
			w.ready[k] = true
			readyIDs = append(readyIDs, t.RunID)
			if t.Fence != nil && t.Fence.MaxRunning > 0 {
				w.maxRunning[k] = int32(t.Fence.MaxRunning)
			}
		}
		rel, unw := store.Settles(t, from)
		w.release[k], w.unwai[k] = w.release[k] || rel, w.unwai[k] || unw
		if t.Decisions != nil {
			w.ndec[k] = int32(len(t.Decisions))
			// The last item's decisions stand: drop those queued before.
			d := &w.dec
			for j := len(d.ids) - 1; j >= 0 && decided[t.RunID]; j-- {
				if d.ids[j] == t.RunID {
					d.ids, d.pos, d.name, d.action, d.reason, d.recheck = slices.Delete(d.ids, j, j+1), slices.Delete(d.pos, j, j+1),
						slices.Delete(d.name, j, j+1), slices.Delete(d.action, j, j+1), slices.Delete(d.reason, j, j+1), slices.Delete(d.recheck, j, j+1)
				}
			}
			decided[t.RunID] = true
			for p, dd := range t.Decisions {
				d.ids, d.pos = append(d.ids, t.RunID), append(d.pos, int32(p))
				d.name, d.action, d.reason = append(d.name, dd.Constraint), append(d.action, string(dd.Action)), append(d.reason, dd.Reason)
				d.recheck = append(d.recheck, timePtr(dd.RecheckAt))
			}
		}
		e := &w.ev
		e.ids, e.at = append(e.ids, t.RunID), append(e.at, now)
		e.from, e.to = append(e.from, string(from)), append(e.to, string(t.To))
		e.reason, e.typ = append(e.reason, t.Reason), append(e.typ, string(talon.TransitionEvent(from, t.To)))
	}
	// A run with a refused item applies none: its other items are
	// refused too, as they would be one by one after it.
	for id := range failed {
		if ch := byID[id]; ch != nil {
			for _, i := range ch.items {
				results[i].Err = refusedEarlier(id)
			}
			ch.items = nil
		}
	}
	n := len(w.runs)
	ids := make([]int64, n)
	from, to, reason := make([]string, n), make([]string, n), make([]string, n)
	recheck, started, fin := make([]*time.Time, n), make([]*time.Time, n), make([]*time.Time, n)
	owner, handle, exec, answer := make([]*string, n), make([]*string, n), make([]*string, n), make([]*string, n)
	for k, ch := range w.runs {
		if ch.items == nil {
			ch.from = "" // never matches: the run is not updated
		}
		ids[k], from[k], to[k], reason[k] = ch.id, string(ch.from), string(ch.to), ch.reason
		recheck[k], started[k], fin[k] = timePtr(ch.recheck), ch.started, ch.finished
		owner[k], handle[k], exec[k], answer[k] = strPtr(ch.owner), strPtr(ch.handle), strPtr(ch.executor), strPtr(ch.answr)
	}
	parts := directParts{
		deleteDecisions: slices.ContainsFunc(w.ndec, func(n int32) bool { return n >= 0 }),
		setDecisions:    len(w.dec.ids) > 0,
		release:         slices.Contains(w.release, true),
		unwait:          slices.Contains(w.unwai, true),
		limit:           slices.ContainsFunc(w.maxRunning, func(n int32) bool { return n > 0 }),
		one:             n == 1,
	}
	updated := map[int64]talon.Run{}
	if n > 0 {
		err := db.pipeTx(ctx, func(tx *pipe) error {
			tx.events = true
			clear(updated)
			b := &pgx.Batch{}
			first := 0
			if len(readyIDs) > 0 {
				queueLockJobs(b, sortedIDs(slices.Clone(readyIDs)))
				first = 1
			}
			d, e := &w.dec, &w.ev
			args := []any{ids, from, to, reason, recheck, started, fin, owner, handle, exec, answer,
				w.ready, w.release, w.unwai, w.ndec,
				e.ids, e.at, e.from, e.to, e.reason, e.typ, w.maxRunning}
			if parts.one {
				args = []any{ids[0], from[0], to[0], reason[0], recheck[0], started[0], fin[0], owner[0], handle[0], exec[0], answer[0],
					w.ready[0], w.release[0], w.unwai[0], w.ndec[0],
					e.ids, e.at, e.from, e.to, e.reason, e.typ, w.maxRunning[0]}
			}
			if parts.setDecisions {
				args = append(args, d.ids, d.pos, d.name, d.action, d.reason, d.recheck)
			}
			b.Queue(directStmts[parts], args...)
			ae.queue(b)
			return tx.send(ctx, b, true, func(br pgx.BatchResults, i int) error {
				if i < first {
					if _, err := br.Exec(); err != nil {
						return fmt.Errorf("lock jobs: %w", err)
					}
					return nil
				}
				if ok, err := ae.read(br, i); ok {
					return err
				}
				rows, err := br.Query()
				if err != nil {
					return fmt.Errorf("update runs: %w", err)
				}
				return collectRuns(rows, func(r talon.Run) { updated[r.ID] = r })
			})
		})
		if err != nil {
			return nil, fmt.Errorf("transition: %w", err)
		}
		for _, ch := range w.runs {
			r, ok := updated[ch.id]
			if !ok {
				continue
			}
			for k, i := range ch.items {
				results[i].Run = r
				if k < len(ch.items)-1 {
					results[i].Run.State, results[i].Run.Reason, results[i].Run.RecheckAt = ts[i].To, ts[i].Reason, ts[i].RecheckAt
				}
			}
		}
		if err := ae.fill(ctx, db, ts, results); err != nil {
			return nil, fmt.Errorf("transition: %w", err)
		}
	}
	// The runs that did not apply: the run is missing, in another state,
	// which the error names, or its job is paused.
	var missed []int64
	for _, ch := range w.runs {
		if len(ch.items) > 0 && results[ch.items[0]].Run.ID == 0 {
			missed = append(missed, ch.id)
		}
	}
	if len(missed) == 0 {
		return results, nil
	}
	type found struct {
		state talon.State
		job   string
	}
	states := map[int64]found{}
	paused := map[string]talon.Pause{}
	active := map[string][]int64{} // job → its runs ready or running
	limited := slices.ContainsFunc(w.maxRunning, func(n int32) bool { return n > 0 })
	err := db.read(ctx, func(q querier) error {
		rows, err := q.Query(ctx, `SELECT id, state, job FROM runs WHERE id = ANY($1)`, missed)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			var f found
			if err := rows.Scan(&id, &f.state, &f.job); err != nil {
				return err
			}
			states[id] = f
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(readyIDs) == 0 {
			return nil
		}
		prows, err := q.Query(ctx, pausedOfRuns, missed)
		if err != nil {
			return err
		}
		ps, err := scanPauses(prows)
		if err != nil {
			return err
		}
		for _, p := range ps {
			paused[p.Job] = p
		}
		if !limited {
			return nil
		}
		arows, err := q.Query(ctx, activeOfJobs, missed)
		if err != nil {
			return err
		}
		defer arows.Close()
		for arows.Next() {
			var job string
			var id int64
			if err := arows.Scan(&job, &id); err != nil {
				return err
			}
			active[job] = append(active[job], id)
		}
		return arows.Err()
	})
	for _, id := range missed {
		ch := byID[id]
		refuse := func(first error) {
			for k, i := range ch.items {
				if k == 0 {
					results[i].Err = first
				} else {
					results[i].Err = refusedEarlier(id)
				}
			}
		}
		if err != nil {
			// The batch is applied; only the words of its refusals are
			// missing.
			refuse(fmt.Errorf("run %d is not %s: %w", id, ch.from, store.ErrConflict))
			continue
		}
		f, ok := states[id]
		switch {
		case !ok:
			refuse(fmt.Errorf("run %d: %w", id, store.ErrNotFound))
		case f.state == ch.from && w.ready[at[id]] && paused[f.job].Job != "":
			refuse(refusedEarlier(id))
			for _, i := range ch.items {
				if ts[i].To == talon.StateReady {
					results[i].Err = store.PausedFence(paused[f.job])
					break
				}
			}
		case f.state == ch.from && w.maxRunning[at[id]] > 0:
			// Refused by max_running: the job's runs let in by then.
			refuse(refusedEarlier(id))
			ids := slices.DeleteFunc(slices.Clone(active[f.job]), func(o int64) bool { return o == id })
			slices.Sort(ids)
			fe := store.MaxRunningFence(len(ids), int(w.maxRunning[at[id]]), ids[:min(len(ids), store.FenceListMax)])
			for _, i := range ch.items {
				if ts[i].To == talon.StateReady {
					results[i].Err = fe
					break
				}
			}
		default:
			first := store.CheckTransition(ts[ch.items[0]], f.state)
			if first == nil {
				// It moved to the expected state after the update looked.
				first = fmt.Errorf("run %d left %s meanwhile: %w", id, ch.from, store.ErrConflict)
			}
			refuse(first)
		}
	}
	return results, nil
}
