package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/store"
)

const runCols = `id, job, period, environment, state, attempt, executor, trigger_name,
	fire_time, idem_key, params, retry_of, created, started, finished, reason,
	recheck_at, owner, handle, progress`

func scanRun(row pgx.Row) (talon.Run, error) {
	var (
		r                       talon.Run
		state                   string
		fire, started, finished *time.Time
		recheck                 *time.Time
		key                     *string
		retryOf                 *int64
		params, progress        []byte
		created                 time.Time
	)
	if err := row.Scan(&r.ID, &r.Job, &r.Period, &r.Environment, &state, &r.Attempt, &r.Executor, &r.Trigger,
		&fire, &key, &params, &retryOf, &created, &started, &finished, &r.Reason,
		&recheck, &r.Owner, &r.Handle, &progress); err != nil {
		return talon.Run{}, err
	}
	r.State = talon.State(state)
	r.FireTime = utc(fire)
	if key != nil {
		r.Key = *key
	}
	if retryOf != nil {
		r.RetryOf = *retryOf
	}
	r.Created = created.UTC()
	r.Started, r.Finished = utcPtr(started), utcPtr(finished)
	r.RecheckAt = utc(recheck)
	if params != nil {
		if err := json.Unmarshal(params, &r.Params); err != nil {
			return talon.Run{}, fmt.Errorf("run %d: decode params: %w", r.ID, err)
		}
	}
	if progress != nil {
		r.Progress = new(talon.Progress)
		if err := json.Unmarshal(progress, r.Progress); err != nil {
			return talon.Run{}, fmt.Errorf("run %d: decode progress: %w", r.ID, err)
		}
	}
	return r, nil
}

// validateCreate checks one CreateRun and fills its defaults.
func validateCreate(i int, p store.CreateRun) (store.CreateRun, error) {
	if p.Job == "" || p.Period == "" {
		return p, fmt.Errorf("create run #%d: job and period are required", i)
	}
	switch p.State {
	case "":
		p.State = talon.StateBlocked
	case talon.StateBlocked, talon.StateSkipped:
	default:
		return p, fmt.Errorf("create run #%d: initial state %q: want blocked or skipped", i, p.State)
	}
	if p.Attempt <= 0 {
		p.Attempt = 1
	}
	p.Now = nowOr(p.Now)
	return p, nil
}

// insertRun inserts a run and its creation event in one statement; it
// returns no row when the run's unique key already exists.
const insertRun = `WITH ins AS (
	INSERT INTO runs (job, period, environment, state, attempt, executor, trigger_name, fire_time,
		idem_key, params, retry_of, created, finished, reason, recheck_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
	ON CONFLICT DO NOTHING
	RETURNING id, created, state, reason
), ev AS (
	INSERT INTO events (run_id, time, from_state, to_state, reason)
	SELECT id, created, '', state, reason FROM ins
)
SELECT id FROM ins`

// CreateRuns creates runs in one transaction, idempotently on (job,
// period, trigger, fire time) or (job, key). All inserts go in one
// pipelined batch.
func (db *DB) CreateRuns(ctx context.Context, ps []store.CreateRun) ([]store.Created, error) {
	if len(ps) == 0 {
		return nil, nil
	}
	valid := make([]store.CreateRun, len(ps))
	for i, p := range ps {
		v, err := validateCreate(i, p)
		if err != nil {
			return nil, err
		}
		valid[i] = v
	}
	// Insert in unique-key order: two schedulers creating the same runs
	// then wait for each other's rows in the same order, never in a cycle.
	order := make([]int, len(valid))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		pa, pb := valid[a], valid[b]
		return cmp.Or(strings.Compare(pa.Job, pb.Job), strings.Compare(pa.Key, pb.Key),
			strings.Compare(pa.Period, pb.Period), strings.Compare(pa.Trigger, pb.Trigger), pa.FireTime.Compare(pb.FireTime))
	})
	var out []store.Created
	err := db.tx(ctx, func(tx pgx.Tx) error {
		ids := make([]int64, len(valid))
		created := make([]bool, len(valid))
		b := &pgx.Batch{}
		for _, i := range order {
			p := valid[i]
			var params, key, retryOf, finished any
			if len(p.Params) > 0 {
				raw, err := json.Marshal(p.Params)
				if err != nil {
					return fmt.Errorf("create run #%d: encode params: %w", i, err)
				}
				params = raw
			}
			if p.Key != "" {
				key = p.Key
			}
			if p.RetryOf != 0 {
				retryOf = p.RetryOf
			}
			if p.State.Terminal() {
				finished = p.Now
			}
			b.Queue(insertRun, p.Job, p.Period, p.Environment, string(p.State), p.Attempt, p.Executor, p.Trigger,
				tstz(p.FireTime), key, params, retryOf, p.Now, finished, p.Reason, tstz(p.NotBefore))
		}
		var missing []int
		if err := sendBatch(ctx, tx, b, func(br pgx.BatchResults, n int) error {
			i := order[n]
			err := br.QueryRow().Scan(&ids[i])
			switch {
			case err == nil:
				created[i] = true
			case errors.Is(err, pgx.ErrNoRows):
				missing = append(missing, i)
			default:
				return fmt.Errorf("create run #%d: %w", i, err)
			}
			return nil
		}); err != nil {
			return err
		}
		// Find the runs that already held the unique keys.
		b = &pgx.Batch{}
		for _, i := range missing {
			p := valid[i]
			if p.Key != "" {
				b.Queue(`SELECT id FROM runs WHERE job = $1 AND idem_key = $2`, p.Job, p.Key)
			} else {
				b.Queue(`SELECT id FROM runs WHERE job = $1 AND period = $2 AND trigger_name = $3
					AND fire_time = $4 AND idem_key IS NULL`, p.Job, p.Period, p.Trigger, tstz(p.FireTime))
			}
		}
		if err := sendBatch(ctx, tx, b, func(br pgx.BatchResults, n int) error {
			i := missing[n]
			if err := br.QueryRow().Scan(&ids[i]); err != nil {
				return fmt.Errorf("create run #%d: find existing run: %w", i, err)
			}
			return nil
		}); err != nil {
			return err
		}
		runs, err := runsByID(ctx, tx, ids)
		if err != nil {
			return fmt.Errorf("read back: %w", err)
		}
		out = make([]store.Created, len(valid))
		for i, id := range ids {
			r, ok := runs[id]
			if !ok {
				return fmt.Errorf("run %d vanished", id)
			}
			out[i] = store.Created{Run: r, Created: created[i]}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("create runs: %w", err)
	}
	return out, nil
}

// sendBatch sends b and hands each statement's result, in order, to read.
func sendBatch(ctx context.Context, tx pgx.Tx, b *pgx.Batch, read func(br pgx.BatchResults, n int) error) error {
	if b.Len() == 0 {
		return nil
	}
	br := tx.SendBatch(ctx, b)
	for n := range b.Len() {
		if err := read(br, n); err != nil {
			br.Close()
			return err
		}
	}
	return br.Close()
}

func runsByID(ctx context.Context, tx pgx.Tx, ids []int64) (map[int64]talon.Run, error) {
	rows, err := tx.Query(ctx, `SELECT `+runCols+` FROM runs WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[int64]talon.Run, len(ids))
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, err
		}
		out[r.ID] = r
	}
	return out, rows.Err()
}

// GetRun returns a run with its progress and artifacts, or ErrNotFound.
func (db *DB) GetRun(ctx context.Context, id int64) (talon.Run, error) {
	var r talon.Run
	err := db.tx(ctx, func(tx pgx.Tx) error {
		var err error
		r, err = scanRun(tx.QueryRow(ctx, `SELECT `+runCols+` FROM runs WHERE id = $1`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT id, run_id, job, period, url, created
			FROM artifacts WHERE run_id = $1 ORDER BY id`, id)
		if err != nil {
			return err
		}
		r.Artifacts, err = pgx.CollectRows(rows, scanArtifact)
		return err
	})
	if err != nil {
		return talon.Run{}, fmt.Errorf("get run %d: %w", id, err)
	}
	return r, nil
}

func scanArtifact(row pgx.CollectableRow) (talon.Artifact, error) {
	var a talon.Artifact
	err := row.Scan(&a.ID, &a.RunID, &a.Job, &a.Period, &a.URL, &a.Created)
	a.Created = a.Created.UTC()
	return a, err
}

// ListRuns returns runs matching f, newest first.
func (db *DB) ListRuns(ctx context.Context, f store.RunFilter) ([]talon.Run, error) {
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
	if len(f.States) > 0 {
		states := make([]string, len(f.States))
		for i, s := range f.States {
			states[i] = string(s)
		}
		where = append(where, "state = ANY("+arg(states)+")")
	}
	if f.IDs != nil {
		where = append(where, "id = ANY("+arg(f.IDs)+")")
	}
	if f.BeforeID > 0 {
		where = append(where, "id < "+arg(f.BeforeID))
	}
	q := `SELECT ` + runCols + ` FROM runs`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC"
	if f.Limit > 0 {
		q += " LIMIT " + arg(f.Limit)
	}
	var out []talon.Run
	err := db.tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		out = nil
		for rows.Next() {
			r, err := scanRun(rows)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return out, nil
}
