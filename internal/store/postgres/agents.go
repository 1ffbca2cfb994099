package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/talonhq/talon/internal/store"
)

// Agents' leases are compared with the database's clock
// (clock_timestamp(), read once per transaction), never a scheduler's or
// an agent's.

const agentCols = `name, session, slots, labels, host, version, registered_by, registered, heartbeat, expires`

const readLiveAgents = `SELECT ` + agentCols + ` FROM agents WHERE expires > clock_timestamp() ORDER BY name`

// dbNow is the database's clock, to the microsecond it stores.
const dbNow = `SELECT date_trunc('microseconds', clock_timestamp())`

func scanAgent(row pgx.Row) (store.Agent, error) {
	var a store.Agent
	var labels []byte
	if err := row.Scan(&a.Name, &a.Session, &a.Slots, &labels, &a.Host, &a.Version, &a.By, &a.Registered, &a.Heartbeat, &a.Expires); err != nil {
		return a, err
	}
	if err := json.Unmarshal(labels, &a.Labels); err != nil {
		return a, fmt.Errorf("agent %s: labels: %w", a.Name, err)
	}
	if len(a.Labels) == 0 {
		a.Labels = nil
	}
	a.Registered, a.Heartbeat, a.Expires = a.Registered.UTC(), a.Heartbeat.UTC(), a.Expires.UTC()
	return a, nil
}

func scanAgents(rows pgx.Rows) ([]store.Agent, error) {
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Agent, error) { return scanAgent(row) })
}

const agentRunCols = `run_id, agent, job, session, state, spec, pid, offered, started, ended, succeeded, exit_code, reason, cancel`

func scanAgentRun(row pgx.Row, extra ...any) (store.AgentRun, error) {
	var r store.AgentRun
	var state string
	var started, ended *time.Time
	err := row.Scan(append([]any{&r.RunID, &r.Agent, &r.Job, &r.Session, &state, &r.Spec, &r.PID, &r.Offered, &started, &ended,
		&r.Succeeded, &r.ExitCode, &r.Reason, &r.Cancel}, extra...)...)
	r.State = store.AgentRunState(state)
	r.Offered, r.Started, r.Ended = r.Offered.UTC(), utc(started), utc(ended)
	return r, err
}

func queryAgentRuns(ctx context.Context, q querier, sql string, args ...any) ([]store.AgentRun, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.AgentRun, error) { return scanAgentRun(row) })
}

func now(ctx context.Context, tx pgx.Tx) (time.Time, error) {
	var t time.Time
	err := tx.QueryRow(ctx, dbNow).Scan(&t)
	return t.UTC(), err
}

func getAgent(ctx context.Context, q querier, name string, lock bool) (store.Agent, bool, error) {
	sql := `SELECT ` + agentCols + ` FROM agents WHERE name = $1`
	if lock {
		sql += ` FOR UPDATE`
	}
	a, err := scanAgent(q.QueryRow(ctx, sql, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return a, false, nil
	}
	return a, err == nil, err
}

func getAgentRun(ctx context.Context, tx pgx.Tx, runID int64) (store.AgentRun, error) {
	r, err := scanAgentRun(tx.QueryRow(ctx, `SELECT `+agentRunCols+` FROM agent_runs WHERE run_id = $1 FOR UPDATE`, runID))
	if errors.Is(err, pgx.ErrNoRows) {
		return r, fmt.Errorf("run %d was not handed to an agent: %w", runID, store.ErrNotFound)
	}
	return r, err
}

func endAgentRun(ctx context.Context, tx pgx.Tx, r *store.AgentRun, ended time.Time, succeeded bool, code int, reason string) error {
	_, err := tx.Exec(ctx, `UPDATE agent_runs SET state = 'ended', spec = NULL, ended = $1, succeeded = $2, exit_code = $3, reason = $4
		WHERE run_id = $5 AND state <> 'ended'`, ended, succeeded, code, reason, r.RunID)
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
	var out store.Agent
	var lost []store.AgentRun
	err = db.tx(ctx, func(tx pgx.Tx) error {
		out, lost = a, nil
		t, err := now(ctx, tx)
		if err != nil {
			return err
		}
		// The name's row is locked, or made, before it is judged: two
		// agents registering one name at once are decided in turn.
		if _, err := tx.Exec(ctx, `INSERT INTO agents (name, session, slots, registered, heartbeat, expires)
			VALUES ($1, '', 0, $2, $2, $2) ON CONFLICT (name) DO NOTHING`, a.Name, t); err != nil {
			return err
		}
		cur, _, err := getAgent(ctx, tx, a.Name, true)
		if err != nil {
			return err
		}
		if cur.Session != "" && cur.Session != a.Session && cur.Session != previous && cur.Live(t) {
			return store.AgentConflict(cur, t)
		}
		out.Registered = t
		if cur.Session == a.Session {
			out.Registered = cur.Registered
		}
		out.Heartbeat, out.Expires = t, t.Add(lease)
		if _, err := tx.Exec(ctx, `UPDATE agents SET session = $2, slots = $3, labels = $4, host = $5, version = $6,
				registered_by = $7, registered = $8, heartbeat = $9, expires = $10 WHERE name = $1`,
			a.Name, a.Session, a.Slots, labels, a.Host, a.Version, a.By, out.Registered, t, out.Expires); err != nil {
			return err
		}
		open, err := queryAgentRuns(ctx, tx, `SELECT `+agentRunCols+` FROM agent_runs
			WHERE agent = $1 AND session <> $2 AND state <> 'ended' ORDER BY run_id FOR UPDATE`, a.Name, a.Session)
		if err != nil {
			return err
		}
		for _, r := range open {
			if err := endAgentRun(ctx, tx, &r, t, false, -1, store.LostAgentReason(r, &out, time.Time{}, t)); err != nil {
				return err
			}
			lost = append(lost, r)
		}
		return nil
	})
	if err != nil {
		return store.Agent{}, nil, fmt.Errorf("register agent %s: %w", a.Name, err)
	}
	return out, lost, nil
}

// RenewAgent renews an agent session's lease (see store.Store).
func (db *DB) RenewAgent(ctx context.Context, name, session string, lease time.Duration) (store.Agent, error) {
	var a store.Agent
	err := db.tx(ctx, func(tx pgx.Tx) error {
		var err error
		a, err = scanAgent(tx.QueryRow(ctx, `UPDATE agents SET heartbeat = date_trunc('microseconds', clock_timestamp()),
				expires = date_trunc('microseconds', clock_timestamp()) + $3 * interval '1 microsecond'
			WHERE name = $1 AND session = $2 AND expires > clock_timestamp()
			RETURNING `+agentCols, name, session, lease.Microseconds()))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("session %s is not agent %s's live session: %w", session, name, store.ErrNotFound)
		}
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
	var t time.Time
	err := db.tx(ctx, func(tx pgx.Tx) error {
		var err error
		if t, err = now(ctx, tx); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+agentCols+` FROM agents WHERE session <> '' ORDER BY name`)
		if err != nil {
			return err
		}
		out, err = scanAgents(rows)
		return err
	})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("agents: %w", err)
	}
	return out, t, nil
}

// OfferAgentRun hands a run to an agent's live session.
func (db *DB) OfferAgentRun(ctx context.Context, o store.AgentRun) (store.AgentRun, error) {
	var r store.AgentRun
	err := db.tx(ctx, func(tx pgx.Tx) error {
		t, err := now(ctx, tx)
		if err != nil {
			return err
		}
		// Shared lock: a registration of a new session waits, so it
		// sees this run and ends it lost.
		a, found, err := scanAgentOrNot(tx.QueryRow(ctx, `SELECT `+agentCols+` FROM agents WHERE name = $1 FOR SHARE`, o.Agent))
		if err != nil {
			return err
		}
		if !found || a.Session == "" || !a.Live(t) {
			return fmt.Errorf("agent %s is not connected: %w", o.Agent, store.ErrConflict)
		}
		r = store.AgentRun{RunID: o.RunID, Agent: o.Agent, Job: o.Job, Session: a.Session, State: store.AgentOffered, Spec: o.Spec, Offered: t}
		tag, err := tx.Exec(ctx, `INSERT INTO agent_runs (run_id, agent, job, session, state, spec, offered)
			VALUES ($1, $2, $3, $4, 'offered', $5, $6) ON CONFLICT (run_id) DO NOTHING`, r.RunID, r.Agent, r.Job, r.Session, r.Spec, t)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("run %d was already handed to an agent: %w", r.RunID, store.ErrConflict)
		}
		return nil
	})
	if err != nil {
		return store.AgentRun{}, fmt.Errorf("hand run %d to agent %s: %w", o.RunID, o.Agent, err)
	}
	return r, nil
}

func scanAgentOrNot(row pgx.Row) (store.Agent, bool, error) {
	a, err := scanAgent(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return a, false, nil
	}
	return a, err == nil, err
}

// TakeAgentRuns moves offered runs to taken and returns the session's
// runs of ids not yet started.
func (db *DB) TakeAgentRuns(ctx context.Context, agent, session string, ids []int64) ([]store.AgentRun, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var out []store.AgentRun
	err := db.tx(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = queryAgentRuns(ctx, tx, `UPDATE agent_runs SET state = 'taken'
			WHERE run_id = ANY($1) AND agent = $2 AND session = $3 AND state IN ('offered', 'taken')
			RETURNING `+agentRunCols, sortedIDs(ids), agent, session)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("agent %s takes runs: %w", agent, err)
	}
	slices.SortFunc(out, func(a, b store.AgentRun) int { return cmp.Compare(a.RunID, b.RunID) })
	return out, nil
}

// sessionRun reads and locks a run for a move by session: ErrConflict
// when it is another session's or has ended.
func sessionRun(ctx context.Context, tx pgx.Tx, runID int64, session string) (store.AgentRun, error) {
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
	err := db.tx(ctx, func(tx pgx.Tx) error {
		var err error
		if r, err = sessionRun(ctx, tx, runID, session); err != nil {
			return err
		}
		if r.State == store.AgentStarted {
			return nil // a report sent again
		}
		t, err := now(ctx, tx)
		if err != nil {
			return err
		}
		r.State, r.PID, r.Started, r.Spec = store.AgentStarted, pid, t, nil
		_, err = tx.Exec(ctx, `UPDATE agent_runs SET state = 'started', pid = $2, started = $3, spec = NULL WHERE run_id = $1`, runID, pid, t)
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
	err := db.tx(ctx, func(tx pgx.Tx) error {
		var err error
		if r, err = sessionRun(ctx, tx, runID, session); err != nil {
			return err
		}
		t, err := now(ctx, tx)
		if err != nil {
			return err
		}
		return endAgentRun(ctx, tx, &r, store.EndedAgent(r, t, o.Ago), o.Succeeded, o.ExitCode, o.Reason)
	})
	if err != nil {
		return store.AgentRun{}, fmt.Errorf("record the end of run %d: %w", runID, err)
	}
	return r, nil
}

// CancelAgentRun asks the agent to stop a run.
func (db *DB) CancelAgentRun(ctx context.Context, runID int64, reason string) (store.AgentRun, error) {
	var r store.AgentRun
	err := db.tx(ctx, func(tx pgx.Tx) error {
		var err error
		if r, err = getAgentRun(ctx, tx, runID); err != nil {
			return err
		}
		switch {
		case r.State == store.AgentEnded || r.Cancel != "":
			return nil
		case r.State == store.AgentOffered:
			t, err := now(ctx, tx)
			if err != nil {
				return err
			}
			return endAgentRun(ctx, tx, &r, t, false, -1, reason)
		}
		r.Cancel = reason
		_, err = tx.Exec(ctx, `UPDATE agent_runs SET cancel = $2 WHERE run_id = $1`, runID, reason)
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
	err := db.tx(ctx, func(tx pgx.Tx) error {
		var err error
		if r, err = getAgentRun(ctx, tx, runID); err != nil {
			return err
		}
		if r.State != store.AgentOffered {
			return fmt.Errorf("run %d is %s: %w", runID, r.State, store.ErrConflict)
		}
		t, err := now(ctx, tx)
		if err != nil {
			return err
		}
		return endAgentRun(ctx, tx, &r, t, false, -1, reason)
	})
	if err != nil {
		return store.AgentRun{}, fmt.Errorf("withdraw run %d from its agent: %w", runID, err)
	}
	return r, nil
}

// expiredQuery finds the open runs whose session is not their agent's
// live one, with that agent's session and heartbeat.
const expiredQuery = `SELECT r.run_id, r.agent, r.job, r.session, r.state, r.spec, r.pid, r.offered, r.started, r.ended,
		r.succeeded, r.exit_code, r.reason, r.cancel, a.session, a.heartbeat
	FROM agent_runs r LEFT JOIN agents a ON a.name = r.agent
	WHERE r.state <> 'ended' AND (a.name IS NULL OR a.session <> r.session OR a.expires <= %s)
	ORDER BY r.run_id`

type expired struct {
	run     store.AgentRun
	session *string
	beat    *time.Time
}

// queryExpired runs expiredQuery at t, or at the database's clock when
// t is zero; lock locks the runs found.
func queryExpired(ctx context.Context, q querier, t time.Time, lock bool) ([]expired, error) {
	var args []any
	sql := fmt.Sprintf(expiredQuery, "clock_timestamp()")
	if !t.IsZero() {
		sql, args = fmt.Sprintf(expiredQuery, "$1"), []any{t}
	}
	if lock {
		sql += ` FOR UPDATE OF r`
	}
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (expired, error) {
		var x expired
		var err error
		x.run, err = scanAgentRun(row, &x.session, &x.beat)
		return x, err
	})
}

// pruneEvery is how often ExpireAgentRuns forgets what is past
// store.AgentRetention.
const pruneEvery = 10 * time.Minute

// ExpireAgentRuns ends lost the open runs of sessions that are gone. It
// writes only when it has something to do: every scheduler watching an
// agent's run calls it about every second.
func (db *DB) ExpireAgentRuns(ctx context.Context) ([]store.AgentRun, error) {
	var xs []expired
	err := db.read(ctx, func(q querier) error {
		var err error
		xs, err = queryExpired(ctx, q, time.Time{}, false)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("expire agents' runs: %w", err)
	}
	prune := time.Since(time.UnixMicro(db.agentPrune.Load())) >= pruneEvery
	if len(xs) == 0 && !prune {
		return nil, nil
	}
	var out []store.AgentRun
	err = db.tx(ctx, func(tx pgx.Tx) error {
		out = nil
		t, err := now(ctx, tx)
		if err != nil {
			return err
		}
		xs, err := queryExpired(ctx, tx, t, true)
		if err != nil {
			return err
		}
		for _, x := range xs {
			var a *store.Agent
			if x.session != nil && *x.session != "" {
				a = &store.Agent{Name: x.run.Agent, Session: *x.session}
			}
			beat := time.Time{}
			if x.beat != nil && a != nil && a.Session == x.run.Session {
				beat = x.beat.UTC()
			}
			r := x.run
			if err := endAgentRun(ctx, tx, &r, t, false, -1, store.LostAgentReason(r, a, beat, t)); err != nil {
				return err
			}
			out = append(out, r)
		}
		if prune {
			old := t.Add(-store.AgentRetention)
			if _, err := tx.Exec(ctx, `DELETE FROM agent_runs WHERE state = 'ended' AND ended < $1`, old); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `DELETE FROM agents WHERE expires < $1
				AND NOT EXISTS (SELECT 1 FROM agent_runs r WHERE r.agent = agents.name AND r.state <> 'ended')`, old); err != nil {
				return err
			}
			db.agentPrune.Store(time.Now().UnixMicro())
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
	q := `SELECT ` + agentRunCols + ` FROM agent_runs WHERE true`
	var args []any
	if len(f.IDs) > 0 {
		args = append(args, f.IDs)
		q += fmt.Sprintf(` AND run_id = ANY($%d)`, len(args))
	}
	if f.Agent != "" {
		args = append(args, f.Agent)
		q += fmt.Sprintf(` AND agent = $%d`, len(args))
	}
	if f.Open {
		q += ` AND state <> 'ended'`
	}
	q += ` ORDER BY run_id`
	var out []store.AgentRun
	err := db.read(ctx, func(qr querier) error {
		var err error
		out, err = queryAgentRuns(ctx, qr, q, args...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("agents' runs: %w", err)
	}
	return out, nil
}
