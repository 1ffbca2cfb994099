package cli

import (
	"strconv"

	"github.com/spf13/cobra"
	"github.com/talonhq/talon/internal/api"
	"github.com/talonhq/talon/internal/store"
)

func newPeriodsCmd(g *globals) *cobra.Command {
	var f store.PeriodFilter
	cmd := &cobra.Command{
		Use:   "periods",
		Short: "List the periods that have runs, newest first, with run counts per job",
		Args:  argsWant(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.Limit < 1 || f.Limit > 1000 {
				return usagef("--limit %d: want 1 to 1000", f.Limit)
			}
			rows, err := g.api().Periods(cmd.Context(), f)
			if err != nil {
				return err
			}
			if g.json() {
				// The API's shape, not the store's.
				out := make([]api.PeriodInfo, len(rows))
				for i, p := range rows {
					out[i] = api.PeriodInfo{Period: p.Period, Job: p.Job, Counts: p.Counts, LatestRun: p.LatestRun, Latest: p.Latest}
				}
				return g.printJSON(out)
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
	cmd.Flags().IntVar(&f.Limit, "limit", 100, "at most this many rows (1 to 1000)")
	return cmd
}
