package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/talonhq/talon/internal/store"
)

// The database's clock, for agents' leases, is this host's: an SQLite
// file is shared only by processes on one host (see the package doc).

const agentCols = `name, session, slots, labels, host, version, registered_by, registered, heartbeat, expires`

func scanAgent(row interface{ Scan(...any) error }) (store.Agent, error) {
	var a store.Agent
	var labels string
	var reg, beat, exp int64
	if err := row.Scan(&a.Name, &a.Session, &a.Slots, &labels, &a.Host, &a.Version, &a.By, &reg, &beat, &exp); err != nil {
		return a, err
	}
	if err := json.Unmarshal([]byte(labels), &a.Labels); err != nil {
		return a, fmt.Errorf("agent %s: labels: %w", a.Name, err)
	}
	if len(a.Labels) == 0 {
		a.Labels = nil
	}
	a.Registered, a.Heartbeat, a.Expires = fromMicros(reg), fromMicros(beat), fromMicros(exp)
	return a, nil
}

const agentRunCols = `run_id, agent, job, session, state, spec, pid, offered, started, ended, succeeded, exit_code, reason, cancel`

func scanAgentRun(row interface{ Scan(...any) error }) (store.AgentRun, error) {
	var r store.AgentRun
	var state string
	var offered int64
	var started, ended sql.NullInt64
	err := row.Scan(&r.RunID, &r.Agent, &r.Job, &r.Session, &state, &r.Spec, &r.PID, &offered, &started, &ended,
		&r.Succeeded, &r.ExitCode, &r.Reason, &r.Cancel)
	r.State = store.AgentRunState(state)
	r.Offered, r.Started, r.Ended = fromMicros(offered), fromNullMicros(started), fromNullMicros(ended)
	return r, err
}

func queryAgentRuns(ctx context.Context, q querier, query string, args ...any) ([]store.AgentRun, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.AgentRun
	for rows.Next() {
		r, err := scanAgentRun(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func getAgent(ctx context.Context, tx *sql.Tx, name string) (store.Agent, bool, error) {
	a, err := scanAgent(tx.QueryRowContext(ctx, `SELECT `+agentCols+` FROM agents WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return a, false, nil
	}
	return a, err == nil, err
}

func getAgentRun(ctx context.Context, tx *sql.Tx, runID int64) (store.AgentRun, error) {
	r, err := scanAgentRun(tx.QueryRowContext(ctx, `SELECT `+agentRunCols+` FROM agent_runs WHERE run_id = ?`, runID))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("run %d was not handed to an agent: %w", runID, store.ErrNotFound)
	}
	return r, err
}

// endAgentRun ends an open run with an outcome at ended.
func endAgentRun(ctx context.Context, tx *sql.Tx, r *store.AgentRun, ended time.Time, succeeded bool, code int, reason string) error {
	_, err := tx.ExecContext(ctx, `UPDATE agent_runs SET state = 'ended', spec = NULL, ended = ?, succeeded = ?, exit_code = ?, reason = ?
		WHERE run_id = ? AND state <> 'ended'`, micros(ended), succeeded, code, reason, r.RunID)
	r.State, r.Spec, r.Ended, r.Succeeded, r.ExitCode, r.Reason = store.AgentEnded, nil, ended, succeeded, code, reason
	return err
}

// RegisterAgent starts an agent's session (see store.Store).
func (db *DB) RegisterAgent(ctx context.Context, a store.Agent, previous string, lease time.Duration) (store.Agent, []store.AgentRun, error) {
	if err := store.CheckAgent(a); err != nil {
		return store.Agent{}, nil, err
	}
	labels, err := json.Marshal(a.Labels)
	if err != nil {
		return store.Agent{}, nil, fmt.Errorf("agent %s: labels: %w", a.Name, err)
	}
	var lost []store.AgentRun
	err = db.write(ctx, func(tx *sql.Tx) error {
		lost = nil
		now := store.NowOr(time.Time{})
		cur, found, err := getAgent(ctx, tx, a.Name)
		if err != nil {
			return err
		}
		if found && cur.Session != a.Session && cur.Session != previous && cur.Live(now) {
			return store.AgentConflict(cur, now)
		}
		a.Registered = now
		if found && cur.Session == a.Session {
			a.Registered = cur.Registered
		}
		a.Heartbeat, a.Expires = now, now.Add(lease)
		if _, err := tx.ExecContext(ctx, `INSERT INTO agents (`+agentCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET session = excluded.session, slots = excluded.slots, labels = excluded.labels,
				host = excluded.host, version = excluded.version, registered_by = excluded.registered_by,
				registered = excluded.registered, heartbeat = excluded.heartbeat, expires = excluded.expires`,
			a.Name, a.Session, a.Slots, string(labels), a.Host, a.Version, a.By, micros(a.Registered), micros(now), micros(a.Expires)); err != nil {
			return err
		}
		open, err := queryAgentRuns(ctx, tx, `SELECT `+agentRunCols+` FROM agent_runs
			WHERE agent = ? AND session <> ? AND state <> 'ended' ORDER BY run_id`, a.Name, a.Session)
		if err != nil {
			return err
		}
		for _, r := range open {
			if err := endAgentRun(ctx, tx, &r, now, false, -1, store.LostAgentReason(r, &a, time.Time{}, now)); err != nil {
				return err
			}
			lost = append(lost, r)
		}
		return nil
	})
	if err != nil {
		return store.Agent{}, nil, fmt.Errorf("register agent %s: %w", a.Name, err)
	}
	return a, lost, nil
}

// RenewAgent renews an agent session's lease (see store.Store).
func (db *DB) RenewAgent(ctx context.Context, name, session string, lease time.Duration) (store.Agent, error) {
	var a store.Agent
	err := db.write(ctx, func(tx *sql.Tx) error {
		now := store.NowOr(time.Time{})
		res, err := tx.ExecContext(ctx, `UPDATE agents SET heartbeat = ?, expires = ? WHERE name = ? AND session = ? AND expires > ?`,
			micros(now), micros(now.Add(lease)), name, session, micros(now))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("session %s is not agent %s's live session: %w", session, name, store.ErrNotFound)
		}
		a, _, err = getAgent(ctx, tx, name)
		return err
	})
	if err != nil {
		return store.Agent{}, fmt.Errorf("renew agent %s: %w", name, err)
	}
	return a, nil
}

// Agents lists the agents and the database's now.
func (db *DB) Agents(ctx context.Context) ([]store.Agent, time.Time, error) {
	var out []store.Agent
	now := store.NowOr(time.Time{})
	err := db.read(ctx, func(tx *sql.Tx) error {
		out = nil
		rows, err := tx.QueryContext(ctx, `SELECT `+agentCols+` FROM agents ORDER BY name`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			a, err := scanAgent(rows)
			if err != nil {
				return err
			}
			out = append(out, a)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("agents: %w", err)
	}
	return out, now, nil
}

// liveAgents reads the agents whose lease holds at now, in tx.
func liveAgents(ctx context.Context, tx *sql.Tx, now time.Time) ([]store.Agent, error) {
	rows, err := tx.QueryContext(ctx, `SELECT `+agentCols+` FROM agents WHERE expires > ? ORDER BY name`, micros(now))
	if err != nil {
		return nil, fmt.Errorf("read agents: %w", err)
	}
	defer rows.Close()
	var out []store.Agent
	for rows.Next() {
		a, err := scanAgent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// OfferAgentRun hands a run to an agent's live session.
func (db *DB) OfferAgentRun(ctx context.Context, o store.AgentRun) (store.AgentRun, error) {
	var r store.AgentRun
	err := db.write(ctx, func(tx *sql.Tx) error {
		now := store.NowOr(time.Time{})
		a, found, err := getAgent(ctx, tx, o.Agent)
		if err != nil {
			return err
		}
		if !found || !a.Live(now) {
			return fmt.Errorf("agent %s is not connected: %w", o.Agent, store.ErrConflict)
		}
		r = store.AgentRun{RunID: o.RunID, Agent: o.Agent, Job: o.Job, Session: a.Session, State: store.AgentOffered, Spec: o.Spec, Offered: now}
		res, err := tx.ExecContext(ctx, `INSERT INTO agent_runs (run_id, agent, job, session, state, spec, offered)
			VALUES (?, ?, ?, ?, 'offered', ?, ?) ON CONFLICT (run_id) DO NOTHING`, r.RunID, r.Agent, r.Job, r.Session, r.Spec, micros(now))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("run %d was already handed to an agent: %w", r.RunID, store.ErrConflict)
		}
		return nil
	})
	if err != nil {
		return store.AgentRun{}, fmt.Errorf("hand run %d to agent %s: %w", o.RunID, o.Agent, err)
	}
	return r, nil
}

// TakeAgentRuns moves offered runs to taken and returns the session's
// runs of ids not yet started.
func (db *DB) TakeAgentRuns(ctx context.Context, agent, session string, ids []int64) ([]store.AgentRun, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	in, args := inList(ids)
	var out []store.AgentRun
	err := db.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE agent_runs SET state = 'taken'
			WHERE run_id IN (`+in+`) AND agent = ? AND session = ? AND state = 'offered'`, append(args, agent, session)...); err != nil {
			return err
		}
		var err error
		out, err = queryAgentRuns(ctx, tx, `SELECT `+agentRunCols+` FROM agent_runs
			WHERE run_id IN (`+in+`) AND agent = ? AND session = ? AND state = 'taken' ORDER BY run_id`, append(args, agent, session)...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("agent %s takes runs: %w", agent, err)
	}
	return out, nil
}

func inList(ids []int64) (string, []any) {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return "?" + strings.Repeat(", ?", len(ids)-1), args
}

// sessionRun reads a run for a move by session: ErrConflict when it is
// another session's or has ended.
func sessionRun(ctx context.Context, tx *sql.Tx, runID int64, session string) (store.AgentRun, error) {
	r, err := getAgentRun(ctx, tx, runID)
	if err != nil {
		return r, err
	}
	if r.Session != session {
		return r, fmt.Errorf("run %d was handed to another session of agent %s: %w", runID, r.Agent, store.ErrConflict)
	}
	if r.State == store.AgentEnded {
		return r, fmt.Errorf("run %d has ended (%s): %w", runID, r.Reason, store.ErrConflict)
	}
	return r, nil
}

// StartAgentRun records a run's process.
func (db *DB) StartAgentRun(ctx context.Context, runID int64, session string, pid int) (store.AgentRun, error) {
	var r store.AgentRun
	err := db.write(ctx, func(tx *sql.Tx) error {
		var err error
		if r, err = sessionRun(ctx, tx, runID, session); err != nil {
			return err
		}
		if r.State == store.AgentStarted {
			return nil // a report sent again
		}
		now := store.NowOr(time.Time{})
		r.State, r.PID, r.Started, r.Spec = store.AgentStarted, pid, now, nil
		_, err = tx.ExecContext(ctx, `UPDATE agent_runs SET state = 'started', pid = ?, started = ?, spec = NULL WHERE run_id = ?`,
			pid, micros(now), runID)
		return err
	})
	if err != nil {
		return store.AgentRun{}, fmt.Errorf("record the start of run %d: %w", runID, err)
	}
	return r, nil
}

// EndAgentRun records how a run ended.
func (db *DB) EndAgentRun(ctx context.Context, runID int64, session string, o store.AgentOutcome) (store.AgentRun, error) {
	var r store.AgentRun
	err := db.write(ctx, func(tx *sql.Tx) error {
		var err error
		if r, err = sessionRun(ctx, tx, runID, session); err != nil {
			return err
		}
		now := store.NowOr(time.Time{})
		return endAgentRun(ctx, tx, &r, store.EndedAgent(r, now, o.Ago), o.Succeeded, o.ExitCode, o.Reason)
	})
	if err != nil {
		return store.AgentRun{}, fmt.Errorf("record the end of run %d: %w", runID, err)
	}
	return r, nil
}

// CancelAgentRun asks the agent to stop a run.
func (db *DB) CancelAgentRun(ctx context.Context, runID int64, reason string) (store.AgentRun, error) {
	var r store.AgentRun
	err := db.write(ctx, func(tx *sql.Tx) error {
		var err error
		if r, err = getAgentRun(ctx, tx, runID); err != nil {
			return err
		}
		switch {
		case r.State == store.AgentEnded || r.Cancel != "":
			return nil
		case r.State == store.AgentOffered:
			return endAgentRun(ctx, tx, &r, store.NowOr(time.Time{}), false, -1, reason)
		}
		r.Cancel = reason
		_, err = tx.ExecContext(ctx, `UPDATE agent_runs SET cancel = ? WHERE run_id = ?`, reason, runID)
		return err
	})
	if err != nil {
		return store.AgentRun{}, fmt.Errorf("cancel run %d on its agent: %w", runID, err)
	}
	return r, nil
}

// WithdrawAgentRun ends a run its agent has not taken.
func (db *DB) WithdrawAgentRun(ctx context.Context, runID int64, reason string) (store.AgentRun, error) {
	var r store.AgentRun
	err := db.write(ctx, func(tx *sql.Tx) error {
		var err error
		if r, err = getAgentRun(ctx, tx, runID); err != nil {
			return err
		}
		if r.State != store.AgentOffered {
			return fmt.Errorf("run %d is %s: %w", runID, r.State, store.ErrConflict)
		}
		return endAgentRun(ctx, tx, &r, store.NowOr(time.Time{}), false, -1, reason)
	})
	if err != nil {
		return store.AgentRun{}, fmt.Errorf("withdraw run %d from its agent: %w", runID, err)
	}
	return r, nil
}

// expiredQuery finds the open runs whose session is not their agent's
// live one, with that agent's session, heartbeat and expiry.
const expiredQuery = `SELECT r.run_id, r.agent, r.job, r.session, r.state, r.spec, r.pid, r.offered, r.started, r.ended,
		r.succeeded, r.exit_code, r.reason, r.cancel, a.session, a.heartbeat
	FROM agent_runs r LEFT JOIN agents a ON a.name = r.agent
	WHERE r.state <> 'ended' AND (a.name IS NULL OR a.session <> r.session OR a.expires <= ?)
	ORDER BY r.run_id`

type expired struct {
	run     store.AgentRun
	session sql.NullString
	beat    sql.NullInt64
}

func queryExpired(ctx context.Context, q querier, now time.Time) ([]expired, error) {
	rows, err := q.QueryContext(ctx, expiredQuery, micros(now))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []expired
	for rows.Next() {
		var x expired
		var state string
		var offered int64
		var started, ended sql.NullInt64
		r := &x.run
		if err := rows.Scan(&r.RunID, &r.Agent, &r.Job, &r.Session, &state, &r.Spec, &r.PID, &offered, &started, &ended,
			&r.Succeeded, &r.ExitCode, &r.Reason, &r.Cancel, &x.session, &x.beat); err != nil {
			return nil, err
		}
		r.State = store.AgentRunState(state)
		r.Offered, r.Started, r.Ended = fromMicros(offered), fromNullMicros(started), fromNullMicros(ended)
		out = append(out, x)
	}
	return out, rows.Err()
}

// pruneEvery is how often ExpireAgentRuns forgets what is past
// store.AgentRetention.
const pruneEvery = 10 * time.Minute

// ExpireAgentRuns ends lost the open runs of sessions that are gone. It
// writes only when it has something to do: every scheduler watching an
// agent's run calls it about every second.
func (db *DB) ExpireAgentRuns(ctx context.Context) ([]store.AgentRun, error) {
	now := store.NowOr(time.Time{})
	var xs []expired
	err := db.read(ctx, func(tx *sql.Tx) error {
		var err error
		xs, err = queryExpired(ctx, tx, now)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("expire agents' runs: %w", err)
	}
	prune := now.Sub(time.UnixMicro(db.agentPrune.Load())) >= pruneEvery
	if len(xs) == 0 && !prune {
		return nil, nil
	}
	var out []store.AgentRun
	err = db.write(ctx, func(tx *sql.Tx) error {
		out = nil
		now := store.NowOr(time.Time{})
		xs, err := queryExpired(ctx, tx, now)
		if err != nil {
			return err
		}
		for _, x := range xs {
			var a *store.Agent
			if x.session.Valid {
				a = &store.Agent{Name: x.run.Agent, Session: x.session.String}
			}
			beat := time.Time{}
			if x.beat.Valid && a != nil && a.Session == x.run.Session {
				beat = fromMicros(x.beat.Int64)
			}
			r := x.run
			if err := endAgentRun(ctx, tx, &r, now, false, -1, store.LostAgentReason(r, a, beat, now)); err != nil {
				return err
			}
			out = append(out, r)
		}
		if prune {
			old := micros(now.Add(-store.AgentRetention))
			if _, err := tx.ExecContext(ctx, `DELETE FROM agent_runs WHERE state = 'ended' AND ended < ?`, old); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM agents WHERE expires < ?
				AND NOT EXISTS (SELECT 1 FROM agent_runs r WHERE r.agent = agents.name AND r.state <> 'ended')`, old); err != nil {
				return err
			}
			db.agentPrune.Store(micros(now))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("expire agents' runs: %w", err)
	}
	return out, nil
}

// AgentRuns lists the runs handed to agents that match f.
func (db *DB) AgentRuns(ctx context.Context, f store.AgentRunFilter) ([]store.AgentRun, error) {
	q := `SELECT ` + agentRunCols + ` FROM agent_runs WHERE 1 = 1`
	var args []any
	if len(f.IDs) > 0 {
		in, ids := inList(f.IDs)
		q += ` AND run_id IN (` + in + `)`
		args = append(args, ids...)
	}
	if f.Agent != "" {
		q += ` AND agent = ?`
		args = append(args, f.Agent)
	}
	if f.Open {
		q += ` AND state <> 'ended'`
	}
	q += ` ORDER BY run_id`
	var out []store.AgentRun
	err := db.read(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = queryAgentRuns(ctx, tx, q, args...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("agents' runs: %w", err)
	}
	return out, nil
}
