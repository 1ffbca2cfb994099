package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/talonhq/talon/internal/store"
)

// AppendLog stores data as run runID's log from byte off on; see
// store.Store.
func (db *DB) AppendLog(ctx context.Context, runID, off int64, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	if off < 0 {
		return fmt.Errorf("append to log of run %d: negative offset %d", runID, off)
	}
	err := db.write(ctx, func(tx *sql.Tx) error {
		size, err := logSize(ctx, tx, runID)
		if err != nil {
			return err
		}
		switch {
		case off > size:
			return fmt.Errorf("%w: offset %d, log of %d bytes", store.ErrLogGap, off, size)
		case off+int64(len(data)) <= size:
			return nil // stored by an earlier try
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO run_logs (run_id, off, data) VALUES (?, ?, ?)`, runID, size, data[size-off:])
		var se *msqlite.Error
		if errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY {
			return store.ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("append to log of run %d: %w", runID, err)
	}
	return nil
}

// logSize is the size of a run's stored log: the end of its last chunk.
func logSize(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, runID int64) (int64, error) {
	var size int64
	err := q.QueryRowContext(ctx, `SELECT off + length(data) FROM run_logs WHERE run_id = ? ORDER BY off DESC LIMIT 1`, runID).Scan(&size)
	if errors.Is(err, sql.ErrNoRows) {
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
	err := db.read(ctx, func(tx *sql.Tx) error {
		// From the chunk holding off (the last starting at or before it)
		// to the last one starting before off+limit.
		rows, err := tx.QueryContext(ctx, `SELECT off, data FROM run_logs
			WHERE run_id = ?1 AND off < ?2 + ?3
			  AND off >= coalesce((SELECT max(off) FROM run_logs WHERE run_id = ?1 AND off <= ?2), 0)
			ORDER BY off`, runID, off, limit)
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
	err := db.read(ctx, func(tx *sql.Tx) error {
		var err error
		size, err = logSize(ctx, tx, runID)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("log size of run %d: %w", runID, err)
	}
	return size, nil
}
