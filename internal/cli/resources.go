package cli

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/talonhq/talon/internal/resource"
)

func newResourcesCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "resources",
		Short: "Show the resource tree: capacity, used, holders and waiting runs",
		Long: "Show the resource tree of the loaded schedule: each node's capacity, the units used now\n" +
			"and by which runs, the runs queued that it could serve, and for consumable nodes\n" +
			"(per: daily…) the units used in each period. -o json gives the API's answer.",
		Args: argsWant(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := g.api().Resources(cmd.Context())
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(v)
			}
			w := g.table()
			row(w, "PATH", "CAPACITY", "USED", "HOLDERS", "WAITING", "ATTRIBUTES")
			for _, r := range v.Resources {
				capacity := strconv.Itoa(r.Capacity)
				if r.Per != "" {
					capacity += "/" + strings.TrimSuffix(string(r.Per), "ly")
				}
				if !r.Declared {
					capacity = "(removed)"
				}
				row(w, r.Path, capacity, strconv.Itoa(r.Used), orDash(holders(r.Holders)), orDash(runIDs(r.Waiting)), orDash(keyValues(r.Attributes)))
			}
			if err := w.Flush(); err != nil {
				return err
			}
			var periods []string
			for _, r := range v.Resources {
				keys := make([]string, 0, len(r.Periods))
				for k := range r.Periods {
					keys = append(keys, k)
				}
				sort.Sort(sort.Reverse(sort.StringSlice(keys)))
				for _, k := range keys {
					periods = append(periods, fmt.Sprintf("  %s\t%s\t%d of %d", r.Path, k, r.Periods[k], r.Capacity))
				}
			}
			if len(periods) > 0 {
				fmt.Fprintln(g.stdout, "\nused per period:")
				w := g.table()
				for _, p := range periods {
					fmt.Fprintln(w, p)
				}
				if err := w.Flush(); err != nil {
					return err
				}
			}
			if len(v.Waiters) > 0 {
				fmt.Fprintln(g.stdout, "\nqueue:")
				w := g.table()
				row(w, "  RUN", "PRIORITY", "WANTS", "REASON")
				for _, q := range v.Waiters {
					row(w, "  "+strconv.FormatInt(q.RunID, 10), strconv.Itoa(q.Priority), wants(q.Requests), orDash(oneLine(q.Reason)))
				}
				return w.Flush()
			}
			return nil
		},
	}
}

// holders reads like "run 812 (1), run 815 (2)".
func holders(hs []resource.Hold) string {
	parts := make([]string, len(hs))
	for i, h := range hs {
		parts[i] = fmt.Sprintf("run %d (%d)", h.RunID, h.Units)
	}
	return strings.Join(parts, ", ")
}

func runIDs(ids []int64) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.FormatInt(id, 10)
	}
	return strings.Join(parts, ", ")
}

func wants(rs []resource.Request) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%s: %d", r.String(), r.Count)
	}
	return strings.Join(parts, ", ")
}
