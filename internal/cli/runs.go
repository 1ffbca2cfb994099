package cli

import (
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/view"
)

func newRunsCmd(g *globals) *cobra.Command {
	var (
		f      view.RunFilter
		states []string
		all    bool
		watch  bool
		after  int64
	)
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "List runs, newest first",
		Long: `List runs, newest first.

With --watch, print the list, then a line for each change as it happens
(a transition, a new reason of a blocked run, a progress report, an
artifact) of the runs of --job and --period, until interrupted; with
-o json, print each change as one JSON event per line instead (no list).
--state and --limit apply to the list only. --after ID first prints the
changes since event ID (0: all of them, from the start), then follows:
a script that saves the id of the last event it read resumes there.
When the connection to the server is lost, the watch says so on stderr,
reconnects and goes on from the last change it printed.`,
		Example: `  talon runs --job load-sales --state failed,blocked
  talon runs --period daily/2026-11-26 -o json
  talon runs --job load-sales --all
  talon runs --watch --job load-sales`,
		Args: argsWant(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, v := range states {
				for s := range strings.SplitSeq(v, ",") {
					if s = strings.TrimSpace(s); s == "" {
						continue
					}
					if !talon.State(s).Valid() {
						return usagef("--state %q: want one of %s", s, stateNames())
					}
					f.States = append(f.States, talon.State(s))
				}
			}
			if f.Limit < 1 || f.Limit > 1000 {
				return usagef("--limit %d: want 1 to 1000", f.Limit)
			}
			if cmd.Flags().Changed("after") {
				if !watch {
					return usagef("--after: only with --watch")
				}
				if after < 0 {
					return usagef("--after %d: want an event id (0 or more)", after)
				}
			}
			if watch && all {
				return usagef("--all and --watch: choose one")
			}
			if watch {
				return g.watchRuns(cmd.Context(), f, after, cmd.Flags().Changed("after"))
			}
			runs, err := pages(all, f.Limit, &f.BeforeID, func(r talon.Run) int64 { return r.ID },
				func() ([]talon.Run, error) { return g.api().Runs(cmd.Context(), f) })
			if err != nil {
				return err
			}
			if g.json() {
				if runs == nil {
					runs = []talon.Run{}
				}
				return g.printJSON(runs)
			}
			g.printRuns(runs)
			return nil
		},
	}
	cmd.Flags().StringVar(&f.Job, "job", "", "only runs of this job")
	cmd.Flags().StringVar(&f.Period, "period", "", "only runs for this period (e.g. daily/2026-11-26)")
	cmd.Flags().StringSliceVar(&states, "state", nil, "only runs in these states (repeat, or comma-separated)")
	cmd.Flags().IntVar(&f.Limit, "limit", 100, "at most this many runs (1 to 1000); with --all, per request")
	cmd.Flags().BoolVar(&all, "all", false, "every matching run, following the pages")
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "after the list, print each change as it happens, until interrupted")
	cmd.Flags().Int64Var(&after, "after", 0, "with --watch: first print the changes since this event id (0: all)")
	return cmd
}

func (g *globals) printRuns(runs []talon.Run) {
	w := g.table()
	row(w, "ID", "JOB", "PERIOD", "STATE", "ATTEMPT", "STARTED", "DURATION", "REASON")
	now := time.Now()
	for _, r := range runs {
		row(w, strconv.FormatInt(r.ID, 10), r.Job, r.Period, string(r.State), strconv.Itoa(r.Attempt),
			g.fmtTimePtr(r.Started), runDuration(r, now), orDash(oneLine(r.Reason)))
	}
	w.Flush()
}

// oneLine keeps a reason on its table row.
func oneLine(s string) string {
	s, _, cut := strings.Cut(s, "\n")
	if cut {
		s += " …"
	}
	return s
}

func stateNames() string {
	names := make([]string, len(talon.States))
	for i, s := range talon.States {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}
