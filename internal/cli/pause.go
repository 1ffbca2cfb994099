package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newPauseCmd(g *globals) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "pause JOB",
		Short: "Pause a job: its triggers stop creating runs and its blocked runs stay blocked until resumed",
		Long: `Pause a job. While it is paused:
  - each fire of its time and completion triggers is recorded as a skipped
    run ("paused by USER"), so no fire is lost silently; fires are not
    caught up on resume (use talon trigger or talon backfill for that);
  - talon trigger and talon backfill of the job are refused;
  - its blocked runs stay blocked (they are still checked, and show why
    they wait), and start only after talon resume;
  - runs already ready or running go on.
The pause is kept in the state store: every scheduler sharing it obeys,
and it survives restarts and reloads.`,
		Example: `  talon pause load-sales --reason "warehouse maintenance"
  talon resume load-sales`,
		Args: argsWant(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, created, err := g.api().Pause(cmd.Context(), args[0], "", reason)
			if err != nil {
				return g.jobErr(cmd, args[0], err)
			}
			if g.json() {
				return g.printJSON(p)
			}
			if !created {
				fmt.Fprintf(g.stdout, "job %s was already %s\n", p.Job, p.Describe())
				return nil
			}
			fmt.Fprintf(g.stdout, "job %s %s\n", p.Job, p.Describe())
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, for talon jobs and the audit")
	return cmd
}

func newResumeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "resume JOB",
		Short: "Resume a paused job: its triggers fire again and its blocked runs are checked at once",
		Args:  argsWant(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := g.api().Resume(cmd.Context(), args[0], "")
			if err != nil {
				return g.jobErr(cmd, args[0], err)
			}
			if g.json() {
				return g.printJSON(p)
			}
			fmt.Fprintf(g.stdout, "job %s resumed (it was %s)\n", p.Job, p.Describe())
			return nil
		},
	}
}
