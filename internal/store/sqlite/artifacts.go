package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/store"
)

const artifactCols = `id, run_id, job, period, url, name, created`

// scanArtifacts reads rows of artifactCols and closes them.
func scanArtifacts(rows *sql.Rows) ([]talon.Artifact, error) {
	defer rows.Close()
	var out []talon.Artifact
	for rows.Next() {
		var a talon.Artifact
		var created int64
		if err := rows.Scan(&a.ID, &a.RunID, &a.Job, &a.Period, &a.URL, &a.Name, &created); err != nil {
			return nil, err
		}
		a.Created = fromMicros(created)
		out = append(out, a)
	}
	return out, rows.Err()
}

// AddArtifact records an artifact of a run; ErrNotFound for unknown runs,
// ErrConflict for finished ones.
func (db *DB) AddArtifact(ctx context.Context, runID int64, url, name string, now time.Time) (talon.Artifact, error) {
	if url == "" {
		return talon.Artifact{}, fmt.Errorf("add artifact to run %d: empty URL", runID)
	}
	var a talon.Artifact
	err := db.writeEvents(ctx, func(tx *sql.Tx) error {
		if err := reportable(ctx, tx, runID); err != nil {
			return err
		}
		var created int64
		err := tx.QueryRowContext(ctx, `INSERT INTO artifacts (run_id, job, period, url, name, created)
			SELECT id, job, period, ?, ?, ? FROM runs WHERE id = ?
			RETURNING `+artifactCols, url, name, micros(store.NowOr(now)), runID).
			Scan(&a.ID, &a.RunID, &a.Job, &a.Period, &a.URL, &a.Name, &created)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		a.Created = fromMicros(created)
		detail, err := json.Marshal(a)
		if err != nil {
			return err
		}
		return addEvent(ctx, tx, runID, talon.EventArtifact, a.Created, "", detail)
	})
	if err != nil {
		return talon.Artifact{}, fmt.Errorf("add artifact to run %d: %w", runID, err)
	}
	return a, nil
}

// ListArtifacts returns the artifacts matching f, newest first.
func (db *DB) ListArtifacts(ctx context.Context, f store.ArtifactFilter) ([]talon.Artifact, error) {
	var where []string
	var args []any
	if f.Job != "" {
		where, args = append(where, "job = ?"), append(args, f.Job)
	}
	if f.Period != "" {
		where, args = append(where, "period = ?"), append(args, f.Period)
	}
	if f.RunID != 0 {
		where, args = append(where, "run_id = ?"), append(args, f.RunID)
	}
	if f.BeforeID > 0 {
		where, args = append(where, "id < ?"), append(args, f.BeforeID)
	}
	q := `SELECT ` + artifactCols + ` FROM artifacts`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY id DESC`
	if f.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	var out []talon.Artifact
	err := db.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		out, err = scanArtifacts(rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list artifacts: %w", err)
	}
	return out, nil
}

// Secret returns the value kept under name, making it if there is none.
// The insert that loses a race does nothing, and both read the winner's.
func (db *DB) Secret(ctx context.Context, name string) ([]byte, error) {
	fresh := make([]byte, store.SecretSize)
	_, _ = rand.Read(fresh) // never fails (crypto/rand documents it)
	var v []byte
	err := db.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO secrets (name, value) VALUES (?, ?)
			ON CONFLICT (name) DO NOTHING`, name, fresh); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT value FROM secrets WHERE name = ?`, name).Scan(&v)
	})
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", name, err)
	}
	return v, nil
}
