package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

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
	thens := make([][]store.CreateRun, len(ts))
	for i, t := range ts {
		v, err := store.ValidateThen(t)
		if err != nil {
			return nil, fmt.Errorf("transition: %w", err)
		}
		thens[i] = v
	}
	creations := make([]*creation, len(ts))
	added := false
	err := db.write(ctx, func(tx *sql.Tx) error {
		added = false
		clear(creations)
		st, err := db.prepareTransition(ctx, tx)
		if err != nil {
			return err
		}
		defer st.close()
		if err := st.load(ctx, ts); err != nil {
			return err
		}
		for i, t := range ts {
			run, err := st.apply(ctx, t)
			if err != nil && !itemError(err) {
				return fmt.Errorf("run %d: %w", t.RunID, err)
			}
			results[i] = store.Result{Run: run, Err: err}
		}
		// The runs that follow the ends, in the same transaction; they
		// read the runs as moved.
		if err := st.flush(ctx, ""); err != nil {
			return err
		}
		for i, t := range ts {
			if len(thens[i]) == 0 {
				continue
			}
			if results[i].Err != nil {
				ended, err := st.endedAs(ctx, t)
				if err != nil {
					return err
				}
				if !ended {
					continue
				}
			}
			c := newCreation(thens[i])
			if err := db.createIn(ctx, tx, c); err != nil {
				return fmt.Errorf("run %d: %w", t.RunID, err)
			}
			st.events = append(st.events, c.events...)
			for k, d := range c.counts {
				st.counts[k] += d
			}
			creations[i] = c
		}
		added = len(st.events) > 0
		if err := st.writeDecisions(ctx); err != nil {
			return err
		}
		if err := st.writeEvents(ctx); err != nil {
			return err
		}
		if err := db.addCounts(ctx, tx, st.counts); err != nil {
			return err
		}
		return st.endedCounts(ctx, ts, results)
	})
	if err != nil {
		return nil, fmt.Errorf("transition: %w", err)
	}
	if added {
		db.notify.Wake()
	}
	for i, c := range creations {
		if c == nil {
			if len(thens[i]) > 0 {
				results[i].Then = make([]store.Created, len(thens[i]))
			}
			continue
		}
		if results[i].Then, err = db.createdRuns(ctx, c); err != nil {
			return nil, fmt.Errorf("transition: run %d: %w", ts[i].RunID, err)
		}
	}
	return results, nil
}

// endedCounts sets Result.Counts of the items that ended their run: the
// counters of its job and period as the transaction leaves them, read
// for every such (job, period) of the batch in one statement.
func (st *transitionStmts) endedCounts(ctx context.Context, ts []store.Transition, results []store.Result) error {
	var keys []store.JobPeriod
	for i, t := range ts {
		if r := results[i]; t.To.Terminal() && r.Err == nil && r.Run.ID != 0 {
			keys = append(keys, store.JobPeriod{Job: r.Run.Job, Period: r.Run.Period})
		}
	}
	if len(keys) == 0 {
		return nil
	}
	read, err := st.db.readCounters(ctx, st.tx, keys)
	if err != nil {
		return fmt.Errorf("read counters: %w", err)
	}
	for i, t := range ts {
		if r := results[i]; t.To.Terminal() && r.Err == nil && r.Run.ID != 0 {
			c := read[store.JobPeriod{Job: r.Run.Job, Period: r.Run.Period}]
			if c == nil {
				c = store.Summary{}
			}
			results[i].Counts = c
		}
	}
	return nil
}

// endedAs reports whether t's run, which t could not move, is already
// where t would take it, with t's end time: an earlier attempt of the
// same transition applied it.
func (st *transitionStmts) endedAs(ctx context.Context, t store.Transition) (bool, error) {
	var state string
	var finished sql.NullInt64
	err := st.tx.QueryRowContext(ctx, `SELECT state, finished FROM runs WHERE id = ?`, t.RunID).Scan(&state, &finished)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("run %d: %w", t.RunID, err)
	}
	return talon.State(state) == t.To && finished.Valid && finished.Int64 == micros(store.NowOr(t.Now)), nil
}

// prefixed scans its own destinations first, then the caller's: a row
// with columns before those scanRun reads.
type prefixed struct {
	s   scanner
	pre []any
}

func (p prefixed) Scan(dest ...any) error {
	return p.s.Scan(append(p.pre[:len(p.pre):len(p.pre)], dest...)...)
}

// itemError reports whether err belongs to one item rather than the batch.
func itemError(err error) bool {
	return errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrFenced)
}

type transitionStmts struct {
	addHold, addHeld, delHolds, delWaiter *sql.Stmt
	tx                                    *sql.Tx
	db                                    *DB
	led                                   *resource.Ledger // loaded by the first allocation
	agents                                []store.Agent    // live agents, read with the ledger
	// What the batch knows, read once at its start and kept up to date
	// as its items apply: the batch holds the write lock throughout.
	cur    map[int64]*current
	dirty  []int64 // runs with unwritten changes, in the order first moved
	paused map[string]talon.Pause
	// The batch's runs that hold resources (until released) or wait in
	// the resource queue: the others have no rows to delete.
	holding, waiting map[int64]bool
	// active counts the runs ready or running of each job whose runs the
	// batch lets in under max_running, as the batch leaves them so far:
	// read for all those jobs at once at the start, kept by apply.
	active map[string]int
	// What the batch writes at its end, a few statements each: the runs
	// whose decisions are replaced (undecide), the last decisions of
	// each run decided (in the order first decided), the events and the
	// changes to the counters.
	undecide     []int64
	decided      map[int64][]talon.Decision
	decidedOrder []int64
	events       []eventRow
	counts       store.CountChanges
}

// current is what a transition batch knows of one run: its row as the
// batch leaves it so far. A batch writes each run it moves once, with
// its last values (flush), so a run that goes blocked → ready → running
// in one batch costs one UPDATE, and every item's result is computed
// here from the row read at the start rather than read back.
type current struct {
	run    talon.Run
	answer string
	// stored is the state the row has in the database; dirty says run
	// holds changes not yet written.
	stored talon.State
	dirty  bool
}

// eventRow is a transition's event, written with the batch's others.
type eventRow struct {
	RunID  int64
	Time   int64
	From   string
	To     string
	Reason string
	Type   string
	Job    string
	Period string
}

// load reads the batch's runs, and the paused jobs when a run may enter
// ready, in two statements.
func (st *transitionStmts) load(ctx context.Context, ts []store.Transition) error {
	st.cur = make(map[int64]*current, len(ts))
	st.counts = store.CountChanges{}
	st.undecide, st.decidedOrder = nil, nil
	st.decided = map[int64][]talon.Decision{}
	ids := make([]int64, 0, len(ts))
	toReady := false
	for _, t := range ts {
		ids = append(ids, t.RunID)
		toReady = toReady || t.To == talon.StateReady && !t.Mark
	}
	rows, err := st.query(ctx, qCurrent, idsJSON(ids))
	if err != nil {
		return fmt.Errorf("read runs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		c := &current{}
		run, err := scanRun(prefixed{rows, []any{&c.answer}})
		if err != nil {
			return fmt.Errorf("read runs: %w", err)
		}
		c.run, c.stored = run, run.State
		st.cur[run.ID] = c
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read runs: %w", err)
	}
	st.holding, st.waiting = map[int64]bool{}, map[int64]bool{}
	for q, set := range map[string]map[int64]bool{qHolding: st.holding, qWaiting: st.waiting} {
		if err := st.readIDs(ctx, q, idsJSON(ids), set); err != nil {
			return fmt.Errorf("read resource holds: %w", err)
		}
	}
	if !toReady {
		return nil
	}
	if err := st.loadActive(ctx, ts); err != nil {
		return err
	}
	// A paused job's runs stay blocked; deciding it here, under the
	// write lock, means none slips through as the pause is written.
	st.paused = map[string]talon.Pause{}
	prows, err := st.query(ctx, qPaused)
	if err != nil {
		return fmt.Errorf("check pause: %w", err)
	}
	defer prows.Close()
	for prows.Next() {
		var p talon.Pause
		var since int64
		if err := prows.Scan(&p.Job, &p.By, &p.Reason, &since); err != nil {
			return fmt.Errorf("check pause: %w", err)
		}
		p.Since = fromMicros(since)
		st.paused[p.Job] = p
	}
	if err := prows.Err(); err != nil {
		return fmt.Errorf("check pause: %w", err)
	}
	return nil
}

// loadActive reads how many runs are ready or running of each job the
// batch lets a run in under max_running: one statement for the batch,
// rather than one for each run it lets in.
func (st *transitionStmts) loadActive(ctx context.Context, ts []store.Transition) error {
	st.active = map[string]int{}
	var jobs []string
	for _, t := range ts {
		c := st.cur[t.RunID]
		if c == nil || t.To != talon.StateReady || t.Fence == nil || t.Fence.MaxRunning == 0 {
			continue
		}
		if _, ok := st.active[c.run.Job]; !ok {
			st.active[c.run.Job] = 0
			jobs = append(jobs, c.run.Job)
		}
	}
	if len(jobs) == 0 {
		return nil
	}
	b, err := json.Marshal(jobs)
	if err != nil {
		return err
	}
	rows, err := st.query(ctx, qActiveCounts, string(b))
	if err != nil {
		return fmt.Errorf("count active runs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var job string
		var n int
		if err := rows.Scan(&job, &n); err != nil {
			return fmt.Errorf("count active runs: %w", err)
		}
		st.active[job] = n
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("count active runs: %w", err)
	}
	return nil
}

// readIDs adds the run ids q answers to set.
func (st *transitionStmts) readIDs(ctx context.Context, q string, arg any, set map[int64]bool) error {
	rows, err := st.query(ctx, q, arg)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return err
		}
		set[id] = true
	}
	return rows.Err()
}

// writeEvents writes the batch's events.
func (st *transitionStmts) writeEvents(ctx context.Context) error {
	return st.db.insertEvents(ctx, st.tx, st.events)
}

// writeDecisions replaces the decisions of the runs the batch decided.
func (st *transitionStmts) writeDecisions(ctx context.Context) error {
	_, err := st.db.execRows(ctx, st.tx, qDelDecisions, len(st.undecide), func(i int, args []any) []any {
		return append(args, st.undecide[i])
	})
	if err != nil {
		return fmt.Errorf("replace decisions: %w", err)
	}
	type row struct {
		run int64
		pos int
		d   *talon.Decision
	}
	var rows []row
	for _, id := range st.decidedOrder {
		ds := st.decided[id]
		for i := range ds {
			rows = append(rows, row{id, i, &ds[i]})
		}
	}
	_, err = st.db.execRows(ctx, st.tx, qAddDecision, len(rows), func(i int, args []any) []any {
		r := rows[i]
		return append(args, r.run, r.pos, r.d.Constraint, string(r.d.Action), r.d.Reason, nullMicros(r.d.RecheckAt))
	})
	if err != nil {
		return fmt.Errorf("replace decisions: %w", err)
	}
	return nil
}

// insertEvents writes events, in order.
func (db *DB) insertEvents(ctx context.Context, tx *sql.Tx, events []eventRow) error {
	_, err := db.execRows(ctx, tx, qEvents, len(events), func(i int, args []any) []any {
		e := &events[i]
		return append(args, e.RunID, e.Time, e.From, e.To, e.Reason, e.Type, e.Job, e.Period)
	})
	if err != nil {
		return fmt.Errorf("record events: %w", err)
	}
	return nil
}

// The write path's statements, prepared once (see DB.stmt).
const (
	qAddHold   = `INSERT INTO allocations (run_id, path, units, period, created) VALUES (?, ?, ?, ?, ?)`
	qAddHeld   = `INSERT INTO held (run_id, path, units, period, created) VALUES (?, ?, ?, ?, ?)`
	qDelHolds  = `DELETE FROM allocations WHERE run_id = ? AND period = ''`
	qDelWaiter = `DELETE FROM waiters WHERE run_id = ?`
	qCurrent   = `SELECT answer, ` + runCols + ` FROM runs
		WHERE id IN (SELECT value FROM json_each(?))`
	qPaused  = `SELECT job, paused_by, reason, since FROM paused_jobs`
	qHolding = `SELECT DISTINCT run_id FROM allocations
		WHERE run_id IN (SELECT value FROM json_each(?)) AND period = ''`
	qWaiting        = `SELECT run_id FROM waiters WHERE run_id IN (SELECT value FROM json_each(?))`
	qSucceededCount = `SELECT n FROM run_counts WHERE job = ? AND period = ? AND state = 'succeeded'`
	qSucceededRun   = `SELECT id FROM runs
		WHERE job = ? AND period = ? AND state = 'succeeded' AND id <> ? LIMIT 1`
	// +period keeps SQLite from walking the (job, period) index, which
	// holds the period's history, instead of the live runs.
	qTakenRun = `SELECT id, state FROM runs
		WHERE ` + store.LiveStates + ` AND state IN ('ready', 'running') AND job = ? AND +period = ? AND id <> ?
		ORDER BY id LIMIT 1`
	qActiveCount = `SELECT count(*) FROM runs
		WHERE ` + store.LiveStates + ` AND state IN ('ready', 'running') AND job = ? AND id <> ?`
	qActiveCounts = `SELECT job, count(*) FROM runs
		WHERE ` + store.LiveStates + ` AND state IN ('ready', 'running') AND job IN (SELECT value FROM json_each(?))
		GROUP BY job`
	qActiveRuns = `SELECT id FROM runs
		WHERE ` + store.LiveStates + ` AND state IN ('ready', 'running') AND job = ? AND id <> ? ORDER BY id LIMIT ?`
)

// The write path's statements that take their rows as parameters.
var (
	// qFlush writes a batch's moved runs (flushRow), each a compare-and-set
	// on the state the batch read.
	qFlush = newRowsStmt(`UPDATE runs SET state = c.column3, reason = c.column4, recheck_at = c.column5,
		started = c.column6, finished = c.column7, owner = c.column8, handle = c.column9,
		executor = c.column10, answer = c.column11
		FROM`, 11, true, `WHERE runs.id = c.column1 AND runs.state = c.column2`)
	qEvents       = newRowsStmt(`INSERT INTO events (run_id, time, from_state, to_state, reason, type, job, period)`, 8, false, ``)
	qDelDecisions = newRowsStmt(`DELETE FROM decisions WHERE run_id IN (`, 1, false, `)`)
	qAddDecision  = newRowsStmt(`INSERT INTO decisions (run_id, pos, constraint_name, action, reason, recheck_at)`, 6, false, ``)
	qCounts       = newRowsStmt(`INSERT INTO run_counts (job, period, state, n)`, 4, false,
		`ON CONFLICT (job, period, state) DO UPDATE SET n = n + excluded.n`)
)

// writeStmts are prepared when the store opens.
var writeStmts = slices.Concat([]string{qAddHold, qAddHeld, qDelHolds, qDelWaiter,
	qCurrent, qPaused, qHolding, qWaiting, qSucceededCount, qSucceededRun, qTakenRun, qActiveCount, qActiveCounts, qActiveRuns,
	qRunByKey, qRunByFire}, qInsertRuns.all(), qFlush.all(), qEvents.all(), qCounts.all(), qDelDecisions.all(), qAddDecision.all())

func (db *DB) prepareTransition(ctx context.Context, tx *sql.Tx) (*transitionStmts, error) {
	st := &transitionStmts{tx: tx, db: db}
	var err error
	prep := func(q string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var s *sql.Stmt
		s, err = db.stmt(ctx, tx, q)
		return s
	}
	st.addHold = prep(qAddHold)
	st.addHeld = prep(qAddHeld)
	st.delHolds = prep(qDelHolds)
	st.delWaiter = prep(qDelWaiter)
	if err != nil {
		st.close()
		return nil, err
	}
	return st, nil
}

// query runs one of writeStmts in the batch's transaction.
func (st *transitionStmts) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	s, err := st.db.stmt(ctx, st.tx, q)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(ctx, args...)
}

// queryRow is query for one row.
func (st *transitionStmts) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	s, err := st.db.stmt(ctx, st.tx, q)
	if err != nil {
		// A *sql.Row cannot be made to carry an error; the statement
		// that failed to prepare fails again, with its error, in tx.
		return st.tx.QueryRowContext(ctx, q, args...)
	}
	return s.QueryRowContext(ctx, args...)
}

func (st *transitionStmts) close() {
	for _, s := range []*sql.Stmt{st.addHold, st.addHeld, st.delHolds, st.delWaiter} {
		if s != nil {
			s.Close()
		}
	}
}

// nullMicrosPtr is a time the store may not have: NULL when nil.
func nullMicrosPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return micros(*t)
}

func nonEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (st *transitionStmts) apply(ctx context.Context, t store.Transition) (talon.Run, error) {
	c := st.cur[t.RunID]
	if c == nil {
		return talon.Run{}, fmt.Errorf("run %d: %w", t.RunID, store.ErrNotFound)
	}
	from, job, period := c.run.State, c.run.Job, c.run.Period
	if err := store.CheckTransition(t, from); err != nil {
		return talon.Run{}, err
	}
	if p, ok := st.paused[job]; ok && t.To == talon.StateReady && !t.Mark {
		return talon.Run{}, store.PausedFence(p)
	}
	if t.To == talon.StateReady && t.Fence != nil {
		if ferr, err := st.checkFence(ctx, t.RunID, from, job, period, t.Fence); err != nil {
			return talon.Run{}, err
		} else if ferr != nil {
			return talon.Run{}, ferr
		}
	}
	now := store.NowOr(t.Now)
	if t.To == talon.StateReady && t.Allocate != nil {
		if err := st.flush(ctx, ""); err != nil {
			return talon.Run{}, err
		}
		if ferr, err := st.allocate(ctx, t, now); err != nil {
			return talon.Run{}, err
		} else if ferr != nil {
			return talon.Run{}, ferr
		}
	}
	started, finished, owner := store.Stamps(t, from, now)
	evented, newAnswer := store.Evented(t, from, c.run.Reason, c.answer)
	// A run without an answer has no decisions to replace.
	hadDecisions := c.answer != ""
	// The row as flush will write it, at the store's precision
	// (microseconds): a column the transition does not give keeps its
	// value.
	r := &c.run
	r.State, r.Reason, r.RecheckAt = t.To, t.Reason, stored(t.RecheckAt)
	if started != nil {
		at := stored(*started)
		r.Started = &at
	}
	if finished != nil {
		at := stored(*finished)
		r.Finished = &at
	}
	if owner != "" {
		r.Owner = owner
	}
	if t.Handle != "" {
		r.Handle = t.Handle
	}
	if t.Executor != "" {
		r.Executor = t.Executor
	}
	if newAnswer != "" {
		c.answer = newAnswer
	}
	if !c.dirty {
		c.dirty = true
		st.dirty = append(st.dirty, t.RunID)
	}
	st.counts.Moved(job, period, from, t.To)
	if n, ok := st.active[job]; ok {
		st.active[job] = n + activeOf(t.To) - activeOf(from)
	}
	if err := st.settle(ctx, t, from); err != nil {
		return talon.Run{}, err
	}
	if t.Decisions != nil {
		// Written at the batch's end (writeDecisions): nothing in the
		// batch reads them.
		// Only the decisions stored before the batch are deleted: those
		// of its earlier items were never written.
		if _, ok := st.decided[t.RunID]; !ok {
			st.decidedOrder = append(st.decidedOrder, t.RunID)
			if hadDecisions {
				st.undecide = append(st.undecide, t.RunID)
			}
		}
		st.decided[t.RunID] = t.Decisions
	}
	if evented {
		st.events = append(st.events, eventRow{RunID: t.RunID, Time: micros(now), From: string(from), To: string(t.To),
			Reason: t.Reason, Type: string(talon.TransitionEvent(from, t.To)), Job: job, Period: period})
	}
	return *r, nil
}

// stored is t as the store keeps it: microseconds, UTC; zero stays zero.
func stored(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return fromMicros(micros(t))
}

// flushRow is one moved run as qFlush reads it.
type flushRow struct {
	ID       int64
	Was      string
	State    string
	Reason   string
	Recheck  *int64
	Started  *int64
	Finished *int64
	Owner    string
	Handle   string
	Executor string
	Answer   string
}

// flush writes the runs the batch moved and has not written yet — those
// of job, or all when job is "" — in one statement. Each is a
// compare-and-set on the state the batch read: a row found in another
// state fails the batch (the write lock makes that impossible, but the
// compare-and-set is the guarantee, not the lock).
func (st *transitionStmts) flush(ctx context.Context, job string) error {
	var rows []flushRow
	keep := st.dirty[:0]
	for _, id := range st.dirty {
		c := st.cur[id]
		if job != "" && c.run.Job != job {
			keep = append(keep, id)
			continue
		}
		r := c.run
		row := flushRow{ID: id, Was: string(c.stored), State: string(r.State), Reason: r.Reason,
			Owner: r.Owner, Handle: r.Handle, Executor: r.Executor, Answer: c.answer}
		if !r.RecheckAt.IsZero() {
			v := micros(r.RecheckAt)
			row.Recheck = &v
		}
		if r.Started != nil {
			v := micros(*r.Started)
			row.Started = &v
		}
		if r.Finished != nil {
			v := micros(*r.Finished)
			row.Finished = &v
		}
		rows = append(rows, row)
		c.dirty, c.stored = false, r.State
	}
	st.dirty = keep
	if len(rows) == 0 {
		return nil
	}
	n, err := st.db.execRows(ctx, st.tx, qFlush, len(rows), func(i int, args []any) []any {
		r := &rows[i]
		return append(args, r.ID, r.Was, r.State, r.Reason, r.Recheck, r.Started, r.Finished, r.Owner, r.Handle, r.Executor, r.Answer)
	})
	if err != nil {
		return fmt.Errorf("record runs: %w", err)
	}
	if n != int64(len(rows)) {
		return fmt.Errorf("record runs: %d of %d rows were in the state read: %w", n, len(rows), store.ErrConflict)
	}
	return nil
}

// checkFence decides the fenced limits inside the write transaction,
// counting the batch's own changes to the counters not yet written.
func (st *transitionStmts) checkFence(ctx context.Context, runID int64, from talon.State, job, period string, f *store.Fence) (*store.FenceError, error) {
	if n, ok := st.active[job]; ok && !f.OncePerPeriod && n-activeOf(from) < f.MaxRunning {
		return nil, nil // room, as counted by the batch (loadActive)
	}
	// The fence reads the job's runs: the batch's moves of them go first.
	if err := st.flush(ctx, job); err != nil {
		return nil, err
	}
	if f.OncePerPeriod {
		// A succeeded run first, counted by the run counters; then the
		// lowest run ready or running, through the index of live runs. No
		// query walks the period's history.
		var n int64
		err := st.queryRow(ctx, qSucceededCount, job, period).Scan(&n)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("check once_per_period: %w", err)
		}
		n += int64(st.counts[store.CountKey{Job: job, Period: period, State: talon.StateSucceeded}])
		if n > 0 {
			var id int64
			err := st.queryRow(ctx, qSucceededRun, job, period, runID).Scan(&id)
			switch {
			case err == nil:
				return store.OncePerPeriodFence(period, id, talon.StateSucceeded), nil
			case !errors.Is(err, sql.ErrNoRows):
				return nil, fmt.Errorf("check once_per_period: %w", err)
			}
		}
		var id int64
		var state string
		err = st.queryRow(ctx, qTakenRun, job, period, runID).Scan(&id, &state)
		switch {
		case err == nil:
			return store.OncePerPeriodFence(period, id, talon.State(state)), nil
		case !errors.Is(err, sql.ErrNoRows):
			return nil, fmt.Errorf("check once_per_period: %w", err)
		}
	}
	if f.MaxRunning > 0 {
		var n int
		if err := st.queryRow(ctx, qActiveCount, job, runID).Scan(&n); err != nil {
			return nil, fmt.Errorf("check max_running: %w", err)
		}
		if n >= f.MaxRunning {
			rows, err := st.query(ctx, qActiveRuns, job, runID, store.FenceListMax)
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

// activeOf is 1 for a state that counts toward max_running, else 0.
func activeOf(s talon.State) int {
	if s == talon.StateReady || s == talon.StateRunning {
		return 1
	}
	return 0
}
