package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/store"
)

// lockJob takes one job's advisory lock, the one Transition takes for
// every run of the job entering ready (see lockJobs).
const lockJob = `SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.talon.job.' || $1))`

// pausedOfRuns reads the pauses of the jobs of the given runs.
const pausedOfRuns = `SELECT job, paused_by, reason, since FROM paused_jobs
	WHERE job IN (SELECT job FROM runs WHERE id = ANY($1))`

func scanPauses(rows pgx.Rows) ([]talon.Pause, error) {
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (talon.Pause, error) {
		var p talon.Pause
		err := row.Scan(&p.Job, &p.By, &p.Reason, &p.Since)
		p.Since = p.Since.UTC()
		return p, err
	})
}

// PauseJob pauses a job under its advisory lock, so that no run of it
// enters ready once the pause is committed; a job already paused keeps
// its pause.
func (db *DB) PauseJob(ctx context.Context, p talon.Pause) (talon.Pause, bool, error) {
	p.Since = store.NowOr(p.Since)
	var out talon.Pause
	var created bool
	err := db.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, lockJob, p.Job); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO paused_jobs (job, paused_by, reason, since)
			VALUES ($1, $2, $3, $4) ON CONFLICT (job) DO NOTHING`, p.Job, p.By, p.Reason, p.Since)
		if err != nil {
			return err
		}
		created = tag.RowsAffected() == 1
		out, err = pausedJob(ctx, tx, p.Job)
		return err
	})
	if err != nil {
		return talon.Pause{}, false, fmt.Errorf("pause job %s: %w", p.Job, err)
	}
	return out, created, nil
}

func pausedJob(ctx context.Context, tx pgx.Tx, job string) (talon.Pause, error) {
	rows, err := tx.Query(ctx, `SELECT job, paused_by, reason, since FROM paused_jobs WHERE job = $1`, job)
	if err != nil {
		return talon.Pause{}, err
	}
	ps, err := scanPauses(rows)
	if err != nil {
		return talon.Pause{}, err
	}
	if len(ps) == 0 {
		return talon.Pause{}, fmt.Errorf("job %s is not paused: %w", job, store.ErrNotFound)
	}
	return ps[0], nil
}

// ResumeJob ends a job's pause.
func (db *DB) ResumeJob(ctx context.Context, job string) (talon.Pause, error) {
	var out talon.Pause
	err := db.tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `DELETE FROM paused_jobs WHERE job = $1 RETURNING job, paused_by, reason, since`, job)
		if err != nil {
			return err
		}
		ps, err := scanPauses(rows)
		if err != nil {
			return err
		}
		if len(ps) == 0 {
			return fmt.Errorf("job %s is not paused: %w", job, store.ErrNotFound)
		}
		out = ps[0]
		return nil
	})
	if err != nil {
		return talon.Pause{}, fmt.Errorf("resume job %s: %w", job, err)
	}
	return out, nil
}

// PausedJobs lists the paused jobs.
func (db *DB) PausedJobs(ctx context.Context) ([]talon.Pause, error) {
	var out []talon.Pause
	err := db.read(ctx, func(tx querier) error {
		rows, err := tx.Query(ctx, `SELECT job, paused_by, reason, since FROM paused_jobs ORDER BY job`)
		if err != nil {
			return err
		}
		out, err = scanPauses(rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list paused jobs: %w", err)
	}
	return out, nil
}

// insertAudit records one audit entry.
const insertAudit = `INSERT INTO audit (time, actor, action, object, remote, outcome, detail)
	VALUES ($1, $2, $3, $4, $5, $6, $7)`

// AddAudit records one operation.
func (db *DB) AddAudit(ctx context.Context, a talon.AuditEntry) (int64, error) {
	var id int64
	err := db.tx(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, insertAudit+` RETURNING id`,
			store.NowOr(a.Time), a.Actor, a.Action, a.Object, a.Remote, a.Outcome, a.Detail).Scan(&id)
	})
	if err != nil {
		return 0, fmt.Errorf("record audit: %w", err)
	}
	return id, nil
}

// ListAudit returns audit entries, newest first.
func (db *DB) ListAudit(ctx context.Context, f store.AuditFilter) ([]talon.AuditEntry, error) {
	var where []string
	var args []any
	arg := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if !f.Since.IsZero() {
		arg("time >= ?", f.Since.UTC())
	}
	if f.Actor != "" {
		arg("actor = ?", f.Actor)
	}
	if f.BeforeID > 0 {
		arg("id < ?", f.BeforeID)
	}
	q := `SELECT id, time, actor, action, object, remote, outcome, detail FROM audit`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC"
	if f.Limit > 0 {
		args = append(args, f.Limit)
		q += " LIMIT $" + strconv.Itoa(len(args))
	}
	var out []talon.AuditEntry
	err := db.read(ctx, func(tx querier) error {
		rows, err := tx.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (talon.AuditEntry, error) {
			var a talon.AuditEntry
			var at time.Time
			err := row.Scan(&a.ID, &at, &a.Actor, &a.Action, &a.Object, &a.Remote, &a.Outcome, &a.Detail)
			a.Time = at.UTC()
			return a, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	return out, nil
}
