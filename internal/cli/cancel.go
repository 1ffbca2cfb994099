package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newCancelCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "cancel RUN",
		Short: "Cancel a run: a blocked or ready run is skipped, a running one is killed and failed",
		Args:  argsWant(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseRunID(args[0])
			if err != nil {
				return err
			}
			run, err := g.api().Cancel(cmd.Context(), id, "")
			if err != nil {
				return runErr(id, err)
			}
			if g.json() {
				return g.printJSON(run)
			}
			fmt.Fprintf(g.stdout, "run %d is %s: %s\n", run.ID, run.State, orDash(run.Reason))
			return nil
		},
	}
}
