package cli

import (
	"github.com/spf13/cobra"
)

func newArtifactCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "artifact",
		Short: "Record what runs produce",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "add [RUN] URL",
		Short: "Record an artifact (a URL) of a run (RUN defaults to $TALON_RUN_ID)",
		Example: `  talon artifact add s3://bucket/sales/2026-11-26.csv
  talon artifact add 1234 postgres://warehouse/sales_daily`,
		Args: argsWant(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			runArg, url := "", args[len(args)-1]
			if len(args) == 2 {
				runArg = args[0]
			}
			id, err := g.runFromEnv(runArg)
			if err != nil {
				return err
			}
			a, err := g.api().AddArtifact(cmd.Context(), id, url)
			if err != nil {
				return runErr(id, err)
			}
			if g.json() {
				return g.printJSON(a)
			}
			return nil
		},
	})
	return cmd
}
