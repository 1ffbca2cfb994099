package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newRetryCmd(g *globals) *cobra.Command {
	var bf bulkFlags
	cmd := &cobra.Command{
		Use:   "retry RUN | --job J [--period P] [--state S]",
		Short: "Create a new attempt of a failed or skipped run (or of the runs a filter matches), in the same period",
		Long: `Create a new attempt of a failed or skipped run, in the same period. A run
is retried at most once: retry the latest attempt.

With --job and/or --period instead of a RUN, retry retries every run the
filter matches in the states --state names (default: failed and skipped),
at most 1000 at once (a filter that matches more is refused: narrow it);
runs already retried are skipped. It prints what came of each run and the
count. --dry-run lists the runs and does nothing.`,
		Example: `  talon retry 42
  talon retry --job load-sales --state failed --period daily/2026-11-26`,
		Args: argsWant(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 && bf.filtered(cmd) {
				return usagef("retry: give a RUN or a filter (--job, --period, --state), not both")
			}
			if len(args) == 0 {
				req, err := bf.request("retry")
				if err != nil {
					return err
				}
				res, err := g.api().BulkRetry(cmd.Context(), req)
				if err != nil {
					return err
				}
				return g.printBulk(res, "retried")
			}
			id, err := parseRunID(args[0])
			if err != nil {
				return err
			}
			run, err := g.api().Retry(cmd.Context(), id, "")
			if err != nil {
				return runErr(id, err)
			}
			if g.json() {
				return g.printJSON(run)
			}
			fmt.Fprintf(g.stdout, "run %d created: attempt %d of %s for %s (%s)\n", run.ID, run.Attempt, run.Job, run.Period, run.State)
			return nil
		},
	}
	bf.add(cmd, "failed,skipped")
	return cmd
}
