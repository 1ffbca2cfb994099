package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/store"
)

// PauseJob pauses a job; a job already paused keeps its pause.
func (db *DB) PauseJob(ctx context.Context, p talon.Pause) (talon.Pause, bool, error) {
	p.Since = store.NowOr(p.Since)
	var out talon.Pause
	created := false
	err := db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO paused_jobs (job, paused_by, reason, since)
			VALUES (?, ?, ?, ?) ON CONFLICT (job) DO NOTHING`, p.Job, p.By, p.Reason, micros(p.Since))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		created = n == 1
		out, err = pausedJob(ctx, tx, p.Job)
		return err
	})
	if err != nil {
		return talon.Pause{}, false, fmt.Errorf("pause job %s: %w", p.Job, err)
	}
	return out, created, nil
}

// pausedJob reads one job's pause, or ErrNotFound.
func pausedJob(ctx context.Context, tx *sql.Tx, job string) (talon.Pause, error) {
	var p talon.Pause
	var since int64
	err := tx.QueryRowContext(ctx, `SELECT job, paused_by, reason, since FROM paused_jobs WHERE job = ?`, job).
		Scan(&p.Job, &p.By, &p.Reason, &since)
	if errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("job %s is not paused: %w", job, store.ErrNotFound)
	}
	p.Since = fromMicros(since)
	return p, err
}

// ResumeJob ends a job's pause.
func (db *DB) ResumeJob(ctx context.Context, job string) (talon.Pause, error) {
	var out talon.Pause
	err := db.write(ctx, func(tx *sql.Tx) error {
		var err error
		if out, err = pausedJob(ctx, tx, job); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM paused_jobs WHERE job = ?`, job)
		return err
	})
	if err != nil {
		return talon.Pause{}, fmt.Errorf("resume job %s: %w", job, err)
	}
	return out, nil
}

// PausedJobs lists the paused jobs.
func (db *DB) PausedJobs(ctx context.Context) ([]talon.Pause, error) {
	var out []talon.Pause
	err := db.read(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = pausedJobs(ctx, tx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list paused jobs: %w", err)
	}
	return out, nil
}

// pausedJobs reads the paused jobs in tx, by name.
func pausedJobs(ctx context.Context, tx *sql.Tx) ([]talon.Pause, error) {
	rows, err := tx.QueryContext(ctx, `SELECT job, paused_by, reason, since FROM paused_jobs ORDER BY job`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []talon.Pause
	for rows.Next() {
		var p talon.Pause
		var since int64
		if err := rows.Scan(&p.Job, &p.By, &p.Reason, &since); err != nil {
			return nil, err
		}
		p.Since = fromMicros(since)
		out = append(out, p)
	}
	return out, rows.Err()
}

const qInsertAudit = `INSERT INTO audit (time, actor, action, object, remote, outcome, detail)
	VALUES (?, ?, ?, ?, ?, ?, ?)`

// insertAudit records a in tx with detail.
func insertAudit(ctx context.Context, tx *sql.Tx, a talon.AuditEntry, detail string) error {
	_, err := tx.ExecContext(ctx, qInsertAudit,
		micros(store.NowOr(a.Time)), a.Actor, a.Action, a.Object, a.Remote, a.Outcome, detail)
	if err != nil {
		return fmt.Errorf("record audit: %w", err)
	}
	return nil
}

// AddAudit records one operation.
func (db *DB) AddAudit(ctx context.Context, a talon.AuditEntry) (int64, error) {
	var id int64
	err := db.write(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, qInsertAudit+` RETURNING id`,
			micros(store.NowOr(a.Time)), a.Actor, a.Action, a.Object, a.Remote, a.Outcome, a.Detail).Scan(&id)
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
	if !f.Since.IsZero() {
		where, args = append(where, "time >= ?"), append(args, micros(f.Since))
	}
	if f.Actor != "" {
		where, args = append(where, "actor = ?"), append(args, f.Actor)
	}
	if f.BeforeID > 0 {
		where, args = append(where, "id < ?"), append(args, f.BeforeID)
	}
	q := `SELECT id, time, actor, action, object, remote, outcome, detail FROM audit`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC"
	if f.Limit > 0 {
		q += " LIMIT ?"
		args = append(args, f.Limit)
	}
	var out []talon.AuditEntry
	err := db.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var a talon.AuditEntry
			var at int64
			if err := rows.Scan(&a.ID, &at, &a.Actor, &a.Action, &a.Object, &a.Remote, &a.Outcome, &a.Detail); err != nil {
				return err
			}
			a.Time = fromMicros(at)
			out = append(out, a)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	return out, nil
}
