package cli

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/talonhq/talon/internal/api"
)

func newReloadCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "reload",
		Short: "Make the server re-read its schedule (an invalid one keeps the old)",
		Args:  argsWant(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			summary, err := g.api().Reload(cmd.Context())
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(api.ReloadResult{Summary: summary})
			}
			fmt.Fprintln(g.stdout, summary)
			return nil
		},
	}
}
