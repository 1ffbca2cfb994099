package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/talonhq/talon/internal/store"
)

// appendLog adds the part of $3 that lies past the end of run $1's log,
// written at offset $2, as one chunk at that end — when the end is at or
// past $2 (no gap) and before the end of $3 (something to add). One
// statement and no transaction for the usual write, the next one.
const appendLog = `WITH cur AS (
	SELECT coalesce((SELECT off + octet_length(data) FROM run_logs WHERE run_id = $1 ORDER BY off DESC LIMIT 1), 0) AS size)
INSERT INTO run_logs (run_id, off, data)
SELECT $1, size, substring($3::bytea FROM (size - $2 + 1)::int) FROM cur
WHERE size >= $2 AND size < $2 + octet_length($3::bytea)
ON CONFLICT DO NOTHING
RETURNING off`

// AppendLog stores data as run runID's log from byte off on; see
// store.Store.
func (db *DB) AppendLog(ctx context.Context, runID, off int64, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	if off < 0 {
		return fmt.Errorf("append to log of run %d: negative offset %d", runID, off)
	}
	// One statement on the pool, without BEGIN and COMMIT; read's retry
	// after a dead pooled connection is safe, since a write sent again
	// stores nothing twice.
	err := db.read(ctx, func(q querier) error {
		var at int64
		err := q.QueryRow(ctx, appendLog, runID, off, data).Scan(&at)
		var pe *pgconn.PgError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &pe) && pe.Code == "23503": // foreign_key_violation
			return store.ErrNotFound
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		// Nothing added: stored before, or a gap.
		size, err := logSize(ctx, q, runID)
		if err != nil {
			return err
		}
		if off > size {
			return fmt.Errorf("%w: offset %d, log of %d bytes", store.ErrLogGap, off, size)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("append to log of run %d: %w", runID, err)
	}
	return nil
}

// logSize is the size of a run's stored log: the end of its last chunk.
func logSize(ctx context.Context, q querier, runID int64) (int64, error) {
	var size int64
	err := q.QueryRow(ctx, `SELECT off + octet_length(data) FROM run_logs WHERE run_id = $1 ORDER BY off DESC LIMIT 1`, runID).Scan(&size)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return size, err
}

// ReadLog returns up to limit bytes of run runID's log from byte off on.
func (db *DB) ReadLog(ctx context.Context, runID, off int64, limit int) ([]byte, error) {
	if limit <= 0 || off < 0 {
		return nil, nil
	}
	var offs []int64
	var chunks [][]byte
	err := db.read(ctx, func(q querier) error {
		offs, chunks = nil, nil
		// From the chunk holding off (the last starting at or before it)
		// to the last one starting before off+limit.
		rows, err := q.Query(ctx, `SELECT off, data FROM run_logs
			WHERE run_id = $1 AND off < $2::bigint + $3::bigint
			  AND off >= coalesce((SELECT max(off) FROM run_logs WHERE run_id = $1 AND off <= $2::bigint), 0)
			ORDER BY off`, runID, off, int64(limit))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var o int64
			var d []byte
			if err := rows.Scan(&o, &d); err != nil {
				return err
			}
			offs, chunks = append(offs, o), append(chunks, d)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("read log of run %d: %w", runID, err)
	}
	return store.LogRead(offs, chunks, off, limit), nil
}

// LogSize is how many bytes of run runID's log are stored.
func (db *DB) LogSize(ctx context.Context, runID int64) (int64, error) {
	var size int64
	err := db.read(ctx, func(q querier) error {
		var err error
		size, err = logSize(ctx, q, runID)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("log size of run %d: %w", runID, err)
	}
	return size, nil
}
