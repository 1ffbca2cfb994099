package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/resource"
	"github.com/talonhq/talon/internal/store"
)

// current is what a transition batch knows of one run.
type current struct {
	state                       talon.State
	job, period, reason, answer string
	// decided: the run had decisions before the batch (its answer was
	// set), so they are deleted before its new ones are written.
	decided bool
}

// lockRuns locks the batch's runs in id order, so concurrent batches
// cannot deadlock and no one else moves these runs meanwhile.
const lockRuns = `SELECT id, state, job, period, reason, answer FROM runs
	WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`

// lockJobs takes the advisory lock of every job whose limits the batch
// fences, in lock-key order (not name order: two names may share a key).
// The ORDER BY subquery is not flattened, so the locks follow its order.
// Keys are per job and schema, so schedulers fencing other jobs don't wait.
const lockJobs = `SELECT count(pg_advisory_xact_lock(k)) FROM (
	SELECT DISTINCT hashtext(current_schema() || '.talon.job.' || job) AS k
	FROM runs WHERE id = ANY($1) ORDER BY k) AS keys`

// lockRunJob is lockJobs for one run, in a form whose cached generic plan
// the server keeps (with an array it plans every execution again).
const lockRunJob = `SELECT count(pg_advisory_xact_lock(hashtext(current_schema() || '.talon.job.' || job)))
	FROM runs WHERE id = $1`

// queueLockJobs queues the lock of the jobs of the runs ids (sorted).
func queueLockJobs(b *pgx.Batch, ids []int64) {
	if len(ids) == 1 {
		b.Queue(lockRunJob, ids[0])
		return
	}
	b.Queue(lockJobs, ids)
}

// activeOfJobs lists the runs counting toward max_running of the jobs of
// the given runs. It runs after lockJobs, in a new snapshot (READ
// COMMITTED), so it sees every run another scheduler let in before it
// released the lock.
const activeOfJobs = `SELECT job, id FROM runs
	WHERE job IN (SELECT job FROM runs WHERE id = ANY($1)) AND state IN ('ready', 'running') AND ` + store.LiveStates

// takenInPeriods lists what counts toward once_per_period in the (job,
// period) of the given runs: every run ready or running (through the
// partial index of live runs), and the number of succeeded runs from the
// counters with one of them to name. Its cost does not grow with the
// runs the period has had.
const takenInPeriods = `WITH k AS (SELECT DISTINCT job, period FROM runs WHERE id = ANY($1))
	SELECT r.job, r.period, r.id, r.state, 1::bigint FROM k JOIN runs AS r ON r.job = k.job AND r.period = k.period
	WHERE r.state IN ('ready', 'running') AND r.` + store.LiveStates + `
	UNION ALL
	SELECT k.job, k.period, COALESCE((SELECT id FROM runs AS r
		WHERE r.job = k.job AND r.period = k.period AND r.state = 'succeeded' LIMIT 1), 0), 'succeeded', c.n
	FROM k, LATERAL (SELECT sum(n)::bigint AS n FROM run_counts AS c
		WHERE c.job = k.job AND c.period = k.period AND c.state = 'succeeded') AS c
	WHERE c.n > 0`

// updateRuns applies each run's net change of a batch — at most one row
// per run, however many of its items the batch applied — as a
// compare-and-set on the state the run had before the batch. The rows
// are already locked, so every item matches; a row missing from the
// answer is a bug. The runs are found by "id = ANY" (see updateDirect).
var updateRuns = `UPDATE runs AS r SET state = u.to_state, reason = u.reason, recheck_at = u.recheck_at,
	started = COALESCE(u.started, r.started), finished = COALESCE(u.finished, r.finished),
	owner = COALESCE(u.owner, r.owner), handle = COALESCE(u.handle, r.handle), executor = COALESCE(u.executor, r.executor),
	answer = COALESCE(u.answer, r.answer)
FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::timestamptz[],
	$6::timestamptz[], $7::timestamptz[], $8::text[], $9::text[], $10::text[], $11::text[])
	AS u(id, from_state, to_state, reason, recheck_at, started, finished, owner, handle, executor, answer)
WHERE r.id = ANY($1::bigint[]) AND r.id = u.id AND r.state = u.from_state
RETURNING ` + qualified("r", runCols)

// insertEvents writes a batch's events, in the order of its items.
const insertEvents = `INSERT INTO events (run_id, time, from_state, to_state, reason, type, job, period)
	SELECT id, at, from_state, to_state, reason, type, job, period
	FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
		WITH ORDINALITY AS u(id, at, from_state, to_state, reason, type, job, period, ord)
	ORDER BY ord`

// change is one run's net change in a transition batch: the state it had
// before, what its last item wrote, and the stamps of all its items (the
// last given wins, as it would applying them one by one).
type change struct {
	id                             int64
	from, to                       talon.State
	reason                         string
	recheck                        time.Time
	started, finished              *time.Time
	owner, handle, executor, answr string
	items                          []int
}

// fold adds item i, moving the run from state from at at, to the net
// change: the last item's state, reason and recheck time, and the stamps
// of all (the last given wins, as applying them one by one would).
func (ch *change) fold(i int, t store.Transition, from talon.State, at time.Time, answer string) {
	started, finished, owner := store.Stamps(t, from, at)
	ch.to, ch.reason, ch.recheck = t.To, t.Reason, t.RecheckAt
	if started != nil {
		ch.started = started
	}
	if finished != nil {
		ch.finished = finished
	}
	ch.owner = cmp.Or(owner, ch.owner)
	ch.handle = cmp.Or(t.Handle, ch.handle)
	ch.executor = cmp.Or(t.Executor, ch.executor)
	ch.answr = cmp.Or(answer, ch.answr)
	ch.items = append(ch.items, i)
}

// changes collects a batch's net changes and its events.
type changes struct {
	byID  map[int64]*change
	order []*change
	ev    struct {
		ids                                []int64
		at                                 []time.Time
		from, to, reason, typ, job, period []string
	}
}

func (cs *changes) apply(i int, t store.Transition, c *current, at time.Time, event bool, answer string) {
	ch := cs.byID[t.RunID]
	if ch == nil {
		ch = &change{id: t.RunID, from: c.state}
		cs.byID[t.RunID] = ch
		cs.order = append(cs.order, ch)
	}
	ch.fold(i, t, c.state, at, answer)
	if event {
		e := &cs.ev
		e.ids, e.at = append(e.ids, t.RunID), append(e.at, at)
		e.from, e.to = append(e.from, string(c.state)), append(e.to, string(t.To))
		e.reason, e.typ = append(e.reason, t.Reason), append(e.typ, string(talon.TransitionEvent(c.state, t.To)))
		e.job, e.period = append(e.job, c.job), append(e.period, c.period)
	}
}

// queue queues the batch's update and events; false when there is none.
func (cs *changes) queue(b *pgx.Batch) (updates, events bool) {
	if len(cs.order) > 0 {
		n := len(cs.order)
		ids := make([]int64, n)
		from, to, reason := make([]string, n), make([]string, n), make([]string, n)
		recheck, started, fin := make([]*time.Time, n), make([]*time.Time, n), make([]*time.Time, n)
		owner, handle, exec, answer := make([]*string, n), make([]*string, n), make([]*string, n), make([]*string, n)
		for k, ch := range cs.order {
			ids[k], from[k], to[k], reason[k] = ch.id, string(ch.from), string(ch.to), ch.reason
			recheck[k], started[k], fin[k] = timePtr(ch.recheck), ch.started, ch.finished
			owner[k], handle[k], exec[k], answer[k] = strPtr(ch.owner), strPtr(ch.handle), strPtr(ch.executor), strPtr(ch.answr)
		}
		b.Queue(updateRuns, ids, from, to, reason, recheck, started, fin, owner, handle, exec, answer)
		updates = true
	}
	if e := &cs.ev; len(e.ids) > 0 {
		b.Queue(insertEvents, e.ids, e.at, e.from, e.to, e.reason, e.typ, e.job, e.period)
		events = true
	}
	return updates, events
}

// read hands each item the run as the batch left it; an item followed by
// another of the same run gets it with the state, reason and recheck
// time that item wrote.
func (cs *changes) read(br pgx.BatchResults, ts []store.Transition, results []store.Result) error {
	rows, err := br.Query()
	if err != nil {
		return fmt.Errorf("update runs: %w", err)
	}
	byID := make(map[int64]talon.Run, len(cs.order))
	if err := collectRuns(rows, func(r talon.Run) { byID[r.ID] = r }); err != nil {
		return fmt.Errorf("update runs: %w", err)
	}
	for _, ch := range cs.order {
		r, ok := byID[ch.id]
		if !ok {
			// The row is locked, so the compare-and-set cannot lose.
			return fmt.Errorf("update run %d: not in state %s after locking it", ch.id, ch.from)
		}
		for k, i := range ch.items {
			results[i].Run = r
			if k < len(ch.items)-1 {
				results[i].Run.State, results[i].Run.Reason, results[i].Run.RecheckAt = ts[i].To, ts[i].Reason, ts[i].RecheckAt
			}
		}
	}
	return nil
}

// qualified prefixes each column of a list with a table alias.
func qualified(alias, cols string) string {
	parts := strings.Split(cols, ",")
	for i, p := range parts {
		parts[i] = alias + "." + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}

// Transition applies each transition as a compare-and-set within one
// transaction, in two round trips whatever the batch size: BEGIN with one
// pipelined read that locks the runs (in id order), then the advisory
// locks of the jobs whose limits are fenced (in key order), and reads
// what the fences count; then one pipelined write with COMMIT. Checks and fences
// are decided in memory between the two, replaying the batch in order so
// each item sees the effect of the ones before it.
func (db *DB) Transition(ctx context.Context, ts []store.Transition) ([]store.Result, error) {
	if len(ts) == 0 {
		return nil, nil
	}
	ae, err := newAfterEnds(ts)
	if err != nil {
		return nil, fmt.Errorf("transition: %w", err)
	}
	if direct(ts) {
		return db.transitionDirect(ctx, ts, ae)
	}
	ids := make([]int64, 0, len(ts))
	var maxRunningIDs, onceIDs, fencedIDs, readyIDs []int64
	var tree *resource.Tree // of the first item that allocates
	var allocNow time.Time
	for _, t := range ts {
		ids = append(ids, t.RunID)
		if t.To == talon.StateReady && !t.Mark {
			readyIDs = append(readyIDs, t.RunID)
		}
		if t.To == talon.StateReady && t.Fence != nil {
			fencedIDs = append(fencedIDs, t.RunID)
			if t.Fence.MaxRunning > 0 {
				maxRunningIDs = append(maxRunningIDs, t.RunID)
			}
			if t.Fence.OncePerPeriod {
				onceIDs = append(onceIDs, t.RunID)
			}
		}
		if t.To == talon.StateReady && t.Allocate != nil && tree == nil {
			tree, allocNow = t.Allocate.Tree, store.NowOr(t.Now)
		}
	}
	ids = sortedIDs(ids)

	var results []store.Result
	err = db.pipeTx(ctx, func(tx *pipe) error {
		tx.events = true
		results = make([]store.Result, len(ts))
		cur := make(map[int64]*current, len(ids))
		fs := newFenceState()
		as := newAllocState(&db.agentTrees)
		var holds []resource.Hold
		var waiters []resource.Waiter

		b := &pgx.Batch{}
		var readers []func(pgx.BatchResults) error
		b.Queue(lockRuns, ids)
		readers = append(readers, func(br pgx.BatchResults) error { return readCurrent(br, cur) })
		exec := func(what string) func(pgx.BatchResults) error {
			return func(br pgx.BatchResults) error {
				if _, err := br.Exec(); err != nil {
					return fmt.Errorf("%s: %w", what, err)
				}
				return nil
			}
		}
		// Every run entering ready takes its job's lock, which PauseJob
		// takes too: the pause is read after it, so no run of a paused
		// job slips into ready as the pause is written.
		if locked := sortedIDs(append(slices.Clone(fencedIDs), readyIDs...)); len(locked) > 0 {
			queueLockJobs(b, locked)
			readers = append(readers, exec("lock jobs"))
		}
		paused := map[string]talon.Pause{}
		if len(readyIDs) > 0 {
			b.Queue(pausedOfRuns, sortedIDs(readyIDs))
			readers = append(readers, func(br pgx.BatchResults) error {
				rows, err := br.Query()
				if err == nil {
					var ps []talon.Pause
					if ps, err = scanPauses(rows); err == nil {
						for _, p := range ps {
							paused[p.Job] = p
						}
					}
				}
				if err != nil {
					return fmt.Errorf("check pause: %w", err)
				}
				return nil
			})
		}
		if len(maxRunningIDs) > 0 {
			b.Queue(activeOfJobs, sortedIDs(maxRunningIDs))
			readers = append(readers, fs.readActive)
		}
		if len(onceIDs) > 0 {
			b.Queue(takenInPeriods, sortedIDs(onceIDs))
			readers = append(readers, fs.readTaken)
		}
		if tree != nil {
			// After the job locks, always in this order, so batches
			// cannot deadlock on them.
			b.Queue(lockResources)
			readers = append(readers, exec("lock resources"))
			keys := tree.PeriodKeys(allocNow)
			if keys == nil {
				keys = []string{}
			}
			b.Queue(readHolds, keys)
			readers = append(readers, func(br pgx.BatchResults) error {
				rows, err := br.Query()
				if err == nil {
					holds, err = scanHolds(rows)
				}
				if err != nil {
					return fmt.Errorf("read resource holds: %w", err)
				}
				return nil
			})
			b.Queue(readWaiters+` LIMIT $1`, resource.HeadMax)
			readers = append(readers, func(br pgx.BatchResults) error {
				rows, err := br.Query()
				if err == nil {
					waiters, err = scanWaiters(rows)
				}
				if err != nil {
					return fmt.Errorf("read resource queue: %w", err)
				}
				return nil
			})
			// The live agents' nodes join the schedule's tree, by the
			// database's clock: a run is never given an agent that is
			// gone.
			b.Queue(readLiveAgents)
			readers = append(readers, func(br pgx.BatchResults) error {
				rows, err := br.Query()
				if err == nil {
					as.agents, err = scanAgents(rows)
				}
				if err != nil {
					return fmt.Errorf("read agents: %w", err)
				}
				return nil
			})
		}
		err := tx.send(ctx, b, false, func(br pgx.BatchResults, n int) error { return readers[n](br) })
		if err != nil {
			return err
		}
		if tree != nil {
			as.led = resource.NewLedger(holds, waiters, allocNow)
		}
		for _, t := range ts {
			if c := cur[t.RunID]; c != nil && t.To == talon.StateReady && t.Fence != nil {
				fs.load(c, t.Fence)
			}
		}

		cs := &changes{byID: map[int64]*change{}}
		decided := map[int64][]talon.Decision{}
		var decidedOrder []int64
		counts := store.CountChanges{}
		for i, t := range ts {
			c := cur[t.RunID]
			if c == nil {
				results[i].Err = fmt.Errorf("run %d: %w", t.RunID, store.ErrNotFound)
				continue
			}
			if err := store.CheckTransition(t, c.state); err != nil {
				results[i].Err = err
				continue
			}
			if p, ok := paused[c.job]; ok && t.To == talon.StateReady && !t.Mark {
				results[i].Err = store.PausedFence(p)
				continue
			}
			if t.To == talon.StateReady && t.Fence != nil {
				if fe := fs.check(t.RunID, c.job, c.period, t.Fence); fe != nil {
					results[i].Err = fe
					continue
				}
			}
			if t.To == talon.StateReady && t.Allocate != nil {
				if fe := as.allocate(t, store.NowOr(t.Now)); fe != nil {
					results[i].Err = fe
					continue
				}
			}
			as.settle(t, c.state)
			// An event is skipped only for a quiet re-decision whose
			// answer did not change.
			event, answer := store.Evented(t, c.state, c.reason, c.answer)
			cs.apply(i, t, c, store.NowOr(t.Now), event, answer)
			if answer != "" {
				c.answer = answer
			}
			if t.Decisions != nil {
				if _, ok := decided[t.RunID]; !ok {
					decidedOrder = append(decidedOrder, t.RunID)
				}
				decided[t.RunID] = t.Decisions // the last one stands
			}
			fs.moved(t.RunID, c.job, c.period, c.state, t.To)
			counts.Moved(c.job, c.period, c.state, t.To)
			c.state, c.reason = t.To, t.Reason
		}

		b = &pgx.Batch{}
		if err := as.queueWrites(b, allocNow); err != nil {
			return err
		}
		nAlloc := b.Len()
		updates, _ := cs.queue(b)
		if len(decidedOrder) > 0 {
			var old []int64
			for _, id := range decidedOrder {
				if cur[id].decided {
					old = append(old, id)
				}
			}
			b.Queue(`DELETE FROM decisions WHERE run_id = ANY($1)`, old)
			var (
				runIDs                  []int64
				pos                     []int32
				names, actions, reasons []string
				rechecks                []*time.Time
			)
			for _, id := range decidedOrder {
				for j, d := range decided[id] {
					runIDs, pos = append(runIDs, id), append(pos, int32(j))
					names, actions, reasons = append(names, d.Constraint), append(actions, string(d.Action)), append(reasons, d.Reason)
					rechecks = append(rechecks, timePtr(d.RecheckAt))
				}
			}
			if len(runIDs) > 0 {
				b.Queue(`INSERT INTO decisions (run_id, pos, constraint_name, action, reason, recheck_at)
					SELECT * FROM unnest($1::bigint[], $2::int[], $3::text[], $4::text[], $5::text[], $6::timestamptz[])`,
					runIDs, pos, names, actions, reasons, rechecks)
			}
		}
		// The counters go last: every other lock of the transaction is
		// taken by then, so two transactions cannot wait for each other
		// in a cycle through them.
		queueCounts(b, counts)
		// The runs that follow the ends come after: their insert takes
		// the counters of the runs it creates.
		ae.queue(b)
		return tx.send(ctx, b, true, func(br pgx.BatchResults, n int) error {
			if ok, err := ae.read(br, n); ok {
				return err
			}
			if n < nAlloc {
				if _, err := br.Exec(); err != nil {
					return fmt.Errorf("record resource holds: %w", err)
				}
				return nil
			}
			if n == nAlloc && updates {
				return cs.read(br, ts, results)
			}
			if _, err := br.Exec(); err != nil {
				return fmt.Errorf("record events, decisions and counts: %w", err)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("transition: %w", err)
	}
	if err := ae.fill(ctx, db, ts, results); err != nil {
		return nil, fmt.Errorf("transition: %w", err)
	}
	return results, nil
}

// sortedIDs sorts ids and drops duplicates, in place.
func sortedIDs(ids []int64) []int64 {
	slices.Sort(ids)
	return slices.Compact(ids)
}

func readCurrent(br pgx.BatchResults, cur map[int64]*current) error {
	rows, err := br.Query()
	if err != nil {
		return fmt.Errorf("lock runs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		c := &current{}
		if err := rows.Scan(&id, &c.state, &c.job, &c.period, &c.reason, &c.answer); err != nil {
			return fmt.Errorf("lock runs: %w", err)
		}
		c.decided = c.answer != ""
		cur[id] = c
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("lock runs: %w", err)
	}
	return nil
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC().Truncate(time.Microsecond)
	return &u
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
