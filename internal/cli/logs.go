package cli

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

func newLogsCmd(g *globals) *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs [-f] RUN",
		Short: "Print a run's log (stdout and stderr); with -f, follow it until the run ends",
		Long: `Print a run's log (stdout and stderr) as it is now.

With -f (--follow), keep printing what the run writes until it has
finished; for a run that has not started yet, wait for it to start.`,
		Args: argsWant(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseRunID(args[0])
			if err != nil {
				return err
			}
			open := g.api().Logs
			if follow {
				open = g.api().FollowLogs
			}
			rc, err := open(cmd.Context(), id)
			if err != nil {
				return runErr(id, err)
			}
			defer rc.Close()
			if _, err := io.Copy(g.stdout, rc); err != nil {
				if errors.Is(err, io.ErrUnexpectedEOF) && follow {
					return withHint(fmt.Errorf("log of run %d: the server ended the stream before the run finished", id),
						"talon logs -f %d", id)
				}
				return fmt.Errorf("read log of run %d: %w", id, err)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "follow the log until the run ends")
	return cmd
}
