package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/talonhq/talon/internal/store"
)

// addCounts applies a transaction's changes to the run counters
// (store.CountChanges) in one statement.
func (db *DB) addCounts(ctx context.Context, tx *sql.Tx, c store.CountChanges) error {
	keys, deltas := c.Sorted()
	if len(keys) == 0 {
		return nil
	}
	rows := make([][4]any, len(keys))
	for i, k := range keys {
		rows[i] = [4]any{k.Job, k.Period, string(k.State), deltas[i]}
	}
	b, err := json.Marshal(rows)
	if err != nil {
		return fmt.Errorf("count runs: %w", err)
	}
	s, err := db.stmt(ctx, tx, qCounts)
	if err == nil {
		_, err = s.ExecContext(ctx, string(b))
	}
	if err != nil {
		return fmt.Errorf("count runs: %w", err)
	}
	return nil
}
