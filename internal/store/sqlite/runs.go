package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/store"
)

const runCols = `id, job, period, environment, state, attempt, executor, trigger_name,
	fire_time, idem_key, params, retry_of, created, started, finished, reason,
	recheck_at, owner, handle, progress`

type scanner interface{ Scan(dest ...any) error }

func scanRun(s scanner) (talon.Run, error) {
	var (
		r                              talon.Run
		state                          string
		fire, retryOf, started, finish sql.NullInt64
		recheck                        sql.NullInt64
		key, params, progress          sql.NullString
		created                        int64
	)
	if err := s.Scan(&r.ID, &r.Job, &r.Period, &r.Environment, &state, &r.Attempt, &r.Executor, &r.Trigger,
		&fire, &key, &params, &retryOf, &created, &started, &finish, &r.Reason,
		&recheck, &r.Owner, &r.Handle, &progress); err != nil {
		return talon.Run{}, err
	}
	r.State = talon.State(state)
	r.FireTime = fromNullMicros(fire)
	r.Key = key.String
	r.RetryOf = retryOf.Int64
	r.Created = fromMicros(created)
	if started.Valid {
		t := fromMicros(started.Int64)
		r.Started = &t
	}
	if finish.Valid {
		t := fromMicros(finish.Int64)
		r.Finished = &t
	}
	r.RecheckAt = fromNullMicros(recheck)
	if params.Valid {
		if err := json.Unmarshal([]byte(params.String), &r.Params); err != nil {
			return talon.Run{}, fmt.Errorf("run %d: decode params: %w", r.ID, err)
		}
	}
	if progress.Valid {
		r.Progress = new(talon.Progress)
		if err := json.Unmarshal([]byte(progress.String), r.Progress); err != nil {
			return talon.Run{}, fmt.Errorf("run %d: decode progress: %w", r.ID, err)
		}
	}
	return r, nil
}

func paramsJSON(m map[string]string) (any, error) {
	if len(m) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// CreateRuns' statements, prepared once (see DB.stmt).
const (
	qRunByKey  = `SELECT id FROM runs WHERE job = ? AND idem_key = ?`
	qRunByFire = `SELECT id FROM runs
		WHERE job = ? AND period = ? AND trigger_name = ? AND fire_time = ? AND idem_key IS NULL`
)

// qInsertRuns inserts runs as the rows of a multi-row statement (see
// rowsStmt), skipping those whose unique key is taken, and returns those
// it inserted.
var qInsertRuns = newRowsStmt(`INSERT INTO runs (job, period, environment, state, attempt,
	executor, trigger_name, fire_time, idem_key, params, retry_of, created, finished, reason, recheck_at)`, 15, false,
	`ON CONFLICT DO NOTHING RETURNING `+runCols)

// CreateRuns creates runs in one transaction, idempotently on (job,
// period, trigger, fire time) or (job, key).
func (db *DB) CreateRuns(ctx context.Context, ps []store.CreateRun) ([]store.Created, error) {
	if len(ps) == 0 {
		return nil, nil
	}
	valid := make([]store.CreateRun, len(ps))
	for i, p := range ps {
		v, err := store.ValidateCreate(i, p)
		if err != nil {
			return nil, err
		}
		valid[i] = v
	}
	var c *creation
	err := db.writeEvents(ctx, func(tx *sql.Tx) error {
		c = newCreation(valid) // the closure may run again
		if err := db.createIn(ctx, tx, c); err != nil {
			return err
		}
		if err := db.insertEvents(ctx, tx, c.events); err != nil {
			return err
		}
		if err := db.addCounts(ctx, tx, c.counts); err != nil {
			return err
		}
		for i, p := range c.rows {
			if a := p.Audit; a != nil && c.created[i] {
				if err := insertAudit(ctx, tx, *a, store.CreatedDetail(c.ids[i], p.Period)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("create runs: %w", err)
	}
	return db.createdRuns(ctx, c)
}

// creation is a CreateRuns batch as a transaction applies it: the runs
// to insert (their pause policy applied), and what became of each.
type creation struct {
	rows    []store.CreateRun
	ids     []int64
	created []bool
	refused []*talon.Pause
	// The runs inserted come back from the insert; only those that
	// existed are read again after the transaction.
	fresh  map[int64]talon.Run
	events []eventRow
	counts store.CountChanges
}

func newCreation(valid []store.CreateRun) *creation {
	return &creation{
		rows: slices.Clone(valid), ids: make([]int64, len(valid)), created: make([]bool, len(valid)),
		refused: make([]*talon.Pause, len(valid)), fresh: make(map[int64]talon.Run, len(valid)), counts: store.CountChanges{},
	}
}

// createIn inserts c's runs in tx, leaving their events and counters in
// c for the caller to write with its own.
func (db *DB) createIn(ctx context.Context, tx *sql.Tx, c *creation) error {
	if err := applyPauses(ctx, tx, c.rows, c.refused); err != nil {
		return err
	}
	byKey, err := db.stmt(ctx, tx, qRunByKey)
	if err != nil {
		return err
	}
	defer byKey.Close()
	byFire, err := db.stmt(ctx, tx, qRunByFire)
	if err != nil {
		return err
	}
	defer byFire.Close()

	var rows []int // the runs to insert, by index in c.rows
	args := make([][]any, len(c.rows))
	for i, p := range c.rows {
		if c.refused[i] != nil {
			continue
		}
		params, err := paramsJSON(p.Params)
		if err != nil {
			return fmt.Errorf("create run #%d: encode params: %w", i, err)
		}
		var key, retryOf, finished any
		if p.Key != "" {
			key = p.Key
		}
		if p.RetryOf != 0 {
			retryOf = p.RetryOf
		}
		if p.State.Terminal() {
			finished = micros(p.Now)
		}
		args[i] = []any{p.Job, p.Period, p.Environment, string(p.State), p.Attempt,
			p.Executor, p.Trigger, nullMicros(p.FireTime), key, params, retryOf, micros(p.Now),
			finished, p.Reason, nullMicros(p.NotBefore)}
		rows = append(rows, i)
	}
	inserted := make([]talon.Run, 0, len(rows))
	err = db.queryRows(ctx, tx, qInsertRuns, len(rows), func(k int, a []any) []any {
		return append(a, args[rows[k]]...)
	}, func(r *sql.Rows) error {
		run, err := scanRun(r)
		inserted = append(inserted, run)
		return err
	})
	if err != nil {
		return fmt.Errorf("create runs: %w", err)
	}
	// SQLite gives a statement's new rows increasing ids in the order of
	// its VALUES, but does not promise RETURNING's order: the runs
	// inserted, by id, are the batch's rows in order less those whose key
	// was taken, and a row's own run is the next one with its contents.
	slices.SortFunc(inserted, func(a, b talon.Run) int { return cmp.Compare(a.ID, b.ID) })
	next := 0
	for _, i := range rows {
		p := c.rows[i]
		if next < len(inserted) && isRunOf(inserted[next], p) {
			r := inserted[next]
			next++
			c.ids[i], c.created[i], c.fresh[r.ID] = r.ID, true, r
			c.counts.Created(p.Job, p.Period, p.State)
			c.events = append(c.events, eventRow{RunID: r.ID, Time: micros(p.Now), To: string(p.State), Reason: p.Reason,
				Type: string(talon.EventTransition), Job: p.Job, Period: p.Period})
			continue
		}
		// Its key is taken: find the run that holds it.
		if p.Key != "" {
			err = byKey.QueryRowContext(ctx, p.Job, p.Key).Scan(&c.ids[i])
		} else {
			err = byFire.QueryRowContext(ctx, p.Job, p.Period, p.Trigger, micros(p.FireTime)).Scan(&c.ids[i])
		}
		if err != nil {
			return fmt.Errorf("create run #%d: find existing run: %w", i, err)
		}
	}
	if next != len(inserted) {
		return fmt.Errorf("create runs: %d runs inserted, %d matched to the batch", len(inserted), next)
	}
	return nil
}

// isRunOf reports whether r, just inserted, is the run p asked for:
// the same job, period, trigger, fire time, key, state, attempt, retried
// run and reason. Rows alike in all of these have the same unique key:
// after the first, each is skipped if it has one and inserted after the
// first if not, so matching in order never gives a row another's run.
func isRunOf(r talon.Run, p store.CreateRun) bool {
	return r.Job == p.Job && r.Period == p.Period && r.Trigger == p.Trigger && r.Key == p.Key &&
		r.State == p.State && r.Attempt == p.Attempt && r.RetryOf == p.RetryOf &&
		micros(r.FireTime) == micros(p.FireTime) && r.Reason == p.Reason
}

// createdRuns is the result of a committed creation: the runs inserted,
// and those that held the keys of the others, read again.
func (db *DB) createdRuns(ctx context.Context, c *creation) ([]store.Created, error) {
	ids, created, refused := c.ids, c.created, c.refused
	fresh := c.fresh
	var old []int64
	for i, id := range ids {
		if !created[i] && refused[i] == nil {
			old = append(old, id)
		}
	}
	runs := fresh
	if len(old) > 0 {
		existing, err := db.runsByID(ctx, old)
		if err != nil {
			return nil, fmt.Errorf("create runs: read back: %w", err)
		}
		for id, r := range existing {
			runs[id] = r
		}
	}
	out := make([]store.Created, len(ids))
	for i, id := range ids {
		if refused[i] != nil {
			out[i] = store.Created{Paused: refused[i]}
			continue
		}
		r, ok := runs[id]
		if !ok {
			return nil, fmt.Errorf("create runs: run %d vanished", id)
		}
		out[i] = store.Created{Run: r, Created: created[i]}
	}
	return out, nil
}

// applyPauses applies the pause policy of the runs to create (their
// IfPaused), under the write lock: skipped runs are rewritten in ps,
// refused ones noted in refused.
func applyPauses(ctx context.Context, tx *sql.Tx, ps []store.CreateRun, refused []*talon.Pause) error {
	var paused map[string]talon.Pause
	for i, p := range ps {
		if p.IfPaused == store.PauseIgnore {
			continue
		}
		if paused == nil {
			all, err := pausedJobs(ctx, tx)
			if err != nil {
				return fmt.Errorf("check pauses: %w", err)
			}
			paused = make(map[string]talon.Pause, len(all))
			for _, pp := range all {
				paused[pp.Job] = pp
			}
		}
		pause, ok := paused[p.Job]
		if !ok {
			continue
		}
		if p.IfPaused == store.PauseRefuse {
			refused[i] = &pause
			continue
		}
		ps[i] = store.SkipPaused(p, pause)
	}
	return nil
}

// idsJSON passes a list of ids as one JSON parameter, which json_each
// expands, so a query takes any number of ids.
func idsJSON(ids []int64) string {
	b, _ := json.Marshal(ids) // []int64 always encodes
	return string(b)
}

func (db *DB) runsByID(ctx context.Context, ids []int64) (map[int64]talon.Run, error) {
	out := make(map[int64]talon.Run, len(ids))
	err := db.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+runCols+` FROM runs
			WHERE id IN (SELECT value FROM json_each(?))`, idsJSON(ids))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			r, err := scanRun(rows)
			if err != nil {
				return err
			}
			out[r.ID] = r
		}
		return rows.Err()
	})
	return out, err
}

// GetRun returns a run with its progress and artifacts, or ErrNotFound.
func (db *DB) GetRun(ctx context.Context, id int64) (talon.Run, error) {
	var r talon.Run
	err := db.read(ctx, func(tx *sql.Tx) error {
		var err error
		r, err = scanRun(tx.QueryRowContext(ctx, `SELECT `+runCols+` FROM runs WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		r.Artifacts, err = artifacts(ctx, tx, id)
		return err
	})
	if err != nil {
		return talon.Run{}, fmt.Errorf("get run %d: %w", id, err)
	}
	return r, nil
}

func artifacts(ctx context.Context, tx *sql.Tx, runID int64) ([]talon.Artifact, error) {
	rows, err := tx.QueryContext(ctx, `SELECT `+artifactCols+`
		FROM artifacts WHERE run_id = ? ORDER BY id`, runID)
	if err != nil {
		return nil, err
	}
	return scanArtifacts(rows)
}

// ListRuns returns runs matching f, newest first.
func (db *DB) ListRuns(ctx context.Context, f store.RunFilter) ([]talon.Run, error) {
	var (
		where []string
		args  []any
	)
	if f.Job != "" {
		where = append(where, "job = ?")
		args = append(args, f.Job)
		if f.Period == "" && f.IDs == nil && !store.OnlyLive(f.States) {
			// No index of runs begins with the job (migration 0012):
			// its periods come from the counters.
			where = append(where, "period IN (SELECT period FROM run_counts WHERE job = ?)")
			args = append(args, f.Job)
		}
	}
	if f.Period != "" {
		where = append(where, "period = ?")
		args = append(args, f.Period)
	}
	if len(f.States) > 0 {
		where = append(where, "state IN (SELECT value FROM json_each(?))")
		b, _ := json.Marshal(f.States)
		args = append(args, string(b))
		if store.OnlyLive(f.States) {
			where = append(where, store.LiveStates)
		}
	}
	if f.IDs != nil {
		where = append(where, "id IN (SELECT value FROM json_each(?))")
		args = append(args, idsJSON(f.IDs))
	}
	if f.BeforeID > 0 {
		where = append(where, "id < ?")
		args = append(args, f.BeforeID)
	}
	q := `SELECT ` + runCols + ` FROM runs`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC"
	if f.Limit > 0 {
		q += " LIMIT ?"
		args = append(args, f.Limit)
	}
	var out []talon.Run
	err := db.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			r, err := scanRun(rows)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if !f.WithArtifacts || len(out) == 0 {
			return nil
		}
		return listArtifacts(ctx, tx, out)
	})
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return out, nil
}

// listArtifacts loads the artifacts of runs in one query.
func listArtifacts(ctx context.Context, tx *sql.Tx, runs []talon.Run) error {
	ids := make([]int64, len(runs))
	at := make(map[int64]int, len(runs))
	for i, r := range runs {
		ids[i] = r.ID
		at[r.ID] = i
		runs[i].Artifacts = []talon.Artifact{}
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+artifactCols+`
		FROM artifacts WHERE run_id IN (SELECT value FROM json_each(?)) ORDER BY id`, idsJSON(ids))
	if err != nil {
		return err
	}
	as, err := scanArtifacts(rows)
	for _, a := range as {
		i := at[a.RunID]
		runs[i].Artifacts = append(runs[i].Artifacts, a)
	}
	return err
}
