package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/talonhq/talon/internal/store"
)

// addCounts applies a transaction's changes to the run counters
// (store.CountChanges).
func (db *DB) addCounts(ctx context.Context, tx *sql.Tx, c store.CountChanges) error {
	keys, deltas := c.Sorted()
	if len(keys) == 0 {
		return nil
	}
	_, err := db.execRows(ctx, tx, qCounts, len(keys), func(i int, args []any) []any {
		k := keys[i]
		return append(args, k.Job, k.Period, string(k.State), deltas[i])
	})
	if err != nil {
		return fmt.Errorf("count runs: %w", err)
	}
	return nil
}
