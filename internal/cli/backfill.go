package cli

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/talonhq/talon"
)

// BackfillResult is what `talon backfill -o json` prints.
type BackfillResult struct {
	Job     string  `json:"job"`
	Periods int     `json:"periods"`
	Created []int64 `json:"created"`
	Existed []int64 `json:"existed"`
}

func newBackfillCmd(g *globals) *cobra.Command {
	var (
		from, to, rate string
		params         []string
	)
	cmd := &cobra.Command{
		Use:   "backfill JOB --from PERIOD --to PERIOD [--rate N/s]",
		Short: "Create the runs of a job for a range of periods (idempotent: a second backfill creates nothing new)",
		Example: `  talon backfill load --from daily/2026-11-01 --to daily/2026-11-30
  talon backfill report --from monthly/2026-01 --to monthly/2026-10 --rate 2/s`,
		Args: argsWant(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			job := args[0]
			if from == "" || to == "" {
				return usagef("backfill: want --from and --to period keys, e.g. --from daily/2026-11-01 --to daily/2026-11-30")
			}
			every, err := parseRate(rate)
			if err != nil {
				return usagef("--rate %q: %v", rate, err)
			}
			req := talon.TriggerRequest{}
			for _, p := range params {
				k, v, ok := strings.Cut(p, "=")
				if !ok || k == "" {
					return usagef("--param %q: want NAME=VALUE", p)
				}
				if req.Params == nil {
					req.Params = map[string]string{}
				}
				req.Params[k] = v
			}
			ctx := cmd.Context()
			keys, err := g.api().PeriodRange(ctx, job, from, to)
			if err != nil {
				return g.jobErr(cmd, job, err)
			}
			bar := newProgressBar(g, len(keys))
			res := BackfillResult{Job: job, Periods: len(keys), Created: []int64{}, Existed: []int64{}}
			var tick *time.Ticker
			if every > 0 {
				tick = time.NewTicker(every)
				defer tick.Stop()
			}
			for i, k := range keys {
				if tick != nil && i > 0 {
					select {
					case <-ctx.Done():
						return ctx.Err()
					case <-tick.C:
					}
				}
				req.Period = k
				// The key makes the backfill idempotent: running it again
				// returns the runs it created the first time.
				req.Key = "backfill:" + k
				run, created, err := g.api().Trigger(ctx, job, req)
				if err != nil {
					bar.done()
					return fmt.Errorf("backfill %s at %s (%d of %d done): %w", job, k, i, len(keys), err)
				}
				if created {
					res.Created = append(res.Created, run.ID)
				} else {
					res.Existed = append(res.Existed, run.ID)
				}
				bar.set(i+1, k)
			}
			bar.done()
			if g.json() {
				return g.printJSON(res)
			}
			fmt.Fprintf(g.stdout, "backfill %s: %d periods from %s to %s: %d runs created, %d existed already\n",
				job, len(keys), from, to, len(res.Created), len(res.Existed))
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "first period key (inclusive)")
	cmd.Flags().StringVar(&to, "to", "", "last period key (inclusive)")
	cmd.Flags().StringVar(&rate, "rate", "", "at most N runs created per second (N/s) or minute (N/m); default: no limit")
	cmd.Flags().StringArrayVar(&params, "param", nil, "parameter NAME=VALUE for every run (repeatable)")
	return cmd
}

// parseRate reads "N/s", "N/m" or "N" (per second) into the pause between
// two runs; "" is no limit.
func parseRate(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	num, unit, _ := strings.Cut(s, "/")
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("want a positive rate like 5/s or 30/m")
	}
	per := time.Second
	switch unit {
	case "", "s":
	case "m":
		per = time.Minute
	case "h":
		per = time.Hour
	default:
		return 0, fmt.Errorf("unknown unit %q: want s, m or h", unit)
	}
	return time.Duration(float64(per) / n), nil
}

// progressBar draws on stderr when it is a terminal, and not at all
// otherwise, so scripts and logs stay clean.
type progressBar struct {
	g     *globals
	total int
	on    bool
}

func newProgressBar(g *globals, total int) *progressBar {
	f, ok := g.stderr.(*os.File)
	on := false
	if ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			on = true
		}
	}
	return &progressBar{g: g, total: total, on: on}
}

func (b *progressBar) set(n int, label string) {
	if !b.on || b.total == 0 {
		return
	}
	const width = 30
	filled := width * n / b.total
	fmt.Fprintf(b.g.stderr, "\r[%s%s] %d/%d %s\x1b[K", strings.Repeat("#", filled), strings.Repeat(".", width-filled), n, b.total, label)
}

func (b *progressBar) done() {
	if b.on {
		fmt.Fprintln(b.g.stderr)
	}
}
