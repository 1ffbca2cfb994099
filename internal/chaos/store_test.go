//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// runRow is a run as the store has it, with its history (events in the
// order they were written).
type runRow struct {
	id       int64
	job      string
	period   string
	state    string
	attempt  int
	trigger  string
	fireTime time.Time // zero for runs without one
	retryOf  int64     // 0 when none
	created  time.Time
	finished time.Time
	reason   string
	owner    string
	events   []eventRow
}

// eventRow is a transition. at is when the store wrote it (a column the
// harness adds, stamped by the database), falling back to Talon's own
// stamp for events written before the column existed.
type eventRow struct {
	at       time.Time
	talonAt  time.Time
	from, to string
	reason   string
}

func (r *runRow) terminal() bool {
	return r.state == "succeeded" || r.state == "failed" || r.state == "skipped"
}

// lost is the run's transition to failed with reason "lost: …", if any.
func (r *runRow) lost() *eventRow {
	for i := range r.events {
		e := &r.events[i]
		if e.to == "failed" && strings.HasPrefix(e.reason, "lost:") {
			return e
		}
	}
	return nil
}

// recovered is the first time, at or after t, another scheduler took
// over the run: declared it lost, or re-attached it (a run that ended
// while no scheduler watched it is re-attached with its outcome).
func (r *runRow) recovered(t time.Time) *eventRow {
	for i := range r.events {
		e := &r.events[i]
		if e.at.Before(t) {
			continue
		}
		if (e.to == "failed" && strings.HasPrefix(e.reason, "lost:")) || strings.HasPrefix(e.reason, "re-attached") {
			return e
		}
	}
	return nil
}

// spans are the intervals in which the run's latest event matched in:
// from such an event to the next event that does not (or, for the last,
// to the end of time, as far as the store knows).
func (r *runRow) spans(in func(eventRow) bool) []interval {
	var out []interval
	var from time.Time
	open := false
	for _, e := range r.events {
		switch m := in(e); {
		case m && !open:
			from, open = e.at, true
		case !m && open:
			out = append(out, interval{from, e.at})
			open = false
		}
	}
	if open {
		out = append(out, interval{from, time.Unix(1<<40, 0)})
	}
	return out
}

// ended is when the run reached its terminal state (zero if it has not).
func (r *runRow) ended() time.Time {
	for i := len(r.events) - 1; i >= 0; i-- {
		switch r.events[i].to {
		case "succeeded", "failed", "skipped":
			return r.events[i].at
		}
	}
	return time.Time{}
}

// runningAt reports whether the store had the run ready or running at t.
func (r *runRow) runningAt(t time.Time) bool {
	state := ""
	for _, e := range r.events {
		if e.at.After(t) {
			break
		}
		state = e.to
	}
	return state == "ready" || state == "running"
}

// addEventStamp makes the store stamp every event with the database's
// clock when it is written. Talon stamps events with the time its step
// began, which can be earlier than the write; a check of "nothing after
// the run was declared lost" needs the instant the declaration was made.
// The column is added without a default first, so rows already written
// stay unstamped instead of all getting the time of the ALTER.
func (h *harness) addEventStamp(ctx context.Context) error {
	conn, err := h.pg.connect(ctx, "talon")
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, q := range []string{
		`ALTER TABLE events ADD COLUMN IF NOT EXISTS chaos_at timestamptz`,
		`ALTER TABLE events ALTER COLUMN chaos_at SET DEFAULT clock_timestamp()`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

// readStore reads every run and event, and the scheduler instances.
func (h *harness) readStore(ctx context.Context) (map[int64]*runRow, map[string]int, error) {
	conn, err := h.pg.connect(ctx, "talon")
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close(ctx)
	runs := map[int64]*runRow{}
	rows, err := conn.Query(ctx, `SELECT id, job, period, state, attempt, trigger_name, fire_time,
		retry_of, created, finished, reason, owner FROM runs ORDER BY id`)
	if err != nil {
		return nil, nil, fmt.Errorf("read runs: %w", err)
	}
	for rows.Next() {
		r := &runRow{}
		var fire, fin *time.Time
		var retryOf *int64
		if err := rows.Scan(&r.id, &r.job, &r.period, &r.state, &r.attempt, &r.trigger, &fire,
			&retryOf, &r.created, &fin, &r.reason, &r.owner); err != nil {
			return nil, nil, fmt.Errorf("read runs: %w", err)
		}
		if fire != nil {
			r.fireTime = *fire
		}
		if fin != nil {
			r.finished = *fin
		}
		if retryOf != nil {
			r.retryOf = *retryOf
		}
		runs[r.id] = r
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read runs: %w", err)
	}
	rows, err = conn.Query(ctx, `SELECT run_id, time, chaos_at, from_state, to_state, reason FROM events ORDER BY id`)
	if err != nil {
		return nil, nil, fmt.Errorf("read events: %w", err)
	}
	for rows.Next() {
		var id int64
		var e eventRow
		var at *time.Time
		if err := rows.Scan(&id, &e.talonAt, &at, &e.from, &e.to, &e.reason); err != nil {
			return nil, nil, fmt.Errorf("read events: %w", err)
		}
		e.at = e.talonAt
		if at != nil {
			e.at = *at
		}
		if r := runs[id]; r != nil {
			r.events = append(r.events, e)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read events: %w", err)
	}
	pids := map[string]int{}
	rows, err = conn.Query(ctx, `SELECT id, pid FROM instances`)
	if err != nil {
		return nil, nil, fmt.Errorf("read instances: %w", err)
	}
	for rows.Next() {
		var id string
		var pid int
		if err := rows.Scan(&id, &pid); err != nil {
			return nil, nil, fmt.Errorf("read instances: %w", err)
		}
		pids[id] = pid
	}
	return runs, pids, rows.Err()
}

// unsettled counts the runs that are not in a terminal state.
func (h *harness) unsettled(ctx context.Context) (int, error) {
	conn, err := h.pg.connect(ctx, "talon")
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM runs WHERE state NOT IN ('succeeded', 'failed', 'skipped')`).Scan(&n)
	return n, err
}
