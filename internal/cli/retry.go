package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newRetryCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "retry RUN",
		Short: "Create a new attempt of a failed or skipped run, in the same period",
		Args:  argsWant(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
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
}
