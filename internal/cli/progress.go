package cli

import (
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/talonhq/talon"
)

func newProgressCmd(g *globals) *cobra.Command {
	var (
		items      []string
		message    string
		expected   time.Duration
		elapsed    time.Duration
		itemsDone  int64
		itemsTotal int64
	)
	cmd := &cobra.Command{
		Use:   "progress [RUN] [PERCENT]",
		Short: "Report the progress of a running run (RUN defaults to $TALON_RUN_ID)",
		Long: `Report the progress of a running run. Inside a job, RUN defaults to
$TALON_RUN_ID, and the server and token to $TALON_URL and $TALON_TOKEN
(talon sets all three for the jobs it runs), so "talon progress 40%" is
enough. Each report replaces the previous one.

PERCENT is a number from 0 to 100 ("40%" or "40"), or DONE/TOTAL
("3/10", the same as --items-done 3 --items-total 10, and 30 %).

With one argument, it is the PERCENT when it ends in %, holds a /, or
no flag is given; otherwise it is the RUN.`,
		Example: `  talon progress 40%
  talon progress --items-done 120 --items-total 400 --expected 20m
  talon progress --item eu=done --item us=running
  talon progress 1234 75% --message "loading partitions"`,
		Args: argsWant(cobra.MaximumNArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			var p talon.Progress
			for _, it := range items {
				name, state, ok := strings.Cut(it, "=")
				if !ok || name == "" {
					return usagef("--item %q: want NAME=STATE", it)
				}
				p.Items = append(p.Items, talon.ProgressItem{Name: name, State: state})
			}
			p.Message = message
			p.Expected = talon.Duration(expected)
			p.Elapsed = talon.Duration(elapsed)
			p.ItemsDone, p.ItemsTotal = itemsDone, itemsTotal
			other := len(p.Items) > 0 || message != "" || expected != 0 || elapsed != 0 ||
				cmd.Flags().Changed("items-done") || cmd.Flags().Changed("items-total")

			var runArg, pctArg string
			switch {
			case len(args) == 2:
				runArg, pctArg = args[0], args[1]
			case len(args) == 1 && (strings.HasSuffix(args[0], "%") || strings.Contains(args[0], "/") || !other):
				pctArg = args[0]
			case len(args) == 1:
				runArg = args[0]
			case !other:
				return usagef("nothing to report: give a PERCENT, --items-done, --item, --message, --expected or --elapsed")
			}
			if pctArg != "" {
				if strings.ContainsAny(pctArg, " \t") {
					return usagef("percent %q: want one word, like 40%% or 3/10 (the message goes in --message)", pctArg)
				}
				pp, err := talon.ParseProgress(pctArg)
				if err != nil {
					return usagef("%v", err)
				}
				p.Percent = pp.Percent
				if pp.ItemsTotal > 0 {
					if cmd.Flags().Changed("items-done") || cmd.Flags().Changed("items-total") {
						return usagef("percent %q: give DONE/TOTAL or --items-done/--items-total, not both", pctArg)
					}
					p.ItemsDone, p.ItemsTotal = pp.ItemsDone, pp.ItemsTotal
				}
			}
			if err := p.Validate(); err != nil {
				return usagef("%v", err)
			}
			id, err := g.runFromEnv(runArg)
			if err != nil {
				return err
			}
			if err := g.api().SetProgress(cmd.Context(), id, p); err != nil {
				return runErr(id, err)
			}
			return nil
		},
	}
	cmd.Flags().Int64Var(&itemsDone, "items-done", 0, "how many items (rows, files, partitions) are done")
	cmd.Flags().Int64Var(&itemsTotal, "items-total", 0, "how many items there are in all")
	cmd.Flags().StringArrayVar(&items, "item", nil, "an item's state, NAME=STATE (repeatable)")
	cmd.Flags().StringVar(&message, "message", "", "what the run is doing")
	cmd.Flags().DurationVar(&expected, "expected", 0, "how long the run is expected to take in all (e.g. 20m)")
	cmd.Flags().DurationVar(&elapsed, "elapsed", 0, "how long the run has taken so far")
	return cmd
}

// runFromEnv reads a RUN argument, or $TALON_RUN_ID when there is none:
// the executor sets it for the jobs it starts.
func (g *globals) runFromEnv(arg string) (int64, error) {
	if arg != "" {
		return parseRunID(arg)
	}
	env := g.getenv("TALON_RUN_ID")
	if env == "" {
		return 0, usagef("no run: give RUN, or set TALON_RUN_ID (talon sets it for the jobs it runs)")
	}
	id, err := strconv.ParseInt(env, 10, 64)
	if err != nil || id <= 0 {
		return 0, usagef("TALON_RUN_ID %q: want a run id (a positive integer)", env)
	}
	return id, nil
}
