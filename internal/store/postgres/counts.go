package postgres

import (
	"github.com/jackc/pgx/v5"

	"github.com/talonhq/talon/internal/store"
)

// addCounts applies a transaction's changes to the run counters in one
// statement, in key order (see store.CountChanges.Sorted).
const addCounts = `INSERT INTO run_counts (job, period, state, shard, n)
	SELECT job, period, state, ` + countShard + `, n FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS u(job, period, state, n)
	ON CONFLICT (job, period, state, shard) DO UPDATE SET n = run_counts.n + EXCLUDED.n`

// countShard is the shard of a counter a transaction adds to (migration
// 0013): one per connection, so that transactions on different
// connections moving runs of the same job and period do not wait for
// each other's commit on one row. Readers sum the shards.
const countShard = `pg_backend_pid() % 8`

// queueCounts queues the counters' update; false when nothing changes.
func queueCounts(b *pgx.Batch, c store.CountChanges) bool {
	keys, deltas := c.Sorted()
	if len(keys) == 0 {
		return false
	}
	jobs, periods, states := make([]string, len(keys)), make([]string, len(keys)), make([]string, len(keys))
	ns := make([]int64, len(keys))
	for i, k := range keys {
		jobs[i], periods[i], states[i], ns[i] = k.Job, k.Period, string(k.State), int64(deltas[i])
	}
	b.Queue(addCounts, jobs, periods, states, ns)
	return true
}
