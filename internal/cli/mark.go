package cli

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/talonhq/talon"
)

func newMarkCmd(g *globals) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "mark RUN succeeded|failed",
		Short: "Mark a run succeeded or failed by hand, with a reason (it was fixed outside Talon)",
		Long: `Mark a run succeeded or failed by hand, for when an operator fixed things
outside Talon. The reason is required and kept in the run's history
("marked succeeded by alice: fixed by hand") and in the audit.

Any run but a running one may be marked: a failed, skipped, blocked or
ready run, or a succeeded one marked failed. A running run is refused:
cancel it first. A run marked succeeded counts as a success at once: the
runs waiting for it (after:) are checked and its completion triggers fire.
A run marked failed is not retried.`,
		Example: `  talon mark 42 succeeded --reason "loaded by hand from the backup"`,
		Args:    argsWant(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseRunID(args[0])
			if err != nil {
				return err
			}
			to := talon.State(args[1])
			if to != talon.StateSucceeded && to != talon.StateFailed {
				return usagef("mark: state %q: want succeeded or failed", args[1])
			}
			if reason == "" {
				return usagef("mark: --reason is required: say why the run is marked %s", to)
			}
			run, err := g.api().Mark(cmd.Context(), id, to, reason, "")
			if err != nil {
				return runErr(id, err)
			}
			if g.json() {
				return g.printJSON(run)
			}
			fmt.Fprintf(g.stdout, "run %d is %s: %s\n", run.ID, run.State, run.Reason)
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (required)")
	return cmd
}
