package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// newServeCmd builds the serve verb: scheduler, HTTP API and dashboard in
// one process. This file belongs to the wiring of the whole system; the
// stub lets the rest of the CLI build and be tested before it exists.
func newServeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the scheduler, the HTTP API and the dashboard",
		Args:  argsWant(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return errors.New("serve: not implemented")
		},
	}
}
