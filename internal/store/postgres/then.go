package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/store"
)

// insertThen creates the runs that follow a batch's ends
// (store.Transition.Then), in the statement after the ends and in the
// same round trip: each run only when its parent run is in the state
// the transition takes it to, finished at the transition's time — after
// this batch's compare-and-set applied it, or an earlier attempt's whose
// commit went unanswered. Their unique keys make the second case
// harmless. It counts what it creates.
var insertThen = counted(insertFrom(`unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::text[], $7::text[],
		$8::timestamptz[], $9::text[], $10::text[], $11::bigint[], $12::timestamptz[], $13::timestamptz[],
		$14::text[], $15::timestamptz[], $16::text[], $17::bigint[], $18::text[], $19::timestamptz[])
		WITH ORDINALITY AS u(job, period, environment, state, attempt, executor, trigger_name, fire_time,
			idem_key, params, retry_of, created, finished, reason, recheck_at, if_paused, parent, parent_state, parent_finished, ord)`,
	`EXISTS (SELECT 1 FROM runs AS r WHERE r.id = u.parent AND r.state = u.parent_state AND r.finished = u.parent_finished)`))

// thenBatch is the runs a batch of transitions creates, as insertThen
// takes them: sorted by unique key, like every insert of runs, so two
// schedulers take the keys in the same order.
type thenBatch struct {
	valid    [][]store.CreateRun // by transition, validated
	rows     []thenRef           // by row of the arrays
	arrays   runArrays
	parent   []int64
	pState   []string
	pFinish  []time.Time
	inserted map[string]talon.Run // by unique key, from the insert
}

type thenRef struct{ item, n int }

// newThenBatch gathers ts's Then, or returns nil when there are none.
func newThenBatch(ts []store.Transition) (*thenBatch, error) {
	var tb *thenBatch
	for i, t := range ts {
		v, err := store.ValidateThen(t)
		if err != nil {
			return nil, err
		}
		if len(v) == 0 {
			continue
		}
		if tb == nil {
			tb = &thenBatch{valid: make([][]store.CreateRun, len(ts))}
		}
		tb.valid[i] = v
		for n := range v {
			tb.rows = append(tb.rows, thenRef{i, n})
		}
	}
	if tb == nil {
		return nil, nil
	}
	slices.SortStableFunc(tb.rows, func(a, b thenRef) int {
		pa, pb := tb.valid[a.item][a.n], tb.valid[b.item][b.n]
		return cmp.Or(strings.Compare(pa.Job, pb.Job), strings.Compare(pa.Key, pb.Key),
			strings.Compare(pa.Period, pb.Period), strings.Compare(pa.Trigger, pb.Trigger), pa.FireTime.Compare(pb.FireTime))
	})
	for _, r := range tb.rows {
		t, c := ts[r.item], tb.valid[r.item][r.n]
		var params *string
		if len(c.Params) > 0 {
			raw, err := json.Marshal(c.Params)
			if err != nil {
				return nil, fmt.Errorf("run %d: create run #%d: encode params: %w", t.RunID, r.n, err)
			}
			s := string(raw)
			params = &s
		}
		tb.arrays.add(c, params)
		tb.parent = append(tb.parent, t.RunID)
		tb.pState = append(tb.pState, string(t.To))
		tb.pFinish = append(tb.pFinish, store.NowOr(t.Now))
	}
	return tb, nil
}

// queue adds insertThen to b; read takes its result.
func (tb *thenBatch) queue(b *pgx.Batch) {
	a := &tb.arrays
	b.Queue(insertThen, a.job, a.period, a.env, a.state, a.attempt, a.executor, a.trigger, a.fire, a.key, a.params,
		a.retryOf, a.created, a.finished, a.reason, a.recheck, a.ifPaused, tb.parent, tb.pState, tb.pFinish)
}

func (tb *thenBatch) read(br pgx.BatchResults) error {
	tb.inserted = map[string]talon.Run{}
	if err := readRuns(br, func(r talon.Run) {
		tb.inserted[uniqueKey(r.Job, r.Key, r.Period, r.Trigger, r.FireTime)] = r
	}); err != nil {
		return fmt.Errorf("create the runs that follow: %w", err)
	}
	return nil
}

// results fills each result's Then once the transaction is committed:
// the runs inserted, and for the others the run holding their key, read
// now. A run neither inserted nor held by another was not created: its
// parent did not end up where its transition takes it.
func (tb *thenBatch) results(ctx context.Context, db *DB, results []store.Result) error {
	for i, v := range tb.valid {
		if len(v) > 0 {
			results[i].Then = make([]store.Created, len(v))
		}
	}
	claimed := map[string]bool{}
	var missing []store.CreateRun
	var missingRefs []thenRef
	for _, r := range tb.rows {
		c := tb.valid[r.item][r.n]
		k := uniqueKey(c.Job, c.Key, c.Period, c.Trigger, c.FireTime)
		if run, ok := tb.inserted[k]; ok {
			results[r.item].Then[r.n] = store.Created{Run: run, Created: !claimed[k]}
			claimed[k] = true
			continue
		}
		missing = append(missing, c)
		missingRefs = append(missingRefs, r)
	}
	if len(missing) == 0 {
		return nil
	}
	all := make([]int, len(missing))
	for i := range all {
		all[i] = i
	}
	existing := map[string]talon.Run{}
	err := db.read(ctx, func(q querier) error {
		rows, err := q.Query(ctx, existingRuns, holdersOf(missing, all)...)
		if err != nil {
			return err
		}
		return collectRuns(rows, func(r talon.Run) {
			existing[uniqueKey(r.Job, r.Key, r.Period, r.Trigger, r.FireTime)] = r
		})
	})
	if err != nil {
		return fmt.Errorf("find the runs that follow: %w", err)
	}
	for i, c := range missing {
		if run, ok := existing[uniqueKey(c.Job, c.Key, c.Period, c.Trigger, c.FireTime)]; ok {
			r := missingRefs[i]
			results[r.item].Then[r.n] = store.Created{Run: run}
		}
	}
	return nil
}

// countsOfRuns reads the counters of the (job, period) of the given runs,
// in the transaction that moved them, after its writes (Result.Counts).
// LATERAL keeps every plan on run_counts' primary key. The ids come
// through ARRAY(SELECT …) so that no plan knows their number: with the
// array itself, a plan for one id looked eight times cheaper than the
// cached generic one, and the server planned the statement again at
// every call (in a profile of one-at-a-time triggers, 0.14 ms of
// planning a call, four times its execution).
const countsOfRuns = `SELECT k.job, k.period, c.state, c.n
	FROM (SELECT DISTINCT job, period FROM runs WHERE id = ANY(ARRAY(SELECT unnest($1::bigint[])))) AS k,
	LATERAL (SELECT state, sum(n)::bigint AS n FROM run_counts WHERE job = k.job AND period = k.period
		GROUP BY state HAVING sum(n) > 0) AS c`

// endedCounts gathers the runs of a batch's items that end them, and
// reads their counters for Result.Counts.
type endedCounts struct {
	ids    []int64
	counts map[store.JobPeriod]store.Summary
}

func newEndedCounts(ts []store.Transition) *endedCounts {
	var ec *endedCounts
	for _, t := range ts {
		if t.To.Terminal() {
			if ec == nil {
				ec = &endedCounts{}
			}
			ec.ids = append(ec.ids, t.RunID)
		}
	}
	return ec
}

func (ec *endedCounts) queue(b *pgx.Batch) { b.Queue(countsOfRuns, sortedIDs(ec.ids)) }

func (ec *endedCounts) read(br pgx.BatchResults) error {
	ec.counts = map[store.JobPeriod]store.Summary{}
	rows, err := br.Query()
	if err != nil {
		return fmt.Errorf("read counters: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k store.JobPeriod
		var state string
		var n int
		if err := rows.Scan(&k.Job, &k.Period, &state, &n); err != nil {
			return fmt.Errorf("read counters: %w", err)
		}
		if ec.counts[k] == nil {
			ec.counts[k] = store.Summary{}
		}
		ec.counts[k][talon.State(state)] = n
	}
	return rows.Err()
}

// fill sets Result.Counts of the items that ended their run.
func (ec *endedCounts) fill(ts []store.Transition, results []store.Result) {
	for i, t := range ts {
		r := results[i]
		if !t.To.Terminal() || r.Err != nil || r.Run.ID == 0 {
			continue
		}
		c := ec.counts[store.JobPeriod{Job: r.Run.Job, Period: r.Run.Period}]
		if c == nil {
			c = store.Summary{}
		}
		results[i].Counts = c
	}
}

// afterEnds is what a transition batch writes and reads after its ends,
// with the rest of its last round trip: the runs that follow the ends
// (Transition.Then) and the counters of their periods (Result.Counts).
type afterEnds struct {
	tb             *thenBatch
	ec             *endedCounts
	nThen, nCounts int // their places in the batch; -1 when absent
}

func newAfterEnds(ts []store.Transition) (*afterEnds, error) {
	tb, err := newThenBatch(ts)
	if err != nil {
		return nil, err
	}
	return &afterEnds{tb: tb, ec: newEndedCounts(ts), nThen: -1, nCounts: -1}, nil
}

// queue adds the statements to b, after the batch's own.
func (a *afterEnds) queue(b *pgx.Batch) {
	if a.tb != nil {
		a.nThen = b.Len()
		a.tb.queue(b)
	}
	if a.ec != nil {
		a.nCounts = b.Len()
		a.ec.queue(b)
	}
}

// read takes the batch's result n when it is one of these statements'.
func (a *afterEnds) read(br pgx.BatchResults, n int) (bool, error) {
	switch n {
	case a.nThen:
		return true, a.tb.read(br)
	case a.nCounts:
		return true, a.ec.read(br)
	}
	return false, nil
}

// fill sets the results' Then and Counts once the transaction committed.
func (a *afterEnds) fill(ctx context.Context, db *DB, ts []store.Transition, results []store.Result) error {
	if a.ec != nil {
		a.ec.fill(ts, results)
	}
	if a.tb != nil {
		return a.tb.results(ctx, db, results)
	}
	return nil
}
