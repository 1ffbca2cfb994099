package cli

import (
	"strconv"

	"github.com/spf13/cobra"
	"github.com/talonhq/talon"
	"github.com/talonhq/talon/internal/artifact"
	"github.com/talonhq/talon/internal/view"
)

func newArtifactCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "artifact",
		Short: "Record what runs produce",
	}
	var name string
	add := &cobra.Command{
		Use:   "add [RUN] URL",
		Short: "Record an artifact (a URL) of a run (RUN defaults to $TALON_RUN_ID)",
		Long: `Record an artifact (a URL) of a run. Inside a job, RUN defaults to
$TALON_RUN_ID, and the server and token to $TALON_URL and $TALON_TOKEN
(talon sets all three for the jobs it runs).

The URL's scheme must be one of: ` + joinSchemes() + `.
Without --name, an artifact whose URL matches one the job declares
(artifacts: in the schedule) takes that name.`,
		Example: `  talon artifact add s3://bucket/sales/2026-11-26.csv
  talon artifact add file:///data/2026-11-26/report.csv --name report
  talon artifact add 1234 postgres://warehouse/sales_daily`,
		Args: argsWant(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			runArg, url := "", args[len(args)-1]
			if len(args) == 2 {
				runArg = args[0]
			}
			if err := artifact.CheckURL(url); err != nil {
				return usagef("%v", err)
			}
			if err := artifact.CheckName(name); err != nil {
				return usagef("--name: %v", err)
			}
			id, err := g.runFromEnv(runArg)
			if err != nil {
				return err
			}
			a, err := g.api().AddArtifact(cmd.Context(), id, url, name)
			if err != nil {
				return runErr(id, err)
			}
			if g.json() {
				return g.printJSON(a)
			}
			return nil
		},
	}
	add.Flags().StringVar(&name, "name", "", "the artifact's name (default: the declared artifact its URL matches, if any)")
	cmd.AddCommand(add)
	return cmd
}

func joinSchemes() string {
	out := ""
	for i, s := range artifact.Schemes {
		if i > 0 {
			out += ", "
		}
		out += s
	}
	return out
}

func newArtifactsCmd(g *globals) *cobra.Command {
	var f view.ArtifactFilter
	cmd := &cobra.Command{
		Use:   "artifacts",
		Short: "List artifacts, newest first",
		Example: `  talon artifacts --job extract
  talon artifacts --period daily/2026-11-26 -o json`,
		Args: argsWant(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.Limit < 1 || f.Limit > 1000 {
				return usagef("--limit %d: want 1 to 1000", f.Limit)
			}
			as, err := g.api().Artifacts(cmd.Context(), f)
			if err != nil {
				return err
			}
			if g.json() {
				if as == nil {
					as = []talon.Artifact{}
				}
				return g.printJSON(as)
			}
			w := g.table()
			row(w, "ID", "RUN", "JOB", "PERIOD", "NAME", "URL", "ADDED")
			for _, a := range as {
				row(w, strconv.FormatInt(a.ID, 10), strconv.FormatInt(a.RunID, 10), a.Job, a.Period, orDash(a.Name), a.URL, g.fmtTime(a.Created))
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&f.Job, "job", "", "only artifacts of this job's runs")
	cmd.Flags().StringVar(&f.Period, "period", "", "only artifacts of this period (e.g. daily/2026-11-26)")
	cmd.Flags().IntVar(&f.Limit, "limit", 100, "at most this many artifacts (1 to 1000)")
	return cmd
}
