package postgres

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/store"
)

const artifactCols = `id, run_id, job, period, url, name, created`

func scanArtifact(row pgx.CollectableRow) (talon.Artifact, error) {
	var a talon.Artifact
	err := row.Scan(&a.ID, &a.RunID, &a.Job, &a.Period, &a.URL, &a.Name, &a.Created)
	a.Created = a.Created.UTC()
	return a, err
}

// AddArtifact records an artifact of a run; ErrNotFound for unknown runs,
// ErrConflict for finished ones.
func (db *DB) AddArtifact(ctx context.Context, runID int64, url, name string, now time.Time) (talon.Artifact, error) {
	if url == "" {
		return talon.Artifact{}, fmt.Errorf("add artifact to run %d: empty URL", runID)
	}
	var a talon.Artifact
	err := db.tx(ctx, func(tx pgx.Tx) error {
		if err := reportable(ctx, tx, runID); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `INSERT INTO artifacts (run_id, job, period, url, name, created)
			SELECT id, job, period, $1, $2, $3 FROM runs WHERE id = $4
			RETURNING `+artifactCols, url, name, store.NowOr(now), runID)
		if err != nil {
			return err
		}
		a, err = pgx.CollectExactlyOneRow(rows, scanArtifact)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		detail, err := json.Marshal(a)
		if err != nil {
			return err
		}
		return addEvent(ctx, tx, runID, talon.EventArtifact, a.Created, "", detail)
	})
	if err != nil {
		return talon.Artifact{}, fmt.Errorf("add artifact to run %d: %w", runID, err)
	}
	db.eventsCommitted()
	return a, nil
}

// ListArtifacts returns the artifacts matching f, newest first.
func (db *DB) ListArtifacts(ctx context.Context, f store.ArtifactFilter) ([]talon.Artifact, error) {
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.Job != "" {
		where = append(where, "job = "+arg(f.Job))
	}
	if f.Period != "" {
		where = append(where, "period = "+arg(f.Period))
	}
	if f.RunID != 0 {
		where = append(where, "run_id = "+arg(f.RunID))
	}
	if f.BeforeID > 0 {
		where = append(where, "id < "+arg(f.BeforeID))
	}
	q := `SELECT ` + artifactCols + ` FROM artifacts`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC"
	if f.Limit > 0 {
		q += " LIMIT " + arg(f.Limit)
	}
	var out []talon.Artifact
	err := db.read(ctx, func(tx querier) error {
		rows, err := tx.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, scanArtifact)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list artifacts: %w", err)
	}
	return out, nil
}

// Secret returns the value kept under name, making it if there is none.
// Of two schedulers making it at once, the insert that loses waits for
// the winner's commit on the primary key and does nothing; both then
// read the winner's value.
func (db *DB) Secret(ctx context.Context, name string) ([]byte, error) {
	fresh := make([]byte, store.SecretSize)
	_, _ = rand.Read(fresh) // never fails (crypto/rand documents it)
	var v []byte
	err := db.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO secrets (name, value) VALUES ($1, $2)
			ON CONFLICT (name) DO NOTHING`, name, fresh); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT value FROM secrets WHERE name = $1`, name).Scan(&v)
	})
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", name, err)
	}
	return v, nil
}
