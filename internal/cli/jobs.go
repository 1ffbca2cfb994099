package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func newJobsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "jobs",
		Short: "List the jobs of the loaded schedule",
		Args:  argsWant(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			jobs, err := g.api().Jobs(cmd.Context())
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(jobs)
			}
			w := g.table()
			row(w, "NAME", "PERIOD", "TIMEZONE", "EXECUTOR", "NEXT", "TRIGGERS", "PAUSED")
			for _, j := range jobs {
				period := j.Period
				if j.Calendar != "" {
					period += " (" + j.Calendar + ")"
				}
				paused := "-"
				if j.Paused != nil {
					paused = "by " + j.Paused.By
					if j.Paused.Reason != "" {
						paused += ": " + oneLine(j.Paused.Reason)
					}
				}
				row(w, j.Name, period, orDash(j.Timezone), orDash(j.Executor), g.fmtRFC3339(j.Next), orDash(strings.Join(j.Triggers, "; ")), paused)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			// A trigger that stopped (a calendar that ends too early) must
			// not go unnoticed.
			for _, j := range jobs {
				for _, e := range j.Errors {
					fmt.Fprintf(g.stderr, "talon: job %s: %s\n", j.Name, e)
				}
			}
			return nil
		},
	}
}
