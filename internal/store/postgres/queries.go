package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/store"
)

// runExists turns an empty answer about a run into ErrNotFound when the
// run itself is missing.
func runExists(ctx context.Context, tx querier, id int64) error {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM runs WHERE id = $1`, id).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}

// Decisions returns the latest answer of every constraint for a run, in
// the order they were given; ErrNotFound for unknown runs.
func (db *DB) Decisions(ctx context.Context, runID int64) ([]talon.Decision, error) {
	var out []talon.Decision
	err := db.read(ctx, func(tx querier) error {
		rows, err := tx.Query(ctx, `SELECT constraint_name, action, reason, recheck_at
			FROM decisions WHERE run_id = $1 ORDER BY pos`, runID)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (talon.Decision, error) {
			var d talon.Decision
			var recheck *time.Time
			err := row.Scan(&d.Constraint, &d.Action, &d.Reason, &recheck)
			d.RecheckAt = utc(recheck)
			return d, err
		})
		if err != nil {
			return err
		}
		if len(out) == 0 {
			out = nil
			return runExists(ctx, tx, runID)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("decisions of run %d: %w", runID, err)
	}
	return out, nil
}

// Events returns a run's history, oldest first; ErrNotFound for unknown runs.
func (db *DB) Events(ctx context.Context, runID int64) ([]talon.Event, error) {
	var out []talon.Event
	err := db.tx(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = queryEvents(ctx, tx, `WHERE run_id = $1 AND type IN ('transition', 'decision') ORDER BY id`, runID)
		if err == nil && len(out) == 0 {
			out = nil
			return runExists(ctx, tx, runID)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("events of run %d: %w", runID, err)
	}
	return out, nil
}

// EventsAfter returns the events with an id above afterID, oldest first.
func (db *DB) EventsAfter(ctx context.Context, afterID int64, limit int) ([]talon.Event, error) {
	var out []talon.Event
	err := db.read(ctx, func(tx querier) error {
		var err error
		out, err = queryEvents(ctx, tx, `WHERE id > $1 ORDER BY id LIMIT $2`, afterID, limit)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("events after %d: %w", afterID, err)
	}
	return out, nil
}

// queryEvents reads the events selected by the clause where.
func queryEvents(ctx context.Context, tx querier, where string, args ...any) ([]talon.Event, error) {
	rows, err := tx.Query(ctx, `SELECT id, run_id, time, from_state, to_state, reason,
		type, job, period, detail FROM events `+where, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (talon.Event, error) {
		var e talon.Event
		var detail []byte
		if err := row.Scan(&e.ID, &e.RunID, &e.Time, &e.From, &e.To, &e.Reason, &e.Type, &e.Job, &e.Period, &detail); err != nil {
			return e, err
		}
		e.Time = e.Time.UTC()
		return e, store.DecodeEventDetail(&e, detail)
	})
}

// LastEventID returns the id of the newest event, 0 when there is none.
func (db *DB) LastEventID(ctx context.Context) (int64, error) {
	var id int64
	err := db.read(ctx, func(tx querier) error {
		return tx.QueryRow(ctx, `SELECT COALESCE(max(id), 0) FROM events`).Scan(&id)
	})
	if err != nil {
		return 0, fmt.Errorf("last event: %w", err)
	}
	return id, nil
}

// Summaries counts runs by state for each (job, period), from the run
// counters (migration 0009), so its cost does not grow with the runs a
// period has. Keys travel as two arrays, so any number of them fits in
// one query.
// fewKeys is the most keys Summaries asks for with one statement text
// per count rather than with arrays.
const fewKeys = 8

var summariesFew [fewKeys + 1]string

func init() {
	for n := 1; n <= fewKeys; n++ {
		var sb strings.Builder
		sb.WriteString(`SELECT job, period, state, sum(n)::bigint FROM run_counts WHERE (job, period) IN (`)
		for i := range n {
			if i > 0 {
				sb.WriteString(", ")
			}
			fmt.Fprintf(&sb, "($%d::text, $%d::text)", 2*i+1, 2*i+2)
		}
		sb.WriteString(") GROUP BY job, period, state HAVING sum(n) > 0")
		summariesFew[n] = sb.String()
	}
}

// summariesOf is the Summaries statement for n keys (1 ≤ n ≤ fewKeys).
func summariesOf(n int) string { return summariesFew[n] }

func (db *DB) Summaries(ctx context.Context, keys []store.JobPeriod) (map[store.JobPeriod]store.Summary, error) {
	out := map[store.JobPeriod]store.Summary{}
	if len(keys) == 0 {
		return out, nil
	}
	seen := make(map[store.JobPeriod]bool, len(keys))
	var jobs, periods []string
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			jobs, periods = append(jobs, k.Job), append(periods, k.Period)
		}
	}
	err := db.read(ctx, func(tx querier) error {
		q, args := `SELECT c.job, c.period, c.state, sum(c.n)::bigint
			FROM unnest($1::text[], $2::text[]) AS k(job, period)
			JOIN run_counts AS c ON c.job = k.job AND c.period = k.period
			GROUP BY c.job, c.period, c.state HAVING sum(c.n) > 0`, []any{jobs, periods}
		if len(jobs) <= fewKeys {
			// The common case (a run checked alone) in a form whose
			// cached generic plan the server keeps: with an array it
			// plans every execution again, as a plan for an array of
			// unknown length looks costlier than one for a known length.
			q, args = summariesOf(len(jobs)), make([]any, 0, 2*len(jobs))
			for i := range jobs {
				args = append(args, jobs[i], periods[i])
			}
		}
		rows, err := tx.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k store.JobPeriod
			var state string
			var n int
			if err := rows.Scan(&k.Job, &k.Period, &state, &n); err != nil {
				return err
			}
			if out[k] == nil {
				out[k] = store.Summary{}
			}
			out[k][talon.State(state)] = n
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("summaries: %w", err)
	}
	return out, nil
}

// ActiveCounts counts each job's ready and running runs over all periods
// through the index of live runs, whose leading column the states select.
func (db *DB) ActiveCounts(ctx context.Context, jobs []string) (map[string]int, error) {
	out := map[string]int{}
	if len(jobs) == 0 {
		return out, nil
	}
	err := db.read(ctx, func(tx querier) error {
		rows, err := tx.Query(ctx, `SELECT job, count(*) FROM runs
			WHERE state IN ('ready', 'running') AND job = ANY($1)
			GROUP BY job`, jobs)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var job string
			var n int
			if err := rows.Scan(&job, &n); err != nil {
				return err
			}
			out[job] = n
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("count active runs: %w", err)
	}
	return out, nil
}

// The periods of ListPeriods: of all jobs from the (period, job, id)
// index of runs; of one job from its counters, as no index of runs begins
// with the job (migration 0015). A (job, period) has runs while its
// counters add up to more than 0.
const (
	listPeriods = `WITH p AS (
			SELECT DISTINCT period FROM runs WHERE $2 = '' OR period < $2
			ORDER BY period DESC LIMIT $1)
		SELECT r.period, r.job, r.state, count(*), max(r.id)
		FROM p JOIN runs AS r ON r.period = p.period
		GROUP BY r.period, r.job, r.state
		ORDER BY r.period DESC, r.job`
	listJobPeriods = `WITH p AS (
			SELECT period FROM run_counts WHERE job = $3 AND ($2 = '' OR period < $2)
			GROUP BY period HAVING sum(n) > 0
			ORDER BY period DESC LIMIT $1)
		SELECT r.period, r.job, r.state, count(*), max(r.id)
		FROM p JOIN runs AS r ON r.period = p.period AND r.job = $3
		GROUP BY r.period, r.job, r.state
		ORDER BY r.period DESC, r.job`
)

// ListPeriods returns (period, job) rows with counts, newest period first
// (period keys sort by date within a period type). Limit counts periods,
// not rows, so a dashboard gets whole periods.
func (db *DB) ListPeriods(ctx context.Context, f store.PeriodFilter) ([]store.PeriodRow, error) {
	var limit any // NULL: no limit
	if f.Limit > 0 {
		limit = f.Limit
	}
	var out []store.PeriodRow
	err := db.read(ctx, func(tx querier) error {
		out = nil
		q, args := listPeriods, []any{limit, f.Before}
		if f.Job != "" {
			q, args = listJobPeriods, []any{limit, f.Before, f.Job}
		}
		rows, err := tx.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var period, job, state string
			var n int
			var maxID int64
			if err := rows.Scan(&period, &job, &state, &n, &maxID); err != nil {
				return err
			}
			out = store.AddPeriodRow(out, period, job, talon.State(state), n, maxID)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list periods: %w", err)
	}
	return out, nil
}

// reportable checks that a run may still report progress and artifacts:
// ErrNotFound for an unknown run, ErrConflict for a finished one. It locks
// the run's row, so a transition to a terminal state waits for the
// caller's write, and a report never lands after the run ended.
func reportable(ctx context.Context, tx pgx.Tx, runID int64) error {
	var state string
	err := tx.QueryRow(ctx, `SELECT state FROM runs WHERE id = $1 FOR NO KEY UPDATE`, runID).Scan(&state)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	if err != nil {
		return err
	}
	return store.Reportable(talon.State(state))
}

// addEvent writes an event about a run that does not change its state
// (a progress report, an artifact): to_state is the state it is in.
func addEvent(ctx context.Context, tx pgx.Tx, runID int64, typ talon.EventType, at time.Time, reason string, detail []byte) error {
	_, err := tx.Exec(ctx, `INSERT INTO events (run_id, time, from_state, to_state, reason, type, job, period, detail)
		SELECT id, $1, '', state, $2, $3, job, period, $4::jsonb FROM runs WHERE id = $5`,
		at, reason, string(typ), string(detail), runID)
	if err != nil {
		return fmt.Errorf("record event: %w", err)
	}
	return nil
}

// SetProgress replaces a run's progress; ErrNotFound for unknown runs,
// ErrConflict for finished ones.
func (db *DB) SetProgress(ctx context.Context, runID int64, p talon.Progress) error {
	if !p.Updated.IsZero() {
		p.Updated = p.Updated.UTC().Truncate(time.Microsecond)
	}
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("set progress of run %d: %w", runID, err)
	}
	err = db.tx(ctx, func(tx pgx.Tx) error {
		if err := reportable(ctx, tx, runID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE runs SET progress = $1 WHERE id = $2`, b, runID); err != nil {
			return err
		}
		return addEvent(ctx, tx, runID, talon.EventProgress, store.NowOr(p.Updated), p.Message, b)
	})
	if err != nil {
		return fmt.Errorf("set progress of run %d: %w", runID, err)
	}
	db.eventsCommitted()
	return nil
}

// RequestCancel asks the owner of a running run to stop it.
func (db *DB) RequestCancel(ctx context.Context, runID int64, by string) error {
	err := db.tx(ctx, func(tx pgx.Tx) error {
		var state string
		err := tx.QueryRow(ctx, `SELECT state FROM runs WHERE id = $1 FOR UPDATE`, runID).Scan(&state)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		if talon.State(state) != talon.StateRunning {
			return store.ErrConflict
		}
		_, err = tx.Exec(ctx, `UPDATE runs SET cancel_by = $1 WHERE id = $2`, by, runID)
		return err
	})
	if err != nil {
		return fmt.Errorf("request cancel of run %d: %w", runID, err)
	}
	return nil
}

// CancelRequests returns the cancel requests for owner's running runs.
func (db *DB) CancelRequests(ctx context.Context, owner string) (map[int64]string, error) {
	out := map[int64]string{}
	err := db.read(ctx, func(tx querier) error {
		clear(out)
		rows, err := tx.Query(ctx, `SELECT id, cancel_by FROM runs
			WHERE owner = $1 AND cancel_by IS NOT NULL AND state = 'running'`, owner)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			var by string
			if err := rows.Scan(&id, &by); err != nil {
				return err
			}
			out[id] = by
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("cancel requests: %w", err)
	}
	return out, nil
}

// Cursor returns the last fire instant handled for a job's trigger.
func (db *DB) Cursor(ctx context.Context, job, trigger string) (time.Time, bool, error) {
	var fired time.Time
	found := true
	err := db.read(ctx, func(tx querier) error {
		err := tx.QueryRow(ctx, `SELECT fired FROM cursors WHERE job = $1 AND trigger_name = $2`,
			job, trigger).Scan(&fired)
		if errors.Is(err, pgx.ErrNoRows) {
			found = false
			return nil
		}
		return err
	})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("cursor of %s %s: %w", job, trigger, err)
	}
	if !found {
		return time.Time{}, false, nil
	}
	return fired.UTC(), true, nil
}

// AdvanceCursors moves cursors forward, never back.
func (db *DB) AdvanceCursors(ctx context.Context, cs []store.CursorUpdate) error {
	if len(cs) == 0 {
		return nil
	}
	jobs, triggers := make([]string, len(cs)), make([]string, len(cs))
	fired := make([]time.Time, len(cs))
	for i, c := range cs {
		jobs[i], triggers[i], fired[i] = c.Job, c.Trigger, store.NowOr(c.Fired)
	}
	err := db.tx(ctx, func(tx pgx.Tx) error {
		// One row per cursor (an upsert may not touch a row twice), in key
		// order so that concurrent schedulers lock cursors in one order.
		_, err := tx.Exec(ctx, `INSERT INTO cursors (job, trigger_name, fired)
			SELECT job, trigger_name, max(fired)
			FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS u(job, trigger_name, fired)
			GROUP BY job, trigger_name ORDER BY job, trigger_name
			ON CONFLICT (job, trigger_name) DO UPDATE SET fired = GREATEST(cursors.fired, excluded.fired)`,
			jobs, triggers, fired)
		return err
	})
	if err != nil {
		return fmt.Errorf("advance cursors: %w", err)
	}
	return nil
}

// Heartbeat records that an instance is alive and returns the database's
// clock (now()), which is also the stored heartbeat, so leases compare
// times from one clock whichever host wrote them.
func (db *DB) Heartbeat(ctx context.Context, in store.Instance) (time.Time, error) {
	if in.ID == "" {
		return time.Time{}, errors.New("heartbeat: instance without an id")
	}
	var now time.Time
	err := db.tx(ctx, func(tx pgx.Tx) error {
		// clock_timestamp, not now(): now() is the transaction's start.
		return tx.QueryRow(ctx, `INSERT INTO instances (id, host, pid, started, heartbeat, log_dir)
			VALUES ($1, $2, $3, COALESCE($4, date_trunc('microseconds', clock_timestamp())), clock_timestamp(), $5)
			ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid,
				started = excluded.started, heartbeat = excluded.heartbeat, log_dir = excluded.log_dir
			RETURNING heartbeat`, in.ID, in.Host, in.PID, tstz(in.Started), in.LogDir).Scan(&now)
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("heartbeat of %s: %w", in.ID, err)
	}
	return now.UTC(), nil
}

// Instances lists the scheduler instances known to the store, by id.
func (db *DB) Instances(ctx context.Context) ([]store.Instance, error) {
	var out []store.Instance
	err := db.read(ctx, func(tx querier) error {
		rows, err := tx.Query(ctx, `SELECT id, host, pid, started, heartbeat, log_dir FROM instances ORDER BY id`)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Instance, error) {
			var in store.Instance
			err := row.Scan(&in.ID, &in.Host, &in.PID, &in.Started, &in.Heartbeat, &in.LogDir)
			in.Started, in.Heartbeat = in.Started.UTC(), in.Heartbeat.UTC()
			return in, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("instances: %w", err)
	}
	return out, nil
}
