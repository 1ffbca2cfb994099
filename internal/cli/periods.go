package cli

import (
	"strconv"

	"github.com/spf13/cobra"
	"github.com/talonhq/talon/internal/view"
)

func newPeriodsCmd(g *globals) *cobra.Command {
	var (
		f   view.PeriodFilter
		all bool
	)
	cmd := &cobra.Command{
		Use:   "periods",
		Short: "List the periods that have runs, newest first, with run counts per job",
		Args:  argsWant(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.Limit < 1 || f.Limit > 1000 {
				return usagef("--limit %d: want 1 to 1000", f.Limit)
			}
			var rows []view.PeriodInfo
			for {
				page, err := g.api().Periods(cmd.Context(), f)
				if err != nil {
					return err
				}
				rows = append(rows, page...)
				// The limit counts periods: a page with fewer is the last.
				if !all || len(page) == 0 || countPeriods(page) < f.Limit {
					break
				}
				f.Before = page[len(page)-1].Period
			}
			if g.json() {
				if rows == nil {
					rows = []view.PeriodInfo{}
				}
				return g.printJSON(rows)
			}
			w := g.table()
			row(w, "PERIOD", "JOB", "LATEST", "STATE", "RUNS")
			for _, p := range rows {
				row(w, p.Period, p.Job, strconv.FormatInt(p.LatestRun, 10), orDash(string(p.Latest)), counts(p.Counts))
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&f.Job, "job", "", "only this job")
	cmd.Flags().IntVar(&f.Limit, "limit", 100, "at most this many periods (1 to 1000); with --all, per request")
	cmd.Flags().BoolVar(&all, "all", false, "every period, following the pages")
	return cmd
}

func countPeriods(rows []view.PeriodInfo) int {
	n := 0
	for i, p := range rows {
		if i == 0 || p.Period != rows[i-1].Period {
			n++
		}
	}
	return n
}
