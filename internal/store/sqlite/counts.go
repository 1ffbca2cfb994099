package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/talonhq/talon/internal/store"
)

// addCounts applies a transaction's changes to the run counters
// (store.CountChanges), one statement per counter that changes.
func addCounts(ctx context.Context, tx *sql.Tx, c store.CountChanges) error {
	keys, deltas := c.Sorted()
	if len(keys) == 0 {
		return nil
	}
	st, err := tx.PrepareContext(ctx, `INSERT INTO run_counts (job, period, state, n) VALUES (?, ?, ?, ?)
		ON CONFLICT (job, period, state) DO UPDATE SET n = n + excluded.n`)
	if err != nil {
		return fmt.Errorf("count runs: %w", err)
	}
	defer st.Close()
	for i, k := range keys {
		if _, err := st.ExecContext(ctx, k.Job, k.Period, string(k.State), deltas[i]); err != nil {
			return fmt.Errorf("count runs: %w", err)
		}
	}
	return nil
}
