package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// riverConfig is one way of configuring River's client.
type riverConfig struct {
	name string
	// fetchCooldown is River's FetchCooldown; 0 keeps its default
	// (100 ms, which caps a queue near 1,000 jobs/s).
	fetchCooldown time.Duration
	maxWorkers    int
	// poolConns is the pgxpool's MaxConns; 0 keeps pgx's default
	// (the greater of 4 and the number of CPUs).
	poolConns int32
}

// noopArgs is a job that does nothing; I is its index in the measurement,
// so the worker can stamp when it finished.
type noopArgs struct {
	I int `json:"i"`
}

func (noopArgs) Kind() string { return "bench_noop" }

type noopWorker struct {
	river.WorkerDefaults[noopArgs]
	finished []atomic.Int64 // unix ns, by index
}

func (w *noopWorker) Work(_ context.Context, job *river.Job[noopArgs]) error {
	if i := job.Args.I; i >= 0 && i < len(w.finished) {
		w.finished[i].Store(time.Now().UnixNano())
	}
	return nil
}

// chainArgs is one link of a chain of n jobs: its worker inserts link I+1.
type chainArgs struct {
	I int `json:"i"`
	N int `json:"n"`
}

func (chainArgs) Kind() string { return "bench_chain" }

type chainWorker struct {
	river.WorkerDefaults[chainArgs]
	started, finished []atomic.Int64 // unix ns, by link
}

func (w *chainWorker) Work(ctx context.Context, job *river.Job[chainArgs]) error {
	i := job.Args.I
	if i < 0 || i >= len(w.started) {
		return fmt.Errorf("chain link %d out of range", i)
	}
	w.started[i].Store(time.Now().UnixNano())
	defer func() { w.finished[i].Store(time.Now().UnixNano()) }()
	if i+1 >= job.Args.N {
		return nil
	}
	_, err := river.ClientFromContext[pgx.Tx](ctx).Insert(ctx, chainArgs{I: i + 1, N: job.Args.N}, nil)
	return err
}

// riverSide is a started River client on its own, freshly migrated schema.
type riverSide struct {
	client *river.Client[pgx.Tx]
	pool   *pgxpool.Pool
	base   string
	schema string
	noop   *noopWorker
	chain  *chainWorker
}

// startRiver creates schema, runs River's migrations into it and starts
// a client with a no-op and a chain worker sized for n jobs.
func startRiver(ctx context.Context, base, schema string, cfg riverConfig, n int) (*riverSide, error) {
	if err := createSchema(ctx, base, schema); err != nil {
		return nil, err
	}
	r := &riverSide{base: base, schema: schema,
		noop:  &noopWorker{finished: make([]atomic.Int64, n)},
		chain: &chainWorker{started: make([]atomic.Int64, n), finished: make([]atomic.Int64, n)},
	}
	pc, err := pgxpool.ParseConfig(base)
	if err != nil {
		r.stop()
		return nil, fmt.Errorf("river pool: %w", err)
	}
	if cfg.poolConns > 0 {
		pc.MaxConns = cfg.poolConns
	}
	if r.pool, err = pgxpool.NewWithConfig(ctx, pc); err != nil {
		r.stop()
		return nil, fmt.Errorf("river pool: %w", err)
	}
	driver := riverpgxv5.New(r.pool)
	m, err := rivermigrate.New(driver, &rivermigrate.Config{Schema: schema})
	if err != nil {
		r.stop()
		return nil, fmt.Errorf("river migrator: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		r.stop()
		return nil, fmt.Errorf("river migrate into %s: %w", schema, err)
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, r.noop)
	river.AddWorker(workers, r.chain)
	r.client, err = river.NewClient(driver, &river.Config{
		Schema:        schema,
		FetchCooldown: cfg.fetchCooldown,
		Queues:        map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: cfg.maxWorkers}},
		Workers:       workers,
		Logger:        slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		r.stop()
		return nil, fmt.Errorf("river client: %w", err)
	}
	if err := r.client.Start(ctx); err != nil {
		r.stop()
		return nil, fmt.Errorf("river start: %w", err)
	}
	return r, nil
}

func (r *riverSide) stop() {
	if r.client != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_ = r.client.Stop(ctx)
		cancel()
	}
	if r.pool != nil {
		r.pool.Close()
	}
	_ = dropSchema(r.base, r.schema)
}

// completions subscribes to completed and failed jobs before any is
// inserted, with room for every event of the measurement (River drops
// events that overflow a subscription's buffer).
func (r *riverSide) completions(n int) (<-chan *river.Event, func()) {
	return r.client.SubscribeConfig(&river.SubscribeConfig{
		ChanSize: n + 1000,
		Kinds:    []river.EventKind{river.EventKindJobCompleted, river.EventKindJobFailed, river.EventKindJobCancelled},
	})
}

// waitDone reads events until n jobs completed and returns when the last
// completion was seen; seen, if not nil, is told of each completion and
// when the harness read it.
func waitDone(ctx context.Context, evs <-chan *river.Event, n int, seen func(*river.Event, time.Time)) (time.Time, error) {
	var last time.Time
	for done := 0; done < n; {
		select {
		case e := <-evs:
			if e.Kind != river.EventKindJobCompleted {
				return time.Time{}, fmt.Errorf("river: job %d (%s) ended %s", e.Job.ID, e.Job.Kind, e.Kind)
			}
			done++
			last = time.Now()
			if seen != nil {
				seen(e, last)
			}
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("river: %d of %d jobs completed: %w", done, n, ctx.Err())
		}
	}
	return last, nil
}

// riverBatch inserts n no-op jobs with InsertMany, batch at a time, and
// waits until River has recorded every one completed.
func riverBatch(ctx context.Context, base, schema string, cfg riverConfig, n, batch int, timeout time.Duration) (load, error) {
	r, err := startRiver(ctx, base, schema, cfg, n)
	if err != nil {
		return load{}, err
	}
	defer r.stop()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	evs, unsub := r.completions(n)
	defer unsub()
	began := time.Now()
	for i := 0; i < n; i += batch {
		params := make([]river.InsertManyParams, 0, batch)
		for j := i; j < min(n, i+batch); j++ {
			params = append(params, river.InsertManyParams{Args: noopArgs{I: j}})
		}
		if _, err := r.client.InsertMany(ctx, params); err != nil {
			return load{}, fmt.Errorf("river InsertMany: %w", err)
		}
	}
	last, err := waitDone(ctx, evs, n, nil)
	if err != nil {
		return load{}, err
	}
	return load{n: n, elapsed: last.Sub(began)}, nil
}

// riverOneByOne has clients goroutines insert n no-op jobs in all, one
// Insert at a time each, and waits until River has recorded every one
// completed. A job's latency is from just before its Insert to when its
// worker returned.
func riverOneByOne(ctx context.Context, base, schema string, cfg riverConfig, clients, n int, timeout time.Duration) (load, error) {
	r, err := startRiver(ctx, base, schema, cfg, n)
	if err != nil {
		return load{}, err
	}
	defer r.stop()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	evs, unsub := r.completions(n)
	defer unsub()
	submitted := make([]time.Time, n)
	errc := make(chan error, clients)
	var wg sync.WaitGroup
	began := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := c; i < n; i += clients {
				submitted[i] = time.Now()
				if _, err := r.client.Insert(ctx, noopArgs{I: i}, nil); err != nil {
					errc <- fmt.Errorf("river Insert: %w", err)
					return
				}
			}
		}()
	}
	seenAt := make([]time.Time, n)
	var badArgs error
	last, err := waitDone(ctx, evs, n, func(e *river.Event, at time.Time) {
		var a noopArgs
		if err := json.Unmarshal(e.Job.EncodedArgs, &a); err != nil || a.I < 0 || a.I >= n {
			badArgs = fmt.Errorf("river: job %d has args %q", e.Job.ID, e.Job.EncodedArgs)
			return
		}
		seenAt[a.I] = at
	})
	wg.Wait()
	select {
	case err := <-errc:
		return load{}, err
	default:
	}
	if err != nil {
		return load{}, err
	}
	if badArgs != nil {
		return load{}, badArgs
	}
	l := load{n: n, elapsed: last.Sub(began)}
	for i := range n {
		l.lat = append(l.lat, time.Unix(0, r.noop.finished[i].Load()).Sub(submitted[i]))
		l.seen = append(l.seen, seenAt[i].Sub(submitted[i]))
	}
	return l, nil
}

// riverChain inserts the first link of a chain of n jobs, each of whose
// workers inserts the next, and returns the gaps between consecutive
// links' starts (when each worker began) and ends (when each returned,
// after inserting the next link).
func riverChain(ctx context.Context, base, schema string, cfg riverConfig, n int, timeout time.Duration) (chain, error) {
	r, err := startRiver(ctx, base, schema, cfg, n)
	if err != nil {
		return chain{}, err
	}
	defer r.stop()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	evs, unsub := r.completions(n)
	defer unsub()
	if _, err := r.client.Insert(ctx, chainArgs{I: 0, N: n}, nil); err != nil {
		return chain{}, fmt.Errorf("river Insert: %w", err)
	}
	if _, err := waitDone(ctx, evs, n, nil); err != nil {
		return chain{}, err
	}
	starts := make([]time.Time, n)
	ends := make([]time.Time, n)
	for i := range n {
		starts[i] = time.Unix(0, r.chain.started[i].Load())
		ends[i] = time.Unix(0, r.chain.finished[i].Load())
	}
	return chain{startToStart: diffs(starts), finishToFinish: diffs(ends)}, nil
}
