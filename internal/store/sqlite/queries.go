package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/store"
)

// runExists turns an empty answer about a run into ErrNotFound when the
// run itself is missing.
func runExists(ctx context.Context, tx *sql.Tx, id int64) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM runs WHERE id = ?`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}

// Decisions returns the latest answer of every constraint for a run, in
// the order they were given; ErrNotFound for unknown runs.
func (db *DB) Decisions(ctx context.Context, runID int64) ([]talon.Decision, error) {
	var out []talon.Decision
	err := db.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT constraint_name, action, reason, recheck_at
			FROM decisions WHERE run_id = ? ORDER BY pos`, runID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var d talon.Decision
			var action string
			var recheck sql.NullInt64
			if err := rows.Scan(&d.Constraint, &action, &d.Reason, &recheck); err != nil {
				return err
			}
			d.Action = talon.Action(action)
			d.RecheckAt = fromNullMicros(recheck)
			out = append(out, d)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(out) == 0 {
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
	err := db.read(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = queryEvents(ctx, tx, `WHERE run_id = ? AND type IN ('transition', 'decision') ORDER BY id`, runID)
		if err == nil && len(out) == 0 {
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
	err := db.read(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = queryEvents(ctx, tx, `WHERE id > ? ORDER BY id LIMIT ?`, afterID, limit)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("events after %d: %w", afterID, err)
	}
	return out, nil
}

// queryEvents reads the events selected by the clause where.
func queryEvents(ctx context.Context, tx *sql.Tx, where string, args ...any) ([]talon.Event, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, run_id, time, from_state, to_state, reason,
		type, job, period, detail FROM events `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []talon.Event
	for rows.Next() {
		var e talon.Event
		var at int64
		var from, to, typ string
		var detail sql.NullString
		if err := rows.Scan(&e.ID, &e.RunID, &at, &from, &to, &e.Reason, &typ, &e.Job, &e.Period, &detail); err != nil {
			return nil, err
		}
		e.Time, e.From, e.To, e.Type = fromMicros(at), talon.State(from), talon.State(to), talon.EventType(typ)
		if detail.Valid {
			if err := store.DecodeEventDetail(&e, []byte(detail.String)); err != nil {
				return nil, err
			}
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// LastEventID returns the id of the newest event, 0 when there is none.
func (db *DB) LastEventID(ctx context.Context) (int64, error) {
	var id int64
	err := db.read(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT COALESCE(max(id), 0) FROM events`).Scan(&id)
	})
	if err != nil {
		return 0, fmt.Errorf("last event: %w", err)
	}
	return id, nil
}

// Summaries counts runs by state for each (job, period). Keys travel as
// one JSON parameter, so any number of them fits in one query.
func (db *DB) Summaries(ctx context.Context, keys []store.JobPeriod) (map[store.JobPeriod]store.Summary, error) {
	if len(keys) == 0 {
		return map[store.JobPeriod]store.Summary{}, nil
	}
	var out map[store.JobPeriod]store.Summary
	err := db.read(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = db.readCounters(ctx, tx, keys)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("summaries: %w", err)
	}
	return out, nil
}

// qCounters reads the run counters (migration 0009) of the (job, period)
// pairs given as [[job, period], …]: the cost does not grow with the runs
// a period has. CROSS JOIN makes SQLite walk the keys and look each up by
// the counters' key.
const qCounters = `SELECT c.job, c.period, c.state, c.n
	FROM jsonb_each(?) AS k CROSS JOIN run_counts AS c
	ON c.job = k.value ->> 0 AND c.period = k.value ->> 1
	WHERE c.n > 0`

// readCounters reads in tx the counters of keys; a key without runs is
// absent from the answer.
func (db *DB) readCounters(ctx context.Context, tx *sql.Tx, keys []store.JobPeriod) (map[store.JobPeriod]store.Summary, error) {
	out := map[store.JobPeriod]store.Summary{}
	seen := make(map[store.JobPeriod]bool, len(keys))
	pairs := make([][2]string, 0, len(keys))
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			pairs = append(pairs, [2]string{k.Job, k.Period})
		}
	}
	b, err := json.Marshal(pairs)
	if err != nil {
		return nil, err
	}
	// Not a statement of writeStmts: those are the writer's, and
	// Summaries reads on the readers' connections.
	rows, err := tx.QueryContext(ctx, qCounters, string(b))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var k store.JobPeriod
		var state string
		var n int
		if err := rows.Scan(&k.Job, &k.Period, &state, &n); err != nil {
			return nil, err
		}
		if out[k] == nil {
			out[k] = store.Summary{}
		}
		out[k][talon.State(state)] = n
	}
	return out, rows.Err()
}

// ActiveCounts counts each job's ready and running runs over all periods
// through the index of live runs (store.LiveStates lets SQLite use it).
func (db *DB) ActiveCounts(ctx context.Context, jobs []string) (map[string]int, error) {
	out := map[string]int{}
	if len(jobs) == 0 {
		return out, nil
	}
	b, err := json.Marshal(dedupe(jobs))
	if err != nil {
		return nil, fmt.Errorf("count active runs: %w", err)
	}
	err = db.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT r.job, count(*)
			FROM json_each(?) AS k CROSS JOIN runs AS r ON r.job = k.value
			WHERE r.`+store.LiveStates+` AND r.state IN ('ready', 'running')
			GROUP BY r.job`, string(b))
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

func dedupe(ss []string) []string {
	seen := make(map[string]bool, len(ss))
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// The periods of ListPeriods: of all jobs from the (period, job, id)
// index of runs; of one job from its counters (run_counts_job), as no
// index of runs begins with the job (migration 0012). A (job, period) has
// runs while its counters add up to more than 0.
const (
	listPeriods = `WITH p AS (
			SELECT DISTINCT period FROM runs WHERE ?3 = '' OR period < ?3
			ORDER BY period DESC LIMIT ?2)
		SELECT r.period, r.job, r.state, count(*), max(r.id)
		FROM p JOIN runs AS r ON r.period = p.period
		GROUP BY r.period, r.job, r.state
		ORDER BY r.period DESC, r.job`
	listJobPeriods = `WITH p AS (
			SELECT period FROM run_counts WHERE job = ?1 AND (?3 = '' OR period < ?3)
			GROUP BY period HAVING sum(n) > 0
			ORDER BY period DESC LIMIT ?2)
		SELECT r.period, r.job, r.state, count(*), max(r.id)
		FROM p JOIN runs AS r ON r.period = p.period AND r.job = ?1
		GROUP BY r.period, r.job, r.state
		ORDER BY r.period DESC, r.job`
)

// ListPeriods returns (period, job) rows with counts, newest period first
// (period keys sort by date within a period type). Limit counts periods,
// not rows, so a dashboard gets whole periods.
func (db *DB) ListPeriods(ctx context.Context, f store.PeriodFilter) ([]store.PeriodRow, error) {
	limit := -1 // SQLite: no limit
	if f.Limit > 0 {
		limit = f.Limit
	}
	var out []store.PeriodRow
	err := db.read(ctx, func(tx *sql.Tx) error {
		q := listPeriods
		if f.Job != "" {
			q = listJobPeriods
		}
		rows, err := tx.QueryContext(ctx, q, f.Job, limit, f.Before)
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

// reportable checks, inside a write transaction (which holds SQLite's
// write lock, so the state cannot change before the caller writes), that a
// run may still report progress and artifacts: ErrNotFound for an unknown
// run, ErrConflict for a finished one.
func reportable(ctx context.Context, tx *sql.Tx, runID int64) error {
	var state string
	err := tx.QueryRowContext(ctx, `SELECT state FROM runs WHERE id = ?`, runID).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	if err != nil {
		return err
	}
	return store.Reportable(talon.State(state))
}

// addEvent writes an event about a run that does not change its state
// (a progress report, an artifact): to_state is the state it is in.
func addEvent(ctx context.Context, tx *sql.Tx, runID int64, typ talon.EventType, at time.Time, reason string, detail []byte) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO events (run_id, time, from_state, to_state, reason, type, job, period, detail)
		SELECT id, ?, '', state, ?, ?, job, period, ? FROM runs WHERE id = ?`,
		micros(at), reason, string(typ), string(detail), runID)
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
	err = db.writeEvents(ctx, func(tx *sql.Tx) error {
		if err := reportable(ctx, tx, runID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE runs SET progress = ? WHERE id = ?`, string(b), runID); err != nil {
			return err
		}
		return addEvent(ctx, tx, runID, talon.EventProgress, store.NowOr(p.Updated), p.Message, b)
	})
	if err != nil {
		return fmt.Errorf("set progress of run %d: %w", runID, err)
	}
	return nil
}

// RequestCancel asks the owner of a running run to stop it.
func (db *DB) RequestCancel(ctx context.Context, runID int64, by string) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		var state string
		if err := tx.QueryRowContext(ctx, `SELECT state FROM runs WHERE id = ?`, runID).Scan(&state); errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		} else if err != nil {
			return err
		}
		if talon.State(state) != talon.StateRunning {
			return store.ErrConflict
		}
		_, err := tx.ExecContext(ctx, `UPDATE runs SET cancel_by = ? WHERE id = ?`, by, runID)
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
	err := db.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id, cancel_by FROM runs
			WHERE owner = ? AND cancel_by IS NOT NULL AND state = 'running'`, owner)
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
	var fired int64
	found := true
	err := db.read(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT fired FROM cursors WHERE job = ? AND trigger_name = ?`,
			job, trigger).Scan(&fired)
		if errors.Is(err, sql.ErrNoRows) {
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
	return fromMicros(fired), true, nil
}

// AdvanceCursors moves cursors forward, never back.
func (db *DB) AdvanceCursors(ctx context.Context, cs []store.CursorUpdate) error {
	if len(cs) == 0 {
		return nil
	}
	err := db.write(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `INSERT INTO cursors (job, trigger_name, fired) VALUES (?, ?, ?)
			ON CONFLICT (job, trigger_name) DO UPDATE SET fired = max(fired, excluded.fired)`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, c := range cs {
			if _, err := st.ExecContext(ctx, c.Job, c.Trigger, micros(c.Fired)); err != nil {
				return fmt.Errorf("%s %s: %w", c.Job, c.Trigger, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("advance cursors: %w", err)
	}
	return nil
}

// Heartbeat records that an instance is alive and returns the database
// clock, which for SQLite is the host's clock (see the package comment).
// The stored heartbeat is that clock, not in.Heartbeat, so leases compare
// times from one clock.
func (db *DB) Heartbeat(ctx context.Context, in store.Instance) (time.Time, error) {
	if in.ID == "" {
		return time.Time{}, errors.New("heartbeat: instance without an id")
	}
	now := store.NowOr(time.Time{})
	started := now
	if !in.Started.IsZero() {
		started = in.Started.UTC().Truncate(time.Microsecond)
	}
	err := db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO instances (id, host, pid, started, heartbeat, log_dir)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid,
				started = excluded.started, heartbeat = excluded.heartbeat, log_dir = excluded.log_dir`,
			in.ID, in.Host, in.PID, micros(started), micros(now), in.LogDir)
		return err
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("heartbeat of %s: %w", in.ID, err)
	}
	return now, nil
}

// Instances lists the scheduler instances known to the store, by id.
func (db *DB) Instances(ctx context.Context) ([]store.Instance, error) {
	var out []store.Instance
	err := db.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id, host, pid, started, heartbeat, log_dir FROM instances ORDER BY id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var in store.Instance
			var started, hb int64
			if err := rows.Scan(&in.ID, &in.Host, &in.PID, &started, &hb, &in.LogDir); err != nil {
				return err
			}
			in.Started, in.Heartbeat = fromMicros(started), fromMicros(hb)
			out = append(out, in)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("instances: %w", err)
	}
	return out, nil
}
