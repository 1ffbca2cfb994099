package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/store"
)

const runCols = `id, job, period, environment, state, attempt, executor, trigger_name,
	fire_time, idem_key, params, retry_of, created, started, finished, reason,
	recheck_at, owner, handle, progress`

func scanRun(row pgx.Row) (talon.Run, error) {
	var (
		r                       talon.Run
		state                   string
		fire, started, finished *time.Time
		recheck                 *time.Time
		key                     *string
		retryOf                 *int64
		params, progress        []byte
		created                 time.Time
	)
	if err := row.Scan(&r.ID, &r.Job, &r.Period, &r.Environment, &state, &r.Attempt, &r.Executor, &r.Trigger,
		&fire, &key, &params, &retryOf, &created, &started, &finished, &r.Reason,
		&recheck, &r.Owner, &r.Handle, &progress); err != nil {
		return talon.Run{}, err
	}
	r.State = talon.State(state)
	r.FireTime = utc(fire)
	if key != nil {
		r.Key = *key
	}
	if retryOf != nil {
		r.RetryOf = *retryOf
	}
	r.Created = created.UTC()
	r.Started, r.Finished = utcPtr(started), utcPtr(finished)
	r.RecheckAt = utc(recheck)
	if params != nil {
		if err := json.Unmarshal(params, &r.Params); err != nil {
			return talon.Run{}, fmt.Errorf("run %d: decode params: %w", r.ID, err)
		}
	}
	if progress != nil {
		r.Progress = new(talon.Progress)
		if err := json.Unmarshal(progress, r.Progress); err != nil {
			return talon.Run{}, fmt.Errorf("run %d: decode progress: %w", r.ID, err)
		}
	}
	return r, nil
}

// insertFrom is the insert of the runs a source yields (u: the columns
// of runArrays, then if_paused and ord), with their creation events, in
// one statement. The pause policy (store.PausePolicy) is applied here,
// in the statement that inserts: a run of a paused job is recorded
// skipped, its reason naming the pause as talon.Pause.Describe does, or
// not inserted at all.
func insertFrom(source, where string) string {
	if where != "" {
		where = "\n\tWHERE " + where
	}
	return `WITH u AS (
	SELECT u.*, p.job IS NOT NULL AND u.if_paused = 'skip' AS skip, p.job IS NOT NULL AND u.if_paused = 'refuse' AS refuse,
		'paused by ' || p.paused_by || ' since ' || to_char(p.since AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') ||
		CASE WHEN p.reason <> '' THEN ': ' || p.reason ELSE '' END AS pause
	FROM ` + source + `
	LEFT JOIN paused_jobs AS p ON p.job = u.job AND u.if_paused <> ''` + where + `
), ins AS (
	INSERT INTO runs (job, period, environment, state, attempt, executor, trigger_name, fire_time,
		idem_key, params, retry_of, created, finished, reason, recheck_at)
	SELECT job, period, environment, CASE WHEN skip THEN 'skipped' ELSE state END, attempt, executor, trigger_name, fire_time,
		idem_key, params::jsonb, retry_of, created, CASE WHEN skip THEN created ELSE finished END,
		CASE WHEN skip THEN reason || '; skipped: job ' || pause ELSE reason END, CASE WHEN skip THEN NULL ELSE recheck_at END
	FROM u WHERE NOT refuse
	ORDER BY ord
	ON CONFLICT DO NOTHING
	RETURNING ` + runCols + `
), ev AS (
	INSERT INTO events (run_id, time, from_state, to_state, reason, type, job, period)
	SELECT id, created, '', state, reason, 'transition', job, period FROM ins ORDER BY id
)
SELECT * FROM ins`
}

// insertRuns inserts runs that have a unique key, from arrays, in array
// order. A run whose key already exists — in the table or earlier in the
// arrays — is skipped.
var insertRuns = insertFrom(`unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::text[], $7::text[],
		$8::timestamptz[], $9::text[], $10::text[], $11::bigint[], $12::timestamptz[], $13::timestamptz[],
		$14::text[], $15::timestamptz[], $16::text[])
		WITH ORDINALITY AS u(job, period, environment, state, attempt, executor, trigger_name, fire_time,
			idem_key, params, retry_of, created, finished, reason, recheck_at, if_paused, ord)`, "")

// insertRun inserts one run without a unique key (an external trigger
// without a client key: always new).
var insertRun = insertFrom(`(SELECT $1::text, $2::text, $3::text, $4::text, $5::int, $6::text, $7::text,
		$8::timestamptz, $9::text, $10::text, $11::bigint, $12::timestamptz, $13::timestamptz,
		$14::text, $15::timestamptz, $16::text, 1::bigint)
		AS u(job, period, environment, state, attempt, executor, trigger_name, fire_time,
			idem_key, params, retry_of, created, finished, reason, recheck_at, if_paused, ord)`, "")

// countInserted is the CTE that counts the runs an insert's ins CTE
// created (store.CountChanges): in key order, and after the runs, like
// every transaction's counters.
const countInserted = `, cnt AS (
	INSERT INTO run_counts (job, period, state, shard, n)
	SELECT job, period, state, ` + countShard + `, count(*) FROM ins GROUP BY job, period, state ORDER BY job, period, state
	ON CONFLICT (job, period, state, shard) DO UPDATE SET n = run_counts.n + EXCLUDED.n
)
SELECT * FROM ins`

// counted turns insertRuns or insertRun into a statement that counts its
// runs too.
func counted(insert string) string {
	return strings.TrimSuffix(insert, "\nSELECT * FROM ins") + countInserted
}

var insertRunsCounted, insertRunCounted = counted(insertRuns), counted(insertRun)

// insertRunAudited is insertRunCounted that also records the run's
// store.CreateRun.Audit ($17–$22: time, actor, action, object, remote,
// outcome) when it inserts the run, its detail written as
// store.CreatedDetail writes it.
var insertRunAudited = strings.TrimSuffix(insertRunCounted, "\nSELECT * FROM ins") + `, aud AS (
	INSERT INTO audit (time, actor, action, object, remote, outcome, detail)
	SELECT $17, $18, $19, $20, $21, $22, 'run ' || id || ' for ' || period FROM ins
)
SELECT * FROM ins`

// queueAudit queues the record of a's entry for run r, which the
// transaction created.
func queueAudit(b *pgx.Batch, a *talon.AuditEntry, r talon.Run) {
	b.Queue(insertAudit, store.NowOr(a.Time), a.Actor, a.Action, a.Object, a.Remote, a.Outcome, store.CreatedDetail(r.ID, r.Period))
}

// existingRuns finds the runs holding the unique keys of runs that were
// not inserted: (job, key), or (job, period, trigger, fire time).
var existingRuns = `SELECT ` + runCols + ` FROM runs
	WHERE (job, idem_key) IN (SELECT * FROM unnest($1::text[], $2::text[]))
	UNION ALL
	SELECT ` + runCols + ` FROM runs
	WHERE idem_key IS NULL AND fire_time IS NOT NULL
	AND (job, period, trigger_name, fire_time) IN (SELECT * FROM unnest($3::text[], $4::text[], $5::text[], $6::timestamptz[]))`

// uniqueKey names the unique index entry a run takes, or "" when it takes
// none (an external trigger without a client key).
func uniqueKey(job, key, period, trigger string, fire time.Time) string {
	if key != "" {
		return "k\x00" + job + "\x00" + key
	}
	if fire.IsZero() {
		return ""
	}
	return "f\x00" + job + "\x00" + period + "\x00" + trigger + "\x00" + strconv.FormatInt(fire.UTC().Truncate(time.Microsecond).UnixMicro(), 10)
}

// runArrays are the columns of insertRuns.
type runArrays struct {
	job, period, env, state, executor, trigger, reason []string
	attempt                                            []int32
	fire, finished, recheck                            []*time.Time
	created                                            []time.Time
	key, params                                        []*string
	retryOf                                            []*int64
	ifPaused                                           []string
}

func (a *runArrays) add(p store.CreateRun, params *string) {
	var finished *time.Time
	if p.State.Terminal() {
		finished = &p.Now
	}
	var retryOf *int64
	if p.RetryOf != 0 {
		retryOf = &p.RetryOf
	}
	a.job, a.period, a.env = append(a.job, p.Job), append(a.period, p.Period), append(a.env, p.Environment)
	a.state, a.executor = append(a.state, string(p.State)), append(a.executor, p.Executor)
	a.trigger, a.reason = append(a.trigger, p.Trigger), append(a.reason, p.Reason)
	a.attempt = append(a.attempt, int32(p.Attempt))
	a.fire, a.finished, a.recheck = append(a.fire, timePtr(p.FireTime)), append(a.finished, finished), append(a.recheck, timePtr(p.NotBefore))
	a.created = append(a.created, p.Now)
	a.key, a.params = append(a.key, strPtr(p.Key)), append(a.params, params)
	a.retryOf = append(a.retryOf, retryOf)
	a.ifPaused = append(a.ifPaused, string(p.IfPaused))
}

// CreateRuns creates runs in one transaction, idempotently on (job,
// period, trigger, fire time) or (job, key). The runs with a unique key
// go in one set-based statement, in unique-key order: two schedulers
// creating the same runs then wait for each other's rows in the same
// order, never in a cycle. Runs without one (external triggers without a
// key) are pipelined with it, one statement each. A second statement
// reads the runs that already held their keys, when there are any.
func (db *DB) CreateRuns(ctx context.Context, ps []store.CreateRun) ([]store.Created, error) {
	if len(ps) == 0 {
		return nil, nil
	}
	valid := make([]store.CreateRun, len(ps))
	params := make([]*string, len(ps))
	keys := make([]string, len(ps))
	for i, p := range ps {
		v, err := store.ValidateCreate(i, p)
		if err != nil {
			return nil, err
		}
		if len(v.Params) > 0 {
			raw, err := json.Marshal(v.Params)
			if err != nil {
				return nil, fmt.Errorf("create run #%d: encode params: %w", i, err)
			}
			s := string(raw)
			params[i] = &s
		}
		valid[i] = v
		keys[i] = uniqueKey(v.Job, v.Key, v.Period, v.Trigger, v.FireTime)
	}
	order := make([]int, len(valid))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		pa, pb := valid[a], valid[b]
		return cmp.Or(strings.Compare(pa.Job, pb.Job), strings.Compare(pa.Key, pb.Key),
			strings.Compare(pa.Period, pb.Period), strings.Compare(pa.Trigger, pb.Trigger), pa.FireTime.Compare(pb.FireTime))
	})
	var keyed runArrays
	var unkeyed []int
	for _, i := range order {
		if keys[i] == "" {
			unkeyed = append(unkeyed, i)
		} else {
			keyed.add(valid[i], params[i])
		}
	}

	// A few runs (a trigger, the runs a success fires) go in one round
	// trip; a large batch rather in two, reading back only the runs
	// whose keys were taken instead of every key's.
	single := len(unkeyed) == 1 && len(keyed.job) == 0
	if len(valid) <= oneTripMax && (len(unkeyed) == 0 && !audited(valid) || single) {
		return db.createOneTrip(ctx, valid, params, keys, order, &keyed, unkeyed)
	}
	var out []store.Created
	var refused []int // not inserted, perhaps for a pause (PauseRefuse)
	err := db.pipeTx(ctx, func(tx *pipe) error {
		tx.events = true
		out = make([]store.Created, len(valid))
		refused = refused[:0]
		inserted := map[string]talon.Run{} // by unique key
		b := &pgx.Batch{}
		if len(keyed.job) > 0 {
			keyed.queue(b, insertRuns)
		}
		for _, i := range unkeyed {
			p := valid[i]
			queueRun(b, insertRun, p, params[i])
		}
		first := 0
		if len(keyed.job) > 0 {
			first = 1
		}
		err := tx.send(ctx, b, false, func(br pgx.BatchResults, n int) error {
			if n < first {
				return readRuns(br, func(r talon.Run) {
					inserted[uniqueKey(r.Job, r.Key, r.Period, r.Trigger, r.FireTime)] = r
				})
			}
			i := unkeyed[n-first]
			r, err := scanRun(br.QueryRow())
			if errors.Is(err, pgx.ErrNoRows) && valid[i].IfPaused == store.PauseRefuse {
				refused = append(refused, i)
				return nil
			}
			if err != nil {
				return fmt.Errorf("create run #%d: %w", i, err)
			}
			out[i] = store.Created{Run: r, Created: true}
			return nil
		})
		if err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		counts := store.CountChanges{}
		for _, r := range inserted {
			counts.Created(r.Job, r.Period, r.State)
		}
		for _, i := range unkeyed {
			counts.Created(out[i].Run.Job, out[i].Run.Period, out[i].Run.State)
		}

		// The first of the batch to name a key created its run; the others
		// get that run, or the one that held the key before.
		var missing []int
		claimed := map[string]bool{}
		for _, i := range order {
			k := keys[i]
			if k == "" {
				continue
			}
			r, ok := inserted[k]
			switch {
			case !ok:
				missing = append(missing, i)
			case claimed[k]:
				out[i] = store.Created{Run: r}
			default:
				claimed[k] = true
				out[i] = store.Created{Run: r, Created: true}
			}
		}
		// The counters, and the runs that held the keys of those not
		// inserted, go with COMMIT.
		b = &pgx.Batch{}
		nCounts := 0
		if queueCounts(b, counts) {
			nCounts = 1
		}
		for i, c := range out {
			if c.Created && valid[i].Audit != nil {
				queueAudit(b, valid[i].Audit, c.Run)
				nCounts++
			}
		}
		holders := holdersOf(valid, missing)
		if len(missing) > 0 {
			b.Queue(existingRuns, holders...)
		}
		existing := map[string]talon.Run{}
		err = tx.send(ctx, b, true, func(br pgx.BatchResults, n int) error {
			if n < nCounts {
				if _, err := br.Exec(); err != nil {
					return fmt.Errorf("count runs and record their audit: %w", err)
				}
				return nil
			}
			if err := readRuns(br, func(r talon.Run) {
				existing[uniqueKey(r.Job, r.Key, r.Period, r.Trigger, r.FireTime)] = r
			}); err != nil {
				return fmt.Errorf("find existing runs: %w", err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, i := range missing {
			r, ok := existing[keys[i]]
			switch {
			case ok:
				out[i] = store.Created{Run: r}
			case valid[i].IfPaused == store.PauseRefuse:
				refused = append(refused, i)
			default:
				return fmt.Errorf("create run #%d: the run holding its key vanished", i)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("create runs: %w", err)
	}
	if err := db.resolveMissing(ctx, valid, refused, out); err != nil {
		return nil, err
	}
	return out, nil
}

// oneTripMax is the largest batch createOneTrip takes.
const oneTripMax = 16

// createOneTrip is CreateRuns in one round trip, for a batch whose runs
// all have a unique key, or of one run without: BEGIN, the insert that
// counts what it creates, COMMIT. With one statement writing, the
// counters are still taken last and in key order. Only when a key was
// taken does a second round trip read the run holding it.
func (db *DB) createOneTrip(ctx context.Context, valid []store.CreateRun, params []*string, keys []string, order []int, keyed *runArrays, unkeyed []int) ([]store.Created, error) {
	var out []store.Created
	var inserted map[string]talon.Run // by unique key
	var missing []int
	err := db.pipeTx(ctx, func(tx *pipe) error {
		tx.events = true
		out = make([]store.Created, len(valid))
		inserted = map[string]talon.Run{}
		missing = missing[:0]
		b := &pgx.Batch{}
		if len(unkeyed) == 1 {
			i := unkeyed[0]
			p := valid[i]
			if a := p.Audit; a != nil {
				queueRun(b, insertRunAudited, p, params[i], store.NowOr(a.Time), a.Actor, a.Action, a.Object, a.Remote, a.Outcome)
			} else {
				queueRun(b, insertRunCounted, p, params[i])
			}
		} else {
			keyed.queue(b, insertRunsCounted)
		}
		return tx.send(ctx, b, true, func(br pgx.BatchResults, _ int) error {
			if len(unkeyed) == 1 {
				r, err := scanRun(br.QueryRow())
				if errors.Is(err, pgx.ErrNoRows) && valid[unkeyed[0]].IfPaused == store.PauseRefuse {
					missing = append(missing, unkeyed[0])
					return nil
				}
				if err != nil {
					return fmt.Errorf("create run #%d: %w", unkeyed[0], err)
				}
				out[unkeyed[0]] = store.Created{Run: r, Created: true}
				return nil
			}
			if err := readRuns(br, func(r talon.Run) {
				inserted[uniqueKey(r.Job, r.Key, r.Period, r.Trigger, r.FireTime)] = r
			}); err != nil {
				return fmt.Errorf("insert: %w", err)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("create runs: %w", err)
	}
	// The first of the batch to name a key created its run; the others
	// get that run, or the one that held the key before, read once the
	// transaction is over (it was committed before the insert, which
	// waits for a transaction inserting the same key).
	claimed := map[string]bool{}
	for _, i := range order {
		k := keys[i]
		if k == "" {
			continue
		}
		if r, ok := inserted[k]; ok {
			out[i] = store.Created{Run: r, Created: !claimed[k]}
			claimed[k] = true
			continue
		}
		missing = append(missing, i)
	}
	if err := db.resolveMissing(ctx, valid, missing, out); err != nil {
		return nil, err
	}
	return out, nil
}

// resolveMissing fills the results of the runs an insert skipped, once
// its transaction is over: a run refused for a pause (PauseRefuse) gets
// the pause, any other the run holding its unique key (it was committed
// before the insert, which waits for a transaction inserting the same
// key).
func (db *DB) resolveMissing(ctx context.Context, valid []store.CreateRun, missing []int, out []store.Created) error {
	if len(missing) == 0 {
		return nil
	}
	var jobs []string
	var keyed []int
	for _, i := range missing {
		if valid[i].IfPaused == store.PauseRefuse {
			jobs = append(jobs, valid[i].Job)
		}
		if valid[i].Key != "" || !valid[i].FireTime.IsZero() {
			keyed = append(keyed, i)
		}
	}
	existing := map[string]talon.Run{}
	paused := map[string]talon.Pause{}
	err := db.read(ctx, func(q querier) error {
		if len(keyed) > 0 {
			rows, err := q.Query(ctx, existingRuns, holdersOf(valid, keyed)...)
			if err != nil {
				return err
			}
			if err := collectRuns(rows, func(r talon.Run) {
				existing[uniqueKey(r.Job, r.Key, r.Period, r.Trigger, r.FireTime)] = r
			}); err != nil {
				return err
			}
		}
		if len(jobs) > 0 {
			rows, err := q.Query(ctx, `SELECT job, paused_by, reason, since FROM paused_jobs WHERE job = ANY($1)`, jobs)
			if err != nil {
				return err
			}
			ps, err := scanPauses(rows)
			if err != nil {
				return err
			}
			for _, p := range ps {
				paused[p.Job] = p
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create runs: find existing runs: %w", err)
	}
	for _, i := range missing {
		p := valid[i]
		if pause, ok := paused[p.Job]; ok && p.IfPaused == store.PauseRefuse {
			out[i] = store.Created{Paused: &pause}
			continue
		}
		r, ok := existing[uniqueKey(p.Job, p.Key, p.Period, p.Trigger, p.FireTime)]
		if !ok {
			if p.IfPaused == store.PauseRefuse {
				// Refused for a pause that was lifted since.
				return talon.Errorf(talon.ECONFLICT, "create run of job %s: the job was paused as the run was created, and has been resumed since; try again", p.Job)
			}
			return fmt.Errorf("create runs: run #%d: the run holding its key vanished", i)
		}
		out[i] = store.Created{Run: r}
	}
	return nil
}

// queueRun queues the insert of one run without a unique key.
func queueRun(b *pgx.Batch, query string, p store.CreateRun, params *string, more ...any) {
	var finished, retryOf any
	if p.State.Terminal() {
		finished = p.Now
	}
	if p.RetryOf != 0 {
		retryOf = p.RetryOf
	}
	b.Queue(query, append([]any{p.Job, p.Period, p.Environment, string(p.State), p.Attempt, p.Executor, p.Trigger,
		nil, nil, params, retryOf, p.Now, finished, p.Reason, tstz(p.NotBefore), string(p.IfPaused)}, more...)...)
}

// audited reports whether a run of valid asks for an audit record.
func audited(valid []store.CreateRun) bool {
	for _, p := range valid {
		if p.Audit != nil {
			return true
		}
	}
	return false
}

// queue queues the insert of the runs with a unique key.
func (a *runArrays) queue(b *pgx.Batch, query string) {
	b.Queue(query, a.job, a.period, a.env, a.state, a.attempt, a.executor, a.trigger, a.fire, a.key, a.params,
		a.retryOf, a.created, a.finished, a.reason, a.recheck, a.ifPaused)
}

// holdersOf is the arguments of existingRuns for the runs of valid at
// the indexes missing: their (job, key) pairs, then their (job, period,
// trigger, fire time).
func holdersOf(valid []store.CreateRun, missing []int) []any {
	var kJobs, kKeys, fJobs, fPeriods, fTriggers []string
	var fFires []time.Time
	for _, i := range missing {
		p := valid[i]
		if p.Key != "" {
			kJobs, kKeys = append(kJobs, p.Job), append(kKeys, p.Key)
		} else {
			fJobs, fPeriods, fTriggers = append(fJobs, p.Job), append(fPeriods, p.Period), append(fTriggers, p.Trigger)
			fFires = append(fFires, p.FireTime.UTC().Truncate(time.Microsecond))
		}
	}
	return []any{kJobs, kKeys, fJobs, fPeriods, fTriggers, fFires}
}

// readRuns hands each run a batched query returns to add.
func readRuns(br pgx.BatchResults, add func(talon.Run)) error {
	rows, err := br.Query()
	if err != nil {
		return err
	}
	return collectRuns(rows, add)
}

// collectRuns hands each run of rows to add, and closes rows.
func collectRuns(rows pgx.Rows, add func(talon.Run)) error {
	defer rows.Close()
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return err
		}
		add(r)
	}
	return rows.Err()
}

// GetRun returns a run with its progress and artifacts, or ErrNotFound.
func (db *DB) GetRun(ctx context.Context, id int64) (talon.Run, error) {
	var r talon.Run
	err := db.tx(ctx, func(tx pgx.Tx) error {
		var err error
		r, err = scanRun(tx.QueryRow(ctx, `SELECT `+runCols+` FROM runs WHERE id = $1`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+artifactCols+`
			FROM artifacts WHERE run_id = $1 ORDER BY id`, id)
		if err != nil {
			return err
		}
		r.Artifacts, err = pgx.CollectRows(rows, scanArtifact)
		return err
	})
	if err != nil {
		return talon.Run{}, fmt.Errorf("get run %d: %w", id, err)
	}
	return r, nil
}

// limitOf is " LIMIT $n" for the n-th parameter when limit is set.
func limitOf(limit, n int) string {
	if limit <= 0 {
		return ""
	}
	return fmt.Sprintf(" LIMIT $%d", n)
}

// ListRuns returns runs matching f, newest first.
func (db *DB) ListRuns(ctx context.Context, f store.RunFilter) ([]talon.Run, error) {
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	jobArg := ""
	if f.Job != "" {
		jobArg = arg(f.Job)
		where = append(where, "job = "+jobArg)
	}
	if f.Period != "" {
		where = append(where, "period = "+arg(f.Period))
	}
	if len(f.States) > 0 {
		states := make([]string, len(f.States))
		for i, s := range f.States {
			states[i] = string(s)
		}
		where = append(where, "state = ANY("+arg(states)+")")
		if store.OnlyLive(f.States) {
			where = append(where, store.LiveStates)
		}
	}
	if f.IDs != nil {
		where = append(where, "id = ANY("+arg(f.IDs)+")")
	}
	if f.BeforeID > 0 {
		where = append(where, "id < "+arg(f.BeforeID))
	}
	q := `SELECT ` + runCols + ` FROM runs`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC"
	if f.Limit > 0 {
		q += " LIMIT " + arg(f.Limit)
	}
	if f.Job != "" && f.Period == "" && f.IDs == nil && !store.OnlyLive(f.States) {
		// No index of runs begins with the job (migration 0015): its
		// periods come from the counters, and each period's newest runs
		// from the (period, job, id) index, so a page of a job's runs
		// reads at most a page from each of its periods.
		q = `SELECT ` + qualified("r", runCols) + ` FROM (SELECT DISTINCT period FROM run_counts WHERE job = ` + jobArg + `) AS p,
			LATERAL (SELECT ` + runCols + ` FROM runs WHERE period = p.period AND ` + strings.Join(where, " AND ") + `
				ORDER BY id DESC` + limitOf(f.Limit, len(args)) + `) AS r
			ORDER BY r.id DESC` + limitOf(f.Limit, len(args))
	}
	var out []talon.Run
	err := db.read(ctx, func(tx querier) error {
		rows, err := tx.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		out = nil
		for rows.Next() {
			r, err := scanRun(rows)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if !f.WithArtifacts || len(out) == 0 {
			return nil
		}
		ids := make([]int64, len(out))
		at := make(map[int64]int, len(out))
		for i, r := range out {
			ids[i] = r.ID
			at[r.ID] = i
			out[i].Artifacts = []talon.Artifact{}
		}
		arows, err := tx.Query(ctx, `SELECT `+artifactCols+`
			FROM artifacts WHERE run_id = ANY($1) ORDER BY id`, ids)
		if err != nil {
			return err
		}
		as, err := pgx.CollectRows(arows, scanArtifact)
		for _, a := range as {
			i := at[a.RunID]
			out[i].Artifacts = append(out[i].Artifacts, a)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return out, nil
}
