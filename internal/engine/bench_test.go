package engine_test

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/engine"
	"github.com/talonhq/talon/internal/executor"
	"github.com/talonhq/talon/internal/executor/inprocess"
	"github.com/talonhq/talon/internal/schedule"
	"github.com/talonhq/talon/internal/store"
	"github.com/talonhq/talon/internal/store/postgres"
	"github.com/talonhq/talon/internal/store/sqlite"
	"github.com/talonhq/talon/internal/talontest"
)

// The benchmarks report the figures with b.ReportMetric, so runs
// can be compared with benchstat:
//
//	go test -run '^$' -bench . -benchtime 1x ./internal/engine/
//
// BenchmarkEndToEnd needs TALON_TEST_POSTGRES for its postgres half.

func openSQLite(b *testing.B) store.Store {
	st, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "talon.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

func openPostgres(b *testing.B) store.Store {
	st, err := postgres.Open(context.Background(), talontest.PostgresURL(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

// genSchedule writes n jobs from a template with %[1]d for the index,
// and any more jobs given whole.
func genSchedule(b testing.TB, n int, tmpl string, more ...string) *schedule.Schedule {
	var sb strings.Builder
	sb.WriteString("jobs:\n")
	for i := range n {
		fmt.Fprintf(&sb, tmpl, i)
	}
	for _, m := range more {
		sb.WriteString(m)
	}
	s, err := schedule.LoadBytes(schedule.Options{Executors: []string{"inprocess", "local"}}, "bench.yaml", []byte(sb.String()))
	if err != nil {
		b.Fatalf("load: %v", err)
	}
	return s
}

func benchEngine(b *testing.B, s *schedule.Schedule, st store.Store, start time.Time) (*engine.Engine, *talontest.Clock) {
	return benchEngineWith(b, s, st, start, inprocess.New())
}

func benchEngineWith(b *testing.B, s *schedule.Schedule, st store.Store, start time.Time, ex *inprocess.Executor) (*engine.Engine, *talontest.Clock) {
	c := talontest.NewClock(start)
	e, err := engine.New(engine.Config{
		Store: st, Schedule: s, Now: c.Now, LogDir: b.TempDir(), MaxBatch: 1000,
		Executors: map[string]executor.Executor{"inprocess": ex},
	})
	if err != nil {
		b.Fatal(err)
	}
	return e, c
}

func settleAt(b *testing.B, e *engine.Engine, c *talontest.Clock, t time.Time) {
	c.Set(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := e.Settle(ctx, t); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkEndToEnd: runs created, evaluated, dispatched and completed per
// second, with a no-op in-process job. 500 jobs fire every minute; each
// round is one minute of fake time.
// stores are the state stores every benchmark runs on, by sub-benchmark
// name; postgres needs TALON_TEST_POSTGRES.
var stores = []struct {
	name string
	open func(*testing.B) store.Store
}{{"sqlite", openSQLite}, {"postgres", openPostgres}}

func BenchmarkEndToEnd(b *testing.B) {
	for _, tc := range stores {
		b.Run(tc.name, func(b *testing.B) {
			const jobs = 500
			s := genSchedule(b, jobs, `
  j%[1]d:
    period: daily
    triggers: [{schedule: "* * * * *"}]
    constraints: {max_running: 1}
    executor: inprocess
    command: [noop]
`)
			st := tc.open(b)
			start := time.Date(2026, 11, 26, 6, 0, 30, 0, time.UTC)
			e, c := benchEngine(b, s, st, start)
			settleAt(b, e, c, start) // sets the cursors
			rounds := max(1, b.N/jobs)
			b.ResetTimer()
			began := time.Now()
			for i := 1; i <= rounds; i++ {
				settleAt(b, e, c, start.Add(time.Duration(i)*time.Minute))
			}
			elapsed := time.Since(began)
			b.StopTimer()
			n := countRuns(b, st, talon.StateSucceeded)
			if n != rounds*jobs {
				b.Fatalf("%d runs succeeded, want %d", n, rounds*jobs)
			}
			b.ReportMetric(float64(n)/elapsed.Seconds(), "runs/s")
		})
	}
}

func countRuns(b *testing.B, st store.Store, state talon.State) int {
	rows, err := st.ListPeriods(context.Background(), store.PeriodFilter{})
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for _, r := range rows {
		n += r.Counts[state]
	}
	return n
}

// BenchmarkRollover10k: 10,000 daily jobs roll into a new period; every
// run is created and first-checked (not_before keeps them blocked, so
// the figure is creation plus one decision each).
func BenchmarkRollover10k(b *testing.B) {
	const jobs = 10000
	s := genSchedule(b, jobs, `
  j%[1]d:
    period: daily
    triggers: [{schedule: "0 0 * * *"}]
    constraints: {not_before: "23:00"}
    executor: inprocess
    command: [noop]
`)
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		st := openSQLite(b)
		start := time.Date(2026, 11, 25, 23, 59, 0, 0, time.UTC)
		e, c := benchEngine(b, s, st, start)
		settleAt(b, e, c, start)
		b.StartTimer()
		began := time.Now()
		settleAt(b, e, c, start.Add(time.Minute))
		total += time.Since(began)
		b.StopTimer()
		if n := countRuns(b, st, talon.StateBlocked); n != jobs {
			b.Fatalf("%d runs blocked, want %d", n, jobs)
		}
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s/rollover")
}

// BenchmarkChain1000: a chain of 1,000 jobs, each triggered by the
// success of the one before, end to end; reports the time per hop, from
// one job's start to the next one's (the mean, p50 and p99, measured on
// the wall clock by the function the jobs run).
func BenchmarkChain1000(b *testing.B) {
	const n = 1000
	var sb strings.Builder
	sb.WriteString("jobs:\n  c0:\n    period: daily\n    executor: inprocess\n    command: [stamp]\n")
	for i := 1; i < n; i++ {
		fmt.Fprintf(&sb, "  c%d:\n    period: daily\n    triggers: [{after: c%d}]\n    constraints: {after: [c%d]}\n    executor: inprocess\n    command: [stamp]\n", i, i-1, i-1)
	}
	s, err := schedule.LoadBytes(schedule.Options{Executors: []string{"inprocess", "local"}}, "chain.yaml", []byte(sb.String()))
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range stores {
		b.Run(tc.name, func(b *testing.B) {
			var total time.Duration
			var hops []time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				st := tc.open(b)
				start := time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)
				var mu sync.Mutex
				started := make([]time.Time, n)
				ex := inprocess.New()
				ex.Register("stamp", func(_ context.Context, r inprocess.Run) error {
					k, _ := strconv.Atoi(strings.TrimPrefix(r.Run.Job, "c"))
					mu.Lock()
					started[k] = time.Now()
					mu.Unlock()
					return nil
				})
				e, c := benchEngineWith(b, s, st, start, ex)
				settleAt(b, e, c, start)
				b.StartTimer()
				began := time.Now()
				if _, _, err := e.Trigger(context.Background(), "c0", apiTrigger()); err != nil {
					b.Fatal(err)
				}
				settleAt(b, e, c, start)
				total += time.Since(began)
				b.StopTimer()
				if got := countRuns(b, st, talon.StateSucceeded); got != n {
					rows, _ := st.ListRuns(context.Background(), store.RunFilter{States: []talon.State{talon.StateBlocked, talon.StateFailed, talon.StateSkipped}, Limit: 3})
					b.Fatalf("%d runs succeeded, want %d; others: %+v", got, n, rows)
				}
				for k := 1; k < n; k++ {
					hops = append(hops, started[k].Sub(started[k-1]))
				}
			}
			per := total / time.Duration(b.N)
			b.ReportMetric(per.Seconds(), "s/chain")
			b.ReportMetric(float64(per.Microseconds())/1000/n, "ms/hop")
			b.ReportMetric(float64(talontest.Percentile(hops, 50).Microseconds())/1000, "ms/hop-p50")
			b.ReportMetric(float64(talontest.Percentile(hops, 99).Microseconds())/1000, "ms/hop-p99")
		})
	}
}

// BenchmarkMemory100kJobs: the heap held by 100,000 loaded jobs, their
// schedule and the engine's plan.
func BenchmarkMemory100kJobs(b *testing.B) {
	const jobs = 100000
	for i := 0; i < b.N; i++ {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		s := genSchedule(b, jobs, `
  j%[1]d:
    period: daily
    timezone: Europe/London
    triggers: [{schedule: "30 6 * * 1-5"}]
    constraints: {not_before: "07:00", max_running: 1}
    command: [/bin/true, "--day"]
`)
		e, _ := benchEngine(b, s, openSQLite(b), time.Now())
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(e)
		b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/(1<<20), "MB")
	}
}

func apiTrigger() talon.TriggerRequest { return talon.TriggerRequest{} }

var (
	historyPeriod = flag.Int("history.period", 100_000, "BenchmarkHistory100k: runs already in the period the jobs wait on")
	historyTotal  = flag.Int("history.total", 1_000_000, "BenchmarkHistory100k: runs already in earlier periods")
)

// BenchmarkHistory100k: the cost per run does not grow with history. 500
// jobs fire every minute and wait (after) for a job whose period already
// holds 100,000 runs, with 1,000,000 more runs of the 500 jobs in earlier
// periods, in a database brought to a steady state after it was filled
// (openSteady); an empty store takes the same rounds, in turn with it. Reports runs/s
// and the p99 of a round (one minute's 500 runs, fired to finished) for
// both, and their ratios (history ÷ empty: 1 means no cost from history).
func BenchmarkHistory100k(b *testing.B) {
	const jobs = 500
	s := genSchedule(b, jobs, `
  h%[1]d:
    period: daily
    triggers: [{schedule: "* * * * *"}]
    constraints: {max_running: 1, after: [up]}
    executor: inprocess
    command: [noop]
`, "  up:\n    period: daily\n    executor: inprocess\n    command: [noop]\n")
	for _, tc := range stores {
		b.Run(tc.name, func(b *testing.B) {
			rounds := max(1, b.N/jobs)
			// The two stores take their rounds in turn, so a machine
			// that slows down or speeds up meanwhile weighs on both
			// alike (measured one after the other, the ratio moved by
			// 0.2 between runs).
			type side struct {
				e   *engine.Engine
				c   *talontest.Clock
				per []time.Duration
			}
			start := time.Date(2026, 11, 26, 6, 0, 30, 0, time.UTC)
			open := func(st store.Store) *side {
				e, c := benchEngine(b, s, st, start)
				settleAt(b, e, c, start)
				return &side{e: e, c: c}
			}
			b.StopTimer()
			emptyStore := tc.open(b)
			seedHistory(b, emptyStore, 0, 0)
			full := openSteady(b, tc.name, func(st store.Store) { seedHistory(b, st, *historyPeriod, *historyTotal) })
			empty, hist := open(emptyStore), open(full)
			b.StartTimer()
			for i := 1; i <= rounds; i++ {
				sides := []*side{empty, hist}
				if i%2 == 0 {
					sides[0], sides[1] = hist, empty
				}
				for _, sd := range sides {
					t := time.Now()
					settleAt(b, sd.e, sd.c, start.Add(time.Duration(i)*time.Minute))
					sd.per = append(sd.per, time.Since(t))
				}
			}
			b.StopTimer()
			rateOf := func(sd *side) float64 {
				var sum time.Duration
				for _, d := range sd.per {
					sum += d
				}
				return float64(rounds*jobs) / sum.Seconds()
			}
			rate, rateEmpty := rateOf(hist), rateOf(empty)
			p99, p99Empty := talontest.Percentile(hist.per, 99), talontest.Percentile(empty.per, 99)
			b.ReportMetric(rate, "runs/s")
			b.ReportMetric(rateEmpty, "runs/s-empty")
			b.ReportMetric(rate/rateEmpty, "rate-ratio")
			b.ReportMetric(float64(p99.Microseconds())/1000, "ms/round-p99")
			b.ReportMetric(float64(p99Empty.Microseconds())/1000, "ms/round-p99-empty")
			b.ReportMetric(float64(p99)/float64(p99Empty), "p99-ratio")
		})
	}
}

// openSteady opens a store of the kind named, fills it with seed, and
// brings it to the state a database that grew slowly would be in, which
// is what the history benchmark compares with an empty one: PostgreSQL
// vacuumed and analyzed (as autovacuum keeps it), SQLite with its
// write-ahead log checkpointed (as closing the file does).
func openSteady(b *testing.B, kind string, seed func(store.Store)) store.Store {
	ctx := context.Background()
	switch kind {
	case "sqlite":
		path := filepath.Join(b.TempDir(), "talon.db")
		st, err := sqlite.Open(ctx, path)
		if err != nil {
			b.Fatal(err)
		}
		seed(st)
		st.Close()
		if st, err = sqlite.Open(ctx, path); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		return st
	case "postgres":
		url := talontest.PostgresURL(b)
		st, err := postgres.Open(ctx, url)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		seed(st)
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close(ctx)
		for _, q := range []string{"VACUUM ANALYZE runs, events, run_counts, decisions", "CHECKPOINT"} {
			if _, err := conn.Exec(ctx, q); err != nil {
				b.Fatalf("%s: %v", q, err)
			}
		}
		return st
	}
	b.Fatalf("unknown store %q", kind)
	return nil
}

// seedHistory creates, finished, inPeriod runs of "up" in 2026-11-26 (one
// of them succeeded, so the jobs waiting on it pass) and total runs of
// h0…h499 spread over the days before it. Runs are created blocked or
// skipped; a third of them are then moved to failed.
func seedHistory(b *testing.B, st store.Store, inPeriod, total int) {
	ctx := context.Background()
	now := time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)
	var batch []store.CreateRun
	flush := func() {
		res, err := st.CreateRuns(ctx, batch)
		if err != nil {
			b.Fatalf("seed: %v", err)
		}
		var ts []store.Transition
		for _, r := range res {
			if r.Run.State == talon.StateBlocked {
				ts = append(ts, store.Transition{RunID: r.Run.ID, From: []talon.State{talon.StateBlocked}, To: talon.StateFailed, Reason: "seeded", Now: now})
			}
		}
		if _, err := st.Transition(ctx, ts); err != nil {
			b.Fatalf("seed: %v", err)
		}
		batch = batch[:0]
	}
	add := func(i int, job, period string, at time.Time) {
		state := talon.StateSkipped
		if i%3 == 0 {
			state = talon.StateBlocked
		}
		batch = append(batch, store.CreateRun{Job: job, Period: period, Key: fmt.Sprintf("seed-%s-%d", job, i), State: state, Reason: "seeded", Now: at})
		if len(batch) == 5000 {
			flush()
		}
	}
	for i := range inPeriod {
		add(i, "up", "daily/2026-11-26", now)
	}
	for i := range total {
		day := now.AddDate(0, 0, -1-i/500)
		add(i, fmt.Sprintf("h%d", i%500), "daily/"+day.Format(time.DateOnly), day)
	}
	if len(batch) > 0 {
		flush()
	}
	up, err := st.CreateRuns(ctx, []store.CreateRun{{Job: "up", Period: "daily/2026-11-26", Key: "seed-up", Reason: "seeded", Now: now}})
	if err != nil {
		b.Fatal(err)
	}
	id := up[0].Run.ID
	for _, step := range [][2]talon.State{{talon.StateBlocked, talon.StateReady}, {talon.StateReady, talon.StateRunning}, {talon.StateRunning, talon.StateSucceeded}} {
		res, err := st.Transition(ctx, []store.Transition{{RunID: id, From: []talon.State{step[0]}, To: step[1], Reason: "seeded", Now: now}})
		if err != nil || res[0].Err != nil {
			b.Fatalf("seed up: %v %v", err, res)
		}
	}
}
