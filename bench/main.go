// Command bench compares Talon with River on the same local PostgreSQL:
// the rows of the performance issue's table, measured side by side and
// interleaved, round after round, with the ratio Talon/River of each.
// It is a separate module so that River never becomes a dependency of
// Talon; bench/README.md says what each row measures and how to run it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"
)

type options struct {
	rounds       int
	n            int
	batch        int
	clients      int
	chain        int
	local        int
	pg           string
	root         string
	rows         string
	riverDefault bool
	riverPool    int
	timeout      time.Duration
}

func main() {
	var o options
	flag.IntVar(&o.rounds, "rounds", 3, "interleaved rounds")
	flag.IntVar(&o.n, "n", 20000, "jobs/runs in rows 1-3 (row 1's Talon figure fires them 500 a round)")
	flag.IntVar(&o.batch, "batch", 500, "row 1: River's InsertMany batch size")
	flag.IntVar(&o.clients, "clients", 8, "row 3 and 5: concurrent clients")
	flag.IntVar(&o.chain, "chain", 1000, "row 4: links in the River chain and the talon serve chain")
	flag.IntVar(&o.local, "local", 4000, "row 5: /bin/true runs (Talon) and processes (os/exec)")
	flag.StringVar(&o.pg, "pg", envOr("TALON_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"), "PostgreSQL URL (a superuser or a role that may create schemas); each side gets its own schema, dropped afterwards")
	flag.StringVar(&o.root, "talon", "..", "directory of the Talon module to build and measure")
	flag.StringVar(&o.rows, "rows", "1,2,3,4,5", "rows to run, comma-separated")
	flag.BoolVar(&o.riverDefault, "river-default", false, "also run rows 1-3 with River's default FetchCooldown (100 ms)")
	flag.IntVar(&o.riverPool, "river-pool", 20, "River's pgxpool MaxConns; 0 keeps pgx's default (the greater of 4 and the CPUs), which Talon's store uses")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "bound on one measurement")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// figure is one measured quantity of a row for both sides.
type figure struct {
	row   string // what is measured
	unit  string // "/s" or "ms"
	talon float64
	river float64
	// talonWhat and riverWhat say which measurement gave the figure
	// when the row does not say it alone.
	talonWhat, riverWhat string
}

func (f figure) ratio() float64 { return f.talon / f.river }

func run(ctx context.Context, o options, out io.Writer) error {
	if o.rounds < 1 || o.n < 1 || o.batch < 1 || o.clients < 1 || o.chain < 2 || o.local < 1 || o.riverPool < 0 {
		return errors.New("-rounds, -n, -batch, -clients and -local must be at least 1, -chain at least 2, -river-pool at least 0")
	}
	rows := map[string]bool{}
	for r := range strings.SplitSeq(o.rows, ",") {
		r = strings.TrimSpace(r)
		if r < "1" || r > "5" || len(r) != 1 {
			return fmt.Errorf("-rows %q: want numbers 1 to 5, comma-separated", o.rows)
		}
		rows[r] = true
	}
	root, err := filepath.Abs(o.root)
	if err != nil {
		return err
	}
	if b, err := os.ReadFile(filepath.Join(root, "go.mod")); err != nil || !strings.Contains(string(b), "module github.com/talonhq/talon\n") {
		return fmt.Errorf("-talon %s is not the Talon module's directory (run from bench/, or pass -talon DIR)", root)
	}
	if err := execBase(ctx, o.pg, "SELECT 1"); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "talon-river-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Fprintf(out, "building talon and the engine's benchmarks from %s\n", root)
	tb, err := buildTalon(ctx, root, dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "PostgreSQL %s; %d rounds, n=%d, batch=%d, clients=%d, chain=%d, local=%d\n\n", redact(o.pg), o.rounds, o.n, o.batch, o.clients, o.chain, o.local)

	var all [][]figure
	for round := 1; round <= o.rounds; round++ {
		// Alternate which side goes first, so neither always runs on a
		// database the other has just warmed (or left vacuuming).
		talonFirst := round%2 == 1
		figs, err := runRound(ctx, o, rows, tb, round, talonFirst)
		if err != nil {
			return fmt.Errorf("round %d: %w", round, err)
		}
		first := "River"
		if talonFirst {
			first = "Talon"
		}
		fmt.Fprintf(out, "round %d of %d (%s first in each row)\n", round, o.rounds, first)
		printRound(out, figs)
		fmt.Fprintln(out)
		all = append(all, figs)
	}
	printSummary(out, all)
	return nil
}

// progress is where pair says what it is doing: a full run takes many
// minutes, and the tables come only at the end of each round.
var progress io.Writer = os.Stderr

// pair runs the two sides of a row in the round's order; a nil side is
// skipped (Talon's, when a row is run again beside another River config).
func pair(what string, talonFirst bool, talon, river func() error) error {
	type side struct {
		name string
		f    func() error
	}
	fs := []side{{"Talon", talon}, {"River", river}}
	if !talonFirst {
		fs[0], fs[1] = fs[1], fs[0]
	}
	for _, s := range fs {
		if s.f == nil {
			continue
		}
		began := time.Now()
		fmt.Fprintf(progress, "bench: %s: %s…\n", what, s.name)
		if err := s.f(); err != nil {
			return err
		}
		fmt.Fprintf(progress, "bench: %s: %s done in %s\n", what, s.name, time.Since(began).Round(time.Millisecond))
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func runRound(ctx context.Context, o options, rows map[string]bool, tb *talonBuild, round int, talonFirst bool) ([]figure, error) {
	tuned := riverConfig{name: "River tuned", fetchCooldown: time.Millisecond, maxWorkers: 100, poolConns: int32(o.riverPool)}
	configs := []riverConfig{tuned}
	if o.riverDefault {
		configs = append(configs, riverConfig{name: "River default", maxWorkers: 100, poolConns: int32(o.riverPool)})
	}
	talonSchema := fmt.Sprintf("bench_talon_r%d", round)
	riverSchema := fmt.Sprintf("bench_river_r%d", round)
	var figs []figure

	if rows["1"] {
		for ci, cfg := range configs {
			var tRate float64
			talon := func() error {
				res, err := tb.engineBench(ctx, o.pg, "^BenchmarkEndToEnd$/^postgres$", fmt.Sprintf("%dx", o.n))
				if err != nil {
					return err
				}
				tRate = res[len(res)-1].metrics["runs/s"]
				if tRate == 0 {
					return fmt.Errorf("%s reported no runs/s", res[len(res)-1].name)
				}
				return nil
			}
			if ci > 0 { // Talon's side does not depend on River's config.
				talon, tRate = nil, figs[len(figs)-1].talon
			}
			var r load
			err := pair(fmt.Sprintf("round %d row 1 (%s)", round, cfg.name), talonFirst, talon,
				func() (err error) {
					r, err = riverBatch(ctx, o.pg, riverSchema, cfg, o.n, o.batch, o.timeout)
					return err
				})
			if err != nil {
				return nil, fmt.Errorf("row 1: %w", err)
			}
			figs = append(figs, figure{row: fmt.Sprintf("1 batch: %d created → all succeeded", o.n), unit: "/s", talon: tRate, river: r.rate(),
				talonWhat: "BenchmarkEndToEnd/postgres", riverWhat: fmt.Sprintf("%s, InsertMany×%d", cfg.name, o.batch)})
		}
	}

	oneByOne := func(row string, clients int) error {
		sched := "jobs:\n  noop:\n    period: daily\n    executor: inprocess\n    command: [noop]\n"
		for ci, cfg := range configs {
			var t, r load
			talon := func() (err error) {
				t, err = talonTriggers(ctx, tb, o.pg, talonSchema, sched, "noop", clients, o.n, o.timeout)
				return err
			}
			if ci > 0 { // the Talon figures of the row's first config stand
				talon = nil
			}
			err := pair(fmt.Sprintf("round %d row %s (%s)", round, row, cfg.name), talonFirst, talon,
				func() (err error) {
					r, err = riverOneByOne(ctx, o.pg, riverSchema, cfg, clients, o.n, o.timeout)
					return err
				})
			if err != nil {
				return fmt.Errorf("row %s: %w", row, err)
			}
			label := fmt.Sprintf("%s %d created one at a time by %d client(s)", row, o.n, clients)
			talonFigs := []float64{t.rate(), ms(percentile(t.lat, 50)), ms(percentile(t.lat, 99)), ms(percentile(t.seen, 50)), ms(percentile(t.seen, 99))}
			if ci > 0 {
				// The same Talon figures again, beside River's other config.
				for k, f := range figs[len(figs)-5:] {
					talonFigs[k] = f.talon
				}
			}
			figs = append(figs,
				figure{row: label + ": rate", unit: "/s", talon: talonFigs[0], river: r.rate(), talonWhat: "talon serve, HTTP", riverWhat: cfg.name + ", Insert"},
				figure{row: label + ": p50 create→finish", unit: "ms", talon: talonFigs[1], river: ms(percentile(r.lat, 50)),
					talonWhat: "to the run's succeeded stamp", riverWhat: cfg.name + ", to the worker's return"},
				figure{row: label + ": p99 create→finish", unit: "ms", talon: talonFigs[2], river: ms(percentile(r.lat, 99)),
					talonWhat: "to the run's succeeded stamp", riverWhat: cfg.name + ", to the worker's return"},
				figure{row: label + ": p50 create→seen done", unit: "ms", talon: talonFigs[3], river: ms(percentile(r.seen, 50)),
					talonWhat: "to the event stream's succeeded", riverWhat: cfg.name + ", to the completed event"},
				figure{row: label + ": p99 create→seen done", unit: "ms", talon: talonFigs[4], river: ms(percentile(r.seen, 99)),
					talonWhat: "to the event stream's succeeded", riverWhat: cfg.name + ", to the completed event"})
		}
		return nil
	}
	if rows["2"] {
		if err := oneByOne("2", 1); err != nil {
			return nil, err
		}
	}
	if rows["3"] {
		if err := oneByOne("3", o.clients); err != nil {
			return nil, err
		}
	}

	if rows["4"] {
		var benchHop float64
		var benchName string
		var tc, rc chain
		err := pair(fmt.Sprintf("round %d row 4", round), talonFirst,
			func() error {
				// The PostgreSQL variant where the benchmark has store
				// variants; go test reports nothing for a benchmark without
				// them under that pattern, so it is then run whole.
				res, err := tb.engineBench(ctx, o.pg, "^BenchmarkChain1000$/^postgres$", "1x")
				if errors.Is(err, errNoResult) {
					res, err = tb.engineBench(ctx, o.pg, "^BenchmarkChain1000$", "1x")
				}
				if err != nil {
					return err
				}
				benchName, benchHop = res[0].name, res[0].metrics["ms/hop"]
				if tc, err = talonChain(ctx, tb, o.pg, talonSchema, o.chain, o.timeout); err != nil {
					return err
				}
				return nil
			},
			func() (err error) {
				rc, err = riverChain(ctx, o.pg, riverSchema, tuned, o.chain, o.timeout)
				return err
			})
		if err != nil {
			return nil, fmt.Errorf("row 4: %w", err)
		}
		mean := func(ds []time.Duration) float64 {
			var s time.Duration
			for _, d := range ds {
				s += d
			}
			return ms(s) / float64(len(ds))
		}
		figs = append(figs,
			figure{row: "4 dependency hop, mean", unit: "ms", talon: benchHop, river: mean(rc.startToStart),
				talonWhat: benchName + " (finish→finish; " + chainStore(benchName) + ")", riverWhat: fmt.Sprintf("start→next start, %d links", o.chain)},
			figure{row: "4 dependency hop, mean", unit: "ms", talon: mean(tc.finishToFinish), river: mean(rc.finishToFinish),
				talonWhat: fmt.Sprintf("talon serve, PostgreSQL, finish→finish, %d links", o.chain), riverWhat: "finish→next finish"},
			figure{row: "4 dependency hop, p50", unit: "ms", talon: ms(percentile(tc.finishToFinish, 50)), river: ms(percentile(rc.finishToFinish, 50)),
				talonWhat: "talon serve, finish→finish", riverWhat: "finish→next finish"},
			figure{row: "4 dependency hop, p99", unit: "ms", talon: ms(percentile(tc.finishToFinish, 99)), river: ms(percentile(rc.finishToFinish, 99)),
				talonWhat: "talon serve, finish→finish", riverWhat: "finish→next finish"})
	}

	if rows["5"] {
		var t load
		var execRate float64
		sched := "jobs:\n  true:\n    period: daily\n    command: [/bin/true]\n"
		err := pair(fmt.Sprintf("round %d row 5", round), talonFirst,
			func() (err error) {
				t, err = talonTriggers(ctx, tb, o.pg, talonSchema, sched, "true", o.clients, o.local, o.timeout)
				return err
			},
			func() (err error) {
				execRate, err = execTrue(ctx, o.clients, o.local)
				return err
			})
		if err != nil {
			return nil, fmt.Errorf("row 5: %w", err)
		}
		figs = append(figs, figure{row: fmt.Sprintf("5 local /bin/true, %d at a time", o.clients), unit: "/s", talon: t.rate(), river: execRate,
			talonWhat: fmt.Sprintf("talon serve, %d runs", o.local), riverWhat: fmt.Sprintf("os/exec alone, %d processes (not River)", o.local)})
	}
	return figs, nil
}

// chainStore names the store BenchmarkChain1000 used, from its name: a
// benchmark without a store in its name (the form before the PostgreSQL
// variant) runs on SQLite.
func chainStore(name string) string {
	switch {
	case strings.Contains(name, "/postgres"):
		return "PostgreSQL"
	case strings.Contains(name, "/sqlite"):
		return "SQLite"
	}
	return "SQLite: no PostgreSQL variant in this version"
}

// execTrue runs /bin/true n times from workers goroutines with os/exec
// and returns processes per second: the machine's parallel spawn rate,
// what Talon's local executor is compared with.
func execTrue(ctx context.Context, workers, n int) (float64, error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	began := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if err := exec.CommandContext(ctx, "/bin/true").Run(); err != nil {
					errc <- fmt.Errorf("os/exec /bin/true: %w", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(began)
	select {
	case err := <-errc:
		return 0, err
	default:
	}
	return float64(n) / elapsed.Seconds(), nil
}

func num(v float64, unit string) string {
	if unit == "ms" {
		if v < 10 {
			return fmt.Sprintf("%.2f ms", v)
		}
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%s/s", thousands(v))
}

func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func printRound(out io.Writer, figs []figure) {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "row\tTalon\tRiver\tTalon/River\tTalon measured\tRiver measured")
	for _, f := range figs {
		fmt.Fprintf(w, "%s\t%s\t%s\t%.2f\t%s\t%s\n", f.row, num(f.talon, f.unit), num(f.river, f.unit), f.ratio(), f.talonWhat, f.riverWhat)
	}
	w.Flush()
}

// printSummary prints, for each figure, its range over the rounds on
// each side and the range of the per-round ratio.
func printSummary(out io.Writer, all [][]figure) {
	fmt.Fprintf(out, "summary over %d round(s): min–max (ratio Talon/River per round; for /s above 1 favours Talon, for ms below 1 does)\n", len(all))
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "row\tTalon\tRiver\tTalon/River\tTalon measured\tRiver measured")
	for i, f := range all[0] {
		var ts, rs, qs []float64
		for _, round := range all {
			ts = append(ts, round[i].talon)
			rs = append(rs, round[i].river)
			qs = append(qs, round[i].ratio())
		}
		span := func(vs []float64) string {
			lo, hi := slices.Min(vs), slices.Max(vs)
			if f.unit == "ms" {
				return strings.TrimSuffix(num(lo, "ms"), " ms") + "–" + num(hi, "ms")
			}
			return thousands(lo) + "–" + num(hi, "/s")
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%.2f–%.2f\t%s\t%s\n", f.row, span(ts), span(rs), slices.Min(qs), slices.Max(qs), f.talonWhat, f.riverWhat)
	}
	w.Flush()
}
