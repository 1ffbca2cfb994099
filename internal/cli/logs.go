package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

func newLogsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "logs RUN",
		Short: "Print a run's log (stdout and stderr), following it while the run writes",
		Args:  argsWant(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseRunID(args[0])
			if err != nil {
				return err
			}
			rc, err := g.api().Logs(cmd.Context(), id)
			if err != nil {
				return runErr(id, err)
			}
			defer rc.Close()
			if _, err := io.Copy(g.stdout, rc); err != nil {
				return fmt.Errorf("read log of run %d: %w", id, err)
			}
			return nil
		},
	}
}
