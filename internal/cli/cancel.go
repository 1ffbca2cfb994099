package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/talonhq/talon"
)

// cancelWait bounds how long cancel waits for a running run to stop: the
// owner acts on the request at its next heartbeat (10 s with the default
// lease) when another scheduler holds the run, then the executor allows
// its process a grace period (5 s) between SIGTERM and SIGKILL.
const cancelWait = 30 * time.Second

func newCancelCmd(g *globals) *cobra.Command {
	var bf bulkFlags
	cmd := &cobra.Command{
		Use:   "cancel RUN | --job J [--period P] [--state S]",
		Short: "Cancel a run, or the runs a filter matches: a blocked or ready run is skipped, a running one is killed and failed",
		Long: `Cancel a run: a blocked or ready run is skipped, a running one is killed
and failed with reason "cancelled by USER".

For a running run, cancel waits (up to 30s) until the run has stopped and
prints the state it ended in.

With --job and/or --period instead of a RUN, cancel cancels every run the
filter matches in the states --state names (default: blocked, ready and
running), at most 1000 at once (a filter that matches more is refused:
narrow it), and prints what came of each run and the count. Running runs
are stopped as by talon cancel RUN, several at a time. --dry-run lists
the runs and does nothing.`,
		Example: `  talon cancel 42
  talon cancel --job load-sales --state blocked --dry-run
  talon cancel --job load-sales --state blocked --period daily/2026-11-26`,
		Args: argsWant(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 && bf.filtered(cmd) {
				return usagef("cancel: give a RUN or a filter (--job, --period, --state), not both")
			}
			if len(args) == 0 {
				req, err := bf.request("cancel")
				if err != nil {
					return err
				}
				res, err := g.api().BulkCancel(cmd.Context(), req)
				if err != nil {
					return err
				}
				return g.printBulk(res, "cancelled")
			}
			id, err := parseRunID(args[0])
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			run, err := g.api().Cancel(ctx, id, "")
			if err != nil {
				return runErr(id, err)
			}
			stopped := true
			if !run.State.Terminal() {
				// The server has asked the executor to stop the run; what
				// the user wants to know is what became of it.
				run, stopped, err = g.waitFinished(ctx, run, cancelWait)
				if err != nil {
					return runErr(id, err)
				}
			}
			if !stopped {
				return withHint(fmt.Errorf("run %d is still %s %s after the cancel (%s)", run.ID, run.State, cancelWait, orDash(run.Reason)),
					"talon show %d", run.ID)
			}
			if g.json() {
				return g.printJSON(run)
			}
			fmt.Fprintf(g.stdout, "run %d is %s: %s\n", run.ID, run.State, orDash(run.Reason))
			return nil
		},
	}
	bf.add(cmd, "blocked,ready,running")
	return cmd
}

// waitFinished polls run until it reaches a terminal state or timeout
// passes; finished says which. The interval grows from 50ms to 1s, so a
// run that stops at once is reported at once.
func (g *globals) waitFinished(ctx context.Context, run talon.Run, timeout time.Duration) (_ talon.Run, finished bool, _ error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	every := 50 * time.Millisecond
	for {
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return run, false, ctx.Err()
		case <-deadline.C:
			t.Stop()
			return run, false, nil
		case <-t.C:
		}
		d, err := g.api().Run(ctx, run.ID)
		if err != nil {
			return run, false, err
		}
		run = d.Run
		if run.State.Terminal() {
			return run, true, nil
		}
		every = min(every*2, time.Second)
	}
}
