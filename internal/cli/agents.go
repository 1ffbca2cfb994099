package cli

import (
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

func newAgentsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "agents",
		Short: "List the remote agents: slots, labels, last heartbeat and runs",
		Long: "List the agents (talon agent) the server knows: connected ones, and for a day those\n" +
			"whose lease ran out (gone). USED is the slots their runs hold; HEARTBEAT is the last\n" +
			"one, by the database's clock. -o json gives the API's answer.",
		Args: argsWant(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			as, err := g.api().Agents(cmd.Context())
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(as)
			}
			w := g.table()
			row(w, "NAME", "STATE", "SLOTS", "USED", "LABELS", "HOST", "HEARTBEAT", "RUNS")
			for _, a := range as {
				beat := g.fmtDetail(a.Heartbeat)
				runs := make([]string, len(a.Runs))
				for i, id := range a.Runs {
					runs[i] = strconv.FormatInt(id, 10)
				}
				row(w, a.Name, a.State, strconv.Itoa(a.Slots), strconv.Itoa(a.Used), orDash(keyValues(a.Labels)), orDash(a.Host), beat, orDash(strings.Join(runs, ",")))
			}
			return w.Flush()
		},
	}
}
